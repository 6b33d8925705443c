import MQTTWire
import NIOCore

// The subscription rules of BrokerCore: SUBSCRIBE (options, identifiers, retained delivery by
// retain handling) and the two indexes of subscriptions.
extension BrokerCore {
    /// UNSUBSCRIBE: each filter removed; a 5.0 client is told which existed.
    mutating func unsubscribeReceived(_ unsubscribe: UnsubscribePacket, from connection: ConnectionID, clientID: String) -> [Action] {
        var codes: [ReasonCode] = []
        for filter in unsubscribe.topicFilters {
            let existed = removeSubscription(filter, of: clientID)
            codes.append(existed ? .success : .noSubscriptionExisted)
        }
        let isVersion5 = sessions[clientID]?.isVersion5 == true
        return [.send(connection, .unsuback(UnsubAckPacket(packetIdentifier: unsubscribe.packetIdentifier, reasonCodes: isVersion5 ? codes : [])))]
    }

    mutating func subscribeReceived(_ subscribe: SubscribePacket, from connection: ConnectionID, clientID: String,
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
            if isNew, (sessions[clientID]?.subscriptions.count ?? 0) >= configuration.maximumSubscriptionsPerClient {
                codes.append(isVersion5 ? .quotaExceeded : ReasonCode(0x80))
                continue
            }
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
        // Sorted once for the packet, not once per filter (a SUBSCRIBE of a thousand filters
        // sorted every retained topic a thousand times).
        let retainedTopics = accepted.isEmpty || retained.isEmpty ? [] : retained.keys.sorted()
        for (subscription, isNew) in accepted {
            switch subscription.retainHandling {
            case .doNotSend: continue
            case .sendOnNewSubscribe where !isNew: continue
            default: break
            }
            for topic in retainedTopics where TopicMatching.matches(filter: subscription.topicFilter, topic: topic) {
                guard var message = retained[topic] else { continue }
                if let expiry = message.expiresAt, expiry <= now { retained[topic] = nil; continue }
                message.packet.properties = Self.forwarded(message.packet.properties, identifiers: identifier.map { [$0] } ?? [],
                                                           to: isVersion5)
                enqueue(message, qos: min(message.packet.qos, subscription.qos), to: clientID, retain: true, now: now, into: &actions)
            }
        }
        return actions
    }

    mutating func setSubscription(_ filter: String, _ subscription: Subscription, of clientID: String) {
        sessions[clientID]?.subscriptions[filter] = subscription
        if subscribersByFilter[filter] == nil { filterTree.insert(filter) }
        subscribersByFilter[filter, default: [:]][clientID] = subscription
    }

    /// Whether the session had that subscription.
    mutating func removeSubscription(_ filter: String, of clientID: String) -> Bool {
        guard sessions[clientID]?.subscriptions.removeValue(forKey: filter) != nil else { return false }
        dropSubscriber(clientID, from: filter)
        return true
    }

    /// Takes `clientID` off `filter`'s subscribers; a filter nobody holds leaves the tree.
    mutating func dropSubscriber(_ clientID: String, from filter: String) {
        subscribersByFilter[filter]?[clientID] = nil
        if subscribersByFilter[filter]?.isEmpty == true {
            subscribersByFilter[filter] = nil
            filterTree.remove(filter)
        }
    }
}
