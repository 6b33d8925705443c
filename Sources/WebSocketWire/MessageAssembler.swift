import ByteStream
public import NIOCore
public import NIOWebSocket

/// A complete data message: one frame, or several joined.
public struct WebSocketMessage: Sendable, Equatable {
    /// `.text` or `.binary`.
    public var opcode: WebSocketOpcode
    /// The payload: unmasked, joined and inflated. A single uncompressed frame's payload
    /// is passed through without a copy.
    public var data: ByteBuffer
    public var frameCount: Int
    /// Stream offsets from the first byte of the first frame to the end of the last.
    public var range: Range<Int>
    public var wasCompressed: Bool
    /// The anomalies of all the message's frames.
    public var anomalies: FrameAnomalies

    /// The text of a text message (validated as UTF-8 while it was assembled).
    public var text: String? {
        opcode == .text ? String(buffer: data) : nil
    }
}

/// A Close frame's content (RFC 6455 §5.5.1, §7.4).
public struct WebSocketClose: Sendable, Hashable {
    /// nil when the frame had no payload.
    public var code: UInt16?
    public var reason: String

    /// NIO's vocabulary for the code.
    public var errorCode: WebSocketErrorCode? { code.map { WebSocketErrorCode(codeNumber: Int($0)) } }

    /// The name of a code of RFC 6455 §7.4.1 and the IANA registry, as people say it.
    public static func name(of code: UInt16) -> String? {
        switch code {
        case 1000: "normal closure"
        case 1001: "going away"
        case 1002: "protocol error"
        case 1003: "unsupported data"
        case 1005: "no status received"
        case 1006: "abnormal closure"
        case 1007: "invalid payload data"
        case 1008: "policy violation"
        case 1009: "message too big"
        case 1010: "mandatory extension"
        case 1011: "internal error"
        case 1012: "service restart"
        case 1013: "try again later"
        case 1014: "bad gateway"
        case 1015: "TLS handshake"
        default: nil
        }
    }

    /// Codes an endpoint may send: 1000–1003, 1007–1014, 3000–4999 (RFC 6455 §7.4.1,
    /// the IANA registry for 1012–1014).
    public static func isSendable(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }
}

/// What the assembler produces for each frame that completes something.
public enum WebSocketEvent: Sendable, Equatable {
    case message(WebSocketMessage)
    case ping(ByteBuffer, frame: ParsedFrame)
    case pong(ByteBuffer, frame: ParsedFrame)
    case close(WebSocketClose, frame: ParsedFrame)
}

/// Reassembles frames of one direction into messages: fragmentation with control
/// frames interleaved, continuation rules, close validation, incremental UTF-8 checks
/// of text, permessage-deflate, and a size limit.
///
/// After an error the unfinished message is dropped and the next frame starts afresh.
/// Not Sendable when it owns a zlib stream; keep one per connection direction.
public struct WebSocketMessageAssembler {
    public struct Configuration: Sendable, Hashable {
        public var maximumMessageSize: Int
        public var direction: StreamDirection
        /// Set when permessage-deflate was negotiated in the handshake.
        public var deflate: PerMessageDeflateParameters?
        /// Bytes all of this direction's compressed messages may inflate to together: a small
        /// capture of deflate bombs must not take gigabytes. Past it, messages are not
        /// inflated (an error each) and the rest of the stream is still read.
        public var maximumInflatedBytes: Int

        public init(maximumMessageSize: Int = 1 << 26, direction: StreamDirection = .unknown,
                    deflate: PerMessageDeflateParameters? = nil, maximumInflatedBytes: Int = .max) {
            self.maximumMessageSize = maximumMessageSize
            self.direction = direction
            self.deflate = deflate
            self.maximumInflatedBytes = maximumInflatedBytes
        }
    }

    public let configuration: Configuration
    private var inflater: PerMessageDeflateInflater?
    /// Bytes this direction's compressed messages inflated to so far.
    public private(set) var inflatedBytes = 0
    private var partial: Partial? {
        didSet { assembling = partial != nil }
    }
    /// Whether `partial` holds a message: a test of it copied the optional (through the
    /// runtime's generic witness) for every frame.
    private var assembling = false

    private struct Partial {
        var opcode: WebSocketOpcode
        var data: ByteBuffer
        var frameCount: Int
        var start: Int
        var compressed: Bool
        var utf8 = UTF8Validator()
        var anomalies: FrameAnomalies
    }

    public init(configuration: Configuration = Configuration()) throws(WebSocketWireError) {
        self.configuration = configuration
        if let deflate = configuration.deflate {
            inflater = try PerMessageDeflateInflater(noContextTakeover: deflate.noContextTakeover(for: configuration.direction))
        }
    }

