/// What `wmq-mock` runs with, from its TOML configuration file and then its command line
/// (which wins). The file reuses the key names of rumqttd's listener sections, so that a
/// frontend team can start the mock with the configuration of the broker it stands in for:
///
/// ```toml
/// [ws.1]                          # a WebSocket listener, MQTT 3.1.1 only (as rumqttd's)
/// listen = "127.0.0.1:8885"
/// next_connection_delay_ms = 1
///     [ws.1.connections]          # (the keys below may also sit directly in [ws.1])
///     connection_timeout_ms = 60000
///     max_client_id_len = 256
///     max_payload_size = 20480
///     max_inflight_count = 500
///     dynamic_filters = true
///
/// [v4.1]                          # a TCP listener, MQTT 3.1.1 only
/// listen = "127.0.0.1:1883"
/// [v5.1]                          # a TCP listener, MQTT 5 only
/// listen = "127.0.0.1:1884"
///
/// [wmq]                           # wmq-mock's own keys
/// mode = "works"
/// cookies = "cookie.json"
/// ```
public struct MockSettings: Sendable, Hashable {
    /// Which MQTT versions a listener serves.
    public enum Versions: String, Sendable, Hashable, CaseIterable {
        case any, version3 = "3.1.1", version5 = "5"
    }

    public struct Listener: Sendable, Hashable {
        public var host: String
        public var port: Int
        public var versions: Versions

        public init(host: String, port: Int, versions: Versions = .any) {
            self.host = host
            self.port = port
            self.versions = versions
        }

        /// Whether only this machine can reach it.
        public var isLoopback: Bool {
            host == "::1" || host == "localhost" || (host.hasPrefix("127.") && host.split(separator: ".").count == 4)
        }
    }

    public var webSocket: [Listener] = [Listener(host: "127.0.0.1", port: 8885)]
    public var tcp: [Listener] = []
    /// A separate port for the admin API and the page (they are on every WebSocket port too).
    public var admin: Listener?
    public var mode = MockMode.broker
    public var path = "/wmqtt"
    public var cookiesFile: String?
    public var answersPing = true
    public var redeliverySeconds: Double?
    public var maximumInflight = 100
    public var maximumQueued = 10_000
    public var maximumPayload = 8 << 20
    public var maximumClientIDLength = 256
    public var connectionTimeoutMilliseconds = 5_000
    public var nextConnectionDelayMilliseconds = 0
    /// rumqttd's `dynamic_filters`: when false, a PUBLISH to a topic that no subscription filter
    /// (present or past) matches disconnects the publisher, as rumqttd does.
    public var dynamicFilters = true
    public var topicAliasMaximum = 32
    public var scenarioFile: String?
    /// A capture whose recorded server side every client is served (instead of a scenario).
    public var serveCapture: String?
    /// Which connection of it (wmq-decode's id: 1 for `c1`); nil: the first whose server published.
    public var serveConnection: Int?
    public var adminToken: String?
    /// `max_queued_bytes`: unread bytes one connection may hold before QoS 0 messages to it are
    /// dropped (mosquitto's key).
    public var maximumQueuedBytes = 4 << 20
    /// `stuck_timeout_s`: seconds a client may stay over `max_queued_bytes` unread before it is
    /// disconnected.
    public var stuckTimeoutSeconds: Double = 30
    /// `max_subscriptions`: subscriptions one session may hold.
    public var maximumSubscriptions = 10_000
    /// `max_connections`: open connections at once over all listeners; nil: what the process's
    /// open-file limit allows.
    public var maximumConnections: Int?
    /// `users`: a file of `NAME:PASSWORD` lines; every MQTT CONNECT must carry one of them.
    public var usersFile: String?
    /// `insecure_remote`: MQTT on an address other machines reach, without credentials.
    public var insecureRemote = false
    /// `allow_origins`: origins of pages that may use the mock besides its own page, as
    /// `--allow-origin` takes them (checked when the mock starts).
    public var allowOrigins: [String] = []
    /// `allow_hosts`: host names requests may use besides the mock's addresses and localhost.
    public var allowHosts: [String] = []
    public var logLevel = "info"
    /// Keys of rumqttd's configuration that the mock reads past, for a notice at start.
    public private(set) var ignoredKeys: [String] = []

