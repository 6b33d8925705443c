public import ByteStream
public import MQTTWire
import NIOCore

extension WorksDialect {
    /// Appends the JSON object of `annotate(publish, redactor:)` (kind, summary, fields,
    /// warnings: the bytes `DecodeRecord` writes for that annotation) straight from the payload,
    /// for the payload nearly every Works PUBLISH carries: one flat notification object of
    /// strings and numbers, without escapes, `extras` or fields the model does not name.
    /// Anything else answers `false` with nothing written, and the caller annotates the long
    /// way. Made for `wmq-decode --format jsonl`, where building the annotation's strings was
    /// half of all the work; a test and the works fuzz target hold both ways byte-equal.
    public func writeAnnotationJSON(of publish: PublishPacket, redactor: Redactor?, to out: inout ByteWriter) -> Bool {
        publish.payload.withUnsafeReadableBytes { payload in
            guard let notification = FlatNotification(payload), notification.isShortEnough else { return false }
            notification.write(topic: publish.topicName, redactor: redactor, to: &out)
            return true
        }
    }
}

/// A notification payload read in place: where each field's value lies in the payload.
private struct FlatNotification {
    enum Value {
        case string(Range<Int>)
        case number(Range<Int>)
        /// true, false or null: neither a string nor a number to the model.
        case literal
    }

    let bytes: UnsafeRawBufferPointer
    // The first of each modelled key, as `WorksNotification` takes it.
    var type: Value?
    var channelNumber: Value?
    var channelType: Value?
    var channelTitle: Value?
    var locKey: Value?
    var fromUser: Value?
    var createTime: Value?
    var notificationID: Value?
    var messageNumber: Value?
    var user: Value?
    var domain: Value?
    var badge: Value?
    var token: Value?
    /// `loc-args0` and `loc-args1`: the text of each (a string's, or a number's as written).
    /// Nearly every notification has those two and no other, and keeping them apart from an
    /// array spares an allocation per notification.
    var argument0: Range<Int>?
    var argument1: Range<Int>?
    /// All the `loc-argsN` by N, in order, once one of them is neither 0 nor 1.
    var allArguments: [(index: Int, text: Range<Int>)]?

    /// The first `loc-args` in index order: the sender's name.
    var sender: Range<Int>? {
        if let allArguments { return allArguments.first?.text }
        return argument0 ?? argument1
    }

    /// The second `loc-args` in index order: the text.
    var message: Range<Int>? {
        if let allArguments { return allArguments.count > 1 ? allArguments[1].text : nil }
        return argument0 != nil ? argument1 : nil
    }

    /// nil unless `bytes` is a JSON object of the shape this fast path writes.
    init?(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        guard Self.read(into: &self) else { return nil }
    }

