import ByteStream
import Dialects
import Dissector
import MQTTWire
import NIOCore

/// Works payloads (PUBLISH payloads of the notification service) through the JSON
/// reader, the payload model, the annotator and detection. Oracles: whatever the reader
/// reads, written back as JSON, reads back equal; annotation and detection take any bytes;
/// a notification written straight as JSON is written as its annotation is.
enum WorksHarness {
    /// A fixed key, so that pseudonyms are the same on every run.
    static let redactor = Redactor(key: Array("wmq".utf8))

    static let works = FuzzTarget(
        name: "works", summary: "Works payload JSON reader, payload model, annotator and detection", maximumInputLength: 16_384
    ) { input throws(OracleViolation) in
        let payload = ByteBuffer(bytes: input)
        if let json = try? JSONReader.parse(payload) {
            try JSONHarness.readsBack(json, target: "works")
        }
        let dialect = WorksDialect()
        let publish = PublishPacket(qos: .atLeastOnce, topicName: "notification", packetIdentifier: 1, payload: payload)
        let annotation = dialect.annotate(publish, redactor: redactor)
        guard !annotation.summary.isEmpty else {
            throw OracleViolation(target: "works", oracle: "every annotation has a summary", detail: "kind \(annotation.kind)")
        }
        // The key scan that lets generic JSON pass unannotated never passes over a Works kind.
        if !WorksPayload.mayBeWorksKind(payload) && ["notification", "read-receipt", "channel-message"].contains(annotation.kind) {
            throw OracleViolation(target: "works", oracle: "a payload the key scan passes over is no Works kind",
                                  detail: "annotated as \(annotation.kind)")
        }
        try writesDirectlyAsAnnotated(publish, annotation, redactor: redactor)
        try writesDirectlyAsAnnotated(publish, dialect.annotate(publish, redactor: nil), redactor: nil)
        _ = dialect.detect(DetectionEvidence(mqttPackets: [.publish(publish)]))
    }

    /// Oracle: the JSON that `wmq-decode --format jsonl` writes straight from a notification
    /// payload is the JSON of its annotation, byte for byte.
    static func writesDirectlyAsAnnotated(_ publish: PublishPacket, _ annotation: AnnotatedMessage,
                                          redactor: Redactor?) throws(OracleViolation) {
        var writer = ByteWriter()
        guard WorksDialect().writeAnnotationJSON(of: publish, redactor: redactor, to: &writer) else { return }
        let direct = writer.bytes
        writer.removeAll()
        DecodeRecord.writeAnnotation(annotation, to: &writer)
        let long = writer.bytes
        if direct != long {
            throw OracleViolation(target: "works", oracle: "the direct notification JSON equals the annotation's",
                                  detail: "direct \(String(decoding: direct, as: UTF8.self)), annotated \(String(decoding: long, as: UTF8.self))")
        }
    }
}
