import Capture
import Dialects
import Dissector
import NIOCore

/// The whole decode pipeline on a file image: libpcap, link/IP/TCP, reassembly,
/// detection, WebSocket, MQTT, Works annotation, and every output wmq-decode writes.
/// Oracles: every JSON record is valid JSON that reads back equal; text lines and
/// statistics render for every event; the HAR export of it reads back as a HAR.
enum CaptureHarness {
    static let capture = FuzzTarget(
        name: "capture",
        summary: "pcap/pcapng reader, TCP reassembly and the whole wmq-decode pipeline on a file image",
        maximumInputLength: 65_536
    ) { input throws(OracleViolation) in
        guard let reader = try? PcapReader(bytes: input) else { return }
        let (events, _) = CaptureDissector.events(from: reader, options: options)
        try render(events, target: "capture")
    }

    static let har = FuzzTarget(
        name: "har", summary: "HAR files with Chrome's _webSocketMessages, decoded like captures", maximumInputLength: 65_536
    ) { input throws(OracleViolation) in
        _ = HARInput.looksLikeHAR(input)
        guard let events = try? HARInput.events(from: ByteBuffer(bytes: input), options: options) else { return }
        try render(events, target: "har")
    }

    static var options: CaptureDissector.Options {
        var options = CaptureDissector.Options(redactor: WorksHarness.redactor)
        options.reportsFrames = true
        options.reportsMessages = true
        // TLS connections go through the key-log decryptor (record parsing, hellos, key derivation);
        // fuzzed bytes will not carry this random, but the seeds' and the parsing paths are run.
        options.keyLog = fuzzKeyLog
        return options
    }

    /// The secrets of `corpora/capture/seed-tls13-chacha20-session` (a throwaway paho session over
    /// wss:// to a test mosquitto, TLS 1.3 with ChaCha20-Poly1305): mutations of it decrypt.
    static let fuzzKeyLog = try? TLSKeyLog(text: """
        CLIENT_TRAFFIC_SECRET_0 2421838715e4ac6adabb4cb556d317e10bc27ec1d53f4921a4fac651a8ecdbe1 38aa8363f6e289f2e952235ee9b9be0bbd5876e04694732c06bbb085894ab0b9
        SERVER_TRAFFIC_SECRET_0 2421838715e4ac6adabb4cb556d317e10bc27ec1d53f4921a4fac651a8ecdbe1 771dfee7c98fb2980cae5476357bb1faf78efa0fe9ea39189d21a4ac811c3e00
        """)

    static func render(_ events: [CaptureEvent], target: String) throws(OracleViolation) {
        var statistics = DecodeStatistics()
        let start = events.first?.time ?? 0
        for event in events {
            statistics.add(event)
            _ = TextRecord.lines(event, startTime: start, verbose: true)
            try JSONHarness.readsBack(DecodeRecord.json(event), target: target)
        }
        _ = statistics.text()
        try JSONHarness.readsBack(statistics.json(), target: target)
        // The HAR export (redacting) of whatever was decoded is a HAR that reads back.
        var har = HAROutput(redactor: WorksHarness.redactor)
        har.add(events)
        let exported = har.json(creator: "fuzz")
        try JSONHarness.readsBack(exported, target: target)
        do {
            _ = try HARInput.events(from: ByteBuffer(string: exported.description), options: CaptureDissector.Options(redactor: nil))
        } catch {
            throw OracleViolation(target: target, oracle: "an exported HAR reads back", detail: "\(error)")
        }
    }
}

enum JSONHarness {
    /// `value` written as JSON text reads back as the same value.
    static func readsBack(_ value: JSONValue, target: String) throws(OracleViolation) {
        let text = value.description
        do {
            let back = try JSONReader.parse(text)
            guard back == value else {
                throw OracleViolation(target: target, oracle: "written JSON reads back equal",
                                      detail: "\(text.prefix(200)) read back as \(back.description.prefix(200))")
            }
        } catch let error as JSONError {
            throw OracleViolation(target: target, oracle: "written JSON is valid", detail: "\(error): \(text.prefix(200))")
        } catch let violation as OracleViolation {
            throw violation
        } catch {
            throw OracleViolation(target: target, oracle: "written JSON is valid", detail: "\(error)")
        }
    }
}
