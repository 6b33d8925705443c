package import NIOCore
package import NIOHTTP1
import NIOPosix
package import NIOWebSocket
package import WebSocketWire

/// The WebSocket listener of JSON chat endpoints — the mock's (OneBot, CocoroCore, Discord) and
/// wmq-replay's served chat sockets: SwiftNIO's
/// upgrader on a server bootstrap, each accepted connection handed to `serve` as a
/// `NIOAsyncChannel` of frames with its upgrade request. A request `accepts` refuses gets
/// `refusal`'s plain HTTP answer (a 401 for a wrong token), or NIO's 400 without one.
package enum JSONSocketListener {
    package typealias Frames = NIOAsyncChannel<WebSocketFrame, WebSocketFrame>

    package static func bind(host: String, port: Int, group: any EventLoopGroup, maximumFrameSize: Int = 1 << 20,
                     accepts: @escaping @Sendable (HTTPRequestHead) -> Bool,
                     refusal: (@Sendable () -> PlainHTTPAnswer)? = nil,
                     serve: @escaping @Sendable (Frames, any Channel, HTTPRequestHead) async -> Void) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: maximumFrameSize, automaticErrorHandling: true,
                        shouldUpgrade: { channel, head in channel.eventLoop.makeSucceededFuture(accepts(head) ? HTTPHeaders() : nil) },
                        upgradePipelineHandler: { channel, head in
                            channel.eventLoop.makeCompletedFuture {
                                let frames = try Frames(wrappingChannelSynchronously: channel)
                                Task { await serve(frames, channel, head) }
                            }
                        })
                    guard let refusal else {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                        return
                    }
                    let answer = refusal()
                    try channel.pipeline.syncOperations.configureWebSocketServer(upgrader: upgrader, refusal: answer, on: channel.eventLoop)
                }
            }
            .bind(host: host, port: port).get()
    }
}
