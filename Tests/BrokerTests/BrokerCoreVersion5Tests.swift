import MQTTWire
import NIOCore
import Testing
@testable import Broker

/// The broker's MQTT 5.0 rules with no I/O: session and message expiry, will delay, topic
/// aliases, receive maximum, maximum packet size, subscription options and identifiers,
/// reason codes and strings, user properties.
@Suite struct BrokerCoreVersion5Tests {
    let now = ContinuousClock.now

    func connect(_ id: String, clean: Bool = true, properties: MQTTProperties = [], will: ConnectPacket.Will? = nil) -> MQTTPacket {
        .connect(ConnectPacket(protocolVersion: .v5, cleanStart: clean, keepAlive: 60, clientIdentifier: id, will: will,
                               properties: properties))
    }

    func message(_ topic: String, _ text: String, qos: QoS = .atMostOnce, id: UInt16? = nil, retain: Bool = false,
                 properties: MQTTProperties = []) -> MQTTPacket {
        .publish(PublishPacket(qos: qos, retain: retain, topicName: topic, packetIdentifier: id, properties: properties,
                               payload: ByteBuffer(string: text)))
    }

    func subscribe(_ filter: String, qos: QoS = .atLeastOnce, id: UInt16 = 1, noLocal: Bool = false,
                   retainAsPublished: Bool = false, retainHandling: SubscribePacket.RetainHandling = .sendOnSubscribe,
                   properties: MQTTProperties = []) -> MQTTPacket {
        .subscribe(SubscribePacket(packetIdentifier: id, subscriptions: [.init(
            topicFilter: filter, qos: qos, noLocal: noLocal, retainAsPublished: retainAsPublished,
            retainHandling: retainHandling)], properties: properties))
    }

    func publishes(_ actions: [BrokerCore.Action], to connection: Int) -> [PublishPacket] {
        actions.compactMap { if case .send(connection, .publish(let p)) = $0 { p } else { nil } }
    }

    func disconnects(_ actions: [BrokerCore.Action], _ connection: Int) -> DisconnectPacket? {
        actions.lazy.compactMap { if case .send(connection, .disconnect(let d)) = $0 { d } else { nil } }.first
    }

    @Test func connackAnnouncesLimitsAndAssignsAnIdentifier() {
        var broker = BrokerCore(configuration: .init(maximumInflight: 20, maximumPayloadSize: 1000, topicAliasMaximum: 5))
        let actions = broker.received(connect("", clean: false), from: 1, now: now)
        guard case .send(1, .connack(let connack))? = actions.first else { Issue.record("\(actions)"); return }
        #expect(connack.reasonCode == .success)
        #expect(connack.properties.first(.receiveMaximum) == .receiveMaximum(20))
        #expect(connack.properties.first(.topicAliasMaximum) == .topicAliasMaximum(5))
        #expect(connack.properties.first(.maximumPacketSize) == .maximumPacketSize(UInt32(1000 + 65_536 + 5)))
        guard case .assignedClientIdentifier(let assigned)? = connack.properties.first(.assignedClientIdentifier) else {
            Issue.record("no assigned identifier"); return
        }
        #expect(broker.connectedClients == [assigned])
        #expect(broker.version(of: assigned) == .v5)
    }

