public import NIOCore

/// The bytes of one direction of a stream, arriving in pieces: what every incremental
/// parser in wmq reads from. It tracks the stream offset of the next unread byte, skips
/// the rest of a rejected unit as its bytes arrive, and keeps memory bounded.
///
/// Appended buffers are read where they are, not copied together: a unit that spans two of
/// them is made contiguous by copying the unread rest of the first and as much of the next
/// as it needs (at least ``mergeSize`` bytes, so that its header and body are not copied
/// twice), and the next buffer is read in place again once the copy is read. A stream of
/// TCP segments, each ending inside a frame, so has only the bytes around each boundary
/// copied, not every segment.
///
/// Large appends are taken in windows of ``windowSize`` bytes: SwiftNIO slices that start
/// more than 16 MiB into their storage are copies, so reading one huge buffer directly
/// would copy every payload sliced from its tail. A window is copied at most once, in
/// bulk, and payloads sliced from it share its storage.
public struct StreamBuffer: Sendable {
    public static let windowSize = 1 << 20
    /// The fewest bytes copied together when a unit spans two buffers.
    public static let mergeSize = 1024
    /// Put in place of what has been read, so that its storage is freed at once without
    /// allocating an empty one.
    @usableFromInline static let empty = ByteBuffer()

    /// The contiguous bytes parsers read from.
    @usableFromInline var buffer = ByteBuffer()
    /// Appended bytes not yet moved into `buffer`.
    @usableFromInline var backlog: [ByteBuffer] = []
    @usableFromInline var backlogBytes = 0
    /// Bytes of a skipped unit still to be dropped as they arrive.
    @usableFromInline var bytesToSkip = 0
    /// Stream offset of the first unread byte of `buffer`.
    @inlinable public var offset: Int { _offset }
    @usableFromInline var _offset: Int

    public init(offset: Int = 0) {
        _offset = offset
    }

    /// Bytes received and not yet read, contiguous or not.
    @inlinable public var readableBytes: Int { buffer.readableBytes + backlogBytes }

    /// Whether a skip is still dropping bytes.
    @inlinable public var isSkipping: Bool { bytesToSkip > 0 }

    /// Adds bytes. They are adopted as they are when nothing is buffered, else they wait
    /// until the bytes before them are read (or a unit spanning them needs some).
    public mutating func append(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        if buffer.readableBytes == 0 && backlog.isEmpty && bytes.readableBytes <= Self.windowSize {
            buffer = bytes
        } else {
            backlog.append(bytes.keptAlone())
            backlogBytes += bytes.readableBytes
            refill()
        }
        dropSkippedBytes()
    }

    public mutating func append(contentsOf bytes: some Sequence<UInt8>) {
        append(ByteBuffer(bytes: bytes))
    }

    /// Makes at least `count` bytes contiguous when that many were received.
    /// Returns whether they are.
    @inlinable
    public mutating func ensureContiguous(_ count: Int) -> Bool {
        if buffer.readableBytes >= count { return true }
        // Nothing is copied before the whole unit is here: copying what had come each time
        // more came copied a unit arriving in many pieces over and over, once per piece.
        guard backlogBytes > 0, buffer.readableBytes + backlogBytes >= count else { return false }
        gather(count)
        return buffer.readableBytes >= count
    }

