import LiveWebSocket
import NIOConcurrencyHelpers
import NIOHTTP1
import Testing

/// The rules by which a local server tells its own page and programs from pages of other
/// origins and from rebound host names.
@Suite("Browser access: origins and host names")
struct BrowserAccessTests {
    static func head(host: String?, origin: String? = nil, version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        if let host { headers.add(name: "Host", value: host) }
        if let origin { headers.add(name: "Origin", value: origin) }
        return HTTPRequestHead(version: version, method: .GET, uri: "/", headers: headers)
    }

    static func allowed(_ verdict: BrowserAccess.Verdict) -> Bool {
        if case .allowed = verdict { return true }
        return false
    }

    /// Programs (no Origin) and the server's own page are served by any of its names.
    @Test(arguments: [
        ("127.0.0.1:8885", nil), ("localhost:8885", nil), ("[::1]:8885", nil), ("192.168.1.20:8885", nil), ("LOCALHOST", nil),
        ("app.localhost:8885", nil),
        ("127.0.0.1:8885", "http://127.0.0.1:8885"), ("localhost:8885", "http://LOCALHOST:8885/"),
        ("[::1]:8885", "http://[::1]:8885"), ("localhost", "http://localhost"), ("localhost:80", "http://localhost"),
        // paho-mqtt names the server it connects to, with https for TLS: same host and port.
        ("127.0.0.1:8885", "https://127.0.0.1:8885"),
    ] as [(String, String?)])
    func ownPagesAndProgramsAreServed(host: String, origin: String?) {
        #expect(BrowserAccess().check(Self.head(host: host, origin: origin)) == .allowed(corsOrigin: nil))
    }

    /// Pages of other origins, the same host on another port included (a frontend dev server is
    /// another origin), and pages without an origin are refused with 403.
    @Test(arguments: [
        ("127.0.0.1:8885", "http://localhost:5173"), ("127.0.0.1:8885", "http://127.0.0.1:5173"),
        ("127.0.0.1:8885", "http://evil.example"), ("127.0.0.1:8885", "null"), ("localhost:8885", "http://127.0.0.1:8885"),
        ("127.0.0.1:8885", "file://"), ("127.0.0.1:8885", "http://127.0.0.1:8885.evil.example"),
    ])
    func otherOriginsAreRefused(host: String, origin: String) {
        guard case .refused(let status, let reason) = BrowserAccess().check(Self.head(host: host, origin: origin)) else {
            Issue.record("\(origin) was served")
            return
        }
        #expect(status == .forbidden)
        #expect(reason.contains("--allow-origin"), "\(reason)")
    }

