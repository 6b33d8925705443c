import ByteStream
import Dialects
import Foundation
import NIOCore
import Testing

@Suite("JSON reader")
struct JSONReaderTests {
    @Test func keepsKeyOrderDuplicatesAndExactNumbers() throws {
        let value = try JSONReader.parse(#"{"z":1,"a":[true,false,null],"z":9007199254740993,"f":-1.5e3}"#)
        #expect(value.members?.map(\.key) == ["z", "a", "z", "f"])
        #expect(value["z"] == .number("1"))
        #expect(value.members?[2].value == .number("9007199254740993"))
        #expect(value.members?[2].value.intValue == 9_007_199_254_740_993)
        #expect(value.description == #"{"z":1,"a":[true,false,null],"z":9007199254740993,"f":-1.5e3}"#)
    }

    @Test func escapesAndSurrogatePairs() throws {
        let value = try JSONReader.parse(#"["a\"b\\c\/\n\u3042\ud83d\ude00", "生の日本語"]"#)
        #expect(value == .array([.string("a\"b\\c/\nあ😀"), .string("生の日本語")]))
    }

    @Test(arguments: [
        (#"{"a":1,}"#, 7),
        (#"{"a" 1}"#, 5),
        (#"[1,2"#, 4),
        (#"{"a":tru}"#, 5),
        ("[\"\u{1}\"]", 2),
        (#"["\ud800"]"#, 8),
        (#"[01]"#, 2),
        (#"{"a":1} x"#, 8),
        (#""unterminated"#, 13),
    ])
    func syntaxErrorsCarryTheOffset(text: String, offset: Int) {
        #expect { _ = try JSONReader.parse(text) } throws: { ($0 as? JSONError)?.offset == offset }
    }

    @Test(arguments: [[0xC3, 0x28], [0xE3, 0x81], [0xED, 0xA0, 0x80], [0x41, 0xF4, 0x90, 0x80, 0x80]] as [[UInt8]])
    func invalidUTF8InAString(bad: [UInt8]) {
        // A bad sequence, a character cut short before the quote, a surrogate, a value above U+10FFFF.
        var bytes = ByteBuffer(string: #"{"a":""#)
        bytes.writeBytes(bad)
        bytes.writeString(#""}"#)
        #expect { _ = try JSONReader.parse(bytes) } throws: { ($0 as? JSONError)?.offset == 6 }
    }

    @Test func multiByteTextOnTheFastPath() throws {
        #expect(try JSONReader.parse(#"{"a":"開発チーム 😀 é"}"#)["a"] == .string("開発チーム 😀 é"))
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect { _ = try JSONReader.parse(deep) } throws: { ($0 as? JSONError)?.reason.contains("nesting") == true }
    }
}

@Suite("JSON string writing")
struct JSONStringWritingTests {
    /// One character at a time: the oracle for the writer that skips eight bytes at a time.
    static func reference(_ text: String) -> [UInt8] {
        var out: [UInt8] = [0x22]
        for byte in text.utf8 {
            switch byte {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, 0x6E]
            case 0x0D: out += [0x5C, 0x72]
            case 0x09: out += [0x5C, 0x74]
            case ..<0x20: out += Array(String(format: "\\u%04x", byte).utf8)
            default: out.append(byte)
            }
        }
        return out + [0x22]
    }

    @Test func escapesAtEveryPositionOfAWord() {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["a", "\"", "\\", "\n", "\u{01}", "\u{1F}", " ", "~", "\u{7F}", "é", "日本", "😀", "\t", "\r", "/"]
        for length in 0..<40 {
            for _ in 0..<200 {
                let text = (0..<length).map { _ in pieces.randomElement(using: &generator) ?? "a" }.joined()
                var out: [UInt8] = []
                out.append(writing: { JSONValue.writeString(text, to: &$0) })
                #expect(out == Self.reference(text), "\(text.debugDescription)")
            }
        }
    }
}
