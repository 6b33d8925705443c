import Dialects
import NIOCore
import Testing
import MockAgents
import MQTTWire

/// The AI core of `wmq-mock --mode chat` with no I/O: a client's publish in, the core's timed publishes out.
@Suite struct ChatTopicAgentTests {
    let now: Int64 = 1_700_000_000_000

    func send(_ agent: inout ChatTopicAgent, _ topic: String, _ payload: String) -> [ChatTopicAgent.Outgoing] {
        agent.received(topic: topic, payload: ByteBuffer(string: payload), now: now)
    }

    @Test func aChatMessageIsAnsweredByAStreamedReplyBetweenTwoStatuses() throws {
        var agent = ChatTopicAgent(configuration: .init(tokenLength: 5, tokenInterval: .milliseconds(40)))
        let out = send(&agent, "chat/send", #"{"id": "m-1", "sessionId": "s-9", "content": "Hello, AI!"}"#)
        let first = try #require(out.first)
        #expect(first.topic == "chat/status" && first.payload["status"] == .string("received") && first.payload["id"] == .string("m-1"))
        let last = try #require(out.last)
        #expect(last.topic == "chat/status" && last.payload["status"] == .string("completed"))

        let receives = out.filter { $0.topic == "chat/receive" }
        let pieces = receives.filter { $0.payload["done"] == .bool(false) }
        let final = try #require(receives.last)
        #expect(final.payload["done"] == .bool(true) && final.payload["is_incremental"] == .bool(false))
        let whole = try #require(final.payload["content"]?.stringValue)
        #expect(pieces.compactMap { $0.payload["content"]?.stringValue }.joined() == whole)
        #expect(whole == CannedReply.reply(to: "Hello, AI!"))
        #expect(final.payload["total_tokens"] == .integer(pieces.count))
        #expect(pieces.allSatisfy { ($0.payload["content"]?.stringValue?.unicodeScalars.count ?? 0) <= 5 })
        // Every piece names the reply, the message it answers and the session; pieces come 40 ms apart.
        #expect(receives.allSatisfy { $0.payload["replyTo"] == .string("m-1") && $0.payload["sessionId"] == .string("s-9") })
        #expect(Set(receives.compactMap { $0.payload["id"] }).count == 1)
        #expect(pieces.enumerated().allSatisfy { $0.element.after == .milliseconds(40 * $0.offset) })
        #expect(final.after == .milliseconds(40 * pieces.count) && last.after == final.after)
        #expect(pieces[2].payload["timestamp"] == .integer(now + 80))
        #expect(agent.sessions == ["s-9"])
    }

    @Test func aJapaneseQuestionGetsAJapaneseReply() throws {
        var agent = ChatTopicAgent()
        let out = send(&agent, "chat/send", #"{"message": "今日の天気は？", "session_id": "s"}"#)
        let final = try #require(out.last { $0.payload["done"] == .bool(true) })
        #expect(final.payload["content"]?.stringValue?.contains("。") == true)
        // No id given: one is made up, and the statuses carry it.
        let id = try #require(out.first?.payload["id"]?.stringValue)
        #expect(out.last?.payload["id"]?.stringValue == id && final.payload["replyTo"]?.stringValue == id)
    }

    @Test(arguments: [
        ("not json", "INVALID_JSON"),
        ("[1, 2]", "INVALID_MESSAGE"),
        (#"{"id": "m-2", "sessionId": "s"}"#, "INVALID_MESSAGE"),
    ])
    func aBadChatMessageGetsAnError(payload: String, code: String) throws {
        var agent = ChatTopicAgent()
        let out = send(&agent, "chat/send", payload)
        #expect(out.count == 1)
        let error = try #require(out.first)
        #expect(error.topic == "chat/error" && error.payload["code"] == .string(code))
        #expect(error.payload["error"]?.stringValue?.isEmpty == false)
        #expect(agent.sessions.isEmpty)
    }

    @Test func sessionsAreCreatedListedAndDeleted() throws {
        var agent = ChatTopicAgent()
        #expect(send(&agent, "chat/session/create", #"{"sessionId": "a"}"#).first?.payload["sessions"] == .array([.string("a")]))
        _ = send(&agent, "chat/session/create", "{}")
        #expect(agent.sessions.count == 2 && agent.sessions[0] == "a")
        let list = send(&agent, "chat/session/list", "{}")
        #expect(list.first?.topic == "chat/session/list" && list.first?.payload["sessions"]?.arrayValue?.count == 2)
        #expect(send(&agent, "chat/session/list", #"{"sessions": []}"#).isEmpty, "a list is not a request")
        let deleted = send(&agent, "chat/session/delete", #"{"sessionId": "a"}"#)
        #expect(deleted.first?.payload["sessions"]?.arrayValue?.count == 1 && !agent.sessions.contains("a"))
        let unknown = send(&agent, "chat/session/delete", #"{"sessionId": "a"}"#)
        #expect(unknown.first?.topic == "chat/error" && unknown.first?.payload["code"] == .string("UNKNOWN_SESSION"))
    }

    @Test func systemParametersAreEchoedAndApplied() throws {
        var agent = ChatTopicAgent()
        let out = send(&agent, "system/send", #"{"id": "p-1", "temperature": 0.7, "model": "x"}"#)
        #expect(out.map(\.topic) == ["system/receive", "system/status"])
        #expect(out[0].payload["params"] == .members(["temperature": .number("0.7"), "model": .string("x")]))
        #expect(out[0].payload["id"] == .string("p-1") && out[1].payload["status"] == .string("applied"))
    }

    @Test func otherTopicsAndTheCoresOwnAreLeftAlone() {
        var agent = ChatTopicAgent()
        for topic in ["chat/receive", "chat/status", "connection/client", "t/1", "system/receive"] {
            #expect(send(&agent, topic, #"{"content": "x"}"#).isEmpty, "\(topic)")
        }
        let announced = agent.announcements(now: now)
        #expect(announced.map(\.topic) == ["connection/ai-core", "connection/system"] && announced.allSatisfy(\.retain))
    }

    /// What the core sends is what the chat dialect reads: session, id, status and text.
    @Test func theChatDialectAnnotatesTheCoresMessages() throws {
        var agent = ChatTopicAgent()
        let out = send(&agent, "chat/send", #"{"id": "m-1", "sessionId": "s-1", "content": "Hi"}"#)
        let packet = try #require(out.last { $0.topic == "chat/receive" }).publishPacket
        let annotation = ChatTopicDialect().annotate(packet, redactor: nil)
        #expect(annotation.summary.hasPrefix("chat/receive · session s-1 · id m-1-reply: You asked: Hi."), "\(annotation.summary)")
        #expect(packet.qos == .atLeastOnce)
    }
}
