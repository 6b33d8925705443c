import MQTTWire
import NIOConcurrencyHelpers
import NIOCore
import LiveWebSocket
import NetworkErrors
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Recordings
import WebSocketWire
import WorksClient

/// One live MQTT connection of a replay, either end, WebSocket or TCP: packets out, packets in
/// (through ``read(_:)``). Encoding and decoding follow the recorded protocol version (MQTT 5.0
/// packets are not read as 3.1.1 ones), so the replay speaks what was recorded.
final class PacketLink: Sendable {
    enum Framing: Sendable {
        /// Binary frames; clients mask theirs.
        case webSocket(masked: Bool)
        case tcp
    }

    enum Inbound {
        case frames(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case bytes(NIOAsyncChannel<ByteBuffer, ByteBuffer>)
    }

    let channel: any Channel
    let framing: Framing
    /// The version packets are encoded in: the recorded connection's, known at once for our
    /// connections and once a served one is assigned to a recorded connection.
    private let versionBox: NIOLockedValueBox<ProtocolVersion>
    /// Our end as a server decodes in the version the client's CONNECT names.
    private let followsConnect: Bool

    init(channel: any Channel, framing: Framing, version: ProtocolVersion, followsConnect: Bool = false) {
        self.channel = channel
        self.framing = framing
        versionBox = NIOLockedValueBox(version)
        self.followsConnect = followsConnect
    }

    var version: ProtocolVersion {
        get { versionBox.withLockedValue { $0 } }
        set { versionBox.withLockedValue { $0 = newValue } }
    }

    var description: String {
        "\(channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?")"
    }

    func send(_ packets: [MQTTPacket]) {
        let encoder = MQTTEncoder(version: version)
        // Recorded packets decoded once, so they encode; one that does not is left out, not sent half.
        let encoded = packets.compactMap { try? encoder.encode($0) }
        let channel = self.channel
        switch framing {
        case .webSocket(let masked):
            // One write per frame, as browsers and paho send them: mosquitto's websockets listener
            // (libwebsockets) reads one frame per wake-up, and frames that arrive together wait
            // for its next poll timeout (a 40× slowdown measured with `Tools/bench replay`).
            let frames = encoded.map { WebSocketFrame(fin: true, opcode: .binary, maskKey: masked ? .random() : nil, data: $0) }
            channel.eventLoop.execute {
                for frame in frames { channel.writeAndFlush(frame, promise: nil) }
            }
        case .tcp:
            channel.eventLoop.execute {
                for bytes in encoded { channel.write(bytes, promise: nil) }
                channel.flush()
            }
        }
    }

