import NIOConcurrencyHelpers
public import NIOHTTP1

/// Which browser pages may talk to a local server, and by which host names.
///
/// A server on a developer's loopback is reachable from every page their browser opens. Two
/// things keep a page of another site out:
/// - **Origin.** A browser names the page that makes a request in `Origin` (every WebSocket
///   handshake, every `fetch` but a plain GET, every form POST). A request with an `Origin`
///   is served only if it is this server's own page (the origin's host and port are the ones
///   the request's `Host` names) or an origin allowed by name (`--allow-origin`). A request
///   without `Origin` comes from a program, not from a page of another origin, and is served.
///   Refusing is not the same as withholding CORS headers: a `text/plain` POST or a WebSocket
///   handshake reaches the server whatever CORS says, so a foreign origin gets 403 and nothing
///   is done.
/// - **Host.** A page of `evil.example` whose name is rebound to 127.0.0.1 (DNS rebinding)
///   is same-origin with itself and sends `Host: evil.example`. `Host` must name this server:
///   an IP address, `localhost` (or a name under `.localhost`), or a name allowed with
///   `--allow-host`.
public struct BrowserAccess: Sendable {
    /// Origins allowed besides the server's own, normalised (`http://localhost:5173`), or
    /// `*` for every origin and `null` for pages without one (sandboxed frames, files).
    public private(set) var allowedOrigins: Set<String>
    /// Host names allowed besides IP addresses and `localhost`, lower-cased.
    public private(set) var allowedHosts: Set<String>
    /// Told once per refused origin or host name what was refused and how to allow it.
    private let notices: Notices?

    /// - Parameters:
    ///   - allowedOrigins: as `--allow-origin` takes them (``origins(allowing:)``).
    ///   - allowedHosts: host names, any case.
    ///   - report: where a refusal is explained, once per origin or name (a log line).
    public init(allowedOrigins: [String] = [], allowedHosts: [String] = [], report: (@Sendable (String) -> Void)? = nil) {
        self.allowedOrigins = Set(allowedOrigins)
        self.allowedHosts = Set(allowedHosts.map { $0.lowercased() })
        self.notices = report.map(Notices.init)
    }

    /// The Works web client's origin. Every wmq server lets it in: the mock and `wmq-replay
    /// serve` stand in for the Works service and the capture proxy fronts it, and WorksClient
    /// (`wmq-client`) sends it as the web client does; no page but the service's own has it.
    public static let worksWebOrigin = "https://talk.worksmobile.com"

    /// The rules of every wmq server unless told otherwise: its own page, programs, and the
    /// Works web client's origin.
    public static let standard = BrowserAccess(allowedOrigins: [worksWebOrigin])

    /// Whether refusals are reported somewhere.
    public var reports: Bool { notices != nil }

    /// The same rules, reporting refusals to `report`.
    public func reporting(to report: @escaping @Sendable (String) -> Void) -> BrowserAccess {
        BrowserAccess(allowedOrigins: Array(allowedOrigins), allowedHosts: Array(allowedHosts), report: report)
    }

    /// What a request may do.
    public enum Verdict: Sendable, Equatable {
        /// Served. `corsOrigin` is the origin to name in `Access-Control-Allow-Origin`: a page
        /// of another origin that is allowed; nil for the server's own page or a program.
        case allowed(corsOrigin: String?)
        /// Answered with `status` and `reason` (plain text), nothing else done.
        case refused(status: HTTPResponseStatus, reason: String)
    }