    public init() {}

    public static let modes = MockMode.allCases.map(\.rawValue)

    /// `--mode chat` without a configuration file: the seed's rumqttd.toml (docs/protocols.md §3) on loopback —
    /// a WebSocket listener on 8885 speaking MQTT 3.1.1 only, 60 s to send CONNECT, payloads up to
    /// 20,480 bytes, 500 in flight, 1 ms between accepts — and the frontend's TCP port 8884.
    public static var seedChat: MockSettings {
        var settings = MockSettings()
        settings.mode = .chat
        settings.webSocket = [Listener(host: "127.0.0.1", port: 8885, versions: .version3)]
        settings.tcp = [Listener(host: "127.0.0.1", port: 8884, versions: .version3)]
        settings.connectionTimeoutMilliseconds = 60_000
        settings.maximumClientIDLength = 256
        settings.maximumPayload = 20_480
        settings.maximumInflight = 500
        settings.nextConnectionDelayMilliseconds = 1
        return settings
    }

    /// Settings from a configuration file's text; the defaults above for what it leaves out,
    /// except that a `[ws.N]` section without `dynamic_filters` gets rumqttd's default (false).
    public init(toml text: String) throws(SettingsError) {
        let table: TOMLTable
        do {
            table = try TOML.parse(text)
        } catch {
            throw SettingsError(line: error.line, reason: "\(error.reason) (column \(error.column))")
        }
        try self.init(table: table)
    }

    public init(table: TOMLTable) throws(SettingsError) {
        self.init()
        var webSockets: [Listener] = []
        var connectionSettings: [String: (value: TOMLValue, section: String, line: Int)] = [:]
        for key in table.keys {
            guard let value = table[key] else { continue }
            switch key {
            case "ws", "v4", "v5":
                let section = try Self.table(value, "[\(key)]", line: table.line(of: key))
                for name in section.keys {
                    guard let listenerValue = section[name] else { continue }
                    let path = "[\(key).\(name)]"
                    let listener = try Self.table(listenerValue, path, line: section.line(of: name))
                    let versions: Versions = key == "v5" ? .version5 : .version3
                    let parsed = try readListener(listener, path: path, versions: versions, connections: &connectionSettings)
                    if key == "ws" { webSockets.append(parsed) } else { tcp.append(parsed) }
                }
            case "wmq":
                try readOwn(try Self.table(value, "[wmq]", line: table.line(of: key)))
            case "id", "router", "console", "prometheus", "metrics", "bridge", "cluster":
                ignoredKeys.append(key)
            default:
                throw SettingsError(line: table.line(of: key), reason: "unknown key or section '\(key)' (expected [ws.N], [v4.N], [v5.N] or [wmq])")
            }
        }
        if !webSockets.isEmpty {
            webSocket = webSockets
            if connectionSettings["dynamic_filters"] == nil { dynamicFilters = false }
        } else if !tcp.isEmpty {
            webSocket = []
        }
        for (key, setting) in connectionSettings {
            try applyConnectionSetting(key, setting.value, path: setting.section, line: setting.line)
        }
        if let versions = webSocketVersionsOverride {
            for index in webSocket.indices { webSocket[index].versions = versions }
        }
        if webSocket.isEmpty && tcp.isEmpty {
            throw SettingsError(line: 0, reason: "no listener: give a [ws.N], [v4.N] or [v5.N] section with listen = \"HOST:PORT\"")
        }
    }

