public import NIOCore
import NIOWebSocket

/// One direction of a WebSocket connection as a dissector sees it: the HTTP head, then
/// frames, then messages. Every step reports what it found; errors are reported as
/// events and decoding goes on where the stream allows.
public struct WebSocketStreamDecoder {
    /// The rare large cases are `indirect`, so that frames and messages move in a small value.
    public enum Event: Equatable, Sendable {
        indirect case request(HTTPUpgradeRequest)
        indirect case response(HTTPUpgradeResponse)
        case frame(ParsedFrame)
        case message(WebSocketMessage)
        indirect case control(WebSocketEvent)
        case error(WebSocketWireError)
        /// Frames were found again after lost bytes: `skipped` bytes at `offset` could not be read.
        case resynchronized(offset: Int, skipped: Int)
    }

    public let direction: StreamDirection
    /// Whether each frame is reported as an event too (messages and control frames always are).
    public var reportsFrames = true
    private var headBuffer = ByteBuffer()
    private var headDone: Bool
    private var frames: WebSocketFrameParser
    private var assembler: WebSocketMessageAssembler
    private var reportedBrokenStream = false
    /// Set after lost bytes: incoming bytes are scanned for the next frame boundary.
    private var scanning: ByteBuffer?
    private var scanOffset = 0
    private var scanStart = 0

    /// - Parameter expectsHead: whether the stream starts with the HTTP handshake (false
    ///   for a capture that starts mid-connection).
    /// - Parameter maximumInflatedBytes: what all this direction's compressed messages may
    ///   inflate to together (``WebSocketMessageAssembler/Configuration/maximumInflatedBytes``).
    public init(direction: StreamDirection, expectsHead: Bool = true, maximumFrameSize: Int = 1 << 26,
                maximumMessageSize: Int = 1 << 26, maximumInflatedBytes: Int = .max) throws(WebSocketWireError) {
        self.direction = direction
        self.headDone = !expectsHead
        frames = WebSocketFrameParser(configuration: .init(maximumFrameSize: maximumFrameSize, direction: direction))
        assembler = try WebSocketMessageAssembler(configuration: .init(maximumMessageSize: maximumMessageSize,
                                                                       direction: direction, maximumInflatedBytes: maximumInflatedBytes))
    }

    /// Sets up permessage-deflate once the handshake negotiated it.
    public mutating func enableDeflate(_ parameters: PerMessageDeflateParameters) throws(WebSocketWireError) {
        frames.configuration.allowedReservedBits = .rsv1
        assembler = try WebSocketMessageAssembler(configuration: .init(
            maximumMessageSize: assembler.configuration.maximumMessageSize, direction: direction, deflate: parameters,
            maximumInflatedBytes: assembler.configuration.maximumInflatedBytes))
    }

    /// Bytes of this direction were lost (`count` of them, or an unknown number when the
    /// capture began mid-connection): drop any partial frame and message, and look for
    /// the next frame boundary in what follows.
    public mutating func lost(_ count: Int?) {
        let next = frames.offset + frames.bufferedByteCount + (count ?? 0)
        headDone = true
        headBuffer = ByteBuffer()
        frames = WebSocketFrameParser(configuration: frames.configuration, streamOffset: next)
        assembler = (try? WebSocketMessageAssembler(configuration: assembler.configuration)) ?? assembler
        reportedBrokenStream = false
        scanning = ByteBuffer()
        scanOffset = next
        scanStart = next
    }

    /// Starts decoding at a frame boundary the caller found (a capture that joined the
    /// connection midstream, whose first unit starts at `offset`): no head is expected and
    /// the bytes given next are taken to start there.
    public mutating func begin(atStreamOffset offset: Int) {
        headDone = true
        headBuffer = ByteBuffer()
        frames = WebSocketFrameParser(configuration: frames.configuration, streamOffset: offset)
        assembler = (try? WebSocketMessageAssembler(configuration: assembler.configuration)) ?? assembler
        reportedBrokenStream = false
        scanning = nil
    }

