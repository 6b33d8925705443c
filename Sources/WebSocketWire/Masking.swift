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
        apply(keyValue: value(of: key), phase: phase, source: source, destination: destination, count: count)
    }

    /// The key's four bytes as one number, the first in the low byte (what ``apply(keyValue:phase:source:destination:count:)`` takes).
    @inline(__always)
    public static func value(of key: WebSocketMaskingKey) -> UInt32 {
        UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24
    }

    /// The key read from the four bytes at `bytes`, as ``value(of:)`` gives it. A parser reads
    /// keys this way: NIO's initialiser is generic and not inlinable, a call through witness
    /// tables for every masked frame.
    @inline(__always)
    public static func value(at bytes: UnsafeRawPointer) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self))
    }

    /// As ``apply(key:phase:source:destination:count:)``, with the key as ``value(of:)`` gives it.
    @inline(__always)
    @discardableResult
    public static func apply(
        keyValue: UInt32, phase: Int = 0, source: UnsafeRawPointer, destination: UnsafeMutableRawPointer, count: Int
    ) -> Int {
        // The key from byte `phase` on, as a number with its first byte low; in memory (little-
        // or big-endian alike) the word's byte n is then key[(phase + n) % 4].
        let shift = UInt32((phase & 3) * 8)
        let rotated = shift == 0 ? keyValue : keyValue >> shift | keyValue << (32 - shift)
        let pattern32 = UInt32(littleEndian: rotated)
        let pattern = UInt64(pattern32) | UInt64(pattern32) << 32
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
            let keyByte = UInt8(truncatingIfNeeded: keyValue >> UInt32(((phase + index) & 3) * 8))
            destination.storeBytes(of: byte ^ keyByte, toByteOffset: index, as: UInt8.self)
            index += 1
        }
        return (phase + count) & 3
    }
}
