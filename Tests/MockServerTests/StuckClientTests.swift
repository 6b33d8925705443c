import Foundation
import Logging
import MockServer
import MQTTWire
import NIOCore
import TestSupport
import Testing

/// A client that subscribes and never reads cannot make the mock hold what it is sent: the
/// mock's memory stays bounded, the QoS 0 messages it could not take are counted, and it is
/// disconnected once it has been behind for the stuck timeout. Measured on the wmq-mock process
/// (its resident memory in /proc), with raw MQTT clients.
@Suite("wmq-mock and a client that never reads", .serialized, .timeLimit(.minutes(3)))
struct StuckClientTests {
    static func residentKilobytes(of pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    static func string(_ text: String) -> [UInt8] { [UInt8(text.utf8.count >> 8), UInt8(text.utf8.count & 0xFF)] + Array(text.utf8) }

    static func packet(_ first: UInt8, _ body: [UInt8]) -> [UInt8] {
        var length = body.count
        var encoded: [UInt8] = []
        repeat {
            var byte = UInt8(length % 128)
            length /= 128
            if length > 0 { byte |= 0x80 }
            encoded.append(byte)
        } while length > 0
        return [first] + encoded + body
    }

    /// CONNECT at `level` with `clientID`; the CONNACK's bytes.
    /// The CONNACK's bytes. Up to 20 s: the broker's actor shares two cores with the whole
    /// test run, and behind it a CONNACK once took over 5 s (it comes in milliseconds alone).
    static func connect(_ socket: RawSocket, clientID: String, level: UInt8) -> [UInt8] {
        socket.send(bytes: packet(0x10, string("MQTT") + [level, 0x02, 0, 60] + (level == 5 ? [0] : []) + string(clientID)))
        return socket.receiveBytes(timeout: 20)
    }

    @Test func aSubscriberThatNeverReadsCostsBoundedMemoryAndIsDisconnected() async throws {
        let mock = try Background(TestEnvironment.builtBinary("wmq-mock"), [
            "--ws", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--max-queued-bytes", "1048576", "--stuck-timeout", "3", "--log-level", "notice",
        ])
        defer { mock.stop() }
        let tcpLine = try await mock.awaiting("listening mqtt://127\\.0\\.0\\.1:[0-9]+")
        let wsLine = try await mock.awaiting("listening ws://127\\.0\\.0\\.1:[0-9]+")
        let tcp = try #require(Int(tcpLine.split(separator: ":").last ?? ""))
        let ws = try #require(Int(wsLine.split(separator: ":").last ?? ""))
        let pid = mock.process.processIdentifier

        // The stuck subscriber: MQTT 5, subscribes to everything at QoS 0, then reads nothing.
        let stuck = try RawSocket(port: tcp)
        #expect(await blocking { Self.connect(stuck, clientID: "stuck", level: 5) }.first == 0x20)
        stuck.send(bytes: Self.packet(0x82, [0, 1, 0] + Self.string("#") + [0]))
        #expect(await blocking { stuck.receiveBytes(timeout: 5) }.first == 0x90)
        try await Task.sleep(for: .milliseconds(300))
        let before = Self.residentKilobytes(of: pid)

        // 192 MB published at QoS 0 in 1 MB messages.
        let publisher = try RawSocket(port: tcp)
        #expect(await blocking { Self.connect(publisher, clientID: "publisher", level: 4) }.first == 0x20)
        let payload = [UInt8](repeating: 0x61, count: 1 << 20)
        let publish = Self.packet(0x30, Self.string("load/x") + payload)
        await blocking { for _ in 0..<192 { publisher.send(bytes: publish) } }
        try await Task.sleep(for: .milliseconds(500))
        let after = Self.residentKilobytes(of: pid)
        // Without the limit the mock held what the subscriber did not read: ~190 MB more.
        #expect(after - before < 64 * 1024, "the mock grew from \(before) KB to \(after) KB")

        // The drops are counted where a developer looks: /api/clients while the client is
        // there, and the log line that disconnects it (on a slow machine, such as a
        // ThreadSanitizer build, the publishing outlasts the stuck timeout).
        let clients = await blocking { BrowserAccessMockTests.exchange(ws, BrowserAccessMockTests.request("GET", "/api/clients", host: "127.0.0.1:\(ws)")) }
        let list = try #require(try JSONSerialization.jsonObject(with: Data(clients.body.utf8)) as? [String: Any])
        let entry = (list["clients"] as? [[String: Any]])?.first { $0["id"] as? String == "stuck" }

        // Behind for the stuck timeout (3 s): disconnected, and the log says why. (Waited for
        // without reading: reading would make the client catch up.)
        #expect(await waitUntil(seconds: 15) { mock.output.contains("disconnecting a client that does not read") })
        var logged: Int?
        if let line = mock.output.split(separator: "\n").first(where: { $0.contains("disconnecting a client that does not read") }),
           let field = line.range(of: "dropped=") {
            logged = Int(line[field.upperBound...].prefix { $0.isNumber })
        }
        let dropped = (entry?["dropped"] as? Int) ?? logged ?? 0
        #expect(dropped > 100, "listed: \(String(describing: entry)), logged: \(String(describing: logged))")
        #expect(mock.output.contains("client=stuck"), "\(mock.output)")
        #expect(await blocking { stuck.isClosed(within: 10) })
        #expect(mock.output.contains("disconnecting a client that does not read"), "\(mock.output)")
    }
}

extension StuckClientTests {
    /// A WebSocket client that floods pings and reads nothing: the pongs it would not take are
    /// left out, so the mock's memory stays bounded.
    @Test func aPingFloodThatIsNeverReadCostsBoundedMemory() async throws {
        let mock = try Background(TestEnvironment.builtBinary("wmq-mock"), [
            "--ws", "127.0.0.1:0", "--max-queued-bytes", "1048576", "--stuck-timeout", "60", "--log-level", "error",
        ])
        defer { mock.stop() }
        let line = try await mock.awaiting("listening ws://127\\.0\\.0\\.1:[0-9]+")
        let port = try #require(Int(line.split(separator: ":").last ?? ""))
        let pid = mock.process.processIdentifier
        let flood = try RawSocket(port: port)
        flood.send("GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
        #expect(await blocking { flood.receive() }.hasPrefix("HTTP/1.1 101"))
        // A session first (without CONNECT the mock closes the connection after 5 s), in a
        // masked binary frame (mask 0: the bytes as they are).
        let connect = Self.packet(0x10, Self.string("MQTT") + [4, 0x02, 0, 60] + Self.string("flood"))
        flood.send(bytes: [0x82, 0x80 | UInt8(connect.count), 0, 0, 0, 0] + connect)
        #expect(await blocking { flood.receiveBytes(timeout: 5) }.starts(with: [0x82, 0x04, 0x20]))
        try await Task.sleep(for: .milliseconds(200))
        let before = Self.residentKilobytes(of: pid)
        // A masked ping with 125 bytes of payload (the most a control frame holds), half a million times (each answered would make the mock hold ~190 MB).
        let ping: [UInt8] = [0x89, 0x80 | 125, 0, 0, 0, 0] + [UInt8](repeating: 0x70, count: 125)
        let batch = [UInt8](Array(repeating: ping, count: 8192).joined())
        let allSent = await blocking { (0..<61).allSatisfy { _ in flood.send(bytes: batch) } }
        #expect(allSent, "the mock closed the connection during the flood")
        try await Task.sleep(for: .milliseconds(500))
        let after = Self.residentKilobytes(of: pid)
        #expect(after - before < 32 * 1024, "the mock grew from \(before) KB to \(after) KB")
    }
}

/// Retained messages are held back for a client behind and sent as it reads: a subscriber that
/// reads gets every one, in order, however far past the unread-bytes limit they go.
@Suite("wmq-mock paces retained messages")
struct RetainedPacingTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test func aReadingSubscriberGetsEveryRetainedMessageInOrder() async throws {
        var configuration = MockBroker.Configuration()
        configuration.maximumQueuedBytes = 64 << 10
        let broker = MockBroker(configuration: configuration, logger: quiet)
        let port = try await broker.listenTCP(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let count = 3000
        let payload = ByteBuffer(bytes: [UInt8](repeating: 0x62, count: 2048))
        for index in 0..<count {
            await broker.publish(PublishPacket(qos: .atMostOnce, retain: true, topicName: String(format: "r/%05d", index), payload: payload))
        }
        let socket = try RawSocket(port: port)
        #expect(await blocking { StuckClientTests.connect(socket, clientID: "reader", level: 4) }.first == 0x20)
        socket.send(bytes: StuckClientTests.packet(0x82, [0, 1] + StuckClientTests.string("r/#") + [0]))
        let topics = await blocking { () -> [String] in
            var decoder = MQTTDecoder()
            var topics: [String] = []
            let deadline = Date().addingTimeInterval(20)
            while topics.count < count && Date() < deadline {
                let bytes = socket.receiveBytes(timeout: 2)
                if bytes.isEmpty { break }
                decoder.append(contentsOf: bytes)
                while let packet = try? decoder.next() {
                    if case .publish(let publish) = packet { topics.append(publish.topicName) }
                }
            }
            return topics
        }
        #expect(topics.count == count)
        #expect(topics == topics.sorted(), "retained messages came out of order")
    }
}