    private mutating func readListener(_ listener: TOMLTable, path: String, versions: Versions,
                                       connections: inout [String: (value: TOMLValue, section: String, line: Int)]) throws(SettingsError) -> Listener {
        func collect(_ table: TOMLTable, _ section: String) throws(SettingsError) {
            for key in table.keys where key != "listen" && key != "connections" {
                guard let value = table[key] else { continue }
                switch key {
                case "name", "throttle_delay_ms", "max_inflight_size", "tls", "auth", "external_auth", "max_connections":
                    ignoredKeys.append("\(section) \(key)")
                case "next_connection_delay_ms", "connection_timeout_ms", "max_client_id_len", "max_payload_size",
                     "max_inflight_count", "dynamic_filters":
                    // One set of connection settings serves every listener: two that differ are refused, not half-applied.
                    if let earlier = connections[key], earlier.value != value {
                        throw SettingsError(line: table.line(of: key),
                                            reason: "\(section) \(key) differs from \(earlier.section)'s; wmq-mock applies one value to every listener")
                    }
                    connections[key] = (value, section, table.line(of: key))
                default:
                    throw SettingsError(line: table.line(of: key), reason: "\(section): unknown key '\(key)'")
                }
            }
        }
        try collect(listener, path)
        if let nested = listener["connections"] {
            let section = String(path.dropLast()) + ".connections]"
            try collect(try Self.table(nested, section, line: listener.line(of: "connections")), section)
        }
        guard let listen = listener["listen"] else {
            throw SettingsError(line: listener.line(of: listener.keys.first ?? ""), reason: "\(path) has no listen = \"HOST:PORT\"")
        }
        let address = try Self.address(try Self.string(listen, "\(path) listen", line: listener.line(of: "listen")),
                                       "\(path) listen", line: listener.line(of: "listen"))
        return Listener(host: address.host, port: address.port, versions: versions)
    }

    private mutating func applyConnectionSetting(_ key: String, _ value: TOMLValue, path: String, line: Int) throws(SettingsError) {
        let name = "\(path) \(key)"
        switch key {
        case "next_connection_delay_ms": nextConnectionDelayMilliseconds = try Self.integer(value, name, line: line, minimum: 0)
        case "connection_timeout_ms": connectionTimeoutMilliseconds = try Self.integer(value, name, line: line, minimum: 1)
        case "max_client_id_len": maximumClientIDLength = try Self.integer(value, name, line: line, minimum: 1)
        case "max_payload_size": maximumPayload = try Self.integer(value, name, line: line, minimum: 1)
        case "max_inflight_count": maximumInflight = try Self.integer(value, name, line: line, minimum: 1, maximum: 65_535)
        case "dynamic_filters": dynamicFilters = try Self.boolean(value, name, line: line)
        default: break
        }
    }

    private mutating func readOwn(_ table: TOMLTable) throws(SettingsError) {
        for key in table.keys {
            guard let value = table[key] else { continue }
            let line = table.line(of: key)
            let name = "[wmq] \(key)"
            switch key {
            case "mode":
                let text = try Self.string(value, name, line: line)
                guard let chosen = MockMode(rawValue: text) else {
                    throw SettingsError(line: line, reason: "\(name) is \"broker\", \"works\" or \"chat\", not \"\(text)\"")
                }
                mode = chosen
            case "path": path = try Self.string(value, name, line: line)
            case "cookies": cookiesFile = try Self.string(value, name, line: line)
            case "ping_response": answersPing = try Self.boolean(value, name, line: line)
            case "redelivery_s":
                switch value {
                case .integer(let seconds) where seconds > 0: redeliverySeconds = Double(seconds)
                case .float(let seconds) where seconds > 0 && seconds.isFinite: redeliverySeconds = seconds
                default: throw SettingsError(line: line, reason: "\(name) must be a positive number of seconds")
                }
            case "scenario": scenarioFile = try Self.string(value, name, line: line)
            case "serve": serveCapture = try Self.string(value, name, line: line)
            case "serve_connection": serveConnection = try Self.integer(value, name, line: line, minimum: 1)
            case "admin":
                let address = try Self.address(try Self.string(value, name, line: line), name, line: line)
                admin = Listener(host: address.host, port: address.port)
            case "admin_token": adminToken = try Self.string(value, name, line: line)
            case "max_queued_bytes": maximumQueuedBytes = try Self.integer(value, name, line: line, minimum: 1024)
            case "stuck_timeout_s":
                switch value {
                case .integer(let seconds) where seconds > 0: stuckTimeoutSeconds = Double(seconds)
                case .float(let seconds) where seconds > 0 && seconds.isFinite: stuckTimeoutSeconds = seconds
                default: throw SettingsError(line: line, reason: "\(name) must be a positive number of seconds")
                }
            case "max_subscriptions": maximumSubscriptions = try Self.integer(value, name, line: line, minimum: 1)
            case "max_connections": maximumConnections = try Self.integer(value, name, line: line, minimum: 1)
            case "users": usersFile = try Self.string(value, name, line: line)
            case "insecure_remote": insecureRemote = try Self.boolean(value, name, line: line)
            case "allow_origins": allowOrigins = try Self.strings(value, name, line: line)
            case "allow_hosts": allowHosts = try Self.strings(value, name, line: line)
            case "max_queued": maximumQueued = try Self.integer(value, name, line: line, minimum: 0)
            case "topic_alias_maximum": topicAliasMaximum = try Self.integer(value, name, line: line, minimum: 0, maximum: 65_535)
            case "mqtt5_on_websocket":
                webSocketVersionsOverride = try Self.boolean(value, name, line: line) ? .any : .version3
            case "log_level": logLevel = try Self.string(value, name, line: line)
            default:
                throw SettingsError(line: line, reason: "[wmq]: unknown key '\(key)'")
            }
        }
    }

