import Capture
import COpenSSL
import NIOCore

/// An NSS key log (`SSLKEYLOGFILE`, as browsers and Python's `ssl` write it): per client
/// random, the TLS 1.2 master secret and the TLS 1.3 application traffic secrets.
public struct TLSKeyLog: Sendable {
    struct Secrets: Sendable {
        var master: [UInt8]?
        var clientTraffic: [UInt8]?
        var serverTraffic: [UInt8]?
    }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "key log line \(line): \(reason)" }
    }

    var secrets: [[UInt8]: Secrets] = [:]
    public var count: Int { secrets.count }

    /// Lines `LABEL <client random hex> <secret hex>`; `#` comments and labels not needed here
    /// (handshake secrets, exporter secrets) are passed over.
    public init(text: String) throws(ParseError) {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let label = fields.first, !label.hasPrefix("#") else { continue }
            let known = ["CLIENT_RANDOM", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"]
            guard known.contains(String(label)) else { continue }
            guard fields.count == 3, let random = Self.hex(fields[1]), random.count == 32, let secret = Self.hex(fields[2]), !secret.isEmpty else {
                throw ParseError(line: index + 1, reason: "\(label) needs a 32-byte client random and a secret, in hex")
            }
            switch label {
            case "CLIENT_RANDOM": secrets[random, default: Secrets()].master = secret
            case "CLIENT_TRAFFIC_SECRET_0": secrets[random, default: Secrets()].clientTraffic = secret
            default: secrets[random, default: Secrets()].serverTraffic = secret
            }
        }
    }

    static func hex(_ text: Substring) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 2)
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out
    }
}

/// One TCP connection's TLS, decrypted with a key log: the records of each direction are
/// followed (ClientHello and ServerHello in the clear give the randoms, the version and the
/// cipher suite), and application data comes out as plaintext for the rest of the pipeline.
/// TLS 1.2 with AES-GCM and ChaCha20-Poly1305 suites (ECDHE, DHE, RSA key exchange), TLS 1.3
/// with TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256.
/// libcrypto does the cryptography; this type only parses records and derives keys.
struct TLSDecryptor {
    enum Output {
        case plaintext(ByteBuffer)
        /// The connection cannot be (or can no longer be) decrypted; the reason.
        case problem(String)
    }

    struct Suite {
        var aead: Aead
        var keyLength: Int
        /// TLS 1.2 GCM: the 4-byte implicit part; ChaCha20 and TLS 1.3: 12 bytes.
        var ivLength: Int
        var sha384: Bool

        enum Aead { case aesGCM, chacha20 }

        static func named(_ code: UInt16) -> Suite? {
            switch code {
            case 0xC02F, 0xC02B, 0x009E, 0x009C: Suite(aead: .aesGCM, keyLength: 16, ivLength: 4, sha384: false)
            case 0xC030, 0xC02C, 0x009F, 0x009D: Suite(aead: .aesGCM, keyLength: 32, ivLength: 4, sha384: true)
            case 0xCCA8, 0xCCA9, 0xCCAA: Suite(aead: .chacha20, keyLength: 32, ivLength: 12, sha384: false)
            case 0x1301: Suite(aead: .aesGCM, keyLength: 16, ivLength: 12, sha384: false)
            case 0x1302: Suite(aead: .aesGCM, keyLength: 32, ivLength: 12, sha384: true)
            case 0x1303: Suite(aead: .chacha20, keyLength: 32, ivLength: 12, sha384: false)
            default: nil
            }
        }
    }

    struct Keys {
        var key: [UInt8]
        var iv: [UInt8]
        var sequence: UInt64 = 0
    }

    struct Side {
        var buffer: [UInt8] = []
        /// TLS 1.2: after this side's ChangeCipherSpec.
        var encrypted = false
        var keys: Keys?
        /// TLS 1.3: an application record decrypted already (failures are no longer handshake records).
        var applicationStarted = false
        var broken = false
    }

