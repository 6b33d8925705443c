public import Broker
import Capture
import Dialects
#if canImport(Glibc)
import Glibc
import LiveWebSocket
#endif
import LiveClock
import Logging
import MockAgents
import MockFiles
import MQTTWire
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import WebSocketWire

// The broker's listeners: WebSocket (with the upgrade rules and the HTTP handler beside it),
// plain TCP, the admin API on a port of its own, and stopping them all.
extension MockBroker {
    /// How one listener treats its connections.
    public struct ListenerOptions: Sendable {
        /// The MQTT versions it serves.
        public var accepting: BrokerCore.AcceptedVersions
        /// rumqttd's `next_connection_delay_ms`: after accepting a connection the listener
        /// waits this long before accepting the next.
        public var acceptDelay: Duration

        public init(accepting: BrokerCore.AcceptedVersions = .any, acceptDelay: Duration = .zero) {
            self.accepting = accepting
            self.acceptDelay = acceptDelay
        }

        func pace(_ channel: any Channel) -> EventLoopFuture<Void> {
            guard acceptDelay > .zero else { return channel.eventLoop.makeSucceededVoidFuture() }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(AcceptPacer(delay: TimeAmount(acceptDelay)))
            }
        }
    }

    /// Starts a WebSocket listener; returns the port it bound (0 asks for a free one).
    public func listenWebSocket(host: String, port: Int, options: ListenerOptions = .init()) async throws -> Int {
        let configuration = self.configuration
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.maxMessagesPerRead, value: UInt(options.acceptDelay > .zero ? 1 : 4))
            .serverChannelInitializer { channel in
                channel.backOffAcceptWhenOutOfDescriptors().flatMap { options.pace(channel) }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: configuration.unreadBytesWaterMark)
            .childChannelInitializer { [weak self] channel in
                guard let self else { return channel.eventLoop.makeSucceededVoidFuture() }
                guard self.limiter.admit(channel) else { return self.limiter.turnAway(channel, http: true) }
                return channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: configuration.maximumFrameSize, automaticErrorHandling: true,
                        shouldUpgrade: { channel, head in
                            channel.eventLoop.makeSucceededFuture(Self.upgradeHeaders(for: head, configuration: configuration))
                        },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                // MQTT travels in binary messages; fragments pass on as they come (a byte stream).
                                try channel.pipeline.syncOperations.addHandler(WebSocketProtocolGuard(options: .init(acceptsText: false)))
                                let frames = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                                    wrappingChannelSynchronously: channel,
                                    configuration: .init(backPressureStrategy: .init(lowWatermark: 4, highWatermark: 64)))
                                let writer = FrameBytesWriter()
                                try channel.pipeline.syncOperations.addHandler(writer, position: .first)
                                Task { await self.serveWebSocket(frames, channel: channel, writer: writer, accepting: options.accepting) }
                            }
                        })
                    // A handshake that dribbles in (a byte a second), an idle keep-alive connection and
                    // a slow body are cut off (the first two with the same timeout as a missing CONNECT).
                    let timeouts = HTTPConnectionTimeouts(limits: configuration.httpLimits)
                    // Answers requests that were not upgraded; leaves once one was, as frames follow.
                    let refusal = HTTPRequestHandler(configuration: configuration, broker: self)
                    let bound = NIOLoopBound((refusal, timeouts), eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            context.pipeline.syncOperations.removeHandler(bound.value.1, promise: nil)
                            context.pipeline.syncOperations.removeHandler(bound.value.0, promise: nil)
                        }))
                    try channel.pipeline.syncOperations.addHandler(timeouts)
                    try channel.pipeline.syncOperations.addHandler(refusal)
                }
            }
            .bind(host: host, port: port).get()
        listeners.append(channel)
        startTicker()
        announceAICore()
        let bound = channel.localAddress?.port ?? port
        logger.info("WebSocket listener", metadata: ["address": "\(host):\(bound)", "mode": "\(configuration.mode)"])
        return bound
    }

    /// Starts a plain MQTT-over-TCP listener; returns the port it bound.
    public func listenTCP(host: String, port: Int, options: ListenerOptions = .init()) async throws -> Int {
        let configuration = self.configuration
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.maxMessagesPerRead, value: UInt(options.acceptDelay > .zero ? 1 : 4))
            .serverChannelInitializer { channel in options.pace(channel) }  // NIO adds the accept back-off here
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: configuration.unreadBytesWaterMark)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        listeners.append(server.channel)
        startTicker()
        announceAICore()
        Task { [weak self] in
            try? await server.executeThenClose { connections in
                for try await connection in connections {
                    guard let self, self.limiter.admit(connection.channel) else {
                        connection.channel.close(promise: nil)
                        continue
                    }
                    Task { await self.serveTCP(connection, accepting: options.accepting) }
                }
            }
        }
        let bound = server.channel.localAddress?.port ?? port
        logger.info("TCP listener", metadata: ["address": "\(host):\(bound)"])
        return bound
    }

    /// Starts a listener for the admin API and the page only (plain HTTP); returns its port.
    public func listenAdmin(host: String, port: Int) async throws -> Int {
        let configuration = self.configuration
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in channel.backOffAcceptWhenOutOfDescriptors() }
            .childChannelInitializer { [weak self] channel in
                guard let self else { return channel.eventLoop.makeSucceededVoidFuture() }
                guard self.limiter.admit(channel) else { return self.limiter.turnAway(channel, http: true) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HTTPConnectionTimeouts(limits: configuration.httpLimits))
                    try channel.pipeline.syncOperations.addHandler(HTTPRequestHandler(configuration: configuration, broker: self))
                }
            }
            .bind(host: host, port: port).get()
        listeners.append(channel)
        let bound = channel.localAddress?.port ?? port
        logger.info("admin listener", metadata: ["address": "\(host):\(bound)"])
        return bound
    }

    /// Closes the listeners and every connection.
    public func stop() async {
        ticker?.cancel()
        for listener in listeners { try? await listener.close() }
        // Goodbyes first: an MQTT 5.0 session gets DISCONNECT 0x8B (server shutting down), a
        // WebSocket a Close 1001 (going away), so that a client sees why, not a reset.
        for (id, connection) in connections {
            var goodbye: [ByteBuffer] = []
            if connection.version == .v5, core.clientID(of: id) != nil,
               let disconnect = try? MQTTEncoder(version: .v5).encode(.disconnect(DisconnectPacket(reasonCode: .serverShuttingDown))) {
                goodbye.append(connection.transport == .webSocket ? Self.binaryFrame(disconnect) : disconnect)
            }
            if connection.transport == .webSocket {
                var close = ByteBuffer()
                close.writeInteger(UInt16(1001))
                close.writeString("wmq-mock is shutting down")
                var frame = ByteBuffer()
                WebSocketFrameWriter.write(WebSocketFrame(fin: true, opcode: .connectionClose, data: close), into: &frame)
                goodbye.append(frame)
            }
            let channel = connection.channel
            let writer = connection.frameWriter
            let frames = goodbye
            try? await channel.eventLoop.submit {
                for bytes in frames {
                    if let writer { writer.write(bytes) } else { channel.write(bytes, promise: nil) }
                }
                channel.flush()
            }.get()
        }
        for connection in connections.values { try? await connection.channel.close() }
        listeners = []
    }
}
