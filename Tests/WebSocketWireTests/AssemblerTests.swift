import CompressNIO
import NIOCore
import NIOWebSocket
import Testing
import WebSocketWire

func assemble(_ hex: String, configuration: WebSocketMessageAssembler.Configuration = .init())
    throws -> [Result<WebSocketEvent?, WebSocketWireError>]
{
    var assembler = try WebSocketMessageAssembler(configuration: configuration)
    var parser = WebSocketFrameParser(configuration: .init(allowedReservedBits: configuration.deflate == nil ? [] : .rsv1))
    parser.append(contentsOf: hexBytes(hex))
    var results: [Result<WebSocketEvent?, WebSocketWireError>] = []
    while let frame = try parser.next() {
        do { results.append(.success(try assembler.push(frame))) } catch { results.append(.failure(error)) }
    }
    return results
}

func messages(_ results: [Result<WebSocketEvent?, WebSocketWireError>]) -> [String] {
    results.compactMap {
        if case .success(.message(let message)?) = $0 { return String(buffer: message.data) }
        return nil
    }
}

func errors(_ results: [Result<WebSocketEvent?, WebSocketWireError>]) -> [WebSocketWireError] {
    results.compactMap {
        if case .failure(let error) = $0 { return error }
        return nil
    }
}

@Suite("WebSocket message assembly")
struct AssemblerTests {
    @Test func fragmentsWithAPingBetween() throws {
        // "Hel" + ping + "lo": RFC 6455 §5.4 lets control frames stand between fragments.
        let results = try assemble("01 03 48 65 6c  89 01 70  80 02 6c 6f")
        #expect(messages(results) == ["Hello"])
        guard case .success(.ping(let payload, _)?) = results[1] else {
            Issue.record("no ping")
            return
        }
        #expect(String(buffer: payload) == "p")
        guard case .success(.message(let message)?) = results[2] else { return }
        #expect(message.frameCount == 2)
        #expect(message.range == 0..<12)
    }

    @Test func continuationRules() throws {
        let unexpected = try assemble("80 02 6c 6f")
        #expect(errors(unexpected).map(\.code) == [.unexpectedContinuation])
        let expected = try assemble("01 03 48 65 6c  81 02 68 69  81 02 6f 6b")
        #expect(errors(expected).map(\.code) == [.expectedContinuation])
        #expect(errors(expected).first?.offset == 5)
        // After the error the stream goes on.
        #expect(messages(expected) == ["ok"])
    }

    @Test func utf8SplitAcrossFragmentsIsValid() throws {
        // "é" is C3 A9; the frames split it.
        #expect(messages(try assemble("01 02 61 C3  80 02 A9 62")) == ["aéb"])
    }

    @Test func invalidUTF8IsFoundInTheFragmentThatBreaksIt() throws {
        let results = try assemble("01 02 61 C3  80 02 28 62")
        #expect(errors(results).first?.code == .invalidUTF8)
        #expect(errors(results).first?.offset == 6)  // the 0x28 after C3
        let cut = try assemble("81 02 61 E3")
        #expect(errors(cut).first?.code == .invalidUTF8)
        let surrogate = try assemble("81 03 ED A0 80")
        #expect(errors(surrogate).first?.offset == 3)
        // Binary messages are not checked.
        #expect(errors(try assemble("82 02 C3 28")).isEmpty)
    }

    @Test(arguments: [
        ("88 00", nil as UInt16?, true),
        ("88 02 03 E8", 1000, true),
        ("88 02 0F A0", 4000, true),
        ("88 02 03 F3", 1011, true),
        ("88 02 03 ED", 1005, false),
        ("88 02 03 EE", 1006, false),
        ("88 02 03 EC", 1004, false),
        ("88 02 03 E7", 999, false),
        ("88 02 0B B7", 2999, false),
        ("88 02 13 88", 5000, false),
    ])
    func closeCodes(hex: String, code: UInt16?, valid: Bool) throws {
        let results = try assemble(hex)
        if valid {
            guard case .success(.close(let close, _)?) = results.first else {
                Issue.record("no close")
                return
            }
            #expect(close.code == code)
        } else {
            #expect(errors(results).map(\.code) == [.invalidCloseCode])
            #expect(errors(results).first?.offset == 2)
        }
    }

    @Test func closePayloadAndReason() throws {
        #expect(errors(try assemble("88 01 03")).map(\.code) == [.invalidClosePayload])
        #expect(errors(try assemble("88 04 03 E8 C3 28")).map(\.code) == [.invalidUTF8])
        guard case .success(.close(let close, _)? ) = try assemble("88 05 03 E8 62 79 65").first else {
            Issue.record("no close")
            return
        }
        #expect(close.reason == "bye")
        #expect(close.errorCode == .normalClosure)
    }