    let keyLog: TLSKeyLog
    private var clientRandom: [UInt8]?
    private var serverRandom: [UInt8]?
    private var suite: Suite?
    private var suiteCode: UInt16 = 0
    private var tls13 = false
    private var sides: [Bool: Side] = [true: Side(), false: Side()]
    private(set) var failed = false
    private var reported = false

    init(keyLog: TLSKeyLog) {
        self.keyLog = keyLog
    }

    /// Whether bytes open a TLS connection: a handshake record of TLS 1.0–1.3.
    static func looksLikeClientHello(_ bytes: ByteBuffer) -> Bool {
        guard let head = bytes.getBytes(at: bytes.readerIndex, length: min(3, bytes.readableBytes)), head.count == 3 else { return false }
        return head[0] == 0x16 && head[1] == 0x03 && head[2] <= 0x04
    }

    mutating func feed(_ bytes: ByteBuffer, fromClient: Bool) -> [Output] {
        guard !failed, var side = sides[fromClient], !side.broken else { return [] }
        side.buffer += bytes.readableBytesView
        var outputs: [Output] = []
        var offset = 0
        while side.buffer.count - offset >= 5 {
            let type = side.buffer[offset]
            let length = Int(side.buffer[offset + 3]) << 8 | Int(side.buffer[offset + 4])
            guard length <= 18_432 else {
                side.broken = true
                outputs.append(.problem("TLS record of \(length) bytes (the limit is 18,432): not TLS, or the capture lost bytes"))
                break
            }
            guard side.buffer.count - offset >= 5 + length else { break }
            let header = Array(side.buffer[offset..<offset + 5])
            let fragment = side.buffer[(offset + 5)..<(offset + 5 + length)]
            offset += 5 + length
            outputs += record(type: type, header: header, fragment: fragment, fromClient: fromClient, side: &side)
            if side.broken || failed { break }
        }
        side.buffer.removeFirst(min(offset, side.buffer.count))
        sides[fromClient] = side
        return outputs
    }

    /// A direction lost bytes: its records can no longer be found or decrypted.
    mutating func lost(fromClient: Bool) -> [Output] {
        guard sides[fromClient]?.broken == false else { return [] }
        sides[fromClient]?.broken = true
        return [.problem("bytes missing from the capture: the rest of this TLS direction cannot be decrypted")]
    }

    private mutating func record(type: UInt8, header: [UInt8], fragment: ArraySlice<UInt8>, fromClient: Bool, side: inout Side) -> [Output] {
        switch type {
        case 20:  // ChangeCipherSpec: TLS 1.2 encrypts from here on; TLS 1.3 sends it for middleboxes only
            guard !tls13 else { return [] }
            side.encrypted = true
            side.keys = keys(fromClient: fromClient)
            return side.keys == nil ? fail() : []
        case 22 where !side.encrypted:  // a handshake in the clear: the hellos
            handshake(fragment, fromClient: fromClient)
            // The ServerHello may have given this side its TLS 1.3 keys (set on `sides`, not on this copy).
            if let updated = sides[fromClient], updated.encrypted {
                side.encrypted = true
                side.keys = updated.keys
            }
            return failed ? [.problem(problem())] : []
        case 22, 23, 21:
            // Encrypted: TLS 1.2 after ChangeCipherSpec (its Finished first), TLS 1.3 after the hellos.
            guard side.encrypted || tls13 else { return [] }
            return decrypt(type: type, header: header, fragment: fragment, fromClient: fromClient, side: &side)
        default:
            return []
        }
    }

