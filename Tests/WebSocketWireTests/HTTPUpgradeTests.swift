import NIOCore
import NIOHTTP1
import Testing
import WebSocketWire

@Suite("HTTP Upgrade")
struct HTTPUpgradeTests {
    static let request = """
        GET /wmqtt HTTP/1.1\r
        Host: jp1-web-noti.worksmobile.com\r
        Upgrade: websocket\r
        Connection: Upgrade\r
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
        Origin: https://talk.worksmobile.com\r
        Sec-WebSocket-Protocol: mqtt\r
        Sec-WebSocket-Version: 13\r
        Cookie: WORKS_SES=fake-session; NEO_SES=fake\r
        \r\n
        """
    static let response = """
        HTTP/1.1 101 Switching Protocols\r
        Upgrade: websocket\r
        Connection: Upgrade\r
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r
        Sec-WebSocket-Protocol: mqtt\r
        \r\n
        """

    /// RFC 6455 §1.3: the sample key and its accept value.
    @Test func acceptValue() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func worksHandshakeParsesAndChecks() throws {
        var requestBytes = ByteBuffer(string: Self.request + "\u{82}")
        let request = try #require(try HTTPHeadParser.parseRequest(&requestBytes))
        #expect(request.method == .GET)
        #expect(request.target == "/wmqtt")
        #expect(request.subprotocols == ["mqtt"])
        #expect(request.headers.first(name: "cookie") == "WORKS_SES=fake-session; NEO_SES=fake")
        #expect(requestBytes.readableBytes == 2)  // the byte after the head is left (UTF-8 of U+0082)
        var responseBytes = ByteBuffer(string: Self.response)
        let response = try #require(try HTTPHeadParser.parseResponse(&responseBytes, streamOffset: 500))
        #expect(response.status == .switchingProtocols)
        #expect(response.subprotocol == "mqtt")
        #expect(response.range == 500..<(500 + Self.response.utf8.count))
        #expect(WebSocketHandshake.problems(request: request, response: response).isEmpty)
    }

    /// RFC 9112 §2.2: empty lines before the start line are ignored, and a lone LF ends a
    /// line as CRLF does.
    @Test func leadingEmptyLinesAndBareLineFeeds() throws {
        var bytes = ByteBuffer(string: "\r\n\nGET /x HTTP/1.1\nHost: a\r\n\nrest")
        let request = try #require(try HTTPHeadParser.parseRequest(&bytes, streamOffset: 10))
        #expect(request.target == "/x")
        #expect(request.headers.first(name: "host") == "a")
        #expect(request.range == 10..<(10 + 29))
        #expect(String(buffer: bytes) == "rest")
    }

    @Test func incompleteHeadNeedsMoreBytes() throws {
        var partial = ByteBuffer(bytes: Self.request.utf8.dropLast(3))
        #expect(try HTTPHeadParser.parseRequest(&partial) == nil)
        #expect(partial.readableBytes == Self.request.utf8.count - 3)
    }

    @Test func mismatchesAreReported() throws {
        var requestBytes = ByteBuffer(string: Self.request)
        let request = try #require(try HTTPHeadParser.parseRequest(&requestBytes))
        var wrong = ByteBuffer(string: Self.response.replacing("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", with: "AAAA")
            .replacing("Protocol: mqtt", with: "Protocol: wamp"))
        let response = try #require(try HTTPHeadParser.parseResponse(&wrong))
        let problems = WebSocketHandshake.problems(request: request, response: response)
        #expect(problems.count == 2)
        #expect(problems.allSatisfy { $0.code == .handshakeMismatch })
        var refused = ByteBuffer(string: "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        let refusal = try #require(try HTTPHeadParser.parseResponse(&refused))
        #expect(WebSocketHandshake.problems(request: request, response: refusal).first?.reason.contains("401") == true)
    }

    @Test(arguments: [
        ("GET /x HTTP/1.1\r\nHost : a\r\n\r\n", WebSocketWireError.Code.malformedHeader, 17),
        ("GET /x HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", .malformedHeader, 26),
        ("GET /x HTTP/1.1\r\nno colon here\r\n\r\n", .malformedHeader, 17),
        ("GET /x\r\n\r\n", .malformedStartLine, 0),
        ("GET /x HTTQ/1.1\r\n\r\n", .malformedStartLine, 7),
        // Numbers NIO's HTTPVersion cannot hold used to trap (fuzzing).
        ("GET /x HTTP/99999.1\r\n\r\n", .malformedStartLine, 7),
        ("GET /x HTTP/-1.1\r\n\r\n", .malformedStartLine, 7),
        ("GET /x HTTP/1.\r\n\r\n", .malformedStartLine, 7),
    ])
    func malformedRequests(text: String, code: WebSocketWireError.Code, offset: Int) {
        var bytes = ByteBuffer(string: text)
        #expect { _ = try HTTPHeadParser.parseRequest(&bytes) } throws: { error in
            guard let error = error as? WebSocketWireError else { return false }
            return error.code == code && error.offset == offset
        }
    }