    /// Whether a fragmented message is waiting for more frames.
    public var isInsideMessage: Bool { assembling }

    /// Takes the next frame; returns an event when the frame completes one.
    public mutating func push(_ parsed: consuming ParsedFrame) throws(WebSocketWireError) -> WebSocketEvent? {
        var completed: WebSocketMessage?
        if let control = try push(parsed, message: { completed = $0 }) { return control }
        return completed.map { .message($0) }
    }

    /// Takes the next frame: a data message it completes goes to `message` (handed on as it
    /// is, not wrapped in an event to be taken apart again), a control frame's event is returned.
    public mutating func push(_ parsed: consuming ParsedFrame,
                              message: (consuming WebSocketMessage) -> Void) throws(WebSocketWireError) -> WebSocketEvent? {
        let opcode = parsed.opcode
        if opcode.isControlOpcode {
            if parsed.rsv1 {
                throw WebSocketWireError(code: .compressedControlFrame, offset: parsed.offset, values: .init("", Int(UInt8(webSocketOpcode: opcode))),
                                         describedBy: { "RSV1 set on a \(WebSocketFrameParser.opcodeName($0.first)) frame" },
                                         specReference: "RFC 7692 §6.1")
            }
            switch opcode {
            case .ping: return .ping(parsed.data, frame: parsed)
            case .pong: return .pong(parsed.data, frame: parsed)
            default: return .close(try Self.close(from: parsed), frame: parsed)
            }
        }
        do {
            try pushData(consume parsed, message: message)
            return nil
        } catch {
            partial = nil
            throw error
        }
    }

    private mutating func pushData(_ parsed: consuming ParsedFrame,
                                   message: (consuming WebSocketMessage) -> Void) throws(WebSocketWireError) {
        // The common case, a whole binary message in one uncompressed frame, is the message
        // itself: nothing to gather or validate (what the general path below also finds).
        if !assembling && parsed.fin && parsed.opcode == .binary && !parsed.rsv1
            && parsed.length <= configuration.maximumMessageSize {
            message(WebSocketMessage(opcode: .binary, data: parsed.data, frameCount: 1,
                                     range: parsed.offset..<parsed.endOffset, wasCompressed: false,
                                     anomalies: parsed.anomalies))
            return
        }
        var current: Partial
        if parsed.opcode == .continuation {
            // Taken out, not copied: a second reference to the gathered bytes would make the
            // write below copy them all again for every fragment.
            guard assembling, let existing = partial.take() else {
                throw WebSocketWireError(code: .unexpectedContinuation, offset: parsed.offset,
                                         describedBy: "continuation frame with no message to continue", specReference: "RFC 6455 §5.4")
            }
            if parsed.rsv1 {
                throw WebSocketWireError(code: .compressedContinuation, offset: parsed.offset,
                                         describedBy: "RSV1 set on a continuation frame", specReference: "RFC 7692 §6.1")
            }
            current = existing
            current.frameCount += 1
            current.anomalies.formUnion(parsed.anomalies)
            guard current.data.readableBytes + parsed.length <= configuration.maximumMessageSize else {
                throw tooLarge(parsed)
            }
            var data = parsed.data
            current.data.writeBuffer(&data)
        } else {
            if assembling {
                partial = nil
                throw WebSocketWireError(code: .expectedContinuation, offset: parsed.offset, values: .init("", Int(UInt8(webSocketOpcode: parsed.opcode))),
                                         describedBy: { "\(WebSocketFrameParser.opcodeName($0.first)) frame inside an unfinished fragmented message" },
                                         specReference: "RFC 6455 §5.4")
            }
            if parsed.rsv1 && inflater == nil {
                throw WebSocketWireError(code: .reservedBitsSet, offset: parsed.offset,
                                         describedBy: "RSV1 set but permessage-deflate was not negotiated", specReference: "RFC 6455 §5.2")
            }
            guard parsed.length <= configuration.maximumMessageSize else { throw tooLarge(parsed) }
            current = Partial(opcode: parsed.opcode, data: parsed.data, frameCount: 1, start: parsed.offset,
                              compressed: parsed.rsv1, anomalies: parsed.anomalies)
        }
        if current.opcode == .text && !current.compressed {
            let bad = parsed.data.withUnsafeReadableBytes { current.utf8.validate($0) }
            if let bad {
                throw WebSocketWireError(code: .invalidUTF8, offset: parsed.payloadOffset + bad,
                                         describedBy: "text message is not UTF-8", specReference: "RFC 6455 §8.1")
            }
        }
        guard parsed.fin else {
            if current.frameCount == 1 {
                // The first fragment's payload is a slice of the input: the message gets a
                // buffer of its own, with room for the next fragments to be written in place.
                let capacity = min(configuration.maximumMessageSize, max(2 * current.data.readableBytes, 256))
                var own = ByteBufferAllocator().buffer(capacity: capacity)
                own.writeImmutableBuffer(current.data)
                current.data = own
            }
            partial = current
            return
        }
        // Taken out of `current`: zlib reads through a mutable pointer, so a second reference
        // to the gathered fragments made the inflater copy them first.
        var data = current.data
        current.data = ByteBuffer()
        if current.compressed, let inflater {
            let left = configuration.maximumInflatedBytes - inflatedBytes
            guard left > 0 else {
                throw WebSocketWireError(code: .messageTooLarge, offset: current.start,
                                         values: .init("", configuration.maximumInflatedBytes),
                                         describedBy: { "not inflated: this direction's messages already inflated to the limit of \($0.first) bytes" })
            }
            do {
                data = try inflater.inflate(consume data, maximumSize: min(configuration.maximumMessageSize, left), offset: current.start)
            } catch where error.code == .messageTooLarge && left < configuration.maximumMessageSize {
                inflatedBytes = configuration.maximumInflatedBytes
                throw WebSocketWireError(code: .messageTooLarge, offset: current.start,
                                         values: .init("", configuration.maximumInflatedBytes),
                                         describedBy: { "message inflates past what is left of this direction's limit of \($0.first) inflated bytes" })
            }
            inflatedBytes += data.readableBytes
            if current.opcode == .text {
                let bad = data.withUnsafeReadableBytes { current.utf8.validate($0) }
                if bad != nil {
                    throw WebSocketWireError(code: .invalidUTF8, offset: current.start,
                                             describedBy: "inflated text message is not UTF-8 (byte \(bad ?? 0) of the message)",
                                             specReference: "RFC 6455 §8.1")
                }
            }
        }
        if current.opcode == .text && !current.utf8.isComplete {
            throw WebSocketWireError(code: .invalidUTF8, offset: parsed.endOffset,
                                     describedBy: "text message ends inside a UTF-8 sequence", specReference: "RFC 6455 §8.1")
        }
        message(WebSocketMessage(
            opcode: current.opcode, data: data, frameCount: current.frameCount,
            range: current.start..<parsed.endOffset, wasCompressed: current.compressed, anomalies: current.anomalies))
    }

