public import Dialects
public import MQTTWire
public import NIOCore

/// The AI core behind the chat-topic tree of docs/protocols.md §3 (docs/protocols.md §3), as `wmq-mock --mode
/// chat` plays it: a pure state machine from a client's PUBLISH to the publishes the core makes
/// in answer, each with its delay after the request. No I/O; the broker schedules them.
///
/// The seed names the topics, not the payloads; the members used here are the usual spellings
/// that the `chat` dialect reads (`id`, `sessionId`, `content`, `status`, `timestamp`), and
/// requests are read under any of them (`session_id`, `message`, `text` too):
///
/// - `chat/send` `{"id", "sessionId", "content"}` → `chat/status` `received`, the reply streamed
///   token by token on `chat/receive` (`{"id": reply, "replyTo", "sessionId", "content": piece,
///   "is_incremental": true, "done": false, "index"}`), a last `chat/receive` with the whole text
///   (`"is_incremental": false, "done": true, "total_tokens"`), then `chat/status` `completed`.
///   A payload that is not JSON, or has no text, gets `chat/error` with a `code`. The reply's id is
///   the message's with `-reply`, whatever the mock served before.
/// - `chat/session/create|delete` (and a `chat/session/list` request) → `chat/session/list`
///   `{"sessions": […]}`; deleting an unknown session is a `chat/error`.
/// - `system/send` → `system/receive` (the parameters echoed, `status` `ok`) and `system/status` `applied`.
/// - At start: `connection/ai-core` and `connection/system` `online`, retained.
public struct ChatTopicAgent: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Characters (Unicode scalars) per generated token, and the pause between tokens.
        public var tokenLength: Int
        public var tokenInterval: Duration

        public init(tokenLength: Int = 4, tokenInterval: Duration = .milliseconds(30)) {
            self.tokenLength = max(1, tokenLength)
            self.tokenInterval = tokenInterval
        }
    }

    /// A publish of the core, `after` its cause arrived.
    public struct Outgoing: Sendable, Hashable {
        public var after: Duration
        public var topic: String
        public var payload: JSONValue
        public var retain: Bool

        public init(after: Duration, topic: String, payload: JSONValue, retain: Bool = false) {
            self.after = after
            self.topic = topic
            self.payload = payload
            self.retain = retain
        }
    }

    public let configuration: Configuration
    /// Chat sessions, in the order they were created or first used.
    public private(set) var sessions: [String] = []
    private var unnamed = 0

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// The retained status messages the core publishes when it starts.
    public func announcements(now: Int64) -> [Outgoing] {
        ["connection/ai-core", "connection/system"].map {
            Outgoing(after: .zero, topic: $0, payload: .members(["status": .string("online"), "timestamp": .integer(now)]), retain: true)
        }
    }

    /// The core's answer to a client's PUBLISH on `topic` received at `now` (epoch milliseconds);
    /// empty for topics it does not serve.
    public mutating func received(topic: String, payload: ByteBuffer, now: Int64) -> [Outgoing] {
        switch topic {
        case "chat/send", "chat/session/create", "chat/session/delete", "chat/session/list", "system/send":
            break
        default:
            return []
        }
        let request: JSONValue
        do {
            request = try JSONReader.parse(payload)
        } catch {
            return [chatError(nil, "\(topic): \(error)", code: "INVALID_JSON", now: now)]
        }
        guard request.members != nil else {
            return [chatError(nil, "\(topic): the payload is a JSON \(Self.kind(of: request)), not an object", code: "INVALID_MESSAGE", now: now)]
        }
        let id = Self.first(request, ["id", "message_id", "messageId"])
        let session = Self.first(request, ["sessionId", "session_id", "session"])
        switch topic {
        case "chat/send":
            guard let text = Self.first(request, ["content", "message", "text"]) else {
                return [chatError(id, "a chat/send message has its text in content, message or text", code: "INVALID_MESSAGE", now: now)]
            }
            return chat(text, id: id ?? nextName("m"), session: session ?? "default", now: now)
        case "chat/session/create":
            let created = session ?? nextName("s")
            use(created)
            return [sessionList(now: now)]
        case "chat/session/delete":
            guard let session, let index = sessions.firstIndex(of: session) else {
                return [chatError(id, "no session \(session.map { "'\($0)'" } ?? "named (sessionId)") to delete", code: "UNKNOWN_SESSION", now: now)]
            }
            sessions.remove(at: index)
            return [sessionList(now: now)]
        case "chat/session/list":
            // The core's own list carries `sessions`; anything else asks for it.
            return request["sessions"] == nil ? [sessionList(now: now)] : []
        default:  // system/send
            // The parameters echoed: the request's members but its id and timestamp.
            let params = (request.members ?? []).filter { $0.key != "id" && $0.key != "timestamp" }
            var answer: [JSONMember] = id.map { [JSONMember(key: "id", value: .string($0))] } ?? []
            answer += [JSONMember(key: "status", value: .string("ok")), JSONMember(key: "params", value: .object(params)),
                       JSONMember(key: "timestamp", value: .integer(now))]
            var status: [JSONMember] = id.map { [JSONMember(key: "id", value: .string($0))] } ?? []
            status += [JSONMember(key: "status", value: .string("applied")), JSONMember(key: "timestamp", value: .integer(now))]
            return [Outgoing(after: .zero, topic: "system/receive", payload: .object(answer)),
                    Outgoing(after: .zero, topic: "system/status", payload: .object(status))]
        }
    }

    /// The reply to one chat message, streamed.
    private mutating func chat(_ text: String, id: String, session: String, now: Int64) -> [Outgoing] {
        use(session)
        // Named after the message it answers, not after the mock's history: replays compare it.
        let replyID = "\(id)-reply"
        let reply = CannedReply.reply(to: text)
        let interval = configuration.tokenInterval
        func at(_ delay: Duration) -> JSONValue { .integer(now + Int64(delay / .milliseconds(1))) }
        var out = [Outgoing(after: .zero, topic: "chat/status", payload: .members([
            "id": .string(id), "sessionId": .string(session), "status": .string("received"), "timestamp": at(.zero),
        ]))]
        let tokens = CannedReply.tokens(of: reply, length: configuration.tokenLength)
        for (index, token) in tokens.enumerated() {
            let delay = interval * index
            out.append(Outgoing(after: delay, topic: "chat/receive", payload: .members([
                "id": .string(replyID), "replyTo": .string(id), "sessionId": .string(session), "content": .string(token),
                "is_incremental": .bool(true), "done": .bool(false), "index": .integer(index), "timestamp": at(delay),
            ])))
        }
        let end = interval * tokens.count
        out.append(Outgoing(after: end, topic: "chat/receive", payload: .members([
            "id": .string(replyID), "replyTo": .string(id), "sessionId": .string(session), "content": .string(reply),
            "is_incremental": .bool(false), "done": .bool(true), "total_tokens": .integer(tokens.count), "timestamp": at(end),
        ])))
        out.append(Outgoing(after: end, topic: "chat/status", payload: .members([
            "id": .string(id), "sessionId": .string(session), "status": .string("completed"), "replyId": .string(replyID), "timestamp": at(end),
        ])))
        return out
    }

    private mutating func use(_ session: String) {
        if !sessions.contains(session) { sessions.append(session) }
    }

    private mutating func nextName(_ prefix: String) -> String {
        unnamed += 1
        return "\(prefix)-\(unnamed)"
    }

    private func sessionList(now: Int64) -> Outgoing {
        Outgoing(after: .zero, topic: "chat/session/list", payload: .members([
            "sessions": .array(sessions.map { .string($0) }), "timestamp": .integer(now),
        ]))
    }

    private func chatError(_ id: String?, _ message: String, code: String, now: Int64) -> Outgoing {
        var members: [JSONMember] = id.map { [JSONMember(key: "id", value: .string($0))] } ?? []
        members += [JSONMember(key: "error", value: .string(message)), JSONMember(key: "code", value: .string(code)),
                    JSONMember(key: "timestamp", value: .integer(now))]
        return Outgoing(after: .zero, topic: "chat/error", payload: .object(members))
    }

    /// The first of `names` that is a string or a number, as text.
    static func first(_ json: JSONValue, _ names: [String]) -> String? {
        for name in names {
            switch json[name] {
            case .string(let text)?: return text
            case .number(let text)?: return text
            default: continue
            }
        }
        return nil
    }

    static func kind(of json: JSONValue) -> String {
        switch json {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// The canned answers of the mock's AI endpoints (`--cocoro`, `--mode chat`): Japanese for a
/// question written in Japanese, English otherwise, long enough to be streamed in several pieces.
public enum CannedReply {
    public static func reply(to query: String) -> String {
        if SentenceBuffer.endings(for: query).contains("。") {
            return "「\(query)」についてお答えします。これはwmq-mockの応答で、本物のAIではありません。"
                + "文は句点で区切られ、八十文字を超えると最後の句点までが送られます。残りは次の送信を待ちます。以上です"
        }
        return "You asked: \(query). This is wmq-mock speaking, not a real model. "
            + "Sentences end with a period, and once eighty characters are buffered everything up to the last one goes out. "
            + "The rest waits for the next send. That is all"
    }

    /// The text cut into generated tokens of `length` Unicode scalars (the last may be shorter).
    public static func tokens(of text: String, length: Int) -> [String] {
        let scalars = Array(text.unicodeScalars)
        return stride(from: 0, to: scalars.count, by: max(1, length)).map { start in
            var token = String.UnicodeScalarView()
            token.append(contentsOf: scalars[start..<min(scalars.count, start + max(1, length))])
            return String(token)
        }
    }
}

extension ChatTopicAgent.Outgoing {
    /// The PUBLISH the mock sends for it: QoS 1, the payload's JSON text.
    public var publishPacket: PublishPacket {
        var bytes: [UInt8] = []
        payload.write(to: &bytes)
        return PublishPacket(qos: .atLeastOnce, retain: retain, topicName: topic, payload: ByteBuffer(bytes: bytes))
    }
}
