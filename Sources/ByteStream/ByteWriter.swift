/// Bytes appended behind a raw pointer: the output of records written in bulk (`wmq-decode
/// --format jsonl` writes over a hundred megabytes of JSON per run, in pieces of a few bytes).
/// An append is a capacity check, then a store or a copy. Appending to `[UInt8]` also checked
/// that the array's buffer was unique and went through a call per piece; written that way, the
/// records took about a tenth of the decoder's time in appending alone.
///
/// Not copyable: the writer owns its memory and frees it when it goes.
public struct ByteWriter: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var used: Int
    @usableFromInline var capacity: Int

    public init(capacity: Int = 1024) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
        used = 0
    }

    deinit {
        base.deallocate()
    }

    /// How many bytes are written.
    @inlinable public var count: Int { used }

    @inlinable public var isEmpty: Bool { used == 0 }

    /// Makes room for `extra` more bytes, so that many appends after it never move the bytes.
    @inlinable @inline(__always) public mutating func reserve(_ extra: Int) {
        if capacity &- used < extra { grow(extra) }
    }

    @usableFromInline mutating func grow(_ extra: Int) {
        let wanted = max(capacity * 2, used + extra)
        let larger = UnsafeMutablePointer<UInt8>.allocate(capacity: wanted)
        larger.initialize(from: base, count: used)
        base.deallocate()
        base = larger
        capacity = wanted
    }

    @inlinable @inline(__always) public mutating func append(_ byte: UInt8) {
        reserve(1)
        base[used] = byte
        used &+= 1
    }

    @inlinable @inline(__always) public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        UnsafeMutableRawPointer(base + used).copyMemory(from: source, byteCount: bytes.count)
        used &+= bytes.count
    }

    /// A literal's UTF-8.
    @inlinable @inline(__always) public mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// A string's UTF-8.
    public mutating func append(contentsOf text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    public mutating func append(contentsOf bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Drops what was written after the first `count` bytes.
    @inlinable public mutating func truncate(to count: Int) {
        precondition(count >= 0 && count <= used, "truncating a ByteWriter beyond what it holds")
        used = count
    }

    public mutating func removeAll() {
        used = 0
    }

    /// The bytes written so far.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: base, count: used))
    }

    /// A copy of the bytes written so far.
    public var bytes: [UInt8] {
        withUnsafeBytes { Array($0) }
    }
}

extension String {
    /// The UTF-8 text `body` writes: for descriptions made by the same code that writes records.
    public init(writing body: (inout ByteWriter) -> Void, capacity: Int = 64) {
        var writer = ByteWriter(capacity: capacity)
        body(&writer)
        self = writer.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }
}

extension Array where Element == UInt8 {
    /// Appends what `body` writes: for callers that keep their bytes in an array.
    public mutating func append(writing body: (inout ByteWriter) -> Void) {
        var writer = ByteWriter(capacity: 256)
        body(&writer)
        writer.withUnsafeBytes { append(contentsOf: $0) }
    }
}
