import MQTTWire
import NIOCore
import Testing
@testable import WorksClient

/// The session rules with no I/O: events in, exact actions out.
@Suite struct SessionStateMachineTests {
    let start = ContinuousClock.now

    func session(clean: Bool = true, ping: MQTTClientSession.PingResponsePolicy = .optional,
                 subscriptions: [SubscribePacket.Subscription] = []) -> MQTTClientSession {
        MQTTClientSession(configuration: .init(
            clientIdentifier: "web-beejs_0123456789ab", username: "dummy", persistentSession: !clean,
            pingResponse: ping, subscriptions: subscriptions))
    }

    func connected(clean: Bool = true, ping: MQTTClientSession.PingResponsePolicy = .optional) -> MQTTClientSession {
        var s = session(clean: clean, ping: ping)
        _ = s.transportOpened(now: start)
        _ = s.received(.connack(ConnAckPacket()), now: start)
        return s
    }

    func publish(_ qos: QoS, id: UInt16?, dup: Bool = false, text: String = "{}") -> PublishPacket {
        PublishPacket(dup: dup, qos: qos, topicName: "notification", packetIdentifier: id, payload: ByteBuffer(string: text))
    }

    @Test func connectIsTheReferenceByteImage() throws {
        var s = session()
        let actions = s.transportOpened(now: start)
        guard case .send(let packet) = actions.first, actions.count == 1 else {
            Issue.record("expected one CONNECT, got \(actions)")
            return
        }
        let bytes = try MQTTEncoder().encode(packet)
        // docs/protocols.md §1: 10 29 00 04 'MQTT' 04 82 00 32 00 16 <22-byte id> 00 05 'dummy'
        #expect(Array(bytes.readableBytesView.prefix(12)) == [0x10, 0x29, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x04, 0x82, 0x00, 0x32])
        #expect(Array(bytes.readableBytesView.suffix(7)) == [0x00, 0x05, 0x64, 0x75, 0x6D, 0x6D, 0x79])
        #expect(bytes.readableBytes == 0x29 + 2)
    }

    // Seed bug: "CONNACK never checked".
    @Test(arguments: [(UInt8(4), WorksClientError.Code.authentication), (5, .authentication), (1, .connection), (2, .connection), (3, .connection)])
    func seedBugConnAckIsChecked(code: UInt8, expected: WorksClientError.Code) {
        var s = session()
        _ = s.transportOpened(now: start)
        let actions = s.received(.connack(ConnAckPacket(reasonCode: ReasonCode(code))), now: start)
        guard case .close(let error) = actions.first else {
            Issue.record("a refused CONNACK must close, got \(actions)")
            return
        }
        #expect(error.code == expected)
        #expect(error.isRetryable == (code == 3))
        #expect(s.state != .connected(since: start))
    }

    @Test func anythingButConnAckFirstIsAProtocolError() {
        var s = session()
        _ = s.transportOpened(now: start)
        let actions = s.received(.pingresp, now: start)
        guard case .close(let error) = actions.first else { Issue.record("\(actions)"); return }
        #expect(error.code == .packet)
    }

    @Test func noConnAckInTimeCloses() {
        var s = session()
        _ = s.transportOpened(now: start)
        #expect(run { s.tick(now: start + .seconds(9)) }.isEmpty)
        guard case .close(let error) = s.tick(now: start + .seconds(10)).first else { Issue.record("no close"); return }
        #expect(error.code == .connection)
    }

    // Seed bug: "QoS 2 answered with PUBACK".
    @Test func seedBugQoS2GetsPubrecPubrelPubcompNeverPuback() {
        var s = connected()
        let message = publish(.exactlyOnce, id: 7)
        #expect(run { s.received(.publish(message), now: start) } == [.deliver(message), .send(.pubrec(.init(packetIdentifier: 7)))])
        #expect(s.incomingQoS2 == [7])
        #expect(run { s.received(.pubrel(.init(packetIdentifier: 7)), now: start) } == [.send(.pubcomp(.init(packetIdentifier: 7)))])
        #expect(s.incomingQoS2.isEmpty)
    }

