public import MQTTWire
import Foundation
import NIOCore

/// Everything `WorksClient` needs, mirroring the seed's `WebSocketConfig` and `MQTTConfig`.
/// Built in code, or read from a JSON file and the environment (``load(file:environment:)``);
/// command-line flags override both in `wmq-client`.
public struct WorksClientConfiguration: Sendable {
    public var webSocket: WebSocketSettings
    public var mqtt: MQTTSettings
    public var reconnect: ReconnectPolicy
    /// How long a `notification-id` is remembered to drop redeliveries (60 s in the reference).
    public var deduplicationWindow: Duration

    public init(webSocket: WebSocketSettings, mqtt: MQTTSettings = MQTTSettings(),
                reconnect: ReconnectPolicy = ReconnectPolicy(), deduplicationWindow: Duration = .seconds(60)) {
        self.webSocket = webSocket
        self.mqtt = mqtt
        self.reconnect = reconnect
        self.deduplicationWindow = deduplicationWindow
    }
}

/// The WebSocket side: where to connect and how to look like the Works web client.
public struct WebSocketSettings: Sendable {
    public var url: WebSocketURL
    public var origin: String?
    public var userAgent: String?
    /// `Sec-WebSocket-Protocol`; the server must choose it. Nil offers none (JSON dialects such
    /// as OneBot), and the server must then choose none.
    public var subprotocol: String?
    /// The `Cookie` header; a secret, never logged.
    public var cookies: WorksCookies?
    /// More request headers, sent as given.
    public var extraHeaders: [(name: String, value: String)]
    public var tls: TLSSettings
    /// An HTTP proxy to tunnel through (CONNECT), as corporate networks require.
    public var proxy: HTTPProxy?
    /// The largest WebSocket frame accepted from the server.
    public var maximumFrameSize: Int
    public var connectTimeout: Duration

    public init(url: WebSocketURL, origin: String? = WorksDefaults.origin, userAgent: String? = WorksDefaults.userAgent,
                subprotocol: String? = "mqtt", cookies: WorksCookies? = nil, extraHeaders: [(name: String, value: String)] = [],
                tls: TLSSettings = TLSSettings(), maximumFrameSize: Int = 1 << 20, connectTimeout: Duration = .seconds(10)) {
        self.url = url
        self.origin = origin
        self.userAgent = userAgent
        self.subprotocol = subprotocol
        self.cookies = cookies
        self.extraHeaders = extraHeaders
        self.tls = tls
        self.maximumFrameSize = maximumFrameSize
        self.connectTimeout = connectTimeout
    }
}

/// An HTTP proxy reached with CONNECT: `http://[user:password@]host:port`.
public struct HTTPProxy: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// `Proxy-Authorization` value (Basic, from the URL's credentials); a secret.
    public var authorization: String?

    public init(host: String, port: Int, authorization: String? = nil) {
        self.host = host
        self.port = port
        self.authorization = authorization
    }

    public init(url text: String) throws(WorksClientError) {
        guard let components = URLComponents(string: text), components.scheme?.lowercased() == "http",
              let host = components.host, !host.isEmpty
        else { throw WorksClientError(.config, "the proxy must be http://[user:password@]host:port, not '\(text)'") }
        self.host = host
        port = components.port ?? 8080
        if let user = components.user {
            let pair = "\(user.removingPercentEncoding ?? user):\(components.password?.removingPercentEncoding ?? "")"
            authorization = "Basic " + Data(pair.utf8).base64EncodedString()
        }
    }

    public var description: String { "http://\(host):\(port)" + (authorization == nil ? "" : " (with credentials)") }
}

public struct TLSSettings: Sendable, Hashable {
    /// PEM file of the certificate authorities to trust instead of the system's (tests make one).
    public var caFile: String?
    /// Server name for SNI and certificate checks, when it is not the URL's host.
    public var serverName: String?
    /// Turns certificate verification off: for local experiments only.
    public var insecure: Bool

    public init(caFile: String? = nil, serverName: String? = nil, insecure: Bool = false) {
        self.caFile = caFile
        self.serverName = serverName
        self.insecure = insecure
    }
}

/// The MQTT side: who the client says it is and how it keeps the session alive.
public struct MQTTSettings: Sendable, Hashable {
    public var clientIdentifier: String
    public var username: String?
    /// A secret, never logged.
    public var password: String?
    /// Clean session off: the server keeps subscriptions and in-flight messages across reconnects.
    public var persistentSession: Bool
    public var keepAlive: Duration
    public var pingInterval: Duration
    public var pingTimeout: Duration
    public var pingResponse: MQTTClientSession.PingResponsePolicy
    public var connAckTimeout: Duration
    /// Topic filters to subscribe to; the Works service pushes without any.
    public var subscriptions: [SubscribePacket.Subscription]
    /// The largest MQTT packet accepted from the server.
    public var maximumPacketSize: Int = 16 << 20

