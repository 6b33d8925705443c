package import MQTTWire
public import NIOCore
package import LiveWebSocket
import NetworkErrors
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
package import NIOWebSocket


/// Which way bytes went, for the recorder and the live view.
public enum ByteDirection: Sendable, Hashable {
    case sent, received
}

/// Sees every byte of a connection after TLS and before HTTP: the recorder and the live view.
public protocol ByteTap: Sendable {
    func connectionOpened(local: SocketAddress?, remote: SocketAddress?)
    func bytes(_ buffer: ByteBuffer, direction: ByteDirection)
    func connectionClosed()
}

/// One WebSocket connection carrying MQTT, on SwiftNIO: TCP, TLS (swift-nio-ssl) for wss,
/// the HTTP/1.1 upgrade (NIOHTTP1 and NIOWebSocket's client upgrader), then frames read
/// through a `NIOAsyncChannel`, whose back-pressure stops reading from the socket while the
/// client is behind (memory stays flat however fast the server sends).
/// Visible to the package's tools (the mock benchmark's subscribers read frames with it).
package final class WebSocketTransport: Sendable {
    package typealias Frames = NIOAsyncChannel<WebSocketFrame, WebSocketFrame>
    package let channel: any Channel
    package let frames: Frames

    /// Set while a flush is queued on the event loop.
    private let flushPending: NIOLoopBoundBox<Bool>

    private init(channel: any Channel, frames: Frames) {
        self.channel = channel
        self.frames = frames
        flushPending = NIOLoopBoundBox.makeBoxSendingValue(false, eventLoop: channel.eventLoop)  // built off the loop
    }

    /// Connects and upgrades; returns once the server accepted the WebSocket. `guarding`: how
    /// the ``WebSocketProtocolGuard`` after NIO's decoder treats the server's frames (a proxy
    /// passes control frames on instead of answering them).
    package static func connect(_ settings: WebSocketSettings, group: any EventLoopGroup, tap: (any ByteTap)?,
                                guarding: WebSocketProtocolGuard.Options = .init(role: .client)) async throws(WorksClientError)
        -> WebSocketTransport {
        let url = settings.url
        var sslContext: NIOSSLContext?
        if url.isSecure {
            do {
                var tls = TLSConfiguration.makeClientConfiguration()
                if let caFile = settings.tls.caFile {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
                }
                if settings.tls.insecure { tls.certificateVerification = .none }
                sslContext = try NIOSSLContext(configuration: tls)
            } catch {
                throw WorksClientError(.config, "TLS settings: \(error)")
            }
        }
        let upgraded = group.next().makePromise(of: Frames.self)
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.hostHeader)
        if let origin = settings.origin { headers.add(name: "Origin", value: origin) }
        if let agent = settings.userAgent { headers.add(name: "User-Agent", value: agent) }
        if let subprotocol = settings.subprotocol { headers.add(name: "Sec-WebSocket-Protocol", value: subprotocol) }
        if let cookies = settings.cookies { headers.add(name: "Cookie", value: cookies.header) }
        for header in settings.extraHeaders { headers.add(name: header.name, value: header.value) }
        // No Content-Length: a GET without a body has no framing headers (RFC 7230 §3.3.2), and
        // servers such as Python's websockets refuse an upgrade that has one.
        let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target, headers: headers)
        let subprotocol = settings.subprotocol
        let maximumFrameSize = settings.maximumFrameSize
        let serverName = settings.tls.serverName ?? url.host
        let tlsContext = sslContext

        /// TLS, the tap and the upgrade: at connect, or once a proxy's tunnel is open.
        @Sendable func addWebSocketHandlers(_ channel: any Channel) throws {
            let pipeline = channel.pipeline.syncOperations
            if let sslContext = tlsContext {
                // SNI takes host names only; an address literal goes without it.
                let isAddress = (try? SocketAddress(ipAddress: serverName, port: 0)) != nil
                try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: isAddress ? nil : serverName))
            }
            if let tap { try pipeline.addHandler(ByteTapHandler(tap: tap)) }
            let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: maximumFrameSize, automaticErrorHandling: true) { channel, response in
                channel.eventLoop.makeCompletedFuture {
                    let chosen = response.headers.first(name: "Sec-WebSocket-Protocol")
                    guard chosen?.lowercased() == subprotocol?.lowercased() else {
                        throw WorksClientError(.connection, "the server chose subprotocol \(chosen.map { "'\($0)'" } ?? "none"), not \(subprotocol.map { "'\($0)'" } ?? "none")")
                    }
                    // Every frame from the server checked as RFC 6455 says (a client's rules).
                    try channel.pipeline.syncOperations.addHandler(WebSocketProtocolGuard(options: guarding))
                    let frames = try Frames(wrappingChannelSynchronously: channel, configuration: .init(
                        backPressureStrategy: .init(lowWatermark: 4, highWatermark: 64)))
                    upgraded.succeed(frames)
                }
            }
            let requestHandler = UpgradeRequestHandler(request: request, upgraded: upgraded)
            // Removed once upgraded: it reads HTTP parts, and frames follow.
            let bound = NIOLoopBound(requestHandler, eventLoop: channel.eventLoop)
            try pipeline.addHTTPClientHandlers(
                leftOverBytesStrategy: .forwardBytes,
                withClientUpgrade: (upgraders: [upgrader], completionHandler: { context in
                    context.pipeline.syncOperations.removeHandler(bound.value, promise: nil)
                }))
            try pipeline.addHandler(requestHandler)
        }

        let proxy = settings.proxy
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(TimeAmount(settings.connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let proxy else { return try addWebSocketHandlers(channel) }
                    let tunnel = channel.eventLoop.makePromise(of: Void.self)
                    // An HTTP CONNECT tunnel first (swift-nio-extras); the WebSocket handlers follow.
                    var headers = HTTPHeaders()
                    if let authorization = proxy.authorization { headers.add(name: "Proxy-Authorization", value: authorization) }
                    let encoder = HTTPRequestEncoder()
                    let decoder = ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes))
                    let connect = NIOHTTP1ProxyConnectHandler(
                        targetHost: url.host, targetPort: url.port, headers: headers,
                        deadline: .now() + TimeAmount(settings.connectTimeout), promise: tunnel)
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(encoder)
                    try pipeline.addHandler(decoder)
                    try pipeline.addHandler(connect)
                    let codecs = NIOLoopBound((encoder, decoder), eventLoop: channel.eventLoop)
                    tunnel.futureResult.assumeIsolated().whenSuccess {
                        // The proxy's codecs leave first (the response decoder also watches writes,
                        // and its removal waits for its read to end); then the WebSocket handlers come.
                        let pipeline = channel.pipeline.syncOperations
                        let removals = [channel.eventLoop.makePromise(of: Void.self), channel.eventLoop.makePromise(of: Void.self)]
                        pipeline.removeHandler(codecs.value.0, promise: removals[0])
                        pipeline.removeHandler(codecs.value.1, promise: removals[1])
                        EventLoopFuture.andAllSucceed(removals.map(\.futureResult), on: channel.eventLoop)
                            .flatMapThrowing { try addWebSocketHandlers(channel) }
                            .whenFailure { upgraded.fail($0) }
                    }
                    tunnel.futureResult.whenFailure { upgraded.fail(WorksClientError(.connection, "the HTTP proxy \(proxy.host):\(proxy.port) refused the tunnel: \($0)")) }
                }
            }

        let channel: any Channel
        do {
            if let proxy {
                channel = try await bootstrap.connect(host: proxy.host, port: proxy.port).get()
            } else {
                channel = try await bootstrap.connect(host: url.host, port: url.port).get()
            }
        } catch {
            let failure = WorksClientError(.connection, proxy.map { "the HTTP proxy: " + NetworkErrorText.connecting(error, host: $0.host, port: $0.port) }
                                           ?? NetworkErrorText.connecting(error, host: url.host, port: url.port))
            upgraded.fail(failure)  // a promise must be completed, even when no channel came to use it
            throw failure
        }
        channel.closeFuture.whenComplete { _ in upgraded.fail(WorksClientError(.connection, "the connection closed during the WebSocket upgrade")) }
        do {
            let frames = try await upgraded.futureResult.get()
            return WebSocketTransport(channel: channel, frames: frames)
        } catch {
            try? await channel.close()
            if let error = error as? WorksClientError { throw error }
            throw WorksClientError(.connection, "WebSocket upgrade to \(url) failed: \(error)")
        }
    }

    /// Writes packets, one binary frame each (as the web client does). Flushes are coalesced on
    /// the event loop: acknowledgements of a burst of messages leave in one system call, not one each.
    package func send(_ packets: [MQTTPacket]) {
        guard !packets.isEmpty else { return }
        let encoder = MQTTEncoder()
        let frames = packets.compactMap { packet in
            // The session only builds valid packets; an encoder refusal would be our bug, not the server's.
            (try? encoder.encode(packet)).map { WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: $0) }
        }
        let channel = self.channel
        let flushPending = self.flushPending
        channel.eventLoop.execute {
            for frame in frames { channel.write(frame, promise: nil) }
            guard !flushPending.value else { return }
            flushPending.value = true
            channel.eventLoop.execute {
                flushPending.value = false
                channel.flush()
            }
        }
    }

    /// Sends a close frame (1000) and closes.
    package func close() async {
        var data = channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: .normalClosure)
        try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)).get()
        try? await channel.close()
    }
}

