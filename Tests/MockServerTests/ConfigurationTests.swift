import MockFiles
import Testing

/// The TOML reader on its own: values, tables, and errors with their line and column.
@Suite struct TOMLTests {
    @Test func valuesOfEveryKind() throws {
        let table = try TOML.parse(#"""
            # a comment
            title = "wmq \"mock\"\t\u00e9"   # trailing comment
            literal = 'C:\no\escape'
            multi = """
            one
            two \
               joined"""
            raw = '''
            first 'quoted' line
            '''
            decimal = +1_000
            negative = -42
            hex = 0xDEAD_beef
            octal = 0o755
            binary = 0b1101
            float = 6.626e-34
            fraction = -0.5
            infinite = -inf
            yes = true
            no = false
            list = [ 1, 2,
              3, # comments inside arrays
            ]
            nested = [[1, 2], ["a"]]
            point = { x = 1, y.z = "deep" }
            "quoted key" = 1
            dotted.key = "value"
            """#)
        #expect(table["title"] == .string("wmq \"mock\"\té"))
        #expect(table["literal"] == .string(#"C:\no\escape"#))
        #expect(table["multi"] == .string("one\ntwo joined"))
        #expect(table["raw"] == .string("first 'quoted' line\n"))
        #expect(table["decimal"] == .integer(1000))
        #expect(table["negative"] == .integer(-42))
        #expect(table["hex"] == .integer(0xDEAD_BEEF))
        #expect(table["octal"] == .integer(0o755))
        #expect(table["binary"] == .integer(13))
        #expect(table["float"] == .float(6.626e-34))
        #expect(table["fraction"] == .float(-0.5))
        #expect(table["infinite"] == .float(-.infinity))
        #expect(table["yes"] == .boolean(true) && table["no"] == .boolean(false))
        #expect(table["list"] == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(table["nested"] == .array([.array([.integer(1), .integer(2)]), .array([.string("a")])]))
        guard case .table(let point)? = table["point"], case .table(let y)? = point["y"] else { Issue.record("no inline table"); return }
        #expect(point["x"] == .integer(1) && y["z"] == .string("deep"))
        #expect(table["quoted key"] == .integer(1))
        guard case .table(let dotted)? = table["dotted"] else { Issue.record("no dotted table"); return }
        #expect(dotted["key"] == .string("value"))
        #expect(table.keys.first == "title")
        #expect(table.line(of: "decimal") == 11)
    }

    @Test func tablesAndArraysOfTables() throws {
        let table = try TOML.parse("""
            [ws.1]
            listen = "127.0.0.1:8885"
                [ws.1.connections]
                max_payload_size = 20480
            [[peer]]
            name = "a"
            [[peer]]
            name = "b"
            [peer.extra]
            x = 1
            """)
        guard case .table(let ws)? = table["ws"], case .table(let one)? = ws["1"], case .table(let connections)? = one["connections"] else {
            Issue.record("no [ws.1.connections]"); return
        }
        #expect(one["listen"] == .string("127.0.0.1:8885"))
        #expect(connections["max_payload_size"] == .integer(20480))
        guard case .array(let peers)? = table["peer"], peers.count == 2, case .table(let second) = peers[1],
              case .table(let extra)? = second["extra"] else { Issue.record("no [[peer]]"); return }
        #expect(second["name"] == .string("b") && extra["x"] == .integer(1))
    }

    @Test(arguments: [
        ("a = 1\na = 2", 2, "defined twice"),
        ("[t]\nx = 1\n[t]", 3, "[t] is defined twice"),
        ("a = \"open", 1, "ends inside a string"),
        ("a = 1 b = 2", 1, "expected the end of the line"),
        ("a = 08", 1, "not a TOML value"),
        ("when = 1979-05-27T07:32:00Z", 1, "dates and times are not supported"),
        ("a = \"\\q\"", 1, "unknown escape"),
        ("x = [1, 2", 1, "ends inside an array"),
        ("p = { a = 1 }\np.b = 2", 2, "inline table"),
        ("a = 1\n= 2", 2, "expected a key"),
        ("big = 9223372036854775808", 1, "64-bit"),
        ("a = 1\nb = \"\\u12\"", 2, "hex digits"),
    ] as [(String, Int, String)])
    func errorsNameTheirLine(text: String, line: Int, fragment: String) {
        #expect {
            _ = try TOML.parse(text)
        } throws: { error in
            guard let error = error as? TOMLError else { return false }
            return error.line == line && error.reason.contains(fragment)
        }
    }

    @Test func nestingIsBounded() {
        let deep = "a = " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: TOMLError.self) { try TOML.parse(deep) }
        #expect(throws: TOMLError.self) { try TOML.parse(bytes: [0x61, 0x3D, 0x22, 0xFF, 0x22]) }
    }
}

/// The configuration file's meaning: rumqttd's listener sections and wmq-mock's own keys.
@Suite struct MockSettingsTests {
    /// The listener section of the chat seed's rumqttd.toml (docs/protocols.md §3), as frontend teams have it.
    static let rumqttd = """
        [ws.1]
        name = "ws-1"
        listen = "0.0.0.0:8885"  # WebSocket port
        next_connection_delay_ms = 1
            [ws.1.connections]
            connection_timeout_ms = 60000
            max_client_id_len = 256
            throttle_delay_ms = 0
            max_payload_size = 20480
            max_inflight_count = 500
            max_inflight_size = 1024
        """

    @Test func rumqttdsListenerSectionIsReadAsIs() throws {
        let settings = try MockSettings(toml: Self.rumqttd)
        #expect(settings.webSocket == [.init(host: "0.0.0.0", port: 8885, versions: .version3)])
        #expect(settings.nextConnectionDelayMilliseconds == 1)
        #expect(settings.connectionTimeoutMilliseconds == 60_000)
        #expect(settings.maximumClientIDLength == 256)
        #expect(settings.maximumPayload == 20_480)
        #expect(settings.maximumInflight == 500)
        // rumqttd's default when the key is missing.
        #expect(settings.dynamicFilters == false)
        #expect(settings.ignoredKeys == ["[ws.1] name", "[ws.1.connections] throttle_delay_ms", "[ws.1.connections] max_inflight_size"])
    }

    @Test func ownKeysAndTCPListeners() throws {
        let settings = try MockSettings(toml: """
            [v4.1]
            listen = "127.0.0.1:1883"
            max_payload_size = 1024
            dynamic_filters = true
            [v5.1]
            listen = "127.0.0.1:1884"
            max_payload_size = 1024
            [wmq]
            mode = "works"
            cookies = "cookie.json"
            ping_response = false
            redelivery_s = 2.5
            admin = "127.0.0.1:8886"
            admin_token = "secret"
            topic_alias_maximum = 4
            """)
        #expect(settings.webSocket.isEmpty)
        #expect(settings.tcp == [.init(host: "127.0.0.1", port: 1883, versions: .version3), .init(host: "127.0.0.1", port: 1884, versions: .version5)])
        #expect(settings.mode == .works && settings.cookiesFile == "cookie.json" && !settings.answersPing)
        #expect(settings.redeliverySeconds == 2.5 && settings.admin?.port == 8886 && settings.adminToken == "secret")
        #expect(settings.topicAliasMaximum == 4 && settings.dynamicFilters && settings.maximumPayload == 1024)
    }

    @Test func mqtt5CanBeTurnedOnForWebSocketListeners() throws {
        let settings = try MockSettings(toml: "[wmq]\nmqtt5_on_websocket = true\n" + Self.rumqttd)
        #expect(settings.webSocket.map(\.versions) == [.any])
    }

    @Test(arguments: [
        ("[ws.1]\nlisten = \"x\"", 2, "HOST:PORT"),
        ("[ws.1]\nport = 1", 2, "unknown key 'port'"),
        ("[ws.1]\nlisten = \"127.0.0.1:1\"\nmax_payload_size = \"big\"", 3, "integer"),
        ("[ws.1]\nlisten = \"127.0.0.1:1\"\nmax_payload_size = 10\n[ws.2]\nlisten = \"127.0.0.1:2\"\nmax_payload_size = 20", 6, "differs"),
        ("[wmq]\nmode = \"gossip\"", 2, "\"broker\", \"works\" or \"chat\", not \"gossip\""),
        ("[mqtt]\nx = 1", 1, "unknown key or section 'mqtt'"),
        ("[wmq]\ncolour = 1", 2, "unknown key 'colour'"),
        ("[ws.1]\nlisten = \"127.0.0.1:1\"\ndynamic_filters = 1", 3, "true or false"),
        ("a = \"", 1, "ends inside a string"),
    ] as [(String, Int, String)])
    func mistakesAreNamedWithTheirLine(text: String, line: Int, fragment: String) {
        #expect {
            _ = try MockSettings(toml: text)
        } throws: { error in
            guard let error = error as? SettingsError else { return false }
            return error.line == line && error.reason.contains(fragment)
        }
    }

    @Test func addresses() throws {
        #expect(try MockSettings.address(":8885", "x") == ("127.0.0.1", 8885))
        #expect(try MockSettings.address("[::1]:9", "x") == ("::1", 9))
        #expect(throws: SettingsError.self) { try MockSettings.address("host:70000", "x") }
    }
}
