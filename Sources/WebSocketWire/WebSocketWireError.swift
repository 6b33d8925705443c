import ByteStream
/// A typed WebSocket or HTTP Upgrade error: the violation (``code``), the stream offset
/// of the byte where it was found, and the RFC section it breaks.
///
/// Equality compares the code and the offset only.
public struct WebSocketWireError: Error, Sendable, Hashable, CustomStringConvertible {
    public let code: Code
    /// Offset in this direction's byte stream; for message-level errors, the offset of
    /// the frame that completed or broke the message.
    public let offset: Int
    public var reason: String { reasonText.text }
    private let reasonText: DeferredText
    public let specReference: String?
    /// `true` when the parser knows where the next frame starts and can go on.
    public let isRecoverable: Bool

    public init(code: Code, offset: Int, reason: String, specReference: String? = nil, isRecoverable: Bool = true) {
        self.init(code: code, offset: offset, reasonText: DeferredText(reason), specReference: specReference, isRecoverable: isRecoverable)
    }

    /// An error whose reason is written only when it is read: parsers meeting broken streams
    /// (and fuzzers, millions of them) throw far more errors than anyone reads.
    public init(code: Code, offset: Int, describedBy reason: @autoclosure @escaping @Sendable () -> String,
                specReference: String? = nil, isRecoverable: Bool = true) {
        self.init(code: code, offset: offset, reasonText: DeferredText(deferred: reason), specReference: specReference, isRecoverable: isRecoverable)
    }

    /// An error whose reason `format` writes from `values` only when it is read, with no
    /// allocation: `format` captures nothing (see ``DeferredText/Values``).
    init(code: Code, offset: Int, values: DeferredText.Values,
         describedBy format: @escaping @Sendable (DeferredText.Values) -> String,
         specReference: String? = nil, isRecoverable: Bool = true) {
        self.init(code: code, offset: offset, reasonText: DeferredText(values, format: format), specReference: specReference,
                  isRecoverable: isRecoverable)
    }

    private init(code: Code, offset: Int, reasonText: DeferredText, specReference: String?, isRecoverable: Bool) {
        self.code = code
        self.offset = offset
        self.reasonText = reasonText
        self.specReference = specReference
        self.isRecoverable = isRecoverable
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code && lhs.offset == rhs.offset }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(offset)
    }

    /// The layer is in the code's prefix: `WebSocket` for frames and messages, `HTTP` for the handshake.
    public var description: String {
        var text = "\(code.layer) \(code) at byte \(offset): \(reason)"
        if let specReference { text += " [\(specReference)]" }
        return text
    }

    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Backing: String, Sendable, Hashable {
            case reservedBitsSet, unknownOpcode, controlFrameTooLong, fragmentedControlFrame
            case lengthTopBitSet, frameTooLarge, messageTooLarge
            case unexpectedContinuation, expectedContinuation
            case invalidClosePayload, invalidCloseCode, invalidUTF8
            case compressionError, compressedControlFrame, compressedContinuation
            case headTooLarge, malformedStartLine, malformedHeader, unsupportedHTTPVersion
            case handshakeMismatch
        }
        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }
        public var description: String { backing.rawValue }
        var layer: String {
            switch backing {
            case .headTooLarge, .malformedStartLine, .malformedHeader, .unsupportedHTTPVersion, .handshakeMismatch: "HTTP"
            default: "WebSocket"
            }
        }

        /// RSV1–3 set without an extension that defines them (RFC 6455 §5.2).
        public static let reservedBitsSet = Code(.reservedBitsSet)
        /// Opcodes 0x3–0x7 and 0xB–0xF (RFC 6455 §5.2).
        public static let unknownOpcode = Code(.unknownOpcode)
        /// A control frame with more than 125 payload bytes (RFC 6455 §5.5).
        public static let controlFrameTooLong = Code(.controlFrameTooLong)
        /// A control frame without FIN (RFC 6455 §5.5).
        public static let fragmentedControlFrame = Code(.fragmentedControlFrame)
        /// A 64-bit payload length with its most significant bit set (RFC 6455 §5.2).
        public static let lengthTopBitSet = Code(.lengthTopBitSet)
        /// A frame larger than the configured maximum.
        public static let frameTooLarge = Code(.frameTooLarge)
        /// A message (after reassembly or inflation) larger than the configured maximum.
        public static let messageTooLarge = Code(.messageTooLarge)
        /// A continuation frame with no message to continue (RFC 6455 §5.4).
        public static let unexpectedContinuation = Code(.unexpectedContinuation)
        /// A new text or binary frame while a fragmented message is unfinished (RFC 6455 §5.4).
        public static let expectedContinuation = Code(.expectedContinuation)
        /// A close payload of one byte (RFC 6455 §5.5.1).
        public static let invalidClosePayload = Code(.invalidClosePayload)
        /// A close code that may not be sent (RFC 6455 §7.4).
        public static let invalidCloseCode = Code(.invalidCloseCode)
        /// A text message or close reason that is not UTF-8 (RFC 6455 §8.1).
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// permessage-deflate data that does not inflate (RFC 7692 §7.2.3).
        public static let compressionError = Code(.compressionError)
        /// RSV1 on a control frame (RFC 7692 §6.1).
        public static let compressedControlFrame = Code(.compressedControlFrame)
        /// RSV1 on a continuation frame (RFC 7692 §6.1).
        public static let compressedContinuation = Code(.compressedContinuation)
        /// An HTTP head longer than the configured maximum.
        public static let headTooLarge = Code(.headTooLarge)
        /// A request or status line that does not parse (RFC 9112 §3, §4).
        public static let malformedStartLine = Code(.malformedStartLine)
        /// A header line that does not parse (RFC 9112 §5).
        public static let malformedHeader = Code(.malformedHeader)
        /// An HTTP version other than 1.1 in an Upgrade (RFC 6455 §4.1).
        public static let unsupportedHTTPVersion = Code(.unsupportedHTTPVersion)
        /// The request and response of a handshake disagree (RFC 6455 §4.1, §4.2.2).
        public static let handshakeMismatch = Code(.handshakeMismatch)
    }
}
