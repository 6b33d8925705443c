package import NIOCore
package import NIOHTTP1
import NIOPosix
package import NIOWebSocket
import WebSocketWire

/// The WebSocket listener of JSON chat endpoints — the mock's (OneBot, CocoroCore, Discord) and
/// wmq-replay's served chat sockets: SwiftNIO's
/// upgrader on a server bootstrap, each accepted connection handed to `serve` as a
/// `NIOAsyncChannel` of frames with its upgrade request, behind a ``WebSocketProtocolGuard``
/// (by default passing whole messages). A malformed handshake gets RFC 6455's answer (426, 400);
/// a request `accepts` refuses gets `refusal`'s plain HTTP answer (a 401 for a wrong token), or
/// a 400 without one. A request `access` refuses (a page of another origin, a foreign host
/// name) is answered 403 before any of that.
package enum JSONSocketListener {
    package typealias Frames = NIOAsyncChannel<WebSocketFrame, WebSocketFrame>

    package static func bind(host: String, port: Int, group: any EventLoopGroup, maximumFrameSize: Int = 1 << 20,
                     guarding: WebSocketProtocolGuard.Options = .init(assemblesMessages: true),
                     access: BrowserAccess = .standard,
                     limits: HTTPConnectionLimits = HTTPConnectionLimits(),
                     accepts: @escaping @Sendable (HTTPRequestHead) -> Bool,
                     refusal: (@Sendable (BrowserAccess) -> PlainHTTPAnswer)? = nil,
                     serve: @escaping @Sendable (Frames, any Channel, HTTPRequestHead) async -> Void) async throws -> any Channel {
        let limiter = ConnectionLimiter(maximum: limits.maximumConnections)
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in channel.backOffAcceptWhenOutOfDescriptors() }
            .childChannelInitializer { channel in
                guard limiter.admit(channel) else { return limiter.turnAway(channel, http: true) }
                return channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: maximumFrameSize, automaticErrorHandling: true,
                        shouldUpgrade: { channel, head in
                            channel.eventLoop.makeSucceededFuture(access.allows(head) && accepts(head) ? HTTPHeaders() : nil)
                        },
                        upgradePipelineHandler: { channel, head in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(WebSocketProtocolGuard(options: guarding))
                                let frames = try Frames(wrappingChannelSynchronously: channel)
                                Task { await serve(frames, channel, head) }
                            }
                        })
                    let answer = refusal?(access) ?? PlainHTTPAnswer(status: .badRequest, access: access) {
                        "this is a WebSocket endpoint: upgrade with GET and Upgrade: websocket\n"
                    }
                    try channel.pipeline.syncOperations.configureWebSocketServer(upgrader: upgrader, refusal: answer, limits: limits,
                                                                                 on: channel.eventLoop)
                }
            }
            .bind(host: host, port: port).get()
    }
}
