/// The JSON chat sockets of the seeds besides OneBot: CocoroCore's `/ws/chat/{client_id}`
/// (docs/protocols.md §5), whose streamed answers are reassembled, and the Discord gateway
/// (docs/protocols.md §4, §4). One ``JSONChatAnnotator`` per connection keeps what spans messages.
public struct JSONChatAnnotator: Sendable {
    private var oneBotCalls: [String: String] = [:]
    /// CocoroCore: per session, the answer streamed so far and its number of chunks.
    private var answers: [String: (text: String, chunks: Int)] = [:]
    /// Discord: the heartbeat's rhythm.
    private var discord = DiscordGatewayDialect.Heartbeats()
    private let redactor: Redactor?

    /// Whether Discord gateway frames were seen: the connection's close codes are Discord's then.
    public var isDiscord: Bool { discord.seen }

    public init(redactor: Redactor?) {
        self.redactor = redactor
    }

    /// The annotation of a JSON message, when one of the dialects recognises it; `time` (epoch
    /// seconds) times Discord's heartbeats.
    public mutating func annotate(_ json: JSONValue, time: Double? = nil) -> AnnotatedMessage? {
        if oneBotCalls.count > 10_000 { oneBotCalls.removeAll() }  // calls never answered do not pile up
        if answers.count > 10_000 { answers.removeAll() }
        if OneBotDialect.recognises(json) { return OneBotDialect().annotate(json, calls: &oneBotCalls) }
        if CocoroChatDialect.recognises(json) { return CocoroChatDialect.annotate(json, answers: &answers) }
        if DiscordGatewayDialect.recognises(json) {
            var annotation = DiscordGatewayDialect.annotate(json, redactor: redactor)
            discord.observe(json, time: time, annotation: &annotation)
            return annotation
        }
        return nil
    }

    /// What a close code means on this connection: Discord's 4000–4014 on a gateway connection.
    public func closeCodeName(_ code: UInt16) -> String? {
        if discord.seen, let name = DiscordGatewayDialect.closeCodes[code] { return "Discord: \(name)" }
        return nil
    }
}

/// CocoroCore's chat socket: `{"action": "chat", "session_id", "request": {…}}` from the client,
/// `{session_id, type, data}` from the server (`status`, `text`, `reference`, `time`, `end`,
/// `error`). Text chunks are joined per session; `end` shows the whole answer.
public enum CocoroChatDialect {
    static let responseTypes: Set<String> = ["status", "text", "reference", "time", "end", "error"]

    public static func recognises(_ json: JSONValue) -> Bool {
        if json["action"]?.stringValue == "chat", json["request"] != nil { return true }
        guard json["session_id"] != nil, let type = json["type"]?.stringValue else { return false }
        return responseTypes.contains(type) && json["data"] != nil
    }

    static func annotate(_ json: JSONValue, answers: inout [String: (text: String, chunks: Int)]) -> AnnotatedMessage {
        let session = json["session_id"].map { $0.stringValue ?? $0.description } ?? "?"
        var fields = [AnnotatedField("session", session)]
        if json["action"]?.stringValue == "chat" {
            let request = json["request"] ?? .object([])
            let chatType = request["chat_type"]?.stringValue ?? "text"
            let query = request["query"]?.stringValue ?? ""
            answers[session] = ("", 0)
            fields += [AnnotatedField("chat_type", chatType), AnnotatedField("query", query)]
            var summary = "chat request (\(chatType)) · session \(session): \(query)"
            if let images = request["images"]?.arrayValue, !images.isEmpty { summary += " [\(images.count) image\(images.count == 1 ? "" : "s")]" }
            return AnnotatedMessage(dialect: "cocoro", kind: "chat-request", summary: summary, fields: fields)
        }
        let type = json["type"]?.stringValue ?? "?"
        let data = json["data"] ?? .null
        switch type {
        case "status":
            let code = data.stringValue ?? data.description
            let meaning = ["0": "search started", "1": "search done", "2": "generation started"][code] ?? "status \(code)"
            return AnnotatedMessage(dialect: "cocoro", kind: "status", summary: "\(meaning) · session \(session)", fields: fields)
        case "text":
            let content = data["content"]?.stringValue ?? ""
            var answer = answers[session] ?? ("", 0)
            if data["is_incremental"]?.boolValue == false { answer.text = content } else { answer.text += content }
            answer.chunks += 1
            answers[session] = answer
            return AnnotatedMessage(dialect: "cocoro", kind: "text", summary: "chunk \(answer.chunks) · session \(session): \(content)",
                                    fields: fields + [AnnotatedField("content", content)])
        case "time":
            let total = data["total_time"].map { $0.stringValue ?? $0.description } ?? "?"
            return AnnotatedMessage(dialect: "cocoro", kind: "time", summary: "took \(total) s · session \(session)", fields: fields)
        case "end":
            let answer = answers.removeValue(forKey: session) ?? ("", 0)
            let final = data["final_text"]?.stringValue
            let tokens = data["total_tokens"].map { $0.stringValue ?? $0.description }
            var warnings: [String] = []
            if let final, final != answer.text { warnings.append("the streamed chunks do not add up to final_text") }
            let text = final ?? answer.text
            return AnnotatedMessage(dialect: "cocoro", kind: "answer",
                                    summary: "answer in \(answer.chunks) chunk\(answer.chunks == 1 ? "" : "s")\(tokens.map { ", \($0) tokens" } ?? "") · session \(session): \(text)",
                                    fields: fields + [AnnotatedField("text", text)], warnings: warnings)
        case "error":
            let message = data["message"]?.stringValue ?? data.description
            let code = data["code"]?.stringValue ?? "?"
            answers[session] = nil
            return AnnotatedMessage(dialect: "cocoro", kind: "error", summary: "error \(code) · session \(session): \(message)", fields: fields)
        default:
            return AnnotatedMessage(dialect: "cocoro", kind: type, summary: "\(type) · session \(session)", fields: fields)
        }
    }
}

