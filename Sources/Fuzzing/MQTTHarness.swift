import ByteStream
@_spi(Testing) import MQTTWire
import NIOCore

/// The MQTT decoder targets. Oracles: every packet the decoder accepts, the encoder
/// accepts and encodes into bytes that decode back to the same packet (so the encoder
/// never produces bytes the decoder rejects); decoding in random chunks, and with the
/// one-pass fast path off, gives exactly what one-shot decoding gives, errors included;
/// every step makes progress.
enum MQTTHarness {
    /// Packets larger than this are refused at their fixed header (the product's limits
    /// are configurable; a fuzz input is never this long, so this only caps memory).
    static let maximumPacketSize = 1 << 20

    static let v311 = FuzzTarget(
        name: "mqtt311", build: .codecs, summary: "MQTT 3.1.1 decoder on a byte stream, with the encoder round trip"
    ) { input throws(OracleViolation) in
        try roundTrips(input[...], version: .v3_1_1, target: "mqtt311")
    }

    static let v5 = FuzzTarget(
        name: "mqtt5", build: .codecs, summary: "MQTT 5.0 decoder on a byte stream, with the encoder round trip"
    ) { input throws(OracleViolation) in
        try roundTrips(input[...], version: .v5, target: "mqtt5")
    }

    /// Control bytes: flags (version in bits 0–1, bit 2: the stream starts after lost
    /// bytes, so the decoder first scans for a packet boundary), then the chunk-size seed.
    static let chunked = FuzzTarget(
        name: "mqtt-chunked", build: .codecs,
        summary: "incremental MQTT decoder fed in random chunk sizes, and without its fast path, against one-shot decoding"
    ) { input throws(OracleViolation) in
        var cursor = InputCursor(input)
        let flags = cursor.byte()
        let seed = cursor.byte()
        let version: ProtocolVersion = [.v3_1_1, .v5, .v3_1, .v3_1_1][Int(flags & 3)]
        let scansFirst = flags & 4 != 0
        let stream = ByteBuffer(bytes: cursor.rest)
        let oneShot = try decode(stream, version: version, scansFirst: scansFirst, target: "mqtt-chunked")
        let sizes = ChunkSizes(seed: seed)
        var pieces = AnswerComparison(expecting: oneShot)
        try decode(stream, version: version, scansFirst: scansFirst, chunkSizes: sizes, target: "mqtt-chunked") {
            pieces.take($0)
        }
        if !pieces.matches {
            let answers = try decode(stream, version: version, scansFirst: scansFirst, chunkSizes: sizes, target: "mqtt-chunked")
            throw OracleViolation(target: "mqtt-chunked", oracle: "chunked decoding equals one-shot decoding",
                                  detail: firstDifference(oneShot, answers))
        }
        var fullPath = AnswerComparison(expecting: oneShot)
        try decode(stream, version: version, scansFirst: scansFirst, fastPath: false, target: "mqtt-chunked") {
            fullPath.take($0)
        }
        if !fullPath.matches {
            let answers = try decode(stream, version: version, scansFirst: scansFirst, fastPath: false, target: "mqtt-chunked")
            throw OracleViolation(target: "mqtt-chunked", oracle: "the fast path decodes like the full path",
                                  detail: firstDifference(oneShot, answers))
        }
    }

    /// What the decoder answered, in order.
    enum Outcome: Equatable, CustomStringConvertible {
        case packet(MQTTPacket, range: Range<Int>, version: ProtocolVersion)
        case error(MQTTWireError)

        var description: String {
            switch self {
            case .packet(let packet, let range, _): "\(packet) at \(range)"
            case .error(let error): "error \(error)"
            }
        }
    }

    /// Everything the decoder answers for `stream`, in order.
    static func decode(_ stream: ByteBuffer, version: ProtocolVersion, scansFirst: Bool = false,
                       chunkSizes: ChunkSizes? = nil, fastPath: Bool = true, target: String) throws(OracleViolation) -> [Outcome]
    {
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(16)
        try decode(stream, version: version, scansFirst: scansFirst, chunkSizes: chunkSizes, fastPath: fastPath,
                   target: target) { outcomes.append($0) }
        return outcomes
    }

    /// Feeds `stream` to a decoder (whole, or cut into `chunkSizes`) and hands each answer
    /// to `answer` as it comes, so that a pass compared with another builds no list. With
    /// `errors` false only packets are handed on (the round trip needs no errors).
    static func decode(_ stream: ByteBuffer, version: ProtocolVersion, scansFirst: Bool = false,
                       chunkSizes: ChunkSizes? = nil, fastPath: Bool = true, errors: Bool = true, target: String,
                       answer: (consuming Outcome) -> Void) throws(OracleViolation)
    {
        var decoder = MQTTDecoder(configuration: .init(maximumPacketSize: maximumPacketSize, version: version))
        decoder.usesFastPath = fastPath
        if scansFirst { decoder.lost(nil) }
        var count = 0
        var last = "-"
        var finished = false
        try forEachPiece(of: stream, sizes: chunkSizes) { (piece: ByteBuffer) throws(OracleViolation) in
            if finished { return }
            decoder.append(piece)
            while true {
                // Every packet is at least two bytes and every recoverable error skips
                // its packet, so there are never more answers than bytes.
                guard count <= stream.readableBytes else {
                    throw OracleViolation(target: target, oracle: "the decoder makes progress",
                                          detail: "\(count) answers from \(stream.readableBytes) bytes; last: \(last)")
                }
                do throws(MQTTWireError) {
                    guard let packet = try decoder.next() else { break }
                    count += 1
                    let outcome = Outcome.packet(packet, range: decoder.lastPacketRange, version: decoder.version)
                    if count > stream.readableBytes { last = "\(outcome)" }
                    answer(outcome)
                } catch {
                    count += 1
                    if count > stream.readableBytes { last = "error \(error)" }
                    if errors { answer(.error(error)) }
                    if !error.isRecoverable {
                        finished = true
                        return
                    }
                }
            }
        }
    }

