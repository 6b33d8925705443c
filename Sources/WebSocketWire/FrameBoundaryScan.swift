public import ByteStream

/// Finding where frames start again after lost bytes: a dissector that missed part of
/// a stream (a capture gap, or a capture that began mid-connection) scans for the next
/// offset where a frame header is plausible and is followed by another plausible header
/// (``BoundaryScan``).
public enum FrameBoundaryScan {
    public typealias Result = BoundaryScan.Result

    /// - Parameters:
    ///   - direction: client frames must be masked and server frames must not; `.unknown` checks neither.
    ///   - allowsRSV1: whether permessage-deflate was negotiated.
    public static func find(in bytes: UnsafeRawBufferPointer, direction: StreamDirection, allowsRSV1: Bool = false,
                            maximumFrameSize: Int = 1 << 26, endOfStream: Bool = false) -> Result {
        BoundaryScan.find(in: bytes, endOfStream: endOfStream) { bytes, index in
            header(in: bytes, at: index, direction: direction, allowsRSV1: allowsRSV1, maximumFrameSize: maximumFrameSize)
        }
    }

    /// Whether a plausible frame header starts at `index` (the rule the scan applies at each
    /// offset; the dissector's detection chains it from a known start).
    public static func header(in bytes: UnsafeRawBufferPointer, at index: Int, direction: StreamDirection, allowsRSV1: Bool,
                              maximumFrameSize: Int = 1 << 26) -> BoundaryScan.Header {
        guard index + 2 <= bytes.count else { return .incomplete }
        let first = bytes[index]
        let second = bytes[index + 1]
        let opcode = first & 0x0F
        let reserved = first & 0x70
        guard reserved == 0 || (allowsRSV1 && reserved == 0x40 && (opcode == 1 || opcode == 2)) else { return .invalid }
        guard [0x0, 0x1, 0x2, 0x8, 0x9, 0xA].contains(opcode) else { return .invalid }
        let masked = second & 0x80 != 0
        switch direction {
        case .clientToServer where !masked, .serverToClient where masked: return .invalid
        default: break
        }
        var length = Int(second & 0x7F)
        var headerLength = 2 + (masked ? 4 : 0)
        if opcode >= 8 && (first & 0x80 == 0 || length > 125) { return .invalid }
        if length == 126 {
            guard index + 4 <= bytes.count else { return .incomplete }
            length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            guard length >= 126 else { return .invalid }
            headerLength += 2
        } else if length == 127 {
            guard index + 10 <= bytes.count else { return .incomplete }
            var value: UInt64 = 0
            for offset in 2..<10 { value = value << 8 | UInt64(bytes[index + offset]) }
            guard value >> 63 == 0, value > 0xFFFF, value <= UInt64(maximumFrameSize) else { return .invalid }
            length = Int(value)
            headerLength += 8
        }
        guard length <= maximumFrameSize else { return .invalid }
        return .valid(total: headerLength + length)
    }
}