    private mutating func handshake(_ fragment: ArraySlice<UInt8>, fromClient: Bool) {
        let bytes = Array(fragment)
        guard bytes.count >= 38 else { return }
        if fromClient, bytes[0] == 1, clientRandom == nil {
            clientRandom = Array(bytes[6..<38])
        } else if !fromClient, bytes[0] == 2, serverRandom == nil {
            serverRandom = Array(bytes[6..<38])
            var at = 38
            guard at < bytes.count else { return }
            at += 1 + Int(bytes[at])  // session id
            guard at + 3 <= bytes.count else { return }
            suiteCode = UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
            suite = Suite.named(suiteCode)
            at += 3  // suite, compression
            if at + 2 <= bytes.count {
                let end = min(bytes.count, at + 2 + (Int(bytes[at]) << 8 | Int(bytes[at + 1])))
                at += 2
                while at + 4 <= end {
                    let kind = UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
                    let size = Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
                    if kind == 0x002B, size == 2, at + 6 <= end, bytes[at + 4] == 0x03, bytes[at + 5] == 0x04 { tls13 = true }
                    at += 4 + size
                }
            }
            if suite == nil { failed = true }
            if tls13 {
                let clientKeys = keys(fromClient: true)
                let serverKeys = keys(fromClient: false)
                sides[true]?.keys = clientKeys
                sides[false]?.keys = serverKeys
                sides[true]?.encrypted = true
                sides[false]?.encrypted = true
                if sides[true]?.keys == nil || sides[false]?.keys == nil { failed = true }
            }
        }
    }

    private mutating func fail() -> [Output] {
        failed = true
        return [.problem(problem())]
    }

    private func problem() -> String {
        if suite == nil { return "TLS cipher suite 0x\(String(suiteCode, radix: 16, uppercase: true)) cannot be decrypted (AES-GCM and ChaCha20-Poly1305 suites can)" }
        let random: String = clientRandom.map { bytes in bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() } ?? "?"
        return "no secret in the key log for client random \(random.prefix(16))…"
    }

    /// The keys of one direction, from the key log.
    private func keys(fromClient: Bool) -> Keys? {
        guard let suite, let clientRandom, let secrets = keyLog.secrets[clientRandom] else { return nil }
        if tls13 {
            guard let secret = fromClient ? secrets.clientTraffic : secrets.serverTraffic else { return nil }
            return Keys(key: TLSCrypto.expandLabel(secret, "key", length: suite.keyLength, sha384: suite.sha384),
                        iv: TLSCrypto.expandLabel(secret, "iv", length: 12, sha384: suite.sha384))
        }
        guard let master = secrets.master, let serverRandom else { return nil }
        let block = TLSCrypto.prf(master, label: "key expansion", seed: serverRandom + clientRandom,
                                  length: 2 * suite.keyLength + 2 * suite.ivLength, sha384: suite.sha384)
        let keyAt = fromClient ? 0 : suite.keyLength
        let ivAt = 2 * suite.keyLength + (fromClient ? 0 : suite.ivLength)
        return Keys(key: Array(block[keyAt..<keyAt + suite.keyLength]), iv: Array(block[ivAt..<ivAt + suite.ivLength]))
    }

    private mutating func decrypt(type: UInt8, header: [UInt8], fragment: ArraySlice<UInt8>, fromClient: Bool, side: inout Side) -> [Output] {
        guard let suite else { return [] }
        guard var keys = side.keys else {
            // TLS 1.2 data before a ChangeCipherSpec is not encrypted (nothing MQTT would send).
            return []
        }
        let sequence = withUnsafeBytes(of: keys.sequence.bigEndian, Array.init)
        let fragmentBytes = Array(fragment)
        guard fragmentBytes.count >= 16 + (tls13 || suite.aead == .chacha20 ? 0 : 8) else { return [] }
        var nonce: [UInt8]
        var ciphertext: ArraySlice<UInt8>
        var aad: [UInt8]
        if tls13 {
            nonce = keys.iv
            for index in 0..<8 { nonce[4 + index] ^= sequence[index] }
            ciphertext = fragmentBytes[..<(fragmentBytes.count - 16)]
            aad = header
        } else {
            if suite.aead == .aesGCM {
                nonce = keys.iv + fragmentBytes[0..<8]
                ciphertext = fragmentBytes[8..<(fragmentBytes.count - 16)]
            } else {
                nonce = keys.iv
                for index in 0..<8 { nonce[4 + index] ^= sequence[index] }
                ciphertext = fragmentBytes[..<(fragmentBytes.count - 16)]
            }
            let length = UInt16(ciphertext.count)
            aad = sequence + [type, header[1], header[2], UInt8(length >> 8), UInt8(length & 0xFF)]
        }
        let tag = fragmentBytes[(fragmentBytes.count - 16)...]
        guard var plain = TLSCrypto.open(suite.aead, key: keys.key, nonce: nonce, aad: aad, ciphertext: ciphertext, tag: tag) else {
            // TLS 1.3: records before the first application record use the handshake keys.
            if tls13 && !side.applicationStarted { return [] }
            side.broken = true
            return [.problem("a TLS record \(fromClient ? "from the client" : "from the server") does not decrypt with the key log's secret")]
        }
        keys.sequence += 1
        side.keys = keys
        var content = type
        if tls13 {
            side.applicationStarted = true
            while plain.last == 0 { plain.removeLast() }
            content = plain.popLast() ?? 0
        }
        guard content == 23, !plain.isEmpty else { return [] }  // alerts, tickets, key updates: not application data
        return [.plaintext(ByteBuffer(bytes: plain))]
    }
}

