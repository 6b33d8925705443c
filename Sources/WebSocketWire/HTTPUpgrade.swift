import COpenSSL
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import NIOCore
public import NIOHTTP1

/// One extension of a `Sec-WebSocket-Extensions` header, with its parameters in order.
public struct WebSocketExtension: Sendable, Hashable {
    public struct Parameter: Sendable, Hashable {
        public var name: String
        public var value: String?
        public init(name: String, value: String? = nil) {
            self.name = name
            self.value = value
        }
    }
    public var name: String
    public var parameters: [Parameter]

    public init(name: String, parameters: [Parameter] = []) {
        self.name = name
        self.parameters = parameters
    }

    /// Parses every `Sec-WebSocket-Extensions` value: `a; p=1, b` (RFC 6455 §9.1).
    public static func parse(_ values: [String]) -> [WebSocketExtension] {
        values.flatMap { $0.split(separator: ",") }.compactMap { item in
            let parts = item.split(separator: ";").map { $0.trimmingOWS() }
            guard let name = parts.first, !name.isEmpty else { return nil }
            let parameters = parts.dropFirst().map { part -> Parameter in
                let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingOWS() }
                let value = pair.count > 1 ? pair[1].trimmingQuotes() : nil
                return Parameter(name: pair.first ?? part, value: value)
            }
            return WebSocketExtension(name: name, parameters: parameters)
        }
    }
}

/// The parts of a WebSocket handshake both messages share.
public protocol WebSocketHandshakeHead: Sendable {
    var version: HTTPVersion { get }
    var headers: HTTPHeaders { get }
    /// Stream offsets of the head, blank line included.
    var range: Range<Int> { get }
}

extension WebSocketHandshakeHead {
    /// Every `Sec-WebSocket-Protocol` token, in order.
    public var subprotocols: [String] { Self.tokens(headers["Sec-WebSocket-Protocol"]) }
    public var extensions: [WebSocketExtension] { WebSocketExtension.parse(headers["Sec-WebSocket-Extensions"]) }
    /// `Upgrade: websocket` and a `Connection` header with the `upgrade` token.
    public var asksForWebSocketUpgrade: Bool {
        Self.tokens(headers["Upgrade"]).contains { $0.lowercased() == "websocket" }
            && Self.tokens(headers["Connection"]).contains { $0.lowercased() == "upgrade" }
    }

    static func tokens(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",") }.map { $0.trimmingOWS() }.filter { !$0.isEmpty }
    }
}

/// The client's opening handshake (RFC 6455 §4.1).
public struct HTTPUpgradeRequest: WebSocketHandshakeHead, Equatable, Sendable {
    public var method: HTTPMethod
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    /// Stream offsets of the head, from the request line to the blank line included.
    public var range: Range<Int>

    public init(method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders,
                range: Range<Int> = 0..<0) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.range = range
    }

    public var key: String? { headers.first(name: "Sec-WebSocket-Key") }
}

/// The server's answer (RFC 6455 §4.2.2).
public struct HTTPUpgradeResponse: WebSocketHandshakeHead, Equatable, Sendable {
    public var version: HTTPVersion
    public var status: HTTPResponseStatus
    public var reasonPhrase: String
    public var headers: HTTPHeaders
    public var range: Range<Int>

    public init(version: HTTPVersion = .http1_1, status: HTTPResponseStatus, reasonPhrase: String, headers: HTTPHeaders,
                range: Range<Int> = 0..<0) {
        self.version = version
        self.status = status
        self.reasonPhrase = reasonPhrase
        self.headers = headers
        self.range = range
    }

    public var accept: String? { headers.first(name: "Sec-WebSocket-Accept") }
    /// The subprotocol the server chose.
    public var subprotocol: String? { subprotocols.first }
}

/// Reads HTTP/1.1 heads off the front of a byte stream (RFC 9112 §2–5).
public enum HTTPHeadParser {
    /// The largest head accepted, blank line included.
    public static let defaultMaximumHeadSize = 16_384

