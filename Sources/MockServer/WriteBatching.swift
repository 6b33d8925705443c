import Broker
import Capture
import Dialects
import Logging
import MockFiles
import MQTTWire
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import WebSocketWire

/// Stops a server channel reading (accepting) for a while after each accepted connection.
final class AcceptPacer: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel
    let delay: TimeAmount

    init(delay: TimeAmount) { self.delay = delay }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        let channel = context.channel
        let delay = self.delay
        channel.setOption(.autoRead, value: false).whenSuccess {
            channel.eventLoop.scheduleTask(in: delay) {
                channel.setOption(.autoRead, value: true).whenSuccess { channel.read() }
            }
        }
    }
}

/// Writes bytes that already are whole WebSocket frames straight towards the socket, past NIO's
/// frame encoder (it sits first in the pipeline, on the socket's side): a fanned-out message is
/// framed once for all its subscribers, since a server's frames are not masked and so are the
/// same bytes for everyone. Other writes (control frames) still go through the encoder; both
/// happen on the channel's event loop, in the order they are made.
final class FrameBytesWriter: ChannelOutboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    // Set and used on the channel's event loop only.
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// On the channel's event loop; the caller flushes.
    func write(_ bytes: ByteBuffer) {
        guard let context else { return }
        context.eventLoop.assertInEventLoop()
        context.write(wrapOutboundOut(bytes), promise: nil)
    }
}

/// Flushes the channels of one event loop once, after every write task already queued on the
/// loop has run: when messages arrive faster than the loop writes them, each subscriber's socket
/// gets several messages in one system call instead of one call per message; an idle broker
/// still flushes at once (the flush task is next in the queue).
final class LoopFlusher: @unchecked Sendable {
    private let loop: any EventLoop
    // Used on `loop` only.
    private var pending: [ObjectIdentifier: any Channel] = [:]
    private var scheduled = false

    init(loop: any EventLoop) { self.loop = loop }

    /// On `loop`.
    func flushSoon(_ channels: some Sequence<any Channel>) {
        loop.assertInEventLoop()
        for channel in channels { pending[ObjectIdentifier(channel)] = channel }
        guard !scheduled else { return }
        scheduled = true
        loop.execute { self.flush() }
    }

    private func flush() {
        scheduled = false
        let channels = pending
        pending = [:]
        for channel in channels.values { channel.flush() }
    }
}
