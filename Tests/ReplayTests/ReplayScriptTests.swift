import Capture
import Dialects
import Foundation
import MQTTWire
import NIOCore
import Replay
import Recordings
import Testing

/// The replay's rules without sockets: what is sent when, with which identifiers.
@Suite struct ReplayScriptTests {
    static let t0 = ContinuousClock.now

    func message(_ direction: FlowDirection, _ time: Double, _ packet: MQTTPacket) -> RecordedMessage {
        RecordedMessage(direction: direction, time: 1_000 + time, packet: packet)
    }

    func publish(_ topic: String, qos: QoS, id: UInt16?) -> MQTTPacket {
        .publish(PublishPacket(qos: qos, topicName: topic, packetIdentifier: id, payload: ByteBuffer(string: "x")))
    }

    /// A subscriber: CONNECT, SUBSCRIBE, a QoS 1 delivery acknowledged, a ping, DISCONNECT.
    var subscriber: RecordedConnection {
        RecordedConnection(id: 1, client: "c", server: "s", transport: .webSocket, messages: [
            message(.clientToServer, 0, .connect(ConnectPacket(keepAlive: 60, clientIdentifier: "sub"))),
            message(.serverToClient, 0.01, .connack(ConnAckPacket())),
            message(.clientToServer, 0.02, .subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: "t/#", qos: .atLeastOnce)]))),
            message(.serverToClient, 0.03, .suback(SubAckPacket(packetIdentifier: 1, reasonCodes: [.grantedQoS1]))),
            message(.serverToClient, 2.0, publish("t/a", qos: .atLeastOnce, id: 7)),
            message(.clientToServer, 2.01, .puback(PublishResponsePacket(packetIdentifier: 7))),
            message(.clientToServer, 2.5, .pingreq),
            message(.serverToClient, 2.51, .pingresp),
            message(.clientToServer, 3.0, .disconnect(DisconnectPacket())),
        ])
    }

    func sent(_ actions: [ReplayScript.Action]) -> [MQTTPacket] {
        actions.compactMap { if case .send(_, let packet) = $0 { packet } else { nil } }
    }

    @Test func drivingWaitsForTheServerAndAcknowledgesItsLiveIdentifiers() {
        var script = ReplayScript(connections: [subscriber], role: .client, pace: .asap)
        #expect(script.start(now: Self.t0) == [.open(0)])
        #expect(sent(script.opened(0, now: Self.t0)).map(\.type) == [.connect])
        #expect(script.waitsOnPeer)
        #expect(sent(script.received(.connack(ConnAckPacket()), on: 0, now: Self.t0)).map(\.type) == [.subscribe])
        #expect(sent(script.received(.suback(SubAckPacket(packetIdentifier: 1, reasonCodes: [.grantedQoS1])), on: 0, now: Self.t0)).isEmpty)
        // The server chose 42 where the recording has 7: the PUBACK names 42; the recorded ping is not replayed.
        let actions = script.received(publish("t/a", qos: .atLeastOnce, id: 42), on: 0, now: Self.t0)
        #expect(sent(actions) == [.puback(PublishResponsePacket(packetIdentifier: 42)), .disconnect(DisconnectPacket())])
        #expect(actions.last == .close(0))
        #expect(script.isFinished)
        #expect(Matcher.compare(expected: subscriber.messages, actual: script.timelines[0]).isEmpty)
    }

    @Test func originalTimingWaitsForTheRecordedTimeAndSpeedDividesIt() {
        for (pace, due) in [(Pace.original, Duration.milliseconds(2010)), (.speed(2), .milliseconds(1005))] {
            var script = ReplayScript(connections: [subscriber], role: .client, pace: pace)
            _ = script.start(now: Self.t0)
            _ = script.opened(0, now: Self.t0)
            _ = script.received(.connack(ConnAckPacket()), on: 0, now: Self.t0)
            #expect(sent(script.tick(now: Self.t0 + .milliseconds(1))).isEmpty, "the SUBSCRIBE is due at 20 ms")
            #expect(sent(script.tick(now: Self.t0 + .milliseconds(20))).map(\.type) == [.subscribe])
            _ = script.received(.suback(SubAckPacket(packetIdentifier: 1, reasonCodes: [.grantedQoS1])), on: 0, now: Self.t0)
            // The delivery came early; the PUBACK still waits for its recorded time.
            #expect(sent(script.received(publish("t/a", qos: .atLeastOnce, id: 3), on: 0, now: Self.t0 + .milliseconds(30))).isEmpty)
            #expect(script.nextDeadline() == Self.t0 + due)
            #expect(!script.waitsOnPeer)
            #expect(sent(script.tick(now: Self.t0 + due)).first == .puback(PublishResponsePacket(packetIdentifier: 3)))
        }
    }

    @Test func servingAnswersPingsAndNamesTheClientsIdentifiers() {
        var script = ReplayScript(connections: [subscriber], role: .server, pace: .asap)
        #expect(script.start(now: Self.t0).isEmpty)
        #expect(script.waitingFor == "c1: CONNECT MQTT 3.1.1 \"sub\" from the client, which the server's PUBLISH \"t/a\" QoS 1 id 7 1 bytes on c1 waits for (recorded before it)")
        let (index, opened) = script.accepted(.webSocket, now: Self.t0)
        #expect(index == 0 && opened.isEmpty)
        #expect(sent(script.received(.connect(ConnectPacket(keepAlive: 60, clientIdentifier: "other")), on: 0, now: Self.t0)).map(\.type) == [.connack])
        #expect(sent(script.received(.pingreq, on: 0, now: Self.t0)) == [.pingresp])
        // The client chose 9 for its SUBSCRIBE: the SUBACK says 9, and the delivery follows at once.
        let answer = sent(script.received(.subscribe(SubscribePacket(packetIdentifier: 9, subscriptions: [.init(topicFilter: "t/#", qos: .atLeastOnce)])),
                                          on: 0, now: Self.t0))
        #expect(answer == [.suback(SubAckPacket(packetIdentifier: 9, reasonCodes: [.grantedQoS1])), publish("t/a", qos: .atLeastOnce, id: 7)])
        _ = script.received(.puback(PublishResponsePacket(packetIdentifier: 7)), on: 0, now: Self.t0)
        _ = script.received(.disconnect(DisconnectPacket()), on: 0, now: Self.t0)
        #expect(script.isFinished)
        #expect(Matcher.compare(expected: subscriber.messages, actual: script.timelines[0]).isEmpty)
        // A second connection is not in the recording.
        #expect(script.accepted(.webSocket, now: Self.t0).index == nil)
        #expect(script.extraConnections == 1)
    }

    @Test func theTimelineSpansConnections() {
        // c2 publishes what c1 subscribed to: c2's CONNECT waits for c1's SUBACK.
        var publisher = RecordedConnection(id: 2, client: "c", server: "s", transport: .tcp, messages: [
            message(.clientToServer, 0.05, .connect(ConnectPacket(clientIdentifier: "pub"))),
            message(.serverToClient, 0.06, .connack(ConnAckPacket())),
            message(.clientToServer, 0.07, publish("t/a", qos: .atMostOnce, id: nil)),
        ])
        publisher.messages.append(message(.clientToServer, 0.08, .disconnect(DisconnectPacket())))
        var script = ReplayScript(connections: [subscriber, publisher], role: .client, pace: .asap)
        _ = script.start(now: Self.t0)
        _ = script.opened(0, now: Self.t0)
        _ = script.received(.connack(ConnAckPacket()), on: 0, now: Self.t0)
        #expect(script.waitingFor == "c1: SUBACK id 1 from the server, which the client's CONNECT MQTT 3.1.1 \"pub\" on c2 waits for (recorded before it)")
        #expect(script.received(.suback(SubAckPacket(packetIdentifier: 1, reasonCodes: [.grantedQoS1])), on: 0, now: Self.t0) == [.open(1)])
        #expect(sent(script.opened(1, now: Self.t0)).map(\.type) == [.connect])
        #expect(sent(script.received(.connack(ConnAckPacket()), on: 1, now: Self.t0)).map(\.type) == [.publish, .disconnect])
        // A connection that closes gives up what it still had to receive; the rest goes on.
        let rest = script.closed(0, now: Self.t0)
        #expect(rest.isEmpty && script.isFinished)
    }

    @Test func keepAlivePingsAreSentWhenTheConnectionIsIdle() {
        var script = ReplayScript(connections: [subscriber], role: .client, pace: .asap)
        _ = script.start(now: Self.t0)
        _ = script.opened(0, now: Self.t0)
        #expect(script.nextDeadline() == Self.t0 + .seconds(60))
        #expect(sent(script.tick(now: Self.t0 + .seconds(60))) == [.pingreq])
    }
}

