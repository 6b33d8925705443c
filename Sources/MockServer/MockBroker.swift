public import Broker
import Capture
import Dialects
#if canImport(Glibc)
import Glibc
import LiveWebSocket
#endif
public import LiveClock
public import Logging
public import MockAgents
public import MockFiles
public import MQTTWire
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOWebSocket
import WebSocketWire

/// `wmq-mock`'s server: the ``BrokerCore`` state machine behind MQTT-over-WebSocket (and
/// optionally plain TCP) listeners on SwiftNIO. In Works mode it behaves like the Works
/// notification service: path `/wmqtt`, the `Cookie` header checked (401 otherwise), and
/// notifications pushed to connected sessions with no SUBSCRIBE.
public actor MockBroker {
    /// The mode, as the configuration names it (``MockMode``).
    public typealias Mode = MockMode

    public struct Configuration: Sendable {
        public var mode: Mode
        public var core: BrokerCore.Configuration
        /// Works mode: the cookies a client must send (every pair, any order, others allowed);
        /// nil accepts any.
        public var requiredCookies: [String: String]?
        /// Works mode: the path of the WebSocket endpoint.
        public var path: String
        public var maximumFrameSize: Int
        /// When set, the admin API wants `Authorization: Bearer <token>` (required when the
        /// listener is not on loopback).
        public var adminToken: String?
        /// Played against every client once its session is accepted.
        public var scenario: Scenario?
        /// Chat mode: how the AI core streams its replies.
        public var chat: ChatTopicAgent.Configuration = .init()

        public init(mode: Mode = .broker, core: BrokerCore.Configuration = .init(), requiredCookies: [String: String]? = nil,
                    path: String = "/wmqtt", maximumFrameSize: Int = 16 << 20, adminToken: String? = nil,
                    scenario: Scenario? = nil) {
            self.adminToken = adminToken
            self.scenario = scenario
            self.mode = mode
            self.core = core
            self.requiredCookies = requiredCookies
            self.path = path
            self.maximumFrameSize = maximumFrameSize
        }
    }

    public let configuration: Configuration
    var core: BrokerCore
    /// Open transport connections, upgraded WebSocket or TCP, with or without CONNECT.
    var connections: [BrokerCore.ConnectionID: Connection] = [:]
    /// Scenarios being played, by connection.
    var plays: [BrokerCore.ConnectionID: ScenarioPlay] = [:]
    /// Every finished play of the scenario, in order.
    public nonisolated let scenarioResults: AsyncStream<ScenarioResult>
    let scenarioResultsContinuation: AsyncStream<ScenarioResult>.Continuation
    private var nextConnection = 0
    private var listeners: [any Channel] = []
    private var ticker: Task<Void, Never>?
    /// The time the broker goes by.
    public nonisolated let clock: LiveClock
    let logger: Logger
    private let group: any EventLoopGroup
    private var builder = NotificationBuilder()
    /// One per event loop: flushes its channels once after the writes queued on it so far.
    private var flushers: [ObjectIdentifier: LoopFlusher] = [:]
    /// A fault (admin API): acknowledgements to every client's publishes go out this late.
    var acknowledgementDelay: Duration = .zero
    /// Open pages watching the traffic (`GET /api/events`).
    var viewers: [Int: Viewer] = [:]
    var nextViewer = 0
    var trafficFrame = 0
    let trafficStart = MockBroker.epochSeconds()
    let trafficRedactor = Redactor.random()
    let trafficDialect = WorksDialect()
    /// Chat mode: the AI core, and whether it announced itself yet.
    var chatAgent: ChatTopicAgent
    var chatAnnounced = false

    enum Transport { case webSocket, tcp }

    struct Connection {
        let channel: any Channel
        let transport: Transport
        /// The connection as the page's live view names it (addresses, when it opened), made once.
        let described: Capture.Connection
        /// Bytes of MQTT shown on the page so far, each way (their stream offsets).
        var receivedBytes = 0
        var sentBytes = 0
        /// The version packets to this connection are encoded with (the core's, cached).
        var version: ProtocolVersion = .v3_1_1

        /// WebSocket: writes whole frames past NIO's frame encoder.
        let frameWriter: FrameBytesWriter?

        /// The write that carries MQTT bytes on this connection: `framed` (the same bytes in one
        /// binary frame) on WebSocket, `bytes` themselves on TCP.
        func write(_ bytes: ByteBuffer, framed: @autoclosure () -> ByteBuffer) -> Write {
            Write(channel: channel, frameWriter: frameWriter, bytes: frameWriter == nil ? bytes : framed())
        }
    }

    /// Bytes for one connection, written on its event loop.
    struct Write: Sendable {
        let channel: any Channel
        let frameWriter: FrameBytesWriter?
        let bytes: ByteBuffer

        /// On the channel's event loop.
        func perform() {
            if let frameWriter { frameWriter.write(bytes) } else { channel.write(bytes, promise: nil) }
        }
    }

    /// MQTT bytes in one unmasked binary frame: what every WebSocket subscriber of a fanned-out
    /// message receives, framed once.
    static func binaryFrame(_ bytes: ByteBuffer) -> ByteBuffer {
        var frame = ByteBuffer()
        frame.reserveCapacity(bytes.readableBytes + 10)
        WebSocketFrameWriter.write(WebSocketFrame(fin: true, opcode: .binary, data: bytes), into: &frame)
        return frame
    }

    /// `clock`: the time the broker goes by (tests pass a manual one).
    public init(configuration: Configuration, logger: Logger = Logger(label: "wmq.mock"),
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, clock: LiveClock = .system) {
        self.clock = clock
        var core = configuration.core
        if configuration.mode == .works && core.redeliveryInterval == nil { core.redeliveryInterval = .seconds(10) }
        self.configuration = configuration
        self.core = BrokerCore(configuration: core)
        chatAgent = ChatTopicAgent(configuration: configuration.chat)
        self.logger = logger
        self.group = group
        (scenarioResults, scenarioResultsContinuation) = AsyncStream.makeStream(of: ScenarioResult.self)
    }

    // MARK: Listeners

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
            .serverChannelInitializer { channel in options.pace(channel) }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [weak self] channel in
                guard let self else { return channel.eventLoop.makeSucceededVoidFuture() }
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
                    // A handshake that dribbles in (a byte a second) is cut off with the same timeout as a missing CONNECT.
                    let handshakeTimeout = channel.eventLoop.scheduleTask(in: TimeAmount(configuration.core.connectionTimeout)) {
                        channel.close(promise: nil)
                    }
                    // Answers requests that were not upgraded; leaves once one was, as frames follow.
                    let refusal = HTTPRequestHandler(configuration: configuration, broker: self, handshakeTimeout: handshakeTimeout)
                    let bound = NIOLoopBound(refusal, eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            handshakeTimeout.cancel()
                            context.pipeline.syncOperations.removeHandler(bound.value, promise: nil)
                        }))
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
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.maxMessagesPerRead, value: UInt(options.acceptDelay > .zero ? 1 : 4))
            .serverChannelInitializer { channel in options.pace(channel) }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
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
                    Task { await self?.serveTCP(connection, accepting: options.accepting) }
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
            .childChannelInitializer { [weak self] channel in
                guard let self else { return channel.eventLoop.makeSucceededVoidFuture() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HTTPRequestHandler(configuration: configuration, broker: self, handshakeTimeout: nil))
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

    // MARK: Injecting

    /// Publishes as the server, to every matching subscription.
    public func publish(_ publish: PublishPacket) {
        perform(core.publish(publish, now: clock.now))
    }

    /// Works mode: pushes a notification payload to every connected session, at QoS 1.
    /// Returns how many sessions it went to.
    @discardableResult
    public func pushToAll(topic: String = "notification", payload: ByteBuffer) -> Int {
        let clients = core.connectedClients
        if clients.isEmpty && configuration.mode == .works {
            // Nobody yet: kept for the sessions that connect later, as the service delivers
            // what waited for a user when they come online (the oldest go past the bound).
            heldQueue.append((topic, payload))
            if heldQueue.count > Self.maximumHeld { heldQueue.removeFirst(heldQueue.count - Self.maximumHeld) }
        }
        for client in clients {
            perform(core.push(PublishPacket(qos: .atLeastOnce, topicName: topic, payload: payload), to: client, now: clock.now))
        }
        return clients.count
    }

    /// Works notifications pushed while no client was connected, for the next that connects.
    var heldQueue: [(topic: String, payload: ByteBuffer)] = []
    public static let maximumHeld = 100
    /// How many notifications wait for a client to connect.
    public var heldNotifications: Int { heldQueue.count }

    /// A client's session began: what was held goes to it (Works mode).
    private func deliverHeld(to connection: BrokerCore.ConnectionID) {
        guard !heldQueue.isEmpty, let client = core.clientID(of: connection) else { return }
        let waiting = heldQueue
        heldQueue = []
        logger.info("held notifications delivered", metadata: ["client": "\(client)", "count": "\(waiting.count)"])
        for (topic, payload) in waiting {
            perform(core.push(PublishPacket(qos: .atLeastOnce, topicName: topic, payload: payload), to: client, now: clock.now))
        }
    }

    public var connectedClients: [String] { core.connectedClients.sorted() }

    /// A session's topic filters and their QoS.
    public func subscriptions(of clientID: String) -> [String: QoS]? { core.subscriptions(of: clientID) }

    /// A session's unacknowledged and queued messages.
    public func pending(of clientID: String) -> (inflight: Int, queued: Int)? { core.pending(of: clientID) }

    /// Pushes a payload to one session at QoS 1; false when no such session is connected.
    @discardableResult
    public func push(topic: String = "notification", payload: ByteBuffer, to clientID: String) -> Bool {
        guard core.connectedClients.contains(clientID) else { return false }
        perform(core.push(PublishPacket(qos: .atLeastOnce, topicName: topic, payload: payload), to: clientID, now: clock.now))
        return true
    }

    /// Disconnects a client as if its connection was lost (its will goes out); false when not connected.
    @discardableResult
    public func kick(_ clientID: String) -> Bool {
        let actions = core.kick(clientID, now: clock.now)
        perform(actions)
        return !actions.isEmpty
    }

    /// A Works notification payload from simple JSON, with ids unique to this broker.
    func notificationBuilder(_ request: JSONValue) throws(NotificationBuilder.Refusal) -> ByteBuffer {
        try builder.payload(from: request, now: Self.epochMilliseconds())
    }

    static func epochMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Open transport connections (upgraded WebSocket or TCP), with or without CONNECT.
    public var openConnections: Int { connections.count }

    // MARK: Connections

    private func open(_ channel: any Channel, transport: Transport, writer: FrameBytesWriter? = nil,
                      accepting: BrokerCore.AcceptedVersions) -> BrokerCore.ConnectionID {
        nextConnection += 1
        connections[nextConnection] = Connection(channel: channel, transport: transport,
                                                 described: Self.describe(nextConnection, channel), frameWriter: writer)
        core.connectionOpened(nextConnection, now: clock.now, accepting: accepting)
        if !viewers.isEmpty { showConnection(nextConnection, opened: true) }
        return nextConnection
    }

    private func serveWebSocket(_ frames: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, channel: any Channel,
                                writer: FrameBytesWriter, accepting: BrokerCore.AcceptedVersions) async {
        let id = open(channel, transport: .webSocket, writer: writer, accepting: accepting)
        var decoder = MQTTDecoder(configuration: .init(maximumPacketSize: configuration.core.maximumPacketSize))
        do {
            try await frames.executeThenClose { inbound, _ in
                frames: for try await frame in inbound {
                    switch frame.opcode {
                    case .binary, .continuation:
                        decoder.append(frame.unmaskedData)
                        while let packet = try decoder.next() {
                            received(packet, from: id, size: decoder.lastPacketRange.count)
                            if connections[id] == nil { break frames }
                        }
                    case .text:
                        logger.notice("text frame: MQTT travels in binary frames only", metadata: ["connection": "\(id)"])
                        break frames
                    case .ping:
                        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData), promise: nil)
                    case .connectionClose:
                        var echo = ByteBuffer()
                        if let code = frame.unmaskedData.getInteger(at: frame.unmaskedData.readerIndex, as: UInt16.self) { echo.writeInteger(code) }
                        try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: echo)).get()
                        break frames
                    default:
                        continue
                    }
                }
            }
        } catch {
            failed(id, error)
        }
        closed(id)
    }

    private func serveTCP(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, accepting: BrokerCore.AcceptedVersions) async {
        let id = open(connection.channel, transport: .tcp, accepting: accepting)
        var decoder = MQTTDecoder(configuration: .init(maximumPacketSize: configuration.core.maximumPacketSize))
        do {
            try await connection.executeThenClose { inbound, _ in
                bytes: for try await bytes in inbound {
                    decoder.append(bytes)
                    while let packet = try decoder.next() {
                        received(packet, from: id, size: decoder.lastPacketRange.count)
                        if connections[id] == nil { break bytes }
                    }
                }
            }
        } catch {
            failed(id, error)
        }
        closed(id)
    }

    private func received(_ packet: MQTTPacket, from id: BrokerCore.ConnectionID, size: Int) {
        scenarioSaw(packet, on: id)
        if !viewers.isEmpty { show(packet, on: id, direction: .clientToServer, size: size) }
        let actions = core.received(packet, from: id, now: clock.now)
        // Cached for the write path: the core fixes the version with the first CONNECT.
        if case .connect = packet, let version = core.protocolVersion(on: id) { connections[id]?.version = version }
        perform(actions)
        if configuration.mode == .chat, case .publish(let publish) = packet, connections[id] != nil {
            answerAsAICore(publish)
        }
    }

    /// Chat mode: the AI core's answer to a client's publish, each publish at its time.
    private func answerAsAICore(_ publish: PublishPacket) {
        let outgoing = chatAgent.received(topic: publish.topicName, payload: publish.payload, now: Self.epochMilliseconds())
        guard !outgoing.isEmpty else { return }
        let start = clock.now
        Task {
            for item in outgoing {
                let wait = item.after - (self.clock.now - start)
                if wait > .zero { await self.clock.sleep(for: wait) }
                self.publish(item.publishPacket)
            }
        }
    }

    /// Chat mode: the core's retained status, once the first listener is up.
    private func announceAICore() {
        guard configuration.mode == .chat, !chatAnnounced else { return }
        chatAnnounced = true
        for item in chatAgent.announcements(now: Self.epochMilliseconds()) { publish(item.publishPacket) }
    }

    /// The connection's bytes could not be decoded: an MQTT 5 client is told why (DISCONNECT
    /// 0x81 or 0x95) before the connection closes.
    private func failed(_ id: BrokerCore.ConnectionID, _ error: any Error) {
        logger.notice("connection error", metadata: ["connection": "\(id)", "error": "\(error)"])
        guard let error = error as? MQTTWireError else { return }
        perform(core.violation(on: id, code: BrokerCore.reasonCode(for: error), reason: error.reason, now: clock.now))
    }

    private func closed(_ id: BrokerCore.ConnectionID) {
        scenarioConnectionEnded(id)
        if !viewers.isEmpty { showConnection(id, opened: false, reason: "connection closed") }
        connections.removeValue(forKey: id)?.channel.close(promise: nil)
        perform(core.connectionClosed(id, now: clock.now))
    }

    /// Carries out the core's actions. `delaysAcknowledgements` is false for acknowledgements
    /// whose delay (a scenario's `delay_acks`, the admin API's fault) has already passed.
    func perform(_ actions: [BrokerCore.Action], delaysAcknowledgements: Bool = true) {
        // Writes are gathered per event loop and handed over in one task each: a message fanned
        // out to a thousand subscribers costs one hop per loop, not two per subscriber, and a
        // packet equal to the previous one (QoS 0 fan-out) is encoded once.
        var batches: [ObjectIdentifier: (loop: any EventLoop, writes: [Write])] = [:]
        var lastPacket: MQTTPacket?
        var lastVersion = ProtocolVersion.v3_1_1
        var lastBytes = ByteBuffer()
        var lastFrame: ByteBuffer?
        func dispatch() {
            for (key, batch) in batches {
                let writes = batch.writes
                let flusher = flushers[key] ?? LoopFlusher(loop: batch.loop)
                flushers[key] = flusher
                batch.loop.execute {
                    for write in writes { write.perform() }
                    flusher.flushSoon(writes.lazy.map(\.channel))
                }
            }
            batches = [:]
        }
        for action in actions {
            switch action {
            case .send(let id, let packet):
                if case .connack(let connack) = packet, connack.reasonCode.rawValue == 0, let scenario = configuration.scenario {
                    Task { await self.play(scenario, on: id) }
                }
                if case .connack(let connack) = packet, connack.reasonCode.rawValue == 0, !heldQueue.isEmpty {
                    // After the CONNACK is on its way.
                    Task { self.deliverHeld(to: id) }
                }
                switch packet {
                case .puback, .pubrec, .pubcomp:
                    let delay = delaysAcknowledgements ? max(plays[id]?.acknowledgementDelay ?? .zero, acknowledgementDelay) : .zero
                    if delay > .zero {
                        Task {
                            await self.clock.sleep(for: delay)
                            self.perform([.send(id, packet)], delaysAcknowledgements: false)
                        }
                        continue
                    }
                default:
                    break
                }
                // Fields read in place: a fan-out passes here once per subscriber.
                guard let index = connections.index(forKey: id) else { continue }
                let version = connections.values[index].version
                if packet != lastPacket || version != lastVersion {
                    // The core builds valid packets only.
                    guard let bytes = try? MQTTEncoder(version: version).encode(packet) else { continue }
                    lastPacket = packet
                    lastVersion = version
                    lastBytes = bytes
                    lastFrame = nil
                }
                if !viewers.isEmpty { show(packet, on: id, direction: .serverToClient, size: lastBytes.readableBytes) }
                let channel = connections.values[index].channel
                let write = connections.values[index].write(lastBytes, framed: {
                    if let lastFrame { return lastFrame }
                    let framed = Self.binaryFrame(lastBytes)
                    lastFrame = framed
                    return framed
                }())
                batches[ObjectIdentifier(channel.eventLoop), default: (channel.eventLoop, [])].writes.append(write)
            case .close(let id, let reason):
                dispatch()  // what was written before the close goes first
                logger.info("closing", metadata: ["connection": "\(id)", "reason": "\(reason)"])
                if !viewers.isEmpty { showConnection(id, opened: false, reason: reason) }
                if let channel = connections.removeValue(forKey: id)?.channel {
                    channel.flush()
                    channel.close(promise: nil)
                }
            }
        }
        dispatch()
    }

    /// Writes bytes as they are, in one binary frame on WebSocket (a scenario's `raw` step).
    func writeRaw(_ bytes: ByteBuffer, to id: BrokerCore.ConnectionID) {
        guard let connection = connections[id] else { return }
        let write = connection.write(bytes, framed: Self.binaryFrame(bytes))
        connection.channel.eventLoop.execute {
            write.perform()
            write.channel.flush()
        }
    }

    private func startTicker() {
        guard ticker == nil else { return }
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                guard let clock = self?.clock else { return }
                await clock.sleep(for: .milliseconds(250))
                await self?.tick()
            }
        }
    }

    private func tick() {
        perform(core.tick(now: clock.now))
    }
}
