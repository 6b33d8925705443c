
/// OneBot v11 over WebSocket (docs/protocols.md §2): events (`post_type` message, notice,
/// request, meta_event), API calls (`{action, params, echo}`) and their responses
/// (`{status, retcode, data, echo}`), JSON text messages. Messages are shown as
/// `group 123456 · user 12345: Hello`, with segment arrays and CQ-code strings both read.
public struct OneBotDialect: Dialect {
    public let name = "onebot"

    public init() {}

    public func detect(_ evidence: DetectionEvidence) -> DetectionConfidence {
        var confidence = DetectionConfidence.none
        if let request = evidence.request, request.headers["X-Client-Role"].first != nil || request.headers["X-Self-ID"].first != nil {
            confidence = .likely
        }
        for message in evidence.messages {
            guard let json = try? JSONReader.parse(message) else { continue }
            if json["post_type"] != nil && json["self_id"] != nil { return .certain }
            if json["action"]?.stringValue != nil && json["params"] != nil { confidence = max(confidence, .likely) }
        }
        return confidence
    }

    /// Whether a JSON value is OneBot's: an event, an API call or an API response.
    public static func recognises(_ json: JSONValue) -> Bool {
        (json["post_type"] != nil && json["self_id"] != nil) || (json["action"]?.stringValue != nil && json["params"] != nil)
            || (json["retcode"] != nil && json["status"]?.stringValue != nil)
    }

    /// The annotation of one message; `calls` maps the `echo` of calls seen to their action, so
    /// a response says what it answers (an echo is answered once: it is removed).
    public func annotate(_ json: JSONValue, calls: inout [String: String]) -> AnnotatedMessage {
        if let postType = json["post_type"]?.stringValue {
            return event(json, postType: postType)
        }
        if let action = json["action"]?.stringValue {
            let echo = json["echo"].map(Self.text)
            if let echo { calls[echo] = action }
            var fields = [AnnotatedField("action", action)]
            if let echo { fields.append(AnnotatedField("echo", echo)) }
            let params = json["params"] ?? .object([])
            var summary = "call \(action)"
            if let group = params["group_id"].map(Self.text) { summary += " · group \(group)"; fields.append(AnnotatedField("group", group)) }
            if let user = params["user_id"].map(Self.text) { summary += " · user \(user)"; fields.append(AnnotatedField("user", user)) }
            if let message = params["message"] {
                let text = Self.messageText(message, autoEscape: params["auto_escape"]?.boolValue ?? false)
                summary += ": \(text)"
                fields.append(AnnotatedField("text", text))
            }
            if let echo { summary += " (echo \(echo))" }
            return AnnotatedMessage(dialect: name, kind: "api-call", summary: summary, fields: fields)
        }
        let status = json["status"]?.stringValue ?? "?"
        let retcode = json["retcode"].map(Self.text) ?? "?"
        let echo = json["echo"].map(Self.text)
        let action = echo.flatMap { calls.removeValue(forKey: $0) }
        var fields = [AnnotatedField("status", status), AnnotatedField("retcode", retcode)]
        if let echo { fields.append(AnnotatedField("echo", echo)) }
        if let action { fields.append(AnnotatedField("answers", action)) }
        var summary = "response \(status) (retcode \(retcode)\(Self.retcodeMeaning(retcode).map { ", \($0)" } ?? ""))"
        if let action { summary += " to \(action)" }
        if let data = json["data"], case .object = data {
            if let id = data["message_id"].map(Self.text) { summary += " · message \(id)" }
            if let nickname = data["nickname"]?.stringValue { summary += " · \(nickname)" }
        }
        if let echo { summary += " (echo \(echo))" }
        var warnings: [String] = []
        if echo != nil && action == nil { warnings.append("no call with this echo was seen") }
        return AnnotatedMessage(dialect: name, kind: "api-response", summary: summary, fields: fields, warnings: warnings)
    }

