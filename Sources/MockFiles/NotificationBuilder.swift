public import Dialects
public import NIOCore

/// Builds Works notification payloads (docs/protocols.md §1) from the simple JSON frontend
/// developers type: `{"channel": 42, "sender": "Alice", "text": "Hello"}`, or with
/// `"sticker": {"type": "line", "package": "1", "id": "2"}` instead of `text`. Anything else in
/// the object (`nType`, `chTitle`, …) is copied into the payload as given.
public struct NotificationBuilder: Sendable {
    private var counter = 0

    public init() {}

    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    /// A read receipt payload (command 93004): `reader` read `channel` up to `messageSerial`.
    public static func readReceipt(channel: Int64, reader: Int64, messageSerial: Int64) -> ByteBuffer {
        let receipt: JSONValue = .object([
            JSONMember(key: "command", value: .number("93004")), JSONMember(key: "chNo", value: .number(String(channel))),
            JSONMember(key: "readerId", value: .number(String(reader))), JSONMember(key: "msgSn", value: .number(String(messageSerial))),
        ])
        var bytes: [UInt8] = []
        receipt.write(to: &bytes)
        return ByteBuffer(bytes: bytes)
    }

    /// What is wrong with a notification request, before anything is built: a channel that is
    /// no number, a sender that is no text, neither text nor sticker.
    public static func check(_ request: JSONValue) throws(Refusal) {
        guard request.members != nil else { throw Refusal(description: "a notification is a JSON object") }
        if let channel = request["channel"], channel.intValue == nil {
            throw Refusal(description: "\"channel\" is a channel number, such as 300012345, not \(channel)")
        }
        if let sender = request["sender"], sender.stringValue == nil {
            throw Refusal(description: "\"sender\" is a name in quotes, not \(sender)")
        }
        if let sticker = request["sticker"] {
            guard sticker.members != nil else { throw Refusal(description: "\"sticker\" is an object: {\"type\", \"package\", \"id\"}") }
        } else {
            guard let text = request["text"] else { throw Refusal(description: "a notification needs \"text\" or \"sticker\"") }
            guard text.stringValue != nil else { throw Refusal(description: "\"text\" is text in quotes, not \(text)") }
        }
    }

    public mutating func payload(from request: JSONValue, now milliseconds: Int64) throws(Refusal) -> ByteBuffer {
        try Self.check(request)
        guard let members = request.members else { throw Refusal(description: "a notification is a JSON object") }
        counter += 1
        var out: [JSONMember] = []
        func add(_ key: String, _ value: JSONValue) { out.append(JSONMember(key: key, value: value)) }
        let sticker = request["sticker"]
        add("nType", .number(sticker == nil ? "1" : "18"))
        add("chNo", request["channel"] ?? .number("1"))
        add("chType", .number("2"))
        add("loc-key", .string("REV_MSG"))
        add("loc-args0", request["sender"] ?? .string("wmq-mock"))
        if let sticker {
            guard sticker.members != nil else { throw Refusal(description: "\"sticker\" is an object: {\"type\", \"package\", \"id\"}") }
            let extras: JSONValue = .object([
                JSONMember(key: "stkType", value: sticker["type"] ?? .string("line")),
                JSONMember(key: "pkgId", value: .string(sticker["package"]?.stringValue ?? sticker["package"]?.description ?? "1")),
                JSONMember(key: "stkId", value: .string(sticker["id"]?.stringValue ?? sticker["id"]?.description ?? "1")),
            ])
            add("loc-args1", .string("(sticker)"))
            add("extras", .string(extras.description))
        } else {
            guard let text = request["text"] else { throw Refusal(description: "a notification needs \"text\" or \"sticker\"") }
            add("loc-args1", text)
        }
        add("createTime", .number(String(milliseconds)))
        add("notification-id", .string("msg.mock.\(milliseconds).\(counter)"))
        let built: Set<String> = ["channel", "sender", "text", "sticker"]
        for member in members where !built.contains(member.key) {
            if let index = out.firstIndex(where: { $0.key == member.key }) {
                out[index] = member
            } else {
                out.append(member)
            }
        }
        var bytes: [UInt8] = []
        JSONValue.object(out).write(to: &bytes)
        return ByteBuffer(bytes: bytes)
    }
}
