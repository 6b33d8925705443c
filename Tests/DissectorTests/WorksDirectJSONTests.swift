import ByteStream
import Capture
import Dialects
import Dissector
@testable import Fuzzing
import Foundation
import MQTTWire
import NIOCore
import Testing

/// `WorksDialect.writeAnnotationJSON`, the JSON Lines fast path for notifications: whenever it
/// writes, it writes the bytes of the annotation made the long way, and it does write for the
/// payloads Works sends.
@Suite("Works notifications written straight as JSON")
struct WorksDirectJSONTests {
    static let redactor = Redactor(key: Array("test".utf8))

    /// The direct bytes, or nil when the fast path declined; `#expect`s they equal the long way's.
    static func direct(_ payload: String, topic: String = "notification/7", redactor: Redactor? = redactor,
                       sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        let publish = PublishPacket(qos: .atLeastOnce, topicName: topic, packetIdentifier: 1, payload: ByteBuffer(string: payload))
        var writer = ByteWriter()
        writer.append("x")
        let wrote = WorksDialect().writeAnnotationJSON(of: publish, redactor: redactor, to: &writer)
        let direct = writer.bytes
        guard wrote else {
            #expect(direct == Array("x".utf8), "declined, yet wrote", sourceLocation: sourceLocation)
            return nil
        }
        writer.truncate(to: 1)
        DecodeRecord.writeAnnotation(WorksDialect().annotate(publish, redactor: redactor), to: &writer)
        #expect(String(decoding: direct, as: UTF8.self) == String(decoding: writer.bytes, as: UTF8.self), sourceLocation: sourceLocation)
        return String(decoding: direct.dropFirst(), as: UTF8.self)
    }

