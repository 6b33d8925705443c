import MQTTWire
import NIOCore

// The connection and session rules of BrokerCore: CONNECT (validation, take-over, clean and
// resumed sessions, 5.0 properties), DISCONNECT, in-flight resending, the end of a session, and
// giving up on a connection.
extension BrokerCore {
    mutating func connectReceived(_ connect: ConnectPacket, on connection: ConnectionID, accepting: AcceptedVersions,
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
        if let credentials = configuration.credentials, !credentials.accept(username: connect.username, password: connect.password) {
            let who = connect.username.map { "user \($0)" } ?? "no user name"
            return refuse(.badUserNameOrPassword, 4, "bad user name or password (\(who))")
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
        connections[connection] = .connected(clientID: clientID, version: connect.protocolVersion)
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

    mutating func disconnectReceived(_ packet: DisconnectPacket, from connection: ConnectionID, clientID: String,
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
    mutating func resendInflight(of clientID: String, on connection: ConnectionID, now: ContinuousClock.Instant,
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

    /// A session ends: it and its subscriptions are forgotten.
    mutating func endSession(_ clientID: String) {
        guard let session = sessions.removeValue(forKey: clientID) else { return }
        for filter in session.subscriptions.keys { dropSubscriber(clientID, from: filter) }
    }

    /// Closes a connection the broker gives up on: a 5.0 client first gets DISCONNECT with the
    /// reason code and, unless it asked for none, the reason string; the will goes out.
    mutating func disconnect(_ connection: ConnectionID, _ code: ReasonCode, _ reason: String,
                                     now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        if let clientID = connections[connection]?.clientID, let session = sessions[clientID], session.isVersion5 {
            actions.append(.send(connection, .disconnect(DisconnectPacket(reasonCode: code, properties: [.reasonString(reason)]))))
        }
        actions.append(.close(connection, reason: reason))
        return actions + connectionClosed(connection, now: now)
    }
}