    @Test func messageLimit() throws {
        let results = try assemble("02 03 01 02 03  80 03 04 05 06  82 01 07",
                                   configuration: .init(maximumMessageSize: 5))
        #expect(errors(results).map(\.code) == [.messageTooLarge])
        guard case .success(.message(let message)?) = results.last else {
            Issue.record("no message after the limit")
            return
        }
        #expect(message.data == ByteBuffer(bytes: [7]))
    }

    /// RFC 7692 §7.2.3.1 and §7.2.3.2: "Hello" compressed, then again with the
    /// sliding window shared (context takeover).
    @Test func permessageDeflateWithContextTakeover() throws {
        let deflate = PerMessageDeflateParameters()
        let results = try assemble("c1 07 f2 48 cd c9 c9 07 00  c1 05 f2 00 11 00 00",
                                   configuration: .init(direction: .serverToClient, deflate: deflate))
        #expect(messages(results) == ["Hello", "Hello"])
        #expect(errors(results).isEmpty)
    }

    /// Without context takeover each message inflates on its own (and the second
    /// example of RFC 7692 §7.2.3.2, which needs the first's window, fails).
    @Test func permessageDeflateWithoutContextTakeover() throws {
        let deflate = PerMessageDeflateParameters(serverNoContextTakeover: true)
        let config = WebSocketMessageAssembler.Configuration(direction: .serverToClient, deflate: deflate)
        #expect(messages(try assemble("c1 07 f2 48 cd c9 c9 07 00  c1 07 f2 48 cd c9 c9 07 00", configuration: config))
                == ["Hello", "Hello"])
        #expect(errors(try assemble("c1 07 f2 48 cd c9 c9 07 00  c1 05 f2 00 11 00 00", configuration: config))
                .map(\.code) == [.compressionError])
    }

    /// RFC 7692 §7.2.3.1: a compressed message in two fragments; RSV1 only on the first.
    @Test func permessageDeflateFragmented() throws {
        let config = WebSocketMessageAssembler.Configuration(deflate: PerMessageDeflateParameters())
        #expect(messages(try assemble("41 03 f2 48 cd  80 04 c9 c9 07 00", configuration: config)) == ["Hello"])
        #expect(errors(try assemble("41 03 f2 48 cd  c0 04 c9 c9 07 00", configuration: config)).map(\.code)
                == [.compressedContinuation])
        #expect(errors(try assemble("c9 00", configuration: config)).map(\.code) == [.compressedControlFrame])
        #expect(errors(try assemble("c1 03 ff ff ff", configuration: config)).map(\.code) == [.compressionError])
    }

    /// Large messages compressed by zlib (through compress-nio, as a sender would)
    /// inflate back; an inflation bomb stops at the limit.
    @Test func permessageDeflateAgainstZlibAndTheLimit() throws {
        let text = String(repeating: "Works notification 通知 ", count: 4000)
        var input = ByteBuffer(string: text)
        let compressor = try ZlibCompressor(algorithm: .deflate)
        var compressed = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input))
        try compressor.deflate(from: &input, to: &compressed, flush: .sync)
        compressed.moveWriterIndex(to: compressed.writerIndex - 4)  // strip 00 00 FF FF
        var wire = ByteBuffer()
        WebSocketFrameWriter.write(WebSocketFrame(fin: true, rsv1: true, opcode: .text, data: compressed), into: &wire)
        let hex = wire.readableBytesView.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        let big = try assemble(hex, configuration: .init(deflate: PerMessageDeflateParameters()))
        #expect(messages(big) == [text])
        let capped = try assemble(hex, configuration: .init(maximumMessageSize: 10_000, deflate: PerMessageDeflateParameters()))
        #expect(errors(capped).map(\.code) == [.messageTooLarge])
    }

    /// A message that inflates to exactly the maximum is taken; one byte more is refused
    /// (the deflate fuzz target found the first refused too).
    @Test func inflationLimitIsExact() throws {
        for size in [1, 255, 256, 257, 4096] {
            var input = ByteBuffer(repeating: 0x41, count: size)
            let compressor = try ZlibCompressor(algorithm: .deflate)
            var compressed = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input) + 16)
            try compressor.deflate(from: &input, to: &compressed, flush: .sync)
            compressed.moveWriterIndex(to: compressed.writerIndex - 4)
            let exact = try PerMessageDeflateInflater(noContextTakeover: true).inflate(compressed, maximumSize: size, offset: 0)
            #expect(exact.readableBytes == size)
            #expect(throws: WebSocketWireError.self) {
                try PerMessageDeflateInflater(noContextTakeover: true).inflate(compressed, maximumSize: size - 1, offset: 0)
            }
        }
    }

    /// The 00 00 FF FF tail goes to zlib after the message, not appended to it: an empty
    /// message, messages sharing their context, and one that ends in a final block (the tail
    /// then follows the end of the stream) all inflate as before, and the caller's bytes are
    /// left as they were.
    @Test func tailIsInflatedAfterTheMessage() throws {
        func deflated(_ text: String, with compressor: ZlibCompressor, flush: CompressNIOFlush = .sync) throws -> ByteBuffer {
            var input = ByteBuffer(string: text)
            var output = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input) + 16)
            try compressor.deflate(from: &input, to: &output, flush: flush)
            if flush == .sync { output.moveWriterIndex(to: output.writerIndex - 4) }
            return output
        }
        let inflater = try PerMessageDeflateInflater(noContextTakeover: false)
        let compressor = try ZlibCompressor(algorithm: .deflate)
        let empty = try deflated("", with: compressor)
        #expect(empty.readableBytes <= 1)
        #expect(try inflater.inflate(empty, maximumSize: 100, offset: 0).readableBytes == 0)

        let first = try deflated("hello hello hello", with: compressor)
        let copy = first
        #expect(String(buffer: try inflater.inflate(first, maximumSize: 100, offset: 0)) == "hello hello hello")
        #expect(first == copy && first.readableBytes == copy.readableBytes)
        // The second message refers back to the first (context takeover).
        let second = try deflated("hello hello hello", with: compressor)
        #expect(second.readableBytes < first.readableBytes)
        #expect(String(buffer: try inflater.inflate(second, maximumSize: 100, offset: 0)) == "hello hello hello")

        let finished = try deflated("the end", with: try ZlibCompressor(algorithm: .deflate), flush: .finish)
        let fresh = try PerMessageDeflateInflater(noContextTakeover: true)
        #expect(String(buffer: try fresh.inflate(finished, maximumSize: 100, offset: 0)) == "the end")
    }

    /// A deflate bomb with context takeover: the message past the maximum is an error and none
    /// of it is kept, but it is inflated through (its bytes dropped), so that the message after
    /// it, which refers back into it, still inflates right. The direction's own limit counts
    /// what was kept.
    @Test func aBombIsDroppedAndTheContextKept() throws {
        func deflated(_ bytes: ByteBuffer, with compressor: ZlibCompressor) throws -> ByteBuffer {
            var input = bytes
            var output = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input) + 16)
            try compressor.deflate(from: &input, to: &output, flush: .sync)
            output.moveWriterIndex(to: output.writerIndex - 4)
            return output
        }
        let compressor = try ZlibCompressor(algorithm: .deflate)
        let bomb = try deflated(ByteBuffer(repeating: 0x5A, count: 3_000_000), with: compressor)
        #expect(bomb.readableBytes < 10_000)
        let after = try deflated(ByteBuffer(repeating: 0x5A, count: 1_000), with: compressor)
        let inflater = try PerMessageDeflateInflater(noContextTakeover: false)
        do {
            _ = try inflater.inflate(bomb, maximumSize: 100_000, offset: 7)
            Issue.record("the bomb inflated")
        } catch {
            #expect(error.code == .messageTooLarge)
            #expect(error.description.contains("inflates to 3000000 bytes"), "\(error)")
        }
        let text = try inflater.inflate(after, maximumSize: 100_000, offset: 8)
        #expect(text.readableBytes == 1_000 && text.readableBytesView.allSatisfy { $0 == 0x5A })

        // The direction's limit: 1,500 kept bytes, then messages are not inflated.
        var wire = ByteBuffer()
        let small = try deflated(ByteBuffer(repeating: 0x41, count: 1_000), with: try ZlibCompressor(algorithm: .deflate))
        for _ in 0..<3 {
            WebSocketFrameWriter.write(WebSocketFrame(fin: true, rsv1: true, opcode: .binary, data: small), into: &wire)
        }
        let hex = wire.readableBytesView.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        let parameters = PerMessageDeflateParameters(serverNoContextTakeover: true, clientNoContextTakeover: true)
        let events = try assemble(hex, configuration: .init(deflate: parameters, maximumInflatedBytes: 1_500))
        #expect(errors(events).map(\.code) == [.messageTooLarge, .messageTooLarge])
    }

    @Test func extensionNegotiationIsRead() {
        let extensions = WebSocketExtension.parse(["permessage-deflate; client_max_window_bits=10; server_no_context_takeover, x-other"])
        #expect(extensions.map(\.name) == ["permessage-deflate", "x-other"])
        let parameters = PerMessageDeflateParameters(extensions: extensions)
        #expect(parameters?.serverNoContextTakeover == true)
        #expect(parameters?.clientNoContextTakeover == false)
        #expect(parameters?.clientMaxWindowBits == 10)
    }
}
