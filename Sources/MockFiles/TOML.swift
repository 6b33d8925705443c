/// A TOML 1.0 reader for `wmq-mock --config`, written here because the one TOML package of
/// the package mirror (TOMLKit) cannot be resolved (it depends on a package the mirror does
/// not have), and because a configuration file is outside input: every error must name its
/// line and column, and the reader is fuzzed like the toolkit's other parsers.
///
/// Everything of TOML 1.0 but dates and times (a configuration of wmq-mock has none; they are
/// refused by name): bare, quoted and dotted keys, tables, arrays of tables, inline tables,
/// basic/literal/multi-line strings with every escape, integers in the four bases, floats
/// (with `inf` and `nan`), booleans, arrays; duplicate keys and redefined tables are errors.
public enum TOML {
    /// The deepest nesting of arrays and inline tables read; deeper input is refused, not
    /// allowed to exhaust the stack.
    public static let maximumDepth = 64

    /// Reads a whole document.
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var parser = Parser(Array(text.utf8))
        return try parser.document()
    }

    /// Reads a document from bytes, which must be UTF-8.
    public static func parse(bytes: [UInt8]) throws(TOMLError) -> TOMLTable {
        if let bad = firstInvalidUTF8(bytes) {
            let line = bytes[..<bad].count(where: { $0 == 0x0A }) + 1
            throw TOMLError(line: line, column: 1, reason: "invalid UTF-8 (byte \(bad))")
        }
        var parser = Parser(bytes)
        return try parser.document()
    }

    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            let before = offset
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): offset += UTF8.width(scalar)
            case .emptyInput: return nil
            case .error: return before
            }
        }
    }
}

/// A TOML value.
public enum TOMLValue: Sendable, Hashable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    /// Values read from the same text are equal: `nan` equals `nan` here.
    public static func == (lhs: TOMLValue, rhs: TOMLValue) -> Bool {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.float(let a), .float(let b)): a == b || (a.isNaN && b.isNaN)
        case (.boolean(let a), .boolean(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.table(let a), .table(let b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .string(let value): hasher.combine(0); hasher.combine(value)
        case .integer(let value): hasher.combine(1); hasher.combine(value)
        case .float(let value): hasher.combine(2); hasher.combine(value.isNaN ? .nan : value)
        case .boolean(let value): hasher.combine(3); hasher.combine(value)
        case .array(let value): hasher.combine(4); hasher.combine(value)
        case .table(let value): hasher.combine(5); hasher.combine(value)
        }
    }

    /// The TOML type name, for messages.
    public var typeName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .float: "float"
        case .boolean: "boolean"
        case .array: "array"
        case .table: "table"
        }
    }
}

/// A table: its keys in the order they were written, their values and the line each was
/// written on (for messages about the meaning of a value, not only its syntax).
public struct TOMLTable: Sendable, Hashable {
    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]
    private var lines: [String: Int] = [:]
    /// Whether the table was opened by a `[header]` (so a second one is an error).
    var isExplicit = false
    /// Whether it is an inline table or was created by a dotted key inside one (closed to later additions).
    var isSealed = false
    /// Whether a dotted key of a key/value line defined it (`apple.color = …`): a `[header]`
    /// may not define it again, though it may add sub-tables to it (TOML 1.0, Tables).
    var isDottedDefined = false

    public init() {}

    public subscript(key: String) -> TOMLValue? { values[key] }

    /// The line `key` was written on (0 when unknown).
    public func line(of key: String) -> Int { lines[key] ?? 0 }

    mutating func set(_ key: String, _ value: TOMLValue, line: Int) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
        if lines[key] == nil { lines[key] = line }
    }

    public static func == (lhs: TOMLTable, rhs: TOMLTable) -> Bool { lhs.keys == rhs.keys && lhs.values == rhs.values }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(keys)
        for key in keys { hasher.combine(values[key]) }
    }
}

/// A syntax error, with its 1-based line and column.
public struct TOMLError: Error, Sendable, Hashable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let reason: String

    public init(line: Int, column: Int, reason: String) {
        self.line = line
        self.column = column
        self.reason = reason
    }

    public var description: String { "line \(line), column \(column): \(reason)" }
}