    /// A host name other than localhost is what DNS rebinding sends: refused, and the
    /// refusal names the option that would allow it.
    @Test(arguments: ["evil.example", "evil.example:8885", "127.0.0.1.nip.io:8885", "localhost.evil.example"])
    func foreignHostNamesAreRefused(host: String) {
        guard case .refused(let status, let reason) = BrowserAccess().check(Self.head(host: host)) else {
            Issue.record("\(host) was served")
            return
        }
        #expect(status == .forbidden)
        #expect(reason.contains("--allow-host"), "\(reason)")
        #expect(Self.allowed(BrowserAccess(allowedHosts: ["Evil.Example", "127.0.0.1.nip.io", "localhost.evil.example"])
            .check(Self.head(host: host))))
    }

    /// Malformed or doubled Host headers are bad requests; HTTP/1.0 may leave Host out.
    @Test func malformedHostsAreBadRequests() {
        for host in ["", "a b", "[::1", "x:99999", "x:port"] {
            guard case .refused(let status, _) = BrowserAccess().check(Self.head(host: host)) else {
                Issue.record("Host \(host) was served")
                continue
            }
            #expect(status == .badRequest, "Host \(host)")
        }
        var twice = Self.head(host: "localhost")
        twice.headers.add(name: "Host", value: "evil.example")
        #expect(!Self.allowed(BrowserAccess().check(twice)))
        #expect(!Self.allowed(BrowserAccess().check(Self.head(host: nil))))
        #expect(Self.allowed(BrowserAccess().check(Self.head(host: nil, version: .http1_0))))
    }

    /// An allowed origin is served and named in CORS; a port alone allows that port on the
    /// loopback names; `*` allows every page.
    @Test func allowedOriginsAreNamedForCORS() throws {
        let frontend = BrowserAccess(allowedOrigins: try BrowserAccess.origins(allowing: "http://localhost:5173/"))
        #expect(frontend.check(Self.head(host: "127.0.0.1:8885", origin: "http://localhost:5173")) == .allowed(corsOrigin: "http://localhost:5173"))
        #expect(!Self.allowed(frontend.check(Self.head(host: "127.0.0.1:8885", origin: "http://localhost:5174"))))
        let port = BrowserAccess(allowedOrigins: try BrowserAccess.origins(allowing: "5173"))
        for origin in ["http://localhost:5173", "http://127.0.0.1:5173", "http://[::1]:5173"] {
            #expect(port.check(Self.head(host: "127.0.0.1:8885", origin: origin)) == .allowed(corsOrigin: origin))
        }
        let any = BrowserAccess(allowedOrigins: ["*"])
        #expect(any.check(Self.head(host: "localhost:1", origin: "https://evil.example")) == .allowed(corsOrigin: "https://evil.example"))
        // The Works web client's origin is in the standard rules: wmq servers stand in for the service.
        #expect(Self.allowed(BrowserAccess.standard.check(Self.head(host: "127.0.0.1:8885", origin: BrowserAccess.worksWebOrigin))))
        #expect(!Self.allowed(BrowserAccess.standard.check(Self.head(host: "127.0.0.1:8885", origin: "https://talk.worksmobile.com.evil.example"))))
    }

    @Test(arguments: ["ftp://x", "localhost:5173", "0", "70000", "http://", "http://a b", ""])
    func badAllowOriginValuesAreRefused(value: String) {
        #expect(throws: BrowserAccessError.self) { try BrowserAccess.origins(allowing: value) }
    }

    /// An origin naming the server the request went to names the server it is passed on to (a
    /// proxy, a replay); a real page's origin stays as it is.
    @Test func aSelfNamingOriginIsRetargeted() {
        #expect(BrowserAccess.retarget(origin: "http://127.0.0.1:8886", requestHost: "127.0.0.1:8886", to: "127.0.0.1:9001") == "http://127.0.0.1:9001")
        #expect(BrowserAccess.retarget(origin: "https://LOCALHOST", requestHost: "localhost:443", to: "mock:443") == "https://mock:443")
        #expect(BrowserAccess.retarget(origin: "http://localhost:5173", requestHost: "127.0.0.1:8886", to: "x:1") == "http://localhost:5173")
        #expect(BrowserAccess.retarget(origin: "https://talk.worksmobile.com", requestHost: nil, to: "x:1") == "https://talk.worksmobile.com")
    }

    /// A page retrying in a loop is reported once, not once a request.
    @Test func aRefusalIsReportedOncePerOrigin() {
        let lines = NIOLockedValueBox<[String]>([])
        let access = BrowserAccess().reporting { line in lines.withLockedValue { $0.append(line) } }
        for _ in 0..<5 { _ = access.check(Self.head(host: "127.0.0.1:1", origin: "http://evil.example")) }
        _ = access.check(Self.head(host: "127.0.0.1:1", origin: "http://other.example"))
        _ = access.check(Self.head(host: "rebound.example:1"))
        let told = lines.withLockedValue { $0 }
        #expect(told.count == 3, "\(told)")
        #expect(told.first?.contains("--allow-origin http://evil.example") == true)
        #expect(told.last?.contains("--allow-host rebound.example") == true)
    }
}
