public import MQTTWire
public import NIOCore

/// The client side of an MQTT 3.1.1 session as a value-type state machine: the caller
/// reports what happened (transport up, packet received, time passed, transport down) and
/// performs the ``Action``s returned. No I/O, no clocks of its own, so every rule is
/// unit-tested with plain values (after swift-websocket's connection state machine).
///
/// What it fixes in the seed client (docs/protocols.md §1): the CONNACK is checked; QoS 2 gets
/// PUBREC → PUBREL → PUBCOMP, never PUBACK; a missing PINGRESP is noticed (and ends the
/// connection when PINGRESP is `required`); a server DISCONNECT is a connection loss.
public struct MQTTClientSession: Sendable {
    /// The session's settings: who the client says it is, how it keeps the session alive.
    public typealias Configuration = MQTTSettings

    /// Whether a server that never answers PINGREQ ends the connection. The Works service may
    /// never answer (docs/protocols.md §1 says implementations disagree), so `optional` is the default.
    public enum PingResponsePolicy: String, Sendable, Hashable, CaseIterable {
        /// No PINGRESP within the timeout is a connection loss.
        case required
        /// No PINGRESP is reported once, and the connection stays.
        case optional
    }

    /// What the caller must do, in order.
    public enum Action: Sendable, Hashable {
        /// Write this packet to the server.
        case send(MQTTPacket)
        /// Hand this message to the application (de-duplication happens above this layer).
        case deliver(PublishPacket)
        /// The server accepted the session.
        case connected(sessionPresent: Bool)
        /// The server answered a SUBSCRIBE.
        case subscribed(SubAckPacket)
        /// An outgoing QoS 1 or 2 PUBLISH is complete.
        case publishCompleted(packetIdentifier: UInt16)
        /// Something the user should know that does not end the connection.
        case warning(String)
        /// Close the transport: the session cannot go on on this connection.
        case close(WorksClientError)
    }

    public enum State: Sendable, Hashable {
        case disconnected
        case awaitingConnAck(since: ContinuousClock.Instant)
        case connected(since: ContinuousClock.Instant)
    }

    /// Where an outgoing QoS 1/2 message stands.
    enum OutgoingStage: Sendable, Hashable {
        case awaitingAck(PublishPacket)      // QoS 1: PUBACK; QoS 2: PUBREC
        case awaitingComplete                // QoS 2: PUBREL sent, PUBCOMP due
    }

    public let configuration: Configuration
    public private(set) var state: State = .disconnected
    /// QoS 2 messages received and delivered whose PUBREL has not come yet (method B of
    /// MQTT 3.1.1 §4.3.3): a PUBLISH with one of these identifiers is a redelivery.
    public private(set) var incomingQoS2: Set<UInt16> = []
    /// Outgoing QoS 1/2 messages not yet acknowledged, in the order they were sent.
    private(set) var outgoing: [UInt16: OutgoingStage] = [:]
    private var outgoingOrder: [UInt16] = []
    private var nextPacketIdentifier: UInt16 = 1
    private var pendingSubscribe: UInt16?
    private var lastSent: ContinuousClock.Instant?
    private var pingSentAt: ContinuousClock.Instant?
    private var reportedMissingPingResponse = false

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Identifiers of outgoing messages still in flight.
    public var outgoingInFlight: [UInt16] { outgoingOrder }

    // MARK: Events

    /// The transport is open (WebSocket upgraded): send CONNECT.
    public mutating func transportOpened(now: ContinuousClock.Instant) -> [Action] {
        state = .awaitingConnAck(since: now)
        pingSentAt = nil
        reportedMissingPingResponse = false
        pendingSubscribe = nil
        if !configuration.persistentSession {
            // A clean session starts with no state on either side [MQTT-3.1.2-6].
            incomingQoS2 = []
            outgoing = [:]
            outgoingOrder = []
        }
        let seconds = configuration.keepAlive.components.seconds
        let connect = ConnectPacket(
            protocolVersion: .v3_1_1, cleanStart: !configuration.persistentSession,
            keepAlive: UInt16(clamping: seconds), clientIdentifier: configuration.clientIdentifier,
            username: configuration.username, password: configuration.password.map { ByteBuffer(string: $0) })
        return [send(.connect(connect), now: now)]
    }

