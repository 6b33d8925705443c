import MQTTWire
import NIOCore

// The publishing rules of BrokerCore: PUBLISH from a client (QoS 0/1/2, topic aliases,
// retained), routing to matching subscriptions, the in-flight window and the queue, the QoS
// flows' completions.
extension BrokerCore {
    /// PUBACK, PUBREC, PUBREL or PUBCOMP from a client: the next step of a QoS 1 or 2 flow. An
    /// acknowledgement of no flow in that stage is ignored; a PUBREL is always answered with
    /// PUBCOMP (in 5.0 with 0x92, Packet Identifier not found, when no flow had that identifier).
    mutating func publishResponseReceived(_ type: PacketType, _ response: PublishResponsePacket, from connection: ConnectionID,
                                          clientID: String, now: ContinuousClock.Instant) -> [Action] {
        switch type {
        case .pubrel:
            let known = sessions[clientID]?.incomingQoS2.remove(response.packetIdentifier) != nil
            let code: ReasonCode = known || sessions[clientID]?.isVersion5 != true ? .success : .packetIdentifierNotFound
            return [.send(connection, .pubcomp(PublishResponsePacket(packetIdentifier: response.packetIdentifier, reasonCode: code)))]
        case .puback:
            guard sessions[clientID]?.inflight[response.packetIdentifier]?.packet.qos == .atLeastOnce else { return [] }
            return complete(response.packetIdentifier, clientID: clientID, now: now)
        case .pubrec:
            guard let outgoing = sessions[clientID]?.inflight[response.packetIdentifier], outgoing.packet.qos == .exactlyOnce else {
                return []
            }
            // A 5.0 PUBREC with an error code ends the flow there [MQTT-4.3.3-4].
            if response.reasonCode.rawValue >= 0x80 { return complete(response.packetIdentifier, clientID: clientID, now: now) }
            sessions[clientID]?.inflight[response.packetIdentifier]?.stage = .awaitingComplete
            sessions[clientID]?.inflight[response.packetIdentifier]?.sentAt = now
            return [.send(connection, .pubrel(PublishResponsePacket(packetIdentifier: response.packetIdentifier)))]
        case .pubcomp:
            guard sessions[clientID]?.inflight[response.packetIdentifier]?.stage == .awaitingComplete else { return [] }
            return complete(response.packetIdentifier, clientID: clientID, now: now)
        default:
            return []
        }
    }

    mutating func publishReceived(_ publish: PublishPacket, from connection: ConnectionID, clientID: String,
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

    mutating func route(_ message: Message, from publisher: String?, now: ContinuousClock.Instant) -> [Action] {
        var delivered = 0
        return route(message, from: publisher, now: now, delivered: &delivered)
    }

    /// Sends `message` to every session with a matching subscription, once per session at the
    /// highest matching QoS, capped by the message's own [MQTT-3.3.5-1]; `delivered` counts the
    /// sessions it went to.
    mutating func route(_ message: Message, from publisher: String?, now: ContinuousClock.Instant,
                                delivered: inout Int) -> [Action] {
        let publish = message.packet
        if publish.retain {
            // An empty retained message deletes the stored one [MQTT-3.3.1-10, -11].
            retained[publish.topicName] = publish.payload.readableBytes == 0 ? nil : message
        }
        var matched: [[String: Subscription]] = []
        for filter in filterTree.filters(matching: publish.topicName) {
            if let subscribers = subscribersByFilter[filter] { matched.append(subscribers) }
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
    mutating func enqueue(_ message: Message, qos: QoS, to clientID: String, retain: Bool = false,
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
    mutating func hold(_ message: Message, at index: Dictionary<String, Session>.Index) {
        if sessions.values[index].queue.count >= configuration.maximumQueued {
            guard configuration.maximumQueued > 0 else { droppedMessages += 1; return }
            _ = sessions.values[index].queue.popFirst()
            droppedMessages += 1
        }
        sessions.values[index].queue.append(message)
    }

    /// Gives a QoS 1/2 message an identifier and puts it in flight.
    mutating func send(_ message: PublishPacket, to clientID: String, on connection: ConnectionID,
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

    mutating func complete(_ identifier: UInt16, clientID: String, now: ContinuousClock.Instant) -> [Action] {
        sessions[clientID]?.inflight[identifier] = nil
        sessions[clientID]?.inflightOrder.removeAll { $0 == identifier }
        return drainQueue(clientID: clientID, now: now)
    }

    mutating func drainQueue(clientID: String, now: ContinuousClock.Instant) -> [Action] {
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
}