    /// Calls `body` with the contiguous unread bytes.
    @inlinable
    public func withUnsafeReadableBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try buffer.withUnsafeReadableBytes(body)
    }

    /// A slice of the contiguous bytes, `at` bytes past the first unread one; nothing is consumed.
    @inlinable
    public func slice(at index: Int, length: Int) -> ByteBuffer? {
        buffer.getSlice(at: buffer.readerIndex + index, length: length)
    }

    /// The byte `at` bytes past the first unread one.
    @inlinable
    public func byte(at index: Int) -> UInt8? {
        buffer.getInteger(at: buffer.readerIndex + index, as: UInt8.self)
    }

    /// A big-endian integer `at` bytes past the first unread one.
    @inlinable
    public func integer<T: FixedWidthInteger>(at index: Int, as type: T.Type = T.self) -> T? {
        buffer.getInteger(at: buffer.readerIndex + index, as: T.self)
    }

    /// Marks `count` contiguous bytes as read.
    @inlinable
    public mutating func consume(_ count: Int) {
        buffer.moveReaderIndex(forwardBy: count)
        _offset += count
    }

    /// Reads `length` contiguous bytes as a slice.
    @inlinable
    public mutating func readSlice(length: Int) -> ByteBuffer? {
        guard let slice = buffer.readSlice(length: length) else { return nil }
        _offset += length
        return slice
    }

    /// Drops the next `count` bytes: those here now, and the rest as they arrive.
    public mutating func skip(_ count: Int) {
        bytesToSkip += count
        dropSkippedBytes()
    }

    /// Forgets everything buffered; the next byte appended has stream offset `offset`
    /// (or the offset after what was forgotten).
    public mutating func reset(offset: Int? = nil) {
        _offset = offset ?? _offset + readableBytes + bytesToSkip
        buffer = Self.empty
        backlog.removeAll()
        backlogBytes = 0
        bytesToSkip = 0
    }

    /// Frees the memory of what was read. Parsers call it whenever they need more bytes, so
    /// that what waits for them does not keep more memory alive than it needs.
    public mutating func compact() {
        if buffer.readableBytes == 0 {
            // Not cleared for reuse: payloads sliced from it may still share its storage,
            // and then clearing would allocate another as large. What comes next is adopted.
            buffer = Self.empty
            refill()
        } else if buffer.readerIndex > 65_536 && buffer.readerIndex > buffer.readableBytes {
            buffer.discardReadBytes()
        } else {
            // An adopted buffer is often a slice of a larger one (a frame read ahead with
            // others): the rest of a unit waiting for more bytes, maybe for long, is copied out.
            buffer = buffer.keptAlone()
        }
    }

    /// Makes `count` bytes contiguous (when that many were received): the next buffer is
    /// taken whole when nothing is left to read here, else the unread rest and the next
    /// bytes are copied together, at least ``mergeSize`` of them.
    @usableFromInline
    mutating func gather(_ count: Int) {
        refill()
        guard buffer.readableBytes < count, backlogBytes > 0 else { return }
        let target = min(buffer.readableBytes + backlogBytes, max(count, Self.mergeSize))
        var merged = ByteBufferAllocator().buffer(capacity: target)
        merged.writeBuffer(&buffer)
        while merged.readableBytes < target, var first = backlog.first {
            let take = min(target - merged.readableBytes, first.readableBytes)
            var piece = first.readSlice(length: take) ?? ByteBuffer()
            merged.writeBuffer(&piece)
            backlogBytes -= take
            if first.readableBytes == 0 { backlog.removeFirst() } else { backlog[0] = first }
        }
        buffer = merged
    }

    /// Takes the next window of the backlog when nothing is left to read here.
    mutating func moveWindow() {
        guard buffer.readableBytes == 0, var first = backlog.first else { return }
        let take = min(Self.windowSize, first.readableBytes)
        let window = first.readSlice(length: take) ?? ByteBuffer()
        if first.readableBytes == 0 {
            backlog.removeFirst()
        } else {
            backlog[0] = first
        }
        backlogBytes -= take
        buffer = window
    }

    private mutating func refill() {
        while buffer.readableBytes == 0 && backlogBytes > 0 { moveWindow() }
    }

    private mutating func dropSkippedBytes() {
        while bytesToSkip > 0 {
            if buffer.readableBytes == 0 {
                guard backlogBytes > 0 else { return }
                moveWindow()
            }
            let now = min(bytesToSkip, buffer.readableBytes)
            consume(now)
            bytesToSkip -= now
        }
    }
}

extension ByteBuffer {
    /// These bytes where a parser can keep them for later without keeping much more memory
    /// alive: as they are when their storage is small, or they are large or fill most of it,
    /// else copied into a storage of their own. A slice of a few hundred bytes can stand for a
    /// buffer of 32 KiB (a capture's frames are read ahead together); held by each of thousands
    /// of connections, or by each of thousands of pieces waiting, that would add up.
    public func keptAlone() -> ByteBuffer {
        if storageCapacity <= 16_384 || readableBytes >= 8192 || readableBytes * 2 >= storageCapacity { return self }
        var copy = ByteBufferAllocator().buffer(capacity: readableBytes)
        copy.writeImmutableBuffer(self)
        return copy
    }
}
