import ByteStream
public import MQTTWire
import NIOCore

/// Works MQTT (docs/protocols.md §1): MQTT 3.1.1 over WebSocket to `/wmqtt`, cookie-authenticated,
/// JSON notifications pushed in PUBLISH packets.
public struct WorksDialect: MQTTDialect {
    public let name = "works"

    public init() {}

    public func detect(_ evidence: DetectionEvidence) -> DetectionConfidence {
        var confidence = DetectionConfidence.none
        if let request = evidence.request {
            let host = request.headers.first(name: "Host") ?? ""
            let origin = request.headers.first(name: "Origin") ?? ""
            let cookie = request.headers.first(name: "Cookie") ?? ""
            if request.target.hasSuffix("/wmqtt") && host.contains("worksmobile") { return .certain }
            if request.target.hasSuffix("/wmqtt") || origin.contains("worksmobile.com") || cookie.contains("WORKS_") {
                confidence = .likely
            }
        }
        for packet in evidence.mqttPackets {
            switch packet {
            case .connect(let connect) where connect.clientIdentifier.hasPrefix("web-beejs_"):
                confidence = max(confidence, .likely)
            case .publish(let publish):
                if let json = try? JSONReader.parse(publish.payload), json["nType"] != nil || json["notification-id"] != nil {
                    confidence = max(confidence, .likely)
                }
            default: continue
            }
        }
        return confidence
    }

    public func annotate(_ publish: PublishPacket, redactor: Redactor?) -> AnnotatedMessage {
        let payload: WorksPayload
        do {
            payload = try WorksPayload.parse(publish.payload)
        } catch {
            return AnnotatedMessage(
                dialect: name, kind: "unparsed",
                summary: "\(publish.topicName): \(publish.payload.readableBytes) bytes that are not JSON",
                fields: [AnnotatedField("topic", publish.topicName)],
                warnings: ["\(error)"])
        }
        let topic = AnnotatedField("topic", publish.topicName)
        if case .notification(let n) = payload {
            // Most payloads: the topic goes first into a list made large enough once.
            return annotate(n, redactor: redactor, leading: topic)
        }
        var annotation = annotate(payload, redactor: redactor)
        annotation.fields.insert(topic, at: 0)
        return annotation
    }

    /// The annotation of a parsed payload.
    public func annotate(_ payload: WorksPayload, redactor: Redactor?) -> AnnotatedMessage {
        switch payload {
        case .notification(let n): return annotate(n, redactor: redactor)
        case .readReceipt(let r):
            var fields = [AnnotatedField("command", "\(r.command)")]
            fields.appendIfPresent("channel.number", r.channelNumber)
            fields.appendIfPresent("reader", r.readerID)
            fields.appendIfPresent("message.serial", r.messageSerial)
            fields += Self.fields(r.otherFields, redactor: redactor)
            let summary = "read receipt · channel \(r.channelNumber.map(String.init) ?? "?") · reader \(r.readerID.map(String.init) ?? "?") read up to message \(r.messageSerial.map(String.init) ?? "?")"
            return AnnotatedMessage(dialect: name, kind: "read-receipt", summary: summary, fields: fields)
        case .channelMessage(let m):
            var fields: [AnnotatedField] = []
            fields.appendIfPresent("message.type", m.messageTypeCode)
            fields.appendIfPresent("channel.number", m.channelNumber)
            fields.appendIfPresent("writer", m.writerName)
            fields.appendIfPresent("text", m.message)
            fields.appendIfPresent("created", m.createTime.map(Self.timestamp))
            fields.appendIfPresent("updated", m.updateTime.map(Self.timestamp))
            fields.appendIfPresent("members", m.memberCount)
            fields.appendIfPresent("message.tid", m.messageTID)
            fields.appendIfPresent("message.status", m.statusType)
            fields += Self.fields(m.otherFields, redactor: redactor)
            let summary = "channel message · channel \(m.channelNumber.map(String.init) ?? "?") · \(m.writerName ?? "?"): \(Self.oneLine(m.message ?? ""))"
            return AnnotatedMessage(dialect: name, kind: "channel-message", summary: summary, fields: fields)
        case .other(let json):
            let shown = redactor.map { $0.redact(json: json) } ?? json
            return AnnotatedMessage(dialect: name, kind: "other", summary: "unrecognised payload \(Self.oneLine(shown.description, limit: 120))",
                                    fields: [AnnotatedField("json", shown.description)])
        }
    }

