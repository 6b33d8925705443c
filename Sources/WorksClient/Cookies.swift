import Dialects
public import Foundation

/// The cookies that authenticate a Works session (PROTOCOLS.md §1), read from `cookie.json`
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

    /// Parses the contents of a `cookie.json`.
    public static func parse(_ data: Data) throws(WorksClientError) -> WorksCookies {
        let invalid = WorksClientError(.cookie, "Invalid cookie.json format")
        // JSONSerialization loses the order of keys; a cookie header keeps the file's order,
        // so the pairs are read with the project's own ordered JSON reader.
        guard let text = String(data: data, encoding: .utf8),
              let members = (try? JSONReader.parse(text))?.members
        else { throw invalid }
        if members.count == 1, members[0].key == "cookie" {
            guard case .string(let header) = members[0].value, !header.isEmpty else { throw invalid }
            return WorksCookies(header: header)
        }
        var pairs: [String] = []
        for member in members {
            guard case .string(let value) = member.value, Self.isValidName(member.key), !value.contains(";") else {
                throw invalid
            }
            pairs.append("\(member.key)=\(value)")
        }
        guard !pairs.isEmpty else { throw invalid }
        return WorksCookies(header: pairs.joined(separator: "; "))
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
