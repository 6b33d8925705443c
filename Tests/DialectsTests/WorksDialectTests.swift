@testable import Dialects
import MQTTWire
import NIOCore
import NIOHTTP1
import Testing
import WebSocketWire

enum WorksFixtures {
    static let text = #"""
        {"nType":1,"chNo":123456789,"chType":2,"chTitle":"開発チーム","loc-key":"REV_MSG","loc-args0":"田中 太郎",
         "loc-args1":"こんにちは\n明日の件です","fromUserNo":110001,"createTime":1700000000123,
         "notification-id":"msg.123456789.42","messageNo":42,"badge":3,"token":"tok-SECRET-1","ocn":7,"sType":"x"}
        """#
    static let sticker = #"""
        {"nType":18,"chNo":555,"chType":1,"loc-key":"REV_MSG","loc-args0":"Alice",
         "extras":"{\"stkType\":\"line\",\"pkgId\":\"11537\",\"stkId\":\"52002734\",\"stkOpt\":\"A\"}",
         "notification-id":"msg.555.7"}
        """#
    static let readReceipt = #"{"command":93004,"chNo":555,"readerId":110002,"msgSn":77,"extra":"kept"}"#
    static let channelMessage = #"""
        {"msgTypeCode":1,"chNo":42,"msg":"hi all","writerInfo":{"name":"Bob"},"ctime":0,"mbrCnt":5,"msgTid":"t-1"}
        """#

    static func publish(_ json: String) -> PublishPacket {
        PublishPacket(qos: .atLeastOnce, topicName: "notification", packetIdentifier: 1, payload: ByteBuffer(string: json))
    }
}

@Suite("Works dialect")
struct WorksDialectTests {
    let dialect = WorksDialect()

    @Test func textNotification() throws {
        guard case .notification(let n) = try WorksPayload.parse(ByteBuffer(string: WorksFixtures.text)) else {
            Issue.record("not a notification")
            return
        }
        #expect(n.type == .message)
        #expect(n.channelNumber == 123_456_789)
        #expect(n.channelType?.displayName?.english == "room")
        #expect(n.senderName == "田中 太郎")
        #expect(n.text == "こんにちは\n明日の件です")
        #expect(n.otherFields.map(\.key) == ["ocn", "sType"])  // unknown fields kept, in order
        let annotation = dialect.annotate(WorksFixtures.publish(WorksFixtures.text), redactor: nil)
        #expect(annotation.kind == "notification")
        #expect(annotation.summary == "REV_MSG · channel 123456789 「開発チーム」 (room) · 田中 太郎: こんにちは⏎明日の件です")
        #expect(annotation.field("notification.type.ja") == "テキスト")
        #expect(annotation.field("created") == "2023-11-14T22:13:20.123Z")
        #expect(annotation.field("ocn") == "7")
        #expect(annotation.field("token") == "tok-SECRET-1")
    }

    @Test func stickerFromExtras() throws {
        let annotation = dialect.annotate(WorksFixtures.publish(WorksFixtures.sticker), redactor: nil)
        #expect(annotation.summary == "REV_MSG · channel 555 (private) · Alice: [sticker line 11537/52002734 A]")
        guard case .notification(let n) = try WorksPayload.parse(ByteBuffer(string: WorksFixtures.sticker)) else { return }
        #expect(n.sticker?.type.displayName?.japanese == "LINEスタンプ")
        #expect(n.sticker?.stickerID == "52002734")
    }

    @Test func brokenExtrasIsAWarningNotAFailure() {
        let json = #"{"nType":18,"chNo":1,"loc-args0":"A","extras":"{not json"}"#
        let annotation = dialect.annotate(WorksFixtures.publish(json), redactor: nil)
        #expect(annotation.kind == "notification")
        #expect(annotation.warnings.first?.hasPrefix("extras: JSON syntax error at byte 1") == true)
    }

    @Test func readReceiptAndChannelMessage() {
        let read = dialect.annotate(WorksFixtures.publish(WorksFixtures.readReceipt), redactor: nil)
        #expect(read.kind == "read-receipt")
        #expect(read.summary == "read receipt · channel 555 · reader 110002 read up to message 77")
        #expect(read.field("extra") == "kept")
        let message = dialect.annotate(WorksFixtures.publish(WorksFixtures.channelMessage), redactor: nil)
        #expect(message.kind == "channel-message")
        #expect(message.summary == "channel message · channel 42 · Bob: hi all")
        #expect(message.field("created") == "1970-01-01T00:00:00.000Z")
    }

    @Test func unknownCodesAreKeptRaw() {
        let json = #"{"nType":77,"chType":99,"loc-key":"REV_NEW_THING","chNo":1,"loc-args0":"A"}"#
        let annotation = dialect.annotate(WorksFixtures.publish(json), redactor: nil)
        #expect(annotation.field("notification.type") == "unknown(77)")
        #expect(annotation.field("channel.type") == "unknown(99)")
        #expect(annotation.field("loc-key") == "unknown(REV_NEW_THING)")
        #expect(annotation.summary == "REV_NEW_THING · channel 1 (type 99) · A: [type 77]")
        #expect(annotation.warnings == ["notification type 77 is not in the code table"])
    }

    @Test func notJSON() {
        let annotation = dialect.annotate(
            PublishPacket(topicName: "t", payload: ByteBuffer(bytes: [0xFF, 0x00])), redactor: nil)
        #expect(annotation.kind == "unparsed")
        #expect(annotation.warnings.first?.contains("byte 0") == true)
    }

    @Test(arguments: [
        (0, "offline"), (1, "PC online"), (138, "away + app installed + web online"),
        (139, "PC online + away + app installed + web online"), (140, "mobile foreground + app installed + web online"),
        (1024 + 2, "away + bit 10"),
    ])
    func presenceBits(raw: Int, names: String) {
        #expect(PresenceStatus(rawValue: raw).names.joined(separator: " + ") == names)
    }

    @Test func codeTablesHaveBothLanguages() {
        for table in [NotificationType.names, ChannelType.names, ControlCommand.names] {
            for (_, name) in table {
                #expect(!name.english.isEmpty && !name.japanese.isEmpty)
            }
        }
        #expect(ControlCommand(rawValue: 93005).description == "93005 (recall)")
    }

    @Test func detection() {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "jp1-web-noti.worksmobile.com")
        let request = HTTPUpgradeRequest(method: .GET, target: "/wmqtt", version: .http1_1, headers: headers, range: 0..<1)
        #expect(dialect.detect(DetectionEvidence(request: request)) == .certain)
        let connect = MQTTPacket.connect(ConnectPacket(keepAlive: 50, clientIdentifier: "web-beejs_0123456789ab", username: "dummy"))
        #expect(dialect.detect(DetectionEvidence(mqttPackets: [connect])) == .likely)
        #expect(dialect.detect(DetectionEvidence(mqttPackets: [.publish(WorksFixtures.publish(WorksFixtures.text))])) == .likely)
        #expect(dialect.detect(DetectionEvidence(mqttPackets: [.publish(WorksFixtures.publish(#"{"x":1}"#))])) == .none)
    }
}

@Suite("Redaction")
struct RedactionTests {
    @Test func secretQueryParametersInATarget() {
        let redactor = Redactor(key: Array("k".utf8))
        #expect(redactor.redact(target: "/ws/?access_token=abc&x=1") == "/ws/?access_token=\(redactor.pseudonym("abc", kind: "token"))&x=1")
        #expect(redactor.redact(target: "/ws/?Token=t") == "/ws/?Token=\(redactor.pseudonym("t", kind: "token"))")
        #expect(redactor.redact(target: "/wmqtt") == "/wmqtt" && redactor.redact(target: "/a?b=c&d") == "/a?b=c&d")
    }

    @Test func pseudonymsAreStablePerKeyAndHideTheSecret() {
        let one = Redactor(key: Array("key-one".utf8))
        let two = Redactor(key: Array("key-two".utf8))
        #expect(one.pseudonym("tok-SECRET-1", kind: "token") == one.pseudonym("tok-SECRET-1", kind: "token"))
        #expect(one.pseudonym("tok-SECRET-1", kind: "token") != one.pseudonym("tok-SECRET-2", kind: "token"))
        #expect(one.pseudonym("tok-SECRET-1", kind: "token") != two.pseudonym("tok-SECRET-1", kind: "token"))
        #expect(one.pseudonym("x", kind: "token").hasPrefix("‹token:"))
    }

    @Test func worksAnnotationRedactsTheToken() {
        let redactor = Redactor(key: Array("k".utf8))
        let annotation = WorksDialect().annotate(WorksFixtures.publish(WorksFixtures.text), redactor: redactor)
        #expect(annotation.field("token") == redactor.pseudonym("tok-SECRET-1", kind: "token"))
        #expect(!annotation.fields.contains { $0.value.contains("SECRET") })
    }

    @Test func headersKeepNamesNotValues() {
        let redactor = Redactor(key: Array("k".utf8))
        var headers = HTTPHeaders()
        headers.add(name: "Cookie", value: "WORKS_SES=abc; NEO_SES=def")
        headers.add(name: "Authorization", value: "Bearer s3cr3t")
        headers.add(name: "Origin", value: "https://talk.worksmobile.com")
        let redacted = redactor.redact(headers: headers)
        let cookie = redacted.first(name: "Cookie") ?? ""
        #expect(cookie.hasPrefix("WORKS_SES=‹cookie:"))
        #expect(cookie.contains("; NEO_SES=‹cookie:"))
        #expect(!cookie.contains("abc") && !cookie.contains("def"))
        #expect(redacted.first(name: "Authorization")?.hasPrefix("Bearer ‹credential:") == true)
        #expect(redacted.first(name: "Origin") == "https://talk.worksmobile.com")
    }

    @Test func nestedJSONSecretsAndMQTTPasswords() {
        let redactor = Redactor(key: Array("k".utf8))
        let json = JSONValue.object([JSONMember(key: "a", value: .array([.object([JSONMember(key: "Token", value: .string("t"))])]))])
        #expect(!redactor.redact(json: json).description.contains("\"t\""))
        let connect = ConnectPacket(clientIdentifier: "c", username: "u", password: ByteBuffer(string: "hunter2"))
        #expect(redactor.redact(connect: connect).password != ByteBuffer(string: "hunter2"))
    }
}

@Suite("Works timestamps")
struct WorksTimestampTests {
    /// The text the timestamps were written as before they were written as bytes: String(value)
    /// with zeros in front (the sign counted) — the oracle for every value, extremes included.
    static func reference(_ milliseconds: Int64) -> String {
        let (year, month, day, secondOfDay, millis) = WorksDialect.civilTime(milliseconds)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(millis, 3))Z"
    }

    @Test func knownInstants() {
        #expect(WorksDialect.timestamp(1_700_000_000_123) == "2023-11-14T22:13:20.123Z")
        #expect(WorksDialect.timestamp(0) == "1970-01-01T00:00:00.000Z")
        #expect(WorksDialect.timestamp(-1) == "1969-12-31T23:59:59.999Z")
    }

    /// The civil date of random instants from year -2000 to 4000 against one counted by walking
    /// whole years and months from 1970 (proleptic Gregorian, as ISO 8601 has it), with the
    /// extremes of Int64, where dividing as Doubles once went wrong, kept in range.
    @Test func civilTimeAgainstCountedDays() {
        var generator = SystemRandomNumberGenerator()
        func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }
        var values: [Int64] = [0, -1, 86_399_999, 86_400_000, -86_400_000, -86_400_001]
        for _ in 0..<500 { values.append(Int64.random(in: -125_000_000_000_000...64_000_000_000_000, using: &generator)) }
        for value in values {
            var days = value / 86_400_000
            var rest = value % 86_400_000
            if rest < 0 {
                days -= 1
                rest += 86_400_000
            }
            var year: Int64 = 1970
            while days < 0 {
                year -= 1
                days += isLeap(year) ? 366 : 365
            }
            while days >= (isLeap(year) ? 366 : 365) {
                days -= isLeap(year) ? 366 : 365
                year += 1
            }
            let lengths: [Int64] = [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            var month: Int64 = 1
            while days >= lengths[Int(month - 1)] {
                days -= lengths[Int(month - 1)]
                month += 1
            }
            let civil = WorksDialect.civilTime(value)
            #expect(civil.year == year && civil.month == month && civil.day == days + 1, "\(value)")
            #expect(civil.secondOfDay == rest / 1000 && civil.millis == rest % 1000, "\(value)")
        }
        for extreme in [Int64.max, Int64.min, Int64.max - 1, Int64.min + 1] {
            let civil = WorksDialect.civilTime(extreme)
            #expect((0..<1000).contains(civil.millis) && (0..<86_400).contains(civil.secondOfDay), "\(extreme)")
            #expect((1...12).contains(civil.month) && (1...31).contains(civil.day), "\(extreme)")
        }
    }

    @Test func everyValueAsBefore() {
        var generator = SystemRandomNumberGenerator()
        var values: [Int64] = [0, 1, -1, 999, 1000, -1000, 86_399_999, -62_135_596_800_001, -62_167_219_200_000,
                               -100_000_000_000_000, 253_402_300_799_999, 9_000_000_000_000_000, -9_000_000_000_000_000]
        for _ in 0..<20_000 { values.append(Int64.random(in: -80_000_000_000_000...80_000_000_000_000, using: &generator)) }
        for value in values {
            #expect(WorksDialect.timestamp(value) == Self.reference(value), "\(value)")
        }
    }
}

/// The scan of top-level keys that lets generic JSON pass unannotated: it may say "maybe"
/// wrongly (the full reader then decides), never "no" for a Works kind. The fuzz target
/// `works` checks the same on every input it makes.
@Suite("Works key scan")
struct WorksKeyScanTests {
    @Test(arguments: [
        (#"{"nType":1,"loc-key":"REV_MSG"}"#, true),
        (#" { "room" : "a", "command" : 93004 }"#, true),
        (#"{"msgTypeCode":1}"#, true),
        (#"{"text":"{\"nType\":1}","user":{"nType":1},"list":[{"msgTypeCode":1},"]"]}"#, false),
        (#"{"id":"m-1","room":"room-3","text":"hello } { ] [ \\ \" done","n":12.5,"ok":true,"x":null}"#, false),
        (#"[{"nType":1}]"#, false),
        (#""nType""#, false),
        (#"{}"#, false),
        (#"{"a":"ends in a backslash \\","nType":1}"#, true),   // an escaped backslash, then the closing quote
        (#"{"a":"an escaped \" quote","b":2}"#, false),
        (#"{"n\u0054ype":1}"#, true),     // an escaped key: the reader decides
        (#"{"a":1 "b":2}"#, true),         // broken syntax: the reader decides
        (#"{"a":"unterminated"#, true),
    ])
    func scan(json: String, expected: Bool) {
        #expect(WorksPayload.mayBeWorksKind(ByteBuffer(string: json)) == expected, "\(json)")
    }

    /// Never "no" for what the full reader routes to a Works kind.
    @Test func neverPassesOverAWorksKind() throws {
        let samples = [#"{"nType":18,"chNo":3}"#, #"{"x":[1,{"y":"}"}],"command":93004,"chNo":1}"#, #"{"a":{"b":{"c":[]}},"msgTypeCode":2}"#]
        for sample in samples {
            let payload = ByteBuffer(string: sample)
            let kind = try WorksPayload.parse(payload)
            if case .other = kind { Issue.record("\(sample) is no Works kind") }
            #expect(WorksPayload.mayBeWorksKind(payload))
        }
    }
}