    /// Ends the connection: a WebSocket close frame (1000) first.
    func close() async {
        if case .webSocket(let masked) = framing {
            var data = channel.allocator.buffer(capacity: 2)
            data.write(webSocketErrorCode: .normalClosure)
            try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: masked ? .random() : nil,
                                                            data: data)).get()
        }
        try? await channel.close()
    }

    /// Reads packets until the connection ends; returns why it ended (nil: closed cleanly).
    func read(_ inbound: Inbound, maximumPacketSize: Int = 16 << 20, deliver: (MQTTPacket) -> Void) async -> String? {
        var decoder = MQTTDecoder(configuration: .init(maximumPacketSize: maximumPacketSize, version: version, followsConnect: followsConnect))
        var ending: String?
        do {
            switch inbound {
            case .bytes(let stream):
                try await stream.executeThenClose { bytes, _ in
                    for try await chunk in bytes {
                        decoder.append(chunk)
                        while let packet = try decoder.next() { deliver(packet) }
                    }
                }
            case .frames(let stream):
                let masked: Bool
                if case .webSocket(let ours) = framing { masked = ours } else { masked = false }
                try await stream.executeThenClose { frames, _ in
                    frames: for try await frame in frames {
                        switch frame.opcode {
                        case .binary, .continuation:
                            decoder.append(frame.unmaskedData)
                            while let packet = try decoder.next() { deliver(packet) }
                        case .text:
                            ending = "a text frame: MQTT travels in binary frames only"
                            break frames
                        case .ping:
                            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .pong, maskKey: masked ? .random() : nil,
                                                                 data: frame.unmaskedData), promise: nil)
                        case .connectionClose:
                            var echo = ByteBuffer()
                            if let code = frame.unmaskedData.getInteger(at: frame.unmaskedData.readerIndex, as: UInt16.self) {
                                echo.writeInteger(code)
                            }
                            try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose,
                                                                            maskKey: masked ? .random() : nil, data: echo)).get()
                            break frames
                        default:
                            continue
                        }
                    }
                }
            }
        } catch {
            ending = "\(error)"
        }
        try? await channel.close()
        return ending
    }

    // MARK: Our end as a client

    /// Connects to `url` (`ws://`, `wss://` or `mqtt://HOST:PORT`) for a recorded connection.
    static func connect(to url: ReplayURL, connection: RecordedConnection, cookies: WorksCookies?,
                        group: any EventLoopGroup) async throws(ReplayError) -> (PacketLink, Inbound) {
        let version = connection.connect?.protocolVersion ?? .v3_1_1
        switch url.scheme {
        case .tcp:
            do {
                let channel = try await ClientBootstrap(group: group)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connectTimeout(.seconds(10))
                    .connect(host: url.host, port: url.port) { channel in
                        channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                    }
                return (PacketLink(channel: channel.channel, framing: .tcp, version: version), .bytes(channel))
            } catch {
                throw ReplayError(.connection, NetworkErrorText.connecting(error, host: url.host, port: url.port))
            }
        case .webSocket, .secureWebSocket:
            var target = url.target
            if target == "/", let recorded = connection.path { target = recorded }
            let webSocketURL: WebSocketURL
            do {
                webSocketURL = try WebSocketURL("\(url.scheme == .secureWebSocket ? "wss" : "ws")://\(url.hostHeader)\(target)")
            } catch {
                throw ReplayError(.usage, "\(url): \(error)")
            }
            var settings = WebSocketSettings(url: webSocketURL, origin: nil, userAgent: "wmq-replay")
            settings.subprotocol = connection.subprotocol ?? "mqtt"
            settings.cookies = cookies
            do {
                let transport = try await WebSocketTransport.connect(settings, group: group, tap: nil)
                return (PacketLink(channel: transport.channel, framing: .webSocket(masked: true), version: version), .frames(transport.frames))
            } catch {
                throw ReplayError(.connection, "\(error)")
            }
        }
    }
}

/// Where `drive` connects: `ws://HOST:PORT/PATH`, `wss://…`, or `mqtt://HOST:PORT` (MQTT over TCP).
public struct ReplayURL: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: Sendable, Hashable { case webSocket, secureWebSocket, tcp }

    public var scheme: Scheme
    public var host: String
    public var port: Int
    public var target: String

    public init(_ text: String) throws(ReplayError) {
        let schemes: [(String, Scheme, Int)] = [("ws://", .webSocket, 80), ("wss://", .secureWebSocket, 443), ("mqtt://", .tcp, 1883),
                                                ("tcp://", .tcp, 1883)]
        guard let (prefix, scheme, defaultPort) = schemes.first(where: { text.lowercased().hasPrefix($0.0) }) else {
            throw ReplayError(.usage, "\(text): not a ws://, wss:// or mqtt:// URL")
        }
        let rest = text.dropFirst(prefix.count)
        let authority = rest.prefix { $0 != "/" }
        target = rest.count > authority.count ? String(rest.dropFirst(authority.count)) : "/"
        let hostPart: Substring
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            port = after.hasPrefix(":") ? Int(after.dropFirst()) ?? -1 : defaultPort
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            port = Int(authority[authority.index(after: colon)...]) ?? -1
        } else {
            hostPart = authority
            port = defaultPort
        }
        guard !hostPart.isEmpty, (1...65535).contains(port) else { throw ReplayError(.usage, "\(text): needs a host and a port from 1 to 65535") }
        host = String(hostPart)
        self.scheme = scheme
    }

    public var hostHeader: String { (host.contains(":") ? "[\(host)]" : host) + ":\(port)" }

    public var description: String {
        switch scheme {
        case .webSocket: "ws://\(hostHeader)\(target)"
        case .secureWebSocket: "wss://\(hostHeader)\(target)"
        case .tcp: "mqtt://\(hostHeader)"
        }
    }

    /// Whether connections recorded over `transport` go to this URL.
    func carries(_ transport: RecordedConnection.Transport) -> Bool {
        switch transport {
        case .tcp: scheme == .tcp
        case .webSocket, .scenario: scheme != .tcp
        }
    }
}

// MARK: Our end as a server

