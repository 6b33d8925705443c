public import MQTTWire
import NIOCore

/// The MQTT 3.1.1 broker of `wmq-mock` as a value-type state machine: the transport reports
/// connections, packets and the passing of time; the core returns ``Action``s (packets to
/// send to a connection, connections to close). No I/O, no clock of its own, so every rule of
/// the spec is unit-tested with plain values (STYLE.md), in the spirit of `WorksClient`'s
/// `MQTTClientSession`.
///
/// Covered: CONNECT validation and session take-over, clean and persistent sessions,
/// SUBSCRIBE/UNSUBSCRIBE with wildcards, retained messages, QoS 0/1/2 both ways with an
/// in-flight window and queueing, delivery QoS = min(publish, subscription), wills, keep-alive
/// enforcement at 1.5 × keep-alive, DISCONNECT; for Works mode, pushing to a session with no
/// subscription and redelivering unacknowledged messages after a timeout.
public struct BrokerCore: Sendable {
    public typealias ConnectionID = Int

    public struct Configuration: Sendable, Hashable {
        /// Unacknowledged QoS 1/2 messages per session before the rest queue (rumqttd's `max_inflight_count`).
        public var maximumInflight: Int
        /// Messages kept per session while it is offline or its window is full; the oldest go first.
        public var maximumQueued: Int
        /// rumqttd's `max_client_id_len`.
        public var maximumClientIDLength: Int
        /// rumqttd's `max_payload_size`; a larger PUBLISH closes the connection.
        public var maximumPayloadSize: Int
        /// Whether PINGREQ is answered (the Works service may never answer it).
        public var answersPing: Bool
        /// Resend an unacknowledged QoS 1/2 message (DUP set) after this long; nil: only on reconnect, as MQTT 3.1.1 says.
        public var redeliveryInterval: Duration?
        /// A connection that sends no CONNECT within this long is closed (rumqttd's `connection_timeout_ms`).
        public var connectionTimeout: Duration

        public init(maximumInflight: Int = 100, maximumQueued: Int = 10_000, maximumClientIDLength: Int = 256,
                    maximumPayloadSize: Int = 8 << 20, answersPing: Bool = true, redeliveryInterval: Duration? = nil,
                    connectionTimeout: Duration = .seconds(5)) {
            self.connectionTimeout = connectionTimeout
            self.maximumInflight = max(maximumInflight, 1)
            self.maximumQueued = max(maximumQueued, 0)
            self.maximumClientIDLength = maximumClientIDLength
            self.maximumPayloadSize = maximumPayloadSize
            self.answersPing = answersPing
            self.redeliveryInterval = redeliveryInterval
        }
    }

    public enum Action: Sendable, Hashable {
        case send(ConnectionID, MQTTPacket)
        /// Close the connection; `reason` is for logs and the admin API.
        case close(ConnectionID, reason: String)
    }

    struct Outgoing: Sendable, Hashable {
        enum Stage: Sendable, Hashable { case awaitingAck, awaitingComplete }
        var packet: PublishPacket
        var stage: Stage
        var sentAt: ContinuousClock.Instant
    }

    struct Session: Sendable {
        var clientID: String
        var clean: Bool
        var connection: ConnectionID?
        var subscriptions: [String: QoS] = [:]
        var will: ConnectPacket.Will?
        var keepAlive: Duration = .zero
        var lastSeen: ContinuousClock.Instant
        var inflight: [UInt16: Outgoing] = [:]
        var inflightOrder: [UInt16] = []
        var queue: [PublishPacket] = []
        var incomingQoS2: Set<UInt16> = []
        var nextPacketIdentifier: UInt16 = 1
    }

    public let configuration: Configuration
    private(set) var sessions: [String: Session] = [:]
    /// Connections that sent CONNECT, to their client identifier.
    private var clients: [ConnectionID: String] = [:]
    private(set) var retained: [String: PublishPacket] = [:]
    /// Connections that have not sent CONNECT yet, with when they opened.
    private var awaitingConnect: [ConnectionID: ContinuousClock.Instant] = [:]
    private var generatedIDs = 0
    /// Messages dropped because a queue was full, for the admin API.
    public private(set) var droppedMessages = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The client identifier that `connection` gave in its CONNECT.
    public func clientID(of connection: ConnectionID) -> String? { clients[connection] }

