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
        try classicReaderAgreesWithLibpcap(input)
        guard let reader = try? PcapReader(bytes: input) else { return }
        let (events, _) = CaptureDissector.events(from: reader, options: options)
        try render(events, target: "capture")
    }

    /// Oracle: our classic-pcap reader and libpcap read the same image into the same frames
    /// (number, time, lengths, bytes) and stop at the same frame with the same error.
    static func classicReaderAgreesWithLibpcap(_ input: [UInt8]) throws(OracleViolation) {
        func frames(classic: Bool) -> (frames: [CapturedFrame], error: String?, opened: Bool) {
            guard let reader = try? PcapReader(bytes: input, classic: classic) else { return ([], nil, false) }
            var frames: [CapturedFrame] = []
            do {
                while let frame = try reader.next() { frames.append(frame) }
            } catch {
                return (frames, error.reason, true)
            }
            return (frames, nil, true)
        }
        let ours = frames(classic: true)
        let libpcap = frames(classic: false)
        func violation(_ detail: String) -> OracleViolation {
            OracleViolation(target: "capture", oracle: "the classic pcap reader reads what libpcap reads", detail: detail)
        }
        guard ours.opened == libpcap.opened else {
            throw violation("opened: ours \(ours.opened), libpcap \(libpcap.opened)")
        }
        guard ours.frames.count == libpcap.frames.count else {
            throw violation("\(ours.frames.count) frames, libpcap \(libpcap.frames.count) (errors: \(ours.error ?? "none"); \(libpcap.error ?? "none"))")
        }
        // libpcap 1.10 reads a native file's time fields as signed 32-bit numbers (the format
        // says unsigned, and libpcap itself reads a swapped file's as unsigned): a field with its
        // top bit set then reads 2^32 seconds, or 2^32 fraction units, lower. Accepted.
        let native = input.count >= 4 && (input[0] == 0xD4 || input[0] == 0x4D) && input[3] == 0xA1
        let unit = input.first == 0x4D ? 1e-9 : 1e-6
        func sameTime(_ ours: Double, _ libpcap: Double) -> Bool {
            if ours == libpcap { return true }
            let difference = ours - libpcap
            return native && [4_294_967_296, 4_294_967_296 * unit, 4_294_967_296 * (1 + unit)].contains { abs(difference - $0) < 1e-3 }
        }
        for (a, b) in zip(ours.frames, libpcap.frames)
        where a.number != b.number || !sameTime(a.time, b.time) || a.originalLength != b.originalLength || a.data != b.data
            || a.linkType != b.linkType {
            throw violation("frame \(b.number) differs: time \(a.time)/\(b.time), length \(a.data.readableBytes)/\(b.data.readableBytes), original \(a.originalLength)/\(b.originalLength), link \(a.linkType)/\(b.linkType)")
        }
        guard ours.error == libpcap.error else {
            throw violation("error: ours \(ours.error ?? "none"), libpcap \(libpcap.error ?? "none")")
        }
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
