public import NIOHTTP1

/// What a server answers a WebSocket upgrade request it will not upgrade because the request
/// itself is wrong (RFC 6455 §4.2.1, §4.2.2): every live endpoint asks this before its own
/// refusals (a missing token, wrong cookies) and before serving anything else for the path, so
/// that a bad handshake never gets a page or a 200.
public enum WebSocketHandshakeCheck {
    /// A refusal: the status, extra headers and the plain-text reason.
    public struct Refusal: Sendable, Equatable {
        public var status: HTTPResponseStatus
        public var headers: [(String, String)]
        public var reason: String

        public static func == (a: Refusal, b: Refusal) -> Bool {
            a.status == b.status && a.reason == b.reason && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
        }
    }

    /// Whether the request asks for a WebSocket upgrade at all (`Upgrade: websocket`).
    public static func asksForWebSocket(_ head: HTTPRequestHead) -> Bool {
        head.headers[canonicalForm: "Upgrade"].contains { $0.lowercased() == "websocket" }
    }

    /// The refusal a WebSocket upgrade request deserves whatever the endpoint, or nil when the
    /// request is a good handshake (or no WebSocket request): a version other than 13 gets
    /// `426 Upgrade Required` naming the version served; a missing or malformed key, a method
    /// other than GET, `400`; an endpoint that needs one of `subprotocols` and was offered none
    /// of them says so with `400`.
    public static func refusal(for head: HTTPRequestHead, subprotocols: [String]? = nil) -> Refusal? {
        guard asksForWebSocket(head) else { return nil }
        let versions = head.headers[canonicalForm: "Sec-WebSocket-Version"].map(String.init)
        guard versions == ["13"] else {
            return Refusal(status: .upgradeRequired, headers: [("Sec-WebSocket-Version", "13")],
                           reason: "WebSocket version \(versions.first.map { "\"\($0)\"" } ?? "missing"): this server speaks version 13 (RFC 6455 §4.2.2)\n")
        }
        guard head.method == .GET else {
            return Refusal(status: .badRequest, headers: [], reason: "a WebSocket handshake is a GET request (RFC 6455 §4.1)\n")
        }
        let keys = head.headers[canonicalForm: "Sec-WebSocket-Key"]
        guard keys.count == 1, let key = keys.first, isValidKey(String(key)) else {
            return Refusal(status: .badRequest, headers: [],
                           reason: "the handshake needs one Sec-WebSocket-Key, 16 bytes in base64 (RFC 6455 §4.1)\n")
        }
        if let subprotocols {
            let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map { $0.lowercased() }
            guard offered.contains(where: { subprotocols.contains(String($0)) }) else {
                let names = subprotocols.joined(separator: " or ")
                return Refusal(status: .badRequest, headers: [],
                               reason: "this endpoint speaks MQTT over WebSocket: offer the subprotocol \(names) in Sec-WebSocket-Protocol"
                                   + (offered.isEmpty ? " (none was offered)\n" : " (offered: \(offered.joined(separator: ", ")))\n"))
            }
        }
        return nil
    }

    /// A key is 16 bytes in base64: 22 characters of the alphabet and `==` (RFC 6455 §4.1, 7.).
    static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        let alphabet: (UInt8) -> Bool = { byte in
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
        }
        return bytes[..<22].allSatisfy(alphabet)
    }
}