/// The listeners of `serve`: a WebSocket one (any path; subprotocol `mqtt` or `mqttv3.1`) and
/// optionally a TCP one. Each accepted connection is handed over with its inbound side.
final class ReplayListeners: Sendable {
    let channels: [any Channel]
    let webSocketPort: Int?
    let tcpPort: Int?

    private init(channels: [any Channel], webSocketPort: Int?, tcpPort: Int?) {
        self.channels = channels
        self.webSocketPort = webSocketPort
        self.tcpPort = tcpPort
    }

    static let subprotocols = ["mqtt", "mqttv3.1"]

    /// - Parameter accepted: called on an event loop for every connection, with its transport.
    static func start(webSocket: (host: String, port: Int)?, tcp: (host: String, port: Int)?, group: any EventLoopGroup,
                      access: BrowserAccess,
                      accepted: @escaping @Sendable (PacketLink, PacketLink.Inbound, RecordedConnection.Transport) -> Void)
        async throws(ReplayError) -> ReplayListeners {
        var channels: [any Channel] = []
        var webSocketPort: Int?
        var tcpPort: Int?
        do {
            if let webSocket {
                let limiter = ConnectionLimiter(maximum: HTTPConnectionLimits.connectionsTheDescriptorsAllow)
                let channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .serverChannelInitializer { channel in channel.backOffAcceptWhenOutOfDescriptors() }
                    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                    .childChannelInitializer { channel in
                        guard limiter.admit(channel) else { return limiter.turnAway(channel, http: true) }
                        return channel.eventLoop.makeCompletedFuture {
                            let upgrader = NIOWebSocketServerUpgrader(
                                maxFrameSize: 16 << 20, automaticErrorHandling: true,
                                shouldUpgrade: { channel, head in
                                    // A page of another origin or a foreign host name: 403 from the refusal.
                                    guard access.allows(head) else { return channel.eventLoop.makeSucceededFuture(nil) }
                                    let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map { $0.lowercased() }
                                    guard let chosen = offered.first(where: { subprotocols.contains(String($0)) }) else {
                                        return channel.eventLoop.makeSucceededFuture(nil)
                                    }
                                    return channel.eventLoop.makeSucceededFuture(HTTPHeaders([("Sec-WebSocket-Protocol", String(chosen))]))
                                },
                                upgradePipelineHandler: { channel, _ in
                                    channel.eventLoop.makeCompletedFuture {
                                        try channel.pipeline.syncOperations.addHandler(WebSocketProtocolGuard(options: .init(acceptsText: false)))
                                        let frames = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel)
                                        accepted(PacketLink(channel: channel, framing: .webSocket(masked: false), version: .v3_1_1, followsConnect: true),
                                                 .frames(frames), .webSocket)
                                    }
                                })
                            let refusal = PlainHTTPAnswer(status: .upgradeRequired, extraHeaders: [("Upgrade", "websocket")], access: access) {
                                "wmq-replay serves MQTT over WebSocket: upgrade with subprotocol mqtt\n"
                            }
                            try channel.pipeline.syncOperations.configureWebSocketServer(upgrader: upgrader, refusal: refusal, on: channel.eventLoop)
                        }
                    }
                    .bind(host: webSocket.host, port: webSocket.port).get()
                channels.append(channel)
                webSocketPort = channel.localAddress?.port
            }
            if let tcp {
                let channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .serverChannelInitializer { channel in channel.backOffAcceptWhenOutOfDescriptors() }
                    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let bytes = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                            accepted(PacketLink(channel: channel, framing: .tcp, version: .v3_1_1, followsConnect: true), .bytes(bytes), .tcp)
                        }
                    }
                    .bind(host: tcp.host, port: tcp.port).get()
                channels.append(channel)
                tcpPort = channel.localAddress?.port
            }
        } catch {
            for channel in channels { try? await channel.close() }
            // The listener that failed: the WebSocket one unless it was already up.
            let (address, option) = channels.isEmpty && webSocket != nil ? (webSocket, "--listen") : (tcp, "--listen-tcp")
            throw ReplayError(.usage, NetworkErrorText.listening(error, host: address?.host ?? "?", port: address?.port ?? 0,
                                                                 option: option, tool: "wmq-replay or server"))
        }
        return ReplayListeners(channels: channels, webSocketPort: webSocketPort, tcpPort: tcpPort)
    }

    func close() async {
        for channel in channels { try? await channel.close() }
    }
}
