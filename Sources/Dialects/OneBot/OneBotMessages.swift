/// The OneBot v11 messages the project's OneBot peers build (docs/protocols.md §2): the
/// seed client's events and the answers to API calls. Pure values; the client and the mock send them.
public enum OneBotMessages {
    public enum MessageType: String, Sendable, Hashable, CaseIterable {
        case `private`, group
    }

    /// A text as a segment array: `[{"type": "text", "data": {"text": …}}]`.
    public static func segments(_ text: String) -> JSONValue {
        .array([.members(["type": .string("text"), "data": .members(["text": .string(text)])])])
    }

    /// The lifecycle `connect` meta event the seed's server wants within 1 s of the upgrade.
    public static func connectEvent(selfID: Int64, time: Int64) -> JSONValue {
        .members(["time": .integer(time), "self_id": .integer(selfID), "post_type": .string("meta_event"),
                  "meta_event_type": .string("lifecycle"), "sub_type": .string("connect")])
    }

    /// The heartbeat meta event; `interval` in milliseconds, as the spec has it.
    public static func heartbeatEvent(selfID: Int64, time: Int64, interval: Int64, online: Bool = true, good: Bool = true) -> JSONValue {
        .members(["time": .integer(time), "self_id": .integer(selfID), "post_type": .string("meta_event"),
                  "meta_event_type": .string("heartbeat"),
                  "status": .members(["online": .bool(online), "good": .bool(good)]), "interval": .integer(interval)])
    }

    /// The seed client's text message: the bot's own message event, with `target_id` for a private
    /// message or `group_id` for a group, the text as segments and `message_format: "array"`.
    public static func textMessage(selfID: Int64, time: Int64, messageID: Int64, type: MessageType, text: String,
                                   targetID: Int64?, groupID: Int64?) -> JSONValue {
        var members: [JSONMember] = [
            JSONMember(key: "time", value: .integer(time)), JSONMember(key: "self_id", value: .integer(selfID)),
            JSONMember(key: "post_type", value: .string("message")), JSONMember(key: "message_type", value: .string(type.rawValue)),
            JSONMember(key: "user_id", value: .integer(selfID)), JSONMember(key: "message_id", value: .integer(messageID)),
        ]
        if let targetID { members.append(JSONMember(key: "target_id", value: .integer(targetID))) }
        if let groupID { members.append(JSONMember(key: "group_id", value: .integer(groupID))) }
        members += [JSONMember(key: "raw_message", value: .string(text)), JSONMember(key: "message", value: segments(text)),
                    JSONMember(key: "message_format", value: .string("array"))]
        return .object(members)
    }

    /// A message event from a user as an implementation posts it (group when `group` is given).
    public static func messageEvent(messageID: Int64, group: Int64?, user: Int64, text: String, nickname: String) -> JSONValue {
        var members: [JSONMember] = [
            JSONMember(key: "post_type", value: .string("message")),
            JSONMember(key: "message_type", value: .string(group == nil ? "private" : "group")),
            JSONMember(key: "sub_type", value: .string(group == nil ? "friend" : "normal")),
            JSONMember(key: "message_id", value: .integer(messageID)),
        ]
        if let group { members.append(JSONMember(key: "group_id", value: .integer(group))) }
        members += [
            JSONMember(key: "user_id", value: .integer(user)), JSONMember(key: "message", value: segments(text)),
            JSONMember(key: "raw_message", value: .string(text)), JSONMember(key: "font", value: .integer(0)),
            JSONMember(key: "sender", value: .members(["user_id": .integer(user), "nickname": .string(nickname)])),
        ]
        return .object(members)
    }

    /// The answer to an API call: `{"status", "retcode", "data", "echo"}`, the echo copied from the call.
    public static func response(to call: JSONValue, status: String, retcode: Int, data: JSONValue) -> JSONValue {
        var members = [JSONMember(key: "status", value: .string(status)), JSONMember(key: "retcode", value: .integer(retcode)),
                       JSONMember(key: "data", value: data)]
        if let echo = call["echo"] { members.append(JSONMember(key: "echo", value: echo)) }
        return .object(members)
    }

    /// Whether a message is an API call (`{"action", "params"}`).
    public static func isCall(_ json: JSONValue) -> Bool { json["action"]?.stringValue != nil }
}
