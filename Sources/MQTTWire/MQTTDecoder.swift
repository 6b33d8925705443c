import ByteStream
public import NIOCore

/// An incremental MQTT decoder for one direction of one connection.
///
/// Feed it bytes in any chunking with ``append(_:)-(ByteBuffer)`` and call ``next()``
/// until it answers `nil` ("need more bytes"). Every error carries the stream offset of
/// the offending byte. When the fixed header of the bad packet was readable the packet
/// is skipped whole and decoding can go on (``MQTTWireError/isRecoverable``); a broken
/// remaining length loses the packet boundaries, so the decoder then keeps answering
/// that error until ``reset(streamOffset:)``.
///
/// Payloads and binary fields are slices of the bytes given to the decoder: nothing is
/// copied.
public struct MQTTDecoder: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// The largest packet accepted, fixed header included. The protocol maximum is
        /// 268,435,460 bytes (a remaining length of 268,435,455 and a 5-byte header).
        public var maximumPacketSize: Int
        /// The version to decode with until a CONNECT says otherwise.
        public var version: ProtocolVersion
        /// Whether a decoded CONNECT switches ``MQTTDecoder/version`` to its own.
        public var followsConnect: Bool

        public init(maximumPacketSize: Int = 268_435_460, version: ProtocolVersion = .v3_1_1,
                    followsConnect: Bool = true) {
            self.maximumPacketSize = maximumPacketSize
            self.version = version
            self.followsConnect = followsConnect
        }
    }

    public var configuration: Configuration
    /// The version packets are decoded with now.
    public var version: ProtocolVersion
    /// Stream offsets of the last packet returned by ``next()``.
    public internal(set) var lastPacketRange: Range<Int> = 0..<0
    /// The version is a guess (the capture holds no CONNECT for it): a 3.1.1 packet that is
    /// wrong as 3.1.1 and right as 5.0 switches the decoder to 5.0. Packets that both read
    /// the same way say nothing; only one that 3.1.1 rejects does.
    public var infersVersion = false
    /// Whether the one-pass path for common packets is used (tests turn it off to
    /// compare both paths).
    @_spi(Testing) public var usesFastPath = true

    var input = StreamBuffer()
    /// The last PUBLISH topic, reused when the next one has the same bytes.
    var lastTopic = ""
    private var brokenStream: MQTTWireError? {
        didSet { isBroken = brokenStream != nil }
    }
    /// Mirrors `brokenStream != nil`, cheap to test on the hot path.
    private var isBroken = false

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.version = configuration.version
    }

    /// Bytes received and not yet decoded.
    public var bufferedByteCount: Int { input.readableBytes }
    /// Stream offset of the next byte to decode.
    public var offset: Int { input.offset }

    /// Adds bytes to decode. When nothing is buffered the buffer is adopted, not copied.
    public mutating func append(_ bytes: ByteBuffer) {
        input.append(bytes)
    }

    public mutating func append(contentsOf bytes: some Sequence<UInt8>) {
        input.append(contentsOf: bytes)
    }

    /// Forgets buffered bytes and any error; decoding restarts at `streamOffset`
    /// (a packet boundary the caller knows of, such as the start of a WebSocket message).
    public mutating func reset(streamOffset: Int? = nil) {
        input.reset(offset: streamOffset)
        brokenStream = nil
        isScanning = false
    }

    /// Bytes of the stream were lost (`count` of them, or an unknown number when the
    /// capture began mid-connection): forget the partial packet and look for the next
    /// packet boundary (``PacketBoundaryScan``) in what follows. ``skippedWhileScanning``
    /// tells how many bytes that took.
    public mutating func lost(_ count: Int?) {
        input.reset(offset: input.offset + input.readableBytes + (count ?? 0))
        brokenStream = nil
        isScanning = true
        skippedWhileScanning = 0
    }

    /// Whether the decoder is looking for a packet boundary after lost bytes.
    public private(set) var isScanning = false
    /// Bytes passed over by the last scan for a packet boundary.
    public private(set) var skippedWhileScanning = 0

    private mutating func scan() -> Bool {
        _ = input.ensureContiguous(input.readableBytes)
        let result = input.withUnsafeReadableBytes {
            PacketBoundaryScan.find(in: $0, version: version, maximumPacketSize: configuration.maximumPacketSize)
        }
        switch result {
        case .found(let index):
            input.consume(index)
            skippedWhileScanning += index
            isScanning = false
            return true
        case .notYet(let discardable):
            input.consume(discardable)
            skippedWhileScanning += discardable
            input.compact()
            return false
        }
    }

    /// The next complete packet, `nil` when more bytes are needed, or the error of the
    /// next packet.
    public mutating func next() throws(MQTTWireError) -> MQTTPacket? {
        guard let packet = try decodeNext() else {
            input.compact()
            return nil
        }
        return packet
    }

    private mutating func decodeNext() throws(MQTTWireError) -> MQTTPacket? {
        if isScanning && !scan() { return nil }
        if usesFastPath && !isBroken && !input.isSkipping, let packet = fastNext() { return packet }
        if let brokenStream { throw brokenStream }
        guard !input.isSkipping, let header = try readFixedHeader() else { return nil }
        let start = input.offset
        let total = header.headerLength + header.remainingLength
        if let problem = header.problem {
            input.skip(total)
            throw Self.headerError(problem, of: header, at: start, version: version)
        }
        guard total <= configuration.maximumPacketSize else {
            input.skip(total)
            throw MQTTWireError(
                code: .packetTooLarge, offset: start, packetType: header.type,
                values: .init("", total, configuration.maximumPacketSize),
                describedBy: { "packet of \($0.first) bytes exceeds the maximum of \($0.second)" },
                specReference: "MQTT-3.2.2-15", isRecoverable: true)
        }
        guard input.ensureContiguous(total), let type = header.type else { return nil }
        input.consume(header.headerLength)
        // ensureContiguous(total) was checked above, so this slice always exists.
        let body = input.readSlice(length: header.remainingLength) ?? ByteBuffer()
        lastPacketRange = start..<(start + total)
        do {
            var reader = BodyReader(buffer: body, base: start + header.headerLength, type: type, packetStart: start)
            let packet = try PacketBodyDecoder.decode(type: type, flags: header.flags, reader: &reader, version: version)
            if case .connect(let connect) = packet, configuration.followsConnect {
                version = connect.protocolVersion
            }
            return packet
        } catch {
            if infersVersion, version == .v3_1_1, type != .connect {
                var again = BodyReader(buffer: body, base: start + header.headerLength, type: type, packetStart: start)
                if let packet = try? PacketBodyDecoder.decode(type: type, flags: header.flags, reader: &again, version: .v5) {
                    version = .v5
                    return packet
                }
            }
            let failed = error.with(packetType: type, recoverable: true, version: version)
            // A CONNECT that breaks a rule still says, by its protocol level, how the
            // packets after it are written: one bad property must not make the rest of
            // the connection read as another version.
            if type == .connect, configuration.followsConnect, let level = Self.protocolLevel(ofConnectBody: body),
               let asked = ProtocolVersion(rawValue: level) {
                version = asked
            }
            throw failed
        }
    }

    /// The protocol level of a CONNECT body (after its protocol name), if the bytes reach it.
    public static func protocolLevel(ofConnectBody body: ByteBuffer) -> UInt8? {
        guard let nameLength = body.getInteger(at: body.readerIndex, as: UInt16.self) else { return nil }
        return body.getInteger(at: body.readerIndex + 2 + Int(nameLength), as: UInt8.self)
    }

    // MARK: Fixed header

    /// A fixed header as read. What is wrong with it is kept as a small code, and the error is
    /// made only where it is thrown: a header that carried its `MQTTWireError` (about a hundred
    /// bytes) was copied whole at every step back to the throw, and under AddressSanitizer
    /// each of those copies was a checked `memcpy` (a fifth of a fuzz run on broken streams).
    private struct FixedHeader {
        enum Problem { case invalidType, invalidFlags, nonMinimalLength }
        var first: UInt8
        var headerLength: Int
        var remainingLength: Int
        var problem: Problem?

        var type: PacketType? { PacketType(rawValue: first >> 4) }
        var flags: UInt8 { first & 0x0F }
    }

    /// The error of `problem` in `header`, the header starting at `start`. These
    /// are the errors a broken stream meets most: their reasons are written from values,
    /// without an allocation (DeferredText.Values). Static, so that calling it from a mutating
    /// method does not copy the decoder (224 bytes, another checked copy under AddressSanitizer).
    private static func headerError(_ problem: FixedHeader.Problem, of header: FixedHeader, at start: Int,
                                    version: ProtocolVersion) -> MQTTWireError {
        let first = header.first
        switch problem {
        case .invalidType:
            return MQTTWireError(
                code: .invalidPacketType, offset: start, packetType: header.type == .auth ? .auth : nil,
                values: .init(version.description, Int(first >> 4)),
                describedBy: { "reserved packet type \($0.first) (MQTT \($0.text))" },
                specReference: version == .v5 ? "MQTT 5.0 §2.1.2" : "MQTT 3.1.1 §2.2.1", isRecoverable: true)
        case .invalidFlags:
            let type = header.type ?? .connect
            return MQTTWireError(
                code: .invalidFixedHeaderFlags, offset: start, packetType: type,
                values: .init(type.description, Int(header.flags), Int(type.requiredFlags)),
                describedBy: { "\($0.text) flags are 0x\(String($0.first, radix: 16)), must be 0x\(String($0.second, radix: 16))" },
                specReference: version == .v5 ? "MQTT-2.1.3-1" : "MQTT-2.2.2-1, MQTT-2.2.2-2", isRecoverable: true)
        case .nonMinimalLength:
            // MQTT 3.1.1 has no such rule and takes it.
            return MQTTWireError(
                code: .malformedRemainingLength, offset: start + header.headerLength - 1, packetType: header.type,
                values: .init("", header.remainingLength, header.headerLength - 1),
                describedBy: { "the remaining length \($0.first) is encoded in \($0.second) bytes, more than it needs" },
                specReference: "MQTT-1.5.5-1", isRecoverable: true)
        }
    }

    private mutating func readFixedHeader() throws(MQTTWireError) -> FixedHeader? {
        _ = input.ensureContiguous(min(5, input.readableBytes))
        guard input.readableBytes >= 2 else { return nil }
        let streamOffset = input.offset
        // readableBytes >= 2 was checked above.
        let first = input.byte(at: 0) ?? 0
        let remaining: Int
        let headerLength: Int
        let isMinimal: Bool
        switch input.withUnsafeReadableBytes({ RemainingLength.read($0, headerAt: 0) }) {
        case .complete(let value, let length, let minimal):
            (remaining, headerLength, isMinimal) = (value, length, minimal)
        case .incomplete:
            return nil
        case .tooLong:
            let error = MQTTWireError(
                code: .malformedRemainingLength, offset: streamOffset + 4,
                packetType: PacketType(rawValue: first >> 4),
                describedBy: "the remaining length runs past four bytes",
                specReference: version == .v5 ? "MQTT 5.0 §1.5.5" : "MQTT 3.1.1 §2.2.3")
            brokenStream = error
            throw error
        }
        var header = FixedHeader(first: first, headerLength: headerLength, remainingLength: remaining)
        guard let type = header.type, type != .auth || version == .v5 else {
            header.problem = .invalidType
            return header
        }
        if type != .publish && header.flags != type.requiredFlags {
            header.problem = .invalidFlags
        } else if version == .v5 && !isMinimal {
            header.problem = .nonMinimalLength
        }
        return header
    }
}

extension MQTTDecoder {
    /// Decodes exactly one packet from `bytes`: an error if they hold less or more.
    public static func decodePacket(_ bytes: ByteBuffer, version: ProtocolVersion = .v3_1_1) throws(MQTTWireError)
        -> MQTTPacket
    {
        var decoder = MQTTDecoder(configuration: .init(version: version, followsConnect: false))
        decoder.append(bytes)
        guard let packet = try decoder.next() else {
            throw MQTTWireError(code: .truncatedPacket, offset: decoder.offset + decoder.bufferedByteCount,
                                describedBy: "the bytes end inside the packet")
        }
        guard decoder.bufferedByteCount == 0 else {
            throw MQTTWireError(code: .trailingBytes, offset: decoder.offset, packetType: packet.type,
                                reason: "\(decoder.bufferedByteCount) byte(s) follow the packet")
        }
        return packet
    }
}
