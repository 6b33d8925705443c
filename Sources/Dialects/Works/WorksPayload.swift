public import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A sticker, from a notification's `extras` (docs/protocols.md §1: `{stkType, pkgId, stkId, stkOpt?, pkgVer?}`).
public struct StickerInfo: Sendable, Hashable, CustomStringConvertible {
    public var type: StickerType
    public var packageID: String
    public var stickerID: String
    public var options: String?
    public var packageVersion: String?

    /// nil when `extras` does not describe a sticker.
    public init?(extras: JSONValue) {
        guard let type = extras["stkType"]?.stringValue,
              let packageID = extras["pkgId"].flatMap(Self.text),
              let stickerID = extras["stkId"].flatMap(Self.text) else { return nil }
        self.type = StickerType(rawValue: type)
        self.packageID = packageID
        self.stickerID = stickerID
        options = extras["stkOpt"].flatMap(Self.text)
        packageVersion = extras["pkgVer"].flatMap(Self.text)
    }

    private static func text(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text), .number(let text): text
        default: nil
        }
    }

    public var description: String {
        var text = "[sticker \(type.rawValue) \(packageID)/\(stickerID)"
        if let options, !options.isEmpty { text += " \(options)" }
        return text + "]"
    }
}

/// A push notification (`nType` present). Modelled fields are typed; every other field
/// is kept, in order, in ``otherFields``.
public struct WorksNotification: Sendable, Hashable {
    public var type: NotificationType
    public var channelNumber: Int64?
    public var channelType: ChannelType?
    public var channelTitle: String?
    public var locKey: LocKey?
    /// `loc-args0`, `loc-args1`, …: the sender's name, then the text.
    public var locArgs: [String]
    public var extras: JSONValue?
    /// Why `extras` (a JSON string inside the JSON) did not parse, if it did not.
    public var extrasError: JSONError?
    public var sticker: StickerInfo?
    public var fromUserNumber: Int64?
    /// Epoch milliseconds.
    public var createTime: Int64?
    public var notificationID: String?
    public var messageNumber: Int64?
    public var userNumber: Int64?
    public var domainID: Int64?
    public var badge: Int64?
    /// A secret: redact before showing.
    public var token: String?
    public var otherFields: [JSONMember]

    public var senderName: String? { locArgs.first }
    public var text: String? { locArgs.count > 1 ? locArgs[1] : nil }

    init(_ members: [JSONMember], object: JSONValue) {
        // One pass over the members, not a search per field: the first of a repeated key counts
        // (as `object[key]` reads it), the others are dropped like it.
        var seen: UInt16 = 0
        func first(_ field: UInt16) -> Bool {
            defer { seen |= 1 << field }
            return seen & (1 << field) == 0
        }
        var notificationType: Int64?
        // loc-args0…N in numeric order, wherever they stand in the object.
        var args: [(Int, String)] = []
        var others: [JSONMember] = []
        for member in members {
            let value = member.value
            switch member.key {
            case "nType": if first(0) { notificationType = value.intValue }
            case "chNo": if first(1) { channelNumber = value.intValue }
            case "chType": if first(2) { channelType = value.intValue.map { ChannelType(rawValue: Int($0)) } }
            case "chTitle": if first(3) { channelTitle = value.stringValue }
            case "loc-key": if first(4) { locKey = value.stringValue.map(LocKey.init(rawValue:)) }
            case "fromUserNo": if first(5) { fromUserNumber = value.intValue }
            case "createTime": if first(6) { createTime = value.intValue }
            case "notification-id": if first(7) { notificationID = value.stringValue }
            case "messageNo": if first(8) { messageNumber = value.intValue }
            case "userNo": if first(9) { userNumber = value.intValue }
            case "domain_id": if first(10) { domainID = value.intValue }
            case "badge": if first(11) { badge = value.intValue }
            case "token": if first(12) { token = value.stringValue }
            case "extras": break  // read below
            default:
                if member.key.hasPrefix("loc-args"), let index = Int(member.key.dropFirst(8)) {
                    args.append((index, value.stringValue ?? value.description))
                } else {
                    others.append(member)
                }
            }
        }
        type = NotificationType(rawValue: Int(notificationType ?? -1))
        locArgs = args.sorted { $0.0 < $1.0 }.map(\.1)
        otherFields = others
        switch object["extras"] {
        case .string(let text)?:
            do {
                let parsed = try JSONReader.parse(text)
                extras = parsed
                sticker = StickerInfo(extras: parsed)
            } catch {
                extrasError = error
            }
        case let value?:
            extras = value
            sticker = StickerInfo(extras: value)
        case nil:
            break
        }
    }
}

/// A read receipt (`command` 93004): who read the channel up to which message.
public struct ReadReceipt: Sendable, Hashable {
    public var command: ControlCommand
    public var channelNumber: Int64?
    public var readerID: Int64?
    public var messageSerial: Int64?
    public var otherFields: [JSONMember]

    init(_ members: [JSONMember], object: JSONValue) {
        command = ControlCommand(rawValue: Int(object["command"]?.intValue ?? 0))
        channelNumber = object["chNo"]?.intValue
        readerID = object["readerId"]?.intValue
        messageSerial = object["msgSn"]?.intValue
        otherFields = members.filter { !["command", "chNo", "readerId", "msgSn"].contains($0.key) }
    }
}

/// A channel message (`msgTypeCode` present; its fields are a guess in docs/protocols.md).
public struct ChannelMessage: Sendable, Hashable {
    public var messageTypeCode: Int64?
    public var channelNumber: Int64?
    public var message: String?
    public var writerName: String?
    public var createTime: Int64?
    public var updateTime: Int64?
    public var memberCount: Int64?
    public var messageTID: String?
    public var statusType: String?
    public var otherFields: [JSONMember]

