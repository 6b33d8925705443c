public import Dialects
public import Dissector
public import LiveWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
public import WorksClient

/// Accepts WebSocket connections, opens one upstream for each (WorksClient's transport, with the
/// recorder and the live view as taps), and pipes frames both ways. An upstream that cannot be
/// reached is answered `502 Bad Gateway` with the reason.
public final class RecordingProxy: @unchecked Sendable {  // the mutable state is guarded by `lock`
    public let base: WebSocketSettings
    public let recorder: SessionRecorder?
    /// Each decoded event of every connection (the live view), from any thread.
    public let showEvent: (@Sendable (CaptureEvent) -> Void)?
    public let redactor: Redactor?
    /// Which browser pages and host names may use the proxy: it sends the configured cookies
    /// upstream, so a page of another origin must not reach it (403) unless allowed.
    public let access: BrowserAccess
    let group = MultiThreadedEventLoopGroup.singleton
    private let lock = NIOLock()
    private var listener: (any Channel)?
    private var open: [ObjectIdentifier: (client: any Channel, upstream: WebSocketTransport)] = [:]
    private var connections = 0

    public init(base: WebSocketSettings, recorder: SessionRecorder?, redactor: Redactor?, access: BrowserAccess = .standard,
                showEvent: (@Sendable (CaptureEvent) -> Void)? = nil) {
        self.access = access
        self.base = base
        self.recorder = recorder
        self.showEvent = showEvent
        self.redactor = redactor
    }

    /// How many client connections were proxied so far.
    public var connectionCount: Int { lock.withLock { connections } }

    /// Listens on `host`:`port` (0: a free port); the port it listens on.
    public func start(host: String, port: Int) async throws -> Int {
        let limiter = ConnectionLimiter(maximum: HTTPConnectionLimits.connectionsTheDescriptorsAllow)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in channel.backOffAcceptWhenOutOfDescriptors() }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                guard limiter.admit(channel) else { return limiter.turnAway(channel, http: true) }
                return channel.eventLoop.makeCompletedFuture {
                    // The upstream connection made while deciding the upgrade, for the pipe after it.
                    let pending = NIOLockedValueBox<WebSocketTransport?>(nil)
                    let refusal = NIOLockedValueBox<String>("the upstream refused the connection")
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: 16 << 20, automaticErrorHandling: true,
                        shouldUpgrade: { channel, head in
                            // A page of another origin or a foreign host name: 403 from the answer below.
                            guard self.access.allows(head) else { return channel.eventLoop.makeSucceededFuture(nil) }
                            let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                            Task {
                                do throws(WorksClientError) {
                                    let transport = try await self.connectUpstream(for: head)
                                    pending.withLockedValue { $0 = transport }
                                    // The upstream accepted exactly the client's first subprotocol (the transport checks it).
                                    var headers = HTTPHeaders()
                                    if let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].first {
                                        headers.add(name: "Sec-WebSocket-Protocol", value: String(offered))
                                    }
                                    promise.succeed(headers)
                                } catch {
                                    refusal.withLockedValue { $0 = error.reason }
                                    promise.succeed(nil)
                                }
                            }
                            return promise.futureResult
                        },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                // Checked as RFC 6455 says; pings and closes pass on to the upstream, which answers.
                                let guarding = WebSocketProtocolGuard.Options(answersControlFrames: false)
                                try channel.pipeline.syncOperations.addHandler(WebSocketProtocolGuard(options: guarding))
                                let frames = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel)
                                guard let upstream = pending.withLockedValue({ $0 }) else { throw ChannelError.inappropriateOperationForState }
                                Task { await self.pipe(client: frames, channel: channel, upstream: upstream) }
                            }
                        })
                    let answer = PlainHTTPAnswer(status: .badGateway, access: access) { "wmq-capture proxy: \(refusal.withLockedValue { $0 })\n" }
                    try channel.pipeline.syncOperations.configureWebSocketServer(upgrader: upgrader, refusal: answer, on: channel.eventLoop)
                }
            }
            .bind(host: host, port: port).get()
        lock.withLock { listener = channel }
        return channel.localAddress?.port ?? port
    }

    /// The upstream connection for a client's upgrade request: its path and query, credentials and
    /// looks, the first subprotocol it offered (or none).
    private func connectUpstream(for head: HTTPRequestHead) async throws(WorksClientError) -> WebSocketTransport {
        var settings = base
        if settings.url.target == "/" {
            settings.url = try WebSocketURL("\(settings.url.isSecure ? "wss" : "ws")://\(settings.url.hostHeader)\(head.uri)")
        }
        // An Origin naming the proxy itself (a program's habit) names the upstream instead.
        settings.origin = head.headers.first(name: "Origin").map {
            BrowserAccess.retarget(origin: $0, requestHost: head.headers.first(name: "Host"), to: settings.url.hostHeader)
        }
        settings.userAgent = head.headers.first(name: "User-Agent")
        let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map(String.init)
        // None offered (the JSON chat protocols): none asked for upstream either.
        settings.subprotocol = offered.first
        if let cookie = head.headers.first(name: "Cookie") { settings.cookies = WorksCookies(header: cookie) }
        if let authorization = head.headers.first(name: "Authorization") { settings.extraHeaders.append((name: "Authorization", value: authorization)) }
        let id = lock.withLock {
            connections += 1
            return connections
        }
        var taps: [any ByteTap] = []
        if let recorder { taps.append(recorder.connectionTap()) }
        if let showEvent { taps.append(LiveView(redactor: redactor, firstConnection: id, sink: showEvent)) }
        return try await WebSocketTransport.connect(settings, group: group, tap: taps.isEmpty ? nil : TapGroup(taps),
                                                    guarding: .init(role: .client, answersControlFrames: false))
    }

    /// Frames both ways until either side closes; then both are closed.
    private func pipe(client: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, channel: any Channel, upstream: WebSocketTransport) async {
        let key = ObjectIdentifier(channel)
        lock.withLock { open[key] = (channel, upstream) }
        let upstreamChannel = upstream.channel
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // Client → upstream: masked anew, as a client's frames must be.
                try? await client.executeThenClose { inbound, _ in
                    for try await frame in inbound {
                        let forwarded = WebSocketFrame(fin: frame.fin, rsv1: frame.rsv1, rsv2: frame.rsv2, rsv3: frame.rsv3, opcode: frame.opcode,
                                                       maskKey: .random(), data: frame.unmaskedData)
                        try await upstreamChannel.writeAndFlush(forwarded).get()
                        if frame.opcode == .connectionClose { break }
                    }
                }
                try? await upstreamChannel.close()
            }
            tasks.addTask {
                // Upstream → client, unmasked, as a server's frames are.
                try? await upstream.frames.executeThenClose { inbound, _ in
                    for try await frame in inbound {
                        let forwarded = WebSocketFrame(fin: frame.fin, rsv1: frame.rsv1, rsv2: frame.rsv2, rsv3: frame.rsv3, opcode: frame.opcode,
                                                       data: frame.unmaskedData)
                        try await channel.writeAndFlush(forwarded).get()
                        if frame.opcode == .connectionClose { break }
                    }
                }
                try? await channel.close()
            }
        }
        lock.withLock { _ = open.removeValue(forKey: key) }
    }

    /// Closes the listener and every open connection, both sides.
    public func stop() async {
        let (listener, connections) = lock.withLock { (self.listener, Array(open.values)) }
        try? await listener?.close()
        for connection in connections {
            await connection.upstream.close()
            try? await connection.client.close()
        }
    }
}
