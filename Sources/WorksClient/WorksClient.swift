public import Dialects
public import Logging
public import MQTTWire
public import NIOCore
public import NIOPosix

/// The Works notification client: MQTT 3.1.1 over WebSocket, cookie-authenticated.
///
/// ```swift
/// let client = WorksClient(configuration: configuration, logger: logger)
/// let task = Task { try await client.run() }      // connects, reconnects until cancelled
/// for await event in client.events { … }
/// ```
/// The MQTT rules live in ``MQTTClientSession`` (a value-type state machine); this actor owns
/// it, the transport and the reconnect loop, and turns what happens into ``events``.
public actor WorksClient {
    public enum ConnectionState: Sendable, Hashable, CustomStringConvertible {
        case connecting(attempt: Int)
        case connected(sessionPresent: Bool)
        case disconnected(reason: String)
        case waitingToReconnect(delay: Duration, attempt: Int)
        case stopped

        public var description: String {
            switch self {
            case .connecting(let attempt): "connecting (attempt \(attempt))"
            case .connected(let present): "connected" + (present ? " (session present)" : "")
            case .disconnected(let reason): "disconnected: \(reason)"
            case .waitingToReconnect(let delay, let attempt): "reconnecting in \(delay) (attempt \(attempt))"
            case .stopped: "stopped"
            }
        }
    }

    public let configuration: WorksClientConfiguration
    /// Every event, in order. One consumer; the callbacks below see the same events.
    public nonisolated let events: AsyncStream<WorksClientEvent>
    private let continuation: AsyncStream<WorksClientEvent>.Continuation
    private let logger: Logger
    private let group: any EventLoopGroup
    private let tap: (any ByteTap)?

    private var session: MQTTClientSession
    private var inbox: WorksInbox
    private var transport: WebSocketTransport?
    private var connectWaiters: [CheckedContinuation<Void, any Error>] = []
    private var publishWaiters: [UInt16: CheckedContinuation<Void, any Error>] = [:]
    private var subscribeWaiters: [UInt16: CheckedContinuation<SubAckPacket, any Error>] = [:]
    private var connectionTask: Task<WorksClientError, Never>?
    private var stopping = false
    /// Why the session closed the current connection, when it did (a refused CONNACK, …).
    private var closingError: WorksClientError?

    private var onMessage: (@Sendable (ReceivedMessage) -> Void)?
    private var onConnect: (@Sendable (Bool) -> Void)?
    /// Secrets in what the client logs (the URL's query parameters) as pseudonyms; nil shows them.
    private let redactor: Redactor?
    private var onDisconnect: (@Sendable (String) -> Void)?
    private var onError: (@Sendable (WorksClientError) -> Void)?

    /// - Parameters:
    ///   - redactor: annotations show secrets as pseudonyms made with it; nil shows them.
    ///   - tap: sees every byte after TLS (the recorder, the live view).
    public init(configuration: WorksClientConfiguration, logger: Logger = Logger(label: "wmq.client"),
                redactor: Redactor? = Redactor(key: Array("wmq-client".utf8)), tap: (any ByteTap)? = nil,
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.logger = logger
        self.group = eventLoopGroup
        self.tap = tap
        self.redactor = redactor
        session = MQTTClientSession(configuration: configuration.mqtt)
        inbox = WorksInbox(deduplicationWindow: configuration.deduplicationWindow, redactor: redactor)
        (events, continuation) = AsyncStream.makeStream(of: WorksClientEvent.self)
    }

    // MARK: Callbacks, in the seed's style

    /// Called for every message delivered (after de-duplication).
    public func onMessage(_ handler: @escaping @Sendable (ReceivedMessage) -> Void) { onMessage = handler }
    /// Called on every CONNACK that accepted the session, with its session-present flag.
    public func onConnect(_ handler: @escaping @Sendable (Bool) -> Void) { onConnect = handler }
    /// Called when a connection ends, with the reason.
    public func onDisconnect(_ handler: @escaping @Sendable (String) -> Void) { onDisconnect = handler }
    public func onError(_ handler: @escaping @Sendable (WorksClientError) -> Void) { onError = handler }

    // MARK: Lifecycle

    /// Connects and keeps the session up, reconnecting with backoff after every loss, until
    /// the task is cancelled, ``disconnect()`` is called, a non-retryable error happens
    /// (refused cookies or credentials: thrown) or the reconnect attempts are used up (thrown).
    public func run() async throws(WorksClientError) {
        var backoff = ReconnectBackoff(policy: configuration.reconnect)
        var random = SystemRandomNumberGenerator()
        var attempt = 1
        stopping = false
        defer { emit(.stateChanged(.stopped)) }
        while !Task.isCancelled && !stopping {
            var upFor: Duration?
            do throws(WorksClientError) {
                try await connect(attempt: attempt)
                let connectedSince = ContinuousClock.now
                let error = await waitForConnectionEnd()
                upFor = ContinuousClock.now - connectedSince
                if stopping || Task.isCancelled { break }
                if !error.isRetryable { throw error }
            } catch {
                if stopping || Task.isCancelled { break }
                guard error.isRetryable else { throw error }
            }
            guard let delay = backoff.nextDelay(connectedFor: upFor, using: &random) else {
                throw WorksClientError(.connection, "gave up after \(configuration.reconnect.maximumAttempts) reconnect attempt(s)")
            }
            attempt = backoff.attempts + 1
            emit(.stateChanged(.waitingToReconnect(delay: delay, attempt: attempt)))
            logger.info("reconnecting", metadata: ["delay": "\(delay)", "attempt": "\(attempt)"])
            do { try await Task.sleep(for: delay) } catch { break }
        }
        await disconnect()
    }

    /// Opens one connection and returns once the server accepted the session (CONNACK 0).
    public func connect() async throws(WorksClientError) {
        stopping = false
        try await connect(attempt: 1)
    }

    /// Sends DISCONNECT, closes the WebSocket and ends ``run()``.
    public func disconnect() async {
        stopping = true
        guard let transport else { return }
        transport.send(session.disconnect(now: .now).compactMap { if case .send(let packet) = $0 { packet } else { nil } })
        await transport.close()
        _ = await connectionTask?.value
    }

    /// Ends the event stream; the client cannot be used after.
    public func finish() {
        continuation.finish()
    }

    // MARK: Publish and subscribe, for brokers that take them

    /// Publishes; for QoS 1 and 2 returns when the server acknowledged (PUBACK, PUBCOMP).
    public func publish(topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false) async throws(WorksClientError) {
        guard let transport else { throw WorksClientError(.connection, "not connected") }
        let (identifier, actions) = try session.publish(topic: topic, payload: payload, qos: qos, retain: retain, now: .now)
        perform(actions, on: transport)
        guard let identifier else { return }
        do {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
                publishWaiters[identifier] = waiter
            }
        } catch let error as WorksClientError {
            throw error
        } catch {
            throw WorksClientError(.connection, "\(error)")
        }
    }

    /// Subscribes and returns the SUBACK.
    public func subscribe(_ filters: [(topic: String, qos: QoS)]) async throws(WorksClientError) -> SubAckPacket {
        guard let transport else { throw WorksClientError(.connection, "not connected") }
        let (identifier, actions) = try session.subscribe(filters.map { .init(topicFilter: $0.topic, qos: $0.qos) }, now: .now)
        perform(actions, on: transport)
        do {
            return try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<SubAckPacket, any Error>) in
                subscribeWaiters[identifier] = waiter
            }
        } catch let error as WorksClientError {
            throw error
        } catch {
            throw WorksClientError(.connection, "\(error)")
        }
    }

    /// What the session keeps in flight (for tests and the live view).
    public var inFlight: (incomingQoS2: Set<UInt16>, outgoing: [UInt16]) { (session.incomingQoS2, session.outgoingInFlight) }

    // MARK: One connection

    private func connect(attempt: Int) async throws(WorksClientError) {
        if transport != nil { return }
        emit(.stateChanged(.connecting(attempt: attempt)))
        let url = "\(configuration.webSocket.url)"
        logger.info("connecting", metadata: ["url": "\(redactor.map { $0.redact(target: url) } ?? url)", "attempt": "\(attempt)"])
        let transport: WebSocketTransport
        do {
            transport = try await WebSocketTransport.connect(configuration.webSocket, group: group, tap: tap)
        } catch {
            report(error)
            throw error
        }
        self.transport = transport
        closingError = nil
        perform(session.transportOpened(now: .now), on: transport)
        connectionTask = Task { await self.serve(transport) }
        do {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
                if case .connected = session.state { waiter.resume() } else { connectWaiters.append(waiter) }
            }
        } catch let error as WorksClientError {
            throw error
        } catch {
            throw WorksClientError(.connection, "\(error)")
        }
    }

    private func waitForConnectionEnd() async -> WorksClientError {
        guard let connectionTask else { return WorksClientError(.connection, "not connected") }
        return await connectionTask.value
    }

    /// Reads the connection until it ends; ticks the session's timers meanwhile.
    private func serve(_ transport: WebSocketTransport) async -> WorksClientError {
        let ticker = Task { [weak self, period = tickPeriod] in
            while !Task.isCancelled {
                try? await Task.sleep(for: period)
                await self?.tick(transport)
            }
        }
        defer { ticker.cancel() }
        var ending = WorksClientError(.connection, "the server closed the connection")
        var reader = MQTTFrameReader(maximumPacketSize: configuration.mqtt.maximumPacketSize)
        do {
            try await transport.frames.executeThenClose { inbound, _ in
                frames: for try await frame in inbound {
                    switch reader.read(frame) {
                    case .packets(let packets):
                        for packet in packets {
                            emit(.packet(packet, .received))
                            logReceived(packet)
                            perform(session.received(packet, now: .now), on: transport)
                        }
                    case .reply(let reply, let error):
                        transport.channel.writeAndFlush(reply, promise: nil)
                        if let error {
                            ending = error
                            break frames
                        }
                    case .failed(let error):
                        ending = error
                        break frames
                    }
                    if closingError != nil { break }
                }
            }
        } catch {
            ending = WorksClientError(.connection, "\(error)")
        }
        await transport.close()
        if let closingError {
            ending = closingError  // reported when the session asked to close
        } else if stopping {
            ending = WorksClientError(.connection, "closed by the client")
        } else {
            report(ending)
        }
        connectionEnded(ending)
        return ending
    }

    private var tickPeriod: Duration {
        let mqtt = configuration.mqtt
        return max(.milliseconds(10), min(.seconds(1), min(mqtt.pingInterval, mqtt.pingTimeout, mqtt.connAckTimeout) / 4))
    }

    private func tick(_ transport: WebSocketTransport) {
        guard self.transport === transport else { return }
        perform(session.tick(now: .now), on: transport)
    }

    private func perform(_ actions: [MQTTClientSession.Action], on transport: WebSocketTransport) {
        var outgoing: [MQTTPacket] = []
        for action in actions {
            switch action {
            case .send(let packet):
                outgoing.append(packet)
                emit(.packet(packet, .sent))
            case .deliver(let publish):
                let event = inbox.receive(publish, now: .now)
                switch event {
                case .notification(_, let message), .readReceipt(_, let message), .channelMessage(_, let message), .otherMessage(let message):
                    logMessage(message)
                    onMessage?(message)
                case .duplicate(let id):
                    logger.debug("duplicate notification dropped", metadata: ["notification-id": "\(id)"])
                default:
                    break
                }
                // Delivered before the acknowledgement that follows in `actions` goes out.
                continuation.yield(event)
            case .connected(let sessionPresent):
                emit(.stateChanged(.connected(sessionPresent: sessionPresent)))
                logger.info("connected", metadata: ["session-present": "\(sessionPresent)"])
                onConnect?(sessionPresent)
                for waiter in connectWaiters { waiter.resume() }
                connectWaiters = []
            case .subscribed(let suback):
                subscribeWaiters.removeValue(forKey: suback.packetIdentifier)?.resume(returning: suback)
            case .publishCompleted(let identifier):
                publishWaiters.removeValue(forKey: identifier)?.resume()
            case .warning(let text):
                logger.warning("\(text)")
                emit(.warning(text))
            case .close(let error):
                transport.send(outgoing)
                outgoing = []
                guard closingError == nil else { continue }
                closingError = error
                report(error)
                transport.channel.close(promise: nil)
            }
        }
        transport.send(outgoing)
    }

    private func connectionEnded(_ error: WorksClientError) {
        session.transportClosed()
        transport = nil
        emit(.stateChanged(.disconnected(reason: error.reason)))
        logger.info("disconnected", metadata: ["reason": "\(error.reason)"])
        onDisconnect?(error.reason)
        for waiter in connectWaiters { waiter.resume(throwing: error) }
        connectWaiters = []
        for waiter in subscribeWaiters.values { waiter.resume(throwing: error) }
        subscribeWaiters = [:]
        // A persistent session completes in-flight publishes after the reconnect; a clean one cannot.
        if !configuration.mqtt.persistentSession {
            for waiter in publishWaiters.values { waiter.resume(throwing: error) }
            publishWaiters = [:]
        }
    }

    private func report(_ error: WorksClientError) {
        logger.error("\(error)")
        emit(.error(error))
        onError?(error)
    }

    private func emit(_ event: WorksClientEvent) {
        continuation.yield(event)
    }

    // MARK: Log lines in the seed's words

    private func logReceived(_ packet: MQTTPacket) {
        guard logger.logLevel <= .debug else { return }
        if case .publish(let publish) = packet {
            logger.debug("MQTT: PUBLISH (DUP: \(publish.dup ? 1 : 0), QoS: \(publish.qos.rawValue), Retain: \(publish.retain ? 1 : 0), Length: \(publish.payload.readableBytes) bytes)")
            logger.debug("Topic: \(publish.topicName)")
        } else {
            logger.debug("MQTT: \(packet.type)")
        }
    }

    private func logMessage(_ message: ReceivedMessage) {
        guard logger.logLevel <= .info else { return }
        if case .notification(let notification)? = message.payload {
            let key = notification.locKey.map { " (\($0.rawValue))" } ?? ""
            let name = notification.type.displayName.map { " (\($0.japanese))" } ?? ""
            logger.info("Notification type: \(notification.type.rawValue)\(key)\(name)")
        }
        logger.info("\(message.annotation.summary)")
    }
}
