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
        #expect(script.waitingFor == "c1: CONNECT MQTT 3.1.1 \"sub\" from the client")
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
        #expect(script.waitingFor == "c1: SUBACK id 1 from the server")
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