    @Test func refusalsCarryReasonCodesAndStrings() {
        var broker = BrokerCore(configuration: .init(maximumClientIDLength: 3))
        let actions = broker.received(connect("toolong"), from: 1, now: now)
        guard case .send(1, .connack(let connack))? = actions.first else { Issue.record("\(actions)"); return }
        #expect(connack.reasonCode == .clientIdentifierNotValid)
        #expect(connack.properties.reasonString?.contains("longer than 3") == true)
        let auth = broker.received(connect("a", properties: [.authenticationMethod("SCRAM-SHA-1")]), from: 2, now: now)
        #expect(auth.first == .send(2, .connack(ConnAckPacket(reasonCode: .badAuthenticationMethod,
                                                               properties: [.reasonString("enhanced authentication is not supported")]))))
    }

    @Test func listenersServeTheirVersionsOnly() {
        var broker = BrokerCore()
        broker.connectionOpened(1, now: now, accepting: .version3)
        let actions = broker.received(connect("a"), from: 1, now: now)
        #expect(actions.first == .send(1, .connack(ConnAckPacket(reasonCode: ReasonCode(1)))))
        broker.connectionOpened(2, now: now, accepting: .version5)
        let old = broker.received(.connect(ConnectPacket(clientIdentifier: "b")), from: 2, now: now)
        #expect(old.first == .send(2, .connack(ConnAckPacket(reasonCode: ReasonCode(1)))))
        broker.connectionOpened(3, now: now, accepting: .version5)
        #expect(broker.received(connect("c"), from: 3, now: now).first.map { if case .send(3, .connack(let c)) = $0 { c.reasonCode == .success } else { false } } == true)
        // The first CONNECT fixes the version a connection is answered in, refused or not.
        #expect(broker.protocolVersion(on: 1) == .v3_1_1)
        #expect(broker.protocolVersion(on: 3) == .v5)
        let second = broker.received(.connect(ConnectPacket(clientIdentifier: "c")), from: 3, now: now)
        // Answered as the 5.0 connection it is (a DISCONNECT with a reason); then it is closed and forgotten.
        #expect(disconnects(second, 3)?.reasonCode == .protocolError)
        #expect(broker.protocolVersion(on: 3) == nil)
        guard case .connect(let packet) = connect("a") else { return }
        #expect(BrokerCore.answeringVersion(for: packet, accepting: .version3) == .v3_1_1)
        #expect(BrokerCore.answeringVersion(for: packet, accepting: .any) == .v5)
    }

    @Test func withoutDynamicFiltersAPublishNobodyEverSubscribedToDisconnects() {
        var broker = BrokerCore(configuration: .init(dynamicFilters: false))
        _ = broker.received(connect("sub"), from: 1, now: now)
        _ = broker.received(subscribe("chat/+"), from: 1, now: now)
        _ = broker.received(.unsubscribe(UnsubscribePacket(packetIdentifier: 2, topicFilters: ["chat/+"])), from: 1, now: now)
        _ = broker.received(connect("pub"), from: 2, now: now)
        // The filter outlives its subscription, as rumqttd's do.
        #expect(disconnects(broker.received(message("chat/a", "ok"), from: 2, now: now), 2) == nil)
        #expect(disconnects(broker.received(message("other", "no"), from: 2, now: now), 2)?.reasonCode == .topicNameInvalid)
    }

    @Test func sessionExpiryKeepsTheSessionForItsIntervalOnly() {
        var broker = BrokerCore()
        _ = broker.received(connect("s", properties: [.sessionExpiryInterval(30)]), from: 1, now: now)
        _ = broker.received(subscribe("t"), from: 1, now: now)
        _ = broker.connectionClosed(1, now: now)
        _ = broker.tick(now: now + .seconds(29))
        #expect(broker.storedSessions == ["s"])
        _ = broker.tick(now: now + .seconds(30))
        #expect(broker.storedSessions.isEmpty)
        // Expiry 0 (the default): the session ends with the connection, whatever Clean Start said.
        _ = broker.received(connect("z", clean: false), from: 2, now: now)
        _ = broker.connectionClosed(2, now: now)
        #expect(broker.storedSessions.isEmpty)
    }

    @Test func resumingWithinTheIntervalFindsTheSessionAndItsQueue() {
        var broker = BrokerCore()
        _ = broker.received(connect("s", properties: [.sessionExpiryInterval(60)]), from: 1, now: now)
        _ = broker.received(subscribe("t"), from: 1, now: now)
        _ = broker.connectionClosed(1, now: now)
        _ = broker.received(connect("p"), from: 2, now: now)
        _ = broker.received(message("t", "while away", qos: .atLeastOnce, id: 1), from: 2, now: now)
        let resumed = broker.received(connect("s", clean: false, properties: [.sessionExpiryInterval(60)]), from: 3, now: now + .seconds(10))
        guard case .send(3, .connack(let connack))? = resumed.first else { Issue.record("\(resumed)"); return }
        #expect(connack.sessionPresent)
        #expect(publishes(resumed, to: 3).map { String(buffer: $0.payload) } == ["while away"])
    }

    @Test func disconnectCannotGiveExpiryToASessionThatHadNone() {
        var broker = BrokerCore()
        _ = broker.received(connect("s"), from: 1, now: now)
        let actions = broker.received(.disconnect(DisconnectPacket(properties: [.sessionExpiryInterval(10)])), from: 1, now: now)
        #expect(disconnects(actions, 1)?.reasonCode == .protocolError)
        #expect(actions.contains { if case .close(1, _) = $0 { true } else { false } })
    }

    @Test func willDelayIsCancelledByAReconnect() {
        var broker = BrokerCore()
        _ = broker.received(connect("watcher"), from: 1, now: now)
        _ = broker.received(subscribe("wills/#", qos: .atMostOnce), from: 1, now: now)
        let will = ConnectPacket.Will(topic: "wills/a", payload: ByteBuffer(string: "gone"),
                                      properties: [.willDelayInterval(5), .userProperty(name: "k", value: "v")])
        _ = broker.received(connect("a", properties: [.sessionExpiryInterval(100)], will: will), from: 2, now: now)
        #expect(broker.connectionClosed(2, now: now).isEmpty)
        #expect(broker.tick(now: now + .seconds(4)).isEmpty)
        let fired = publishes(broker.tick(now: now + .seconds(5)), to: 1)
        #expect(fired.map { String(buffer: $0.payload) } == ["gone"])
        #expect(fired.first?.properties.userProperties.map(\.name) == ["k"])
        #expect(fired.first?.properties.first(.willDelayInterval) == nil)
        // Back within the delay: no will.
        _ = broker.received(connect("a", clean: false, properties: [.sessionExpiryInterval(100)], will: will), from: 3, now: now + .seconds(10))
        _ = broker.connectionClosed(3, now: now + .seconds(10))
        _ = broker.received(connect("a", clean: false, properties: [.sessionExpiryInterval(100)]), from: 4, now: now + .seconds(12))
        #expect(publishes(broker.tick(now: now + .seconds(30)), to: 1).isEmpty)
    }

    @Test func disconnectWithWillMessageSendsIt() {
        var broker = BrokerCore()
        _ = broker.received(connect("watcher"), from: 1, now: now)
        _ = broker.received(subscribe("wills/#", qos: .atMostOnce), from: 1, now: now)
        _ = broker.received(connect("a", will: .init(topic: "wills/a", payload: ByteBuffer(string: "bye"))), from: 2, now: now)
        let actions = broker.received(.disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage)), from: 2, now: now)
        #expect(publishes(actions, to: 1).count == 1)
    }

    @Test func messageExpiryDropsStaleMessagesAndCountsDown() {
        var broker = BrokerCore(configuration: .init(maximumInflight: 1))
        _ = broker.received(connect("slow"), from: 1, now: now)
        _ = broker.received(subscribe("t"), from: 1, now: now)
        _ = broker.received(connect("p"), from: 2, now: now)
        let first = broker.received(message("t", "one", qos: .atLeastOnce, id: 1, properties: [.messageExpiryInterval(10)]), from: 2, now: now)
        #expect(publishes(first, to: 1).first?.properties.first(.messageExpiryInterval) == .messageExpiryInterval(10))
        _ = broker.received(message("t", "stale", qos: .atLeastOnce, id: 2, properties: [.messageExpiryInterval(3)]), from: 2, now: now)
        _ = broker.received(message("t", "fresh", qos: .atLeastOnce, id: 3, properties: [.messageExpiryInterval(60)]), from: 2, now: now)
        // The window frees 5 s later: "stale" has expired, "fresh" goes with 55 s left.
        let later = broker.received(.puback(.init(packetIdentifier: 1)), from: 1, now: now + .seconds(5))
        let sent = publishes(later, to: 1)
        #expect(sent.map { String(buffer: $0.payload) } == ["fresh"])
        #expect(sent.first?.properties.first(.messageExpiryInterval) == .messageExpiryInterval(55))
        #expect(broker.droppedMessages == 1)
    }

    @Test func topicAliasesAreSetUsedAndChecked() {
        var broker = BrokerCore(configuration: .init(topicAliasMaximum: 4))
        _ = broker.received(connect("sub"), from: 1, now: now)
        _ = broker.received(subscribe("long/topic/name", qos: .atMostOnce), from: 1, now: now)
        _ = broker.received(connect("pub"), from: 2, now: now)
        let set = broker.received(message("long/topic/name", "1", properties: [.topicAlias(3)]), from: 2, now: now)
        let used = broker.received(message("", "2", properties: [.topicAlias(3)]), from: 2, now: now)
        let delivered = publishes(set + used, to: 1)
        #expect(delivered.map(\.topicName) == ["long/topic/name", "long/topic/name"])
        #expect(delivered.allSatisfy { $0.properties.topicAlias == nil })
        let unknown = broker.received(message("", "3", properties: [.topicAlias(2)]), from: 2, now: now)
        #expect(disconnects(unknown, 2)?.reasonCode == .protocolError)
        _ = broker.received(connect("pub2"), from: 3, now: now)
        let outOfRange = broker.received(message("x", "4", properties: [.topicAlias(5)]), from: 3, now: now)
        #expect(disconnects(outOfRange, 3)?.reasonCode == .topicAliasInvalid)
    }

    @Test func theClientsReceiveMaximumLimitsWhatIsInFlight() {
        var broker = BrokerCore()
        _ = broker.received(connect("sub", properties: [.receiveMaximum(2)]), from: 1, now: now)
        _ = broker.received(subscribe("t"), from: 1, now: now)
        _ = broker.received(connect("pub"), from: 2, now: now)
        var sent = 0
        for index in 1...5 {
            sent += publishes(broker.received(message("t", "\(index)", qos: .atLeastOnce, id: UInt16(index)), from: 2, now: now), to: 1).count
        }
        #expect(sent == 2)
        #expect(broker.pending(of: "sub")! == (inflight: 2, queued: 3))
    }

    @Test func qos2BeyondTheBrokersReceiveMaximumIsRefused() {
        var broker = BrokerCore(configuration: .init(maximumInflight: 2))
        _ = broker.received(connect("pub"), from: 1, now: now)
        _ = broker.received(message("t", "1", qos: .exactlyOnce, id: 1), from: 1, now: now)
        _ = broker.received(message("t", "2", qos: .exactlyOnce, id: 2), from: 1, now: now)
        let third = broker.received(message("t", "3", qos: .exactlyOnce, id: 3), from: 1, now: now)
        #expect(disconnects(third, 1)?.reasonCode == .receiveMaximumExceeded)
    }

    @Test func messagesLargerThanTheClientAcceptsAreNotSent() {
        var broker = BrokerCore()
        _ = broker.received(connect("small", properties: [.maximumPacketSize(64)]), from: 1, now: now)
        _ = broker.received(subscribe("t", qos: .atMostOnce), from: 1, now: now)
        _ = broker.received(connect("pub"), from: 2, now: now)
        #expect(publishes(broker.received(message("t", String(repeating: "x", count: 40)), from: 2, now: now), to: 1).count == 1)
        #expect(publishes(broker.received(message("t", String(repeating: "x", count: 80)), from: 2, now: now), to: 1).isEmpty)
        #expect(broker.droppedMessages == 1)
    }

    @Test func subscriptionOptionsAndIdentifiers() {
        var broker = BrokerCore()
        _ = broker.received(connect("me"), from: 1, now: now)
        _ = broker.received(subscribe("chat/#", qos: .atMostOnce, noLocal: true), from: 1, now: now)
        _ = broker.received(subscribe("chat/+", qos: .atMostOnce, id: 2, retainAsPublished: true, properties: [.subscriptionIdentifier(7)]), from: 1, now: now)
        // Own message: chat/# is no-local, chat/+ matches with identifier 7 and keeps the retain flag.
        let own = publishes(broker.received(message("chat/a", "mine", retain: true), from: 1, now: now), to: 1)
        #expect(own.count == 1)
        #expect(own.first?.retain == true)
        #expect(own.first?.properties.first(.subscriptionIdentifier) == .subscriptionIdentifier(7))
        // Retain handling 1: retained messages only for a new subscription; 2: never.
        let again = broker.received(subscribe("chat/+", qos: .atMostOnce, id: 3, retainHandling: .sendOnNewSubscribe), from: 1, now: now)
        #expect(publishes(again, to: 1).isEmpty)
        let never = broker.received(subscribe("chat/a", qos: .atMostOnce, id: 4, retainHandling: .doNotSend), from: 1, now: now)
        #expect(publishes(never, to: 1).isEmpty)
        let fresh = broker.received(subscribe("chat/#", qos: .atMostOnce, id: 5, retainHandling: .sendOnNewSubscribe), from: 1, now: now)
        #expect(publishes(fresh, to: 1).isEmpty)  // chat/# existed
        let shared = broker.received(subscribe("$share/g/chat/a", id: 6), from: 1, now: now)
        #expect(shared.first == .send(1, .suback(SubAckPacket(packetIdentifier: 6, reasonCodes: [.sharedSubscriptionsNotSupported]))))
    }

    @Test func userPropertiesReachVersion5SubscribersOnly() {
        var broker = BrokerCore()
        _ = broker.received(connect("five"), from: 1, now: now)
        _ = broker.received(subscribe("t", qos: .atMostOnce), from: 1, now: now)
        _ = broker.received(.connect(ConnectPacket(clientIdentifier: "three")), from: 2, now: now)
        _ = broker.received(.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: "t")])), from: 2, now: now)
        _ = broker.received(connect("pub"), from: 3, now: now)
        let properties: MQTTProperties = [.userProperty(name: "trace", value: "abc"), .contentType("text/plain"), .responseTopic("r")]
        let actions = broker.received(message("t", "x", properties: properties), from: 3, now: now)
        #expect(publishes(actions, to: 1).first?.properties == properties)
        #expect(publishes(actions, to: 2).first?.properties == [])
    }

    @Test func reasonCodesOnAcknowledgements() {
        var broker = BrokerCore()
        _ = broker.received(connect("pub"), from: 1, now: now)
        let nobody = broker.received(message("nobody/listens", "x", qos: .atLeastOnce, id: 9), from: 1, now: now)
        #expect(nobody == [.send(1, .puback(.init(packetIdentifier: 9, reasonCode: .noMatchingSubscribers)))])
        _ = broker.received(subscribe("a"), from: 1, now: now)
        let unsubscribed = broker.received(.unsubscribe(UnsubscribePacket(packetIdentifier: 4, topicFilters: ["a", "b"])), from: 1, now: now)
        #expect(unsubscribed == [.send(1, .unsuback(UnsubAckPacket(packetIdentifier: 4, reasonCodes: [.success, .noSubscriptionExisted])))])
        #expect(broker.received(.pubrel(.init(packetIdentifier: 77)), from: 1, now: now)
                == [.send(1, .pubcomp(.init(packetIdentifier: 77, reasonCode: .packetIdentifierNotFound)))])
    }

    @Test func takeOverAndKickTellTheOldConnectionWhy() {
        var broker = BrokerCore()
        _ = broker.received(connect("same"), from: 1, now: now)
        let actions = broker.received(connect("same"), from: 2, now: now)
        #expect(disconnects(actions, 1)?.reasonCode == .sessionTakenOver)
        #expect(disconnects(broker.kick("same", now: now), 2)?.reasonCode == .administrativeAction)
    }

    @Test func aSessionResumedIn311GetsNoProperties() {
        // Found by the broker fuzz target: 5.0 properties resent to a 3.1.1 connection.
        var broker = BrokerCore(configuration: .init(maximumInflight: 1))
        _ = broker.received(connect("s", clean: false, properties: [.sessionExpiryInterval(60)]), from: 1, now: now)
        _ = broker.received(subscribe("t"), from: 1, now: now)
        _ = broker.received(connect("p"), from: 2, now: now)
        let properties: MQTTProperties = [.userProperty(name: "k", value: "v")]
        _ = broker.received(message("t", "in flight", qos: .atLeastOnce, id: 1, properties: properties), from: 2, now: now)
        _ = broker.received(message("t", "queued", qos: .atLeastOnce, id: 2, properties: properties), from: 2, now: now)
        _ = broker.connectionClosed(1, now: now)
        let resumed = broker.received(.connect(ConnectPacket(protocolVersion: .v3_1_1, cleanStart: false, clientIdentifier: "s")), from: 3, now: now)
        let sent = publishes(resumed, to: 3)
        #expect(sent.map { String(buffer: $0.payload) } == ["in flight"])
        #expect(sent.allSatisfy { $0.properties.isEmpty })
        let next = publishes(broker.received(.puback(.init(packetIdentifier: sent.first?.packetIdentifier ?? 0)), from: 3, now: now), to: 3)
        #expect(next.map { String(buffer: $0.payload) } == ["queued"])
        #expect(next.allSatisfy { $0.properties.isEmpty })
    }

    @Test func decodingViolationsAreExplained() {
        var broker = BrokerCore()
        _ = broker.received(connect("bad"), from: 1, now: now)
        let actions = broker.violation(on: 1, code: .malformedPacket, reason: "invalid UTF-8 in the topic", now: now)
        #expect(actions.first == .send(1, .disconnect(DisconnectPacket(reasonCode: .malformedPacket, properties: [.reasonString("invalid UTF-8 in the topic")]))))
        #expect(broker.connectedClients.isEmpty)
        // Before CONNECT there is no session to tell: the connection just closes.
        #expect(broker.violation(on: 5, code: .malformedPacket, reason: "x", now: now) == [.close(5, reason: "x")])
    }
}
