import ByteStream
import Testing

@Suite("UTF-8 validator")
struct UTF8ValidatorTests {
    /// Random mixes of valid characters of every length, broken and overlong sequences,
    /// surrogates and stray continuation bytes: the validator fed all the bytes at once (whole
    /// sequences checked together) finds the same first bad byte as when fed one byte at a
    /// time (the state carried between calls), and calls the bytes valid exactly when Swift does.
    @Test func wholeAndByteByByteAgreeWithSwift() {
        var generator = SystemRandomNumberGenerator()
        let pieces: [[UInt8]] = [
            Array("a".utf8), Array("é".utf8), Array("開".utf8), Array("😀".utf8), Array("\u{800}".utf8),
            Array("\u{D7FF}".utf8), Array("\u{E000}".utf8), Array("\u{10FFFF}".utf8),
            [0x80], [0xC0, 0x80], [0xC3], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xE3, 0x81], [0xE3, 0x41, 0x81],
            [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x9F, 0x98], [0xFF], [0xC3, 0x28],
        ]
        for _ in 0..<20_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &generator) {
                bytes += pieces[Int.random(in: 0..<pieces.count, using: &generator)]
            }
            var whole = UTF8Validator()
            let wholeFailure = whole.validate(bytes)
            var single = UTF8Validator()
            var singleFailure: Int?
            for (index, byte) in bytes.enumerated() where single.validate([byte]) != nil {
                singleFailure = index
                break
            }
            #expect(wholeFailure == singleFailure, "\(bytes)")
            if wholeFailure == nil { #expect(whole.isComplete == single.isComplete, "\(bytes)") }
            let valid = wholeFailure == nil && whole.isComplete
            #expect(valid == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
    }
}
