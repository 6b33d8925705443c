import MockFiles

/// The files `wmq-mock` reads: its TOML configuration (the TOML reader, then the settings it
/// means) and scenario files (JSON Lines). Oracles: reading bytes and reading the same text
/// agree; every error names a line inside the input.
enum MockFilesHarness {
    static let config = FuzzTarget(
        name: "mock-config", summary: "TOML reader and wmq-mock's configuration settings", maximumInputLength: 8192
    ) { input throws(OracleViolation) in
        let lines = input.count(where: { $0 == 0x0A }) + 1
        let fromBytes: Result<TOMLTable, TOMLError> = Result { () throws(TOMLError) in try TOML.parse(bytes: input) }
        guard let text = String(validating: input, as: UTF8.self) else {
            if case .success = fromBytes {
                throw OracleViolation(target: "mock-config", oracle: "invalid UTF-8 is refused", detail: "\(input.count) bytes read")
            }
            return
        }
        let fromText: Result<TOMLTable, TOMLError> = Result { () throws(TOMLError) in try TOML.parse(text) }
        switch (fromBytes, fromText) {
        case (.success(let a), .success(let b)) where a == b:
            break
        case (.failure(let a), .failure(let b)) where a == b:
            guard (1...lines).contains(a.line), a.column >= 1 else {
                throw OracleViolation(target: "mock-config", oracle: "errors name a line of the input", detail: "\(a) of \(lines) lines")
            }
        default:
            throw OracleViolation(target: "mock-config", oracle: "bytes and text read alike", detail: "\(fromBytes) vs \(fromText)")
        }
        guard case .success(let table) = fromText else { return }
        do throws(SettingsError) {
            _ = try MockSettings(table: table)
        } catch {
            guard (0...lines).contains(error.line) else {
                throw OracleViolation(target: "mock-config", oracle: "settings errors name a line of the input", detail: "\(error)")
            }
        }
    }

    static let scenario = FuzzTarget(
        name: "scenario", summary: "wmq-mock scenario files (JSON Lines steps)", maximumInputLength: 8192
    ) { input throws(OracleViolation) in
        let text = String(decoding: input, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
        do {
            let scenario = try Scenario(jsonLines: text)
            guard scenario.steps.allSatisfy({ (1...lines).contains($0.line) }) else {
                throw OracleViolation(target: "scenario", oracle: "steps name a line of the input", detail: "\(scenario.steps.map(\.line))")
            }
        } catch let error as Scenario.ParseError {
            guard (1...lines).contains(error.line) else {
                throw OracleViolation(target: "scenario", oracle: "errors name a line of the input", detail: "\(error)")
            }
        } catch let violation as OracleViolation {
            throw violation
        } catch {
            throw OracleViolation(target: "scenario", oracle: "only ParseError", detail: "\(error)")
        }
    }

    static let configSeeds: [String] = [
        """
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
            dynamic_filters = true
        """,
        "[v4.1]\nlisten = \"127.0.0.1:1883\"\n[v5.1]\nlisten = \"[::1]:1884\"\n[wmq]\nmode = \"works\"\ncookies = 'cookie.json'\nredelivery_s = 2.5\nmqtt5_on_websocket = true\n",
        "[wmq]\nadmin = \"127.0.0.1:8886\"\nadmin_token = \"\"\"\nsecret\"\"\"\ntopic_alias_maximum = 0x10\nmax_queued = 1_000\nping_response = false\nlog_level = 'debug'\n",
        "a = [1, 2.5, -inf, nan, 'x', \"\\u00e9\\U0001F600\", [true], {b = 1, c.d = 0o7}]\n[[t]]\nx = 0b1\n[[t]]\n[t.sub]\ny = 1e10\n",
        "\"quoted key\" = '''\nraw ''text''\n'''\nd.e.f = \"\"\"one \\\n   two\"\"\"\n",
        "a = 1\na = 2\n", "[t]\n[t]\n", "x = 1979-05-27\n", "x = [[[[[[[[[[1]]]]]]]]]]\n", "x = \"\\q\"\n", "x = 08\n",
        "[ws.1]\nlisten = \"127.0.0.1:1\"\nmax_payload_size = 1\n[ws.2]\nlisten = \"127.0.0.1:2\"\nmax_payload_size = 2\n",
    ]

    static let scenarioSeeds: [String] = [
        #"{"notify": {"channel": 42, "sender": "Alice", "text": "Hello"}}"#,
        #"{"notify": {"channel": 42, "sender": "Bob", "sticker": {"type": "line", "package": "11537", "id": "52002734"}}}"#,
        #"{"read": {"channel": 42, "reader": 7, "upTo": 100}}"#,
        #"{"publish": {"topic": "chat/room1", "payload": {"text": "hi"}, "qos": 2}}"#,
        "# comment\n// comment\n{\"wait\": 0.5}\n{\"expect\": {\"type\": \"PUBACK\"}, \"timeout\": 5}\n",
        #"{"expect": {"type": "PUBLISH", "topic": "chat/+", "contains": "hi"}, "timeout": 1}"#,
        "{\"delay_acks\": 2}\n{\"raw\": \"c000\"}\n{\"drop\": true}\n{\"close\": 1000}\n",
        "{\"fly\": true}\n", "{\"wait\": -1}\n", "not json\n", "{\"notify\": {}}\n",
    ]
}
