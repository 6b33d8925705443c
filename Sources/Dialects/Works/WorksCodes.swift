public import ByteStream

/// A display name in the two languages Works users read.
public struct DisplayName: Sendable, Hashable {
    public let english: String
    public let japanese: String
    public init(_ english: String, _ japanese: String) {
        self.english = english
        self.japanese = japanese
    }
}

/// A Works code: the raw value as sent, and names where the code is known. Unknown
/// codes are kept and shown as `unknown(<raw>)` (docs/protocols.md: several tables are guesses).
public protocol WorksCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible
where RawValue: Hashable & Sendable & CustomStringConvertible {
    static var names: [RawValue: DisplayName] { get }
}

extension WorksCode {
    public var displayName: DisplayName? { Self.names[rawValue] }
    public var isKnown: Bool { displayName != nil }
    /// `1 (message)`, or `unknown(77)`.
    public var description: String {
        String(writing: { appendDescription(to: &$0) })
    }

    /// ``description`` appended as UTF-8, for records written as bytes.
    public func appendDescription(to text: inout ByteWriter) {
        appendDescription(name: displayName, to: &text)
    }

    /// ``description`` appended, with the ``displayName`` the caller already looked up.
    public func appendDescription(name: DisplayName?, to text: inout ByteWriter) {
        Self.appendDescription(name: name, to: &text) { text in
            if let number = rawValue as? Int {
                DecimalText.append(Int64(number), to: &text)
            } else {
                text.append(contentsOf: rawValue.description)
            }
        }
    }

    /// ``description``'s form around the raw value, which `raw` writes.
    public static func appendDescription(name: DisplayName?, to text: inout ByteWriter, raw: (inout ByteWriter) -> Void) {
        if name == nil { text.append("unknown(") }
        raw(&text)
        if let name {
            text.append(" (")
            text.append(contentsOf: name.english)
        }
        text.append(UInt8(ascii: ")"))
    }
}

/// `nType` of a notification (docs/protocols.md §1).
public struct NotificationType: WorksCode {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let message = Self(rawValue: 1)
    public static let sticker = Self(rawValue: 18)
    public static let service = Self(rawValue: 100)

    public static let names: [Int: DisplayName] = [
        1: .init("message", "テキスト"), 3: .init("contact", "連絡先"), 4: .init("location", "位置情報"),
        5: .init("bot", "ボット"), 6: .init("official", "公式アカウント"), 7: .init("channel notice", "チャンネル通知"),
        8: .init("rich", "リッチメッセージ"), 10: .init("new rich", "新リッチメッセージ"), 11: .init("image", "画像"),
        12: .init("audio", "音声"), 13: .init("record", "録音"), 14: .init("video", "動画"),
        15: .init("old sticker", "旧スタンプ"), 16: .init("file", "ファイル"), 18: .init("sticker", "スタンプ"),
        27: .init("emoji", "絵文字"), 31: .init("call", "通話"), 32: .init("video call", "ビデオ通話"),
        33: .init("cancel call", "通話キャンセル"), 34: .init("screen share", "画面共有"),
        35: .init("screen share", "画面共有"), 40: .init("new mail", "新着メール"), 41: .init("badge", "バッジ"),
        50: .init("calendar", "カレンダー"), 51: .init("calendar", "カレンダー"), 52: .init("calendar", "カレンダー"),
        53: .init("calendar", "カレンダー"), 54: .init("calendar", "カレンダー"), 61: .init("API command", "APIコマンド"),
        100: .init("service", "サービス通知"),
    ]
}

/// `chType` of a channel.
public struct ChannelType: WorksCode {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let names: [Int: DisplayName] = [
        0: .init("unknown", "不明"), 1: .init("private", "1:1"), 2: .init("room", "ルーム"), 3: .init("team", "チーム"),
        4: .init("group", "グループ"), 5: .init("bot", "ボット"), 6: .init("external private", "外部1:1"),
        7: .init("external room", "外部ルーム"), 9: .init("external group", "外部グループ"),
        10: .init("external LINE group", "LINEグループ"), 12: .init("push-to-talk", "プッシュトゥトーク"),
    ]
}