    private func tooLarge(_ parsed: ParsedFrame) -> WebSocketWireError {
        WebSocketWireError(code: .messageTooLarge, offset: parsed.offset, values: .init("", configuration.maximumMessageSize),
                           describedBy: { "message exceeds the maximum of \($0.first) bytes" })
    }

    /// Reads and checks a Close frame's code and reason.
    static func close(from parsed: ParsedFrame) throws(WebSocketWireError) -> WebSocketClose {
        var data = parsed.data
        switch data.readableBytes {
        case 0: return WebSocketClose(code: nil, reason: "")
        case 1:
            throw WebSocketWireError(code: .invalidClosePayload, offset: parsed.payloadOffset,
                                     describedBy: "close payload of one byte", specReference: "RFC 6455 §5.5.1")
        default:
            let code = data.readInteger(as: UInt16.self) ?? 0
            guard WebSocketClose.isSendable(code) else {
                throw WebSocketWireError(code: .invalidCloseCode, offset: parsed.payloadOffset, values: .init("", Int(code)),
                                         describedBy: { "close code \($0.first) may not be sent" }, specReference: "RFC 6455 §7.4.1")
            }
            var validator = UTF8Validator()
            let bad = data.withUnsafeReadableBytes { validator.validate($0) }
            if bad != nil || !validator.isComplete {
                throw WebSocketWireError(code: .invalidUTF8, offset: parsed.payloadOffset + 2 + (bad ?? data.readableBytes),
                                         describedBy: "close reason is not UTF-8", specReference: "RFC 6455 §5.5.1")
            }
            return WebSocketClose(code: code, reason: String(buffer: data))
        }
    }
}

/// The data messages of a connection read as NIO's frames (a live peer, not a capture): the
/// fragments of a message gathered until its last frame. Control frames are the caller's.
public struct WebSocketFrameMessages {
    private var fragments = ByteBuffer()

    public init() {}

    /// The whole message once `frame` ends one; nil for control frames and unfinished messages.
    public mutating func add(_ frame: WebSocketFrame) -> ByteBuffer? {
        guard frame.opcode == .text || frame.opcode == .binary || frame.opcode == .continuation else { return nil }
        var data = frame.unmaskedData
        fragments.writeBuffer(&data)
        guard frame.fin else { return nil }
        defer { fragments = ByteBuffer() }
        return fragments
    }
}
