import Foundation
import Logging
import MockServer
import MQTTWire
import NIOCore
import TestSupport
import Testing

/// A packet that breaks MQTT 5.0 is answered with DISCONNECT and the reason before the broker
/// closes (docs/mock.md), as mosquitto does, and the close is a FIN the client can read up to,
/// not a reset that overtakes the reason.
@Suite("wmq-mock tells a 5.0 client why it closes", .timeLimit(.minutes(2)))
struct MalformedPacketTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    typealias Case = (name: String, packet: [UInt8], reason: UInt8)

    static let string = StuckClientTests.string
    static let packet = StuckClientTests.packet

    /// Each finding's packet and the reason code MQTT 5.0 gives it: 0x81 malformed packet where
    /// the spec says "Malformed Packet", 0x82 protocol error where it says "Protocol Error", 0x94
    /// for a topic alias outside the announced range.
    static let cases: [Case] = [
        ("PUBLISH with QoS 3 (§3.3.1.2)", packet(0x36, string("t") + [0, 1, 0] + Array("x".utf8)), 0x81),
        ("topic of invalid UTF-8 (§1.5.4)", packet(0x30, [0, 2, 0xC3, 0x28, 0] + Array("x".utf8)), 0x81),
        ("wildcard in a topic name (§3.3.2.1)", packet(0x30, string("a/+") + [0] + Array("x".utf8)), 0x82),
        ("empty topic without an alias (§3.3.4)", packet(0x30, string("") + [0] + Array("x".utf8)), 0x82),
        ("SUBSCRIBE with flags 0 (§3.8.1)", packet(0x80, [0, 1, 0] + string("t") + [0]), 0x81),
        ("PUBREL with flags 0 (§3.6.1)", packet(0x60, [0, 1]), 0x81),
        ("reserved subscription option bits (§3.8.3.1)", packet(0x82, [0, 1, 0] + string("t") + [0xC0]), 0x81),
        ("SUBSCRIBE with no topic filter (§3.8.3)", packet(0x82, [0, 1, 0]), 0x82),
        ("a property given twice (§3.3.2.3)", packet(0x30, string("t") + [4, 0x01, 1, 0x01, 1] + Array("x".utf8)), 0x82),
        ("topic alias 0 (§3.3.2.3.4)", packet(0x30, string("t") + [3, 0x23, 0, 0] + Array("x".utf8)), 0x94),
        ("packet type 0 (§2.1.2)", [0x00, 0x00], 0x81),
    ]

    @Test(arguments: cases.indices)
    func aBrokenPacketIsAnsweredWithDisconnectAndItsReason(index: Int) async throws {
        let (name, bytes, reason) = Self.cases[index]
        let broker = MockBroker(configuration: .init(), logger: quiet)
        let port = try await broker.listenTCP(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let socket = try RawSocket(port: port)
        let connack = await blocking { StuckClientTests.connect(socket, clientID: "broken", level: 5) }
        #expect(connack.first == 0x20, "\(name): \(connack)")
        // The broken packet, then more bytes behind it, as a client still writing would send.
        socket.send(bytes: bytes + StuckClientTests.packet(0xC0, []) + [UInt8](repeating: 0xC0, count: 64))
        let answer = await blocking { socket.receiveBytes(timeout: 5) }
        #expect(answer.first == 0xE0, "\(name): no DISCONNECT, got \(answer.prefix(16))")
        #expect(answer.count > 2 && answer[2] == reason, "\(name): reason \(answer.count > 2 ? String(answer[2], radix: 16) : "none"), expected \(String(reason, radix: 16))")
        #expect(await blocking { socket.isClosed(within: 3) }, "\(name): the connection stayed open")
    }
}
