#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
public import NIOCore
public import NIOHTTP1

/// How long an HTTP connection of a local server may take over each part of a request, and how
/// many connections a server keeps open at once: what stops clients that connect and say
/// nothing, send a request head a byte at a time, dribble a body, or keep a connection idle after
/// one request, from holding every file descriptor.
public struct HTTPConnectionLimits: Sendable, Hashable {
    /// From the connection's start, and from the end of each answer (keep-alive), until a whole
    /// request head has come. Covers an idle connection and a head sent byte by byte.
    public var requestHead: TimeAmount
    /// From a request head until its body has ended.
    public var body: TimeAmount
    /// Open connections at once, upgraded WebSockets included; one more is answered 503 and closed.
    public var maximumConnections: Int

    public init(requestHead: TimeAmount = .seconds(5), body: TimeAmount = .seconds(10),
                maximumConnections: Int = HTTPConnectionLimits.connectionsTheDescriptorsAllow) {
        self.requestHead = requestHead
        self.body = body
        self.maximumConnections = max(1, maximumConnections)
    }

    /// The open-file limit of this process (`ulimit -n`) less 64 for files, listeners and the
    /// event loops' own descriptors: past it, `accept` would fail and nothing could be opened.
    public static var connectionsTheDescriptorsAllow: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 65_536 }  // RLIM_INFINITY is clamped below
        return max(16, Int(min(limit.rlim_cur, 1 << 20)) - 64)
    }
}

/// Counts a server's open connections and turns away those over its limit.
public final class ConnectionLimiter: Sendable {
    public let maximum: Int
    private let open = NIOLockedValueBox(0)
    private let report: (@Sendable (String) -> Void)?
    private let refusedSinceReport = NIOLockedValueBox(0)

    /// - Parameter report: told (at most once a burst) that connections were refused.
    public init(maximum: Int, report: (@Sendable (String) -> Void)? = nil) {
        self.maximum = max(1, maximum)
        self.report = report
    }

    /// Connections open now.
    public var count: Int { open.withLockedValue { $0 } }

    /// Counts `channel` in and returns true, or returns false when the server is full; a
    /// counted channel is counted out when it closes.
    public func admit(_ channel: any Channel) -> Bool {
        let admitted = open.withLockedValue { open in
            guard open < maximum else { return false }
            open += 1
            return true
        }
        guard admitted else {
            let first = refusedSinceReport.withLockedValue { refused in
                refused += 1
                return refused == 1
            }
            if first { report?("refusing connections: \(maximum) are open, the limit (they close when idle)") }
            return false
        }
        channel.closeFuture.whenComplete { [open, refusedSinceReport] _ in
            open.withLockedValue { $0 -= 1 }
            refusedSinceReport.withLockedValue { $0 = 0 }
        }
        return true
    }

    /// Answers a connection over the limit with `503 Service Unavailable` (for HTTP listeners)
    /// or nothing (for MQTT over TCP), and closes it.
    public func turnAway(_ channel: any Channel, http: Bool) -> EventLoopFuture<Void> {
        guard http else {
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        let text = "this server has \(maximum) connections open, its limit: try again shortly\n"
        let response = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: \(text.utf8.count)\r\n"
            + "Retry-After: 1\r\nConnection: close\r\n\r\n\(text)"
        channel.writeAndFlush(ByteBuffer(string: response)).whenComplete { _ in channel.close(promise: nil) }
        return channel.eventLoop.makeSucceededVoidFuture()
    }
}

extension Channel {
    /// What every listening socket of a local server gets: when `accept` fails for lack of
    /// descriptors (EMFILE, ENFILE) or memory, NIO's AcceptBackoffHandler stops accepting for a
    /// second instead of retrying at once (which spun a core at the limit).
    public func backOffAcceptWhenOutOfDescriptors() -> EventLoopFuture<Void> {
        eventLoop.makeCompletedFuture {
            try pipeline.syncOperations.addHandler(AcceptBackoffHandler(), position: .first)
        }
    }
}

/// Closes an HTTP connection that takes longer than ``HTTPConnectionLimits`` allow: waiting for a
/// request head (from the start, and after each answer on a kept-alive connection) or for a
/// body. A connection answering (a stream such as Server-Sent Events included) is not timed.
/// Placed after NIO's HTTP server handlers; removed when the connection is upgraded to a WebSocket.
public final class HTTPConnectionTimeouts: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    private let limits: HTTPConnectionLimits
    private var timer: Scheduled<Void>?
    /// Requests whose answers have not ended: the next head is waited for only when none is.
    private var unanswered = 0

    public init(limits: HTTPConnectionLimits) {
        self.limits = limits
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, limits.requestHead) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        arm(context, limits.requestHead)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            unanswered += 1
            arm(context, limits.body)
        case .body:
            break
        case .end:
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(0, unanswered - 1)
            if unanswered == 0 {
                // Kept alive: the next request head is due within the same time as the first.
                let written = promise ?? context.eventLoop.makePromise()
                context.write(data, promise: written)
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                written.futureResult.whenSuccess {
                    let (handler, context) = loopBound.value
                    if context.channel.isActive && handler.unanswered == 0 { handler.arm(context, handler.limits.requestHead) }
                }
                return
            }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext, _ after: TimeAmount) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: after) { channel.close(promise: nil) }
    }
}
