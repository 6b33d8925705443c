public import MQTTWire
import NIOCore

/// The broker of `wmq-mock` as a value-type state machine, MQTT 3.1, 3.1.1 and 5.0: the
/// transport reports connections, packets and the passing of time; the core returns
/// ``Action``s (packets to send to a connection, connections to close). No I/O, no clock of
/// its own, so every rule of the spec is unit-tested with plain values (the style of the project's protocol state machines: rules as plain values), in the
/// spirit of `WorksClient`'s `MQTTClientSession`.
///
/// Covered: CONNECT validation and session take-over, clean and persistent sessions,
/// SUBSCRIBE/UNSUBSCRIBE with wildcards, retained messages, QoS 0/1/2 both ways with an
/// in-flight window and queueing, delivery QoS = min(publish, subscription), wills, keep-alive
/// enforcement at 1.5 × keep-alive, DISCONNECT. MQTT 5.0: session expiry, will delay, message
/// expiry, topic aliases from the client, receive maximum both ways, maximum packet size both
/// ways, subscription options (no local, retain as published, retain handling) and
/// identifiers, reason codes with reason strings, user properties carried to subscribers.
/// For Works mode, pushing to a session with no subscription and redelivering unacknowledged
/// messages after a timeout.
public struct BrokerCore: Sendable {
    public typealias ConnectionID = Int

    public struct Configuration: Sendable, Hashable {
        /// Unacknowledged QoS 1/2 messages per session before the rest queue (rumqttd's
        /// `max_inflight_count`); also the Receive Maximum announced to MQTT 5 clients.
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
        /// Topic aliases an MQTT 5 client may use towards the broker (0 turns them off).
        public var topicAliasMaximum: UInt16
        /// rumqttd's `dynamic_filters`: when false, a client's PUBLISH to a topic that no
        /// subscription filter (present or past) matches closes its connection, as rumqttd does.
        public var dynamicFilters: Bool
        /// A fault: every CONNECT is refused with "server unavailable" (3.1.1 return code 3, 5.0 0x88).
        public var refusesConnections = false

        public init(maximumInflight: Int = 100, maximumQueued: Int = 10_000, maximumClientIDLength: Int = 256,
                    maximumPayloadSize: Int = 8 << 20, answersPing: Bool = true, redeliveryInterval: Duration? = nil,
                    connectionTimeout: Duration = .seconds(5), topicAliasMaximum: UInt16 = 32, dynamicFilters: Bool = true) {
            self.connectionTimeout = connectionTimeout
            self.maximumInflight = min(max(maximumInflight, 1), 65_535)
            self.maximumQueued = max(maximumQueued, 0)
            self.maximumClientIDLength = maximumClientIDLength
            self.maximumPayloadSize = maximumPayloadSize
            self.answersPing = answersPing
            self.redeliveryInterval = redeliveryInterval
            self.topicAliasMaximum = topicAliasMaximum
            self.dynamicFilters = dynamicFilters
        }

        /// The largest packet accepted: the payload limit plus room for a topic, properties and headers.
        public var maximumPacketSize: Int { maximumPayloadSize + 65_536 + 5 }
    }

    /// The MQTT versions a listener serves: rumqttd's `[ws]` and `[v4]` listeners serve 3.1.1
    /// (and 3.1), `[v5]` 5.0; the others are refused with CONNACK return code 1 in 3.1.1's form.
    public enum AcceptedVersions: Sendable, Hashable {
        case any, version3, version5

        func accepts(_ version: ProtocolVersion) -> Bool {
            switch self {
            case .any: true
            case .version3: version != .v5
            case .version5: version == .v5
            }
        }
    }

    public enum Action: Sendable, Hashable {
        case send(ConnectionID, MQTTPacket)
        /// Close the connection; `reason` is for logs and the admin API.
        case close(ConnectionID, reason: String)
    }

    /// A message on its way to a session, with when it stops being worth delivering (MQTT 5
    /// Message Expiry Interval).
    struct Message: Sendable, Hashable {
        var packet: PublishPacket
        var expiresAt: ContinuousClock.Instant?
    }

    struct Outgoing: Sendable, Hashable {
        enum Stage: Sendable, Hashable { case awaitingAck, awaitingComplete }
        var packet: PublishPacket
        var stage: Stage
        var sentAt: ContinuousClock.Instant
    }

    struct Subscription: Sendable, Hashable {
        var qos: QoS
        var noLocal = false
        var retainAsPublished = false
        var identifier: UInt32?
    }