    /// The stream offset of the next byte to be fed.
    public var nextOffset: Int {
        if let scanning { return scanOffset + scanning.readableBytes }
        if !headDone { return frames.offset + headBuffer.readableBytes }
        return frames.offset + frames.bufferedByteCount
    }

    /// Set when the upgrade was refused: what follows is HTTP (a body, more requests),
    /// not WebSocket, and is not decoded.
    public private(set) var isStopped = false

    /// Stops decoding this direction (the other side refused the upgrade).
    public mutating func stop() {
        isStopped = true
        headBuffer = ByteBuffer()
        scanning = nil
    }

    /// Feeds bytes and returns what they completed, in stream order.
    public mutating func feed(_ bytes: ByteBuffer) -> [Event] {
        var events: [Event] = []
        feed(bytes) { events.append($0) }
        return events
    }

    /// Feeds bytes and gives each event they complete to `emit`, in stream order, as it is
    /// found: handed on, not copied out of an array.
    public mutating func feed(_ bytes: ByteBuffer, emit: (consuming Event) -> Void) {
        if isStopped { return }
        if var pending = scanning {
            pending.writeImmutableBuffer(bytes)
            let result = pending.withUnsafeReadableBytes {
                FrameBoundaryScan.find(in: $0, direction: direction, allowsRSV1: frames.configuration.allowedReservedBits.contains(.rsv1),
                                       maximumFrameSize: frames.configuration.maximumFrameSize)
            }
            switch result {
            case .found(let index):
                emit(.resynchronized(offset: scanStart, skipped: scanOffset + index - scanStart))
                pending.moveReaderIndex(forwardBy: index)
                frames = WebSocketFrameParser(configuration: frames.configuration, streamOffset: scanOffset + index)
                scanning = nil
                feed(pending, emit: emit)
                return
            case .notYet(let discardable):
                pending.moveReaderIndex(forwardBy: discardable)
                scanOffset += discardable
                pending.discardReadBytes()
                scanning = pending
                return
            }
        }
        if !headDone {
            // Room for a usual head at once, rather than growing it piece by piece.
            if headBuffer.capacity == 0 { headBuffer.reserveCapacity(1024) }
            headBuffer.writeImmutableBuffer(bytes)
            do {
                let offset = frames.offset
                let before = headBuffer.readableBytes
                if direction == .serverToClient {
                    guard let response = try HTTPHeadParser.parseResponse(&headBuffer, streamOffset: offset) else { return }
                    emit(.response(response))
                    guard response.status == .switchingProtocols else {
                        stop()
                        return
                    }
                    // Frames in the same segment as the response may already be compressed.
                    if let deflate = PerMessageDeflateParameters(extensions: response.extensions) {
                        try enableDeflate(deflate)
                    }
                } else {
                    guard let request = try HTTPHeadParser.parseRequest(&headBuffer, streamOffset: offset) else { return }
                    emit(.request(request))
                }
                frames = WebSocketFrameParser(configuration: frames.configuration,
                                              streamOffset: offset + before - headBuffer.readableBytes)
            } catch {
                emit(.error(error))
                frames = WebSocketFrameParser(configuration: frames.configuration, streamOffset: frames.offset)
            }
            headDone = true
            frames.append(headBuffer)
            headBuffer = ByteBuffer()
        } else {
            frames.append(bytes)
        }
        while true {
            do {
                guard let frame = try frames.next() else { break }
                if reportsFrames { emit(.frame(frame)) }
                do {
                    // A message is handed on as the assembler completes it, not taken out of
                    // an optional event (which the compiler copied, and destroyed generically).
                    if let control = try assembler.push(frame, message: { emit(.message($0)) }) {
                        emit(.control(control))
                    }
                } catch {
                    emit(.error(error))
                }
            } catch {
                if !error.isRecoverable {
                    if !reportedBrokenStream { emit(.error(error)) }
                    reportedBrokenStream = true
                    break
                }
                emit(.error(error))
            }
        }
    }
}