    /// The verdict on one request head.
    public func check(_ head: HTTPRequestHead) -> Verdict {
        let hosts = head.headers[canonicalForm: "Host"]
        guard hosts.count <= 1 else { return .refused(status: .badRequest, reason: "a request names one Host (RFC 9112 §3.2)\n") }
        let host = hosts.first.map(String.init)
        var requestAuthority: Authority?
        if let host {
            guard let authority = Authority(host, defaultPort: 80) else {
                return .refused(status: .badRequest, reason: "Host \"\(host)\" is not a host name with an optional port\n")
            }
            guard isOwnName(authority.host) else {
                notices?.tell("host:" + authority.host, """
                    refused a request for the host name \(authority.host): not an address or a name of this server \
                    (a page whose name was rebound to this machine sends it); start with --allow-host \(authority.host) to serve it
                    """)
                return .refused(status: .forbidden, reason: """
                    Host \(authority.host) is not a name of this server; it answers to its IP addresses and localhost \
                    (--allow-host NAME adds a name)\n
                    """)
            }
            requestAuthority = authority
        } else if head.version.major == 1 && head.version.minor >= 1 {
            return .refused(status: .badRequest, reason: "an HTTP/1.1 request names its Host (RFC 9112 §3.2)\n")
        }
        let origins = head.headers[canonicalForm: "Origin"]
        guard let offered = origins.first.map(String.init) else { return .allowed(corsOrigin: nil) }
        guard origins.count == 1 else { return .refused(status: .badRequest, reason: "a request names one Origin\n") }
        let origin = Self.normalised(offered)
        // The server's own page: the origin's host and port are the ones Host names. The scheme
        // is not compared: a TLS front (and paho-mqtt, which names https) reaches the same port.
        if let requestAuthority, let page = origin.flatMap(Self.authority(ofOrigin:)), page == requestAuthority {
            return .allowed(corsOrigin: nil)
        }
        let name = origin ?? offered
        if allowedOrigins.contains("*") || allowedOrigins.contains(name) { return .allowed(corsOrigin: name) }
        notices?.tell("origin:" + name, """
            refused a request from the page at \(name), another origin than this server's own page; \
            start with --allow-origin \(name) to let that page in (a frontend dev server, say)
            """)
        return .refused(status: .forbidden, reason: """
            pages of the origin \(name) may not use this server; start it with --allow-origin \(name) to allow them\n
            """)
    }

    /// Whether the request may be served (``check(_:)`` allows it): what a WebSocket
    /// upgrader's `shouldUpgrade` asks before anything else.
    public func allows(_ head: HTTPRequestHead) -> Bool {
        if case .allowed = check(head) { return true }
        return false
    }

    /// An `Origin` that names the very server its request went to (programs such as paho-mqtt
    /// and websocket-client send one: `http://` and the `Host` they connect to), renamed for
    /// `authority` (`host:port`), the server the request is passed on to (a proxy) or replayed
    /// against; any other origin, a real page's, is returned as it is.
    public static func retarget(origin: String, requestHost: String?, to authority: String) -> String {
        guard let requestHost, let named = Authority(requestHost, defaultPort: 80),
              let normalised = normalised(origin), let page = Self.authority(ofOrigin: normalised), page == named else { return origin }
        return (normalised.hasPrefix("https://") ? "https://" : "http://") + authority
    }

    /// Whether `host` (lower-cased, without brackets) names this server: an IP address,
    /// `localhost`, a name under `.localhost` (RFC 6761 §6.3: always loopback), or an allowed name.
    func isOwnName(_ host: String) -> Bool {
        host == "localhost" || host.hasSuffix(".localhost") || Self.isIPAddress(host) || allowedHosts.contains(host)
    }

    /// The origins one `--allow-origin` value stands for: an origin (`http://localhost:5173`), a
    /// port alone (`5173`: that port on localhost and 127.0.0.1, what a frontend dev server
    /// prints), `*` (any page at all) or `null`.
    public static func origins(allowing value: String) throws(BrowserAccessError) -> [String] {
        let trimmed = value.trimmingBlanks
        if trimmed == "*" || trimmed == "null" { return [trimmed] }
        if let port = Int(trimmed) {
            guard (1...65_535).contains(port) else { throw BrowserAccessError("--allow-origin \(value): a port is 1 to 65535") }
            return ["http://localhost:\(port)", "http://127.0.0.1:\(port)", "http://[::1]:\(port)"]
        }
        guard let origin = normalised(trimmed), authority(ofOrigin: origin) != nil else {
            throw BrowserAccessError("--allow-origin \(value): give an origin such as http://localhost:5173, a port, or *")
        }
        return [origin]
    }