    static let text = #"""
        {"nType":1,"chNo":300000175,"chType":2,"chTitle":"開発チーム","loc-key":"REV_MSG","loc-args0":"田中 太郎",\#
        "loc-args1":"明日のリリースの件 #7014","fromUserNo":110001,"createTime":1763776807137,\#
        "notification-id":"msg.300012345.7014","messageNo":7014,"userNo":110002,"domain_id":10,"badge":1,"token":"secret-token"}
        """#

    @Test func theCommonNotificationIsWrittenDirectly() throws {
        let json = try #require(Self.direct(Self.text))
        #expect(json.contains(#""summary":"REV_MSG · channel 300000175 「開発チーム」 (room) · 田中 太郎: 明日のリリースの件 #7014""#))
        #expect(json.contains(#""created":"2025-11-22T02:00:07.137Z""#))
        #expect(!json.contains("secret-token"), "the token is redacted")
        #expect(try #require(Self.direct(Self.text, redactor: nil)).contains(#""token":"secret-token""#))
        #expect(Self.direct(Self.text, topic: #"a"b\c"#) != nil, "a topic that needs escapes")
    }

    /// Shapes the fast path writes, each checked against the long way.
    @Test(arguments: [
        #"{"nType":18,"chNo":1}"#,
        #"{"nType":999,"chType":77,"loc-key":"NEW_KEY"}"#,  // unknown codes and a warning
        #"{"nType":null,"chNo":"12","badge":"+5","userNo":-0,"messageNo":1.5,"domain_id":1e3}"#,
        #"{"nType":1,"nType":2,"chNo":3,"chNo":4,"token":7}"#,  // the first of a repeated key; a numeric token is no string
        #"{"loc-args2":"c","loc-args0":"a","loc-args10":"k","loc-args1":5,"nType":1}"#,  // by index; a number as text
        #"{"nType":1,"loc-args+3":"x","loc-args-1":"y","loc-args007":"z"}"#,  // what Int reads
        #" { "nType" : 1 , "chTitle" : "" , "chNo" : 9223372036854775807 } "#,
        #"{"nType":1,"chNo":9223372036854775808,"createTime":-62135596800001}"#,  // overflow: no channel number
        #"{"nType":1,"chTitle":"\#(String(repeating: "x", count: 40))","loc-args1":"\#(String(repeating: "y", count: 200))"}"#,
    ])
    func shapesItWrites(payload: String) {
        #expect(Self.direct(payload) != nil)
        #expect(Self.direct(payload, redactor: nil) != nil)
    }

    /// Shapes it leaves to the long way (which may still annotate them).
    @Test(arguments: [
        #"{"nType":1,"loc-args1":"line\nbreak"}"#,  // an escape
        #"{"nType":18,"extras":"{\"stkType\":\"line\",\"pkgId\":\"1\",\"stkId\":\"2\"}"}"#,
        #"{"nType":1,"other":1}"#,  // a field the model keeps as "other"
        #"{"nType":1,"nested":{"a":1}}"#, #"{"nType":[1]}"#,
        #"{"nType":1,"chTitle":"\#(String(repeating: "x", count: 41))"}"#,  // cut by characters
        #"{"nType":1,"loc-args0":"a","loc-args1":"\#(String(repeating: "長", count: 67))"}"#,
        #"{"nType":1,"loc-args1":"a","loc-args01":"b"}"#,  // a repeated index
        #"{"nType":1,"loc-args":"a"}"#, #"{"nType":1,"loc-argsx":"a"}"#,
        #"{"chNo":1}"#, "{}", "[]", "", #"{"nType":1"#, #"{"nType":1,}"#, #"{"nType":01}"#, #"{"nType":1} x"#,
        "{\"nType\":1,\"chTitle\":\"\u{01}\"}", #"{"nType":1,"loc-args0":true}"#,
    ])
    func shapesItLeaves(payload: String) {
        #expect(Self.direct(payload) == nil)
    }

    @Test func invalidUTF8IsLeftToTheLongWay() {
        var bytes = Array(#"{"nType":1,"chTitle":"ab"}"#.utf8)
        bytes[bytes.count - 3] = 0xC3  // a lead byte with no continuation
        let publish = PublishPacket(qos: .atMostOnce, topicName: "t", payload: ByteBuffer(bytes: bytes))
        var out = ByteWriter()
        #expect(!WorksDialect().writeAnnotationJSON(of: publish, redactor: nil, to: &out))
        let written = out.count
        #expect(written == 0)
    }

    /// JSON Lines records of every committed capture decoded with the Works annotation left for
    /// later (as `wmq-decode --format jsonl` to a file does) equal the records of the tree with
    /// the annotation made: the direct path, the fallback and the non-Works events alike.
    @Test func deferredRecordsEqualTheTree() throws {
        let captures = URL(fileURLWithPath: SampleCapture.path).deletingLastPathComponent()
        var direct = 0
        // One memory of connection headers across all the files, as a writing thread keeps it:
        // the same connection ids come back with other endpoints, which must not be taken
        // for the ones kept.
        var memory = DecodeRecord.HeaderMemory()
        var writer = ByteWriter()
        for file in try FileManager.default.contentsOfDirectory(atPath: captures.path).sorted()
        where file.hasSuffix(".pcap") || file.hasSuffix(".pcapng") {
            var options = CaptureDissector.Options(redactor: Self.redactor)
            options.defersWorksAnnotation = true
            for event in try SampleCapture.decode(path: captures.appendingPathComponent(file).path, options: options).events {
                var record: [UInt8] = []
                DecodeRecord.write(event, to: &record)
                writer.removeAll()
                DecodeRecord.write(event, memory: &memory, to: &writer)
                let remembered = writer.bytes
                var made = event
                made.completeAnnotation()
                var tree: [UInt8] = []
                DecodeRecord.json(made).write(to: &tree)
                #expect(String(decoding: record, as: UTF8.self) == String(decoding: tree, as: UTF8.self), "\(file)")
                #expect(String(decoding: remembered, as: UTF8.self) == String(decoding: record, as: UTF8.self), "\(file): written with the header memory")
                if case .dissected(let dissected) = event.kind, dissected.deferredWorks != nil,
                   case .mqtt(.publish(let publish), _, _) = dissected.kind {
                    var bytes = ByteWriter()
                    if WorksDialect().writeAnnotationJSON(of: publish, redactor: Self.redactor, to: &bytes) { direct += 1 }
                }
            }
        }
        #expect(direct >= 2, "the committed Works captures' text notifications take the direct path")
    }

    /// The works fuzz target's generated payloads (every notification, channel and loc-key
    /// code, stickers, the other payload kinds, broken JSON): equal whenever written, and the
    /// notifications without stickers are written.
    @Test func generatedPayloads() {
        var written = 0
        let payloads = WorksSeeds.payloads()
        for payload in payloads where Self.direct(payload) != nil {
            written += 1
            _ = Self.direct(payload, redactor: nil)
        }
        let plainNotifications = payloads.filter { $0.hasPrefix(#"{"nType":"#) && !$0.contains("extras") && $0.contains("loc-args0") }
        #expect(written >= plainNotifications.count - 1 && plainNotifications.count > 20)
    }
}