/// Discord gateway frames `{op, d, s, t}` (opcode names, the heartbeat interval, dispatches with
/// their sequence number; IDENTIFY's token never shown).
public enum DiscordGatewayDialect {
    static let opcodes: [Int: String] = [0: "DISPATCH", 1: "HEARTBEAT", 2: "IDENTIFY", 3: "PRESENCE_UPDATE", 4: "VOICE_STATE_UPDATE",
                                         6: "RESUME", 7: "RECONNECT", 8: "REQUEST_GUILD_MEMBERS", 9: "INVALID_SESSION", 10: "HELLO",
                                         11: "HEARTBEAT_ACK"]

    /// The gateway's close codes (Discord's documentation, "Gateway Close Event Codes").
    public static let closeCodes: [UInt16: String] = [
        4000: "unknown error", 4001: "unknown opcode", 4002: "decode error", 4003: "not authenticated",
        4004: "authentication failed", 4005: "already authenticated", 4007: "invalid seq", 4008: "rate limited",
        4009: "session timed out", 4010: "invalid shard", 4011: "sharding required", 4012: "invalid API version",
        4013: "invalid intent(s)", 4014: "disallowed intent(s)",
    ]

    /// The heartbeat of one connection: HELLO's interval, each HEARTBEAT's spacing, and each
    /// HEARTBEAT_ACK's latency (the time since the heartbeat it answers). A heartbeat sent
    /// before the previous one was acknowledged is what Discord calls a zombied connection.
    struct Heartbeats: Sendable {
        var seen = false
        var interval: Double?
        var lastHeartbeat: Double?
        var acknowledged = true

        mutating func observe(_ json: JSONValue, time: Double?, annotation: inout AnnotatedMessage) {
            seen = true
            switch json["op"]?.intValue {
            case 10:
                if let milliseconds = json["d"]?["heartbeat_interval"].flatMap({ Double($0.description) }) { interval = milliseconds / 1000 }
            case 1:
                defer {
                    lastHeartbeat = time
                    acknowledged = false
                }
                guard let time else { return }
                if let last = lastHeartbeat {
                    let gap = time - last
                    annotation.summary += ", \(Self.tenths(gap)) s after the previous"
                    annotation.fields.append(AnnotatedField("since_previous_ms", String(Int((gap * 1000).rounded()))))
                    if !acknowledged {
                        annotation.warnings.append("the previous heartbeat was never acknowledged (a zombied connection: Discord says reconnect and resume)")
                    }
                    if let interval, gap > interval * 1.1 + 1 {
                        annotation.warnings.append("late: \(Self.tenths(gap)) s after the previous heartbeat, the interval is \(Self.tenths(interval)) s")
                    }
                }
            case 11:
                defer { acknowledged = true }
                guard let time, let sent = lastHeartbeat, !acknowledged else {
                    if lastHeartbeat != nil && acknowledged { annotation.warnings.append("an acknowledgement with no heartbeat waiting for one") }
                    return
                }
                let latency = Int(((time - sent) * 1000).rounded())
                annotation.summary += " (latency \(latency) ms)"
                annotation.fields.append(AnnotatedField("latency_ms", String(latency)))
            default:
                break
            }
        }

        /// Seconds to a tenth: `41.2`.
        static func tenths(_ seconds: Double) -> String { String((seconds * 10).rounded() / 10) }
    }

    public static func recognises(_ json: JSONValue) -> Bool {
        guard case .number? = json["op"], json["d"] != nil, let members = json.members else { return false }
        return members.allSatisfy { ["op", "d", "s", "t"].contains($0.key) }
    }

    static func annotate(_ json: JSONValue, redactor: Redactor?) -> AnnotatedMessage {
        let op = Int(json["op"]?.intValue ?? -1)
        let name = opcodes[op] ?? "op \(op)"
        let d = json["d"] ?? .null
        var fields = [AnnotatedField("op", String(op))]
        var summary = name
        switch op {
        case 0:
            let event = json["t"]?.stringValue ?? "?"
            let sequence = json["s"].map { $0.description } ?? "?"
            summary = "\(event) #\(sequence)"
            fields.append(AnnotatedField("t", event))
            if event == "MESSAGE_CREATE" || event == "MESSAGE_UPDATE" {
                let author = d["author"]?["username"]?.stringValue ?? "?"
                let channel = d["channel_id"]?.stringValue ?? "?"
                summary += " · channel \(channel) · \(author): \(d["content"]?.stringValue ?? "")"
            }
        case 1:
            summary = "HEARTBEAT (last sequence \(d.intValue.map(String.init) ?? "none"))"
        case 2:
            let token = d["token"]?.stringValue.map { redactor?.pseudonym($0, kind: "token") ?? $0 } ?? "none"
            let intents = d["intents"].map { $0.description } ?? "?"
            summary = "IDENTIFY (token \(token), intents \(intents))"
        case 9:
            summary = "INVALID_SESSION (\(d.boolValue == true ? "resumable" : "not resumable"))"
        case 10:
            let interval = d["heartbeat_interval"].map { $0.description } ?? "?"
            summary = "HELLO (heartbeat every \(interval) ms)"
            fields.append(AnnotatedField("heartbeat_interval", interval))
        default:
            break
        }
        return AnnotatedMessage(dialect: "discord", kind: name.lowercased(), summary: summary, fields: fields)
    }
}
