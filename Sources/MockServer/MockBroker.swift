public import Broker
import Capture
import Dialects
#if canImport(Glibc)
import Glibc
public import LiveWebSocket
#endif
public import LiveClock
public import Logging
public import MockAgents
public import MockFiles
public import MQTTWire
import NIOConcurrencyHelpers
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
        /// Which browser pages may use the page, the admin API and the WebSocket endpoints, and
        /// by which host names: by default the mock's own page only (`--allow-origin`,
        /// `--allow-host` add more).
        public var access = BrowserAccess.standard
        /// Open connections at once over all listeners (one more is refused: 503 on HTTP
        /// listeners, closed on TCP), and the HTTP timeouts: a request head is due within
        /// `core.connectionTimeout` of the connection's start or the last answer, a body within
        /// `bodyTimeout` of its head.
        public var maximumConnections = HTTPConnectionLimits.connectionsTheDescriptorsAllow
        public var bodyTimeout: Duration = .seconds(10)
        /// Bytes written to one connection and not yet taken by its client (mosquitto's
        /// `max_queued_bytes`): past it, live QoS 0 messages to that client are dropped and
        /// counted, retained messages wait until it reads, and a client that stays that far
        /// behind for `stuckTimeout` is disconnected (5.0: DISCONNECT 0x97, quota exceeded).
        public var maximumQueuedBytes = 4 << 20
        public var stuckTimeout: Duration = .seconds(30)

        /// NIO's writability marks for a connection: not writable past `maximumQueuedBytes`
        /// unread, writable again below half of it.
        var unreadBytesWaterMark: ChannelOptions.Types.WriteBufferWaterMark {
            let high = max(2, maximumQueuedBytes)
            return .init(low: high / 2, high: high)
        }

        var httpLimits: HTTPConnectionLimits {
            HTTPConnectionLimits(requestHead: TimeAmount(core.connectionTimeout), body: TimeAmount(bodyTimeout),
                                 maximumConnections: maximumConnections)
        }

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
    /// Counts the open connections of every listener against `maximumConnections`.
    public nonisolated let limiter: ConnectionLimiter
    var core: BrokerCore
    /// Open transport connections, upgraded WebSocket or TCP, with or without CONNECT.
    var connections: [BrokerCore.ConnectionID: Connection] = [:]
    /// Scenarios being played, by connection.
    var plays: [BrokerCore.ConnectionID: ScenarioPlay] = [:]
    /// Every finished play of the scenario, in order.
    public nonisolated let scenarioResults: AsyncStream<ScenarioResult>
    let scenarioResultsContinuation: AsyncStream<ScenarioResult>.Continuation
    var nextConnection = 0
    var listeners: [any Channel] = []
    var ticker: Task<Void, Never>?
    /// The time the broker goes by.
    public nonisolated let clock: LiveClock
    let logger: Logger
    let group: any EventLoopGroup
    var builder = NotificationBuilder()
    /// One per event loop: flushes its channels once after the writes queued on it so far.
    var flushers: [ObjectIdentifier: LoopFlusher] = [:]
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
        /// QoS 0 messages dropped because the client was too far behind (read on any thread).
        let dropped = DropCounter()
        /// Packets held back while the client is behind: retained messages, and what follows
        /// them (in order), sent as it reads.
        var parked = CircularBuffer<MQTTPacket>()
        /// Since when the connection has been too far behind, if it is.
        var behindSince: ContinuousClock.Instant?

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
        /// A live QoS 0 message: dropped, and counted here, when the client is too far behind.
        var droppedInto: DropCounter? = nil

        /// On the channel's event loop.
        func perform() {
            if let droppedInto, !channel.isWritable {
                droppedInto.add()
                return
            }
            if let frameWriter { frameWriter.write(bytes) } else { channel.write(bytes, promise: nil) }
        }
    }

    /// A count shared between the broker and an event loop.
    final class DropCounter: Sendable {
        private let value = NIOLockedValueBox(0)
        func add(_ count: Int = 1) { value.withLockedValue { $0 += count } }
        var count: Int { value.withLockedValue { $0 } }
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
        var configuration = configuration
        if !configuration.access.reports {
            // A refused page or host name is explained in the log, once each.
            configuration.access = configuration.access.reporting { [logger] text in logger.warning("\(text)") }
        }
        self.configuration = configuration
        limiter = ConnectionLimiter(maximum: configuration.maximumConnections) { [logger] text in logger.warning("\(text)") }
        self.core = BrokerCore(configuration: core)
        chatAgent = ChatTopicAgent(configuration: configuration.chat)
        self.logger = logger
        self.group = group
        (scenarioResults, scenarioResultsContinuation) = AsyncStream.makeStream(of: ScenarioResult.self)
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
    func deliverHeld(to connection: BrokerCore.ConnectionID) {
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

}
