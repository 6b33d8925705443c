import Foundation
import TestSupport
import Testing

/// `wmq-mock --mode chat` against the chat seed's frontend played (docs/protocols.md §3) by paho-mqtt over WebSocket
/// (Tools/peers/chat_client.py): the streamed reply, and rumqttd's `[ws]` limits.
@Suite("wmq-mock --mode chat", .serialized, .timeLimit(.minutes(2)))
struct ChatModeTests {
    static let client = ReplayPeerTests.root.appendingPathComponent("Tools/peers/chat_client.py").path

    static func startChatMock(_ arguments: [String]) async throws -> (Background, port: String) {
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--mode", "chat"] + arguments)
        let line = try await mock.awaiting("ws://127\\.0\\.0\\.1:[0-9]+")
        return (mock, String(line.split(separator: ":").last ?? ""))
    }

    static func run(_ port: String, _ arguments: [String]) async throws -> [[String: Any]] {
        let peer = try Background(ReplayPeerTests.python, [client, "--port", port] + arguments)
        defer { peer.stop() }
        let status = try await peer.finished(seconds: 40)
        #expect(status == 0, "\(peer.output)")
        return peer.output.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required), arguments: ["Hello, AI!", "こんにちは、元気ですか？"])
    func aChatMessageIsAnsweredWithAStreamedReply(text: String) async throws {
        let (mock, port) = try await Self.startChatMock(["--ws", "127.0.0.1:0"])
        defer { mock.stop() }
        let lines = try await Self.run(port, ["--text", text, "chat"])
        #expect(lines.last?["done"] as? Bool == true, "\(lines)")
        func payloads(_ topic: String) -> [[String: Any]] {
            lines.filter { $0["topic"] as? String == topic }.compactMap { $0["payload"] as? [String: Any] }
        }
        // The core's presence, retained, reaches a client that subscribes later.
        let presence = lines.first { $0["topic"] as? String == "connection/ai-core" }
        #expect(presence?["retain"] as? Bool == true && (presence?["payload"] as? [String: Any])?["status"] as? String == "online")
        #expect(payloads("chat/session/list").first?["sessions"] as? [String] == ["s-1"])

        let statuses = payloads("chat/status").filter { $0["id"] as? String == "m-1" }.compactMap { $0["status"] as? String }
        #expect(statuses == ["received", "completed"])
        let receives = payloads("chat/receive")
        let pieces = receives.filter { $0["done"] as? Bool == false }
        let final = try #require(receives.last)
        #expect(final["done"] as? Bool == true && final["replyTo"] as? String == "m-1")
        let whole = try #require(final["content"] as? String)
        #expect(whole.contains(text))
        #expect(pieces.count > 10 && pieces.compactMap { $0["content"] as? String }.joined() == whole)
        #expect(pieces.compactMap { $0["index"] as? Int } == Array(0..<pieces.count), "in order")
        // The pieces were streamed over time, not sent at once.
        let times = receives.compactMap { $0["timestamp"] as? Int }
        #expect((times.last ?? 0) - (times.first ?? 0) >= 30 * (pieces.count - 1))

        #expect(payloads("system/receive").first?["params"] as? [String: Double] == ["temperature": 0.7])
        #expect(payloads("system/status").first?["status"] as? String == "applied")
        #expect(payloads("chat/error").first?["code"] as? String == "INVALID_JSON")
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func theWebSocketListenerSpeaksMQTT311Only() async throws {
        let (mock, port) = try await Self.startChatMock(["--ws", "127.0.0.1:0"])
        defer { mock.stop() }
        let answer = try #require(try await Self.run(port, ["v5"]).first)
        // CONNACK return code 1 (unacceptable protocol version), which paho reports as 0x84, then the close.
        #expect(answer["connack"] as? Int == 0x84 && answer["disconnected"] as? Bool == true, "\(answer)")
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func aPayloadOverTheSeedsLimitEndsTheConnection() async throws {
        // The seed's rumqttd.toml: max_payload_size = 20480.
        let (mock, port) = try await Self.startChatMock(["--ws", "127.0.0.1:0"])
        defer { mock.stop() }
        #expect(try await Self.run(port, ["oversize", "--size", "20000"]).first?["disconnected"] as? Bool == false)
        #expect(try await Self.run(port, ["oversize", "--size", "20481"]).first?["disconnected"] as? Bool == true)
        #expect(mock.output.contains("PUBLISH payload of 20481 bytes is over the limit of 20480"), "\(mock.output)")
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func aConnectionWithoutCONNECTIsClosedAfterTheConfiguredTimeout() async throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-chat-\(UUID().uuidString).toml")
        defer { try? FileManager.default.removeItem(at: config) }
        try """
            [ws.1]
            listen = "127.0.0.1:0"
                [ws.1.connections]
                connection_timeout_ms = 400
            [wmq]
            mode = "chat"
            """.write(to: config, atomically: true, encoding: .utf8)
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--config", config.path])
        defer { mock.stop() }
        let port = String(try await mock.awaiting("ws://127\\.0\\.0\\.1:[0-9]+").split(separator: ":").last ?? "")
        let closed = try #require(try await Self.run(port, ["idle"]).first?["closedAfter"] as? Double)
        #expect(closed >= 0.3 && closed < 2.0, "closed after \(closed) s")
    }
}
