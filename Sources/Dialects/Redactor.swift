public import ByteStream
import COpenSSL
public import MQTTWire
import NIOCore
public import NIOHTTP1

/// Replaces secrets with stable keyed pseudonyms: the same secret under the same key
/// always becomes the same `‹kind:8 hex›`, so two recordings redacted with one key can
/// still be matched, while the secret itself cannot be read back (HMAC-SHA-256).
public struct Redactor: Sendable {
    private let hash: KeyedHash
    public let names: SecretNames

    public init(key: [UInt8], names: SecretNames = .standard) {
        hash = KeyedHash(key: key)
        self.names = names
    }

    /// A redactor with a fresh random key: pseudonyms are stable within this process only.
    public static func random(names: SecretNames = .standard) -> Redactor {
        var generator = SystemRandomNumberGenerator()
        return Redactor(key: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }, names: names)
    }

    public func pseudonym(_ secret: some Collection<UInt8>, kind: String) -> String {
        if let pseudonym = secret.withContiguousStorageIfAvailable({ pseudonym(bytes: UnsafeRawBufferPointer($0), kind: kind) }) {
            return pseudonym
        }
        return Array(secret).withUnsafeBytes { pseudonym(bytes: $0, kind: kind) }
    }

    public func pseudonym(_ secret: String, kind: String) -> String {
        var secret = secret
        return secret.withUTF8 { pseudonym(bytes: UnsafeRawBufferPointer($0), kind: kind) }
    }

    /// `‹kind:…›` with the first four bytes of the secret's HMAC in hex.
    private func pseudonym(bytes: UnsafeRawBufferPointer, kind: String) -> String {
        String(writing: { appendPseudonym(of: bytes, kind: kind, to: &$0) }, capacity: kind.utf8.count + 16)
    }

    /// The pseudonym of `secret` appended as UTF-8, for records written as bytes.
    public func appendPseudonym(of secret: UnsafeRawBufferPointer, kind: String, to text: inout ByteWriter) {
        var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digest) { digest in
            hash.mac(secret, into: digest.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        text.append("‹")
        text.append(contentsOf: kind)
        text.append(UInt8(ascii: ":"))
        withUnsafeBytes(of: digest) { digest in
            for byte in digest.prefix(4) { Hex.append(byte, to: &text) }
        }
        text.append("›")
    }

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
            case _ where names.contains(name):
                // X-Api-Key, X-Auth-Token, …: the whole value.
                out.add(name: name, value: pseudonym(value, kind: "credential"))
            default: out.add(name: name, value: value)
            }
        }
        return out
    }

    /// A request target, or a whole URL, with the values of its secret query parameters
    /// (``SecretNames``: OneBot's `?access_token=`, `api_key=`, `sig=`) as pseudonyms; a
    /// fragment's parameters too.
    public func redact(target: String) -> String {
        guard let question = target.firstIndex(where: { $0 == "?" || $0 == "#" }) else { return target }
        var out = String(target[..<question])
        var rest = target[question...]
        while let separator = rest.first {
            rest = rest.dropFirst()
            let end = rest.firstIndex(of: "#") ?? rest.endIndex
            let query = rest[..<end].split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
                guard let equals = pair.firstIndex(of: "="), names.contains(pair[..<equals].removingPercentEncodingIfPossible) else { return String(pair) }
                return "\(pair[..<equals])=\(pseudonym(String(pair[pair.index(after: equals)...]), kind: "token"))"
            }
            out += String(separator) + query.joined(separator: "&")
            rest = rest[end...]
        }
        return out
    }

    /// Every secret member (``SecretNames``), at any depth.
    public func redact(json: JSONValue) -> JSONValue {
        switch json {
        case .object(let members):
            return .object(members.map { member in
                if names.contains(member.key) {
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

/// HMAC-SHA-256 under one key (RFC 2104) with the key's two padded blocks hashed once, when
/// the redactor is made. The two states are plain `SHA256_CTX` values that every MAC copies on
/// its stack: OpenSSL 3's one-shot `HMAC()` looked the digest up and hashed the key again for
/// every pseudonym, and even copying prepared `EVP_MD_CTX`s allocated and went through the
/// provider each time, most of the time of a Works annotation. The low-level SHA-256 calls are
/// deprecated in OpenSSL 3 but kept (the shim silences the warning); a test holds the MACs to
/// RFC 4231's vectors.
final class KeyedHash: Sendable {
    /// States that have absorbed the key XOR ipad and XOR opad; only ever read once made.
    private let inner: SHA256_CTX
    private let outer: SHA256_CTX

    init(key: [UInt8]) {
        let blockSize = 64
        var block = key
        if block.count > blockSize {
            // A key longer than a block is hashed first (RFC 2104 §2).
            var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
            var state = SHA256_CTX()
            SHA256_Init(&state)
            SHA256_Update(&state, key, key.count)
            SHA256_Final(&digest, &state)
            block = digest
        }
        block += [UInt8](repeating: 0, count: blockSize - block.count)
        inner = Self.state(absorbing: block.map { $0 ^ 0x36 })
        outer = Self.state(absorbing: block.map { $0 ^ 0x5C })
    }

    private static func state(absorbing block: [UInt8]) -> SHA256_CTX {
        var state = SHA256_CTX()
        SHA256_Init(&state)
        SHA256_Update(&state, block, block.count)
        return state
    }

    /// The 32-byte HMAC-SHA-256 of `message`.
    func mac(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { digest, count in
            mac(message, into: digest.baseAddress!)
            count = 32
        }
    }

    /// The MAC's 32 bytes written to `digest`, nothing allocated.
    func mac(_ message: UnsafeRawBufferPointer, into digest: UnsafeMutablePointer<UInt8>) {
        var state = inner
        SHA256_Update(&state, message.baseAddress, message.count)
        SHA256_Final(digest, &state)
        state = outer
        SHA256_Update(&state, digest, 32)
        SHA256_Final(digest, &state)
    }
}

extension StringProtocol {
    /// The text with `%XX` escapes decoded, or as it is when it has none or a broken one.
    var removingPercentEncodingIfPossible: String {
        guard contains("%") else { return String(self) }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next(), let low = iterator.next(),
                  let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return String(self) }
            bytes.append(value)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