/// HMAC, HKDF-Expand-Label (RFC 8446), the TLS 1.2 PRF (RFC 5246) and AEAD decryption, on libcrypto.
enum TLSCrypto {
    static func hmac(_ key: [UInt8], _ data: [UInt8], sha384: Bool) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = HMAC(sha384 ? EVP_sha384() : EVP_sha256(), key, Int32(key.count), data, data.count, &out, &length)
        return Array(out.prefix(Int(length)))
    }

    static func expand(_ secret: [UInt8], info: [UInt8], length: Int, sha384: Bool) -> [UInt8] {
        var out: [UInt8] = []
        var previous: [UInt8] = []
        var counter: UInt8 = 1
        while out.count < length {
            previous = hmac(secret, previous + info + [counter], sha384: sha384)
            out += previous
            counter += 1
        }
        return Array(out.prefix(length))
    }

    static func expandLabel(_ secret: [UInt8], _ label: String, length: Int, sha384: Bool) -> [UInt8] {
        let full = Array("tls13 \(label)".utf8)
        let info = [UInt8(length >> 8), UInt8(length & 0xFF), UInt8(full.count)] + full + [0]
        return expand(secret, info: info, length: length, sha384: sha384)
    }

    static func prf(_ secret: [UInt8], label: String, seed: [UInt8], length: Int, sha384: Bool) -> [UInt8] {
        let seed = Array(label.utf8) + seed
        var out: [UInt8] = []
        var a = seed
        while out.count < length {
            a = hmac(secret, a, sha384: sha384)
            out += hmac(secret, a + seed, sha384: sha384)
        }
        return Array(out.prefix(length))
    }

    /// The plaintext, or nil when the tag does not verify.
    static func open(_ aead: TLSDecryptor.Suite.Aead, key: [UInt8], nonce: [UInt8], aad: [UInt8], ciphertext: ArraySlice<UInt8>,
                     tag: ArraySlice<UInt8>) -> [UInt8]? {
        guard let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        let cipher = aead == .chacha20 ? EVP_chacha20_poly1305() : key.count == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm()
        guard EVP_DecryptInit_ex(context, cipher, nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_IVLEN, Int32(nonce.count), nil) == 1,
              EVP_DecryptInit_ex(context, nil, nil, key, nonce) == 1 else { return nil }
        var written: Int32 = 0
        guard aad.isEmpty || EVP_DecryptUpdate(context, nil, &written, aad, Int32(aad.count)) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: ciphertext.count + 16)
        let input = Array(ciphertext)
        guard EVP_DecryptUpdate(context, &out, &written, input, Int32(input.count)) == 1 else { return nil }
        var tagBytes = Array(tag)
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(tagBytes.count), &tagBytes) == 1 else { return nil }
        var final: Int32 = 0
        let status = out.withUnsafeMutableBufferPointer { buffer in
            EVP_DecryptFinal_ex(context, buffer.baseAddress.map { $0 + Int(written) }, &final)
        }
        guard status == 1 else { return nil }
        return Array(out.prefix(Int(written + final)))
    }
}