    /// Parses a request head from the front of `buffer`, removing it. nil: the head is
    /// not complete yet. `streamOffset` is the offset of `buffer`'s first readable byte.
    public static func parseRequest(_ buffer: inout ByteBuffer, streamOffset: Int = 0,
                                    maximumHeadSize: Int = defaultMaximumHeadSize) throws(WebSocketWireError)
        -> HTTPUpgradeRequest?
    {
        guard let (lines, length) = try head(buffer, streamOffset: streamOffset, maximumHeadSize: maximumHeadSize) else {
            return nil
        }
        let parts = lines[0].text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw WebSocketWireError(code: .malformedStartLine, offset: streamOffset,
                                     describedBy: "request line \"\(lines[0].text.prefix(80))\" is not METHOD SP target SP version",
                                     specReference: "RFC 9112 §3")
        }
        let version = try httpVersion(parts[2], offset: streamOffset + parts[0].utf8.count + parts[1].utf8.count + 2)
        let headers = try parseHeaders(lines.dropFirst())
        buffer.moveReaderIndex(forwardBy: length)
        return HTTPUpgradeRequest(method: HTTPMethod(rawValue: String(parts[0])), target: String(parts[1]),
                                  version: version, headers: headers, range: streamOffset..<(streamOffset + length))
    }

    /// Parses a response head from the front of `buffer`, removing it.
    public static func parseResponse(_ buffer: inout ByteBuffer, streamOffset: Int = 0,
                                     maximumHeadSize: Int = defaultMaximumHeadSize) throws(WebSocketWireError)
        -> HTTPUpgradeResponse?
    {
        guard let (lines, length) = try head(buffer, streamOffset: streamOffset, maximumHeadSize: maximumHeadSize) else {
            return nil
        }
        let parts = lines[0].text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        // Three ASCII digits, nothing else: Int("-01") would pass a count check, and NIO's
        // HTTPResponseStatus traps on a negative code (found by the http-upgrade fuzz target).
        guard parts.count >= 2, isDigits(parts[1], count: 3), let code = Int(parts[1]) else {
            throw WebSocketWireError(code: .malformedStartLine, offset: streamOffset,
                                     describedBy: "status line \"\(lines[0].text.prefix(80))\" is not version SP 3-digit-code SP reason",
                                     specReference: "RFC 9112 §4")
        }
        let version = try httpVersion(parts[0], offset: streamOffset)
        let headers = try parseHeaders(lines.dropFirst())
        buffer.moveReaderIndex(forwardBy: length)
        return HTTPUpgradeResponse(version: version, status: HTTPResponseStatus(statusCode: code),
                                   reasonPhrase: parts.count > 2 ? String(parts[2]) : "", headers: headers,
                                   range: streamOffset..<(streamOffset + length))
    }

    private struct Line {
        var text: Substring
        var offset: Int
    }

    /// Splits the head into lines, up to the blank line that ends it. Lines end in CRLF or
    /// a lone LF, and empty lines before the start line are ignored (RFC 9112 §2.2). Lines
    /// are cut on bytes: as Characters, "\r\n" is one grapheme.
    private static func head(_ buffer: ByteBuffer, streamOffset: Int, maximumHeadSize: Int) throws(WebSocketWireError)
        -> ([Line], Int)?
    {
        // The bytes are searched for the blank line first and made into lines only once the head
        // is whole: a head arriving in many small pieces is searched again at each piece.
        guard headIsComplete(buffer, maximumHeadSize: maximumHeadSize) else {
            if buffer.readableBytes >= maximumHeadSize { throw tooLarge(streamOffset: streamOffset, maximumHeadSize) }
            return nil
        }
        let view = buffer.readableBytesView
        let limit = min(view.endIndex, view.startIndex + maximumHeadSize)
        var lines: [Line] = []
        var lineStart = view.startIndex
        var index = view.startIndex
        while index < limit {
            defer { index += 1 }
            guard view[index] == UInt8(ascii: "\n") else { continue }
            let start = lineStart
            lineStart = index + 1
            var end = index
            if end > start && view[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            if end == start {
                // A blank line ends the head, unless nothing came before it.
                if lines.isEmpty { continue }
                return (lines, index + 1 - view.startIndex)
            }
            let text = String(decoding: view[start..<end], as: UTF8.self)
            lines.append(Line(text: text[...], offset: streamOffset + start - view.startIndex))
        }
        if view.count >= maximumHeadSize { throw tooLarge(streamOffset: streamOffset, maximumHeadSize) }
        return nil
    }

    private static func tooLarge(streamOffset: Int, _ maximumHeadSize: Int) -> WebSocketWireError {
        WebSocketWireError(code: .headTooLarge, offset: streamOffset + maximumHeadSize,
                           describedBy: "no end of the HTTP head within \(maximumHeadSize) bytes")
    }

    /// Whether the first `maximumHeadSize` bytes hold a blank line after a non-blank one
    /// (lines ending in LF or CRLF, as `head` reads them).
    private static func headIsComplete(_ buffer: ByteBuffer, maximumHeadSize: Int) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress else { return false }
            let count = min(bytes.count, maximumHeadSize)
            var lineStart = 0
            var sawLine = false
            while lineStart < count {
                guard let found = memchr(base + lineStart, Int32(UInt8(ascii: "\n")), count - lineStart) else { return false }
                let index = base.distance(to: UnsafeRawPointer(found))
                var end = index
                if end > lineStart && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                if end > lineStart {
                    sawLine = true
                } else if sawLine {
                    return true
                }
                lineStart = index + 1
            }
            return false
        }
    }

    /// Exactly `count` ASCII digits: no sign, no space (Int() would take "-01" and "+1").
    private static func isDigits(_ text: Substring, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (0x30...0x39).contains($0) }
    }

    private static func httpVersion(_ text: Substring, offset: Int) throws(WebSocketWireError) -> HTTPVersion {
        // DIGIT "." DIGIT exactly: NIO's HTTPVersion traps on numbers that do not fit 16 bits.
        let digits = text.hasPrefix("HTTP/") ? text.dropFirst(5).split(separator: ".", omittingEmptySubsequences: false) : []
        guard digits.count == 2, digits.allSatisfy({ isDigits($0, count: 1) }),
              let major = Int(digits[0]), let minor = Int(digits[1]) else {
            throw WebSocketWireError(code: .malformedStartLine, offset: offset, describedBy: "\"\(text)\" is not an HTTP version",
                                     specReference: "RFC 9112 §2.3")
        }
        return HTTPVersion(major: major, minor: minor)
    }

    private static func parseHeaders(_ lines: ArraySlice<Line>) throws(WebSocketWireError) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for line in lines {
            if line.text.first == " " || line.text.first == "\t" {
                throw WebSocketWireError(code: .malformedHeader, offset: line.offset,
                                         describedBy: "obsolete line folding", specReference: "RFC 9112 §5.2")
            }
            guard let colon = line.text.firstIndex(of: ":") else {
                throw WebSocketWireError(code: .malformedHeader, offset: line.offset,
                                         describedBy: "header line without a colon", specReference: "RFC 9112 §5")
            }
            let name = line.text[line.text.startIndex..<colon]
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
                throw WebSocketWireError(code: .malformedHeader, offset: line.offset,
                                         describedBy: "header name \"\(name)\" is not a token (whitespace before the colon?)",
                                         specReference: "RFC 9112 §5.1")
            }
            let value = line.text[line.text.index(after: colon)...].trimmingOWS()
            headers.add(name: String(name), value: value)
        }
        return headers
    }

    /// A `tchar` of RFC 9110 §5.6.2: visible ASCII but the delimiters. Names are checked byte by
    /// byte: their Characters are such ASCII exactly when their bytes are, and walking the
    /// Characters, with a search of the delimiters' string for each, was a fifth of an
    /// http-upgrade fuzz run.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        guard byte > 0x20, byte < 0x7F else { return false }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: ","), UInt8(ascii: "/"),
             UInt8(ascii: ":"), UInt8(ascii: ";"), UInt8(ascii: "<"), UInt8(ascii: "="), UInt8(ascii: ">"),
             UInt8(ascii: "?"), UInt8(ascii: "@"), UInt8(ascii: "["), UInt8(ascii: "\\"), UInt8(ascii: "]"),
             UInt8(ascii: "{"), UInt8(ascii: "}"):
            return false
        default:
            return true
        }
    }
}

