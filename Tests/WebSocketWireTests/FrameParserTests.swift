import NIOCore
import NIOWebSocket
import Testing
import WebSocketWire

func hexBytes(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    return stride(from: 0, to: digits.count, by: 2).map { offset in
        let start = digits.index(digits.startIndex, offsetBy: offset)
        return UInt8(digits[start..<digits.index(start, offsetBy: 2)], radix: 16) ?? 0xEE
    }
}

func parseAll(_ bytes: [UInt8], direction: StreamDirection = .unknown, chunk: Int = .max,
              configuration: WebSocketFrameParser.Configuration? = nil) throws -> [ParsedFrame] {
    var parser = WebSocketFrameParser(configuration: configuration ?? .init(direction: direction))
    var frames: [ParsedFrame] = []
    var index = 0
    while index < bytes.count {
        let end = min(bytes.count, index + chunk)
        parser.append(contentsOf: bytes[index..<end])
        index = end
        while let frame = try parser.next() { frames.append(frame) }
    }
    return frames
}

@Suite("WebSocket frame parser")
struct FrameParserTests {
    /// RFC 6455 §5.7 examples.
    @Test(arguments: [
        ("81 05 48 65 6c 6c 6f", WebSocketOpcode.text, true, "Hello", false),
        ("81 85 37 fa 21 3d 7f 9f 4d 51 58", .text, true, "Hello", true),
        ("01 03 48 65 6c", .text, false, "Hel", false),
        ("80 02 6c 6f", .continuation, true, "lo", false),
        ("89 05 48 65 6c 6c 6f", .ping, true, "Hello", false),
        ("8a 85 37 fa 21 3d 7f 9f 4d 51 58", .pong, true, "Hello", true),
    ])
    func rfc6455Examples(hex: String, opcode: WebSocketOpcode, fin: Bool, payload: String, masked: Bool) throws {
        let frames = try parseAll(hexBytes(hex))
        #expect(frames.count == 1)
        let parsed = try #require(frames.first)
        #expect(parsed.frame.opcode == opcode)
        #expect(parsed.frame.fin == fin)
        #expect(String(buffer: parsed.frame.data) == payload)
        #expect((parsed.maskKey != nil) == masked)
        #expect(parsed.frame.maskKey == nil)
        // Byte by byte gives the same frame.
        #expect(try parseAll(hexBytes(hex), chunk: 1) == frames)
    }

    /// RFC 6455 §5.7: 256 bytes with a 16-bit length, 64 KiB with a 64-bit length.
    @Test(arguments: [(256, "82 7E 01 00"), (65_536, "82 7F 00 00 00 00 00 01 00 00")])
    func extendedLengths(size: Int, header: String) throws {
        let frames = try parseAll(hexBytes(header) + [UInt8](repeating: 7, count: size))
        #expect(frames.first?.frame.length == size)
        #expect(frames.first?.headerLength == hexBytes(header).count)
    }