/// Writes the upgrade request once the channel is active and turns a refused upgrade into a
/// typed error: 401 and 403 are authentication errors (bad or expired cookies).
private final class UpgradeRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let upgraded: EventLoopPromise<WebSocketTransport.Frames>

    init(request: HTTPRequestHead, upgraded: EventLoopPromise<WebSocketTransport.Frames>) {
        self.request = request
        self.upgraded = upgraded
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { sendRequest(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context: context)
        context.fireChannelActive()
    }

    private func sendRequest(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// The refusal's head and the first bytes of its body, which a server may fill with the reason.
    private var refusal: HTTPResponseHead?
    private var reason = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let response):
            refusal = response
        case .body(var chunk):
            let room = max(0, 512 - reason.readableBytes)
            if let part = chunk.readSlice(length: min(room, chunk.readableBytes)) { reason.writeImmutableBuffer(part) }
        case .end:
            fail(context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(context)
        context.fireChannelInactive()
    }

    /// Fails the upgrade with the status and, when the server gave one in plain words, its reason.
    private func fail(_ context: ChannelHandlerContext) {
        guard let response = refusal else { return }
        refusal = nil
        let status = response.status.code
        let text = String(decoding: reason.readableBytesView, as: UTF8.self)
        let isPlainText = response.headers.first(name: "Content-Type")?.lowercased().hasPrefix("text/plain") ?? false
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let said = isPlainText && !line.isEmpty ? ": \(line)" : ""
        let error: WorksClientError
        switch status {
        case 401, 403:
            error = WorksClientError(.authentication, "the server refused the WebSocket upgrade with HTTP \(status) \(response.status.reasonPhrase)"
                                     + (said.isEmpty ? ": the cookies are missing, wrong or expired" : said))
        default:
            error = WorksClientError(.connection, "the server answered the WebSocket upgrade with HTTP \(status) \(response.status.reasonPhrase)\(said)",
                                     isRetryable: status >= 500 || status == 429)
        }
        upgraded.fail(error)
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        upgraded.fail(WorksClientError(.connection, "WebSocket upgrade: \(error)"))
        context.close(promise: nil)
    }
}

