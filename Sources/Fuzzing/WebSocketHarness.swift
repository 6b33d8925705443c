import CompressNIO
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization
import WebSocketWire

/// The WebSocket targets: frames and messages of one direction, HTTP Upgrade heads,
/// permessage-deflate.
enum WebSocketHarness {
    /// Frame and message limit. Small, so that an inflation bomb costs 4 KiB of output
    /// per message (inflated on each of the harness's passes), not 64 KiB or a megabyte of
    /// fresh pages under AddressSanitizer's quarantine. The limit logic is the same at any
    /// size, and inputs are at most 4 KiB, so no whole frame is refused that a larger limit
    /// would take.
    static let maximumSize = 1 << 12

    /// Control bytes: flags (bit 0: server-to-client; bit 1: the stream starts with the
    /// HTTP head; bit 2: permessage-deflate, bit 3 without context takeover; bit 4: the
    /// stream starts after lost bytes, so the decoder first scans for a frame boundary),
    /// then the chunk-size seed. Oracles: chunked decoding equals one-shot decoding; every
    /// frame written back by the frame writer parses to the same frame.
    static let frames = FuzzTarget(
        name: "websocket", build: .codecs,
        summary: "WebSocket frame parser and message reassembly (one direction, optional HTTP head and permessage-deflate)"
    ) { input throws(OracleViolation) in
        var cursor = InputCursor(input)
        let flags = cursor.byte()
        let seed = cursor.byte()
        let setup = StreamSetup(flags: flags)
        let stream = ByteBuffer(bytes: cursor.rest)
        try spareEvents.withEmptyList { (oneShot: inout [WebSocketStreamDecoder.Event]) throws(OracleViolation) in
            try feed(stream, setup: setup, chunkSizes: nil) { oneShot.append($0) }
            let sizes = ChunkSizes(seed: seed)
            var pieces = AnswerComparison(expecting: oneShot)
            try feed(stream, setup: setup, chunkSizes: sizes) { pieces.take($0) }
            if !pieces.matches {
                let events = try events(stream, setup: setup, chunkSizes: sizes)
                throw OracleViolation(target: "websocket", oracle: "chunked decoding equals one-shot decoding",
                                      detail: firstDifference(oneShot, events))
            }
            try roundTrips(oneShot, setup: setup, size: stream.readableBytes)
        }
    }

    private static let spareEvents = SpareList<WebSocketStreamDecoder.Event>()

    struct StreamSetup {
        var direction: StreamDirection
        var expectsHead: Bool
        var deflate: PerMessageDeflateParameters?
        var scansFirst: Bool

        init(flags: UInt8) {
            direction = flags & 1 == 0 ? .clientToServer : .serverToClient
            expectsHead = flags & 2 != 0
            let noTakeover = flags & 8 != 0
            deflate = flags & 4 == 0 ? nil
                : PerMessageDeflateParameters(serverNoContextTakeover: noTakeover, clientNoContextTakeover: noTakeover)
            scansFirst = flags & 16 != 0
        }
    }

    /// Every event of `stream`, fed whole or cut into pieces of `chunkSizes`.
    static func events(_ stream: ByteBuffer, setup: StreamSetup, chunkSizes: ChunkSizes?) throws(OracleViolation)
        -> [WebSocketStreamDecoder.Event]
    {
        var events: [WebSocketStreamDecoder.Event] = []
        events.reserveCapacity(16)
        try feed(stream, setup: setup, chunkSizes: chunkSizes) { events.append($0) }
        return events
    }

    /// For tests: every event of bytes fed whole.
    static func events(_ stream: ArraySlice<UInt8>, setup: StreamSetup) throws(OracleViolation) -> [WebSocketStreamDecoder.Event] {
        try events(ByteBuffer(bytes: stream), setup: setup, chunkSizes: nil)
    }

    /// Feeds `stream` to a decoder set up as `setup` (whole, or cut into `chunkSizes`) and
    /// hands each event to `emit` as it comes, so that a pass compared with another builds
    /// no list.
    static func feed(_ stream: ByteBuffer, setup: StreamSetup, chunkSizes: ChunkSizes?,
                     emit: (consuming WebSocketStreamDecoder.Event) -> Void) throws(OracleViolation) {
        var decoder: WebSocketStreamDecoder
        do {
            decoder = try WebSocketStreamDecoder(direction: setup.direction, expectsHead: setup.expectsHead,
                                                 maximumFrameSize: maximumSize, maximumMessageSize: maximumSize)
            if let deflate = setup.deflate { try decoder.enableDeflate(deflate) }
        } catch {
            throw OracleViolation(target: "websocket", oracle: "setup", detail: "\(error)")
        }
        if setup.scansFirst { decoder.lost(nil) }
        forEachPiece(of: stream, sizes: chunkSizes) { piece in decoder.feed(piece, emit: emit) }
    }

