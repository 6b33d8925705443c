/// How many terminal columns text takes: East Asian Wide and Fullwidth characters (CJK,
/// kana, Hangul, fullwidth forms) and emoji take two, combining marks none (Unicode Standard
/// Annex #11, as terminals apply it). The side-by-side diff pads by this, so that a column of
/// Japanese text does not push the other column out of line.
enum DisplayWidth {
    static func of(_ text: String) -> Int {
        text.reduce(0) { $0 + of($1) }
    }

    static func of(_ character: Character) -> Int {
        var width = 0
        for scalar in character.unicodeScalars {
            if isWide(scalar) || scalar.properties.isEmojiPresentation { return 2 }
            if width == 0 && !isZeroWidth(scalar) { width = 1 }
        }
        return width
    }

    static func isZeroWidth(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return true
        default: return (0xFE00...0xFE0F).contains(scalar.value)
        }
    }

    /// East Asian Width W and F.
    static func isWide(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x1100...0x115F, 0x231A...0x231B, 0x2329...0x232A, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF,
             0x4E00...0x9FFF, 0xA000...0xA4CF, 0xA960...0xA97F, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE10...0xFE19,
             0xFE30...0xFE6F, 0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x1B000...0x1B2FF, 0x1F300...0x1F64F, 0x1F900...0x1F9FF,
             0x20000...0x2FFFD, 0x30000...0x3FFFD:
            return true
        default:
            return false
        }
    }

    /// `text` cut to at most `columns` columns (with an ellipsis when cut), then padded with
    /// spaces to exactly `columns`.
    static func fit(_ text: String, columns: Int) -> String {
        let width = of(text)
        if width <= columns { return text + String(repeating: " ", count: columns - width) }
        var kept = ""
        var used = 0
        for character in text {
            let next = of(character)
            if used + next > columns - 1 { break }
            kept.append(character)
            used += next
        }
        return kept + "…" + String(repeating: " ", count: max(0, columns - 1 - used))
    }
}
