import ByteStream
import Testing

@Suite("Byte writer")
struct ByteWriterTests {
    /// Whatever mix of pieces is appended, growing past the first capacity many times, the
    /// writer holds what an array given the same pieces holds; truncating drops the tail.
    @Test func likeAnArray() {
        var generator = SystemRandomNumberGenerator()
        var writer = ByteWriter(capacity: 1)
        var expected: [UInt8] = []
        for step in 0..<3_000 {
            switch UInt8.random(in: 0...4, using: &generator) {
            case 0:
                let byte = UInt8.random(in: 0...255, using: &generator)
                writer.append(byte)
                expected.append(byte)
            case 1:
                let piece = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                piece.withUnsafeBytes { writer.append($0) }
                expected += piece
            case 2:
                writer.append("「開発」")
                expected += Array("「開発」".utf8)
            case 3:
                let text = "step \(step) ‹›"
                writer.append(contentsOf: text)
                expected += Array(text.utf8)
            default:
                let keep = Int.random(in: 0...writer.count, using: &generator)
                writer.truncate(to: keep)
                expected.removeLast(expected.count - keep)
            }
            let count = writer.count
            #expect(count == expected.count)
        }
        let bytes = writer.bytes
        #expect(bytes == expected)
        writer.removeAll()
        let emptied = writer.isEmpty && writer.bytes.isEmpty
        #expect(emptied)
    }

    @Test func appendedToAnArray() {
        var bytes: [UInt8] = [1, 2]
        bytes.append(writing: { $0.append(UInt8(3)); $0.append(contentsOf: "ab") })
        #expect(bytes == [1, 2, 3, 0x61, 0x62])
    }
}