    @Test func maskedFramesOfEveryLengthRoundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        var stream = ByteBuffer()
        var expected: [[UInt8]] = []
        var keys: [WebSocketMaskingKey?] = []
        for length in Array(0...140) + [65_535, 65_536, 70_001] {
            let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            expected.append(payload)
            let key = length % 2 == 0 ? WebSocketMaskingKey.random() : nil
            keys.append(key)
            let frame = WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: payload))
            WebSocketFrameWriter.write(frame, maskKey: key, into: &stream)
        }
        let bytes = Array(stream.readableBytesView)
        let frames = try parseAll(bytes, chunk: 997)
        #expect(frames.map { Array($0.frame.data.readableBytesView) } == expected)
        // The key is kept as read, and given back as NIO's.
        #expect(frames.map(\.maskKey) == keys)
        #expect(frames.map(\.isMasked) == keys.map { $0 != nil })
        #expect(frames.last?.endOffset == bytes.count)
    }

    /// The word-at-a-time loop agrees with the byte loop of RFC 6455 §5.3 for every
    /// length and starting phase.
    @Test func maskingMatchesTheByteDefinition() {
        let key: WebSocketMaskingKey = [0x12, 0x34, 0x56, 0x78]
        for length in 0..<80 {
            for phase in 0..<4 {
                let source = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
                var output = [UInt8](repeating: 0, count: length)
                source.withUnsafeBytes { from in
                    output.withUnsafeMutableBytes { to in
                        if let f = from.baseAddress, let t = to.baseAddress {
                            WebSocketMasking.apply(key: key, phase: phase, source: f, destination: t, count: length)
                        }
                    }
                }
                let reference = source.enumerated().map { $0.element ^ key[($0.offset + phase) % 4] }
                #expect(output == reference, "length \(length) phase \(phase)")
            }
        }
    }

    @Test func maskingAnomaliesDependOnDirection() throws {
        let masked = hexBytes("81 85 37 fa 21 3d 7f 9f 4d 51 58")
        let unmasked = hexBytes("81 05 48 65 6c 6c 6f")
        #expect(try parseAll(masked, direction: .serverToClient).first?.anomalies == .maskedServerFrame)
        #expect(try parseAll(unmasked, direction: .clientToServer).first?.anomalies == .unmaskedClientFrame)
        #expect(try parseAll(masked, direction: .clientToServer).first?.anomalies == [])
        #expect(try parseAll(hexBytes("82 7E 00 05 01 02 03 04 05")).first?.anomalies == .nonMinimalLength)
    }

    @Test(arguments: [
        // (bytes, code, offset, recoverable)
        ("82 FF 80 00 00 00 00 00 00 01", WebSocketWireError.Code.lengthTopBitSet, 2, false),
        ("C1 00", .reservedBitsSet, 0, true),
        ("A2 00", .reservedBitsSet, 0, true),
        ("83 00", .unknownOpcode, 0, true),
        ("8B 00", .unknownOpcode, 0, true),
        ("89 7E 00 7E", .controlFrameTooLong, 0, true),
        ("09 00", .fragmentedControlFrame, 0, true),
        ("08 00", .fragmentedControlFrame, 0, true),
    ])
    func headerErrors(hex: String, code: WebSocketWireError.Code, offset: Int, recoverable: Bool) {
        var parser = WebSocketFrameParser()
        parser.append(contentsOf: hexBytes(hex))
        #expect { _ = try parser.next() } throws: { error in
            guard let error = error as? WebSocketWireError else { return false }
            return error.code == code && error.offset == offset && error.isRecoverable == recoverable
        }
    }

    /// The header errors' reasons, written from values when read, say what they said.
    @Test(arguments: [
        ("C1 00", "reserved bits 0x40 set without a negotiated extension"),
        ("8B 00", "opcode 0xb is reserved"),
        ("89 7E 00 7E", "WebSocketOpcode.ping frame of 126 bytes; control frames carry at most 125"),
        ("08 00", "WebSocketOpcode.connectionClose frame without FIN"),
        ("82 05 01 02 03 04 05", "frame payload of 5 bytes exceeds the maximum of 4"),
    ])
    func headerErrorReasons(hex: String, reason: String) {
        var parser = WebSocketFrameParser(configuration: .init(maximumFrameSize: 4))
        parser.append(contentsOf: hexBytes(hex))
        #expect { _ = try parser.next() } throws: { ($0 as? WebSocketWireError)?.reason == reason }
    }

    /// A frame with a bad header is skipped whole and the next frame parses.
    @Test func recoversAfterABadFrame() throws {
        var parser = WebSocketFrameParser()
        parser.append(contentsOf: hexBytes("83 03 01 02 03  81 02 68 69"))
        #expect(throws: WebSocketWireError.self) { _ = try parser.next() }
        let next = try #require(try parser.next())
        #expect(String(buffer: next.frame.data) == "hi")
        #expect(next.offset == 5)
    }

    @Test func frameLimit() throws {
        var parser = WebSocketFrameParser(configuration: .init(maximumFrameSize: 4))
        parser.append(contentsOf: hexBytes("82 05 01 02 03 04 05  82 01 09"))
        #expect { _ = try parser.next() } throws: { ($0 as? WebSocketWireError)?.code == .frameTooLarge }
        #expect(try parser.next()?.frame.data == ByteBuffer(bytes: [9]))
    }

    @Test func unmaskedPayloadIsASliceOfTheInput() throws {
        let input = ByteBuffer(bytes: hexBytes("82 04 01 02 03 04"))
        var parser = WebSocketFrameParser()
        parser.append(input)
        let frame = try #require(try parser.next())
        let inputBase = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let payloadBase = frame.frame.data.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(payloadBase == inputBase + 2)
    }

    @Test func encoderUsesTheShortestLength() {
        for (length, headerLength) in [(125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            var out = ByteBuffer()
            WebSocketFrameWriter.write(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(repeating: 0, count: length)),
                                       into: &out)
            #expect(out.readableBytes == length + headerLength)
        }
    }
}

/// A parser waiting for the rest of a frame keeps only the bytes it has, not the larger
/// buffer they were sliced from (a capture's frames are read ahead 32 KiB at a time).
@Suite("Frame parser memory")
struct FrameParserMemoryTests {
    static func isAlone(_ buffer: inout ByteBuffer) -> Bool {
        let before = buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        let readerIndex = UInt(buffer.readerIndex)
        let after = buffer.withUnsafeMutableReadableBytes { UInt(bitPattern: $0.baseAddress) - readerIndex }
        return before == after
    }

    @Test func aPartialFrameDoesNotKeepItsSourceAlive() throws {
        var big = ByteBuffer(bytes: [UInt8](repeating: 0x61, count: 32_768))
        big.setBytes([0x82, 0x7E, 0x00, 0xC8], at: 1_000)  // binary, FIN, 200 bytes, unmasked
        var parser = WebSocketFrameParser(configuration: .init(direction: .serverToClient))
        parser.append(big.getSlice(at: 1_000, length: 100) ?? ByteBuffer())
        #expect(try parser.next() == nil)
        #expect(Self.isAlone(&big))
        parser.append(ByteBuffer(bytes: [UInt8](repeating: 0x62, count: 104)))
        let frame = try #require(try parser.next())
        #expect(frame.length == 200)
        #expect(frame.data.getBytes(at: frame.data.readerIndex + 95, length: 2) == [0x61, 0x62])
    }
}
