/// Numbers as ASCII decimal digits appended to a ``ByteWriter``: records written in bulk (JSON
/// Lines, timestamps, endpoints) without a String made per number.
public enum DecimalText {
    /// `00` to `99`: two digits per division.
    private static let pairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    /// `value`'s digits, with zeros in front up to `minimumDigits`.
    public static func append(_ value: UInt64, minimumDigits: Int = 1, to out: inout ByteWriter) {
        if minimumDigits > 1, minimumDigits <= 20 {
            // Padded fields (timestamps, fractions) are mostly as wide as asked: the digits are
            // written at that width first, and kept unless the value needs more.
            out.reserve(minimumDigits)
            let start = out.base + out.used
            var rest = value
            var index = minimumDigits
            repeat {
                index -= 1
                start[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while index > 0
            if rest == 0 {
                out.used &+= minimumDigits
                return
            }
        }
        let width = max(digitCount(value), minimumDigits)
        out.reserve(width)
        // Straight into the writer's memory, the last two digits first.
        let start = out.base + out.used
        let table = pairs.utf8Start
        var index = width
        var rest = value
        while rest >= 100 {
            let pair = Int(truncatingIfNeeded: rest % 100) &* 2
            rest /= 100
            index -= 2
            start[index] = table[pair]
            start[index + 1] = table[pair + 1]
        }
        if rest >= 10 {
            let pair = Int(truncatingIfNeeded: rest) &* 2
            index -= 2
            start[index] = table[pair]
            start[index + 1] = table[pair + 1]
        } else {
            index -= 1
            start[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest)
        }
        while index > 0 {
            index -= 1
            start[index] = UInt8(ascii: "0")
        }
        out.used &+= width
    }

    /// How many decimal digits `value` has: a few comparisons and divisions by constants,
    /// whatever its size.
    static func digitCount(_ value: UInt64) -> Int {
        var rest = value
        var count = 1
        @inline(__always) func step(_ power: UInt64, _ digits: Int) {
            if rest >= power {
                rest /= power
                count += digits
            }
        }
        step(10_000_000_000_000_000, 16)
        step(100_000_000, 8)
        step(10_000, 4)
        step(100, 2)
        step(10, 1)
        return count
    }

    /// `String(value)` with zeros in front up to `width` characters, the sign counted among them
    /// (`-5` at width 4 is `00-5`, as such padding has always read).
    public static func append(_ value: Int64, width: Int = 1, to out: inout ByteWriter) {
        if value >= 0 {
            append(UInt64(value), minimumDigits: width, to: &out)
            return
        }
        // Negative: the sign counts towards the width, and the zeros go in front of it.
        let count = digitCount(value.magnitude) + 1
        for _ in count..<max(count, width) { out.append(UInt8(ascii: "0")) }
        out.append(UInt8(ascii: "-"))
        append(value.magnitude, to: &out)
    }
}
