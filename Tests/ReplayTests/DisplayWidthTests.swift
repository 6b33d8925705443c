@testable import Replay
import Testing

/// The side-by-side diff pads by display width (Unicode Annex #11): Japanese text and emoji
/// take two columns each, so the replayed column stays in line.
@Suite("Display width")
struct DisplayWidthTests {
    @Test(arguments: [("abc", 3), ("明日のリリース", 14), ("ｱｲｳ", 3), ("ＡＢ", 4), ("準備👍", 6), ("é", 1), ("e\u{301}", 1),
                      ("한국어", 6), ("", 0)])
    func widths(text: String, columns: Int) {
        #expect(DisplayWidth.of(text) == columns, "\(text)")
    }

    @Test func cellsLineUp() {
        for text in ["PUBLISH \"notification\" 明日のリリース、準備できました👍", "PUBLISH \"a/b\" ascii only", "田中"] {
            let cell = DisplayWidth.fit(text, columns: 30)
            #expect(DisplayWidth.of(cell) == 30, "\(cell)")
        }
        // Cut in the middle of a wide character: the ellipsis and a space keep the width.
        #expect(DisplayWidth.fit("日本語日本語", columns: 6) == "日本… ")
    }
}