    @Test func qos2RedeliveryBeforePubrelIsNotDeliveredTwice() {
        var s = connected()
        _ = s.received(.publish(publish(.exactlyOnce, id: 9)), now: start)
        let again = s.received(.publish(publish(.exactlyOnce, id: 9, dup: true)), now: start)
        #expect(again == [.send(.pubrec(.init(packetIdentifier: 9)))])
        // After PUBREL the identifier is free: a new message with it is delivered.
        _ = s.received(.pubrel(.init(packetIdentifier: 9)), now: start)
        let fresh = publish(.exactlyOnce, id: 9, text: "{\"n\":2}")
        #expect(run { s.received(.publish(fresh), now: start) }.first == .deliver(fresh))
    }

    @Test func qos1IsDeliveredThenAcknowledged() {
        var s = connected()
        let message = publish(.atLeastOnce, id: 3)
        #expect(run { s.received(.publish(message), now: start) } == [.deliver(message), .send(.puback(.init(packetIdentifier: 3)))])
        let quiet = publish(.atMostOnce, id: nil)
        #expect(run { s.received(.publish(quiet), now: start) } == [.deliver(quiet)])
    }

    @Test func unknownPubrelIsStillCompleted() {
        var s = connected()
        #expect(run { s.received(.pubrel(.init(packetIdentifier: 44)), now: start) } == [.send(.pubcomp(.init(packetIdentifier: 44)))])
    }

    @Test func persistentSessionKeepsQoS2StateAcrossReconnects() {
        var s = connected(clean: false)
        _ = s.received(.publish(publish(.exactlyOnce, id: 5)), now: start)
        s.transportClosed()
        _ = s.transportOpened(now: start)
        _ = s.received(.connack(ConnAckPacket(sessionPresent: true)), now: start)
        // The broker resends the PUBLISH (DUP) after the reconnect: answered, not delivered again.
        #expect(run { s.received(.publish(publish(.exactlyOnce, id: 5, dup: true)), now: start) } == [.send(.pubrec(.init(packetIdentifier: 5)))])
    }

    @Test func sessionNotPresentDiscardsOurState() {
        var s = connected(clean: false)
        _ = s.received(.publish(publish(.exactlyOnce, id: 5)), now: start)
        s.transportClosed()
        _ = s.transportOpened(now: start)
        let actions = s.received(.connack(ConnAckPacket(sessionPresent: false)), now: start)
        #expect(actions.contains { if case .warning = $0 { true } else { false } })
        #expect(s.incomingQoS2.isEmpty)
    }

    @Test func cleanSessionWithSessionPresentIsAProtocolError() {
        var s = session()
        _ = s.transportOpened(now: start)
        guard case .close(let error) = s.received(.connack(ConnAckPacket(sessionPresent: true)), now: start).first else {
            Issue.record("no close"); return
        }
        #expect(error.code == .packet)
    }

    // Seed bug: "no PINGRESP timeout".
    @Test func seedBugMissingPingrespEndsARequiredConnection() {
        var s = connected(ping: .required)
        #expect(run { s.tick(now: start + .seconds(29)) }.isEmpty)
        #expect(run { s.tick(now: start + .seconds(30)) } == [.send(.pingreq)])
        #expect(s.nextDeadline == start + .seconds(40))
        #expect(run { s.tick(now: start + .seconds(35)) }.isEmpty)
        guard case .close(let error) = s.tick(now: start + .seconds(40)).first else { Issue.record("no close"); return }
        #expect(error.code == .connection)
    }

