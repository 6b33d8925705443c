import ByteStream
public import NIOCore
public import NIOWebSocket

/// RFC 6455's rules for the frames a live endpoint receives, in one place: every server
/// endpoint (the mock's broker and chat endpoints, the echo endpoint, `wmq-replay serve`, the
/// capture proxy) puts it right after NIO's frame decoder, so what reaches the endpoint is a
/// conforming stream and what breaks a rule ends the connection with the right close code.
///
/// Why a handler of our own on NIOWebSocket rather than swift-websocket: NIO's decoder already
/// enforces frame size (1009), control-frame length and fragmentation (1002) with its protocol
/// error handler, and every endpoint here is already a NIO pipeline with NIO's upgrader; what it
/// leaves to the application is the rest of §5 and §7, which is this handler. swift-websocket
/// would bring its own connection model and an HTTP server (Hummingbird) that the mock's admin
/// API and page do not use.
///
/// Checked, each answered with a Close frame and the end of the TCP connection (§7.1.7):
/// - RSV bits without a negotiated extension, reserved opcodes, and masking the wrong way
///   (clients MUST mask, servers MUST NOT; §5.1, §5.2): 1002;
/// - a continuation with no message to continue, a new data frame inside a fragmented message
///   (§5.4): 1002;
/// - a data type the endpoint does not take (text on an MQTT endpoint, §7.1.7 SHOULD): 1003,
///   text read to its end first so that text that is not UTF-8 is 1007 all the same;
/// - text that is not UTF-8, checked as it arrives across fragments (§8.1): 1007;
/// - a message over the endpoint's limit: 1009;
/// - a Close with a 1-byte body or a status code not allowed on the wire (0–999, 1004–1006,
///   1015, 1016–2999; §7.4): 1002; a Close reason that is not UTF-8: 1007.
///
/// The close handshake (§5.5.1, §7.1): a peer's Close is answered with a Close carrying its
/// status code (none when it sent none), after which a server closes the TCP connection; a
/// Close the endpoint sends waits at most `closeTimeout` for the peer's before the connection
/// is closed anyway. Nothing is sent after a Close. Pings are answered with a Pong carrying
/// their payload and not passed on; Pongs are dropped.
public final class WebSocketProtocolGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = WebSocketFrame
    public typealias InboundOut = WebSocketFrame
    public typealias OutboundIn = WebSocketFrame
    public typealias OutboundOut = WebSocketFrame

    public enum Role: Sendable { case server, client }

    public struct Options: Sendable {
        public var role: Role
        public var acceptsText: Bool
        public var acceptsBinary: Bool
        /// Whether data frames are passed on as they come (fragments included) or as one frame
        /// per whole message (fin set, unmasked, the fragments' payloads joined).
        public var assemblesMessages: Bool
        /// The largest message passed on (1009 past it).
        public var maximumMessageSize: Int
        public var closeTimeout: TimeAmount
        /// Whether the guard answers Pings and Closes itself (an endpoint) or checks them and
        /// passes them on (a proxy, whose other side answers).
        public var answersControlFrames: Bool

        public init(role: Role = .server, acceptsText: Bool = true, acceptsBinary: Bool = true, assemblesMessages: Bool = false,
                    maximumMessageSize: Int = 16 << 20, closeTimeout: TimeAmount = .seconds(5), answersControlFrames: Bool = true) {
            self.answersControlFrames = answersControlFrames
            self.role = role
            self.acceptsText = acceptsText
            self.acceptsBinary = acceptsBinary
            self.assemblesMessages = assemblesMessages
            self.maximumMessageSize = maximumMessageSize
            self.closeTimeout = closeTimeout
        }
    }

    private let options: Options
    /// The data opcode of the message in progress (nil between messages).
    private var messageOpcode: WebSocketOpcode?
    private var messageSize = 0
    private var assembled = ByteBuffer()
    private var utf8 = UTF8Validator()
    private var closeSent = false
    private var closeReceived = false
    private var failed = false
    private var closeTimer: Scheduled<Void>?

    public init(options: Options = Options()) {
        self.options = options
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !failed && !closeReceived else { return }
        if frame.rsv1 || frame.rsv2 || frame.rsv3 {
            return fail(context, .protocolError, "reserved bits set with no extension negotiated (RFC 6455 §5.2)")
        }
        switch options.role {
        case .server where frame.maskKey == nil: return fail(context, .protocolError, "an unmasked client frame (RFC 6455 §5.1)")
        case .client where frame.maskKey != nil: return fail(context, .protocolError, "a masked server frame (RFC 6455 §5.1)")
        default: break
        }
        switch frame.opcode {
        case .ping where !options.answersControlFrames, .pong where !options.answersControlFrames:
            context.fireChannelRead(wrapInboundOut(frame))
        case .ping:
            // A peer that pings and never reads gets no more pongs than its socket takes: while
            // the connection is over its unread-bytes mark the pong is left out (RFC 6455 §5.5.3
            // lets an endpoint answer only the latest of several pings), so a ping flood cannot
            // make the server buffer without limit.
            guard context.channel.isWritable else { return }
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: outgoingMask, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        case .connectionClose:
            closeReceivedFrom(context, frame)
        case .continuation, .text, .binary:
            passData(context, frame)
        default:
            fail(context, .protocolError, "reserved opcode 0x\(String(UInt8(webSocketOpcode: frame.opcode), radix: 16)) (RFC 6455 §5.2)")
        }
    }

    private func passData(_ context: ChannelHandlerContext, _ frame: WebSocketFrame) {
        let opcode: WebSocketOpcode
        if frame.opcode == .continuation {
            guard let current = messageOpcode else {
                return fail(context, .protocolError, "a continuation frame with no message to continue (RFC 6455 §5.4)")
            }
            opcode = current
        } else {
            guard messageOpcode == nil else {
                return fail(context, .protocolError, "a new message inside an unfinished fragmented one (RFC 6455 §5.4)")
            }
            if frame.opcode == .binary && !options.acceptsBinary {
                return fail(context, .unacceptableData, "this endpoint takes text messages only")
            }
            opcode = frame.opcode
            messageSize = 0
            utf8 = UTF8Validator()
        }
        // The length from the header: binary frames passed on as they come are not unmasked
        // here (the endpoint unmasks them once; a second unmasking doubled a large message's cost).
        messageSize += frame.length
        guard messageSize <= options.maximumMessageSize else {
            return fail(context, .messageTooLarge, "a message over \(options.maximumMessageSize) bytes")
        }
        // Unmasked once, and only when read here: text to validate, or a message to assemble.
        let payload = opcode == .text || options.assemblesMessages ? frame.unmaskedData : ByteBuffer()
        if opcode == .text {
            let bad = payload.withUnsafeReadableBytes { utf8.validate($0) }
            if bad != nil || (frame.fin && !utf8.isComplete) {
                return fail(context, .dataInconsistentWithMessage, "a text message that is not UTF-8 (RFC 6455 §8.1)")
            }
        }
        messageOpcode = frame.fin ? nil : opcode
        if opcode == .text && !options.acceptsText {
            // Read to its end first: text that is not UTF-8 is 1007 whatever the endpoint takes.
            if frame.fin { fail(context, .unacceptableData, "this endpoint takes binary messages only") }
            return
        }
        guard options.assemblesMessages else {
            context.fireChannelRead(wrapInboundOut(frame))
            return
        }
        if frame.fin && frame.opcode != .continuation {
            context.fireChannelRead(wrapInboundOut(WebSocketFrame(fin: true, opcode: opcode, data: payload)))
            return
        }
        var piece = payload
        assembled.writeBuffer(&piece)
        if frame.fin {
            let message = assembled
            assembled = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(WebSocketFrame(fin: true, opcode: opcode, data: message)))
        }
    }

    private func closeReceivedFrom(_ context: ChannelHandlerContext, _ frame: WebSocketFrame) {
        var body = frame.unmaskedData
        var answer = ByteBuffer()
        if body.readableBytes == 1 {
            return fail(context, .protocolError, "a Close frame with a 1-byte body (RFC 6455 §5.5.1)")
        }
        if let code = body.readInteger(as: UInt16.self) {
            guard Self.isAllowedOnTheWire(code) else {
                return fail(context, .protocolError, "Close status code \(code), which may not be sent (RFC 6455 §7.4)")
            }
            var validator = UTF8Validator()
            let bad = body.withUnsafeReadableBytes { validator.validate($0) }
            guard bad == nil && validator.isComplete else {
                return fail(context, .dataInconsistentWithMessage, "a Close reason that is not UTF-8 (RFC 6455 §5.5.1)")
            }
            answer.writeInteger(code)
        }
        closeReceived = true
        // The endpoint sees the peer's Close (its code and reason), then the connection ends.
        context.fireChannelRead(wrapInboundOut(frame))
        guard options.answersControlFrames else { return }
        if closeSent {
            context.close(promise: nil)
        } else {
            closeSent = true
            let close = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: outgoingMask, data: answer)
            let channel = context.channel
            let closesFirst = options.role == .server
            context.writeAndFlush(wrapOutboundOut(close)).whenComplete { _ in
                // A server closes the TCP connection first (§7.1.1); a client gives it time to.
                if closesFirst {
                    channel.close(promise: nil)
                } else {
                    channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
                }
            }
        }
    }

    /// Status codes an endpoint may put in a Close frame (RFC 6455 §7.4.1, §7.4.2, and IANA's
    /// registry: 1012–1014 were registered later).
    public static func isAllowedOnTheWire(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

    private var outgoingMask: WebSocketMaskingKey? { options.role == .client ? .random() : nil }

    /// Fails the connection (§7.1.7): a Close with `code`, then the end of the TCP connection.
    private func fail(_ context: ChannelHandlerContext, _ code: WebSocketErrorCode, _ reason: String) {
        failed = true
        context.fireUserInboundEventTriggered(ProtocolViolation(code: code, reason: reason))
        guard !closeSent else {
            context.close(promise: nil)
            return
        }
        closeSent = true
        var body = ByteBuffer()
        body.write(webSocketErrorCode: code)
        let channel = context.channel
        let close = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: outgoingMask, data: body)
        context.writeAndFlush(wrapOutboundOut(close)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Passed on (as a user event) when the peer broke a rule, before the connection closes.
    public struct ProtocolViolation: Sendable {
        public var code: WebSocketErrorCode
        public var reason: String
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        // Nothing after a Close (§5.5.1).
        guard !closeSent else {
            promise?.succeed(())
            return
        }
        guard frame.opcode == .connectionClose else {
            context.write(data, promise: promise)
            return
        }
        closeSent = true
        context.write(data, promise: promise)
        let channel = context.channel
        if closeReceived {
            context.flush()
            channel.close(promise: nil)
        } else {
            // The peer's Close is awaited, not forever.
            closeTimer = channel.eventLoop.scheduleTask(in: options.closeTimeout) { channel.close(promise: nil) }
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        closeTimer?.cancel()
        context.fireChannelInactive()
    }
}