    /// The frame writer's bytes for the parsed frames, one after the other, parse back to
    /// the same frames (one buffer and one parser for all, which keeps the harness fast; a
    /// mismatch is then narrowed down to its frame). `size`, the bytes the frames came from,
    /// is room enough for them written back: the writer uses the shortest length field, never
    /// longer than the one the frame came with.
    static func roundTrips(_ events: [WebSocketStreamDecoder.Event], setup: StreamSetup, size: Int) throws(OracleViolation) {
        var wire = ByteBufferAllocator().buffer(capacity: 0)
        for case .frame(let parsed) in events {
            if wire.capacity == 0 { wire.reserveCapacity(size) }
            WebSocketFrameWriter.write(parsed, into: &wire)
        }
        guard wire.readableBytes > 0 else { return }
        var parser = WebSocketFrameParser(configuration: .init(
            maximumFrameSize: maximumSize, direction: setup.direction, allowedReservedBits: [.rsv1, .rsv2, .rsv3]))
        parser.append(wire)
        for case .frame(let parsed) in events {
            let back = try? parser.next()
            guard let back, back.isSameFrame(as: parsed) else {
                try roundTrip(parsed, setup: setup)
                throw OracleViolation(target: "websocket", oracle: "parse(write(frames)) == frames",
                                      detail: "\(parsed.frame) came back as \(back.map { "\($0.frame)" } ?? "nothing") in a stream")
            }
        }
        if parser.bufferedByteCount != 0 {
            throw OracleViolation(target: "websocket", oracle: "parse(write(frames)) == frames",
                                  detail: "\(parser.bufferedByteCount) written bytes left over")
        }
    }

    /// The frame writer's bytes for a parsed frame parse back to the same frame.
    static func roundTrip(_ parsed: ParsedFrame, setup: StreamSetup) throws(OracleViolation) {
        var wire = ByteBuffer()
        WebSocketFrameWriter.write(parsed, into: &wire)
        let written = wire
        var parser = WebSocketFrameParser(configuration: .init(
            maximumFrameSize: maximumSize, direction: setup.direction, allowedReservedBits: [.rsv1, .rsv2, .rsv3]))
        parser.append(wire)
        let back: ParsedFrame?
        do {
            back = try parser.next()
        } catch {
            throw OracleViolation(target: "websocket", oracle: "the parser accepts what the frame writer writes",
                                  detail: "\(parsed.frame) → \(hex(written)): \(error)")
        }
        guard let back, back.isSameFrame(as: parsed), parser.bufferedByteCount == 0 else {
            throw OracleViolation(target: "websocket", oracle: "parse(write(frame)) == frame",
                                  detail: "\(parsed.frame) → \(hex(written)) → \(back.map { "\($0.frame)" } ?? "nothing")")
        }
    }

    /// Control bytes: where the request ends and the response begins, and where the
    /// request is cut for the incremental check. Oracles: a head parsed from a prefix is
    /// the head parsed from the whole (or nothing yet); a parsed head says exactly how
    /// many bytes it took; the handshake checks take any pair of heads.
    static let httpUpgrade = FuzzTarget(
        name: "http-upgrade", build: .codecs, summary: "HTTP/1.1 Upgrade request and response heads, and the handshake checks"
    ) { input throws(OracleViolation) in
        var cursor = InputCursor(input)
        let split = Int(cursor.byte()) << 8 | Int(cursor.byte())
        let cut = Int(cursor.byte()) << 8 | Int(cursor.byte())
        let stream = cursor.rest
        let middle = stream.index(stream.startIndex, offsetBy: min(split, stream.count))
        let requestBytes = stream[..<middle]
        let responseBytes = stream[middle...]

        let request = try head(requestBytes, cut: cut, parse: HTTPHeadParser.parseRequest)
        let response = try head(responseBytes, cut: cut, parse: HTTPHeadParser.parseResponse)
        guard let request else { return }
        _ = request.subprotocols
        _ = request.asksForWebSocketUpgrade
        _ = response.map { PerMessageDeflateParameters(extensions: $0.extensions) }
        _ = WebSocketHandshake.problems(request: request, response: response)
    }

    typealias HeadParser<Head> = (inout ByteBuffer, Int, Int) throws(WebSocketWireError) -> Head?

    /// Parses a head from all of `bytes`, and from their first `cut` bytes, and checks
    /// the two agree. Returns the head of the whole, if any.
    static func head<Head: Equatable & WebSocketHandshakeHead>(
        _ bytes: ArraySlice<UInt8>, cut: Int, parse: HeadParser<Head>
    ) throws(OracleViolation) -> Head? {
        func attempt(_ part: ArraySlice<UInt8>) -> (Result<Head?, WebSocketWireError>, consumed: Int) {
            var buffer = ByteBuffer(bytes: part)
            do {
                let head = try parse(&buffer, 0, HTTPHeadParser.defaultMaximumHeadSize)
                return (.success(head), buffer.readerIndex)
            } catch {
                return (.failure(error), 0)
            }
        }
        let (whole, consumed) = attempt(bytes)
        if case .success(let head?) = whole, head.range != 0..<consumed {
            throw OracleViolation(target: "http-upgrade", oracle: "a head's range is the bytes it took",
                                  detail: "range \(head.range), \(consumed) bytes taken")
        }
        let (prefix, _) = attempt(bytes.prefix(cut))
        switch prefix {
        case .success(nil): break
        case .success(let head?) where whole == .success(head): break
        case .failure(let error) where whole == .failure(error): break
        default:
            throw OracleViolation(target: "http-upgrade", oracle: "a prefix parses like the whole or not yet",
                                  detail: "first \(cut) bytes: \(prefix); all \(bytes.count) bytes: \(whole)")
        }
        if case .success(let head) = whole { return head }
        return nil
    }