    /// Reads the members into `notification`, in place: the reading is done by a
    /// ``PayloadReader``, which holds only the bytes, because calling methods of this struct
    /// (over 300 bytes of fields) from its own initialiser copied all of it for every call.
    private static func read(into notification: inout FlatNotification) -> Bool {
        let reader = PayloadReader(bytes: notification.bytes)
        let bytes = notification.bytes
        var index = 0
        reader.skipWhitespace(&index)
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return false }
        index += 1
        while true {
            reader.skipWhitespace(&index)
            guard let key = reader.string(&index) else { return false }
            reader.skipWhitespace(&index)
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
            index += 1
            reader.skipWhitespace(&index)
            guard let value = reader.value(&index), notification.take(key, value) else { return false }
            reader.skipWhitespace(&index)
            guard index < bytes.count else { return false }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "}") {
                index += 1
                break
            } else {
                return false
            }
        }
        reader.skipWhitespace(&index)
        return index == bytes.count && notification.type != nil
    }

    private func text(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[range]) }

    private func key(_ range: Range<Int>, is name: StaticString) -> Bool {
        PayloadReader(bytes: bytes).key(range, is: name)
    }

    /// Files a member under its key; false for a member the fast path does not write
    /// (`extras`, fields the model keeps as "other", a repeated `loc-args` index).
    private mutating func take(_ key: Range<Int>, _ value: Value) -> Bool {
        func first(_ slot: inout Value?) -> Bool {
            if slot == nil { slot = value }
            return true
        }
        switch key.count {
        case 4: if self.key(key, is: "chNo") { return first(&channelNumber) }
        case 5:
            if self.key(key, is: "nType") { return first(&type) }
            if self.key(key, is: "token") { return first(&token) }
            if self.key(key, is: "badge") { return first(&badge) }
        case 6:
            if self.key(key, is: "chType") { return first(&channelType) }
            if self.key(key, is: "userNo") { return first(&user) }
        case 7:
            if self.key(key, is: "chTitle") { return first(&channelTitle) }
            if self.key(key, is: "loc-key") { return first(&locKey) }
        case 9:
            if self.key(key, is: "messageNo") { return first(&messageNumber) }
            if self.key(key, is: "domain_id") { return first(&domain) }
        case 10:
            if self.key(key, is: "fromUserNo") { return first(&fromUser) }
            if self.key(key, is: "createTime") { return first(&createTime) }
        case 15: if self.key(key, is: "notification-id") { return first(&notificationID) }
        default: break
        }
        // `loc-args` and what `Int` reads after it; the value shown as its text.
        guard key.count > 8, self.key(key.lowerBound..<(key.lowerBound + 8), is: "loc-args"),
              let index = Self.integer(text(key.lowerBound + 8..<key.upperBound)).flatMap({ Int(exactly: $0) }) else {
            return false
        }
        let argument: Range<Int>
        switch value {
        case .string(let range), .number(let range): argument = range
        case .literal: return false  // shown as `true`, `false` or `null` by the long way
        }
        if allArguments == nil, index == 0 || index == 1 {
            if index == 0 {
                guard argument0 == nil else { return false }
                argument0 = argument
            } else {
                guard argument1 == nil else { return false }
                argument1 = argument
            }
            return true
        }
        var all = allArguments ?? [argument0.map { (0, $0) }, argument1.map { (1, $0) }].compactMap { $0 }
        guard !all.contains(where: { $0.index == index }) else { return false }
        let position = all.firstIndex { $0.index > index } ?? all.endIndex
        all.insert((index, argument), at: position)
        allArguments = all
        return true
    }

    /// `Int64(text)`: an optional sign, then decimal digits, without overflow.
    static func integer(_ text: UnsafeRawBufferPointer) -> Int64? {
        var index = 0
        var negative = false
        if let sign = text.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            index = 1
        }
        guard index < text.count else { return nil }
        var value: Int64 = 0
        while index < text.count {
            let digit = text[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? times.subtractingReportingOverflow(Int64(digit))
                : times.addingReportingOverflow(Int64(digit))
            guard !overflow, !overflow2 else { return nil }
            value = next
            index += 1
        }
        return value
    }

    /// `JSONValue.intValue`: a number's or a string's text as an integer.
    private func intValue(_ value: Value?) -> Int64? {
        switch value {
        case .string(let range)?, .number(let range)?: Self.integer(text(range))
        default: nil
        }
    }

    /// `JSONValue.stringValue`: strings only.
    private func stringValue(_ value: Value?) -> Range<Int>? {
        if case .string(let range)? = value { return range }
        return nil
    }

    // MARK: Writing

    /// The bytes of `DecodeRecord`'s writing of `WorksDialect.annotate`'s notification: every
    /// string of the payload is written as it lies (it has no escapes, so its JSON is itself).
    func write(topic: String, redactor: Redactor?, to out: inout ByteWriter) {
        let type = NotificationType(rawValue: Int(intValue(self.type) ?? -1))
        let typeName = type.displayName
        let channelNumber = intValue(self.channelNumber)
        let channelType = intValue(self.channelType).map { ChannelType(rawValue: Int($0)) }
        let channelName = channelType?.displayName
        let title = stringValue(channelTitle)
        let locKeyText = stringValue(self.locKey)
        let locKeyName = locKeyText.flatMap { LocKey.displayName(utf8: text($0)) }
        let sender = self.sender
        let message = self.message

        // The summary's one-line forms of the title and the text are the strings themselves
        // (``isShortEnough``).
        out.append("{\"kind\":\"notification\",\"summary\":\"")
        if let locKeyText { out.append(text(locKeyText)) } else {
            out.append("nType ")
            DecimalText.append(Int64(type.rawValue), to: &out)
        }
        out.append(" · channel ")
        if let channelNumber { DecimalText.append(channelNumber, to: &out) } else { out.append(UInt8(ascii: "?")) }
        if let title, !title.isEmpty {
            out.append(" 「")
            out.append(text(title))
            out.append("」")
        }
        if let channelType {
            out.append(" (")
            if let channelName { out.append(contentsOf: channelName.english) } else {
                out.append("type ")
                DecimalText.append(Int64(channelType.rawValue), to: &out)
            }
            out.append(UInt8(ascii: ")"))
        }
        out.append(" · ")
        if let sender { out.append(text(sender)) } else { out.append(UInt8(ascii: "?")) }
        out.append(": ")
        if let message {
            out.append(text(message))
        } else {
            out.append(UInt8(ascii: "["))
            if let typeName { out.append(contentsOf: typeName.english) } else {
                out.append("type ")
                DecimalText.append(Int64(type.rawValue), to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }

        out.append("\",\"fields\":{\"topic\":")
        JSONValue.writeString(topic, to: &out)
        out.append(",\"notification.type\":\"")
        type.appendDescription(name: typeName, to: &out)
        out.append(UInt8(ascii: "\""))
        if let typeName {
            out.append(",\"notification.type.ja\":\"")
            out.append(contentsOf: typeName.japanese)
            out.append(UInt8(ascii: "\""))
        }
        if let locKeyText {
            out.append(",\"loc-key\":\"")
            LocKey.appendDescription(name: locKeyName, to: &out) { $0.append(text(locKeyText)) }
            out.append(UInt8(ascii: "\""))
        }
        number("channel.number", channelNumber, to: &out)
        if let channelType {
            out.append(",\"channel.type\":\"")
            channelType.appendDescription(name: channelName, to: &out)
            out.append(UInt8(ascii: "\""))
        }
        field("channel.title", title, to: &out)
        field("sender.name", sender, to: &out)
        number("sender.user", intValue(fromUser), to: &out)
        field("text", message, to: &out)
        for (position, argument) in (allArguments ?? []).enumerated().dropFirst(2) {
            out.append(",\"loc-args")
            DecimalText.append(Int64(position), to: &out)
            out.append("\":\"")
            out.append(text(argument.text))
            out.append(UInt8(ascii: "\""))
        }
        if let created = intValue(createTime) {
            out.append(",\"created\":\"")
            WorksDialect.appendTimestamp(created, to: &out)
            out.append(UInt8(ascii: "\""))
        }
        field("notification.id", stringValue(notificationID), to: &out)
        number("message.number", intValue(messageNumber), to: &out)
        number("user", intValue(user), to: &out)
        number("domain", intValue(domain), to: &out)
        number("badge", intValue(badge), to: &out)
        if let token = stringValue(token) {
            out.append(",\"token\":\"")
            if let redactor { redactor.appendPseudonym(of: text(token), kind: "token", to: &out) } else {
                out.append(text(token))
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        if typeName == nil {
            out.append(",\"warnings\":[\"notification type ")
            DecimalText.append(Int64(type.rawValue), to: &out)
            out.append(" is not in the code table\"]")
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Whether the summary can show the title and the text as they are: `WorksDialect.oneLine`
    /// gives a string back unchanged when it is short enough in bytes (line breaks are escaped
    /// in JSON, so a string without escapes has none).
    var isShortEnough: Bool {
        let title = stringValue(channelTitle)?.count ?? 0
        let message = self.message?.count ?? 0
        return title <= WorksDialect.summaryTitleLimit && message <= WorksDialect.summaryTextLimit
    }

    private func field(_ name: StaticString, _ value: Range<Int>?, to out: inout ByteWriter) {
        guard let value else { return }
        out.append(",\"")
        out.append(name)
        out.append("\":\"")
        out.append(text(value))
        out.append(UInt8(ascii: "\""))
    }

    private func number(_ name: StaticString, _ value: Int64?, to out: inout ByteWriter) {
        guard let value else { return }
        out.append(",\"")
        out.append(name)
        out.append("\":\"")
        DecimalText.append(value, to: &out)
        out.append(UInt8(ascii: "\""))
    }
}

/// The JSON reading of a notification payload: only the bytes, cheap to pass around.
private struct PayloadReader {
    let bytes: UnsafeRawBufferPointer

    func skipWhitespace(_ index: inout Int) {
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            index += 1
        }
    }

    /// A string without escapes or control characters, in valid UTF-8: the range of its text.
    func string(_ index: inout Int) -> Range<Int>? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let base = bytes.baseAddress else { return nil }
        let start = index + 1
        var end = start
        var high: UInt64 = 0
        // Eight bytes at a time up to the first quote, backslash or control character (SWAR,
        // as `JSONValue.writeString` finds them: the lowest flagged byte is the first such).
        let ones: UInt64 = 0x0101_0101_0101_0101
        let tops: UInt64 = 0x8080_8080_8080_8080
        while end + 8 <= bytes.count {
            let word = UnsafeRawPointer(base + end).loadUnaligned(as: UInt64.self)
            let special = ((word &- ones &* 0x20) | ((word ^ (ones &* 0x22)) &- ones) | ((word ^ (ones &* 0x5C)) &- ones)) & ~word & tops
            if special != 0 {
                let ordinary = special.trailingZeroBitCount / 8
                high |= word & ((1 << (UInt64(ordinary) * 8)) &- 1)
                end += ordinary
                break
            }
            high |= word
            end += 8
        }
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "\"") { break }
            guard byte != UInt8(ascii: "\\"), byte >= 0x20 else { return nil }
            high |= UInt64(byte)
            end += 1
        }
        guard end < bytes.count else { return nil }
        if high & tops != 0 {
            var validator = UTF8Validator()
            guard validator.validate(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) == nil, validator.isComplete else {
                return nil
            }
        }
        index = end + 1
        return start..<end
    }

    func value(_ index: inout Int) -> FlatNotification.Value? {
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return string(&index).map { .string($0) }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return number(&index).map { .number($0) }
        case UInt8(ascii: "t"):
            return literal("true", &index) ? .literal : nil
        case UInt8(ascii: "f"):
            return literal("false", &index) ? .literal : nil
        case UInt8(ascii: "n"):
            return literal("null", &index) ? .literal : nil
        default:
            return nil  // objects and arrays: the long way
        }
    }

    /// A number by the grammar `JSONReader` reads.
    func number(_ index: inout Int) -> Range<Int>? {
        let start = index
        var at = index
        func digits() -> Int {
            let from = at
            while at < bytes.count, bytes[at] >= 0x30, bytes[at] <= 0x39 { at += 1 }
            return at - from
        }
        func next(is byte: UInt8) -> Bool { at < bytes.count && bytes[at] == byte }
        if next(is: UInt8(ascii: "-")) { at += 1 }
        if next(is: UInt8(ascii: "0")) {
            at += 1
        } else if digits() == 0 {
            return nil
        }
        if next(is: UInt8(ascii: ".")) {
            at += 1
            guard digits() > 0 else { return nil }
        }
        if next(is: UInt8(ascii: "e")) || next(is: UInt8(ascii: "E")) {
            at += 1
            if next(is: UInt8(ascii: "+")) || next(is: UInt8(ascii: "-")) { at += 1 }
            guard digits() > 0 else { return nil }
        }
        index = at
        return start..<at
    }

    func literal(_ word: StaticString, _ index: inout Int) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count, matches(at: index, word) else { return false }
        index += count
        return true
    }

    func key(_ range: Range<Int>, is name: StaticString) -> Bool {
        range.count == name.utf8CodeUnitCount && matches(at: range.lowerBound, name)
    }

    /// Whether the bytes at `index` are `word`'s (the caller checked they are in the payload).
    func matches(at index: Int, _ word: StaticString) -> Bool {
        for offset in 0..<word.utf8CodeUnitCount where bytes[index + offset] != word.utf8Start[offset] { return false }
        return true
    }
}
