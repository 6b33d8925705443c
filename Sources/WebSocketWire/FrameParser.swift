import ByteStream
public import NIOCore
public import NIOWebSocket

/// Which way a byte stream flows, so the parser can tell which frames break the masking rule.
public enum StreamDirection: Sendable, Hashable {
    case clientToServer
    case serverToClient
    /// Masking is not checked.
    case unknown
}

/// Things about a frame that break a rule but do not stop it from being read: a
/// passive parser reports them as warnings and goes on.
public struct FrameAnomalies: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// A client frame without a mask (RFC 6455 §5.1: a client MUST mask).
    public static let unmaskedClientFrame = Self(rawValue: 1 << 0)
    /// A server frame with a mask (RFC 6455 §5.1: a server MUST NOT mask).
    public static let maskedServerFrame = Self(rawValue: 1 << 1)
    /// A payload length in a longer form than needed (RFC 6455 §5.2: the minimal number of bytes MUST be used).
    public static let nonMinimalLength = Self(rawValue: 1 << 2)

    public var description: String {
        var names: [String] = []
        if contains(.unmaskedClientFrame) { names.append("unmasked client frame") }
        if contains(.maskedServerFrame) { names.append("masked server frame") }
        if contains(.nonMinimalLength) { names.append("non-minimal length") }
        return names.joined(separator: ", ")
    }
}

/// A frame read off the wire, with where it was and what was odd about it.
///
/// Its header fields are kept here rather than in NIO's `WebSocketFrame`, which keeps its
/// payload in a storage object of its own: one more allocation for every frame a capture
/// holds. ``frame`` makes that frame when it is wanted.
public struct ParsedFrame: Sendable, Equatable {
    public var fin: Bool
    public var rsv1: Bool
    public var rsv2: Bool
    public var rsv3: Bool
    public var opcode: WebSocketOpcode
    /// The payload, already unmasked.
    public var data: ByteBuffer
    /// The key that was sent, if any.
    public var maskKey: WebSocketMaskingKey? {
        get {
            guard isMasked else { return nil }
            return WebSocketMaskingKey((0..<4).map { UInt8(truncatingIfNeeded: maskValue >> UInt32($0 * 8)) })
        }
        set {
            isMasked = newValue != nil
            maskValue = newValue.map(WebSocketMasking.value(of:)) ?? 0
        }
    }
    /// Whether the frame was masked, and its key as ``WebSocketMasking/value(of:)`` gives it:
    /// kept as a number, since NIO's key is made by a generic initialiser.
    public private(set) var isMasked: Bool
    private(set) var maskValue: UInt32
    /// Stream offset of the frame's first byte.
    public var offset: Int
    public var headerLength: Int
    public var anomalies: FrameAnomalies

    public init(fin: Bool, rsv1: Bool = false, rsv2: Bool = false, rsv3: Bool = false, opcode: WebSocketOpcode,
                data: ByteBuffer, maskKey: WebSocketMaskingKey?, offset: Int, headerLength: Int, anomalies: FrameAnomalies) {
        self.init(fin: fin, rsv1: rsv1, rsv2: rsv2, rsv3: rsv3, opcode: opcode, data: data, isMasked: maskKey != nil,
                  maskValue: maskKey.map(WebSocketMasking.value(of:)) ?? 0, offset: offset, headerLength: headerLength,
                  anomalies: anomalies)
    }

    /// A parsed frame, its key (if `isMasked`) given as ``WebSocketMasking/value(of:)`` would.
    init(fin: Bool, rsv1: Bool, rsv2: Bool, rsv3: Bool, opcode: WebSocketOpcode, data: ByteBuffer,
         isMasked: Bool, maskValue: UInt32, offset: Int, headerLength: Int, anomalies: FrameAnomalies) {
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3
        self.opcode = opcode
        self.data = data
        self.isMasked = isMasked
        self.maskValue = isMasked ? maskValue : 0
        self.offset = offset
        self.headerLength = headerLength
        self.anomalies = anomalies
    }

    /// The frame as NIO's, its payload unmasked. Its `maskKey` is nil so that
    /// `unmaskedData` does not mask it again; the key that was sent is ``maskKey``.
    public var frame: WebSocketFrame {
        WebSocketFrame(fin: fin, rsv1: rsv1, rsv2: rsv2, rsv3: rsv3, opcode: opcode, maskKey: nil, data: data)
    }

    /// Payload bytes.
    public var length: Int { data.readableBytes }

