import Dialects
import NIOHTTP1
import Testing

/// The names whose values are secrets, by pattern, and the ones left alone on purpose.
@Suite("Secret names")
struct SecretNamesTests {
    @Test(arguments: ["token", "access_token", "accessToken", "refresh_token", "RefreshToken", "id_token", "apiKey", "api_key", "APIKEY",
                      "X-Api-Key", "X-Auth-Token", "secret", "client_secret", "clientSecret", "password", "passwd", "Passphrase",
                      "auth", "Authorization", "Proxy-Authorization", "credentials", "cookie", "Set-Cookie", "session", "session_token",
                      "PHPSESSID", "JSESSIONID", "sig", "signature", "X-Signature", "private_key", "accesskey", "jwt", "bearer"])
    func secretNames(name: String) {
        #expect(SecretNames.standard.contains(name))
    }

    @Test(arguments: ["author", "keyword", "monkey", "sessionId", "session_id", "Sec-WebSocket-Key", "sec-websocket-accept",
                      "Keep-Alive", "text", "channel", "sender", "signal", "design", "topic", "user", "id", "content", "Host", "Origin"])
    func ordinaryNames(name: String) {
        #expect(!SecretNames.standard.contains(name))
    }

    @Test func namesCanBeAdded() {
        let names = SecretNames(adding: ["X-Custom", "roomPin"])
        #expect(names.contains("x-custom") && names.contains("ROOMPIN"))
        #expect(!SecretNames.standard.contains("roomPin"))
    }

    /// URLs, headers and JSON at depth keep their shape, secrets become pseudonyms.
    @Test func theRedactorAppliesThePolicyEverywhere() throws {
        let redactor = Redactor(key: Array("k".utf8))
        let url = redactor.redact(target: "ws://h:1/ws?room=7&access_token=A1&api_key=B2&sig=C3&Api%5FKey=D4#frag&token=E5")
        for secret in ["A1", "B2", "C3", "D4", "E5"] { #expect(!url.contains("=\(secret)"), "\(url)") }
        #expect(url.hasPrefix("ws://h:1/ws?room=7&access_token=‹token:"), "\(url)")
        var headers = HTTPHeaders()
        headers.add(name: "X-Api-Key", value: "H1")
        headers.add(name: "X-Auth-Token", value: "H2")
        headers.add(name: "Sec-WebSocket-Key", value: "dGhlIHNhbXBsZSBub25jZQ==")
        let shown = redactor.redact(headers: headers)
        #expect(shown.first(name: "X-Api-Key")?.hasPrefix("‹credential:") == true)
        #expect(shown.first(name: "X-Auth-Token")?.hasPrefix("‹credential:") == true)
        #expect(shown.first(name: "Sec-WebSocket-Key") == "dGhlIHNhbXBsZSBub25jZQ==")
        let json = try JSONReader.parse(#"{"a": {"b": [{"refreshToken": "J1", "sessionId": "chat-1", "author": "me"}]}}"#)
        let text = redactor.redact(json: json).description
        #expect(!text.contains("J1") && text.contains("chat-1") && text.contains("\"author\":\"me\""), "\(text)")
    }
}