    /// `leading`: a field shown first (the PUBLISH's topic).
    private func annotate(_ n: WorksNotification, redactor: Redactor?, leading: AnnotatedField? = nil) -> AnnotatedMessage {
        var fields: [AnnotatedField] = []
        fields.reserveCapacity(20 + n.locArgs.count + n.otherFields.count)
        if let leading { fields.append(leading) }
        fields.append(AnnotatedField("notification.type", "\(n.type)"))
        if let japanese = n.type.displayName?.japanese { fields.append(AnnotatedField("notification.type.ja", japanese)) }
        fields.appendIfPresent("loc-key", n.locKey.map { "\($0)" })
        fields.appendIfPresent("channel.number", n.channelNumber)
        fields.appendIfPresent("channel.type", n.channelType.map { "\($0)" })
        fields.appendIfPresent("channel.title", n.channelTitle)
        fields.appendIfPresent("sender.name", n.senderName)
        fields.appendIfPresent("sender.user", n.fromUserNumber)
        fields.appendIfPresent("text", n.text)
        for (index, arg) in n.locArgs.enumerated().dropFirst(2) { fields.append(AnnotatedField("loc-args\(index)", arg)) }
        fields.appendIfPresent("sticker", n.sticker.map { "\($0)" })
        if let extras = n.extras { fields.append(AnnotatedField("extras", (redactor?.redact(json: extras) ?? extras).description)) }
        fields.appendIfPresent("created", n.createTime.map(Self.timestamp))
        fields.appendIfPresent("notification.id", n.notificationID)
        fields.appendIfPresent("message.number", n.messageNumber)
        fields.appendIfPresent("user", n.userNumber)
        fields.appendIfPresent("domain", n.domainID)
        fields.appendIfPresent("badge", n.badge)
        fields.appendIfPresent("token", n.token.map { redactor?.pseudonym($0, kind: "token") ?? $0 })
        fields += Self.fields(n.otherFields, redactor: redactor)
        var warnings: [String] = []
        if let extrasError = n.extrasError { warnings.append("extras: \(extrasError)") }
        if !n.type.isKnown { warnings.append("notification type \(n.type.rawValue) is not in the code table") }

        var channel = "channel \(n.channelNumber.map(String.init) ?? "?")"
        if let title = n.channelTitle, !title.isEmpty { channel += " 「\(Self.oneLine(title, limit: Self.summaryTitleLimit))」" }
        if let type = n.channelType { channel += " (\(type.displayName?.english ?? "type \(type.rawValue)"))" }
        let body: String
        if let sticker = n.sticker {
            body = "\(sticker)"
        } else if let text = n.text {
            body = Self.oneLine(text, limit: Self.summaryTextLimit)
        } else {
            body = "[\(n.type.displayName?.english ?? "type \(n.type.rawValue)")]"
        }
        let what = n.locKey?.rawValue ?? "nType \(n.type.rawValue)"
        let summary = "\(what) · \(channel) · \(n.senderName ?? "?"): \(body)"
        return AnnotatedMessage(dialect: name, kind: "notification", summary: summary, fields: fields, warnings: warnings)
    }

    private static func fields(_ members: [JSONMember], redactor: Redactor?) -> [AnnotatedField] {
        members.map { member in
            let value = redactor.map { $0.redact(json: .object([member])) }?[member.key] ?? member.value
            return AnnotatedField(member.key, value.stringValue ?? value.description)
        }
    }

    /// Epoch milliseconds as UTC ISO 8601 with milliseconds.
    static func timestamp(_ milliseconds: Int64) -> String {
        // Written as bytes: one string per timestamp, not one per part.
        String(writing: { appendTimestamp(milliseconds, to: &$0) }, capacity: 24)
    }

    /// ``timestamp(_:)`` appended as bytes.
    static func appendTimestamp(_ milliseconds: Int64, to text: inout ByteWriter) {
        let (year, month, day, secondOfDay, millis) = civilTime(milliseconds)
        DecimalText.append(year, width: 4, to: &text)
        text.append(UInt8(ascii: "-"))
        DecimalText.append(month, width: 2, to: &text)
        text.append(UInt8(ascii: "-"))
        DecimalText.append(day, width: 2, to: &text)
        text.append(UInt8(ascii: "T"))
        DecimalText.append(secondOfDay / 3600, width: 2, to: &text)
        text.append(UInt8(ascii: ":"))
        DecimalText.append(secondOfDay / 60 % 60, width: 2, to: &text)
        text.append(UInt8(ascii: ":"))
        DecimalText.append(secondOfDay % 60, width: 2, to: &text)
        text.append(UInt8(ascii: "."))
        DecimalText.append(millis, width: 3, to: &text)
        text.append(UInt8(ascii: "Z"))
    }

    /// Epoch milliseconds as the UTC calendar date, the second of the day and the milliseconds.
    static func civilTime(_ milliseconds: Int64)
        -> (year: Int64, month: Int64, day: Int64, secondOfDay: Int64, millis: Int64)
    {
        // Floor division in integers: exact for every value (dividing as Doubles was not past
        // 2^53, and took a conversion each way for every timestamp written).
        func floorDivision(_ value: Int64, by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
            let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
            return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
        }
        let (seconds, millis) = floorDivision(milliseconds, by: 1000)
        // Civil from days (Howard Hinnant's algorithm): no Foundation needed in the codec.
        let (days, secondOfDay) = floorDivision(seconds, by: 86_400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, secondOfDay, millis)
    }

    /// How many characters of a channel title a notification's summary shows.
    static let summaryTitleLimit = 40
    /// How many characters of a message text a summary shows.
    static let summaryTextLimit = 200

    /// Text on one line: newlines shown as ⏎, cut at `limit` characters with an ellipsis.
    static func oneLine(_ text: String, limit: Int = summaryTextLimit) -> String {
        // Most texts are short and on one line: a byte scan settles it without the
        // Character-level work below.
        let utf8 = text.utf8
        let hasBreak = utf8.withContiguousStorageIfAvailable { $0.contains(0x0A) || $0.contains(0x0D) }
            ?? utf8.contains { $0 == 0x0A || $0 == 0x0D }
        if !hasBreak && utf8.count <= limit { return text }
        var flat = ""
        flat.reserveCapacity(utf8.count)
        var characters = 0
        for character in text {
            if characters == limit { return flat + "…" }
            switch character {
            case "\r\n", "\n", "\r": flat += "⏎"
            default: flat.append(character)
            }
            characters += 1
        }
        return flat
    }
}

extension [AnnotatedField] {
    mutating func appendIfPresent(_ name: String, _ value: (some CustomStringConvertible)?) {
        if let value { append(AnnotatedField(name, value.description)) }
    }
}
