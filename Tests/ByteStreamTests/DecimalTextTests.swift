import ByteStream
import Testing

@Suite("Decimal text")
struct DecimalTextTests {
    /// The digits are String(value)'s, padded as asked, for random values and the extremes.
    @Test func likeStringPadded() {
        var generator = SystemRandomNumberGenerator()
        var unsigned: [UInt64] = [0, 9, 10, 99, 100, UInt64.max]
        var signed: [Int64] = [0, -1, -9, -10, 5, Int64.min, Int64.max]
        for _ in 0..<5_000 {
            unsigned.append(UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0...63, using: &generator))
            signed.append(Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...62, using: &generator))
        }
        for value in unsigned {
            for minimum in [1, 3, 6, 25] {
                var bytes: [UInt8] = [0x78]
                bytes.append(writing: { DecimalText.append(value, minimumDigits: minimum, to: &$0) })
                let text = String(value)
                #expect(bytes == [0x78] + Array((String(repeating: "0", count: max(0, minimum - text.count)) + text).utf8))
            }
        }
        for value in signed {
            for width in [1, 2, 4] {
                var bytes: [UInt8] = []
                bytes.append(writing: { DecimalText.append(value, width: width, to: &$0) })
                let text = String(value)
                #expect(bytes == Array((String(repeating: "0", count: max(0, width - text.count)) + text).utf8))
            }
        }
    }
}
