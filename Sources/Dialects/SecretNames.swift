/// Which names hold secrets: JSON members at any depth, query parameters, HTTP headers. One
/// policy for every tool and output (text, JSON Lines, HAR, recordings, logs, the mock's page,
/// replay reports), by pattern rather than an exact list, since services name the same secret
/// `access_token`, `accessToken`, `X-Auth-Token` or `apiKey`.
///
/// A name is split into words (at `_`, `-`, `.`, blanks and lower-to-upper case changes:
/// `refreshToken` → refresh, token; `X-Api-Key` → x, api, key) and is secret when one of its
/// words, or the whole name without separators, is one of:
/// - token (and words ending in it: `accesstoken`), secret, password, passwd, passphrase, pwd;
/// - key (`api_key`, `X-Api-Key`) and apikey, accesskey, secretkey, privatekey;
/// - auth, authorization, authentication, credential(s), bearer, jwt;
/// - cookie, session (as a credential: `session`, `session_token`, `PHPSESSID`, `JSESSIONID`);
/// - sig, signature.
///
/// Left alone on purpose: `sessionId` and `session_id` (the chat protocols' conversation ids, not
/// credentials), `author`, `keyword`, `monkey`, and WebSocket's `Sec-WebSocket-Key` and
/// `Sec-WebSocket-Accept` (a nonce and its hash, which the decoder checks). `--redact NAME` adds a
/// name (matched whole, any case); `--no-redact` turns redaction off.
public struct SecretNames: Sendable, Hashable {
    /// Names added (`--redact`), lower-cased, matched whole.
    public private(set) var added: Set<String>

    public init(adding names: [String] = []) {
        added = Set(names.map { $0.lowercased() })
    }

    public static let standard = SecretNames()

    static let secretWords: Set<String> = [
        "token", "tokens", "secret", "secrets", "password", "passwords", "passwd", "passphrase", "pwd",
        "key", "apikey", "accesskey", "secretkey", "privatekey", "auth", "authorization", "authentication",
        "credential", "credentials", "bearer", "jwt", "cookie", "cookies", "session", "sessiontoken",
        "sessid", "phpsessid", "jsessionid", "sig", "signature",
    ]
    static let notSecret: Set<String> = ["sessionid", "sec-websocket-key", "sec-websocket-accept"]

    /// Whether values under `name` are secrets.
    public func contains(_ name: some StringProtocol) -> Bool {
        let lowered = name.lowercased()
        if added.contains(lowered) { return true }
        let joined = String(lowered.filter { $0 != "_" && $0 != "-" && $0 != "." && $0 != " " })
        if Self.notSecret.contains(lowered) || Self.notSecret.contains(joined) { return false }
        if Self.secretWords.contains(joined) || joined.hasSuffix("token") || joined.hasSuffix("secret")
            || joined.hasSuffix("password") || joined.hasSuffix("apikey") || joined.hasSuffix("signature") {
            return true
        }
        return Self.words(of: name).contains { Self.secretWords.contains($0) || $0.hasSuffix("token") }
    }

    /// The lower-cased words of a name: split at separators and where lower case meets upper.
    static func words(of name: some StringProtocol) -> [String] {
        var words: [String] = []
        var current = ""
        var previousWasLower = false
        for character in name {
            if character == "_" || character == "-" || character == "." || character == " " {
                if !current.isEmpty { words.append(current) }
                current = ""
                previousWasLower = false
                continue
            }
            if character.isUppercase && previousWasLower, !current.isEmpty {
                words.append(current)
                current = ""
            }
            current.append(contentsOf: character.lowercased())
            previousWasLower = character.isLowercase || character.isNumber
        }
        if !current.isEmpty { words.append(current) }
        return words
    }
}
