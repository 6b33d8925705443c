import CaptureProxy
import Foundation
import Logging
import MockServer
import MQTTWire
import NIOCore
import Recordings
import TestSupport
import Testing
import WorksClient

/// The recording proxy in process: a WorksClient through it to wmq-mock's broker, the recorder
/// writing what passed; no binary is started.
@Suite("Recording proxy", .serialized, .timeLimit(.minutes(1)))
struct RecordingProxyTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test func proxiesBothWaysAndRecordsWhatPassed() async throws {
        let broker = MockBroker(configuration: .init(), logger: quiet)
        let brokerPort = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-proxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("proxied.pcap").path
        let recorder = try SessionRecorder(path: path, redactor: nil)
        let events = TestLog()
        // The base names only the server: each client's own path goes upstream.
        let proxy = RecordingProxy(base: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(brokerPort)")),
                                   recorder: recorder, redactor: nil) { event in events.add("\(event.time)") }
        let proxyPort = try await proxy.start(host: "127.0.0.1", port: 0)

        var settings = WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(proxyPort)/mqtt"))
        settings.subprotocol = "mqtt"
        let client = WorksClient(configuration: WorksClientConfiguration(webSocket: settings), logger: quiet)
        let received = TestLog()
        Task {
            for await event in client.events {
                if case .otherMessage(let message) = event { received.add("\(message.publish.topicName) \(String(buffer: message.publish.payload))") }
            }
        }
        try await client.connect()
        _ = try await client.subscribe([(topic: "proxied/#", qos: .atLeastOnce)])
        try await client.publish(topic: "proxied/one", payload: ByteBuffer(string: "through the proxy"), qos: .atLeastOnce)
        #expect(await waitUntil { received.lines == ["proxied/one through the proxy"] }, "\(received.lines)")
        await client.disconnect()
        #expect(await waitUntil { await broker.connectedClients.isEmpty })
        await proxy.stop()
        await broker.stop()
        recorder.flush()

        #expect(proxy.connectionCount == 1)
        #expect(!events.lines.isEmpty, "the live view saw the connection")
        // Session data: only its owner reads the file.
        let permissions = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        // What the recorder wrote decodes into the session both ways, with the client's path.
        let recording = try Recording.read(path: path)
        let connection = try #require(recording.connections.first)
        #expect(recording.connections.count == 1)
        #expect(connection.path == "/mqtt" && connection.subprotocol == "mqtt")
        let sent = connection.counts(.clientToServer).map { "\($0.type)" }
        let answered = connection.counts(.serverToClient).map { "\($0.type)" }
        #expect(["CONNECT", "SUBSCRIBE", "PUBLISH", "PUBACK"].allSatisfy(sent.contains), "\(sent)")
        #expect(["CONNACK", "SUBACK", "PUBACK", "PUBLISH"].allSatisfy(answered.contains), "\(answered)")
    }

    /// An upstream that cannot be reached: the client's upgrade is answered 502 with the reason.
    @Test func anUnreachableUpstreamIsABadGatewayWithTheReason() async throws {
        let closed = try LoopbackPorts.free()
        let proxy = RecordingProxy(base: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(closed)/mqtt")),
                                   recorder: nil, redactor: nil)
        let port = try await proxy.start(host: "127.0.0.1", port: 0)
        let socket = try RawSocket(port: port)
        socket.send("GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
        let answer = await blocking { socket.receive(timeout: 5) }
        await proxy.stop()
        #expect(answer.hasPrefix("HTTP/1.1 502"), "\(answer)")
        #expect(answer.contains("wmq-capture proxy:") && answer.contains("\(closed)"), "\(answer)")
        #expect(proxy.connectionCount == 1)
    }
}

/// Lines collected from any thread.
final class TestLog: @unchecked Sendable {  // `lock` guards `collected`
    private let lock = NSLock()
    private var collected: [String] = []
    func add(_ line: String) { lock.withLock { collected.append(line) } }
    var lines: [String] { lock.withLock { collected } }
}
