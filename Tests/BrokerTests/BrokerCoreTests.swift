import MQTTWire
import NIOCore
import Testing
@testable import Broker

/// The broker's rules with no I/O: packets in, exact actions out.
@Suite struct BrokerCoreTests {
    let now = ContinuousClock.now

    func connect(_ id: String, clean: Bool = true, keepAlive: UInt16 = 60, will: ConnectPacket.Will? = nil) -> MQTTPacket {
        .connect(ConnectPacket(protocolVersion: .v3_1_1, cleanStart: clean, keepAlive: keepAlive, clientIdentifier: id, will: will))
    }

    func message(_ topic: String, _ text: String, qos: QoS = .atMostOnce, id: UInt16? = nil, retain: Bool = false) -> PublishPacket {
        PublishPacket(qos: qos, retain: retain, topicName: topic, packetIdentifier: id, payload: ByteBuffer(string: text))
    }

    /// A broker with `subscriber` on connection 1 subscribed to `filter` at `qos`.
    func brokerWithSubscriber(_ filter: String = "chat/#", qos: QoS = .exactlyOnce, clean: Bool = true,
                              configuration: BrokerCore.Configuration = .init()) -> BrokerCore {
        var broker = BrokerCore(configuration: configuration)
        _ = broker.received(connect("subscriber", clean: clean), from: 1, now: now)
        _ = broker.received(.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: filter, qos: qos)])), from: 1, now: now)
        _ = broker.received(connect("publisher"), from: 2, now: now)
        return broker
    }

    @Test func firstPacketMustBeConnect() {
        var broker = BrokerCore()
        let actions = broker.received(.pingreq, from: 1, now: now)
        guard case .close(1, _)? = actions.first else { Issue.record("\(actions)"); return }
    }

    /// One phase per connection: waiting for CONNECT, a CONNECT not accepted (its refusal
    /// encoded in the version the listener answers in), connected; nothing left after the close.
    @Test func eachConnectionGoesThroughItsPhases() {
        var broker = BrokerCore()
        broker.connectionOpened(1, now: now, accepting: .version3)
        #expect(broker.connections[1] == .awaitingConnect(opened: now, accepting: .version3))
        #expect(broker.protocolVersion(on: 1) == nil && broker.clientID(of: 1) == nil)
        let refused = broker.received(.connect(ConnectPacket(protocolVersion: .v5, clientIdentifier: "five")), from: 1, now: now)
        #expect(refused.first == .send(1, .connack(ConnAckPacket(reasonCode: ReasonCode(1)))))
        #expect(broker.connections[1] == .connecting(version: .v3_1_1) && broker.protocolVersion(on: 1) == .v3_1_1)
        #expect(broker.clientID(of: 1) == nil)
        _ = broker.connectionClosed(1, now: now)
        #expect(broker.connections[1] == nil)

        broker.connectionOpened(2, now: now)
        _ = broker.received(connect("accepted"), from: 2, now: now)
        #expect(broker.connections[2] == .connected(clientID: "accepted", version: .v3_1_1))
        #expect(broker.clientID(of: 2) == "accepted" && broker.protocolVersion(on: 2) == .v3_1_1)
        _ = broker.connectionClosed(2, now: now)
        #expect(broker.connections.isEmpty)
    }

    @Test func connackAndSessionPresent() {
        var broker = BrokerCore()
        #expect(broker.received(connect("a", clean: false), from: 1, now: now) == [.send(1, .connack(ConnAckPacket(sessionPresent: false)))])
        _ = broker.connectionClosed(1, now: now)
        #expect(broker.received(connect("a", clean: false), from: 2, now: now) == [.send(2, .connack(ConnAckPacket(sessionPresent: true)))])
        _ = broker.connectionClosed(2, now: now)
        // A clean CONNECT discards the stored session.
        #expect(broker.received(connect("a", clean: true), from: 3, now: now) == [.send(3, .connack(ConnAckPacket(sessionPresent: false)))])
    }

    @Test func emptyIdentifierOnlyWithACleanSession() {
        var broker = BrokerCore()
        #expect(broker.received(connect("", clean: true), from: 1, now: now) == [.send(1, .connack(ConnAckPacket()))])
        let refused = broker.received(connect("", clean: false), from: 2, now: now)
        #expect(refused.first == .send(2, .connack(ConnAckPacket(reasonCode: ReasonCode(2)))))
    }

    @Test func identifierLengthLimit() {
        var broker = BrokerCore(configuration: .init(maximumClientIDLength: 4))
        #expect(broker.received(connect("toolong"), from: 1, now: now).first == .send(1, .connack(ConnAckPacket(reasonCode: ReasonCode(2)))))
    }

    @Test func takeOverClosesTheOldConnection() {
        var broker = BrokerCore()
        _ = broker.received(connect("same"), from: 1, now: now)
        let actions = broker.received(connect("same"), from: 2, now: now)
        #expect(actions.first == .close(1, reason: "taken over by a new connection of same"))
        #expect(actions.contains(.send(2, .connack(ConnAckPacket()))))
        #expect(broker.connectedClients == ["same"])
    }

    @Test(arguments: [(QoS.atMostOnce, QoS.exactlyOnce, QoS.atMostOnce), (.exactlyOnce, .atLeastOnce, .atLeastOnce), (.atLeastOnce, .exactlyOnce, .atLeastOnce), (.exactlyOnce, .exactlyOnce, .exactlyOnce)])
    func deliveryQoSIsTheMinimum(published: QoS, subscribed: QoS, delivered: QoS) {
        var broker = brokerWithSubscriber(qos: subscribed)
        let actions = broker.received(.publish(message("chat/1", "hi", qos: published, id: published == .atMostOnce ? nil : 9)), from: 2, now: now)
        let sent = actions.compactMap { action -> PublishPacket? in
            if case .send(1, .publish(let p)) = action { p } else { nil }
        }
        #expect(sent.count == 1)
        #expect(sent.first?.qos == delivered)
        #expect(sent.first?.packetIdentifier == (delivered == .atMostOnce ? nil : 1))
    }

    @Test func wildcardsAndOverlapDeliverOnce() {
        var broker = brokerWithSubscriber("chat/+/text", qos: .atMostOnce)
        _ = broker.received(.subscribe(SubscribePacket(packetIdentifier: 2, subscriptions: [.init(topicFilter: "chat/#", qos: .atLeastOnce)])), from: 1, now: now)
        let actions = broker.received(.publish(message("chat/room/text", "x", qos: .atLeastOnce, id: 5)), from: 2, now: now)
        let deliveries = actions.filter { if case .send(1, .publish) = $0 { true } else { false } }
        #expect(deliveries.count == 1)
        #expect(actions.contains(.send(2, .puback(.init(packetIdentifier: 5)))))
        #expect(broker.received(.publish(message("other/room/text", "x")), from: 2, now: now).isEmpty)
    }

    @Test func qos2FromAPublisherIsRoutedOnce() {
        var broker = brokerWithSubscriber(qos: .atMostOnce)
        let first = broker.received(.publish(message("chat/a", "1", qos: .exactlyOnce, id: 3)), from: 2, now: now)
        #expect(first.contains(.send(2, .pubrec(.init(packetIdentifier: 3)))))
        #expect(first.contains { if case .send(1, .publish) = $0 { true } else { false } })
        var dup = message("chat/a", "1", qos: .exactlyOnce, id: 3)
        dup.dup = true
        #expect(broker.received(.publish(dup), from: 2, now: now) == [.send(2, .pubrec(.init(packetIdentifier: 3)))])
        #expect(broker.received(.pubrel(.init(packetIdentifier: 3)), from: 2, now: now) == [.send(2, .pubcomp(.init(packetIdentifier: 3)))])
    }

    @Test func qos2ToASubscriberCompletes() {
        var broker = brokerWithSubscriber(qos: .exactlyOnce)
        _ = broker.received(.publish(message("chat/a", "1", qos: .exactlyOnce, id: 3)), from: 2, now: now)
        #expect(broker.pending(of: "subscriber")?.inflight == 1)
        #expect(broker.received(.pubrec(.init(packetIdentifier: 1)), from: 1, now: now) == [.send(1, .pubrel(.init(packetIdentifier: 1)))])
        #expect(broker.received(.pubcomp(.init(packetIdentifier: 1)), from: 1, now: now).isEmpty)
        #expect(broker.pending(of: "subscriber")?.inflight == 0)
    }

    @Test func inflightWindowQueuesTheRestInOrder() {
        var broker = brokerWithSubscriber(qos: .atLeastOnce, configuration: .init(maximumInflight: 2))
        var delivered: [String] = []
        func collect(_ actions: [BrokerCore.Action]) {
            for case .send(1, .publish(let p)) in actions { delivered.append(String(buffer: p.payload)) }
        }
        for index in 0..<5 {
            collect(broker.received(.publish(message("chat/a", "\(index)", qos: .atLeastOnce, id: UInt16(index + 1))), from: 2, now: now))
        }
        #expect(delivered == ["0", "1"])
        #expect(broker.pending(of: "subscriber")! == (inflight: 2, queued: 3))
        collect(broker.received(.puback(.init(packetIdentifier: 1)), from: 1, now: now))
        collect(broker.received(.puback(.init(packetIdentifier: 2)), from: 1, now: now))
        collect(broker.received(.puback(.init(packetIdentifier: 3)), from: 1, now: now))
        #expect(delivered == ["0", "1", "2", "3", "4"])
    }

    @Test func persistentSessionQueuesWhileOfflineAndResendsInflight() {
        var broker = brokerWithSubscriber(qos: .atLeastOnce, clean: false)
        _ = broker.received(.publish(message("chat/a", "in flight", qos: .atLeastOnce, id: 1)), from: 2, now: now)
        _ = broker.connectionClosed(1, now: now)
        _ = broker.received(.publish(message("chat/a", "while away", qos: .atLeastOnce, id: 2)), from: 2, now: now)
        _ = broker.received(.publish(message("chat/a", "qos 0 is dropped")), from: 2, now: now)
        let resumed = broker.received(connect("subscriber", clean: false), from: 3, now: now)
        #expect(resumed.first == .send(3, .connack(ConnAckPacket(sessionPresent: true))))
        let publishes = resumed.compactMap { action -> PublishPacket? in if case .send(3, .publish(let p)) = action { p } else { nil } }
        #expect(publishes.map { String(buffer: $0.payload) } == ["in flight", "while away"])
        #expect(publishes.map(\.dup) == [true, false])
    }

    @Test func retainedMessagesReachLaterSubscribersWithTheRetainFlag() {
        var broker = BrokerCore()
        _ = broker.received(connect("publisher"), from: 2, now: now)
        _ = broker.received(.publish(message("status/a", "online", qos: .atLeastOnce, id: 1, retain: true)), from: 2, now: now)
        _ = broker.received(.publish(message("status/b", "away", retain: true)), from: 2, now: now)
        _ = broker.received(.publish(message("status/b", "", retain: true)), from: 2, now: now)  // deletes
        _ = broker.received(connect("late"), from: 1, now: now)
        let actions = broker.received(.subscribe(SubscribePacket(packetIdentifier: 7, subscriptions: [.init(topicFilter: "status/+", qos: .atMostOnce)])), from: 1, now: now)
        #expect(actions.first == .send(1, .suback(SubAckPacket(packetIdentifier: 7, reasonCodes: [ReasonCode(0)]))))
        let retained = actions.compactMap { action -> PublishPacket? in if case .send(1, .publish(let p)) = action { p } else { nil } }
        #expect(retained.map { String(buffer: $0.payload) } == ["online"])
        #expect(retained.first?.retain == true && retained.first?.qos == .atMostOnce)
        // Live routing clears the retain flag.
        let live = broker.received(.publish(message("status/a", "busy", retain: true)), from: 2, now: now)
        #expect(live.contains { if case .send(1, .publish(let p)) = $0 { !p.retain } else { false } })
    }

    @Test func willIsPublishedOnLossNotOnDisconnect() {
        let will = ConnectPacket.Will(topic: "chat/will", payload: ByteBuffer(string: "gone"), qos: .atMostOnce)
        var broker = brokerWithSubscriber(qos: .atMostOnce)
        _ = broker.received(connect("dying", will: will), from: 3, now: now)
        let lost = broker.connectionClosed(3, now: now)
        #expect(lost.contains { if case .send(1, .publish(let p)) = $0 { String(buffer: p.payload) == "gone" } else { false } })
        _ = broker.received(connect("polite", will: will), from: 4, now: now)
        let polite = broker.received(.disconnect(DisconnectPacket()), from: 4, now: now)
        #expect(polite == [.close(4, reason: "DISCONNECT")])
    }

    @Test func keepAliveIsEnforcedAtOneAndAHalfTimes() {
        var broker = BrokerCore()
        _ = broker.received(connect("sleepy", keepAlive: 10), from: 1, now: now)
        #expect(broker.tick(now: now + .seconds(15)).isEmpty)
        _ = broker.received(.pingreq, from: 1, now: now + .seconds(14))
        #expect(broker.tick(now: now + .seconds(29)).isEmpty)
        guard case .close(1, _)? = broker.tick(now: now + .milliseconds(29_001)).first else { Issue.record("not closed"); return }
        #expect(broker.connectedClients.isEmpty)
    }

    @Test func pingCanGoUnanswered() {
        var answering = BrokerCore()
        _ = answering.received(connect("a"), from: 1, now: now)
        #expect(answering.received(.pingreq, from: 1, now: now) == [.send(1, .pingresp)])
        var silent = BrokerCore(configuration: .init(answersPing: false))
        _ = silent.received(connect("a"), from: 1, now: now)
        #expect(silent.received(.pingreq, from: 1, now: now).isEmpty)
    }

    @Test func pushWithoutSubscriptionAndTimedRedelivery() {
        var broker = BrokerCore(configuration: .init(redeliveryInterval: .seconds(5)))
        _ = broker.received(connect("web-beejs_0123456789ab"), from: 1, now: now)
        let pushed = broker.push(message("notification", "{}", qos: .atLeastOnce), to: "web-beejs_0123456789ab", now: now)
        guard case .send(1, .publish(let first))? = pushed.first else { Issue.record("\(pushed)"); return }
        #expect(first.qos == .atLeastOnce && !first.dup)
        #expect(broker.tick(now: now + .seconds(4)).isEmpty)
        guard case .send(1, .publish(let again))? = broker.tick(now: now + .seconds(5)).first else { Issue.record("no redelivery"); return }
        #expect(again.dup && again.packetIdentifier == first.packetIdentifier)
        _ = broker.received(.puback(.init(packetIdentifier: first.packetIdentifier ?? 0)), from: 1, now: now + .seconds(6))
        #expect(broker.tick(now: now + .seconds(20)).isEmpty)
    }

    @Test func oversizePayloadClosesWithWill() {
        var broker = BrokerCore(configuration: .init(maximumPayloadSize: 4))
        _ = broker.received(connect("big"), from: 1, now: now)
        guard case .close(1, _)? = broker.received(.publish(message("t", "12345")), from: 1, now: now).first else {
            Issue.record("not closed"); return
        }
    }

    @Test func noConnectWithinTheTimeoutCloses() {
        var broker = BrokerCore(configuration: .init(connectionTimeout: .seconds(2)))
        broker.connectionOpened(1, now: now)
        broker.connectionOpened(2, now: now)
        _ = broker.received(connect("prompt"), from: 2, now: now + .seconds(1))
        #expect(broker.tick(now: now + .milliseconds(1999)).isEmpty)
        #expect(broker.tick(now: now + .seconds(2)) == [.close(1, reason: "no CONNECT within 2.0 seconds")])
        #expect(broker.tick(now: now + .seconds(3)).isEmpty)
    }

    @Test func aFullOfflineQueueDropsTheOldest() {
        var broker = brokerWithSubscriber(qos: .atLeastOnce, clean: false, configuration: .init(maximumQueued: 3))
        _ = broker.connectionClosed(1, now: now)
        for index in 1...5 {
            _ = broker.received(.publish(message("chat/a", "\(index)", qos: .atLeastOnce, id: UInt16(index))), from: 2, now: now)
        }
        #expect(broker.pending(of: "subscriber")! == (inflight: 0, queued: 3))
        #expect(broker.droppedMessages == 2)
        let resumed = broker.received(connect("subscriber", clean: false), from: 3, now: now)
        let texts = resumed.compactMap { action -> String? in if case .send(3, .publish(let p)) = action { String(buffer: p.payload) } else { nil } }
        #expect(texts == ["3", "4", "5"])
    }

    @Test func aLongQueueDrainsInOrder() {
        var broker = brokerWithSubscriber(qos: .atLeastOnce, clean: false, configuration: .init(maximumInflight: 10))
        _ = broker.connectionClosed(1, now: now)
        for index in 0..<5_000 {
            _ = broker.received(.publish(message("chat/a", "\(index)", qos: .atLeastOnce, id: UInt16(index % 60_000 + 1))), from: 2, now: now)
        }
        var received: [Int] = []
        var actions = broker.received(connect("subscriber", clean: false), from: 3, now: now)
        while !actions.isEmpty {
            var next: [BrokerCore.Action] = []
            for case .send(3, .publish(let p)) in actions {
                received.append(Int(String(buffer: p.payload)) ?? -1)
                next += broker.received(.puback(.init(packetIdentifier: p.packetIdentifier ?? 0)), from: 3, now: now)
            }
            actions = next
        }
        #expect(received == Array(0..<5_000))
    }

    @Test func aCleanStartForgetsTheOldSubscriptions() {
        var broker = brokerWithSubscriber("chat/#", qos: .atMostOnce, clean: false)
        _ = broker.connectionClosed(1, now: now)
        _ = broker.received(connect("subscriber", clean: true), from: 3, now: now)
        #expect(broker.subscriptions(of: "subscriber") == [:])
        #expect(broker.received(.publish(message("chat/a", "x")), from: 2, now: now).isEmpty)
        // Subscribed again: delivered once, to the new connection.
        _ = broker.received(.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: "chat/+")])), from: 3, now: now)
        let actions = broker.received(.publish(message("chat/a", "y")), from: 2, now: now)
        #expect(actions.count == 1 && actions.allSatisfy { if case .send(3, .publish) = $0 { true } else { false } })
    }

    @Test func serverOnlyPacketsFromAClientClose() {
        var broker = BrokerCore()
        _ = broker.received(connect("odd"), from: 1, now: now)
        guard case .close(1, _)? = broker.received(.pingresp, from: 1, now: now).first else { Issue.record("not closed"); return }
    }
}
