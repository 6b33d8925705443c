/// Bytes as two-digit lower-case hex, for messages and previews.
public enum Hex {
    /// `separator` between bytes: `"10 29 00"` with a space, `"102900"` with none.
    public static func string(_ bytes: some Sequence<UInt8>, separator: String = " ") -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: separator)
    }
}