    public init(clientIdentifier: String = WorksDefaults.makeClientIdentifier(), username: String? = "dummy",
                password: String? = nil, persistentSession: Bool = false, keepAlive: Duration = .seconds(50),
                pingInterval: Duration = .seconds(30), pingTimeout: Duration = .seconds(10),
                pingResponse: MQTTClientSession.PingResponsePolicy = .optional, connAckTimeout: Duration = .seconds(10),
                subscriptions: [SubscribePacket.Subscription] = []) {
        self.clientIdentifier = clientIdentifier
        self.username = username
        self.password = password
        self.persistentSession = persistentSession
        self.keepAlive = keepAlive
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.pingResponse = pingResponse
        self.connAckTimeout = connAckTimeout
        self.subscriptions = subscriptions
    }

    /// The CONNECT variants the service is known to accept (docs/protocols.md §1).
    public enum ConnectVariant: String, Sendable, CaseIterable {
        /// The web client: `web-beejs_<12 hex>`, user name `dummy`, no password, flags 0x82, keep-alive 50 s.
        case reference
        /// A 22-hex-character identifier used as password too. The capture behind this variant
        /// shows flags 0xC6, whose will flag needs a will topic nobody recorded; this sends 0xC2.
        case hexIdentifierWithPassword = "hex-password"
        /// An empty identifier, clean session only (flags 0x02), keep-alive 60 s.
        case anonymous
        /// `mqtt-client-<8 hex>`, no credentials.
        case mqttClient = "mqtt-client"
    }

    /// Settings for one of the known CONNECT variants.
    public static func variant(_ variant: ConnectVariant) -> MQTTSettings {
        switch variant {
        case .reference:
            return MQTTSettings()
        case .hexIdentifierWithPassword:
            let identifier = WorksDefaults.randomHex(22)
            return MQTTSettings(clientIdentifier: identifier, username: identifier, password: identifier)
        case .anonymous:
            return MQTTSettings(clientIdentifier: "", username: nil, keepAlive: .seconds(60))
        case .mqttClient:
            return MQTTSettings(clientIdentifier: "mqtt-client-" + WorksDefaults.randomHex(8), username: nil)
        }
    }
}

/// What the Works web client sends (docs/protocols.md §1).
public enum WorksDefaults {
    public static let url = "wss://jp1-web-noti.worksmobile.com/wmqtt"
    public static let origin = "https://talk.worksmobile.com"
    public static let userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

    /// `web-beejs_` and 12 random hexadecimal digits, as the web client makes them.
    public static func makeClientIdentifier() -> String { "web-beejs_" + randomHex(12) }

    static func randomHex(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in "0123456789abcdef".randomElement(using: &generator) ?? "0" })
    }
}

/// A `ws://` or `wss://` URL, split into what the connection needs.
public struct WebSocketURL: Sendable, Hashable, CustomStringConvertible {
    public var isSecure: Bool
    public var host: String
    public var port: Int
    /// Path and query, as sent in the request line.
    public var target: String

    public init(_ text: String) throws(WorksClientError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty
        else { throw WorksClientError(.config, "'\(text)' is not a URL (expected ws://HOST[:PORT]/PATH or wss://…)") }
        switch scheme {
        case "ws": isSecure = false
        case "wss": isSecure = true
        default: throw WorksClientError(.config, "'\(text)': the scheme must be ws or wss, not \(scheme)")
        }
        guard components.user == nil && components.password == nil else {
            throw WorksClientError(.config, "the URL may not carry credentials; use cookies or --username")
        }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? (isSecure ? 443 : 80)
        guard (1...65535).contains(port) else { throw WorksClientError(.config, "'\(text)': port \(port) is out of range") }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        target = components.percentEncodedQuery.map { path + "?" + $0 } ?? path
    }

    /// The `Host` header: the port only when it is not the scheme's default.
    public var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (isSecure ? 443 : 80) ? name : "\(name):\(port)"
    }

    public var description: String { "\(isSecure ? "wss" : "ws")://\(hostHeader)\(target)" }
}

