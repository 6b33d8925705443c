import ByteStream
import NIOCore
import Testing

@Suite("StreamBuffer")
struct StreamBufferTests {
    @Test func offsetsAndContiguity() {
        var stream = StreamBuffer(offset: 100)
        stream.append(contentsOf: [1, 2, 3])
        stream.append(contentsOf: [4, 5])
        #expect(stream.readableBytes == 5)
        let five = stream.ensureContiguous(5)
        let six = stream.ensureContiguous(6)
        #expect(five && !six)
        stream.consume(2)
        #expect(stream.offset == 102)
        #expect(stream.byte(at: 0) == 3)
        let rest = stream.readSlice(length: 3)
        #expect(rest == ByteBuffer(bytes: [3, 4, 5]))
        #expect(stream.offset == 105)
    }

    @Test func skipDropsBytesAsTheyArrive() {
        var stream = StreamBuffer()
        stream.append(contentsOf: [1, 2])
        stream.skip(5)
        #expect(stream.isSkipping)
        #expect(stream.offset == 2)
        stream.append(contentsOf: [3, 4, 5, 6, 7])
        #expect(!stream.isSkipping)
        #expect(stream.offset == 5)
        #expect(stream.byte(at: 0) == 6)
    }

    /// A buffer far larger than a window is read in windows: every byte arrives in order,
    /// slices past 16 MiB of the input share a window's storage instead of being copied
    /// one by one, and a unit spanning two windows is made contiguous.
    @Test func largeAppendsAreWindowed() {
        let size = 20 << 20
        var big = ByteBuffer()
        let pattern = (0..<256).map { UInt8($0) }
        for _ in 0..<(size / 256) { big.writeBytes(pattern) }
        var stream = StreamBuffer()
        stream.append(big)
        #expect(stream.readableBytes == size)
        var position = 0
        var sharedStorage = 0
        while position < size {
            let length = min(size - position, 300_001)
            let contiguous = stream.ensureContiguous(length)
            #expect(contiguous)
            guard let first = stream.slice(at: 0, length: 1), let next = stream.slice(at: 1, length: 1) else {
                Issue.record("no slice at \(position)")
                return
            }
            let a = first.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            let b = next.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            if b == a + 1 { sharedStorage += 1 }
            #expect(first.getInteger(at: first.readerIndex, as: UInt8.self) == UInt8(truncatingIfNeeded: position))
            stream.consume(length)
            position += length
        }
        #expect(stream.readableBytes == 0)
        #expect(stream.offset == size)
        #expect(sharedStorage == (size + 300_000) / 300_001)
    }

    /// A unit spanning two appended buffers is made contiguous by copying the rest of the
    /// first and a little of the second (``StreamBuffer/mergeSize``), not the whole second
    /// buffer: once that copy is read, the second buffer is read where it is.
    @Test func aUnitSpanningTwoBuffersCopiesOnlyAroundTheBoundary() {
        let first = ByteBuffer(bytes: (0..<100).map { UInt8($0) })
        let second = ByteBuffer(bytes: (0..<10_000).map { UInt8(truncatingIfNeeded: 100 + $0) })
        var stream = StreamBuffer()
        stream.append(first)
        stream.append(second)
        #expect(stream.readableBytes == 10_100)
        stream.consume(90)
        let contiguous = stream.ensureContiguous(20)
        #expect(contiguous)
        #expect(stream.slice(at: 0, length: 20) == ByteBuffer(bytes: (90..<110).map { UInt8($0) }))
        // The copy holds mergeSize bytes: 10 of the first buffer, the rest of the second.
        stream.consume(StreamBuffer.mergeSize)
        #expect(stream.offset == 90 + StreamBuffer.mergeSize)
        let contiguousRest = stream.ensureContiguous(stream.readableBytes)
        #expect(contiguousRest)
        let secondStart = second.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let next = stream.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(next == secondStart + UInt(StreamBuffer.mergeSize - 10), "read in place, not copied")
        #expect(stream.byte(at: 0) == UInt8(truncatingIfNeeded: 90 + StreamBuffer.mergeSize))
        #expect(stream.readableBytes == 10_100 - 90 - StreamBuffer.mergeSize)
    }

