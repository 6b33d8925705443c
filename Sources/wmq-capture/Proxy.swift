import ArgumentParser
import Capture
import CommandLineSupport
import Dialects
import Dissector
import Foundation
import LiveWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import WebSocketWire
import WorksClient

struct Proxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A recording WebSocket proxy: clients connect to it, it connects upstream (wss:// too) and records both ways.",
        discussion: reflowHelp("""
            Point a browser, an app or a test client at ws://HOST:PORT (the --listen address) instead
            of the service. For each connection the proxy opens its own connection to --upstream
            (TLS for wss://, through --http-proxy when given), with the client's Cookie,
            Authorization, Origin and User-Agent headers and the first subprotocol it offered,
            accepts the client with the subprotocol the service chose (or refuses it with 502 and
            the reason), then forwards every frame both ways unchanged (client frames are masked
            anew, as the protocol asks). The upstream path is --upstream's, or the client's when
            --upstream has none.

            Everything that crossed the upstream connection, after TLS, goes into the -w pcap file
            with synthetic IPv4/TCP headers (one TCP stream per connection): wmq-decode, wmq-replay
            and Wireshark read it. Cookies, Authorization values, CONNECT passwords and token fields
            are written as keyed pseudonyms unless --no-redact. --decode prints every MQTT packet as
            wmq-decode does. Ctrl-C stops: connections are closed and the file is flushed.
            """))

    @Option(help: "Where clients connect, HOST:PORT (port 0 picks a free one; the address is printed).")
    var listen: String = "127.0.0.1:8886"

    @Option(help: "The service: wss://HOST[:PORT]/PATH or ws://….")
    var upstream: String

    @Option(name: .short, help: "The pcap file to record into.")
    var write: String?

    @Option(name: .customLong("http-proxy"), help: "Reach the upstream through this HTTP proxy (http://[user:password@]host:port).")
    var httpProxy: String?

    @Option(name: .customLong("ca-file"), help: "Trust this CA (PEM) for the upstream's certificate.")
    var caFile: String?

    @Flag(help: "Accept any upstream certificate (tests only).")
    var insecure = false

    @Flag(help: "Print every MQTT packet as it passes, as wmq-decode does.")
    var decode = false

    @Option(help: "With --decode: text (default) or jsonl.")
    var format: Live.Format = .text

    @Flag(help: "Record and show cookies, passwords and tokens as they are.")
    var noRedact = false

    func validate() throws {
        if write == nil && !decode { throw ValidationError("give -w FILE, --decode, or both") }
        guard let colon = listen.lastIndex(of: ":"), Int(listen[listen.index(after: colon)...]) != nil else {
            throw ValidationError("--listen \(listen): give HOST:PORT")
        }
        do { _ = try WebSocketURL(upstream) } catch { throw ValidationError("--upstream: \(error.reason)") }
    }

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else { return }
        let host = String(listen[..<colon])
        var settings: WebSocketSettings
        do {
            settings = WebSocketSettings(url: try WebSocketURL(upstream), origin: nil, userAgent: nil)
            settings.tls = TLSSettings(caFile: caFile, insecure: insecure)
            if let httpProxy { settings.proxy = try HTTPProxy(url: httpProxy) }
        } catch {
            throw ValidationError(error.reason)
        }
        let redactor = noRedact ? nil : Redactor.random()
        var recorder: SessionRecorder?
        if let write {
            do {
                recorder = try SessionRecorder(path: write, redactor: redactor)
            } catch {
                throw unreadableInput("wmq-capture", error.reason)
            }
        }
        let printer = decode ? LivePrinter(format: format, redacts: !noRedact) : nil
        let proxy = RecordingProxy(base: settings, recorder: recorder, printer: printer, redactor: redactor)
        let bound: Int
        do {
            bound = try await proxy.start(host: host, port: port)
        } catch {
            throw unreadableInput("wmq-capture", "cannot listen on \(listen): \(error)")
        }
        FileHandle.standardOutput.write(Data("listening ws://\(host):\(bound) → \(settings.url)\n".utf8))
        let signals = TerminationSignals()
        for await _ in signals.stream { break }
        signals.cancel()
        await proxy.stop()
        recorder?.flush()
        var summary = "wmq-capture: \(proxy.connectionCount) connection\(proxy.connectionCount == 1 ? "" : "s") proxied"
        if let write { summary += ", recorded in \(write)" }
        if let recorder, recorder.withheldBytes > 0 { summary += "; \(recorder.withheldBytes) bytes could not be checked for secrets and were left out" }
        StandardError.write(summary + "\n")
    }
}

/// Accepts WebSocket connections, opens one upstream for each (WorksClient's transport, with the
/// recorder and the live view as taps), and pipes frames both ways.
final class RecordingProxy: @unchecked Sendable {  // the mutable state is guarded by `lock`
    let base: WebSocketSettings
    let recorder: SessionRecorder?
    let printer: LivePrinter?
    let redactor: Redactor?
    let group = MultiThreadedEventLoopGroup.singleton
    private let lock = NIOLock()
    private var listener: (any Channel)?
    private var open: [ObjectIdentifier: (client: any Channel, upstream: WebSocketTransport)] = [:]
    private var connections = 0

    init(base: WebSocketSettings, recorder: SessionRecorder?, printer: LivePrinter?, redactor: Redactor?) {
        self.base = base
        self.recorder = recorder
        self.printer = printer
        self.redactor = redactor
    }

    var connectionCount: Int { lock.withLock { connections } }

    func start(host: String, port: Int) async throws -> Int {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    // The upstream connection made while deciding the upgrade, for the pipe after it.
                    let pending = NIOLockedValueBox<WebSocketTransport?>(nil)
                    let refusal = NIOLockedValueBox<String>("the upstream refused the connection")
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: 16 << 20, automaticErrorHandling: true,
                        shouldUpgrade: { channel, head in
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
                                let frames = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel)
                                guard let upstream = pending.withLockedValue({ $0 }) else { throw ChannelError.inappropriateOperationForState }
                                Task { await self.pipe(client: frames, channel: channel, upstream: upstream) }
                            }
                        })
                    let answer = PlainHTTPAnswer(status: .badGateway) { "wmq-capture proxy: \(refusal.withLockedValue { $0 })\n" }
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
        settings.origin = head.headers.first(name: "Origin")
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
        if let printer { taps.append(LiveView(redactor: redactor, firstConnection: id) { printer.show($0) }) }
        return try await WebSocketTransport.connect(settings, group: group, tap: taps.isEmpty ? nil : TapGroup(taps))
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

    func stop() async {
        let (listener, connections) = lock.withLock { (self.listener, Array(open.values)) }
        try? await listener?.close()
        for connection in connections {
            await connection.upstream.close()
            try? await connection.client.close()
        }
    }
}