@Suite struct MatchRulesTests {
    func publish(_ payload: String) -> MQTTPacket {
        .publish(PublishPacket(qos: .atMostOnce, topicName: "t", payload: ByteBuffer(string: payload)))
    }

    @Test func regexRulesCompareByPattern() throws {
        let rules = try MatchRules(json: #"{"match": {"$.id": "^m-[0-9]+$", "$.n": "[0-9]{3}"}}"#)
        let recorded = [publish(#"{"id": "m-1", "n": 100, "text": "hi"}"#)]
        #expect(Matcher.compare(.serverToClient, expected: recorded, actual: [publish(#"{"id": "m-99", "n": 512, "text": "hi"}"#)], rules: rules).isEmpty)
        let bad = Matcher.compare(.serverToClient, expected: recorded, actual: [publish(#"{"id": "x-99", "n": 5120, "text": "hi"}"#)], rules: rules)
        #expect(bad.map(\.reason) == [#"$.id is "x-99", which does not match /^m-[0-9]+$/"#])
        // The default ignored paths stay unless "defaults" is false.
        #expect(rules.ignoredPaths.contains("$.createTime"))
        #expect(try MatchRules(json: #"{"defaults": false, "ignore": ["$.x"]}"#).ignoredPaths == ["$.x"])
    }

    @Test(arguments: [(#"[1]"#, "one JSON object"), (#"{"ignore": ["x"]}"#, "not a JSON path"), (#"{"match": {"$.a": "("}}"#, "not a regular expression"),
                      (#"{"speed": 2}"#, "unknown member \"speed\""), ("{", "not JSON")])
    func badRulesFilesSayWhy(text: String, reason: String) {
        #expect(throws: MatchRules.FileError.self) { try MatchRules(json: text) }
        do {
            _ = try MatchRules(json: text)
        } catch {
            #expect(error.description.contains(reason), "\(error)")
        }
    }

    @Test func redactedValuesAreComparedByPseudonym() {
        let key = Redactor(key: Array("ci-key".utf8))
        var connect = ConnectPacket(clientIdentifier: "a", username: "u", password: ByteBuffer(string: key.pseudonym("s3cret", kind: "password")))
        let recorded = [MQTTPacket.connect(connect), publish(#"{"token": "\#(key.pseudonym("t0k", kind: "token"))"}"#)]
        connect.password = ByteBuffer(string: "s3cret")
        let replayed = [MQTTPacket.connect(connect), publish(#"{"token": "t0k"}"#)]
        #expect(Matcher.compare(.clientToServer, expected: recorded, actual: replayed, rules: MatchRules(redactor: key)).isEmpty)
        connect.password = ByteBuffer(string: "other")
        let wrong = [MQTTPacket.connect(connect), publish(#"{"token": "nope"}"#)]
        #expect(Matcher.compare(.clientToServer, expected: recorded, actual: wrong, rules: MatchRules(redactor: key)).map(\.reason)
            == ["another password than the recording's", #"$.token is "nope", the recording's ""# + key.pseudonym("t0k", kind: "token") + "\""])
        // Without the key a pseudonym stands for any value; its absence still counts.
        #expect(Matcher.compare(.clientToServer, expected: recorded, actual: wrong).isEmpty)
        connect.password = nil
        #expect(Matcher.compare(.clientToServer, expected: [recorded[0]], actual: [.connect(connect)]).map(\.reason) == ["no password, the recording has one"])
    }
}

/// The order MQTT guarantees, not the recorded total order: a session recorded against one
/// correct broker replays against another that orders what MQTT leaves free otherwise.
@Suite struct ReplayOrderTests {
    static let t0 = ContinuousClock.now

    func message(_ direction: FlowDirection, _ time: Double, _ packet: MQTTPacket) -> RecordedMessage {
        RecordedMessage(direction: direction, time: time, packet: packet)
    }

    func publish(_ topic: String, qos: QoS, id: UInt16?, _ text: String = "x") -> MQTTPacket {
        .publish(PublishPacket(qos: qos, topicName: topic, packetIdentifier: id, payload: ByteBuffer(string: text)))
    }

    func sent(_ actions: [ReplayScript.Action]) -> [MQTTPacket] {
        actions.compactMap { if case .send(_, let packet) = $0 { packet } else { nil } }
    }

    /// As mosquitto ordered it: a client's own QoS 2 message is acknowledged (PUBREC) before
    /// it comes back to the client, which subscribed to it.
    var echo: RecordedConnection {
        RecordedConnection(id: 1, client: "c", server: "s", transport: .webSocket, messages: [
            message(.clientToServer, 0.00, .connect(ConnectPacket(clientIdentifier: "echo"))),
            message(.serverToClient, 0.01, .connack(ConnAckPacket())),
            message(.clientToServer, 0.02, .subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: "e/#", qos: .exactlyOnce)]))),
            message(.serverToClient, 0.03, .suback(SubAckPacket(packetIdentifier: 1, reasonCodes: [.grantedQoS2]))),
            message(.clientToServer, 0.04, publish("e/2", qos: .exactlyOnce, id: 4)),
            message(.serverToClient, 0.05, .pubrec(PublishResponsePacket(packetIdentifier: 4))),
            message(.clientToServer, 0.06, .pubrel(PublishResponsePacket(packetIdentifier: 4))),
            message(.serverToClient, 0.07, publish("e/2", qos: .exactlyOnce, id: 2)),
            message(.serverToClient, 0.08, .pubcomp(PublishResponsePacket(packetIdentifier: 4))),
            message(.clientToServer, 0.09, .pubrec(PublishResponsePacket(packetIdentifier: 2))),
            message(.serverToClient, 0.10, .pubrel(PublishResponsePacket(packetIdentifier: 2))),
            message(.clientToServer, 0.11, .pubcomp(PublishResponsePacket(packetIdentifier: 2))),
            message(.clientToServer, 0.12, .disconnect(DisconnectPacket())),
        ])
    }

    /// Driven against a broker that delivers first (as wmq-mock does): the delivery is answered at
    /// once, the PUBREL waits for its PUBREC only, and nothing stalls. The rank-by-rank replay
    /// this replaced took the delivery for the PUBREC and waited for ever for a PUBREL.
    @Test func aDeliveryBeforeItsPUBRECIsAnsweredAndNothingStalls() {
        var script = ReplayScript(connections: [echo], role: .client, pace: .asap)
        _ = script.start(now: Self.t0)
        _ = script.opened(0, now: Self.t0)
        _ = script.received(.connack(ConnAckPacket()), on: 0, now: Self.t0)
        #expect(sent(script.received(.suback(SubAckPacket(packetIdentifier: 1, reasonCodes: [.grantedQoS2])), on: 0, now: Self.t0))
            == [publish("e/2", qos: .exactlyOnce, id: 4)])
        // The delivery first, with the broker's own identifier 9: answered at once.
        #expect(sent(script.received(publish("e/2", qos: .exactlyOnce, id: 9), on: 0, now: Self.t0)) == [.pubrec(PublishResponsePacket(packetIdentifier: 9))])
        #expect(script.waitingFor == "c1: PUBREC id 4 from the server, which the client's PUBREL id 4 on c1 waits for (recorded before it)")
        #expect(sent(script.received(.pubrel(PublishResponsePacket(packetIdentifier: 9)), on: 0, now: Self.t0)) == [.pubcomp(PublishResponsePacket(packetIdentifier: 9))])
        #expect(sent(script.received(.pubrec(PublishResponsePacket(packetIdentifier: 4)), on: 0, now: Self.t0)) == [.pubrel(PublishResponsePacket(packetIdentifier: 4))])
        let last = script.received(.pubcomp(PublishResponsePacket(packetIdentifier: 4)), on: 0, now: Self.t0)
        #expect(sent(last) == [.disconnect(DisconnectPacket())])
        #expect(script.isFinished)

        // The comparison takes the new order as MQTT allows it, and notes it; --strict-order does not.
        let rows = Matcher.align(expected: echo.messages, actual: script.timelines[0])
        #expect(rows.allSatisfy { $0.reason == nil }, "\(rows.filter { $0.reason != nil }.map(\.difference))")
        #expect(rows.count { $0.reordered } >= 1)
        var strict = MatchRules()
        strict.strictOrder = true
        #expect(!Matcher.compare(expected: echo.messages, actual: script.timelines[0], rules: strict).isEmpty)
    }

    /// A packet an ordered flow or topic needs first is waited for, and the stall says why.
    @Test func aStallNamesWhatItWaitedForAndWhy() {
        var script = ReplayScript(connections: [echo], role: .client, pace: .asap)
        _ = script.start(now: Self.t0)
        _ = script.opened(0, now: Self.t0)
        #expect(script.waitingFor == "c1: CONNACK from the server, which the client's SUBSCRIBE id 1 on c1 waits for (recorded before it)")
        #expect(script.waitsOnPeer)
    }

    /// Deliveries on other topics do not hold a publication back; those on its own topic do.
    @Test func aPublicationWaitsForEarlierDeliveriesOnItsTopicOnly() {
        let connection = RecordedConnection(id: 1, client: "c", server: "s", transport: .tcp, messages: [
            message(.clientToServer, 0.0, .connect(ConnectPacket(clientIdentifier: "p"))),
            message(.serverToClient, 0.1, .connack(ConnAckPacket())),
            message(.serverToClient, 0.2, publish("other", qos: .atMostOnce, id: nil)),
            message(.serverToClient, 0.3, publish("mine", qos: .atMostOnce, id: nil)),
            message(.clientToServer, 0.4, publish("mine", qos: .atMostOnce, id: nil, "reply")),
            message(.clientToServer, 0.5, .disconnect(DisconnectPacket())),
        ])
        var script = ReplayScript(connections: [connection], role: .client, pace: .asap)
        _ = script.start(now: Self.t0)
        _ = script.opened(0, now: Self.t0)
        #expect(sent(script.received(.connack(ConnAckPacket()), on: 0, now: Self.t0)).isEmpty)
        #expect(script.waitingFor?.contains("recorded before it on topic \"mine\"") == true, "\(script.waitingFor ?? "")")
        // "mine" comes; "other" has not: the reply goes, the DISCONNECT waits for "other".
        #expect(sent(script.received(publish("mine", qos: .atMostOnce, id: nil), on: 0, now: Self.t0)) == [publish("mine", qos: .atMostOnce, id: nil, "reply")])
        #expect(script.waitingFor == "c1: PUBLISH \"other\" QoS 0 1 bytes from the server, which the client's DISCONNECT on c1 waits for (recorded before it on its connection)")
        #expect(sent(script.received(publish("other", qos: .atMostOnce, id: nil), on: 0, now: Self.t0)) == [.disconnect(DisconnectPacket())])
        #expect(script.isFinished)
        let rows = Matcher.align(expected: connection.messages, actual: script.timelines[0])
        #expect(rows.allSatisfy { $0.reason == nil } && rows.count { $0.reordered } == 1)
    }

    /// What MQTT orders stays a difference: two messages on one topic at one QoS swapped, two
    /// PUBACKs swapped. An acknowledgement and a delivery swapped, or two topics, are not.
    @Test func reorderingsMQTTForbidsAreDifferencesThatNameTheRule() {
        let d = FlowDirection.serverToClient
        let a = publish("t", qos: .atMostOnce, id: nil, "a"), b = publish("t", qos: .atMostOnce, id: nil, "b")
        // Paired by place (same topic), so the payloads differ.
        #expect(!Matcher.compare(d, expected: [a, b], actual: [b, a]).isEmpty)
        #expect(Matcher.orderRule(a, b, nil, nil)?.contains("[MQTT-4.6.0-6]") == true)
        // Two QoS 1 messages on one topic, the second lost where the first was and added after
        // another topic's: moved back, they would cross a message MQTT keeps in order.
        let other = publish("u", qos: .atMostOnce, id: nil)
        #expect(Matcher.compare(d, expected: [a, other], actual: [other, a]).isEmpty)
        let q1 = publish("t", qos: .atLeastOnce, id: 1, "a"), q2 = publish("t", qos: .atLeastOnce, id: 2, "b")
        let crossing = Matcher.compare(d, expected: [q1, other, q2], actual: [q2, other, q1]).map(\.reason)
        #expect(!crossing.isEmpty, "\(crossing)")
        let ack1 = MQTTPacket.puback(PublishResponsePacket(packetIdentifier: 1)), ack2 = MQTTPacket.puback(PublishResponsePacket(packetIdentifier: 2))
        #expect(Matcher.orderRule(ack1, ack2, nil, nil)?.contains("[MQTT-4.6.0-2]") == true)
        #expect(Matcher.orderRule(ack1, a, nil, nil) == nil)
        #expect(Matcher.orderRule(.connack(ConnAckPacket()), a, nil, nil) != nil)
        // A lost packet is still one row, not a reordering.
        let lost = Matcher.align(expected: [message(d, 0, a), message(d, 1, other)], actual: [message(d, 0, a)])
        #expect(lost.map { $0.reason ?? "" } == ["", "missing"])
    }
}