    @Test func pingrespInTimeKeepsTheConnection() {
        var s = connected(ping: .required)
        _ = s.tick(now: start + .seconds(30))
        #expect(run { s.received(.pingresp, now: start + .seconds(31)) }.isEmpty)
        #expect(run { s.tick(now: start + .seconds(45)) }.isEmpty)
        #expect(run { s.tick(now: start + .seconds(60)) } == [.send(.pingreq)])
    }

    @Test func optionalPingrespWarnsOnceAndKeepsPinging() {
        var s = connected(ping: .optional)
        _ = s.tick(now: start + .seconds(30))
        let late = s.tick(now: start + .seconds(40))
        #expect(late.count == 1)
        guard case .warning = late.first else { Issue.record("\(late)"); return }
        #expect(run { s.tick(now: start + .seconds(60)) } == [.send(.pingreq)])
        #expect(run { s.tick(now: start + .seconds(70)) }.isEmpty)  // warned once only
    }

    @Test func pingGoesOutOnlyWhenNothingWasSent() {
        var s = connected()
        _ = s.received(.publish(publish(.atLeastOnce, id: 1)), now: start + .seconds(20))  // PUBACK sent at 20 s
        #expect(run { s.tick(now: start + .seconds(30)) }.isEmpty)
        #expect(run { s.tick(now: start + .seconds(50)) } == [.send(.pingreq)])
    }

    // Seed-style servers: DISCONNECT from the server is a connection loss, not a silent hang.
    @Test func serverDisconnectIsAConnectionLoss() {
        var s = connected()
        guard case .close(let error) = s.received(.disconnect(DisconnectPacket()), now: start).first else {
            Issue.record("no close"); return
        }
        #expect(error.code == .connection)
        #expect(error.isRetryable)
    }

    @Test func subscriptionsAreSentAfterConnAckWithoutSession() {
        var s = session(subscriptions: [.init(topicFilter: "works/#", qos: .exactlyOnce)])
        _ = s.transportOpened(now: start)
        let actions = s.received(.connack(ConnAckPacket()), now: start)
        #expect(actions.contains(.send(.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: "works/#", qos: .exactlyOnce)])))))
    }

    @Test func outgoingQoS2CompletesAndIsResentAfterReconnect() throws {
        var s = connected(clean: false)
        let (id, actions) = try s.publish(topic: "t", payload: ByteBuffer(string: "x"), qos: .exactlyOnce, now: start)
        let identifier = try #require(id)
        #expect(actions.count == 1)
        // Lost before PUBREC: resent with DUP on the next connection.
        s.transportClosed()
        _ = s.transportOpened(now: start)
        let resent = s.received(.connack(ConnAckPacket(sessionPresent: true)), now: start)
        #expect(resent.contains(.send(.publish(PublishPacket(dup: true, qos: .exactlyOnce, topicName: "t", packetIdentifier: identifier, payload: ByteBuffer(string: "x"))))))
        #expect(run { s.received(.pubrec(.init(packetIdentifier: identifier)), now: start) } == [.send(.pubrel(.init(packetIdentifier: identifier)))])
        // Lost before PUBCOMP: PUBREL again.
        s.transportClosed()
        _ = s.transportOpened(now: start)
        #expect(run { s.received(.connack(ConnAckPacket(sessionPresent: true)), now: start) }.contains(.send(.pubrel(.init(packetIdentifier: identifier)))))
        #expect(run { s.received(.pubcomp(.init(packetIdentifier: identifier)), now: start) } == [.publishCompleted(packetIdentifier: identifier)])
        #expect(s.outgoingInFlight.isEmpty)
    }

    @Test func publishWhileDisconnectedIsAnError() {
        var s = session()
        #expect(throws: WorksClientError(.connection, "")) {
            _ = try s.publish(topic: "t", payload: ByteBuffer(), qos: .atMostOnce, now: start)
        }
    }

    @Test func clientOnlyPacketsFromTheServerClose() {
        var s = connected()
        guard case .close(let error) = s.received(.pingreq, now: start).first else { Issue.record("no close"); return }
        #expect(error.code == .packet)
    }
}