    struct Session: Sendable {
        var clientID: String
        var version: ProtocolVersion
        var connection: ConnectionID?
        var subscriptions: [String: Subscription] = [:]
        var will: ConnectPacket.Will?
        var willDelay: UInt32 = 0
        var keepAlive: Duration = .zero
        var lastSeen: ContinuousClock.Instant
        /// Seconds the session outlives its connection; `.max` forever (3.1.1 persistent), 0 not at all (clean).
        var expiryInterval: UInt32 = 0
        var disconnectedAt: ContinuousClock.Instant?
        var inflight: [UInt16: Outgoing] = [:]
        var inflightOrder: [UInt16] = []
        var queue = MessageQueue()
        var incomingQoS2: Set<UInt16> = []
        var nextPacketIdentifier: UInt16 = 1
        /// The client's Receive Maximum, capped by the configuration.
        var inflightLimit: Int
        /// The client's Maximum Packet Size (5.0); larger messages are not sent to it [MQTT-3.1.2-25].
        var maximumPacketSize: Int?
        /// Topic aliases the client set on this connection.
        var aliases: [UInt16: String] = [:]
        /// Whether reason strings and user properties may go on packets other than CONNACK and DISCONNECT.
        var wantsProblemInformation = true

        var isVersion5: Bool { version == .v5 }
    }

    /// A will waiting for its delay or the end of its session (5.0).
    struct PendingWill: Sendable {
        var will: ConnectPacket.Will
        var due: ContinuousClock.Instant
    }

    /// Changeable while running: the admin API's faults switch ``Configuration/answersPing``
    /// and ``Configuration/refusesConnections``.
    public var configuration: Configuration
    private(set) var sessions: [String: Session] = [:]
    /// Connections that sent CONNECT, to their client identifier.
    private var clients: [ConnectionID: String] = [:]
    private(set) var retained: [String: Message] = [:]
    /// Connections that have not sent CONNECT yet, with when they opened and what their listener serves.
    private var awaitingConnect: [ConnectionID: (opened: ContinuousClock.Instant, accepting: AcceptedVersions)] = [:]
    /// The version each connection's packets are encoded in, fixed by its first CONNECT.
    private var versions: [ConnectionID: ProtocolVersion] = [:]
    /// Every topic filter ever subscribed to (for `dynamicFilters` off).
    private var knownFilters: Set<String> = []
    /// The subscriptions again, by filter and then client: a message is matched against each
    /// distinct filter once, not once per subscriber (a thousand subscribers of one topic cost
    /// one match).
    private var subscribersByFilter: [String: [String: Subscription]] = [:]
    private var pendingWills: [String: PendingWill] = [:]
    private var generatedIDs = 0
    /// Messages dropped because a queue was full, they expired, or they exceeded a client's
    /// maximum packet size, for the admin API.
    public private(set) var droppedMessages = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The client identifier that `connection` gave in its CONNECT (or was assigned).
    public func clientID(of connection: ConnectionID) -> String? { clients[connection] }

    /// Client identifiers of the connected sessions, in no particular order.
    public var connectedClients: [String] { sessions.values.filter { $0.connection != nil }.map(\.clientID) }
    /// Client identifiers of the sessions kept while their client is away.
    public var storedSessions: [String] { sessions.values.filter { $0.connection == nil }.map(\.clientID) }

    /// The retained messages, by topic (expired ones left out).
    public func retainedMessages(now: ContinuousClock.Instant) -> [PublishPacket] {
        retained.keys.sorted().compactMap { topic in
            guard let message = retained[topic], message.expiresAt.map({ $0 > now }) ?? true else { return nil }
            return message.packet
        }
    }
    /// The session's topic filters and their maximum QoS.
    public func subscriptions(of clientID: String) -> [String: QoS]? { sessions[clientID]?.subscriptions.mapValues(\.qos) }
    /// Unacknowledged and queued messages of a session.
    public func pending(of clientID: String) -> (inflight: Int, queued: Int)? {
        sessions[clientID].map { ($0.inflight.count, $0.queue.count) }
    }
    /// The version a server answers `connect` in: its own, except 5.0 on a listener that
    /// serves 3.1.1 only, which is refused in 3.1.1's form.
    public static func answeringVersion(for connect: ConnectPacket, accepting: AcceptedVersions) -> ProtocolVersion {
        accepting.accepts(connect.protocolVersion) ? connect.protocolVersion : .v3_1_1
    }

    /// The version packets to `connection` are encoded in: the answering version of its first
    /// CONNECT (a second CONNECT is a protocol error answered in the first one's); nil before one.
    public func protocolVersion(on connection: ConnectionID) -> ProtocolVersion? { versions[connection] }

    /// The protocol version a session connected with.
    public func version(of clientID: String) -> ProtocolVersion? { sessions[clientID]?.version }

    // MARK: Events

    /// A transport connection is open (for WebSocket: upgraded); its CONNECT is due within
    /// ``Configuration/connectionTimeout``.
    public mutating func connectionOpened(_ connection: ConnectionID, now: ContinuousClock.Instant, accepting: AcceptedVersions = .any) {
        awaitingConnect[connection] = (now, accepting)
    }

