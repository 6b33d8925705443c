import LiveWebSocket
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import Testing

/// The guard every live endpoint has after NIO's frame decoder: each RFC 6455 rule, the frame
/// that breaks it, the close code it answers with, and what the endpoint is given.
@Suite("WebSocket protocol guard")
struct WebSocketProtocolGuardTests {
    static let mask = WebSocketMaskingKey.random()

    /// A masked client frame.
    static func frame(_ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true, rsv1: Bool = false, masked: Bool = true) -> WebSocketFrame {
        var data = ByteBuffer(bytes: bytes)
        if masked { data.webSocketMask(mask) }
        return WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, maskKey: masked ? mask : nil, data: data)
    }

    /// Feeds the frames to a guard; returns what reached the endpoint, what was sent back, and
    /// whether the connection was closed.
    static func run(_ frames: [WebSocketFrame], options: WebSocketProtocolGuard.Options = .init())
        throws -> (passed: [WebSocketFrame], sent: [WebSocketFrame], closed: Bool) {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WebSocketProtocolGuard(options: options))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        for frame in frames { try channel.writeInbound(frame) }
        var passed: [WebSocketFrame] = []
        while let frame = try channel.readInbound(as: WebSocketFrame.self) { passed.append(frame) }
        var sent: [WebSocketFrame] = []
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) { sent.append(frame) }
        return (passed, sent, !channel.isActive)
    }

    /// The status code of a Close the guard sent (an outgoing frame's `data` is unmasked: NIO's
    /// encoder masks it on the way out).
    static func closeCode(_ frame: WebSocketFrame?) -> UInt16? {
        guard let frame, frame.opcode == .connectionClose else { return nil }
        return frame.data.getInteger(at: frame.data.readerIndex, as: UInt16.self)
    }

    @Test(arguments: [
        // (what, frames, close code)
        ("RSV1 without an extension", [frame(.binary, [1], rsv1: true)], UInt16(1002)),
        ("reserved opcode 3", [frame(WebSocketOpcode(encodedWebSocketOpcode: 3)!, [1])], 1002),
        ("reserved control opcode 0xB", [frame(WebSocketOpcode(encodedWebSocketOpcode: 0xB)!, [])], 1002),
        ("an unmasked client frame", [frame(.binary, [1], masked: false)], 1002),
        ("an orphan continuation", [frame(.continuation, [1])], 1002),
        ("a new message inside a fragmented one", [frame(.binary, [1], fin: false), frame(.binary, [2])], 1002),
        ("text that is not UTF-8", [frame(.text, [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xED, 0xA0, 0x80])], 1007),
        ("UTF-8 cut at the message's end", [frame(.text, [0x61, 0xE2, 0x82], fin: false), frame(.continuation, [])], 1007),
        ("a Close with a 1-byte body", [frame(.connectionClose, [0x03])], 1002),
        ("Close code 1005", [frame(.connectionClose, [0x03, 0xED])], 1002),
        ("Close code 999", [frame(.connectionClose, [0x03, 0xE7])], 1002),
        ("Close code 2999", [frame(.connectionClose, [0x0B, 0xB7])], 1002),
        ("a Close reason that is not UTF-8", [frame(.connectionClose, [0x03, 0xE8, 0xFF])], 1007),
    ])
    func aBrokenRuleFailsTheConnection(what: String, frames: [WebSocketFrame], code: UInt16) throws {
        let result = try Self.run(frames)
        #expect(Self.closeCode(result.sent.last) == code, "\(what): \(result.sent)")
        #expect(result.closed, "\(what)")
        // The frame that broke the rule is not passed on (fragments before it were, as they came).
        #expect(result.passed.count < frames.count, "\(what): passed on")
    }

    @Test func textOnABinaryEndpointIsUnsupportedDataButBadTextStillInvalidPayload() throws {
        let binaryOnly = WebSocketProtocolGuard.Options(acceptsText: false)
        #expect(Self.closeCode(try Self.run([Self.frame(.text, Array("hello".utf8))], options: binaryOnly).sent.last) == 1003)
        #expect(Self.closeCode(try Self.run([Self.frame(.text, [0xFF])], options: binaryOnly).sent.last) == 1007)
        // Fragmented: nothing is decided (or passed on) before the message ends.
        let pieces = try Self.run([Self.frame(.text, Array("hel".utf8), fin: false)], options: binaryOnly)
        #expect(pieces.sent.isEmpty && pieces.passed.isEmpty && !pieces.closed)
    }

    @Test func aValidCloseIsAnsweredWithItsCodeThenTheConnectionEnds() throws {
        let result = try Self.run([Self.frame(.connectionClose, [0x03, 0xE8] + Array("bye".utf8))])
        #expect(result.sent.count == 1 && Self.closeCode(result.sent.first) == 1000)
        #expect(result.sent.first?.maskKey == nil, "a server's frames are not masked")
        #expect(result.passed.map(\.opcode) == [.connectionClose], "the endpoint sees the peer's Close")
        #expect(result.closed)
        // Allowed codes, including the private range and IANA's later ones.
        for code: UInt16 in [1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
            let answered = try Self.run([Self.frame(.connectionClose, [UInt8(code >> 8), UInt8(code & 0xFF)])])
            #expect(Self.closeCode(answered.sent.first) == code, "\(code)")
        }
        // An empty Close is answered with an empty one.
        let empty = try Self.run([Self.frame(.connectionClose, [])])
        #expect(empty.sent.first?.opcode == .connectionClose && empty.sent.first?.data.readableBytes == 0)
    }

    @Test func pingsAreAnsweredAndMessagesPass() throws {
        let result = try Self.run([Self.frame(.ping, [7, 8]), Self.frame(.binary, [1], fin: false), Self.frame(.ping, []),
                                   Self.frame(.continuation, [2]), Self.frame(.pong, [9]), Self.frame(.text, Array("é".utf8))])
        #expect(result.sent.map(\.opcode) == [.pong, .pong])
        #expect(result.sent.first?.data == ByteBuffer(bytes: [7, 8]))
        #expect(result.passed.map(\.opcode) == [.binary, .continuation, .text])
        #expect(!result.closed)
    }

    /// A proxy's guard checks control frames and passes them on for the other side to answer.
    @Test func aProxysGuardPassesControlFramesOn() throws {
        let proxy = WebSocketProtocolGuard.Options(answersControlFrames: false)
        let result = try Self.run([Self.frame(.ping, [1]), Self.frame(.pong, [2]), Self.frame(.connectionClose, [0x03, 0xE8])], options: proxy)
        #expect(result.passed.map(\.opcode) == [.ping, .pong, .connectionClose])
        #expect(result.sent.isEmpty && !result.closed)
        // Still checked: a bad Close code fails the connection.
        #expect(Self.closeCode(try Self.run([Self.frame(.connectionClose, [0x03, 0xED])], options: proxy).sent.last) == 1002)
    }

    @Test func assembledMessagesComeWhole() throws {
        let result = try Self.run([Self.frame(.text, Array("a".utf8), fin: false), Self.frame(.continuation, [0xC3], fin: false),
                                   Self.frame(.continuation, [0xA9])], options: .init(assemblesMessages: true))
        #expect(result.passed.count == 1)
        #expect(result.passed.first.map { $0.fin && $0.opcode == .text && String(buffer: $0.unmaskedData) == "aé" } == true)
    }

    @Test func aMessageOverTheLimitIsTooBig() throws {
        let result = try Self.run([Self.frame(.binary, [UInt8](repeating: 1, count: 10), fin: false), Self.frame(.continuation, [1, 2])],
                                  options: .init(maximumMessageSize: 11))
        #expect(Self.closeCode(result.sent.last) == 1009)
    }

    @Test func nothingIsSentAfterAClose() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WebSocketProtocolGuard())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeOutbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: ByteBuffer(bytes: [0x03, 0xE9])))
        try channel.writeOutbound(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: [1])))
        #expect(try channel.readOutbound(as: WebSocketFrame.self)?.opcode == .connectionClose)
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
        // The peer's answer ends the connection.
        try channel.writeInbound(Self.frame(.connectionClose, [0x03, 0xE9]))
        #expect(!channel.isActive)
    }

    @Test func aClientExpectsUnmaskedFramesAndMasksItsOwn() throws {
        let client = WebSocketProtocolGuard.Options(role: .client)
        #expect(Self.closeCode(try Self.run([Self.frame(.binary, [1])], options: client).sent.last) == 1002)
        let pong = try Self.run([Self.frame(.ping, [5], masked: false)], options: client).sent.first
        #expect(pong?.opcode == .pong && pong?.maskKey != nil && pong?.data == ByteBuffer(bytes: [5]))
    }
}