extension WorksClientConfiguration {
    /// Reads a configuration file (JSON, keys as in the seed: `url`, `origin`, `user_agent`,
    /// `subprotocol`, `headers`, `cookies` (path of cookie.json), `ca_file`, `proxy`, `client_id`,
    /// `username`, `password`, `persistent`, `keep_alive`, `ping_interval`, `ping_timeout`,
    /// `ping_response`, `subscribe`, `dedup_window`, `reconnect_attempts`, `max_frame_size`),
    /// then the environment (`WMQ_URL`, `WMQ_COOKIES`, `WMQ_CLIENT_ID`, `WMQ_USERNAME`,
    /// `WMQ_PASSWORD`, `WMQ_CA_FILE`, `WMQ_PROXY`), which wins. Both are optional; the URL defaults to the
    /// Works service.
    public static func load(file: String?, environment: [String: String]) throws(WorksClientError) -> WorksClientConfiguration {
        var settings: [String: Any] = [:]
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw WorksClientError(.config, "configuration file \(file) not found")
            }
            guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw WorksClientError(.config, "\(file) is not a JSON object")
            }
            settings = object
        }
        let environmentKeys = ["WMQ_URL": "url", "WMQ_COOKIES": "cookies", "WMQ_CLIENT_ID": "client_id",
                               "WMQ_USERNAME": "username", "WMQ_PASSWORD": "password", "WMQ_CA_FILE": "ca_file", "WMQ_PROXY": "proxy"]
        for (variable, key) in environmentKeys {
            if let value = environment[variable] { settings[key] = value }
        }
        let known: Set<String> = ["url", "proxy", "origin", "user_agent", "subprotocol", "headers", "cookies", "ca_file", "client_id",
                                  "username", "password", "persistent", "keep_alive", "ping_interval", "ping_timeout",
                                  "ping_response", "subscribe", "dedup_window", "reconnect_attempts", "max_frame_size"]
        if let unknown = settings.keys.first(where: { !known.contains($0) }) {
            throw WorksClientError(.config, "unknown setting '\(unknown)'; known: \(known.sorted().joined(separator: ", "))")
        }
        func string(_ key: String) throws(WorksClientError) -> String? {
            guard let value = settings[key] else { return nil }
            guard let text = value as? String else { throw WorksClientError(.config, "'\(key)' must be a string") }
            return text
        }
        func seconds(_ key: String) throws(WorksClientError) -> Duration? {
            guard let value = settings[key] else { return nil }
            guard let number = value as? NSNumber, number.doubleValue > 0, number.doubleValue < 86_400 else {
                throw WorksClientError(.config, "'\(key)' must be a number of seconds between 0 and 86400")
            }
            return .milliseconds(Int64((number.doubleValue * 1000).rounded()))
        }
        var webSocket = WebSocketSettings(url: try WebSocketURL(try string("url") ?? WorksDefaults.url))
        if let origin = try string("origin") { webSocket.origin = origin.isEmpty ? nil : origin }
        if let agent = try string("user_agent") { webSocket.userAgent = agent.isEmpty ? nil : agent }
        if let subprotocol = try string("subprotocol") { webSocket.subprotocol = subprotocol }
        if let path = try string("cookies") { webSocket.cookies = try WorksCookies.load(path: path) }
        if let caFile = try string("ca_file") { webSocket.tls.caFile = caFile }
        if let proxy = try string("proxy") { webSocket.proxy = try HTTPProxy(url: proxy) }
        if let headers = settings["headers"] {
            guard let object = headers as? [String: String] else { throw WorksClientError(.config, "'headers' must be an object of strings") }
            webSocket.extraHeaders = object.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        }
        if let size = settings["max_frame_size"] {
            guard let number = size as? Int, number >= 1024, number <= 1 << 30 else {
                throw WorksClientError(.config, "'max_frame_size' must be an integer from 1024 to 2^30")
            }
            webSocket.maximumFrameSize = number
        }
        var mqtt = MQTTSettings()
        if let id = try string("client_id") { mqtt.clientIdentifier = id }
        if let username = try string("username") { mqtt.username = username.isEmpty ? nil : username }
        if let password = try string("password") { mqtt.password = password }
        if let persistent = settings["persistent"] {
            guard let flag = persistent as? Bool else { throw WorksClientError(.config, "'persistent' must be true or false") }
            mqtt.persistentSession = flag
        }
        if let value = try seconds("keep_alive") { mqtt.keepAlive = value }
        if let value = try seconds("ping_interval") { mqtt.pingInterval = value }
        if let value = try seconds("ping_timeout") { mqtt.pingTimeout = value }
        if let policy = try string("ping_response") {
            guard let parsed = MQTTClientSession.PingResponsePolicy(rawValue: policy) else {
                throw WorksClientError(.config, "'ping_response' must be required or optional")
            }
            mqtt.pingResponse = parsed
        }
        if let topics = settings["subscribe"] {
            guard let list = topics as? [String] else { throw WorksClientError(.config, "'subscribe' must be a list of topic filters") }
            mqtt.subscriptions = list.map { SubscribePacket.Subscription(topicFilter: $0, qos: .exactlyOnce) }
        }
        var configuration = WorksClientConfiguration(webSocket: webSocket, mqtt: mqtt)
        if let window = try seconds("dedup_window") { configuration.deduplicationWindow = window }
        if let attempts = settings["reconnect_attempts"] {
            guard let number = attempts as? Int, number >= 0 else {
                throw WorksClientError(.config, "'reconnect_attempts' must be 0 (forever) or more")
            }
            configuration.reconnect.maximumAttempts = number
        }
        return configuration
    }
}
