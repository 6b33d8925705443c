import Foundation
import TestSupport
import Testing

/// `wmq-mock --cocoro`: CocoroCore's chat socket streaming through the seed's sentence buffering.
@Suite("wmq-mock --cocoro", .serialized, .timeLimit(.minutes(1)))
struct CocoroMockTests {
    static let peer = """
        import json, sys, websocket
        base, query = sys.argv[1], sys.argv[2]
        ws = websocket.create_connection(base + "/ws/chat/test-client", timeout=10)
        ws.send(json.dumps({"action": "chat", "session_id": "s-1", "request": {"query": query, "chat_type": "text"}}))
        messages = []
        while True:
            message = json.loads(ws.recv())
            messages.append(message)
            if message["type"] in ("end", "error"):
                break
        ws.send("not json")
        messages.append(json.loads(ws.recv()))
        ws.close()
        print(json.dumps(messages, ensure_ascii=False), flush=True)
        """

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required), arguments: ["今日の天気は？", "What is the weather today?"])
    func aReplyIsStreamedThroughTheSentenceBuffer(query: String) async throws {
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--ws", "127.0.0.1:0", "--cocoro", "127.0.0.1:0"])
        defer { mock.stop() }
        // The CocoroCore listener is announced as ws://HOST:PORT/ws/chat/{client_id}.
        let line = try await mock.awaiting("ws://127\\.0\\.0\\.1:[0-9]+/ws/chat/")
        let base = String(line.dropLast("/ws/chat/".count))
        let client = try Background(ReplayPeerTests.python, ["-c", Self.peer, base, query])
        defer { client.stop() }
        let status = try await client.finished(seconds: 30)
        #expect(status == 0, "\(client.output)")
        let messages = try #require(try JSONSerialization.jsonObject(with: Data((client.output.split(separator: "\n").last ?? "").utf8)) as? [[String: Any]])
        #expect(messages.first?["type"] as? String == "status" && messages.first?["data"] as? String == "2")
        let texts = messages.filter { $0["type"] as? String == "text" }.compactMap { ($0["data"] as? [String: Any])?["content"] as? String }
        let end = try #require(messages.first { $0["type"] as? String == "end" }?["data"] as? [String: Any])
        let final = try #require(end["final_text"] as? String)
        #expect(texts.joined() == final, "the pieces add up to the final text")
        #expect(texts.count >= 2, "\(texts)")
        // Every piece but the last was cut at a sentence end, and tokens were buffered, not sent one by one.
        let endings: Set<Character> = query.unicodeScalars.contains { $0.value >= 0x3040 } ? ["。", "？", "．", "\n"] : [".", "\n"]
        for piece in texts.dropLast() {
            #expect(piece.last.map(endings.contains) == true, "\(piece)")
        }
        let tokens = end["total_tokens"] as? Int ?? 0
        #expect(tokens > texts.count * 5, "\(tokens) tokens in \(texts.count) pieces")
        #expect(messages.contains { $0["type"] as? String == "time" })
        let error = messages.last
        #expect(error?["type"] as? String == "error" && (error?["data"] as? [String: Any])?["code"] as? String == "PROCESSING_ERROR")
    }
}