/// Handshakes that are not upgraded get RFC 6455's answer, before any endpoint's own.
@Suite("WebSocket handshake check")
struct WebSocketHandshakeCheckTests {
    static func head(_ headers: [(String, String)], method: HTTPMethod = .GET) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: "/mqtt", headers: HTTPHeaders(headers))
    }

    static let good: [(String, String)] = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                          ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]

    @Test func answers() {
        #expect(WebSocketHandshakeCheck.refusal(for: Self.head([("Host", "x")])) == nil, "not a WebSocket request")
        #expect(WebSocketHandshakeCheck.refusal(for: Self.head(Self.good)) == nil)
        let version8 = WebSocketHandshakeCheck.refusal(for: Self.head(Self.good.filter { $0.0 != "Sec-WebSocket-Version" } + [("Sec-WebSocket-Version", "8")]))
        #expect(version8?.status == .upgradeRequired)
        #expect(version8?.headers.contains { $0.0 == "Sec-WebSocket-Version" && $0.1 == "13" } == true)
        #expect(WebSocketHandshakeCheck.refusal(for: Self.head(Self.good.filter { $0.0 != "Sec-WebSocket-Key" }))?.status == .badRequest)
        #expect(WebSocketHandshakeCheck.refusal(for: Self.head(Self.good.filter { $0.0 != "Sec-WebSocket-Key" } + [("Sec-WebSocket-Key", "short")]))?.status == .badRequest)
        #expect(WebSocketHandshakeCheck.refusal(for: Self.head(Self.good, method: .POST))?.status == .badRequest)
        let noSubprotocol = WebSocketHandshakeCheck.refusal(for: Self.head(Self.good), subprotocols: ["mqtt"])
        #expect(noSubprotocol?.status == .badRequest && noSubprotocol?.reason.contains("offer the subprotocol mqtt") == true)
        #expect(WebSocketHandshakeCheck.refusal(for: Self.head(Self.good + [("Sec-WebSocket-Protocol", "MQTT")]), subprotocols: ["mqtt"]) == nil)
    }
}
