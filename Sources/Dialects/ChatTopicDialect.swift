public import MQTTWire

/// The MQTT chat-topic tree of docs/protocols.md §3 (docs/protocols.md §3), behind a rumqttd-style broker:
/// `chat/send|receive|status|error`, `chat/session/create|delete|list`, `system/send|receive|status`,
/// `connection/client|ai-core|system`. The seed names the topics, not the payloads: JSON
/// payloads are shown by the members such messages carry (an id, a session, the text, a
/// status, a timestamp), whatever they are called among the usual spellings.
public struct ChatTopicDialect: MQTTDialect {
    public let name = "chat"

    public init() {}

    public static let topics: Set<String> = [
        "chat/send", "chat/receive", "chat/status", "chat/session/create", "chat/session/delete", "chat/session/list",
        "chat/error", "system/send", "system/receive", "system/status", "connection/client", "connection/ai-core",
        "connection/system",
    ]

    public static func recognises(topic: String) -> Bool { topics.contains(topic) }

    public func detect(_ evidence: DetectionEvidence) -> DetectionConfidence {
        for packet in evidence.mqttPackets {
            switch packet {
            case .publish(let publish) where Self.recognises(topic: publish.topicName): return .likely
            case .subscribe(let subscribe) where subscribe.subscriptions.contains(where: { Self.recognises(topic: $0.topicFilter) }): return .likely
            default: continue
            }
        }
        return .none
    }

    public func annotate(_ publish: PublishPacket, redactor: Redactor?) -> AnnotatedMessage {
        let topic = publish.topicName
        let kind = topic.replacing("/", with: "-")
        var fields = [AnnotatedField("topic", topic)]
        guard let json = try? JSONReader.parse(publish.payload) else {
            let text = String(decoding: publish.payload.readableBytesView.prefix(200), as: UTF8.self)
            return AnnotatedMessage(dialect: name, kind: kind, summary: "\(topic): \(text)", fields: fields,
                                    warnings: ["the payload is not JSON"])
        }
        let shown = redactor.map { $0.redact(json: json) } ?? json
        func first(_ names: [String]) -> String? {
            for key in names { if let value = shown[key] { return value.stringValue ?? value.description } }
            return nil
        }
        var summary = topic
        if let session = first(["session_id", "sessionId", "session"]) { summary += " · session \(session)"; fields.append(AnnotatedField("session", session)) }
        if let id = first(["message_id", "messageId", "id"]) { summary += " · id \(id)"; fields.append(AnnotatedField("id", id)) }
        if let status = first(["status", "state"]) { summary += " · \(status)"; fields.append(AnnotatedField("status", status)) }
        if let text = first(["content", "message", "text", "error"]) { summary += ": \(text)"; fields.append(AnnotatedField("text", text)) }
        if let time = first(["timestamp", "time", "created_at"]) { fields.append(AnnotatedField("timestamp", time)) }
        return AnnotatedMessage(dialect: name, kind: kind, summary: summary, fields: fields)
    }
}

/// The replies of one connection streamed on `chat/receive` (pieces with `"done": false`, then one
/// with `"done": true` and the whole text, as `wmq-mock --mode chat` streams them): each piece
/// numbered, and the last message said to be the reply reassembled, checked against its pieces.
public struct ChatReplies: Sendable {
    private var replies: [String: (text: String, pieces: Int)] = [:]

    public init() {}

    /// Adds to `annotation` (of a PUBLISH on `topic`) what the pieces of its reply tell.
    public mutating func follow(_ publish: PublishPacket, annotation: inout AnnotatedMessage) {
        guard publish.topicName == "chat/receive", let json = try? JSONReader.parse(publish.payload),
              let id = json["id"]?.stringValue ?? json["message_id"]?.stringValue, case .bool(let done)? = json["done"] else { return }
        let content = json["content"]?.stringValue ?? json["text"]?.stringValue ?? ""
        if replies.count > 10_000 { replies.removeAll() }  // replies never finished do not pile up
        if !done {
            var reply = replies[id] ?? ("", 0)
            reply.text += content
            reply.pieces += 1
            replies[id] = reply
            annotation.fields.append(AnnotatedField("piece", String(reply.pieces)))
            return
        }
        guard let reply = replies.removeValue(forKey: id) else { return }
        annotation.summary = "reply in \(reply.pieces) piece\(reply.pieces == 1 ? "" : "s") · " + annotation.summary
        annotation.fields.append(AnnotatedField("pieces", String(reply.pieces)))
        if reply.text != content { annotation.warnings.append("the streamed pieces do not add up to the final content") }
    }
}
