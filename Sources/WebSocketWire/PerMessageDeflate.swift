import CompressNIO
public import NIOCore

/// Negotiated permessage-deflate parameters (RFC 7692 §7.1), read from the
/// `Sec-WebSocket-Extensions` header of the server's handshake response.
public struct PerMessageDeflateParameters: Sendable, Hashable {
    public var serverNoContextTakeover = false
    public var clientNoContextTakeover = false
    public var serverMaxWindowBits: Int?
    public var clientMaxWindowBits: Int?

    public init(serverNoContextTakeover: Bool = false, clientNoContextTakeover: Bool = false,
                serverMaxWindowBits: Int? = nil, clientMaxWindowBits: Int? = nil) {
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
    }

    /// Finds permessage-deflate among the extensions of a response; nil when absent.
    public init?(extensions: [WebSocketExtension]) {
        guard let offer = extensions.first(where: { $0.name == "permessage-deflate" }) else { return nil }
        for parameter in offer.parameters {
            let value = parameter.value
            switch parameter.name {
            case "server_no_context_takeover": serverNoContextTakeover = true
            case "client_no_context_takeover": clientNoContextTakeover = true
            case "server_max_window_bits": serverMaxWindowBits = value.flatMap { Int($0) } ?? 15
            case "client_max_window_bits": clientMaxWindowBits = value.flatMap { Int($0) } ?? 15
            default: continue
            }
        }
    }

    /// Whether the sender of `direction` resets its compression context after each message.
    public func noContextTakeover(for direction: StreamDirection) -> Bool {
        direction == .clientToServer ? clientNoContextTakeover : serverNoContextTakeover
    }
}

/// Inflates permessage-deflate messages of one direction, with or without context
/// takeover, through zlib (compress-nio). Not Sendable: it owns a zlib stream.
///
/// With `zlibStream`, it inflates instead an application's own compressed stream (the
/// Discord gateway's `compress=zlib-stream`): zlib format with its header, one context for the
/// whole connection, each flushed piece already ending in 00 00 FF FF.
public final class PerMessageDeflateInflater {
    private let decompressor: ZlibDecompressor
    private let resetsAfterMessage: Bool
    private let appendsTail: Bool
    private static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]
    /// The tail, this inflater's own: zlib reads its input through a mutable pointer, so a
    /// buffer shared with anyone (a static one) was copied first, an allocation per message.
    /// Only `inflate` touches it, and winds it back after each use.
    private var tailBuffer = ByteBuffer(bytes: tail)
    /// Where the compression context was lost (a message inflated past what is followed, with
    /// context takeover): later messages cannot be inflated.
    private var contextLostAt: Int?
    /// What a message past its maximum is still inflated to, its bytes dropped, so that the
    /// context stays right for the messages after it (a deflate bomb of a 64 MiB frame could
    /// otherwise cost a minute of zlib).
    public static let maximumDroppedBytes = 1 << 30

    public init(noContextTakeover: Bool, zlibStream: Bool = false) throws(WebSocketWireError) {
        do {
            // A 15-bit window inflates what any smaller negotiated window compressed.
            decompressor = try ZlibDecompressor(algorithm: zlibStream ? .zlib : .deflate, windowSize: 15)
        } catch {
            throw WebSocketWireError(code: .compressionError, offset: 0, describedBy: "zlib could not start: \(error)")
        }
        resetsAfterMessage = noContextTakeover
        appendsTail = !zlibStream
    }

    /// Forgets the context, as a new inflater would start (zlib's inflateReset: cheaper than a
    /// new one); `offset` is where a failure is reported.
    public func reset(offset: Int = 0) throws(WebSocketWireError) {
        do { try decompressor.reset() } catch {
            throw WebSocketWireError(code: .compressionError, offset: offset, reason: "zlib could not reset")
        }
    }

    /// Whether a zlib-stream piece is complete: it ends with the sync-flush marker.
    public static func endsFlush(_ buffer: ByteBuffer) -> Bool {
        buffer.readableBytes >= 4 && buffer.getBytes(at: buffer.writerIndex - 4, length: 4) == tail
    }

    /// Inflates one message's compressed payload (the fragments joined), then the 00 00 FF FF
    /// tail that the sender removed (RFC 7692 §7.2.2). The tail goes to zlib after the message
    /// rather than appended to it: a message's bytes are shared with the frame they came in, so
    /// appending copied every message first. zlib inflates a stream in any cut alike.
    ///
    /// zlib reads `compressed` through a mutable pointer: bytes that someone else still holds
    /// (a frame's payload, a caller's copy) are copied first, bytes handed over are not.
    ///
    /// A message that inflates past `maximumSize` is an error, and none of it is kept; it is
    /// still inflated (its bytes dropped as they come, up to ``maximumDroppedBytes``) so that,
    /// with context takeover, the messages after it inflate right.
    public func inflate(_ compressed: consuming ByteBuffer, maximumSize: Int, offset: Int) throws(WebSocketWireError) -> ByteBuffer {
        if let lost = contextLostAt {
            throw WebSocketWireError(code: .compressionError, offset: offset, values: .init("", lost),
                                     describedBy: { "not inflated: the compression context was lost at byte \($0.first)" })
        }
        // Room for one byte past the maximum: a message of exactly `maximumSize` bytes fills
        // the buffer without being too large (the deflate fuzz target found such messages
        // refused); the check at the end tells the two apart.
        let limit = maximumSize < Int.max ? maximumSize + 1 : Int.max
        var output = ByteBufferAllocator().buffer(capacity: max(256, min(limit, compressed.readableBytes * 4)))
        var dropped = 0
        do {
            if compressed.readableBytes > 0 {
                try inflate(&compressed, into: &output, limit: limit, dropped: &dropped, offset: offset)
            }
            if appendsTail {
                defer { tailBuffer.moveReaderIndex(to: 0) }
                try inflate(&tailBuffer, into: &output, limit: limit, dropped: &dropped, offset: offset)
            }
        } catch {
            // What zlib was given is no longer the sender's context.
            if resetsAfterMessage { try? reset(offset: offset) } else { contextLostAt = offset }
            throw error
        }
        if resetsAfterMessage { try reset(offset: offset) }
        guard dropped == 0 && output.readableBytes <= maximumSize else {
            let total = dropped + output.readableBytes
            throw WebSocketWireError(code: .messageTooLarge, offset: offset, values: .init("", total, maximumSize),
                                     describedBy: { "message inflates to \($0.first) bytes, past the maximum of \($0.second): not kept" })
        }
        return output
    }

    /// Inflates all of `input` into `output`, which grows up to `limit` bytes; past it, the
    /// bytes are dropped (counted in `dropped`) as zlib makes them.
    private func inflate(_ input: inout ByteBuffer, into output: inout ByteBuffer, limit: Int, dropped: inout Int,
                         offset: Int) throws(WebSocketWireError) {
        do {
            while true {
                if output.writableBytes == 0 {
                    if output.capacity < limit {
                        output.reserveCapacity(min(limit, output.capacity * 2))
                    } else {
                        dropped += output.readableBytes
                        guard dropped <= Self.maximumDroppedBytes else {
                            throw WebSocketWireError(code: .messageTooLarge, offset: offset, values: .init("", Self.maximumDroppedBytes),
                                                     describedBy: { "message inflates past \($0.first) bytes: not inflated further" })
                        }
                        output.clear()
                    }
                }
                do {
                    try decompressor.inflate(from: &input, to: &output)
                    break
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    continue
                } catch let error as CompressNIOError where error == .inputBufferOverflow {
                    break
                }
            }
        } catch let error as WebSocketWireError {
            throw error
        } catch {
            throw WebSocketWireError(code: .compressionError, offset: offset,
                                     describedBy: "permessage-deflate data does not inflate (\(error))", specReference: "RFC 7692 §7.2.3")
        }
    }
}