    /// Client identifiers of the connected sessions, in no particular order.
    public var connectedClients: [String] { sessions.values.filter { $0.connection != nil }.map(\.clientID) }
    /// The session's topic filters and their maximum QoS.
    public func subscriptions(of clientID: String) -> [String: QoS]? { sessions[clientID]?.subscriptions }
    /// Unacknowledged and queued messages of a session.
    public func pending(of clientID: String) -> (inflight: Int, queued: Int)? {
        sessions[clientID].map { ($0.inflight.count, $0.queue.count) }
    }

    // MARK: Events

    /// A transport connection is open (for WebSocket: upgraded); its CONNECT is due within
    /// ``Configuration/connectionTimeout``.
    public mutating func connectionOpened(_ connection: ConnectionID, now: ContinuousClock.Instant) {
        awaitingConnect[connection] = now
    }

    /// A packet arrived on `connection`.
    public mutating func received(_ packet: MQTTPacket, from connection: ConnectionID, now: ContinuousClock.Instant) -> [Action] {
        guard let clientID = clients[connection] else {
            awaitingConnect[connection] = nil
            guard case .connect(let connect) = packet else {
                return [.close(connection, reason: "the first packet was \(packet.type), not CONNECT [MQTT-3.1.0-1]")]
            }
            return connectReceived(connect, on: connection, now: now)
        }
        sessions[clientID]?.lastSeen = now
        switch packet {
        case .connect:
            return closeWithWill(connection, reason: "a second CONNECT [MQTT-3.1.0-2]", now: now)
        case .publish(let publish):
            return publishReceived(publish, from: connection, clientID: clientID, now: now)
        case .pubrel(let response):
            sessions[clientID]?.incomingQoS2.remove(response.packetIdentifier)
            return [.send(connection, .pubcomp(PublishResponsePacket(packetIdentifier: response.packetIdentifier)))]
        case .puback(let response):
            guard sessions[clientID]?.inflight[response.packetIdentifier]?.packet.qos == .atLeastOnce else { return [] }
            return complete(response.packetIdentifier, clientID: clientID, now: now)
        case .pubrec(let response):
            guard let outgoing = sessions[clientID]?.inflight[response.packetIdentifier], outgoing.packet.qos == .exactlyOnce else {
                return []
            }
            sessions[clientID]?.inflight[response.packetIdentifier]?.stage = .awaitingComplete
            sessions[clientID]?.inflight[response.packetIdentifier]?.sentAt = now
            return [.send(connection, .pubrel(PublishResponsePacket(packetIdentifier: response.packetIdentifier)))]
        case .pubcomp(let response):
            guard sessions[clientID]?.inflight[response.packetIdentifier]?.stage == .awaitingComplete else { return [] }
            return complete(response.packetIdentifier, clientID: clientID, now: now)
        case .subscribe(let subscribe):
            return subscribeReceived(subscribe, from: connection, clientID: clientID, now: now)
        case .unsubscribe(let unsubscribe):
            for filter in unsubscribe.topicFilters { sessions[clientID]?.subscriptions[filter] = nil }
            return [.send(connection, .unsuback(UnsubAckPacket(packetIdentifier: unsubscribe.packetIdentifier)))]
        case .pingreq:
            return configuration.answersPing ? [.send(connection, .pingresp)] : []
        case .disconnect:
            // A normal DISCONNECT discards the will [MQTT-3.14.4-3].
            sessions[clientID]?.will = nil
            return [.close(connection, reason: "DISCONNECT")] + connectionClosed(connection, now: now)
        case .connack, .suback, .unsuback, .pingresp, .auth:
            return closeWithWill(connection, reason: "a client sent \(packet.type), which only a server may send", now: now)
        }
    }

