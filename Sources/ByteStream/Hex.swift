/// Bytes as two-digit lower-case hex, for messages and previews.
public enum Hex {
    /// `separator` between bytes: `"10 29 00"` with a space, `"102900"` with none.
    public static func string(_ bytes: some Sequence<UInt8>, separator: String = " ") -> String {
        var text: [UInt8] = []
        for (index, byte) in bytes.enumerated() {
            if index > 0 { text += separator.utf8 }
            append(byte, to: &text)
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// `byte`'s two digits appended as ASCII: for text written as bytes (pseudonyms, JSON escapes).
    public static func append(_ byte: UInt8, to text: inout [UInt8]) {
        text.append(digit(byte >> 4))
        text.append(digit(byte & 0x0F))
    }

    private static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