    /// A host name for `--allow-host`, lower-cased; refuses what is not one.
    public static func hostName(allowing value: String) throws(BrowserAccessError) -> String {
        let name = value.trimmingBlanks.lowercased()
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || isAlphanumeric($0) }) else {
            throw BrowserAccessError("--allow-host \(value): give a host name such as mock.test")
        }
        return name
    }

    // MARK: Parsing origins and hosts

    /// A host (lower-cased, IPv6 without brackets) and a port.
    struct Authority: Equatable {
        var host: String
        var port: Int

        /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
        init?(_ text: String, defaultPort: Int) {
            let text = text.trimmingBlanks.lowercased()
            var host: Substring
            var rest: Substring
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { return nil }
                host = text[text.index(after: text.startIndex)..<close]
                rest = text[text.index(after: close)...]
                guard BrowserAccess.isIPAddress(String(host)) else { return nil }
            } else if let colon = text.firstIndex(of: ":") {
                host = text[..<colon]
                rest = text[colon...]
            } else {
                host = Substring(text)
                rest = ""
            }
            guard !host.isEmpty, host.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ":")
                                                         || $0 == UInt8(ascii: "_") || BrowserAccess.isAlphanumeric($0) }) else { return nil }
            if rest.isEmpty {
                port = defaultPort
            } else {
                guard rest.first == ":", let value = Int(rest.dropFirst()), (0...65_535).contains(value) else { return nil }
                port = value
            }
            self.host = String(host)
        }
    }

    /// `scheme://host[:port]` lower-cased, the default port dropped; nil for what is not an
    /// http(s) origin (`null` stays as it is).
    static func normalised(_ origin: String) -> String? {
        let text = origin.trimmingBlanks.lowercased()
        if text == "null" { return text }
        for (scheme, port) in [("http://", 80), ("https://", 443)] where text.hasPrefix(scheme) {
            var rest = text.dropFirst(scheme.count)
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            guard let authority = Authority(String(rest), defaultPort: port) else { return nil }
            let host = authority.host.contains(":") ? "[\(authority.host)]" : authority.host
            return scheme + host + (authority.port == port ? "" : ":\(authority.port)")
        }
        return nil
    }

    /// The host and port of a normalised http(s) origin.
    static func authority(ofOrigin origin: String) -> Authority? {
        if origin.hasPrefix("http://") { return Authority(String(origin.dropFirst(7)), defaultPort: 80) }
        if origin.hasPrefix("https://") { return Authority(String(origin.dropFirst(8)), defaultPort: 443) }
        return nil
    }

    /// A dotted IPv4 address or an IPv6 address (hex groups and colons, perhaps a dotted tail).
    static func isIPAddress(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) && Int($0).map { $0 <= 255 } == true }) {
            return true
        }
        return host.contains(":") && host.utf8.allSatisfy { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") || isHexDigit($0) }
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    /// Refusals already explained, so that a page retrying in a loop does not flood the log;
    /// at most 256 are remembered, then each further one is told again.
    final class Notices: Sendable {
        private let report: @Sendable (String) -> Void
        private let told = NIOLockedValueBox(Set<String>())

        init(report: @escaping @Sendable (String) -> Void) { self.report = report }

        func tell(_ key: String, _ text: String) {
            let first = told.withLockedValue { told in
                if told.count >= 256 { told.removeAll() }
                return told.insert(key).inserted
            }
            if first { report(text) }
        }
    }
}

/// A `--allow-origin` or `--allow-host` value that is none.
public struct BrowserAccessError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension StringProtocol {
    var trimmingBlanks: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