    /// Header names are tokens (RFC 9110 §5.6.2): every byte value, alone as a name, is taken
    /// exactly when it is a `tchar`, and a name that is not ASCII is refused.
    @Test func headerNamesAreTokens() throws {
        let tchars = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max where byte != UInt8(ascii: ":") && byte != 0x0A && byte != 0x0D {
            var bytes = ByteBuffer(string: "GET /x HTTP/1.1\r\nA")
            bytes.writeInteger(byte)
            bytes.writeString("b: v\r\n\r\n")
            let taken = (try? HTTPHeadParser.parseRequest(&bytes)) != nil
            #expect(taken == tchars.contains(byte), "byte 0x\(String(byte, radix: 16))")
        }
        for name in ["Ab\u{301}", "Ä", "A\u{7F}b", "A b"] {
            var bytes = ByteBuffer(string: "GET /x HTTP/1.1\r\n\(name): v\r\n\r\n")
            #expect(throws: WebSocketWireError.self) { _ = try HTTPHeadParser.parseRequest(&bytes) }
        }
    }

    /// Header values lose their optional white space (SP, HTAB) at both ends, Character by
    /// Character: a space that a combining mark follows is one Character with it, and stays.
    @Test(arguments: [
        (" \t v a l \t ", "v a l"), ("v", "v"), ("   ", ""), ("\t", ""), ("", ""),
        (" \u{301}x ", " \u{301}x"), (" Ä ", "Ä"), ("\t\u{1F600} ", "\u{1F600}"),
    ])
    func headerValuesLoseOptionalWhiteSpace(raw: String, expected: String) throws {
        var bytes = ByteBuffer(string: "GET /x HTTP/1.1\r\nX-Value:\(raw)\r\nSec-WebSocket-Extensions:\(raw),x\r\n\r\n")
        let request = try #require(try HTTPHeadParser.parseRequest(&bytes))
        #expect(request.headers.first(name: "X-Value") == expected)
        // The extensions' items are trimmed again; an empty one is dropped.
        #expect(request.extensions.map(\.name) == (expected.isEmpty ? ["x"] : [expected, "x"]))
    }

    /// A status code is three digits: "-01" passed a length check and made NIO's
    /// HTTPResponseStatus trap (found by the http-upgrade fuzz target).
    @Test(arguments: ["HTTP/1.1 -01\n\n", "HTTP/1.1 +01 OK\r\n\r\n", "HTTP/1.1 1O1 OK\r\n\r\n", "HTTP/70000.1 101 OK\r\n\r\n"])
    func malformedStatusLines(text: String) {
        var bytes = ByteBuffer(string: text)
        #expect { _ = try HTTPHeadParser.parseResponse(&bytes) } throws: {
            ($0 as? WebSocketWireError)?.code == .malformedStartLine
        }
    }

    @Test func headLimit() {
        var bytes = ByteBuffer(string: "GET / HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 3000))
        #expect { _ = try HTTPHeadParser.parseRequest(&bytes) } throws: {
            ($0 as? WebSocketWireError)?.code == .headTooLarge
        }
    }

    @Test func streamDecoderRunsHeadFramesAndMessages() throws {
        var decoder = try WebSocketStreamDecoder(direction: .serverToClient)
        var wire = ByteBuffer(string: Self.response)
        wire.writeBytes(hexBytes("82 02 20 02 89 00"))
        var events: [WebSocketStreamDecoder.Event] = []
        for byte in wire.readableBytesView { events += decoder.feed(ByteBuffer(bytes: [byte])) }
        var kinds: [String] = []
        for event in events {
            switch event {
            case .response: kinds.append("response")
            case .frame(let frame): kinds.append("frame@\(frame.offset)")
            case .message(let message): kinds.append("message \(message.data.readableBytes)")
            case .control: kinds.append("control")
            case .request, .error, .resynchronized: kinds.append("other")
            }
        }
        let head = Self.response.utf8.count
        #expect(kinds == ["response", "frame@\(head)", "message 2", "frame@\(head + 4)", "control"])
    }
}