    /// The transport of `connection` is gone (closed by either side, or lost). Publishes the
    /// will unless DISCONNECT discarded it; a clean session ends here.
    public mutating func connectionClosed(_ connection: ConnectionID, now: ContinuousClock.Instant) -> [Action] {
        awaitingConnect[connection] = nil
        guard let clientID = clients.removeValue(forKey: connection), var session = sessions[clientID],
              session.connection == connection
        else { return [] }
        let will = session.will
        session.will = nil
        session.connection = nil
        if session.clean {
            sessions[clientID] = nil
        } else {
            sessions[clientID] = session
        }
        guard let will else { return [] }
        return route(PublishPacket(qos: will.qos, retain: will.retain, topicName: will.topic, payload: will.payload), now: now)
    }

    /// Time passed: keep-alive enforcement (1.5 × the client's keep-alive [MQTT-3.1.2-24]) and
    /// timed redelivery.
    public mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (connection, opened) in awaitingConnect where now - opened >= configuration.connectionTimeout {
            awaitingConnect[connection] = nil
            actions.append(.close(connection, reason: "no CONNECT within \(configuration.connectionTimeout)"))
        }
        for (clientID, session) in sessions {
            guard let connection = session.connection else { continue }
            if session.keepAlive > .zero, now - session.lastSeen > session.keepAlive * 1.5 {
                actions += closeWithWill(connection, reason: "no packet within 1.5 × keep-alive (\(session.keepAlive))", now: now)
                continue
            }
            guard let interval = configuration.redeliveryInterval else { continue }
            actions += resendInflight(of: clientID, on: connection, now: now) { now - $0.sentAt >= interval }
        }
        return actions
    }

    /// Publishes as the server (admin API, scenarios): to every matching subscription, and
    /// stored when `retain` is set.
    public mutating func publish(_ publish: PublishPacket, now: ContinuousClock.Instant) -> [Action] {
        route(publish, now: now)
    }

    /// Pushes a message to one session whatever it subscribed to (Works mode: the service
    /// pushes notifications to a cookie-authenticated session that sent no SUBSCRIBE).
    public mutating func push(_ publish: PublishPacket, to clientID: String, now: ContinuousClock.Instant) -> [Action] {
        guard sessions[clientID] != nil else { return [] }
        return enqueue(publish, qos: publish.qos, to: clientID, now: now)
    }

    /// Closes a client's connection as a loss (the admin API's kick): its will is published.
    public mutating func kick(_ clientID: String, now: ContinuousClock.Instant) -> [Action] {
        guard let connection = sessions[clientID]?.connection else { return [] }
        return closeWithWill(connection, reason: "kicked", now: now)
    }

    // MARK: Rules

    private mutating func connectReceived(_ connect: ConnectPacket, on connection: ConnectionID, now: ContinuousClock.Instant) -> [Action] {
        func refuse(_ code: UInt8, _ reason: String) -> [Action] {
            [.send(connection, .connack(ConnAckPacket(reasonCode: ReasonCode(code)))), .close(connection, reason: reason)]
        }
        guard connect.protocolVersion != .v5 else {
            return refuse(1, "MQTT 5 is not served by this listener")
        }
        var clientID = connect.clientIdentifier
        if clientID.isEmpty {
            // An empty identifier is allowed with a clean session only [MQTT-3.1.3-7, -8].
            guard connect.cleanStart else { return refuse(2, "an empty client identifier asks for a persistent session") }
            generatedIDs += 1
            clientID = "wmq-mock-\(generatedIDs)"
        }
        guard clientID.utf8.count <= configuration.maximumClientIDLength else {
            return refuse(2, "client identifier longer than \(configuration.maximumClientIDLength) bytes")
        }
        var actions: [Action] = []
        // Take-over: an existing connection of the same client is closed [MQTT-3.1.4-2]; its will goes out.
        if let existing = sessions[clientID], let old = existing.connection {
            actions.append(.close(old, reason: "taken over by a new connection of \(clientID)"))
            actions += connectionClosed(old, now: now)
        }
        var session: Session
        let resumed: Bool
        if let existing = sessions[clientID], !connect.cleanStart, !existing.clean {
            session = existing
            resumed = true
        } else {
            // A clean session starts anew and discards any previous one [MQTT-3.1.2-6].
            session = Session(clientID: clientID, clean: connect.cleanStart, connection: nil, lastSeen: now)
            resumed = false
        }
        session.clean = connect.cleanStart
        session.connection = connection
        session.will = connect.will
        session.keepAlive = .seconds(Int(connect.keepAlive))
        session.lastSeen = now
        sessions[clientID] = session
        clients[connection] = clientID
        actions.append(.send(connection, .connack(ConnAckPacket(sessionPresent: resumed))))
        // Resend what was in flight, in order [MQTT-4.4.0-1], then what queued while away.
        actions += resendInflight(of: clientID, on: connection, now: now) { _ in true }
        actions += drainQueue(clientID: clientID, now: now)
        return actions
    }

    /// Resends, in order, the in-flight messages `due` selects: a PUBLISH with DUP set while it
    /// awaits PUBACK/PUBREC, a PUBREL while it awaits PUBCOMP.
    private mutating func resendInflight(of clientID: String, on connection: ConnectionID, now: ContinuousClock.Instant,
                                         due: (Outgoing) -> Bool) -> [Action] {
        guard let session = sessions[clientID] else { return [] }
        var actions: [Action] = []
        for identifier in session.inflightOrder {
            guard let outgoing = session.inflight[identifier], due(outgoing) else { continue }
            sessions[clientID]?.inflight[identifier]?.sentAt = now
            switch outgoing.stage {
            case .awaitingAck:
                var packet = outgoing.packet
                packet.dup = true
                actions.append(.send(connection, .publish(packet)))
            case .awaitingComplete:
                actions.append(.send(connection, .pubrel(PublishResponsePacket(packetIdentifier: identifier))))
            }
        }
        return actions
    }

    private mutating func publishReceived(_ publish: PublishPacket, from connection: ConnectionID, clientID: String,
                                          now: ContinuousClock.Instant) -> [Action] {
        guard publish.payload.readableBytes <= configuration.maximumPayloadSize else {
            return closeWithWill(connection, reason: "PUBLISH payload of \(publish.payload.readableBytes) bytes is over the limit of \(configuration.maximumPayloadSize)", now: now)
        }
        switch publish.qos {
        case .atMostOnce:
            return route(publish, now: now)
        case .atLeastOnce:
            guard let identifier = publish.packetIdentifier else { return closeWithWill(connection, reason: "QoS 1 PUBLISH without identifier", now: now) }
            return route(publish, now: now) + [.send(connection, .puback(PublishResponsePacket(packetIdentifier: identifier)))]
        case .exactlyOnce:
            guard let identifier = publish.packetIdentifier else { return closeWithWill(connection, reason: "QoS 2 PUBLISH without identifier", now: now) }
            let pubrec = Action.send(connection, .pubrec(PublishResponsePacket(packetIdentifier: identifier)))
            // Method B: routed once on first receipt; a DUP before PUBREL is only answered [MQTT-4.3.3-2].
            guard sessions[clientID]?.incomingQoS2.insert(identifier).inserted == true else { return [pubrec] }
            return route(publish, now: now) + [pubrec]
        }
    }

    private mutating func subscribeReceived(_ subscribe: SubscribePacket, from connection: ConnectionID, clientID: String,
                                            now: ContinuousClock.Instant) -> [Action] {
        var codes: [ReasonCode] = []
        var actions: [Action] = []
        for subscription in subscribe.subscriptions {
            sessions[clientID]?.subscriptions[subscription.topicFilter] = subscription.qos
            codes.append(ReasonCode(subscription.qos.rawValue))
        }
        actions.append(.send(connection, .suback(SubAckPacket(packetIdentifier: subscribe.packetIdentifier, reasonCodes: codes))))
        // Retained messages matching the new filters, with the retain flag set [MQTT-3.3.1-6].
        for subscription in subscribe.subscriptions {
            for topic in retained.keys.sorted() where TopicMatching.matches(filter: subscription.topicFilter, topic: topic) {
                guard let message = retained[topic] else { continue }
                actions += enqueue(message, qos: min(message.qos, subscription.qos), to: clientID, retain: true, now: now)
            }
        }
        return actions
    }

    /// Sends `publish` to every session with a matching subscription, once per session at the
    /// highest matching QoS, capped by the message's own [MQTT-3.3.5-1].
    private mutating func route(_ publish: PublishPacket, now: ContinuousClock.Instant) -> [Action] {
        if publish.retain {
            // An empty retained message deletes the stored one [MQTT-3.3.1-10, -11].
            retained[publish.topicName] = publish.payload.readableBytes == 0 ? nil : publish
        }
        var actions: [Action] = []
        for clientID in sessions.keys.sorted() {
            guard let session = sessions[clientID] else { continue }
            var granted: QoS?
            for (filter, qos) in session.subscriptions where TopicMatching.matches(filter: filter, topic: publish.topicName) {
                granted = max(granted ?? qos, qos)
            }
            guard let granted else { continue }
            actions += enqueue(publish, qos: min(publish.qos, granted), to: clientID, now: now)
        }
        return actions
    }

    private mutating func enqueue(_ publish: PublishPacket, qos: QoS, to clientID: String, retain: Bool = false,
                                  now: ContinuousClock.Instant) -> [Action] {
        guard var session = sessions[clientID] else { return [] }
        var message = publish
        message.qos = qos
        message.dup = false
        message.retain = retain  // routed messages go out with retain 0 [MQTT-3.3.1-9]
        message.packetIdentifier = nil
        guard let connection = session.connection else {
            // Offline: a persistent session keeps QoS 1/2 messages; QoS 0 is dropped (as mosquitto does by default).
            guard qos != .atMostOnce else { return [] }
            queue(message, in: &session)
            sessions[clientID] = session
            return []
        }
        if qos == .atMostOnce { return [.send(connection, .publish(message))] }
        if session.inflight.count >= configuration.maximumInflight {
            queue(message, in: &session)
            sessions[clientID] = session
            return []
        }
        sessions[clientID] = session
        return [send(message, to: clientID, on: connection, now: now)]
    }

    private mutating func queue(_ message: PublishPacket, in session: inout Session) {
        if session.queue.count >= configuration.maximumQueued {
            guard configuration.maximumQueued > 0 else { droppedMessages += 1; return }
            session.queue.removeFirst()
            droppedMessages += 1
        }
        session.queue.append(message)
    }

    /// Gives a QoS 1/2 message an identifier and puts it in flight.
    private mutating func send(_ message: PublishPacket, to clientID: String, on connection: ConnectionID,
                               now: ContinuousClock.Instant) -> Action {
        var message = message
        var identifier = sessions[clientID]?.nextPacketIdentifier ?? 1
        while sessions[clientID]?.inflight[identifier] != nil { identifier = identifier == .max ? 1 : identifier + 1 }
        sessions[clientID]?.nextPacketIdentifier = identifier == .max ? 1 : identifier + 1
        message.packetIdentifier = identifier
        sessions[clientID]?.inflight[identifier] = Outgoing(packet: message, stage: .awaitingAck, sentAt: now)
        sessions[clientID]?.inflightOrder.append(identifier)
        return .send(connection, .publish(message))
    }

    private mutating func complete(_ identifier: UInt16, clientID: String, now: ContinuousClock.Instant) -> [Action] {
        sessions[clientID]?.inflight[identifier] = nil
        sessions[clientID]?.inflightOrder.removeAll { $0 == identifier }
        return drainQueue(clientID: clientID, now: now)
    }

    private mutating func drainQueue(clientID: String, now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        while let session = sessions[clientID], let connection = session.connection, !session.queue.isEmpty,
              session.inflight.count < configuration.maximumInflight {
            let message = session.queue[0]
            sessions[clientID]?.queue.removeFirst()
            actions.append(send(message, to: clientID, on: connection, now: now))
        }
        return actions
    }

    private mutating func closeWithWill(_ connection: ConnectionID, reason: String, now: ContinuousClock.Instant) -> [Action] {
        [.close(connection, reason: reason)] + connectionClosed(connection, now: now)
    }
}