    /// The transport closed, for whatever reason. State that a persistent session keeps
    /// (in-flight QoS 1/2 both ways) survives for the next ``transportOpened(now:)``.
    public mutating func transportClosed() {
        state = .disconnected
        pingSentAt = nil
        pendingSubscribe = nil
    }

    /// A packet arrived from the server.
    public mutating func received(_ packet: MQTTPacket, now: ContinuousClock.Instant) -> [Action] {
        switch state {
        case .disconnected:
            return []
        case .awaitingConnAck:
            guard case .connack(let connack) = packet else {
                return [.close(WorksClientError(.packet, "expected CONNACK, received \(packet.type) [MQTT-3.2.0-1]"))]
            }
            return connAckReceived(connack, now: now)
        case .connected:
            return receivedWhileConnected(packet, now: now)
        }
    }

    /// Time passed: sends PINGREQ when due, notices a missing PINGRESP or CONNACK.
    public mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        switch state {
        case .disconnected:
            return []
        case .awaitingConnAck(let since):
            if now - since >= configuration.connAckTimeout {
                return [.close(WorksClientError(.connection, "no CONNACK within \(configuration.connAckTimeout)"))]
            }
            return []
        case .connected:
            var actions: [Action] = []
            if let pingSentAt, now - pingSentAt >= configuration.pingTimeout {
                switch configuration.pingResponse {
                case .required:
                    return [.close(WorksClientError(.connection, "no PINGRESP within \(configuration.pingTimeout)"))]
                case .optional:
                    self.pingSentAt = nil
                    if !reportedMissingPingResponse {
                        reportedMissingPingResponse = true
                        actions.append(.warning("the server did not answer PINGREQ within \(configuration.pingTimeout); PINGRESP is optional, so the connection stays"))
                    }
                }
            }
            if let lastSent, now - lastSent >= configuration.pingInterval, pingSentAt == nil {
                pingSentAt = now
                actions.append(send(.pingreq, now: now))
            }
            return actions
        }
    }

    /// When ``tick(now:)`` should be called next, or nil when nothing is timed.
    public var nextDeadline: ContinuousClock.Instant? {
        switch state {
        case .disconnected:
            return nil
        case .awaitingConnAck(let since):
            return since + configuration.connAckTimeout
        case .connected:
            let ping = pingSentAt == nil ? lastSent.map { $0 + configuration.pingInterval } : nil
            let timeout = pingSentAt.map { $0 + configuration.pingTimeout }
            return [ping, timeout].compactMap { $0 }.min()
        }
    }

    /// Publishes to the server; QoS 1 and 2 are tracked until acknowledged and resent
    /// (DUP set) after a reconnect to a persistent session.
    public mutating func publish(topic: String, payload: ByteBuffer, qos: QoS, retain: Bool = false,
                                 now: ContinuousClock.Instant) throws(WorksClientError) -> (packetIdentifier: UInt16?, actions: [Action]) {
        guard case .connected = state else { throw WorksClientError(.connection, "not connected") }
        var packet = PublishPacket(dup: false, qos: qos, retain: retain, topicName: topic, packetIdentifier: nil, payload: payload)
        guard qos != .atMostOnce else { return (nil, [send(.publish(packet), now: now)]) }
        let identifier = try allocatePacketIdentifier()
        packet.packetIdentifier = identifier
        outgoing[identifier] = .awaitingAck(packet)
        outgoingOrder.append(identifier)
        return (identifier, [send(.publish(packet), now: now)])
    }

    /// Subscribes to more topic filters on the current connection.
    public mutating func subscribe(_ subscriptions: [SubscribePacket.Subscription],
                                   now: ContinuousClock.Instant) throws(WorksClientError) -> (packetIdentifier: UInt16, actions: [Action]) {
        guard case .connected = state else { throw WorksClientError(.connection, "not connected") }
        guard !subscriptions.isEmpty else { throw WorksClientError(.config, "SUBSCRIBE needs at least one topic filter") }
        let identifier = try allocatePacketIdentifier()
        return (identifier, [send(.subscribe(SubscribePacket(packetIdentifier: identifier, subscriptions: subscriptions)), now: now)])
    }

    /// The DISCONNECT to send before closing on purpose.
    public mutating func disconnect(now: ContinuousClock.Instant) -> [Action] {
        guard case .connected = state else { return [] }
        return [send(.disconnect(DisconnectPacket()), now: now)]
    }

    // MARK: Rules

    private mutating func connAckReceived(_ connack: ConnAckPacket, now: ContinuousClock.Instant) -> [Action] {
        switch connack.reasonCode.rawValue {
        case 0:
            break
        case 4, 5:
            // 3.1.1 return codes: bad user name or password, not authorised.
            return [.close(WorksClientError(.authentication, "the server refused the login: CONNACK return code \(connack.reasonCode.rawValue) (\(Self.connAckMeaning(connack.reasonCode.rawValue)))"))]
        case 3:
            return [.close(WorksClientError(.connection, "CONNACK return code 3 (server unavailable)"))]
        default:
            return [.close(WorksClientError(.connection, "the server refused the connection: CONNACK return code \(connack.reasonCode.rawValue) (\(Self.connAckMeaning(connack.reasonCode.rawValue)))", isRetryable: false))]
        }
        var actions: [Action] = []
        if !configuration.persistentSession && connack.sessionPresent {
            // [MQTT-3.2.2-1]: a clean session must be answered with session present 0.
            return [.close(WorksClientError(.packet, "CONNACK says a session is present although a clean session was asked for [MQTT-3.2.2-1]"))]
        }
        if !connack.sessionPresent && (!incomingQoS2.isEmpty || !outgoing.isEmpty) {
            // The server lost the session: ours is void too (MQTT 3.1.1 §3.2.2.2).
            actions.append(.warning("the server has no session for this client; \(incomingQoS2.count + outgoing.count) in-flight message(s) dropped"))
            incomingQoS2 = []
            outgoing = [:]
            outgoingOrder = []
        }
        state = .connected(since: now)
        actions.append(.connected(sessionPresent: connack.sessionPresent))
        // Resend what is still in flight, in the original order [MQTT-4.4.0-1].
        for identifier in outgoingOrder {
            switch outgoing[identifier] {
            case .awaitingAck(var packet)?:
                packet.dup = true
                actions.append(send(.publish(packet), now: now))
            case .awaitingComplete?:
                actions.append(send(.pubrel(PublishResponsePacket(packetIdentifier: identifier)), now: now))
            case nil:
                continue
            }
        }
        if !configuration.subscriptions.isEmpty && !connack.sessionPresent {
            if let identifier = try? allocatePacketIdentifier() {
                pendingSubscribe = identifier
                actions.append(send(.subscribe(SubscribePacket(packetIdentifier: identifier, subscriptions: configuration.subscriptions)), now: now))
            }
        }
        return actions
    }

    private mutating func receivedWhileConnected(_ packet: MQTTPacket, now: ContinuousClock.Instant) -> [Action] {
        switch packet {
        case .publish(let publish):
            return publishReceived(publish, now: now)
        case .pubrel(let response):
            // Method B: the message was delivered on PUBLISH; PUBREL releases the identifier.
            // An unknown identifier is answered too, so a retried PUBREL completes [MQTT-4.3.3-2].
            incomingQoS2.remove(response.packetIdentifier)
            return [send(.pubcomp(PublishResponsePacket(packetIdentifier: response.packetIdentifier)), now: now)]
        case .puback(let response):
            guard case .awaitingAck(let sent)? = outgoing[response.packetIdentifier], sent.qos == .atLeastOnce else {
                return [.warning("PUBACK for packet identifier \(response.packetIdentifier), which is not an unacknowledged QoS 1 message")]
            }
            completeOutgoing(response.packetIdentifier)
            return [.publishCompleted(packetIdentifier: response.packetIdentifier)]
        case .pubrec(let response):
            let expected: Bool
            switch outgoing[response.packetIdentifier] {
            case .awaitingAck(let sent)?: expected = sent.qos == .exactlyOnce
            case .awaitingComplete?: expected = true  // a repeated PUBREC gets the PUBREL again
            case nil: expected = false
            }
            guard expected else {
                return [.warning("PUBREC for packet identifier \(response.packetIdentifier), which is not an unacknowledged QoS 2 message")]
            }
            outgoing[response.packetIdentifier] = .awaitingComplete
            return [send(.pubrel(PublishResponsePacket(packetIdentifier: response.packetIdentifier)), now: now)]
        case .pubcomp(let response):
            guard case .awaitingComplete? = outgoing[response.packetIdentifier] else {
                return [.warning("PUBCOMP for packet identifier \(response.packetIdentifier), which awaits no PUBCOMP")]
            }
            completeOutgoing(response.packetIdentifier)
            return [.publishCompleted(packetIdentifier: response.packetIdentifier)]
        case .suback(let suback):
            if suback.packetIdentifier == pendingSubscribe { pendingSubscribe = nil }
            var actions: [Action] = [.subscribed(suback)]
            if suback.reasonCodes.contains(where: { $0.rawValue >= 0x80 }) {
                actions.append(.warning("the server refused a subscription (SUBACK \(suback.reasonCodes.map { String($0.rawValue) }.joined(separator: ", ")))"))
            }
            return actions
        case .unsuback:
            return []
        case .pingresp:
            pingSentAt = nil
            return []
        case .disconnect:
            // Not a 3.1.1 server packet, but some servers send it: a connection loss, not a hang.
            return [.close(WorksClientError(.connection, "the server sent DISCONNECT"))]
        case .connack:
            return [.close(WorksClientError(.packet, "a second CONNACK [MQTT-3.2.0-1]"))]
        case .connect, .subscribe, .unsubscribe, .pingreq, .auth:
            return [.close(WorksClientError(.packet, "the server sent \(packet.type), which only a client may send"))]
        }
    }

    private mutating func publishReceived(_ publish: PublishPacket, now: ContinuousClock.Instant) -> [Action] {
        switch publish.qos {
        case .atMostOnce:
            return [.deliver(publish)]
        case .atLeastOnce:
            guard let identifier = publish.packetIdentifier else {
                return [.close(WorksClientError(.packet, "QoS 1 PUBLISH without a packet identifier"))]
            }
            return [.deliver(publish), send(.puback(PublishResponsePacket(packetIdentifier: identifier)), now: now)]
        case .exactlyOnce:
            guard let identifier = publish.packetIdentifier else {
                return [.close(WorksClientError(.packet, "QoS 2 PUBLISH without a packet identifier"))]
            }
            let pubrec = send(.pubrec(PublishResponsePacket(packetIdentifier: identifier)), now: now)
            if incomingQoS2.contains(identifier) {
                // A redelivery before PUBREL: delivered once already [MQTT-4.3.3-2].
                return [pubrec]
            }
            incomingQoS2.insert(identifier)
            return [.deliver(publish), pubrec]
        }
    }

    private mutating func send(_ packet: MQTTPacket, now: ContinuousClock.Instant) -> Action {
        lastSent = now
        return .send(packet)
    }

    private mutating func completeOutgoing(_ identifier: UInt16) {
        outgoing[identifier] = nil
        outgoingOrder.removeAll { $0 == identifier }
    }

    private mutating func allocatePacketIdentifier() throws(WorksClientError) -> UInt16 {
        for _ in 0..<Int(UInt16.max) {
            let candidate = nextPacketIdentifier
            nextPacketIdentifier = nextPacketIdentifier == .max ? 1 : nextPacketIdentifier + 1
            if outgoing[candidate] == nil && candidate != pendingSubscribe { return candidate }
        }
        throw WorksClientError(.connection, "all 65,535 packet identifiers are in flight")
    }

    static func connAckMeaning(_ code: UInt8) -> String {
        switch code {
        case 1: "unacceptable protocol version"
        case 2: "identifier rejected"
        case 3: "server unavailable"
        case 4: "bad user name or password"
        case 5: "not authorized"
        default: "unknown return code"
        }
    }
}
