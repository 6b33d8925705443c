import Broker
import Capture
import Dialects
import Logging
import MockFiles
import MQTTWire
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import WebSocketWire

/// Which WebSocket upgrades a listener takes: from the mock's own page or a program (not a page
/// of another origin, ``BrowserAccess``), an MQTT subprotocol, and in Works mode the endpoint's
/// path and the configured cookies.
extension MockBroker {
    // MARK: Upgrade rules

    static let subprotocols = ["mqtt", "mqttv3.1"]

    /// The headers of a 101 answer, or nil to refuse (the request then reaches the HTTP handler).
    static func upgradeHeaders(for head: HTTPRequestHead, configuration: Configuration) -> HTTPHeaders? {
        // A page of another origin or a foreign host name is refused (403) by the HTTP handler.
        guard configuration.access.allows(head) else { return nil }
        let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map { $0.lowercased() }
        guard let chosen = offered.first(where: { subprotocols.contains(String($0)) }) else { return nil }
        if configuration.mode == .works {
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            guard path == configuration.path, cookiesAccepted(head.headers, configuration: configuration) else { return nil }
        }
        var headers = HTTPHeaders()
        headers.add(name: "Sec-WebSocket-Protocol", value: String(chosen))
        return headers
    }

    static func cookiesAccepted(_ headers: HTTPHeaders, configuration: Configuration) -> Bool {
        guard let required = configuration.requiredCookies else { return true }
        var sent: [String: String] = [:]
        for header in headers[canonicalForm: "Cookie"] {
            sent.merge(cookiePairs(String(header))) { $1 }
        }
        return required.allSatisfy { sent[$0.key] == $0.value }
    }

    /// The `NAME=VALUE` pairs of a `Cookie` header (names without surrounding blanks; a later
    /// pair wins), both for the cookies a client sent and for those `requiredCookies` holds.
    public static func cookiePairs(_ header: String) -> [String: String] {
        var pairs: [String: String] = [:]
        for pair in header.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()
            pairs[String(name)] = String(parts[1])
        }
        return pairs
    }
}
