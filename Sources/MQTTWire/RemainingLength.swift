/// The remaining-length field of a fixed header (MQTT 3.1.1 §2.2.3, MQTT 5.0 §1.5.5): one
/// to four bytes after the packet's first byte. One reader serves the decoder, its fast
/// path and the boundary scan, so that the three agree on every encoding.
enum RemainingLength {
    enum Field {
        /// `value`, encoded in `headerLength - 1` bytes. `isMinimal` is false when the last
        /// byte, after continuation bytes, adds nothing: longer than it needs to be, which
        /// MQTT 5 refuses [MQTT-1.5.5-1] and MQTT 3.1.1 takes.
        case complete(value: Int, headerLength: Int, isMinimal: Bool)
        /// The bytes end inside the field.
        case incomplete
        /// The fourth byte still has its continuation bit set.
        case tooLong
    }

    /// The field of the fixed header whose first byte is at `start`.
    @inline(__always)
    static func read(_ bytes: UnsafeRawBufferPointer, headerAt start: Int) -> Field {
        var value = 0
        for position in 0..<4 {
            let index = start + 1 + position
            guard index < bytes.count else { return .incomplete }
            let byte = bytes[index]
            value |= Int(byte & 0x7F) << (7 * position)
            if byte & 0x80 == 0 {
                return .complete(value: value, headerLength: position + 2, isMinimal: position == 0 || byte != 0)
            }
        }
        return .tooLong
    }
}
