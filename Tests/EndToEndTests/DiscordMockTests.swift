import Foundation
import Dialects
import TestSupport
import MockAgents
import Testing

/// `wmq-mock --discord`: the gateway's handshake, heartbeats and close codes, and a cc-discord
/// bot's streamed reply through the delivery throttle, seen by a websocket-client gateway client
/// (Tools/peers/discord_client.py), plain and with zlib-stream.
@Suite("wmq-mock --discord", .serialized, .timeLimit(.minutes(2)))
struct DiscordMockTests {
    static let client = ReplayPeerTests.root.appendingPathComponent("Tools/peers/discord_client.py").path

    static func startMock(_ arguments: [String]) async throws -> (Background, port: String) {
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--ws", "127.0.0.1:0", "--discord", "127.0.0.1:0"] + arguments)
        let line = try await mock.awaiting("ws://127\\.0\\.0\\.1:[0-9]+/\\?v=10")
        let port = line.split(separator: ":").last?.split(separator: "/").first.map(String.init) ?? ""
        return (mock, port)
    }

    static func lines(_ output: String) -> [[String: Any]] {
        output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required),
          arguments: [("append", false), ("edit", true), ("append", true)])
    func aStreamedReplyArrivesThroughTheThrottle(delivery: String, zlib: Bool) async throws {
        let (mock, port) = try await Self.startMock(["--discord-delivery", delivery, "--discord-heartbeat", "400", "--discord-token", "tok"])
        defer { mock.stop() }
        let peer = try Background(ReplayPeerTests.python, [Self.client, "--port", port, "--token", "tok", "--until", "That is all"]
                                  + (zlib ? ["--zlib"] : []))
        defer { peer.stop() }
        _ = try await peer.awaiting("\"t\": \"READY\"")
        mock.send(#"{"user": "alice", "content": "hi bot"}"#)
        #expect(try await peer.finished(seconds: 30) == 0, "\(peer.output)")
        let messages = Self.lines(peer.output)

        let hello = try #require(messages.first)
        #expect(hello["op"] as? Int == 10 && (hello["d"] as? [String: Any])?["heartbeat_interval"] as? Int == 400)
        #expect(messages.contains { $0["t"] as? String == "READY" && $0["s"] as? Int == 1 })
        #expect(messages.contains { $0["op"] as? Int == 11 }, "heartbeats acknowledged")
        let dispatches = messages.filter { $0["op"] as? Int == 0 }
        #expect(dispatches.compactMap { $0["s"] as? Int } == Array(1...dispatches.count), "sequence numbers count up")

        func data(_ message: [String: Any]) -> [String: Any] { message["d"] as? [String: Any] ?? [:] }
        func isBot(_ message: [String: Any]) -> Bool { (data(message)["author"] as? [String: Any])?["bot"] as? Bool == true }
        let question = try #require(dispatches.first { $0["t"] as? String == "MESSAGE_CREATE" && !isBot($0) })
        #expect(data(question)["content"] as? String == "hi bot")
        let reply = CannedReply.reply(to: "hi bot")
        let bot = dispatches.filter(isBot)
        if delivery == "append" {
            // Each flush a new message; together the whole reply; about one a second.
            #expect(bot.allSatisfy { $0["t"] as? String == "MESSAGE_CREATE" })
            #expect(bot.compactMap { data($0)["content"] as? String }.joined() == reply)
            #expect(bot.count >= 2, "\(bot.count) posts")
        } else {
            // A placeholder, edited in place until it holds the whole reply.
            let placeholder = try #require(bot.first)
            #expect(placeholder["t"] as? String == "MESSAGE_CREATE" && data(placeholder)["content"] as? String == "…")
            let edits = bot.dropFirst()
            #expect(!edits.isEmpty && edits.allSatisfy { $0["t"] as? String == "MESSAGE_UPDATE" && data($0)["id"] as? String == data(placeholder)["id"] as? String })
            #expect(data(edits.last ?? [:])["content"] as? String == reply)
            let contents = edits.compactMap { data($0)["content"] as? String }
            #expect(zip(contents, contents.dropFirst()).allSatisfy { $1.hasPrefix($0) }, "each edit extends the last")
        }
        #expect(bot.allSatisfy { ((data($0)["message_reference"] as? [String: Any])?["message_id"] as? String) == data(question)["id"] as? String })
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func aWrongTokenIsClosedWith4004() async throws {
        let (mock, port) = try await Self.startMock(["--discord-token", "right"])
        defer { mock.stop() }
        let peer = try Background(ReplayPeerTests.python, [Self.client, "--port", port, "--token", "wrong", "--zlib"])
        defer { peer.stop() }
        #expect(try await peer.finished(seconds: 20) == 0)
        let close = Self.lines(peer.output).last
        #expect(close?["close"] as? Int == 4004 && close?["reason"] as? String == "Authentication failed.", "\(peer.output)")
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func aClientThatStopsBeatingIsClosedWith4009() async throws {
        let (mock, port) = try await Self.startMock(["--discord-heartbeat", "300"])
        defer { mock.stop() }
        let start = Date()
        let peer = try Background(ReplayPeerTests.python, [Self.client, "--port", port, "--no-heartbeat"])
        defer { peer.stop() }
        #expect(try await peer.finished(seconds: 20) == 0)
        let elapsed = Date().timeIntervalSince(start)
        #expect(Self.lines(peer.output).last?["close"] as? Int == 4009, "\(peer.output)")
        #expect(elapsed >= 0.45 && elapsed < 5, "\(elapsed) s")
    }

    /// Sends `frames` in turn after HELLO and prints the close code the gateway answers with.
    static let closer = """
        import json, sys, websocket
        ws = websocket.create_connection(sys.argv[1], timeout=10)
        ws.recv()
        for frame in sys.argv[2:]:
            ws.send(frame)
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                print(json.dumps({"close": int.from_bytes(data[:2], "big"), "reason": data[2:].decode()}), flush=True)
                break
        """

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required), arguments: [
        ([#"{"op":3,"d":{"status":"online"}}"#], 4003),
        ([#"{"op":42,"d":null}"#], 4001),
        (["not json"], 4002),
        ([#"{"op":2,"d":{"token":"t","intents":1}}"#, #"{"op":2,"d":{"token":"t","intents":1}}"#], 4005),
    ] as [([String], Int)])
    func protocolMistakesCloseWithTheirCodes(frames: [String], code: Int) async throws {
        let (mock, port) = try await Self.startMock([])
        defer { mock.stop() }
        let peer = try Background(ReplayPeerTests.python, ["-c", Self.closer, "ws://127.0.0.1:\(port)/?v=10&encoding=json"] + frames)
        defer { peer.stop() }
        #expect(try await peer.finished(seconds: 20) == 0, "\(peer.output)")
        #expect(Self.lines(peer.output).last?["close"] as? Int == code, "\(peer.output)")
    }
}