    private func event(_ json: JSONValue, postType: String) -> AnnotatedMessage {
        var fields = [AnnotatedField("post_type", postType)]
        switch postType {
        case "message", "message_sent":
            let type = json["message_type"]?.stringValue ?? "?"
            let user = json["user_id"].map(Self.text) ?? "?"
            let text = json["message"].map { Self.messageText($0, autoEscape: false) } ?? ""
            let sender = json["sender"]?["card"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? json["sender"]?["nickname"]?.stringValue
            fields += [AnnotatedField("message_type", type), AnnotatedField("user", user), AnnotatedField("text", text)]
            if let id = json["message_id"].map(Self.text) { fields.append(AnnotatedField("message_id", id)) }
            let who = "user \(user)" + (sender.map { " (\($0))" } ?? "")
            if type == "group", let group = json["group_id"].map(Self.text) {
                fields.append(AnnotatedField("group", group))
                return AnnotatedMessage(dialect: name, kind: "group-message", summary: "group \(group) · \(who): \(text)", fields: fields)
            }
            return AnnotatedMessage(dialect: name, kind: "private-message", summary: "private · \(who): \(text)", fields: fields)
        case "meta_event":
            let type = json["meta_event_type"]?.stringValue ?? "?"
            if type == "lifecycle" {
                let sub = json["sub_type"]?.stringValue ?? "?"
                return AnnotatedMessage(dialect: name, kind: "lifecycle", summary: "lifecycle \(sub) (bot \(json["self_id"].map(Self.text) ?? "?"))",
                                        fields: fields + [AnnotatedField("sub_type", sub)])
            }
            if type == "heartbeat" {
                let interval = json["interval"].map(Self.text) ?? "?"
                let online = json["status"]?["online"]?.boolValue
                let good = json["status"]?["good"]?.boolValue
                let state = [online.map { $0 ? "online" : "offline" }, good.map { $0 ? "good" : "not good" }].compactMap { $0 }.joined(separator: ", ")
                return AnnotatedMessage(dialect: name, kind: "heartbeat", summary: "heartbeat every \(interval) ms" + (state.isEmpty ? "" : " (\(state))"),
                                        fields: fields + [AnnotatedField("interval", interval)])
            }
            return AnnotatedMessage(dialect: name, kind: "meta-event", summary: "meta event \(type)", fields: fields)
        case "notice":
            let type = json["notice_type"]?.stringValue ?? "?"
            var summary = "notice \(type)"
            if let group = json["group_id"].map(Self.text) { summary += " · group \(group)" }
            if let user = json["user_id"].map(Self.text) { summary += " · user \(user)" }
            return AnnotatedMessage(dialect: name, kind: "notice", summary: summary, fields: fields + [AnnotatedField("notice_type", type)])
        case "request":
            let type = json["request_type"]?.stringValue ?? "?"
            var summary = "request \(type)"
            if let user = json["user_id"].map(Self.text) { summary += " · user \(user)" }
            if let comment = json["comment"]?.stringValue, !comment.isEmpty { summary += ": \(comment)" }
            return AnnotatedMessage(dialect: name, kind: "request", summary: summary, fields: fields + [AnnotatedField("request_type", type)])
        default:
            return AnnotatedMessage(dialect: name, kind: "event", summary: "event \(postType)", fields: fields,
                                    warnings: ["unknown post_type \(postType)"])
        }
    }

    /// A message as text: segment arrays joined (`[face:14]`, `@12345`, `[image]`), CQ-code
    /// strings read the same way and unescaped (`&amp;` `&#91;` `&#93;` `&#44;`).
    public static func messageText(_ message: JSONValue, autoEscape: Bool) -> String {
        switch message {
        case .string(let text):
            return autoEscape ? text : cqText(text)
        case .array(let segments):
            return segments.map(segmentText).joined()
        case .object:
            return segmentText(message)
        default:
            return message.description
        }
    }

    static func segmentText(_ segment: JSONValue) -> String {
        let type = segment["type"]?.stringValue ?? "?"
        let data = segment["data"] ?? .object([])
        return describe(type: type, parameter: { data[$0].map(text) })
    }

    static func describe(type: String, parameter: (String) -> String?) -> String {
        switch type {
        case "text": return parameter("text") ?? ""
        case "at": return "@" + (parameter("qq") ?? "?")
        case "face": return "[face:\(parameter("id") ?? "?")]"
        case "reply": return "[reply to \(parameter("id") ?? "?")]"
        case "image", "record", "video": return "[\(type)\(parameter("file").map { " \($0)" } ?? "")]"
        default: return "[\(type)]"
        }
    }

    /// `hi [CQ:at,qq=123] &#91;x&#93;` → `hi @123 [x]`.
    static func cqText(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let open = rest.firstRange(of: "[CQ:") {
            out += unescape(rest[..<open.lowerBound])
            guard let close = rest[open.upperBound...].firstIndex(of: "]") else {
                rest = rest[open.lowerBound...]
                break
            }
            let parts = rest[open.upperBound..<close].split(separator: ",", omittingEmptySubsequences: false)
            let type = parts.first.map(String.init) ?? "?"
            var parameters: [String: String] = [:]
            for part in parts.dropFirst() {
                guard let equals = part.firstIndex(of: "=") else { continue }
                parameters[String(part[..<equals])] = unescape(part[part.index(after: equals)...])
            }
            out += describe(type: type, parameter: { parameters[$0] })
            rest = rest[rest.index(after: close)...]
        }
        return out + unescape(rest)
    }

    static func unescape(_ text: Substring) -> String {
        String(text).replacing("&#91;", with: "[").replacing("&#93;", with: "]").replacing("&#44;", with: ",").replacing("&amp;", with: "&")
    }

    static func text(_ value: JSONValue) -> String { value.stringValue ?? value.description }

    static func retcodeMeaning(_ code: String) -> String? {
        switch code {
        case "0": "ok"
        case "1": "async"
        case "1400": "bad request"
        case "1401": "unauthorized"
        case "1403": "forbidden"
        case "1404": "no such action"
        default: nil
        }
    }
}