    /// A packet arrived on `connection`.
    public mutating func received(_ packet: MQTTPacket, from connection: ConnectionID, now: ContinuousClock.Instant) -> [Action] {
        guard let clientID = clients[connection] else {
            let accepting = awaitingConnect.removeValue(forKey: connection)?.accepting ?? .any
            guard case .connect(let connect) = packet else {
                return [.close(connection, reason: "the first packet was \(packet.type), not CONNECT [MQTT-3.1.0-1]")]
            }
            versions[connection] = Self.answeringVersion(for: connect, accepting: accepting)
            return connectReceived(connect, on: connection, accepting: accepting, now: now)
        }
        sessions[clientID]?.lastSeen = now
        switch packet {
        case .connect:
            return disconnect(connection, .protocolError, "a second CONNECT [MQTT-3.1.0-2]", now: now)
        case .publish(let publish):
            return publishReceived(publish, from: connection, clientID: clientID, now: now)
        case .pubrel(let response):
            let known = sessions[clientID]?.incomingQoS2.remove(response.packetIdentifier) != nil
            let code: ReasonCode = known || sessions[clientID]?.isVersion5 != true ? .success : .packetIdentifierNotFound
            return [.send(connection, .pubcomp(PublishResponsePacket(packetIdentifier: response.packetIdentifier, reasonCode: code)))]
        case .puback(let response):
            guard sessions[clientID]?.inflight[response.packetIdentifier]?.packet.qos == .atLeastOnce else { return [] }
            return complete(response.packetIdentifier, clientID: clientID, now: now)
        case .pubrec(let response):
            guard let outgoing = sessions[clientID]?.inflight[response.packetIdentifier], outgoing.packet.qos == .exactlyOnce else {
                return []
            }
            // A 5.0 PUBREC with an error code ends the flow there [MQTT-4.3.3-4].
            if response.reasonCode.rawValue >= 0x80 { return complete(response.packetIdentifier, clientID: clientID, now: now) }
            sessions[clientID]?.inflight[response.packetIdentifier]?.stage = .awaitingComplete
            sessions[clientID]?.inflight[response.packetIdentifier]?.sentAt = now
            return [.send(connection, .pubrel(PublishResponsePacket(packetIdentifier: response.packetIdentifier)))]
        case .pubcomp(let response):
            guard sessions[clientID]?.inflight[response.packetIdentifier]?.stage == .awaitingComplete else { return [] }
            return complete(response.packetIdentifier, clientID: clientID, now: now)
        case .subscribe(let subscribe):
            return subscribeReceived(subscribe, from: connection, clientID: clientID, now: now)
        case .unsubscribe(let unsubscribe):
            var codes: [ReasonCode] = []
            for filter in unsubscribe.topicFilters {
                let existed = removeSubscription(filter, of: clientID)
                codes.append(existed ? .success : .noSubscriptionExisted)
            }
            let isVersion5 = sessions[clientID]?.isVersion5 == true
            return [.send(connection, .unsuback(UnsubAckPacket(packetIdentifier: unsubscribe.packetIdentifier, reasonCodes: isVersion5 ? codes : [])))]
        case .pingreq:
            return configuration.answersPing ? [.send(connection, .pingresp)] : []
        case .disconnect(let disconnect):
            return disconnectReceived(disconnect, from: connection, clientID: clientID, now: now)
        case .auth:
            return disconnect(connection, .protocolError, "AUTH without an authentication method in CONNECT [MQTT-4.12.0-1]", now: now)
        case .connack, .suback, .unsuback, .pingresp:
            return disconnect(connection, .protocolError, "a client sent \(packet.type), which only a server may send", now: now)
        }
    }

    /// The connection's bytes broke the protocol (a decoding error): 5.0 clients are told why
    /// with a DISCONNECT before the connection closes; the will goes out.
    public mutating func violation(on connection: ConnectionID, code: ReasonCode, reason: String, now: ContinuousClock.Instant) -> [Action] {
        guard clients[connection] != nil else {
            awaitingConnect[connection] = nil
            return [.close(connection, reason: reason)]
        }
        return disconnect(connection, code, reason, now: now)
    }

    /// The DISCONNECT reason code for bytes the decoder refused: 0x95 for a packet over the
    /// size limit, 0x81 (malformed packet) for the rest.
    public static func reasonCode(for error: MQTTWireError) -> ReasonCode {
        error.code == .packetTooLarge ? .packetTooLarge : .malformedPacket
    }

    /// The transport of `connection` is gone (closed by either side, or lost). The will goes
    /// out (after its delay, in 5.0) unless DISCONNECT discarded it; a session with no expiry
    /// interval ends here.
    public mutating func connectionClosed(_ connection: ConnectionID, now: ContinuousClock.Instant) -> [Action] {
        awaitingConnect[connection] = nil
        versions[connection] = nil
        guard let clientID = clients.removeValue(forKey: connection), var session = sessions[clientID],
              session.connection == connection
        else { return [] }
        let will = session.will
        session.will = nil
        session.connection = nil
        session.aliases = [:]
        session.disconnectedAt = now
        let ends = session.expiryInterval == 0
        if ends { endSession(clientID) } else { sessions[clientID] = session }
        guard let will else { return [] }
        let delay = min(session.willDelay, session.expiryInterval)
        if delay == 0 { return route(Message(will: will, now: now), from: nil, now: now) }
        pendingWills[clientID] = PendingWill(will: will, due: now + .seconds(Int(delay)))
        return []
    }