/// Shows every byte to a ``ByteTap`` and passes it on.
private final class ByteTapHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let tap: any ByteTap

    init(tap: any ByteTap) { self.tap = tap }

    func channelActive(context: ChannelHandlerContext) {
        tap.connectionOpened(local: context.channel.localAddress, remote: context.channel.remoteAddress)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            tap.connectionOpened(local: context.channel.localAddress, remote: context.channel.remoteAddress)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        tap.connectionClosed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        tap.bytes(unwrapInboundIn(data), direction: .received)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        tap.bytes(unwrapOutboundIn(data), direction: .sent)
        context.write(data, promise: promise)
    }
}

/// After the upgrade: binary frames → one MQTT byte stream → packets, whatever the framing
/// (packets split across frames, several in one). Pings are answered, a close is echoed.
struct MQTTFrameReader {
    enum Outcome {
        case packets([MQTTPacket])
        /// Write this frame back (a pong, the echo of a close).
        case reply(WebSocketFrame, then: WorksClientError?)
        case failed(WorksClientError)
    }

    private var decoder: MQTTDecoder

    init(maximumPacketSize: Int) {
        decoder = MQTTDecoder(configuration: .init(maximumPacketSize: maximumPacketSize, followsConnect: false))
    }

    mutating func read(_ frame: WebSocketFrame) -> Outcome {
        switch frame.opcode {
        case .binary, .continuation:
            decoder.append(frame.unmaskedData)
            var packets: [MQTTPacket] = []
            do {
                while let packet = try decoder.next() { packets.append(packet) }
            } catch {
                return .failed(WorksClientError(.packet, "the server sent a malformed MQTT packet: \(error)"))
            }
            return .packets(packets)
        case .text:
            return .failed(WorksClientError(.packet, "the server sent a text frame; MQTT travels in binary frames only [MQTT-6.0.0-1]"))
        case .ping:
            return .reply(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData), then: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self)
            let reason = data.readString(length: data.readableBytes) ?? ""
            let error = WorksClientError(.connection, "the server closed the WebSocket" + (code.map { " with code \($0)" } ?? "")
                                         + (reason.isEmpty ? "" : ": \(reason)"))
            var echo = ByteBuffer()
            if let code { echo.writeInteger(code) }
            return .reply(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: echo), then: error)
        default:
            return .packets([])
        }
    }
}