    /// A unit arriving in many pieces is made contiguous once, when its last byte is here:
    /// asking for it before leaves the pieces where they are.
    @Test func aUnitInManyPiecesIsCopiedOnceWhole() {
        var stream = StreamBuffer()
        let bytes = (0..<1_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        for (index, byte) in bytes.enumerated() {
            stream.append(contentsOf: [byte])
            let whole = stream.ensureContiguous(bytes.count)
            #expect(whole == (index == bytes.count - 1))
            let contiguous = stream.withUnsafeReadableBytes { $0.count }
            #expect(contiguous == (whole ? bytes.count : 1), "after byte \(index)")
            if !whole { stream.compact() }
        }
        #expect(stream.slice(at: 0, length: bytes.count).map { Array($0.readableBytesView) } == bytes)
    }

    /// Every byte comes out in order whatever the pieces and however much is asked at once.
    @Test func randomPiecesAndReadsKeepTheStream() {
        var generator = SystemRandomNumberGenerator()
        let total = 200_000
        let bytes = (0..<total).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
        var stream = StreamBuffer()
        var appended = 0
        var read = 0
        while read < total {
            if appended < total, Int.random(in: 0..<3, using: &generator) > 0 {
                let size = min(total - appended, [1, 3, 90, 1_500, 65_000].randomElement(using: &generator) ?? 1)
                stream.append(ByteBuffer(bytes: bytes[appended..<(appended + size)]))
                appended += size
            }
            let want = min(stream.readableBytes, Int.random(in: 0...3_000, using: &generator))
            guard want > 0, stream.ensureContiguous(want), let slice = stream.slice(at: 0, length: want) else {
                stream.compact()
                continue
            }
            #expect(Array(slice.readableBytesView) == Array(bytes[read..<(read + want)]), "at \(read)")
            stream.consume(want)
            read += want
            #expect(stream.offset == read)
            if Int.random(in: 0..<4, using: &generator) == 0 { stream.compact() }
        }
        #expect(stream.readableBytes == 0)
    }

    /// Whether nothing but `buffer` holds its storage: writing to it then moves nothing.
    static func isAlone(_ buffer: inout ByteBuffer) -> Bool {
        let before = buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        let readerIndex = UInt(buffer.readerIndex)
        let after = buffer.withUnsafeMutableReadableBytes { UInt(bitPattern: $0.baseAddress) - readerIndex }
        return before == after
    }

    /// Bytes kept for later do not keep a much larger storage alive: a small slice is copied,
    /// a large one, or one that fills most of its storage, is kept as it is.
    @Test func keptAloneCopiesOnlySmallSlicesOfLargeStorage() {
        var big = ByteBuffer(bytes: (0..<32_768).map { UInt8(truncatingIfNeeded: $0) })
        let small = big.getSlice(at: 1_000, length: 300) ?? ByteBuffer()
        let kept = small.keptAlone()
        #expect(kept == small)
        #expect(kept.storageCapacity < 1_024)
        let large = big.getSlice(at: 0, length: 20_000) ?? ByteBuffer()
        #expect(large.keptAlone().withUnsafeReadableBytes { $0.baseAddress } == large.withUnsafeReadableBytes { $0.baseAddress })
        let whole = ByteBuffer(bytes: [1, 2, 3])
        #expect(whole.keptAlone().withUnsafeReadableBytes { $0.baseAddress } == whole.withUnsafeReadableBytes { $0.baseAddress })
        #expect(!Self.isAlone(&big), "the large slice still shares it")
    }

    /// What a stream keeps while its parser waits for more bytes does not hold on to the large
    /// buffers its pieces were sliced from: neither the rest of an adopted piece once compacted,
    /// nor a small piece waiting behind it.
    @Test func waitingBytesDoNotKeepTheirSourceAlive() {
        var first = ByteBuffer(bytes: [UInt8](repeating: 1, count: 32_768))
        var second = ByteBuffer(bytes: [UInt8](repeating: 2, count: 32_768))
        var stream = StreamBuffer()
        stream.append(first.getSlice(at: 0, length: 500) ?? ByteBuffer())
        stream.append(second.getSlice(at: 100, length: 200) ?? ByteBuffer())
        stream.consume(400)
        stream.compact()
        #expect(Self.isAlone(&first))
        #expect(Self.isAlone(&second))
        #expect(stream.readableBytes == 300)
        let contiguous = stream.ensureContiguous(300)
        #expect(contiguous)
        #expect(stream.slice(at: 0, length: 300) == ByteBuffer(bytes: [UInt8](repeating: 1, count: 100) + [UInt8](repeating: 2, count: 200)))
    }

    @Test func resetForgetsEverything() {
        var stream = StreamBuffer()
        stream.append(contentsOf: [1, 2, 3])
        stream.skip(10)
        stream.reset(offset: 50)
        #expect(stream.readableBytes == 0 && !stream.isSkipping && stream.offset == 50)
    }
}

@Suite("BoundaryScan")
struct BoundaryScanTests {
    /// A toy rule: a unit is 0xAA then a length byte then that many bytes.
    static func rule(_ bytes: UnsafeRawBufferPointer, _ index: Int) -> BoundaryScan.Header {
        guard index + 2 <= bytes.count else { return .incomplete }
        return bytes[index] == 0xAA ? .valid(total: 2 + Int(bytes[index + 1])) : .invalid
    }