    static let modelledKeys: Set<String> = [
        "msgTypeCode", "chNo", "msg", "writerInfo", "ctime", "utime", "mbrCnt", "msgTid", "msgStatusType",
    ]

    init(_ members: [JSONMember], object: JSONValue) {
        messageTypeCode = object["msgTypeCode"]?.intValue
        channelNumber = object["chNo"]?.intValue
        message = object["msg"]?.stringValue
        writerName = object["writerInfo"]?["name"]?.stringValue
        createTime = object["ctime"]?.intValue
        updateTime = object["utime"]?.intValue
        memberCount = object["mbrCnt"]?.intValue
        messageTID = object["msgTid"].map { $0.stringValue ?? $0.description }
        statusType = object["msgStatusType"].map { $0.stringValue ?? $0.description }
        otherFields = members.filter { !Self.modelledKeys.contains($0.key) }
    }
}

/// A Works PUBLISH payload, routed by docs/protocols.md §1: `nType` → notification;
/// else `command == 93004` → read receipt; else `msgTypeCode` → channel message.
public enum WorksPayload: Sendable, Hashable {
    case notification(WorksNotification)
    case readReceipt(ReadReceipt)
    case channelMessage(ChannelMessage)
    /// Valid JSON that none of the rules matched; kept whole.
    case other(JSONValue)

    public init(json: JSONValue) {
        guard let members = json.members else {
            self = .other(json)
            return
        }
        if json["nType"] != nil {
            self = .notification(WorksNotification(members, object: json))
        } else if json["command"]?.intValue == Int64(ControlCommand.read.rawValue) {
            self = .readReceipt(ReadReceipt(members, object: json))
        } else if json["msgTypeCode"] != nil {
            self = .channelMessage(ChannelMessage(members, object: json))
        } else {
            self = .other(json)
        }
    }

    /// Parses a PUBLISH payload.
    public static func parse(_ payload: ByteBuffer) throws(JSONError) -> WorksPayload {
        WorksPayload(json: try JSONReader.parse(payload))
    }

    /// Whether the payload may be one of the Works kinds (a notification, a read receipt, a
    /// channel message): false only when it is not a JSON object with `nType`, `command` or
    /// `msgTypeCode` among its top-level keys, told by a scan of those keys that builds no
    /// value. Generic JSON of other MQTT traffic (chat messages of tens of kilobytes) is then
    /// passed over instead of read into a tree, written back and cut to a summary that nobody
    /// shows. Anything the scan is unsure of (an escaped key, odd syntax) says true, and the
    /// full reader decides.
    public static func mayBeWorksKind(_ payload: ByteBuffer) -> Bool {
        payload.withUnsafeReadableBytes { TopLevelKeyScan.mayHaveWorksKey($0) }
    }
}

/// The top-level keys of a JSON object, scanned in place (see ``WorksPayload/mayBeWorksKind(_:)``).
enum TopLevelKeyScan {
    static func mayHaveWorksKey(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        func skipSpace() {
            while index < count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
        }
        /// Past a string whose opening quote is at `index`; false if it does not end.
        /// Past a string whose opening quote is at `index`; false if it does not end. The next
        /// quote is found with memchr (chat texts run to tens of kilobytes), then the
        /// backslashes before it tell whether it is escaped.
        func skipString() -> Bool {
            guard let base = bytes.baseAddress else { return false }
            var from = index + 1
            while from < count {
                guard let found = memchr(base + from, Int32(UInt8(ascii: "\"")), count - from) else { return false }
                let quote = base.distance(to: UnsafeRawPointer(found))
                var backslashes = 0
                while quote - backslashes - 1 > index && bytes[quote - backslashes - 1] == UInt8(ascii: "\\") { backslashes += 1 }
                if backslashes % 2 == 0 {
                    index = quote + 1
                    return true
                }
                from = quote + 1
            }
            return false
        }
        skipSpace()
        guard index < count, bytes[index] == UInt8(ascii: "{") else { return false }
        index += 1
        while true {
            skipSpace()
            guard index < count else { return true }
            if bytes[index] == UInt8(ascii: "}") { return false }
            guard bytes[index] == UInt8(ascii: "\"") else { return true }
            let keyStart = index + 1
            guard skipString() else { return true }
            let key = UnsafeRawBufferPointer(rebasing: bytes[keyStart..<(index - 1)])
            if key.contains(UInt8(ascii: "\\")) { return true }
            // By length first: most keys are none of the three.
            if (key.count == 5 && key.elementsEqual("nType".utf8)) || (key.count == 7 && key.elementsEqual("command".utf8))
                || (key.count == 11 && key.elementsEqual("msgTypeCode".utf8)) {
                return true
            }
            skipSpace()
            guard index < count, bytes[index] == UInt8(ascii: ":") else { return true }
            index += 1
            skipSpace()
            // The value, skipped: nested containers by their depth, strings whole.
            var depth = 0
            while index < count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    guard skipString() else { return true }
                    if depth == 0 { break }
                    continue
                }
                if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                    depth += 1
                } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                    if depth == 0 { break }
                    depth -= 1
                    if depth == 0 {
                        index += 1
                        break
                    }
                } else if byte == UInt8(ascii: ","), depth == 0 {
                    break
                }
                index += 1
            }
            skipSpace()
            guard index < count else { return true }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "}") {
                return false
            } else {
                return true
            }
        }
    }
}
