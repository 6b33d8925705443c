/// Numbers as ASCII decimal digits appended to a byte array: records written in bulk (JSON
/// Lines, timestamps, endpoints) without a String made per number.
public enum DecimalText {
    /// `value`'s digits, with zeros in front up to `minimumDigits`.
    public static func append(_ value: UInt64, minimumDigits: Int = 1, to bytes: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for UInt64.max's 20 digits
        withUnsafeMutableBytes(of: &digits) { buffer in
            var index = buffer.count
            var rest = value
            repeat {
                index -= 1
                buffer[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            for _ in (buffer.count - index)..<max(buffer.count - index, minimumDigits) { bytes.append(UInt8(ascii: "0")) }
            // As typed bytes: appending the raw slice went through the generic element-wise copy.
            bytes.append(contentsOf: UnsafeMutableRawBufferPointer(rebasing: buffer[index...]).assumingMemoryBound(to: UInt8.self))
        }
    }

    /// `String(value)` with zeros in front up to `width` characters, the sign counted among them
    /// (`-5` at width 4 is `00-5`, as such padding has always read).
    public static func append(_ value: Int64, width: Int = 1, to bytes: inout [UInt8]) {
        var count = value < 0 ? 2 : 1
        var rest = value.magnitude
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        for _ in count..<max(count, width) { bytes.append(UInt8(ascii: "0")) }
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        append(value.magnitude, to: &bytes)
    }
}