    static func scan(_ bytes: [UInt8], endOfStream: Bool = false) -> BoundaryScan.Result {
        bytes.withUnsafeBytes { BoundaryScan.find(in: $0, endOfStream: endOfStream, header: rule) }
    }

    @Test func findsAChainedHeader() {
        // Junk, a false header (0xAA whose successor is junk), then two real units.
        #expect(Self.scan([0x01, 0xAA, 0x01, 0x07, 0x02, 0xAA, 0x01, 0x09, 0xAA, 0x00]) == .found(5))
    }

    /// A unit ending exactly where the bytes end waits for its successor, so that the
    /// answer does not depend on how the stream was cut (the websocket and mqtt-chunked
    /// fuzz targets found chunked and one-shot scans disagreeing); at the end of the
    /// stream it counts.
    @Test func aUnitEndingExactlyAtTheEndWaitsUnlessTheStreamEnded() {
        #expect(Self.scan([0x03, 0xAA, 0x02, 0x01, 0x02]) == .notYet(discardable: 1))
        #expect(Self.scan([0x03, 0xAA, 0x02, 0x01, 0x02], endOfStream: true) == .found(1))
        // Every cut of a stream decides the same offset as the whole stream.
        let stream: [UInt8] = [0x03, 0xAA, 0x02, 0x01, 0x02, 0xAA, 0x01, 0x05, 0xAA, 0x00, 0x09]
        let whole = Self.scan(stream)
        for cut in 1..<stream.count {
            switch Self.scan(Array(stream.prefix(cut))) {
            case .found(let index): #expect(.found(index) == whole, "cut at \(cut)")
            case .notYet(let discardable):
                if case .found(let index) = whole { #expect(discardable <= index, "cut at \(cut)") }
            }
        }
    }

    @Test func waitsWhenItCannotTell() {
        #expect(Self.scan([0x03, 0x04, 0xAA, 0x09, 0x01]) == .notYet(discardable: 2))
        #expect(Self.scan([0x03, 0x04]) == .notYet(discardable: 1))
        #expect(Self.scan([]) == .notYet(discardable: 0))
    }
}