    /// For tests: the answers for bytes, whole or cut into pieces of `chunkSizes`.
    static func decode(_ stream: ArraySlice<UInt8>, version: ProtocolVersion, chunkSizes: [Int]? = nil,
                       target: String) throws(OracleViolation) -> [Outcome] {
        try decode(ByteBuffer(bytes: stream), version: version, chunkSizes: chunkSizes.map(ChunkSizes.init), target: target)
    }

    /// Every packet decoded from `stream`, encoded again one after the other, decodes
    /// back to the same packets (one buffer and one decoder for all, which keeps the
    /// harness fast; a mismatch is then narrowed down to its packet).
    static func roundTrips(_ bytes: ArraySlice<UInt8>, version: ProtocolVersion, target: String) throws(OracleViolation) {
        let stream = ByteBuffer(bytes: bytes)
        // Only the packets are kept: most answers to a fuzz input are errors, and keeping each
        // (an `Outcome` is over a hundred bytes) cost a checked copy under AddressSanitizer.
        var decoded: [(packet: MQTTPacket, version: ProtocolVersion)] = []
        try decode(stream, version: version, errors: false, target: target) { outcome in
            if case .packet(let packet, _, let packetVersion) = outcome { decoded.append((packet, packetVersion)) }
        }
        guard !decoded.isEmpty else { return }
        // Re-encoded packets take about the room they took in the input.
        var encoded = ByteBufferAllocator().buffer(capacity: stream.readableBytes + 64)
        for (packet, packetVersion) in decoded {
            try encode(packet, version: packetVersion, into: &encoded, target: target)
        }
        var decoder = MQTTDecoder(configuration: .init(maximumPacketSize: maximumPacketSize, version: version))
        decoder.append(encoded)
        for (packet, packetVersion) in decoded {
            // The version in force for each packet, as the first pass had it: a CONNECT that
            // failed to decode still set it (by its protocol level), and is not re-encoded.
            decoder.version = packetVersion
            let back = try? decoder.next()
            guard back == packet else {
                // Narrow it down: the packet alone.
                try roundTrip(packet, version: packetVersion, target: target)
                throw OracleViolation(target: target, oracle: "decode(encode(packets)) == packets",
                                      detail: "\(packet) came back as \(back.map { "\($0)" } ?? "nothing") in a stream")
            }
        }
        if decoder.bufferedByteCount != 0 {
            throw OracleViolation(target: target, oracle: "decode(encode(packets)) == packets",
                                  detail: "\(decoder.bufferedByteCount) encoded bytes left over")
        }
    }

    /// Appends `packet` encoded; the encoder must take every packet the decoder accepts.
    static func encode(_ packet: MQTTPacket, version: ProtocolVersion, into buffer: inout ByteBuffer,
                       target: String) throws(OracleViolation) {
        do {
            try MQTTEncoder(version: version).encode(packet, into: &buffer)
        } catch {
            throw OracleViolation(target: target, oracle: "the encoder takes every packet the decoder accepts",
                                  detail: "\(packet) (MQTT \(version)): \(error)")
        }
    }

    /// Encodes `packet` and decodes the bytes back: the same packet, every byte used.
    static func roundTrip(_ packet: MQTTPacket, version: ProtocolVersion, target: String) throws(OracleViolation) {
        var encoded = ByteBuffer()
        try encode(packet, version: version, into: &encoded, target: target)
        var decoder = MQTTDecoder(configuration: .init(version: version, followsConnect: false))
        decoder.append(encoded)
        let back: MQTTPacket?
        do {
            back = try decoder.next()
        } catch {
            throw OracleViolation(target: target, oracle: "the decoder accepts what the encoder writes",
                                  detail: "\(packet) (MQTT \(version)) encodes as \(hex(encoded)), refused: \(error)")
        }
        guard back == packet, decoder.bufferedByteCount == 0 else {
            throw OracleViolation(target: target, oracle: "decode(encode(packet)) == packet",
                                  detail: "\(packet) → \(hex(encoded)) → \(back.map { "\($0)" } ?? "nothing"), \(decoder.bufferedByteCount) bytes left")
        }
    }
}

/// The first bytes of `buffer` in hex, for violation messages.
func hex(_ buffer: ByteBuffer, limit: Int = 64) -> String {
    Hex.string(buffer.readableBytesView.prefix(limit)) + (buffer.readableBytes > limit ? " …" : "")
}
