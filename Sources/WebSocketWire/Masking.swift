public import NIOWebSocket

/// RFC 6455 §5.3 masking. Masking is its own inverse, so this masks and unmasks.
///
/// This is the parser's hot loop: it XORs eight bytes at a time with the key repeated
/// into a 64-bit word, and handles only the unaligned tail byte by byte.
public enum WebSocketMasking {
    /// XORs `count` bytes from `source` into `destination` (which may be the same memory),
    /// starting at `phase`, the index in the key of the first byte (the payload offset
    /// modulo 4, for data that continues a frame). Returns the phase after the last byte.
    @inline(__always)
    @discardableResult
    public static func apply(
        key: WebSocketMaskingKey, phase: Int = 0, source: UnsafeRawPointer, destination: UnsafeMutableRawPointer,
        count: Int
    ) -> Int {
        let k0 = UInt64(key[(phase + 0) & 3])
        let k1 = UInt64(key[(phase + 1) & 3])
        let k2 = UInt64(key[(phase + 2) & 3])
        let k3 = UInt64(key[(phase + 3) & 3])
        // Little- or big-endian, the byte at address n of the word is key[(phase + n) % 4]
        // once the word is built in memory order.
        let pattern32 = UInt32(k0) | UInt32(k1) << 8 | UInt32(k2) << 16 | UInt32(k3) << 24
        let pattern = UInt64(UInt32(littleEndian: pattern32)) | UInt64(UInt32(littleEndian: pattern32)) << 32
        var index = 0
        while index + 32 <= count {
            // Four words per turn lets the compiler keep the loads in flight.
            for lane in stride(from: 0, to: 32, by: 8) {
                let word = source.loadUnaligned(fromByteOffset: index + lane, as: UInt64.self)
                destination.storeBytes(of: word ^ pattern, toByteOffset: index + lane, as: UInt64.self)
            }
            index += 32
        }
        while index + 8 <= count {
            let word = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            destination.storeBytes(of: word ^ pattern, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < count {
            let byte = source.load(fromByteOffset: index, as: UInt8.self)
            destination.storeBytes(of: byte ^ key[(phase + index) & 3], toByteOffset: index, as: UInt8.self)
            index += 1
        }
        return (phase + count) & 3
    }
}