    /// Control bytes: flags (bit 0: no context takeover), then messages, each a length
    /// byte and that many bytes. Oracles: output never exceeds the limit; whatever
    /// inflates, deflated again by zlib, inflates back to itself.
    static let deflate = FuzzTarget(
        name: "deflate", build: .codecs, summary: "permessage-deflate inflater (RFC 7692) with and without context takeover"
    ) { input throws(OracleViolation) in
        try zlib.withLock { (streams: inout ZlibStreams?) throws(OracleViolation) in
            let ready: ZlibStreams
            if let streams { ready = streams } else { ready = try ZlibStreams(); streams = ready }
            try inflateMessages(input, streams: ready)
        }
    }

    /// zlib streams cost much to set up (deflate's state is about 256 KiB, which
    /// AddressSanitizer poisons and quarantines): one set serves every run, reset before
    /// each use, which leaves it as new ones would be. The lock keeps tests that run
    /// harnesses in parallel apart.
    private static let zlib = Mutex<ZlibStreams?>(nil)

    final class ZlibStreams {
        let withTakeover: PerMessageDeflateInflater
        let withoutTakeover: PerMessageDeflateInflater
        /// Inflates what `compressor` deflated, for the round trip.
        let checker: PerMessageDeflateInflater
        let compressor: ZlibCompressor

        init() throws(OracleViolation) {
            do {
                withTakeover = try PerMessageDeflateInflater(noContextTakeover: false)
                withoutTakeover = try PerMessageDeflateInflater(noContextTakeover: true)
                checker = try PerMessageDeflateInflater(noContextTakeover: true)
                // Fastest level, least memory (deflateReset clears the match hash table: 64 KiB by
                // default, 512 bytes here): a bomb's 64 KiB of output is deflated again on every
                // run, and any valid deflate stream serves the round trip.
                compressor = try ZlibCompressor(algorithm: .deflate, configuration: .init(compressionLevel: 1, memoryLevel: 1))
            } catch {
                throw OracleViolation(target: "deflate", oracle: "setup", detail: "\(error)")
            }
        }
    }

    static func inflateMessages(_ input: [UInt8], streams: ZlibStreams) throws(OracleViolation) {
        var cursor = InputCursor(input)
        let noContextTakeover = cursor.byte() & 1 != 0
        // Small for the reason of `maximumSize`: a bomb costs 4 KiB of output per message,
        // inflated and deflated again, not 64 KiB; the limit logic is the same at any size.
        let limit = maximumSize
        var rest = cursor.rest
        let inflater = noContextTakeover ? streams.withoutTakeover : streams.withTakeover
        do {
            try inflater.reset()
        } catch {
            throw OracleViolation(target: "deflate", oracle: "setup", detail: "\(error)")
        }
        while let length = rest.first {
            rest = rest.dropFirst()
            let message = rest.prefix(Int(length))
            rest = rest.dropFirst(Int(length))
            let output: ByteBuffer
            do {
                output = try inflater.inflate(ByteBuffer(bytes: message), maximumSize: limit, offset: 0)
            } catch {
                // With context takeover the window is now unknown, as for a receiver.
                if noContextTakeover { continue } else { return }
            }
            guard output.readableBytes <= limit else {
                throw OracleViolation(target: "deflate", oracle: "inflated size within the limit",
                                      detail: "\(output.readableBytes) > \(limit)")
            }
            try reinflates(consume output, streams: streams)
        }
    }

    /// zlib deflates `text` (sync flush, tail removed, as a sender does) and a fresh
    /// inflater gives `text` back. zlib reads through a mutable pointer, so both buffers are
    /// handed over rather than shared, which would copy them first.
    static func reinflates(_ text: consuming ByteBuffer, streams: ZlibStreams) throws(OracleViolation) {
        do {
            let start = text.readerIndex
            let compressor = streams.compressor
            try compressor.reset()
            var compressed = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: text) + 16)
            // Deflating reads the bytes and moves the reader index past them; they stay.
            try compressor.deflate(from: &text, to: &compressed, flush: .sync)
            text.moveReaderIndex(to: start)
            compressed.moveWriterIndex(to: compressed.writerIndex - 4)
            try streams.checker.reset()
            let back = try streams.checker.inflate(consume compressed, maximumSize: max(1, text.readableBytes), offset: 0)
            guard back == text else {
                throw OracleViolation(target: "deflate", oracle: "inflate(deflate(text)) == text",
                                      detail: "\(text.readableBytes) bytes came back as \(back.readableBytes)")
            }
        } catch let violation as OracleViolation {
            throw violation
        } catch {
            throw OracleViolation(target: "deflate", oracle: "inflate(deflate(text)) == text", detail: "\(error)")
        }
    }
}