/// The checks a dissector makes on a handshake pair (RFC 6455 §4.1, §4.2.2).
public enum WebSocketHandshake {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)).
    /// Hashed with a plain `SHA_CTX` on the stack: OpenSSL 3's one-shot `SHA1` fetched its
    /// algorithm and allocated a context for every key (a dozen allocations per handshake).
    public static func acceptValue(forKey key: String) -> String {
        var context = SHA_CTX()
        SHA1_Init(&context)
        var key = key
        key.withUTF8 { _ = SHA1_Update(&context, $0.baseAddress, $0.count) }
        var salt = guid
        salt.withUTF8 { _ = SHA1_Update(&context, $0.baseAddress, $0.count) }
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        _ = SHA1_Final(&digest, &context)
        return Data(digest).base64EncodedString()
    }

    /// Every way the request and response break RFC 6455; empty when the upgrade is
    /// well-formed and accepted.
    public static func problems(request: HTTPUpgradeRequest, response: HTTPUpgradeResponse?) -> [WebSocketWireError] {
        var problems: [WebSocketWireError] = []
        func problem(_ offset: Int, _ reason: String, _ spec: String, _ code: WebSocketWireError.Code = .handshakeMismatch) {
            problems.append(WebSocketWireError(code: code, offset: offset, reason: reason, specReference: spec))
        }
        let at = request.range.lowerBound
        if request.method != .GET { problem(at, "method is \(request.method.rawValue), not GET", "RFC 6455 §4.1 (2)") }
        if request.version != .http1_1 {
            problem(at, "HTTP version \(request.version) is not 1.1", "RFC 6455 §4.1 (2)", .unsupportedHTTPVersion)
        }
        if !request.asksForWebSocketUpgrade { problem(at, "no Upgrade: websocket / Connection: Upgrade", "RFC 6455 §4.1 (5, 6)") }
        if request.headers.first(name: "Sec-WebSocket-Version") != "13" {
            problem(at, "Sec-WebSocket-Version is not 13", "RFC 6455 §4.1 (9)")
        }
        let key = request.key
        if key.flatMap({ Data(base64Encoded: $0) })?.count != 16 {
            problem(at, "Sec-WebSocket-Key is not 16 bytes in base64", "RFC 6455 §4.1 (7)")
        }
        guard let response else { return problems }
        let answer = response.range.lowerBound
        guard response.status == .switchingProtocols else {
            problem(answer, "server refused the upgrade: \(response.status.code) \(response.reasonPhrase)", "RFC 6455 §4.2.2")
            return problems
        }
        if !response.asksForWebSocketUpgrade { problem(answer, "no Upgrade: websocket / Connection: Upgrade", "RFC 6455 §4.2.2 (5)") }
        if let key, response.accept != acceptValue(forKey: key) {
            problem(answer, "Sec-WebSocket-Accept \(response.accept ?? "(none)") does not match the key", "RFC 6455 §4.2.2 (5.4)")
        }
        if let chosen = response.subprotocol, !request.subprotocols.contains(chosen) {
            problem(answer, "subprotocol \(chosen) was not offered", "RFC 6455 §4.1 (6 of the client's checks)")
        }
        let offered = Set(request.extensions.map(\.name))
        for accepted in response.extensions where !offered.contains(accepted.name) {
            problem(answer, "extension \(accepted.name) was not offered", "RFC 6455 §9.1")
        }
        return problems
    }
}

extension StringProtocol {
    /// Without leading and trailing optional white space (SP and HTAB, RFC 9110 §5.6.3).
    func trimmingOWS() -> String {
        let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isOWS($0) }), let last = lastIndex(where: { !isOWS($0) }) else { return "" }
        return String(self[first...last])
    }

    /// A quoted-string's content (RFC 9110 §5.6.4), without escapes: parameter values here have none.
    func trimmingQuotes() -> String {
        count >= 2 && hasPrefix("\"") && hasSuffix("\"") ? String(dropFirst().dropLast()) : String(self)
    }
}
