public import NIOCore
public import NIOHTTP1

/// Answers a request that was not upgraded with one plain-text response and closes: the
/// servers' refusals (426 without an MQTT upgrade, 401 without the token, 502 when the upstream
/// refused). `body` is read when the request has ended, so it may say what happened meanwhile.
/// Placed after NIO's HTTP server pipeline with upgrade, and removed once a request is upgraded.
/// A request that ``BrowserAccess`` refuses (a page of another origin, a foreign host name) is
/// told so first, whatever the endpoint would have answered.
public final class PlainHTTPAnswer: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    private let status: HTTPResponseStatus
    private let extraHeaders: [(String, String)]
    private let body: () -> String
    private let access: BrowserAccess

    public init(status: HTTPResponseStatus, extraHeaders: [(String, String)] = [], access: BrowserAccess = .standard,
                body: @escaping () -> String) {
        self.status = status
        self.extraHeaders = extraHeaders
        self.access = access
        self.body = body
    }

    private var head: HTTPRequestHead?

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end: answer(context)
        }
    }

    private func answer(_ context: ChannelHandlerContext) {
        // A malformed WebSocket handshake gets what RFC 6455 says, before this endpoint's own refusal.
        var status = status
        var text: String
        var extraHeaders = extraHeaders
        if let head, case .refused(let refusedStatus, let reason) = access.check(head) {
            status = refusedStatus
            text = reason
            extraHeaders = []
        } else if let head, let refusal = WebSocketHandshakeCheck.refusal(for: head) {
            status = refusal.status
            text = refusal.reason
            extraHeaders = refusal.headers
        } else {
            text = body()
        }
        var headers = HTTPHeaders([("Content-Type", "text/plain"), ("Connection", "close"), ("Content-Length", "\(text.utf8.count)")])
        headers.add(contentsOf: extraHeaders)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// NIO's HTTP server pipeline with `upgrader`, ``HTTPConnectionTimeouts`` under `limits`, and
    /// `refusal` answering the requests it does not upgrade; the timeouts and the answer leave
    /// once a request is upgraded, as frames follow.
    public func configureWebSocketServer(upgrader: any HTTPServerProtocolUpgrader, refusal: PlainHTTPAnswer,
                                         limits: HTTPConnectionLimits = HTTPConnectionLimits(), on eventLoop: any EventLoop) throws {
        let timeouts = HTTPConnectionTimeouts(limits: limits)
        let bound = NIOLoopBound((refusal, timeouts), eventLoop: eventLoop)
        try configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
            context.pipeline.syncOperations.removeHandler(bound.value.1, promise: nil)
            context.pipeline.syncOperations.removeHandler(bound.value.0, promise: nil)
        }))
        try addHandler(timeouts)
        try addHandler(refusal)
    }
}
