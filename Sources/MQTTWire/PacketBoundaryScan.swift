public import ByteStream

/// Finding where MQTT packets start again after lost bytes (MQTT over plain TCP with a
/// capture gap, or a capture that began mid-connection): the next offset where a fixed
/// header is plausible for its type and is followed by another plausible one
/// (``BoundaryScan``).
public enum PacketBoundaryScan {
    public typealias Result = BoundaryScan.Result

    public static func find(in bytes: UnsafeRawBufferPointer, version: ProtocolVersion,
                            maximumPacketSize: Int = 268_435_460, endOfStream: Bool = false) -> Result {
        BoundaryScan.find(in: bytes, endOfStream: endOfStream) { bytes, index in
            header(in: bytes, at: index, version: version, maximumPacketSize: maximumPacketSize)
        }
    }

    /// Whether a fixed header that is plausible for its type starts at `index` (the rule the
    /// scan applies at each offset; the dissector's detection chains it from a known start).
    public static func header(in bytes: UnsafeRawBufferPointer, at index: Int, version: ProtocolVersion,
                              maximumPacketSize: Int = 268_435_460) -> BoundaryScan.Header {
        guard index + 2 <= bytes.count else { return .incomplete }
        let first = bytes[index]
        guard let type = PacketType(rawValue: first >> 4), type != .auth || version == .v5 else { return .invalid }
        let flags = first & 0x0F
        if type == .publish {
            guard (flags >> 1) & 0x03 != 3, !((flags >> 1) & 0x03 == 0 && flags & 0x08 != 0) else { return .invalid }
        } else if flags != type.requiredFlags {
            return .invalid
        }
        let remaining: Int
        let headerLength: Int
        switch RemainingLength.read(bytes, headerAt: index) {
        case .complete(let value, let length, let isMinimal):
            // MQTT 5 refuses longer length encodings than needed [MQTT-1.5.5-1], so they start no packet.
            guard isMinimal || version != .v5 else { return .invalid }
            (remaining, headerLength) = (value, length)
        case .incomplete: return .incomplete
        case .tooLong: return .invalid
        }
        guard headerLength + remaining <= maximumPacketSize else { return .invalid }
        // What each type's remaining length can be.
        switch type {
        case .pingreq, .pingresp: guard remaining == 0 else { return .invalid }
        case .puback, .pubrec, .pubrel, .pubcomp, .unsuback: guard version == .v5 ? remaining >= 2 : remaining == 2 else { return .invalid }
        case .connack: guard version == .v5 ? remaining >= 2 : remaining == 2 else { return .invalid }
        case .disconnect: guard version == .v5 || remaining == 0 else { return .invalid }
        case .publish:
            guard remaining >= 3 else { return .invalid }
            // The topic length is part of the rule, so without it there is no answer yet (an
            // answer from fewer bytes made scans depend on how the stream was cut: fuzzing).
            guard index + headerLength + 2 <= bytes.count else { return .incomplete }
            let topicLength = Int(bytes[index + headerLength]) << 8 | Int(bytes[index + headerLength + 1])
            guard topicLength + 2 <= remaining, topicLength > 0 || version == .v5 else { return .invalid }
        case .subscribe, .unsubscribe, .suback: guard remaining >= 3 else { return .invalid }
        case .connect: guard remaining >= 10 else { return .invalid }
        case .auth: break
        }
        return .valid(total: headerLength + remaining)
    }
}