private struct Parser {
    let bytes: [UInt8]
    var index = 0
    var line = 1
    var lineStart = 0
    var root = TOMLTable()
    /// Where `key = value` lines go: a path of keys from the root; an array of tables on the
    /// way means its last element.
    var current: [String] = []
    var depth = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }
    func peek(_ offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

    func error(_ reason: String, at position: Int? = nil) -> TOMLError {
        let position = position ?? index
        return TOMLError(line: line, column: position - lineStart + 1, reason: reason)
    }

    mutating func advance() {
        if bytes[index] == 0x0A {
            line += 1
            lineStart = index + 1
        }
        index += 1
    }

    mutating func document() throws(TOMLError) -> TOMLTable {
        while true {
            skipBlanks()
            guard let byte = peek else { return root }
            switch byte {
            case UInt8(ascii: "#"): try comment()
            case 0x0A:
                // A blank line is its own end: what follows starts the next line (asking for
                // the end of the line after it refused a table header after a blank line).
                advance()
                continue
            case 0x0D:
                guard peek(1) == 0x0A else { throw error("a carriage return not followed by a line feed") }
                advance(); advance()
                continue
            case UInt8(ascii: "["): try header()
            default: try keyValue(into: current)
            }
            try endOfLine()
        }
    }

    mutating func skipBlanks() {
        while let byte = peek, byte == 0x20 || byte == 0x09 { index += 1 }
    }

    /// Skips blanks, newlines and comments (inside arrays).
    mutating func skipBlanksAndNewlines() throws(TOMLError) {
        while let byte = peek {
            switch byte {
            case 0x20, 0x09, 0x0A: advance()
            case 0x0D where peek(1) == 0x0A: advance(); advance()
            case UInt8(ascii: "#"): try comment()
            default: return
            }
        }
    }

    mutating func comment() throws(TOMLError) {
        while let byte = peek, byte != 0x0A {
            if byte == 0x0D && peek(1) == 0x0A { return }
            if byte < 0x20 && byte != 0x09 || byte == 0x7F { throw error("control character 0x\(String(byte, radix: 16)) in a comment") }
            index += 1
        }
    }

    mutating func endOfLine() throws(TOMLError) {
        skipBlanks()
        if peek == UInt8(ascii: "#") { try comment() }
        guard let byte = peek else { return }
        if byte == 0x0A { advance(); return }
        if byte == 0x0D && peek(1) == 0x0A { advance(); advance(); return }
        throw error("expected the end of the line, found \(describe(byte))")
    }

    func describe(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(Character(UnicodeScalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    // MARK: Tables

    mutating func header() throws(TOMLError) {
        let start = index
        index += 1
        let isArray = peek == UInt8(ascii: "[")
        if isArray { index += 1 }
        skipBlanks()
        let path = try key()
        skipBlanks()
        guard peek == UInt8(ascii: "]") else { throw error("expected ']' to close the table header") }
        index += 1
        if isArray {
            guard peek == UInt8(ascii: "]") else { throw error("expected ']]' to close the array-of-tables header") }
            index += 1
        }
        let headerLine = line
        let column = start - lineStart + 1
        func fail(_ reason: String) -> TOMLError { TOMLError(line: headerLine, column: column, reason: reason) }
        do {
        try Self.descend(&root, path: path[...], walked: []) { (table, walked) throws(TOMLError) in
            let name = walked.joined(separator: ".")
            if isArray {
                // The last key names an array of tables: a new element.
                let last = path[path.count - 1]
                switch table[last] {
                case nil:
                    var element = TOMLTable()
                    element.isExplicit = true
                    table.set(last, .array([.table(element)]), line: headerLine)
                case .array(var elements)? where table.isArrayOfTables(last):
                    var element = TOMLTable()
                    element.isExplicit = true
                    elements.append(.table(element))
                    table.set(last, .array(elements), line: headerLine)
                default:
                    throw fail("[[\(name)]]: '\(last)' is already defined as something other than an array of tables")
                }
            } else {
                let last = path[path.count - 1]
                switch table[last] {
                case nil:
                    var element = TOMLTable()
                    element.isExplicit = true
                    table.set(last, .table(element), line: headerLine)
                case .table(let existing)? where existing.isDottedDefined:
                    throw fail("[\(name)] is already defined by a dotted key")
                case .table(var existing)? where !existing.isExplicit && !existing.isSealed:
                    existing.isExplicit = true
                    table.set(last, .table(existing), line: headerLine)
                default:
                    throw fail("[\(name)] is defined twice")
                }
            }
        }
        } catch {
            throw fail(error.reason)
        }
        current = path
    }

    /// Walks `path` from `table`, creating implicit tables on the way, and calls `body` with
    /// the table that holds the last key. An array of tables on the way stands for its last
    /// element.
    /// `dottedFrom`: for a key/value line, where its dotted key begins in `path` (after the
    /// current table's own path): the tables it walks from there are defined by it, and may
    /// not be tables a `[header]` defined.
    static func descend(_ table: inout TOMLTable, path: ArraySlice<String>, walked: [String], dottedFrom: Int? = nil,
                        body: (inout TOMLTable, [String]) throws(TOMLError) -> Void) throws(TOMLError) {
        guard path.count > 1, let first = path.first else {
            try body(&table, walked + path)
            return
        }
        let rest = path.dropFirst()
        let here = walked + [first]
        let byDottedKey = dottedFrom.map { walked.count >= $0 } ?? false
        switch table[first] {
        case nil:
            var child = TOMLTable()
            child.isDottedDefined = byDottedKey
            try descend(&child, path: rest, walked: here, dottedFrom: dottedFrom, body: body)
            table.set(first, .table(child), line: 0)
        case .table(var child)?:
            if child.isSealed {
                throw TOMLError(line: 0, column: 0, reason: "'\(here.joined(separator: "."))' is an inline table and cannot be extended")
            }
            if byDottedKey && child.isExplicit {
                throw TOMLError(line: 0, column: 0, reason: "'\(here.joined(separator: "."))' is defined by a [table] header: a dotted key cannot add to it")
            }
            try descend(&child, path: rest, walked: here, dottedFrom: dottedFrom, body: body)
            table.set(first, .table(child), line: 0)
        case .array(var elements)? where table.isArrayOfTables(first):
            guard case .table(var last)? = elements.last else { return }
            try descend(&last, path: rest, walked: here, body: body)
            elements[elements.count - 1] = .table(last)
            table.set(first, .array(elements), line: 0)
        case let value?:
            throw TOMLError(line: 0, column: 0, reason: "'\(here.joined(separator: "."))' is already defined (as a value of type \(value.typeName)), not a table")
        }
    }

    // MARK: Keys and values

    mutating func keyValue(into tablePath: [String]) throws(TOMLError) {
        let keyLine = line
        let column = index - lineStart + 1
        let path = try key()
        skipBlanks()
        guard peek == UInt8(ascii: "=") else { throw error("expected '=' after the key '\(path.joined(separator: "."))'") }
        index += 1
        skipBlanks()
        let value = try self.value()
        let full = tablePath + path
        do {
            try Self.descend(&root, path: full[...], walked: [], dottedFrom: tablePath.count) { (table, walked) throws(TOMLError) in
                let last = full[full.count - 1]
                guard table[last] == nil else { throw TOMLError(line: 0, column: 0, reason: "'\(walked.joined(separator: "."))' is defined twice") }
                table.set(last, value, line: keyLine)
            }
        } catch {
            throw TOMLError(line: keyLine, column: column, reason: error.reason)
        }
    }

    /// A dotted key: simple keys separated by '.', blanks allowed around the dots.
    mutating func key() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            skipBlanks()
            parts.append(try simpleKey())
            skipBlanks()
            guard peek == UInt8(ascii: ".") else { return parts }
            index += 1
        }
    }

    mutating func simpleKey() throws(TOMLError) -> String {
        guard let byte = peek else { throw error("expected a key, found the end of the file") }
        switch byte {
        case UInt8(ascii: "\""): return try basicString()
        case UInt8(ascii: "'"): return try literalString()
        default:
            let start = index
            while let byte = peek, Self.isBareKey(byte) { index += 1 }
            guard index > start else { throw error("expected a key, found \(describe(byte))") }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
    }

    static func isBareKey(_ byte: UInt8) -> Bool {
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }

    mutating func value() throws(TOMLError) -> TOMLValue {
        guard let byte = peek else { throw error("expected a value, found the end of the file") }
        switch byte {
        case UInt8(ascii: "\""):
            return .string(peek(1) == UInt8(ascii: "\"") && peek(2) == UInt8(ascii: "\"") ? try multilineBasicString() : try basicString())
        case UInt8(ascii: "'"):
            return .string(peek(1) == UInt8(ascii: "'") && peek(2) == UInt8(ascii: "'") ? try multilineLiteralString() : try literalString())
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "{"): return try inlineTable()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if matches("true") { index += 4; return .boolean(true) }
            if matches("false") { index += 5; return .boolean(false) }
            throw error("expected a value, found \(describe(byte))")
        default:
            return try number()
        }
    }

    func matches(_ word: String) -> Bool {
        let utf8 = Array(word.utf8)
        guard index + utf8.count <= bytes.count, Array(bytes[index..<(index + utf8.count)]) == utf8 else { return false }
        if let next = peek(utf8.count), Self.isBareKey(next) { return false }
        return true
    }

    mutating func nested<T>(_ body: (inout Parser) throws(TOMLError) -> T) throws(TOMLError) -> T {
        depth += 1
        defer { depth -= 1 }
        guard depth <= TOML.maximumDepth else { throw error("arrays and inline tables nested deeper than \(TOML.maximumDepth)") }
        return try body(&self)
    }

    mutating func array() throws(TOMLError) -> TOMLValue {
        try nested { (parser: inout Parser) throws(TOMLError) -> TOMLValue in
            parser.index += 1
            var elements: [TOMLValue] = []
            while true {
                try parser.skipBlanksAndNewlines()
                if parser.peek == UInt8(ascii: "]") { parser.index += 1; return .array(elements) }
                elements.append(try parser.value())
                try parser.skipBlanksAndNewlines()
                switch parser.peek {
                case UInt8(ascii: ",")?: parser.index += 1
                case UInt8(ascii: "]")?: parser.index += 1; return .array(elements)
                case let byte?: throw parser.error("expected ',' or ']' in an array, found \(parser.describe(byte))")
                case nil: throw parser.error("the file ends inside an array")
                }
            }
        }
    }

    mutating func inlineTable() throws(TOMLError) -> TOMLValue {
        try nested { (parser: inout Parser) throws(TOMLError) -> TOMLValue in
            parser.index += 1
            // Parsed as a small document of its own, so dotted keys work the same way.
            var inner = Parser(parser.bytes)
            inner.index = parser.index
            inner.line = parser.line
            inner.lineStart = parser.lineStart
            inner.depth = parser.depth
            inner.skipBlanks()
            if inner.peek == UInt8(ascii: "}") {
                inner.index += 1
            } else {
                while true {
                    inner.skipBlanks()
                    try inner.keyValue(into: [])
                    inner.skipBlanks()
                    switch inner.peek {
                    case UInt8(ascii: ",")?: inner.index += 1
                    case UInt8(ascii: "}")?: inner.index += 1
                    case let byte?: throw inner.error("expected ',' or '}' in an inline table, found \(inner.describe(byte))")
                    case nil: throw inner.error("the file ends inside an inline table")
                    }
                    if inner.bytes[inner.index - 1] == UInt8(ascii: "}") { break }
                }
            }
            parser.index = inner.index
            parser.line = inner.line
            parser.lineStart = inner.lineStart
            var table = inner.root
            table.sealAll()
            return .table(table)
        }
    }

    // MARK: Strings

    mutating func basicString() throws(TOMLError) -> String {
        index += 1
        var scalars = String.UnicodeScalarView()
        while true {
            guard let byte = peek else { throw error("the file ends inside a string") }
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                scalars.append(try escape())
            case 0x0A, 0x0D:
                throw error("a line break inside a one-line string (use \"\"\" for several lines)")
            default:
                scalars.append(try scalar())
            }
        }
    }

    mutating func multilineBasicString() throws(TOMLError) -> String {
        index += 3
        skipFirstNewline()
        var scalars = String.UnicodeScalarView()
        while true {
            guard let byte = peek else { throw error("the file ends inside a \"\"\" string") }
            if byte == UInt8(ascii: "\""), peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") {
                // Up to two quotes may end the content right before the closing three.
                var extra = 0
                while extra < 2, peek(3 + extra) == UInt8(ascii: "\"") { extra += 1 }
                for _ in 0..<extra { scalars.append("\"") }
                index += 3 + extra
                return String(scalars)
            }
            if byte == UInt8(ascii: "\\") {
                // A backslash at the end of a line trims the line break and the blanks that follow.
                var look = index + 1
                while look < bytes.count, bytes[look] == 0x20 || bytes[look] == 0x09 { look += 1 }
                if look < bytes.count, bytes[look] == 0x0A || bytes[look] == 0x0D {
                    index = look
                    while let next = peek, next == 0x20 || next == 0x09 || next == 0x0A || next == 0x0D {
                        if next == 0x0D && peek(1) != 0x0A { throw error("a carriage return not followed by a line feed") }
                        advance()
                    }
                    continue
                }
                scalars.append(try escape())
                continue
            }
            if byte == 0x0A { advance(); scalars.append("\n"); continue }
            if byte == 0x0D {
                guard peek(1) == 0x0A else { throw error("a carriage return not followed by a line feed") }
                index += 1
                continue
            }
            scalars.append(try scalar())
        }
    }

    mutating func literalString() throws(TOMLError) -> String {
        index += 1
        let start = index
        while true {
            guard let byte = peek else { throw error("the file ends inside a string") }
            if byte == UInt8(ascii: "'") {
                let text = String(decoding: bytes[start..<index], as: UTF8.self)
                index += 1
                return text
            }
            if byte == 0x0A || byte == 0x0D { throw error("a line break inside a one-line literal string (use ''')") }
            if byte < 0x20 && byte != 0x09 || byte == 0x7F { throw error("control character 0x\(String(byte, radix: 16)) in a string") }
            index += 1
        }
    }

    mutating func multilineLiteralString() throws(TOMLError) -> String {
        index += 3
        skipFirstNewline()
        var text: [UInt8] = []
        while true {
            guard let byte = peek else { throw error("the file ends inside a ''' string") }
            if byte == UInt8(ascii: "'"), peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") {
                var extra = 0
                while extra < 2, peek(3 + extra) == UInt8(ascii: "'") { extra += 1 }
                text += Array(repeating: UInt8(ascii: "'"), count: extra)
                index += 3 + extra
                return String(decoding: text, as: UTF8.self)
            }
            if byte == 0x0D {
                guard peek(1) == 0x0A else { throw error("a carriage return not followed by a line feed") }
                index += 1
                continue
            }
            if byte < 0x20 && byte != 0x09 && byte != 0x0A || byte == 0x7F {
                throw error("control character 0x\(String(byte, radix: 16)) in a string")
            }
            text.append(byte)
            advance()
        }
    }

    mutating func skipFirstNewline() {
        if peek == 0x0A { advance() } else if peek == 0x0D, peek(1) == 0x0A { advance(); advance() }
    }

    /// One Unicode scalar of a string (the input is valid UTF-8).
    mutating func scalar() throws(TOMLError) -> Unicode.Scalar {
        let byte = bytes[index]
        if byte < 0x20 && byte != 0x09 || byte == 0x7F { throw error("control character 0x\(String(byte, radix: 16)) in a string") }
        let length = byte < 0x80 ? 1 : byte < 0xE0 ? 2 : byte < 0xF0 ? 3 : 4
        guard index + length <= bytes.count else { throw error("invalid UTF-8") }
        let scalar = String(decoding: bytes[index..<(index + length)], as: UTF8.self).unicodeScalars.first
        index += length
        guard let scalar else { throw error("invalid UTF-8") }
        return scalar
    }

    mutating func escape() throws(TOMLError) -> Unicode.Scalar {
        let start = index
        index += 1
        guard let byte = peek else { throw error("the file ends inside an escape") }
        index += 1
        switch byte {
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "e"): return "\u{1B}"
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = byte == UInt8(ascii: "u") ? 4 : 8
            guard index + count <= bytes.count,
                  let value = UInt32(String(decoding: bytes[index..<(index + count)], as: UTF8.self), radix: 16),
                  let scalar = Unicode.Scalar(value)
            else { throw error("\\\(Character(UnicodeScalar(byte))) needs \(count) hex digits naming a Unicode scalar", at: start) }
            index += count
            return scalar
        default:
            throw error("unknown escape \\\(describe(byte))", at: start)
        }
    }

    // MARK: Numbers

    mutating func number() throws(TOMLError) -> TOMLValue {
        let start = index
        while let byte = peek, !(byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == UInt8(ascii: ",")
                                 || byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "#")) {
            index += 1
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        func invalid() -> TOMLError { error("'\(text)' is not a TOML value", at: start) }
        guard !text.isEmpty else {
            if let byte = peek { throw error("expected a value, found \(describe(byte))") }
            throw error("expected a value, found the end of the line")
        }
        let utf8 = Array(text.utf8)
        if utf8.count >= 5, utf8[4] == UInt8(ascii: "-") || (utf8.count >= 3 && utf8[2] == UInt8(ascii: ":")),
           utf8[0..<2].allSatisfy({ (0x30...0x39).contains($0) }) {
            throw error("dates and times are not supported in wmq-mock's configuration", at: start)
        }
        switch text {
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        // Underscores only between digits.
        if text.hasPrefix("_") || text.hasSuffix("_") || text.contains("__") { throw invalid() }
        let signless = text.hasPrefix("+") || text.hasPrefix("-") ? String(text.dropFirst()) : text
        let negative = text.hasPrefix("-")
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where signless.hasPrefix(prefix) {
            guard signless == text else { throw invalid() }  // no sign on non-decimal integers
            let digits = signless.dropFirst(2)
            guard !digits.isEmpty, !digits.hasPrefix("_"), let value = Int64(digits.replacingUnderscores(), radix: radix) else {
                throw invalid()
            }
            return .integer(value)
        }
        let cleaned = text.replacingUnderscores()
        let digitsOnly = signless.replacingUnderscores()
        if digitsOnly.allSatisfy({ $0.isASCII && $0.isNumber }) {
            // No leading zeros [TOML 1.0 Integer].
            if digitsOnly.count > 1 && digitsOnly.hasPrefix("0") { throw invalid() }
            guard let value = Int64(cleaned) else { throw error("'\(text)' does not fit a 64-bit integer", at: start) }
            return .integer(value)
        }
        // A float: digits, an optional fraction, an optional exponent.
        let parts = digitsOnly.split(separator: "e", maxSplits: 1, omittingEmptySubsequences: false)
            .flatMap { $0.split(separator: "E", maxSplits: 1, omittingEmptySubsequences: false) }
        guard let mantissa = parts.first, parts.count <= 2 else { throw invalid() }
        let pieces = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        guard pieces.count <= 2, let whole = pieces.first, !whole.isEmpty, whole.allSatisfy({ $0.isASCII && $0.isNumber }),
              !(whole.count > 1 && whole.hasPrefix("0")),
              pieces.count == 1 || (!pieces[1].isEmpty && pieces[1].allSatisfy({ $0.isASCII && $0.isNumber })),
              pieces.count == 2 || parts.count == 2
        else { throw invalid() }
        if parts.count == 2 {
            var exponent = parts[1]
            if exponent.hasPrefix("+") || exponent.hasPrefix("-") { exponent = exponent.dropFirst() }
            guard !exponent.isEmpty, exponent.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw invalid() }
        }
        guard let value = Double(negative ? "-" + digitsOnly : digitsOnly) else { throw invalid() }
        return .float(value)
    }
}

extension TOMLTable {
    func isArrayOfTables(_ key: String) -> Bool {
        guard case .array(let elements)? = self[key], let first = elements.first, case .table(let table) = first else { return false }
        return table.isExplicit
    }

    /// Closes an inline table and the tables in it to later additions.
    mutating func sealAll() {
        isSealed = true
        for key in keys {
            if case .table(var child)? = self[key] {
                child.sealAll()
                set(key, .table(child), line: line(of: key))
            }
        }
    }
}

extension StringProtocol {
    fileprivate func replacingUnderscores() -> String {
        String(filter { $0 != "_" })
    }
}
