import Dialects
public import Foundation

/// The cookies that authenticate a Works session (docs/protocols.md §1), read from `cookie.json`
/// in either accepted form: a flat object `{"NAME": "VALUE", …}`, joined as
/// `NAME=VALUE; NAME=VALUE` in the file's order, or `{"cookie": "<raw header>"}`.
///
/// The value is a secret: ``description`` shows the names only.
public struct WorksCookies: Sendable, Hashable, CustomStringConvertible {
    /// The `Cookie` header value.
    public let header: String

    public init(header: String) {
        self.header = header
    }

    /// Reads `cookie.json`. Errors carry the seed's `CookieError` messages:
    /// "cookie.json not found" and "Invalid cookie.json format".
    public static func load(path: String) throws(WorksClientError) -> WorksCookies {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                throw WorksClientError(.cookie, "cannot read \(path)")
            }
            throw WorksClientError(.cookie, "cookie.json not found (\(path))")
        }
        return try parse(data)
    }

    /// Parses the contents of a `cookie.json`. What is wrong is said with its line and column:
    /// the file is hand-edited or exported from a browser, and "invalid" alone sends a user
    /// hunting.
    public static func parse(_ data: Data) throws(WorksClientError) -> WorksCookies {
        func invalid(_ why: String) -> WorksClientError {
            WorksClientError(.cookie, "Invalid cookie.json format: \(why); expected {\"NAME\": \"VALUE\", …} or {\"cookie\": \"NAME=VALUE; …\"}")
        }
        // JSONSerialization loses the order of keys; a cookie header keeps the file's order,
        // so the pairs are read with the project's own ordered JSON reader.
        guard let text = String(data: data, encoding: .utf8) else { throw invalid("the file is not UTF-8 text") }
        let json: JSONValue
        do {
            json = try JSONReader.parse(text)
        } catch {
            let (line, column) = Self.position(of: error.offset, in: Array(text.utf8))
            throw invalid("line \(line), column \(column): \(error.reason)")
        }
        guard let members = json.members else { throw invalid("the file holds no JSON object") }
        if members.count == 1, members[0].key == "cookie" {
            guard case .string(let header) = members[0].value, !header.isEmpty else { throw invalid("\"cookie\" is empty or not text") }
            return WorksCookies(header: header)
        }
        var pairs: [String] = []
        for member in members {
            guard case .string(let value) = member.value else { throw invalid("the value of \"\(member.key)\" is not text") }
            guard Self.isValidName(member.key) else { throw invalid("\"\(member.key)\" is not a cookie name (no spaces or ()<>@,;:\\\"/[]?={})") }
            guard !value.contains(";") else { throw invalid("the value of \"\(member.key)\" holds a ';'") }
            pairs.append("\(member.key)=\(value)")
        }
        guard !pairs.isEmpty else { throw invalid("the object is empty") }
        return WorksCookies(header: pairs.joined(separator: "; "))
    }

    /// Line and column (from 1, in characters) of a byte offset.
    static func position(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        let before = bytes.prefix(max(0, min(offset, bytes.count)))
        let line = before.filter { $0 == 0x0A }.count + 1
        let lineStart = before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        let column = String(decoding: before[lineStart...], as: UTF8.self).count + 1
        return (line, column)
    }

    /// The cookie names, for logs and `--help` output; never the values.
    public var names: [String] {
        header.split(separator: ";").compactMap { pair in
            pair.split(separator: "=", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    public var description: String { "cookies(\(names.joined(separator: ", ")); values redacted)" }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !"()<>@,;:\\\"/[]?={}".utf8.contains($0) }
    }
}