    /// Time passed: CONNECT timeout, keep-alive enforcement (1.5 × the client's keep-alive
    /// [MQTT-3.1.2-24]), timed redelivery, delayed wills, session and message expiry.
    public mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (connection, waiting) in awaitingConnect where now - waiting.opened >= configuration.connectionTimeout {
            awaitingConnect[connection] = nil
            actions.append(.close(connection, reason: "no CONNECT within \(configuration.connectionTimeout)"))
        }
        for (clientID, session) in sessions {
            guard let connection = session.connection else {
                if let since = session.disconnectedAt, session.expiryInterval != .max,
                   now - since >= .seconds(Int(session.expiryInterval)) {
                    endSession(clientID)
                }
                continue
            }
            if session.keepAlive > .zero, now - session.lastSeen > session.keepAlive * 1.5 {
                actions += disconnect(connection, .keepAliveTimeout, "no packet within 1.5 × keep-alive (\(session.keepAlive))", now: now)
                continue
            }
            guard let interval = configuration.redeliveryInterval else { continue }
            actions += resendInflight(of: clientID, on: connection, now: now) { now - $0.sentAt >= interval }
        }
        for (clientID, pending) in pendingWills where pending.due <= now {
            pendingWills[clientID] = nil
            actions += route(Message(will: pending.will, now: now), from: nil, now: now)
        }
        for (topic, message) in retained {
            if let expiry = message.expiresAt, expiry <= now { retained[topic] = nil }
        }
        return actions
    }

    /// Publishes as the server (admin API, scenarios): to every matching subscription, and
    /// stored when `retain` is set.
    public mutating func publish(_ publish: PublishPacket, now: ContinuousClock.Instant) -> [Action] {
        route(Message(publish, now: now), from: nil, now: now)
    }

    /// Pushes a message to one session whatever it subscribed to (Works mode: the service
    /// pushes notifications to a cookie-authenticated session that sent no SUBSCRIBE).
    public mutating func push(_ publish: PublishPacket, to clientID: String, now: ContinuousClock.Instant) -> [Action] {
        guard sessions[clientID] != nil else { return [] }
        var actions: [Action] = []
        enqueue(Message(publish, now: now), qos: publish.qos, to: clientID, now: now, into: &actions)
        return actions
    }

    /// Closes a client's connection as a loss (the admin API's kick): its will is published.
    public mutating func kick(_ clientID: String, now: ContinuousClock.Instant) -> [Action] {
        guard let connection = sessions[clientID]?.connection else { return [] }
        return disconnect(connection, .administrativeAction, "kicked", now: now)
    }

    // MARK: Rules

    private mutating func connectReceived(_ connect: ConnectPacket, on connection: ConnectionID, accepting: AcceptedVersions,
                                          now: ContinuousClock.Instant) -> [Action] {
        let isVersion5 = connect.protocolVersion == .v5
        func refuse(_ code: ReasonCode, _ legacyCode: UInt8, _ reason: String) -> [Action] {
            let connack = isVersion5
                ? ConnAckPacket(reasonCode: code, properties: [.reasonString(reason)])
                : ConnAckPacket(reasonCode: ReasonCode(legacyCode))
            return [.send(connection, .connack(connack)), .close(connection, reason: reason)]
        }
        guard accepting.accepts(connect.protocolVersion) else {
            // A 3.1.1-style CONNACK: return code 1, unacceptable protocol version.
            return [.send(connection, .connack(ConnAckPacket(reasonCode: ReasonCode(1)))),
                    .close(connection, reason: "MQTT \(connect.protocolVersion) is not served by this listener")]
        }
        if configuration.refusesConnections {
            return refuse(.serverUnavailable, 3, "the server is unavailable (a fault turned on through the admin API)")
        }
        if isVersion5, connect.properties.first(.authenticationMethod) != nil {
            return refuse(.badAuthenticationMethod, 5, "enhanced authentication is not supported")
        }
        var clientID = connect.clientIdentifier
        var assigned = false
        if clientID.isEmpty {
            // 3.1.1 allows an empty identifier with a clean session only [MQTT-3.1.3-7, -8]; 5.0 assigns one.
            guard connect.cleanStart || isVersion5 else {
                return refuse(.clientIdentifierNotValid, 2, "an empty client identifier asks for a persistent session")
            }
            generatedIDs += 1
            clientID = "wmq-mock-\(generatedIDs)"
            assigned = true
        }
        guard clientID.utf8.count <= configuration.maximumClientIDLength else {
            return refuse(.clientIdentifierNotValid, 2, "client identifier longer than \(configuration.maximumClientIDLength) bytes")
        }
        var actions: [Action] = []
        // Take-over: an existing connection of the same client is closed [MQTT-3.1.4-2]; its will goes out.
        if let existing = sessions[clientID], let old = existing.connection {
            actions += disconnect(old, .sessionTakenOver, "taken over by a new connection of \(clientID)", now: now)
        }
        var session: Session
        let resumed: Bool
        if let existing = sessions[clientID], !connect.cleanStart {
            session = existing
            resumed = true
        } else {
            // A clean start discards any previous session [MQTT-3.1.2-6, MQTT-3.1.2-4].
            endSession(clientID)
            session = Session(clientID: clientID, version: connect.protocolVersion, connection: nil, lastSeen: now,
                              inflightLimit: configuration.maximumInflight)
            resumed = false
        }
        if let pending = pendingWills.removeValue(forKey: clientID), !resumed {
            // The session the delayed will belonged to has ended: it goes out now [MQTT-3.1.3-9].
            actions += route(Message(will: pending.will, now: now), from: nil, now: now)
        }
        session.version = connect.protocolVersion
        session.connection = connection
        session.disconnectedAt = nil
        session.will = connect.will
        session.keepAlive = .seconds(Int(connect.keepAlive))
        session.lastSeen = now
        session.aliases = [:]
        session.inflightLimit = configuration.maximumInflight
        session.maximumPacketSize = nil
        session.wantsProblemInformation = true
        session.willDelay = 0
        if isVersion5 {
            session.expiryInterval = 0
            for property in connect.properties {
                switch property {
                case .sessionExpiryInterval(let seconds): session.expiryInterval = seconds
                case .receiveMaximum(let maximum): session.inflightLimit = min(Int(maximum), configuration.maximumInflight)
                case .maximumPacketSize(let size): session.maximumPacketSize = Int(size)
                case .requestProblemInformation(let wanted): session.wantsProblemInformation = wanted != 0
                default: break
                }
            }
            if case .willDelayInterval(let seconds)? = connect.will?.properties.first(.willDelayInterval) {
                session.willDelay = seconds
            }
        } else {
            session.expiryInterval = connect.cleanStart ? 0 : .max
        }
        sessions[clientID] = session
        clients[connection] = clientID
        var connack = ConnAckPacket(sessionPresent: resumed)
        if isVersion5 {
            connack.properties = [
                .receiveMaximum(UInt16(configuration.maximumInflight)),
                .maximumPacketSize(UInt32(clamping: configuration.maximumPacketSize)),
                .topicAliasMaximum(configuration.topicAliasMaximum),
                .sharedSubscriptionAvailable(0),
            ]
            if assigned { connack.properties.append(.assignedClientIdentifier(clientID)) }
        }
        actions.append(.send(connection, .connack(connack)))
        // Resend what was in flight, in order [MQTT-4.4.0-1], then what queued while away.
        actions += resendInflight(of: clientID, on: connection, now: now) { _ in true }
        actions += drainQueue(clientID: clientID, now: now)
        return actions
    }

    private mutating func disconnectReceived(_ packet: DisconnectPacket, from connection: ConnectionID, clientID: String,
                                             now: ContinuousClock.Instant) -> [Action] {
        if case .sessionExpiryInterval(let seconds)? = packet.properties.first(.sessionExpiryInterval) {
            // A session that began with no expiry cannot be given one now [MQTT-3.14.2-2].
            guard sessions[clientID]?.expiryInterval != 0 || seconds == 0 else {
                return disconnect(connection, .protocolError, "DISCONNECT set a session expiry on a session that had none", now: now)
            }
            sessions[clientID]?.expiryInterval = seconds
        }
        // A normal DISCONNECT discards the will [MQTT-3.14.4-3]; 0x04 asks for it to be sent.
        if packet.reasonCode != .disconnectWithWillMessage { sessions[clientID]?.will = nil }
        return [.close(connection, reason: "DISCONNECT")] + connectionClosed(connection, now: now)
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
                // A session begun in 5.0 may be resumed by a 3.1.1 connection: no properties then.
                if session.version != .v5 { packet.properties = [] }
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
            return disconnect(connection, .packetTooLarge,
                              "PUBLISH payload of \(publish.payload.readableBytes) bytes is over the limit of \(configuration.maximumPayloadSize)", now: now)
        }
        var publish = publish
        if let alias = publish.properties.topicAlias {
            // Topic aliases (5.0 §3.3.2.3.4): a topic sets the alias, an empty topic uses it.
            guard alias != 0, alias <= configuration.topicAliasMaximum else {
                return disconnect(connection, .topicAliasInvalid, "topic alias \(alias) is outside 1…\(configuration.topicAliasMaximum)", now: now)
            }
            if publish.topicName.isEmpty {
                guard let topic = sessions[clientID]?.aliases[alias] else {
                    return disconnect(connection, .protocolError, "topic alias \(alias) was never set [MQTT-3.3.4-1]", now: now)
                }
                publish.topicName = topic
            } else {
                sessions[clientID]?.aliases[alias] = publish.topicName
            }
        } else if publish.topicName.isEmpty {
            return disconnect(connection, .protocolError, "PUBLISH with an empty topic and no topic alias", now: now)
        }
        if !configuration.dynamicFilters, !knownFilters.contains(where: { TopicMatching.matches(filter: $0, topic: publish.topicName) }) {
            return disconnect(connection, .topicNameInvalid,
                              "no subscription filter matches \(publish.topicName) (dynamic_filters = false, as rumqttd)", now: now)
        }
        let isVersion5 = sessions[clientID]?.isVersion5 == true
        var delivered = 0
        switch publish.qos {
        case .atMostOnce:
            return route(Message(publish, now: now), from: clientID, now: now)
        case .atLeastOnce:
            guard let identifier = publish.packetIdentifier else {
                return disconnect(connection, .malformedPacket, "QoS 1 PUBLISH without identifier", now: now)
            }
            let actions = route(Message(publish, now: now), from: clientID, now: now, delivered: &delivered)
            let code: ReasonCode = isVersion5 && delivered == 0 ? .noMatchingSubscribers : .success
            return actions + [.send(connection, .puback(PublishResponsePacket(packetIdentifier: identifier, reasonCode: code)))]
        case .exactlyOnce:
            guard let identifier = publish.packetIdentifier else {
                return disconnect(connection, .malformedPacket, "QoS 2 PUBLISH without identifier", now: now)
            }
            // Method B: routed once on first receipt; a DUP before PUBREL is only answered [MQTT-4.3.3-2].
            guard let session = sessions[clientID], !session.incomingQoS2.contains(identifier) else {
                return [.send(connection, .pubrec(PublishResponsePacket(packetIdentifier: identifier)))]
            }
            if isVersion5 && session.incomingQoS2.count >= configuration.maximumInflight {
                return disconnect(connection, .receiveMaximumExceeded, "more than \(configuration.maximumInflight) QoS 2 messages unacknowledged [MQTT-3.3.4-9]", now: now)
            }
            sessions[clientID]?.incomingQoS2.insert(identifier)
            let actions = route(Message(publish, now: now), from: clientID, now: now, delivered: &delivered)
            let code: ReasonCode = isVersion5 && delivered == 0 ? .noMatchingSubscribers : .success
            return actions + [.send(connection, .pubrec(PublishResponsePacket(packetIdentifier: identifier, reasonCode: code)))]
        }
    }

    private mutating func subscribeReceived(_ subscribe: SubscribePacket, from connection: ConnectionID, clientID: String,
                                            now: ContinuousClock.Instant) -> [Action] {
        let isVersion5 = sessions[clientID]?.isVersion5 == true
        var identifier: UInt32?
        if case .subscriptionIdentifier(let value)? = subscribe.properties.first(.subscriptionIdentifier) { identifier = value }
        var codes: [ReasonCode] = []
        var accepted: [(SubscribePacket.Subscription, isNew: Bool)] = []
        for subscription in subscribe.subscriptions {
            if subscription.topicFilter.hasPrefix("$share/") {
                codes.append(isVersion5 ? .sharedSubscriptionsNotSupported : .unspecifiedError)
                continue
            }
            let isNew = sessions[clientID]?.subscriptions[subscription.topicFilter] == nil
            knownFilters.insert(subscription.topicFilter)
            setSubscription(subscription.topicFilter, Subscription(
                qos: subscription.qos, noLocal: subscription.noLocal, retainAsPublished: subscription.retainAsPublished,
                identifier: identifier), of: clientID)
            codes.append(ReasonCode(subscription.qos.rawValue))
            accepted.append((subscription, isNew))
        }
        var actions: [Action] = [.send(connection, .suback(SubAckPacket(packetIdentifier: subscribe.packetIdentifier, reasonCodes: codes)))]
        // Retained messages matching the new filters, with the retain flag set [MQTT-3.3.1-6],
        // as the 5.0 retain handling option says [MQTT-3.3.1-9, -10, -11].
        for (subscription, isNew) in accepted {
            switch subscription.retainHandling {
            case .doNotSend: continue
            case .sendOnNewSubscribe where !isNew: continue
            default: break
            }
            for topic in retained.keys.sorted() where TopicMatching.matches(filter: subscription.topicFilter, topic: topic) {
                guard var message = retained[topic] else { continue }
                if let expiry = message.expiresAt, expiry <= now { retained[topic] = nil; continue }
                message.packet.properties = Self.forwarded(message.packet.properties, identifiers: identifier.map { [$0] } ?? [],
                                                           to: isVersion5)
                enqueue(message, qos: min(message.packet.qos, subscription.qos), to: clientID, retain: true, now: now, into: &actions)
            }
        }
        return actions
    }

    private mutating func route(_ message: Message, from publisher: String?, now: ContinuousClock.Instant) -> [Action] {
        var delivered = 0
        return route(message, from: publisher, now: now, delivered: &delivered)
    }

    /// Sends `message` to every session with a matching subscription, once per session at the
    /// highest matching QoS, capped by the message's own [MQTT-3.3.5-1]; `delivered` counts the
    /// sessions it went to.
    private mutating func route(_ message: Message, from publisher: String?, now: ContinuousClock.Instant,
                                delivered: inout Int) -> [Action] {
        let publish = message.packet
        if publish.retain {
            // An empty retained message deletes the stored one [MQTT-3.3.1-10, -11].
            retained[publish.topicName] = publish.payload.readableBytes == 0 ? nil : message
        }
        var matched: [[String: Subscription]] = []
        for (filter, subscribers) in subscribersByFilter where TopicMatching.matches(filter: filter, topic: publish.topicName) {
            matched.append(subscribers)
        }
        var actions: [Action] = []
        func deliver(to clientID: String, _ subscription: Subscription, identifiers: [UInt32]) {
            guard let index = sessions.index(forKey: clientID) else { return }
            let isVersion5 = sessions.values[index].version == .v5  // a stored field: read in place
            delivered += 1
            var copy = message
            if isVersion5 || !publish.properties.isEmpty {
                copy.packet.properties = Self.forwarded(publish.properties, identifiers: identifiers, to: isVersion5)
            }
            enqueue(copy, qos: min(publish.qos, subscription.qos), to: clientID,
                    retain: subscription.retainAsPublished && publish.retain, now: now, into: &actions)
        }
        if matched.count == 1, let subscribers = matched.first {
            // One filter matched (the common case): its subscribers, straight.
            for (clientID, subscription) in subscribers {
                // No Local: not back to the client that published it [MQTT-3.8.3-3].
                if subscription.noLocal && clientID == publisher { continue }
                deliver(to: clientID, subscription, identifiers: subscription.identifier.map { [$0] } ?? [])
            }
            return actions
        }
        // Overlapping filters: one delivery per session at the highest QoS they grant, with
        // every matching subscription's identifier.
        var merged: [String: (subscription: Subscription, identifiers: [UInt32])] = [:]
        for subscribers in matched {
            for (clientID, subscription) in subscribers {
                if subscription.noLocal && clientID == publisher { continue }
                var entry = merged[clientID] ?? (subscription, [])
                entry.subscription.qos = max(entry.subscription.qos, subscription.qos)
                entry.subscription.retainAsPublished = entry.subscription.retainAsPublished || subscription.retainAsPublished
                if let identifier = subscription.identifier { entry.identifiers.append(identifier) }
                merged[clientID] = entry
            }
        }
        for (clientID, entry) in merged { deliver(to: clientID, entry.subscription, identifiers: entry.identifiers) }
        return actions
    }

    private mutating func setSubscription(_ filter: String, _ subscription: Subscription, of clientID: String) {
        sessions[clientID]?.subscriptions[filter] = subscription
        subscribersByFilter[filter, default: [:]][clientID] = subscription
    }

    /// Whether the session had that subscription.
    private mutating func removeSubscription(_ filter: String, of clientID: String) -> Bool {
        guard sessions[clientID]?.subscriptions.removeValue(forKey: filter) != nil else { return false }
        subscribersByFilter[filter]?[clientID] = nil
        if subscribersByFilter[filter]?.isEmpty == true { subscribersByFilter[filter] = nil }
        return true
    }

    /// A session ends: it and its subscriptions are forgotten.
    private mutating func endSession(_ clientID: String) {
        guard let session = sessions.removeValue(forKey: clientID) else { return }
        for filter in session.subscriptions.keys {
            subscribersByFilter[filter]?[clientID] = nil
            if subscribersByFilter[filter]?.isEmpty == true { subscribersByFilter[filter] = nil }
        }
    }

    /// The properties a subscriber receives: the publisher's, less the topic alias (it belongs
    /// to the publisher's connection) and its subscription identifiers, plus those of the
    /// matching subscriptions [MQTT-3.3.4-3]; none for a 3.1.1 subscriber.
    static func forwarded(_ properties: MQTTProperties, identifiers: [UInt32], to isVersion5: Bool) -> MQTTProperties {
        guard isVersion5 else { return [] }
        var result = MQTTProperties(properties.elements.filter {
            $0.identifier != .topicAlias && $0.identifier != .subscriptionIdentifier
        })
        for identifier in identifiers { result.append(.subscriptionIdentifier(identifier)) }
        return result
    }

    /// Hands `message` to a session at `qos`: sent now (QoS 0, or QoS 1/2 within the in-flight
    /// window), queued (window full, or offline and QoS 1/2), or dropped. Reads the session in
    /// place (a fan-out calls this once per subscriber; copying a session costs a retain per field).
    private mutating func enqueue(_ message: Message, qos: QoS, to clientID: String, retain: Bool = false,
                                  now: ContinuousClock.Instant, into actions: inout [Action]) {
        guard let index = sessions.index(forKey: clientID) else { return }
        var message = message
        message.packet.qos = qos
        message.packet.dup = false
        message.packet.retain = retain  // routed messages go out with retain 0 [MQTT-3.3.1-9]
        message.packet.packetIdentifier = nil
        guard let connection = sessions.values[index].connection else {
            // Offline: a persistent session keeps QoS 1/2 messages; QoS 0 is dropped (as mosquitto does by default).
            if qos != .atMostOnce { hold(message, at: index) }
            return
        }
        if qos != .atMostOnce && sessions.values[index].inflight.count >= sessions.values[index].inflightLimit {
            hold(message, at: index)
            return
        }
        guard let packet = Self.outgoing(message, version: sessions.values[index].version,
                                         maximumPacketSize: sessions.values[index].maximumPacketSize, now: now) else {
            droppedMessages += 1
            return
        }
        actions.append(qos == .atMostOnce ? .send(connection, .publish(packet)) : send(packet, to: clientID, on: connection, now: now))
    }

    /// The packet a session receives for `message`: the remaining message expiry written in
    /// [MQTT-3.3.2-6]; nil when it expired or is larger than the client accepts [MQTT-3.1.2-25].
    static func outgoing(_ message: Message, version: ProtocolVersion, maximumPacketSize: Int?,
                         now: ContinuousClock.Instant) -> PublishPacket? {
        var packet = message.packet
        // Queued for a session that a 3.1.1 connection now holds: properties are 5.0 only.
        if version != .v5 && !packet.properties.isEmpty { packet.properties = [] }
        if let expiry = message.expiresAt {
            guard expiry > now else { return nil }
            if version == .v5 {
                let remaining = UInt32(min(((expiry - now) / .seconds(1)).rounded(.up), Double(UInt32.max)))
                packet.properties = MQTTProperties(packet.properties.elements.map {
                    $0.identifier == .messageExpiryInterval ? .messageExpiryInterval(remaining) : $0
                })
            }
        }
        if let limit = maximumPacketSize {
            var sized = packet
            if sized.qos != .atMostOnce { sized.packetIdentifier = 1 }
            guard let bytes = try? MQTTEncoder(version: version).encode(.publish(sized)), bytes.readableBytes <= limit else {
                return nil
            }
        }
        return packet
    }

    /// Queues a message for a session, the oldest going first when the queue is full.
    private mutating func hold(_ message: Message, at index: Dictionary<String, Session>.Index) {
        if sessions.values[index].queue.count >= configuration.maximumQueued {
            guard configuration.maximumQueued > 0 else { droppedMessages += 1; return }
            _ = sessions.values[index].queue.popFirst()
            droppedMessages += 1
        }
        sessions.values[index].queue.append(message)
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
        while let index = sessions.index(forKey: clientID), let connection = sessions.values[index].connection,
              sessions.values[index].inflight.count < sessions.values[index].inflightLimit,
              let message = sessions.values[index].queue.popFirst() {
            guard let packet = Self.outgoing(message, version: sessions.values[index].version,
                                             maximumPacketSize: sessions.values[index].maximumPacketSize, now: now) else {
                droppedMessages += 1
                continue
            }
            actions.append(send(packet, to: clientID, on: connection, now: now))
        }
        return actions
    }

    /// Closes a connection the broker gives up on: a 5.0 client first gets DISCONNECT with the
    /// reason code and, unless it asked for none, the reason string; the will goes out.
    private mutating func disconnect(_ connection: ConnectionID, _ code: ReasonCode, _ reason: String,
                                     now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        if let clientID = clients[connection], let session = sessions[clientID], session.isVersion5 {
            actions.append(.send(connection, .disconnect(DisconnectPacket(reasonCode: code, properties: [.reasonString(reason)]))))
        }
        actions.append(.close(connection, reason: reason))
        return actions + connectionClosed(connection, now: now)
    }
}