/// `command` values of control messages, and the seed's message types.
public struct ControlCommand: WorksCode {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let read = Self(rawValue: 93004)

    public static let names: [Int: DisplayName] = [
        93001: .init("normal", "通常"), 93004: .init("read", "既読"), 93005: .init("recall", "送信取消"),
        93006: .init("large", "大容量"), 93007: .init("reaction", "リアクション"), 94001: .init("join", "参加"),
        94002: .init("quit", "退出"), 94003: .init("system", "システム"), 94004: .init("channel sync", "チャンネル同期"),
        94005: .init("kick", "強制退出"), 95001: .init("bot menu", "ボットメニュー"),
        101: .init("normal", "通常"), 102: .init("away", "離席"), 202: .init("leave", "退出"),
        203: .init("invite", "招待"), 204: .init("kick", "強制退出"),
    ]
}

/// `loc-key`: the localisation key that says what happened.
public struct LocKey: WorksCode {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let names: [String: DisplayName] = [
        "REV_MSG": .init("message received", "メッセージ受信"),
        "REV_MENTION_MSG": .init("mentioned", "メンション"),
        "REV_NOTE_WRITE": .init("note written", "ノート作成"),
        "REV_GROUP_CALL_INVITE": .init("group call invitation", "グループ通話への招待"),
    ]
}

extension LocKey {
    /// The names by the keys' UTF-8, for a key read in place from a payload.
    private static let namesByUTF8: [(key: [UInt8], name: DisplayName)] = names.map { (Array($0.key.utf8), $0.value) }

    /// The display name of the key whose UTF-8 is `key`: as `LocKey(rawValue:).displayName`
    /// gives it, without a String made and hashed.
    static func displayName(utf8 key: UnsafeRawBufferPointer) -> DisplayName? {
        namesByUTF8.withUnsafeBufferPointer { entries in
            for index in entries.indices where entries[index].key.count == key.count {
                if entries[index].key.withUnsafeBytes({ $0.elementsEqual(key) }) { return entries[index].name }
            }
            return nil
        }
    }
}

/// `stkType` of a sticker.
public struct StickerType: WorksCode {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let names: [String: DisplayName] = [
        "line": .init("LINE sticker", "LINEスタンプ"), "works": .init("Works sticker", "WORKSスタンプ"),
        "none": .init("no sticker", "なし"),
    ]
}

/// Presence as a bit set (the seed's `StatusFlag`; its 138/139/140 are combinations).
public struct PresenceStatus: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let pcOnline = Self(rawValue: 1)
    public static let away = Self(rawValue: 2)
    public static let mobileForeground = Self(rawValue: 4)
    public static let appInstalled = Self(rawValue: 8)
    public static let doNotDisturb = Self(rawValue: 16)
    public static let absence = Self(rawValue: 32)
    public static let calendar = Self(rawValue: 64)
    public static let webOnline = Self(rawValue: 128)
    public static let noPCPush = Self(rawValue: 256)

    static let bits: [(Self, DisplayName)] = [
        (.pcOnline, .init("PC online", "PCオンライン")), (.away, .init("away", "離席")),
        (.mobileForeground, .init("mobile foreground", "モバイル前面")), (.appInstalled, .init("app installed", "アプリ導入済み")),
        (.doNotDisturb, .init("do not disturb", "通知オフ")), (.absence, .init("absence", "不在")),
        (.calendar, .init("calendar", "予定あり")), (.webOnline, .init("web online", "Webオンライン")),
        (.noPCPush, .init("no PC push", "PCプッシュなし")),
    ]

    /// The names of the bits that are set; bits no table knows show as `bit N`.
    public var names: [String] {
        if rawValue == 0 { return ["offline"] }
        var names = Self.bits.filter { contains($0.0) }.map(\.1.english)
        let known = Self.bits.reduce(0) { $0 | $1.0.rawValue }
        var unknown = rawValue & ~known
        var bit = 0
        while unknown != 0 {
            if unknown & 1 != 0 { names.append("bit \(bit)") }
            unknown >>= 1
            bit += 1
        }
        return names
    }

    public var description: String { "\(rawValue) (\(names.joined(separator: " + ")))" }
}
