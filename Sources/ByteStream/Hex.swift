/// Bytes as two-digit lower-case hex, for messages and previews.
public enum Hex {
    /// `separator` between bytes: `"10 29 00"` with a space, `"102900"` with none.
    public static func string(_ bytes: some Sequence<UInt8>, separator: String = " ") -> String {
        String(writing: { text in
            for (index, byte) in bytes.enumerated() {
                if index > 0 { text.append(contentsOf: separator) }
                append(byte, to: &text)
            }
        })
    }

    /// `byte`'s two digits appended as ASCII: for text written as bytes (pseudonyms, JSON escapes).
    public static func append(_ byte: UInt8, to text: inout ByteWriter) {
        text.append(digit(byte >> 4))
        text.append(digit(byte & 0x0F))
    }

    private static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