extension BrokerCore.Message {
    /// A message received now; its 5.0 Message Expiry Interval starts counting.
    init(_ packet: PublishPacket, now: ContinuousClock.Instant) {
        self.packet = packet
        if case .messageExpiryInterval(let seconds)? = packet.properties.first(.messageExpiryInterval) {
            expiresAt = now + .seconds(Int(seconds))
        } else {
            expiresAt = nil
        }
    }

    /// The PUBLISH a will becomes, with the will's properties (5.0) as its own.
    init(will: ConnectPacket.Will, now: ContinuousClock.Instant) {
        let properties = MQTTProperties(will.properties.elements.filter { $0.identifier != .willDelayInterval })
        self.init(PublishPacket(qos: will.qos, retain: will.retain, topicName: will.topic, properties: properties,
                                payload: will.payload), now: now)
    }
}

/// A first-in first-out queue of messages: an array read from a moving head, compacted when the
/// read part outgrows the rest, so that taking the oldest message does not move all the others.
struct MessageQueue: Sendable {
    private var items: [BrokerCore.Message] = []
    private var head = 0

    var count: Int { items.count - head }
    var isEmpty: Bool { count == 0 }

    mutating func append(_ message: BrokerCore.Message) { items.append(message) }

    mutating func popFirst() -> BrokerCore.Message? {
        guard head < items.count else { return nil }
        let message = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return message
    }
}