    /// Whether `other` is the same frame sent the same way (header bits, payload, key),
    /// wherever it was.
    public func isSameFrame(as other: ParsedFrame) -> Bool {
        fin == other.fin && rsv1 == other.rsv1 && rsv2 == other.rsv2 && rsv3 == other.rsv3 && opcode == other.opcode
            && isMasked == other.isMasked && maskValue == other.maskValue && data == other.data
    }

    public var payloadOffset: Int { offset + headerLength }
    public var endOffset: Int { offset + headerLength + data.readableBytes }
}

/// A passive, incremental RFC 6455 frame parser for one direction of a connection.
///
/// Bytes go in with ``append(_:)``, frames come out of ``next()`` (`nil`: need more
/// bytes). Unmasked payloads are slices of the input; masked payloads are unmasked into
/// one new buffer in a single pass. A frame whose header breaks a rule is skipped whole
/// and reported; only a length that cannot be read loses the stream.
public struct WebSocketFrameParser: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// The largest frame payload accepted.
        public var maximumFrameSize: Int
        public var direction: StreamDirection
        /// The reserved bits an extension has defined (RSV1 with permessage-deflate).
        public var allowedReservedBits: WebSocketFrame.ReservedBits

        public init(maximumFrameSize: Int = 1 << 26, direction: StreamDirection = .unknown,
                    allowedReservedBits: WebSocketFrame.ReservedBits = []) {
            self.maximumFrameSize = maximumFrameSize
            self.direction = direction
            self.allowedReservedBits = allowedReservedBits
        }
    }

    public var configuration: Configuration
    private var input: StreamBuffer
    private var brokenStream: WebSocketWireError?

    public init(configuration: Configuration = Configuration(), streamOffset: Int = 0) {
        self.configuration = configuration
        input = StreamBuffer(offset: streamOffset)
    }

    /// Stream offset of the next byte to parse.
    public var offset: Int { input.offset }
    public var bufferedByteCount: Int { input.readableBytes }

    public mutating func append(_ bytes: ByteBuffer) {
        input.append(bytes)
    }

    public mutating func append(contentsOf bytes: some Sequence<UInt8>) {
        input.append(contentsOf: bytes)
    }

    public mutating func next() throws(WebSocketWireError) -> ParsedFrame? {
        guard let frame = try parseNext() else {
            input.compact()
            return nil
        }
        return frame
    }

    private mutating func parseNext() throws(WebSocketWireError) -> ParsedFrame? {
        if let brokenStream { throw brokenStream }
        guard !input.isSkipping else { return nil }
        _ = input.ensureContiguous(min(14, input.readableBytes))
        let available = input.readableBytes
        guard available >= 2 else { return nil }
        let streamOffset = input.offset
        let first = input.byte(at: 0) ?? 0
        let second = input.byte(at: 1) ?? 0
        let masked = second & 0x80 != 0
        var headerLength = 2 + (masked ? 4 : 0)
        var length = Int(second & 0x7F)
        var anomalies: FrameAnomalies = []
        if length == 126 {
            headerLength += 2
            guard available >= 4, let value = input.integer(at: 2, as: UInt16.self) else { return nil }
            length = Int(value)
            if length < 126 { anomalies.insert(.nonMinimalLength) }
        } else if length == 127 {
            headerLength += 8
            guard available >= 10, let value = input.integer(at: 2, as: UInt64.self) else { return nil }
            guard value & (1 << 63) == 0 else {
                let error = WebSocketWireError(
                    code: .lengthTopBitSet, offset: streamOffset + 2,
                    describedBy: "64-bit payload length 0x\(String(value, radix: 16)) has its most significant bit set",
                    specReference: "RFC 6455 §5.2", isRecoverable: false)
                brokenStream = error
                throw error
            }
            // Above Int.max on no platform Swift runs on 64-bit; clamp for 32-bit.
            length = value > UInt64(Int.max - 16) ? Int.max - 16 : Int(value)
            if length <= 0xFFFF { anomalies.insert(.nonMinimalLength) }
        }
        guard available >= headerLength else { return nil }
        let total = headerLength &+ length
        // The common frame (a data frame, no reserved bit, not too long) passes without the
        // full check, whose optional error result is copied out even when nil.
        let opcodeBits = first & 0x0F
        let plain = first & 0x70 == 0 && opcodeBits <= 0x2 && length <= configuration.maximumFrameSize
        if !plain, let problem = Self.headerProblem(first: first, length: length, offset: streamOffset,
                                                    configuration: configuration) {
            input.skip(total)
            throw problem
        }
        guard input.ensureContiguous(total) else { return nil }

        var maskValue: UInt32 = 0
        if masked {
            // Read from raw bytes: NIO's initialiser is generic and not inlinable, and over a
            // ByteBufferView each of its index steps was a call that retained the storage.
            maskValue = input.withUnsafeReadableBytes { raw in
                raw.baseAddress.map { WebSocketMasking.value(at: $0 + (headerLength - 4)) } ?? 0
            }
        }
        switch configuration.direction {
        case .clientToServer where !masked: anomalies.insert(.unmaskedClientFrame)
        case .serverToClient where masked: anomalies.insert(.maskedServerFrame)
        default: break
        }
        input.consume(headerLength)
        let payload: ByteBuffer
        if masked, length > 0 {
            payload = Self.unmask(&input, length: length, keyValue: maskValue)
        } else {
            // ensureContiguous(total) was checked above.
            payload = input.readSlice(length: length) ?? ByteBuffer()
        }
        return ParsedFrame(fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, rsv2: first & 0x20 != 0, rsv3: first & 0x10 != 0,
                           opcode: WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F) ?? .binary, data: payload,
                           isMasked: masked, maskValue: maskValue, offset: streamOffset, headerLength: headerLength,
                           anomalies: anomalies)
    }

    /// Reads `length` masked bytes from `input` into a new buffer, unmasked.
    @inline(__always)
    static func unmask(_ input: inout StreamBuffer, length: Int, keyValue: UInt32) -> ByteBuffer {
        var output = ByteBufferAllocator().buffer(capacity: length)
        input.withUnsafeReadableBytes { source in
            output.withUnsafeMutableWritableBytes { destination in
                if let from = source.baseAddress, let to = destination.baseAddress {
                    WebSocketMasking.apply(keyValue: keyValue, source: from, destination: to, count: length)
                }
            }
        }
        output.moveWriterIndex(forwardBy: length)
        input.consume(length)
        return output
    }

    /// An opcode as NIO's description names it, for error reasons.
    static func opcodeName(_ bits: Int) -> String {
        WebSocketOpcode(encodedWebSocketOpcode: UInt8(truncatingIfNeeded: bits)).map { "\($0)" } ?? "opcode \(bits)"
    }

    // The header errors are the ones a broken stream meets most: their reasons are written
    // from values, without an allocation (DeferredText.Values). Static, so that calling it from
    // the mutating parse does not copy the parser (161 bytes, a checked copy under
    // AddressSanitizer, for every frame that is not a plain data frame).
    private static func headerProblem(first: UInt8, length: Int, offset: Int,
                                      configuration: Configuration) -> WebSocketWireError? {
        let opcodeBits = first & 0x0F
        let reserved = WebSocketFrame.ReservedBits(rawValue: first & 0x70)
        if !configuration.allowedReservedBits.isSuperset(of: reserved) {
            return WebSocketWireError(
                code: .reservedBitsSet, offset: offset, values: .init("", Int(reserved.rawValue)),
                describedBy: { "reserved bits 0x\(String($0.first, radix: 16)) set without a negotiated extension" },
                specReference: "RFC 6455 §5.2")
        }
        guard let opcode = WebSocketOpcode(encodedWebSocketOpcode: opcodeBits),
              [0x0, 0x1, 0x2, 0x8, 0x9, 0xA].contains(opcodeBits) else {
            return WebSocketWireError(code: .unknownOpcode, offset: offset, values: .init("", Int(opcodeBits)),
                                      describedBy: { "opcode 0x\(String($0.first, radix: 16)) is reserved" },
                                      specReference: "RFC 6455 §5.2")
        }
        if opcode.isControlOpcode {
            if length > 125 {
                return WebSocketWireError(code: .controlFrameTooLong, offset: offset, values: .init("", Int(opcodeBits), length),
                                          describedBy: { "\(Self.opcodeName($0.first)) frame of \($0.second) bytes; control frames carry at most 125" },
                                          specReference: "RFC 6455 §5.5")
            }
            if first & 0x80 == 0 {
                return WebSocketWireError(code: .fragmentedControlFrame, offset: offset, values: .init("", Int(opcodeBits)),
                                          describedBy: { "\(Self.opcodeName($0.first)) frame without FIN" }, specReference: "RFC 6455 §5.5")
            }
        }
        if length > configuration.maximumFrameSize {
            return WebSocketWireError(code: .frameTooLarge, offset: offset, values: .init("", length, configuration.maximumFrameSize),
                                      describedBy: { "frame payload of \($0.first) bytes exceeds the maximum of \($0.second)" })
        }
        return nil
    }
}
