/// Incremental UTF-8 validation (RFC 3629): overlong forms, surrogates and values above
/// U+10FFFF are ill-formed. Used for WebSocket text messages whose characters arrive
/// split across frames (RFC 6455 §5.6, §8.1) and for MQTT strings (MQTT-1.5.3-1).
public struct UTF8Validator: Sendable, Hashable {
    /// Continuation bytes still expected for the current character.
    private var pending = 0
    /// The range the next continuation byte must fall in (narrower after E0, ED, F0, F4).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    /// Index, in the bytes of the last `validate` call, of the first byte of the sequence
    /// being decoded (or that failed); nil when that sequence began in earlier bytes.
    public private(set) var sequenceStart: Int?

    public init() {}

    /// Whether the bytes so far end on a character boundary.
    public var isComplete: Bool { pending == 0 }

    /// Validates the next bytes; returns the index in `bytes` of the first byte that
    /// cannot continue a well-formed sequence, or nil.
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        sequenceStart = nil
        let count = bytes.count
        while index < count {
            if pending == 0 {
                // ASCII runs, eight bytes at a time.
                while index + 8 <= count,
                      bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                    index += 8
                }
                guard index < count else { return nil }
                let lead = bytes[index]
                sequenceStart = index
                lower = 0x80
                upper = 0xBF
                switch lead {
                case 0x00...0x7F: index += 1; continue
                case 0xC2...0xDF:
                    // A whole sequence in these bytes is checked at once (the common case: CJK
                    // text is mostly three-byte sequences); one cut by the end goes byte by byte.
                    if index + 1 < count {
                        guard bytes[index + 1] & 0xC0 == 0x80 else { return index + 1 }
                        index += 2
                        continue
                    }
                    pending = 1
                case 0xE0: pending = 2; lower = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF:
                    if index + 2 < count {
                        guard bytes[index + 1] & 0xC0 == 0x80 else { return index + 1 }
                        guard bytes[index + 2] & 0xC0 == 0x80 else { return index + 2 }
                        index += 3
                        continue
                    }
                    pending = 2
                case 0xED: pending = 2; upper = 0x9F
                case 0xF0: pending = 3; lower = 0x90
                case 0xF1...0xF3: pending = 3
                case 0xF4: pending = 3; upper = 0x8F
                default: return index
                }
            } else {
                let byte = bytes[index]
                guard byte >= lower && byte <= upper else { return index }
                lower = 0x80
                upper = 0xBF
                pending -= 1
            }
            index += 1
        }
        return nil
    }

    public mutating func validate(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { validate($0) }
    }
}
