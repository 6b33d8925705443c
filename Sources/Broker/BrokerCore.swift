public import MQTTWire
public import NIOCore

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
        /// Subscriptions one session may hold; a SUBSCRIBE past it is refused for the filters
        /// over (3.1.1 return code 0x80, 5.0 0x97 quota exceeded). Routing does not slow with
        /// a client's count (a topic tree), but each subscription costs memory.
        public var maximumSubscriptionsPerClient = 10_000
        /// Who may connect: nil lets every CONNECT in (a broker on loopback); otherwise a CONNECT
        /// must carry a user name and password this list accepts, else CONNACK "bad user name or
        /// password" (3.1.1 return code 4, 5.0 0x86).
        public var credentials: Credentials?

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

    /// The user names and passwords a broker accepts (mosquitto's password file, in plain text:
    /// the mock is a test server, and its file is the user's own).
    public struct Credentials: Sendable, Hashable {
        /// Passwords by user name.
        public var users: [String: String]
        /// A password any user name may give (the admin token, when no user list is given).
        public var sharedPassword: String?

        public init(users: [String: String] = [:], sharedPassword: String? = nil) {
            self.users = users
            self.sharedPassword = sharedPassword
        }

        /// Whether a CONNECT's user name and password are accepted; compared in time that does
        /// not depend on where the bytes differ.
        public func accept(username: String?, password: ByteBuffer?) -> Bool {
            guard let password else { return false }
            let given = Array(password.readableBytesView)
            if let shared = sharedPassword, Self.sameBytes(given, Array(shared.utf8)) { return true }
            guard let username, let expected = users[username] else { return false }
            return Self.sameBytes(given, Array(expected.utf8))
        }

        static func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
            var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
            for index in 0..<max(a.count, b.count) {
                difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
            }
            return difference == 0 && a.count == b.count
        }

        /// Reads `NAME:PASSWORD` lines (blank lines and `#` comments skipped); the error names
        /// the line.
        public init(passwordFile text: String) throws(CredentialsError) {
            var users: [String: String] = [:]
            for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
                if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.first == "#" { continue }
                guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                    throw CredentialsError(line: index + 1, reason: "give NAME:PASSWORD")
                }
                users[String(line[..<colon])] = String(line[line.index(after: colon)...])
            }
            guard !users.isEmpty else { throw CredentialsError(line: 0, reason: "no NAME:PASSWORD line") }
            self.init(users: users)
        }
    }

    /// A password file that cannot be used: the line (0 for the whole file) and why.
    public struct CredentialsError: Error, Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { line > 0 ? "line \(line): \(reason)" : reason }
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
        var queue = CircularBuffer<Message>()
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

    /// Where one transport connection stands: the broker keeps one of these per connection.
    enum ConnectionPhase: Sendable, Hashable {
        /// Open, its CONNECT due: when it opened and which versions its listener serves.
        case awaitingConnect(opened: ContinuousClock.Instant, accepting: AcceptedVersions)
        /// Its CONNECT arrived and was not (or not yet) accepted: packets to it (the refusing
        /// CONNACK) are encoded in `version`.
        case connecting(version: ProtocolVersion)
        /// Accepted: the session's client identifier, and the version its packets are encoded in,
        /// fixed by this first CONNECT.
        case connected(clientID: String, version: ProtocolVersion)

        var clientID: String? {
            if case .connected(let clientID, _) = self { return clientID }
            return nil
        }

        var version: ProtocolVersion? {
            switch self {
            case .awaitingConnect: nil
            case .connecting(let version), .connected(_, let version): version
            }
        }
    }

    /// A will waiting for its delay or the end of its session (5.0).
    struct PendingWill: Sendable {
        var will: ConnectPacket.Will
        var due: ContinuousClock.Instant
    }

    /// Changeable while running: the admin API's faults switch ``Configuration/answersPing``
    /// and ``Configuration/refusesConnections``.
    public var configuration: Configuration
    var sessions: [String: Session] = [:]
    /// Every open connection's phase.
    var connections: [ConnectionID: ConnectionPhase] = [:]
    var retained: [String: Message] = [:]
    /// Every topic filter ever subscribed to (for `dynamicFilters` off).
    var knownFilters: Set<String> = []
    /// The subscriptions again, by filter and then client: a message is matched against each
    /// distinct filter once, not once per subscriber (a thousand subscribers of one topic cost
    /// one match).
    var subscribersByFilter: [String: [String: Subscription]] = [:]
    /// The keys of `subscribersByFilter`, as a tree that finds a topic's filters quickly.
    var filterTree = FilterTree()
    var pendingWills: [String: PendingWill] = [:]
    var generatedIDs = 0
    /// Messages dropped because a queue was full, they expired, or they exceeded a client's
    /// maximum packet size, for the admin API.
    public internal(set) var droppedMessages = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The client identifier that `connection` gave in its CONNECT (or was assigned).
    public func clientID(of connection: ConnectionID) -> String? { connections[connection]?.clientID }

    /// The connection a client's session is on, when it is connected.
    public func connection(of clientID: String) -> ConnectionID? { sessions[clientID]?.connection }

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
    public func protocolVersion(on connection: ConnectionID) -> ProtocolVersion? { connections[connection]?.version }

    /// The protocol version a session connected with.
    public func version(of clientID: String) -> ProtocolVersion? { sessions[clientID]?.version }

    // MARK: Events

    /// A transport connection is open (for WebSocket: upgraded); its CONNECT is due within
    /// ``Configuration/connectionTimeout``.
    public mutating func connectionOpened(_ connection: ConnectionID, now: ContinuousClock.Instant, accepting: AcceptedVersions = .any) {
        connections[connection] = .awaitingConnect(opened: now, accepting: accepting)
    }

    /// A packet arrived on `connection`.
    public mutating func received(_ packet: MQTTPacket, from connection: ConnectionID, now: ContinuousClock.Instant) -> [Action] {
        guard let clientID = connections[connection]?.clientID else {
            var accepting = AcceptedVersions.any
            if case .awaitingConnect(_, let served)? = connections[connection] {
                accepting = served
                connections[connection] = nil
            }
            guard case .connect(let connect) = packet else {
                return [.close(connection, reason: "the first packet was \(packet.type), not CONNECT [MQTT-3.1.0-1]")]
            }
            connections[connection] = .connecting(version: Self.answeringVersion(for: connect, accepting: accepting))
            return connectReceived(connect, on: connection, accepting: accepting, now: now)
        }
        sessions[clientID]?.lastSeen = now
        switch packet {
        case .connect:
            return disconnect(connection, .protocolError, "a second CONNECT [MQTT-3.1.0-2]", now: now)
        case .publish(let publish):
            return publishReceived(publish, from: connection, clientID: clientID, now: now)
        case .pubrel(let response), .puback(let response), .pubrec(let response), .pubcomp(let response):
            return publishResponseReceived(packet.type, response, from: connection, clientID: clientID, now: now)
        case .subscribe(let subscribe):
            return subscribeReceived(subscribe, from: connection, clientID: clientID, now: now)
        case .unsubscribe(let unsubscribe):
            return unsubscribeReceived(unsubscribe, from: connection, clientID: clientID)
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
        guard connections[connection]?.clientID != nil else {
            if case .awaitingConnect? = connections[connection] { connections[connection] = nil }
            return [.close(connection, reason: reason)]
        }
        return disconnect(connection, code, reason, now: now)
    }

    /// The DISCONNECT reason code for bytes the decoder refused, as MQTT 5.0 names each case:
    /// 0x95 for a packet over the size limit; 0x94 for Topic Alias 0 [MQTT-3.3.2-8] (§3.3.2.3.4:
    /// an alias outside the range is "Topic Alias invalid"); 0x82 (protocol error) where the
    /// spec says "Protocol Error" — a topic name with a wildcard or empty without an alias
    /// (§3.3.2.1, §3.3.4), a SUBSCRIBE without a filter (§3.8.3), a property given twice
    /// (§2.2.2.2); 0x81 (malformed packet) for the rest (§1.5.4, §2.1.3, §3.8.3.1 …).
    public static func reasonCode(for error: MQTTWireError) -> ReasonCode {
        switch error.code {
        case .packetTooLarge: .packetTooLarge
        case .invalidPropertyValue where error.specReference == "MQTT-3.3.2-8": .topicAliasInvalid
        case .invalidTopicName, .emptySubscriptionList, .duplicateProperty: .protocolError
        default: .malformedPacket
        }
    }

    /// The transport of `connection` is gone (closed by either side, or lost). The will goes
    /// out (after its delay, in 5.0) unless DISCONNECT discarded it; a session with no expiry
    /// interval ends here.
    public mutating func connectionClosed(_ connection: ConnectionID, now: ContinuousClock.Instant) -> [Action] {
        guard let clientID = connections.removeValue(forKey: connection)?.clientID, var session = sessions[clientID],
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
        for (connection, phase) in connections {
            guard case .awaitingConnect(let opened, _) = phase, now - opened >= configuration.connectionTimeout else { continue }
            connections[connection] = nil
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
