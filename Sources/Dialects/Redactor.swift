import COpenSSL
public import MQTTWire
import NIOCore
public import NIOHTTP1

/// Replaces secrets with stable keyed pseudonyms: the same secret under the same key
/// always becomes the same `‹kind:8 hex›`, so two recordings redacted with one key can
/// still be matched, while the secret itself cannot be read back (HMAC-SHA-256).
public struct Redactor: Sendable {
    private let key: [UInt8]

    /// JSON member names whose values are secrets.
    public static let secretJSONKeys: Set<String> = ["token", "password", "access_token", "cookie", "authorization"]
    /// Headers whose values are secrets.
    public static let secretHeaders: [String] = ["Cookie", "Set-Cookie", "Authorization", "Proxy-Authorization"]

    public init(key: [UInt8]) {
        self.key = key
    }

    /// A redactor with a fresh random key: pseudonyms are stable within this process only.
    public static func random() -> Redactor {
        var generator = SystemRandomNumberGenerator()
        return Redactor(key: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    public func pseudonym(_ secret: some Collection<UInt8>, kind: String) -> String {
        let message = Array(secret)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = key.withUnsafeBufferPointer { keyBytes in
            HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count), message, message.count, &digest, &length)
        }
        let hex = digest.prefix(4).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        return "‹\(kind):\(hex)›"
    }

    public func pseudonym(_ secret: String, kind: String) -> String { pseudonym(Array(secret.utf8), kind: kind) }

    /// `A=1; B=2` → `A=‹cookie:…›; B=‹cookie:…›`: names stay readable, values do not.
    public func redact(cookieHeader: String) -> String {
        cookieHeader.split(separator: ";", omittingEmptySubsequences: false).map { part in
            guard let equals = part.firstIndex(of: "=") else { return String(part) }
            let name = part[part.startIndex..<equals]
            return "\(name)=\(pseudonym(String(part[part.index(after: equals)...]), kind: "cookie"))"
        }.joined(separator: ";")
    }

    public func redact(headers: HTTPHeaders) -> HTTPHeaders {
        var out = HTTPHeaders()
        for (name, value) in headers {
            switch name.lowercased() {
            case "cookie": out.add(name: name, value: redact(cookieHeader: value))
            case "set-cookie":
                let pair = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
                let rest = pair.count > 1 ? ";" + pair[1] : ""
                out.add(name: name, value: redact(cookieHeader: String(pair.first ?? "")) + rest)
            case "authorization", "proxy-authorization":
                let parts = value.split(separator: " ", maxSplits: 1)
                let scheme = parts.count > 1 ? "\(parts[0]) " : ""
                out.add(name: name, value: scheme + pseudonym(String(parts.last ?? ""), kind: "credential"))
            default: out.add(name: name, value: value)
            }
        }
        return out
    }

    /// A request target with the values of its secret query parameters (``secretJSONKeys``:
    /// OneBot's `?access_token=`, a `token=`) as pseudonyms.
    public func redact(target: String) -> String {
        guard let question = target.firstIndex(of: "?") else { return target }
        let query = target[target.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            guard let equals = pair.firstIndex(of: "="), Self.secretJSONKeys.contains(pair[..<equals].lowercased()) else { return String(pair) }
            return "\(pair[..<equals])=\(pseudonym(String(pair[pair.index(after: equals)...]), kind: "token"))"
        }
        return String(target[...question]) + query.joined(separator: "&")
    }

    /// Every secret member (``secretJSONKeys``), at any depth.
    public func redact(json: JSONValue) -> JSONValue {
        switch json {
        case .object(let members):
            return .object(members.map { member in
                if Self.secretJSONKeys.contains(member.key.lowercased()) {
                    let secret = member.value.stringValue ?? member.value.description
                    return JSONMember(key: member.key, value: .string(pseudonym(secret, kind: member.key.lowercased())))
                }
                return JSONMember(key: member.key, value: redact(json: member.value))
            })
        case .array(let items): return .array(items.map { redact(json: $0) })
        default: return json
        }
    }

    /// A CONNECT with its password replaced by its pseudonym.
    public func redact(connect: ConnectPacket) -> ConnectPacket {
        var connect = connect
        if let password = connect.password {
            connect.password = ByteBuffer(string: pseudonym(password.readableBytesView, kind: "password"))
        }
        return connect
    }
}
