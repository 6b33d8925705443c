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
        let sending = accepted.filter { subscription, isNew in
            switch subscription.retainHandling {
            case .doNotSend: false
            case .sendOnNewSubscribe: isNew
            default: true
            }
        }.map(\.0)
        guard !sending.isEmpty, !retained.isEmpty else { return actions }
        // One pass over the retained topics (sorted once) finds each new filter's topics through a
        // tree of the new filters: a SUBSCRIBE of a thousand filters matched every retained topic
        // against every filter (100,000 retained messages: 3 s, after 16 s when each filter
        // sorted them again), the broker busy for everyone meanwhile.
        // A few filters (the common `#`, or one topic) are matched directly, without allocating.
        var topicsByFilter: [String: [String]] = [:]
        let filters = Array(Set(sending.map(\.topicFilter)))
        if filters.count <= 8 {
            for topic in retained.keys.sorted() {
                for filter in filters where TopicMatching.matches(filter: filter, topic: topic) {
                    topicsByFilter[filter, default: []].append(topic)
                }
            }
        } else {
            var newFilters = FilterTree()
            for filter in filters { newFilters.insert(filter) }
            for topic in retained.keys.sorted() {
                for filter in newFilters.filters(matching: topic) { topicsByFilter[filter, default: []].append(topic) }
            }
        }
        // Filter by filter, in the SUBSCRIBE's order, each filter's topics sorted, as before.
        for subscription in sending {
            for topic in topicsByFilter[subscription.topicFilter] ?? [] {
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