/// The receiving side of an application's own `compress=zlib-stream` (the Discord gateway): one
/// zlib stream for the connection, whose pieces each end with a sync flush (00 00 FF FF) and may
/// span several messages. Not Sendable: it owns a zlib stream.
public struct ZlibStreamReader {
    private let inflater: PerMessageDeflateInflater
    private var pending = ByteBuffer()

    public init() throws(WebSocketWireError) {
        inflater = try PerMessageDeflateInflater(noContextTakeover: false, zlibStream: true)
    }

    /// What a piece inflates to, once `message` completed it; nil while it is incomplete. A piece
    /// that does not inflate throws, and is dropped.
    public mutating func read(_ message: ByteBuffer, maximumSize: Int = 16 << 20, offset: Int = 0) throws(WebSocketWireError) -> ByteBuffer? {
        var piece = message
        pending.writeBuffer(&piece)
        guard PerMessageDeflateInflater.endsFlush(pending) else { return nil }
        defer { pending.clear() }
        return try inflater.inflate(pending, maximumSize: maximumSize, offset: offset)
    }
}

/// The sending side of `compress=zlib-stream`: each message compressed into the connection's one
/// zlib stream and ended with a sync flush. Not Sendable: it owns a zlib stream.
public struct ZlibStreamWriter {
    private let compressor: ZlibCompressor

    public init() throws(WebSocketWireError) {
        do {
            compressor = try ZlibCompressor(algorithm: .zlib)
        } catch {
            throw WebSocketWireError(code: .compressionError, offset: 0, describedBy: "zlib could not start: \(error)")
        }
    }

    public func write(_ message: ByteBuffer) throws(WebSocketWireError) -> ByteBuffer {
        var input = message
        var output = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input) + 16)
        do {
            try compressor.deflate(from: &input, to: &output, flush: .sync)
        } catch {
            throw WebSocketWireError(code: .compressionError, offset: 0, describedBy: "zlib could not compress: \(error)")
        }
        return output
    }
}