    /// `[wmq] mqtt5_on_websocket`, applied to the WebSocket listeners once every section is read.
    private var webSocketVersionsOverride: Versions?

    // MARK: Reading values

    static func table(_ value: TOMLValue, _ name: String, line: Int) throws(SettingsError) -> TOMLTable {
        guard case .table(let table) = value else { throw SettingsError(line: line, reason: "\(name) must be a table, not a \(value.typeName)") }
        return table
    }

    static func string(_ value: TOMLValue, _ name: String, line: Int) throws(SettingsError) -> String {
        guard case .string(let text) = value else { throw SettingsError(line: line, reason: "\(name) must be a string, not a \(value.typeName)") }
        return text
    }

    static func strings(_ value: TOMLValue, _ name: String, line: Int) throws(SettingsError) -> [String] {
        guard case .array(let items) = value else { throw SettingsError(line: line, reason: "\(name) must be an array of strings, not a \(value.typeName)") }
        return try items.map { item throws(SettingsError) in try string(item, name + "'s items", line: line) }
    }

    static func boolean(_ value: TOMLValue, _ name: String, line: Int) throws(SettingsError) -> Bool {
        guard case .boolean(let flag) = value else { throw SettingsError(line: line, reason: "\(name) must be true or false, not a \(value.typeName)") }
        return flag
    }

    static func integer(_ value: TOMLValue, _ name: String, line: Int, minimum: Int, maximum: Int = Int(Int32.max)) throws(SettingsError) -> Int {
        guard case .integer(let number) = value, number >= minimum, number <= maximum else {
            throw SettingsError(line: line, reason: "\(name) must be an integer from \(minimum) to \(maximum)")
        }
        return Int(number)
    }

    /// `HOST:PORT` (`[::1]:PORT` for IPv6); an empty host means 127.0.0.1.
    public static func address(_ text: String, _ name: String, line: Int = 0) throws(SettingsError) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw SettingsError(line: line, reason: "\(name) takes HOST:PORT, not \"\(text)\"")
        }
        var host = Substring(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return (host.isEmpty ? "127.0.0.1" : String(host), port)
    }
}

/// A configuration file that cannot be used: the line (0 when the whole file is at fault) and why.
public struct SettingsError: Error, Sendable, Hashable, CustomStringConvertible {
    public let line: Int
    public let reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { line > 0 ? "line \(line): \(reason)" : reason }
}

/// What wmq-mock stands in for: the one name of its mode, for the configuration file, the
/// command line and the broker alike.
public enum MockMode: String, Sendable, Hashable, CaseIterable {
    /// A plain MQTT broker (any path, subprotocol `mqtt` or `mqttv3.1`).
    case broker
    /// The Works notification service.
    case works
    /// A broker with the chat-topic tree's AI core behind it (docs/protocols.md §3):
    /// `chat/send` answered by a reply streamed on `chat/receive` and statuses on `chat/status`.
    case chat
}
