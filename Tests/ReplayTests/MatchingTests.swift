import Capture
import Foundation
import MQTTWire
import NIOCore
import Replay
import Recordings
import TestSupport
import Testing

/// The replay's comparison: what changes between runs does not count; what matters does.
@Suite struct MatchingTests {
    func publish(_ topic: String, _ payload: String, qos: QoS = .atLeastOnce, id: UInt16? = 1) -> MQTTPacket {
        .publish(PublishPacket(qos: qos, topicName: topic, packetIdentifier: qos == .atMostOnce ? nil : id, payload: ByteBuffer(string: payload)))
    }

    @Test func identifiersArePairedConsistently() {
        func message(_ direction: FlowDirection, _ packet: MQTTPacket) -> RecordedMessage {
            RecordedMessage(direction: direction, time: 0, packet: packet)
        }
        let recorded = [message(.serverToClient, publish("t", "a", id: 7)), message(.clientToServer, .puback(.init(packetIdentifier: 7))),
                        message(.serverToClient, publish("t", "b", id: 8))]
        let replayed = [message(.serverToClient, publish("t", "a", id: 1)), message(.clientToServer, .puback(.init(packetIdentifier: 1))),
                        message(.serverToClient, publish("t", "b", id: 2))]
        #expect(Matcher.compare(expected: recorded, actual: replayed).isEmpty)
        // 7 stood for 1: the client acknowledging 2 where the recording acknowledged 7 is a difference.
        let wrong = [replayed[0], message(.clientToServer, .puback(.init(packetIdentifier: 2))), replayed[2]]
        let differences = Matcher.compare(expected: recorded, actual: wrong)
        #expect(differences.map(\.direction) == [.clientToServer])
        #expect(differences.map(\.difference.reason) == ["packet identifier 2 where 1 stood for the recorded 7"])
        // And one replayed identifier cannot stand for two recorded flows at once.
        let doubled = [publish("t", "a", id: 1), publish("t", "b", id: 1)]
        #expect(Matcher.compare(.serverToClient, expected: [publish("t", "a", id: 7), publish("t", "b", id: 8)], actual: doubled)
            .map(\.reason) == ["packet identifier 1 already stands for the recorded 7, not 8"])
    }

    @Test func anIdentifierUsedAgainAfterItsFlowCompletedPairsAnew() {
        func message(_ direction: FlowDirection, _ packet: MQTTPacket) -> RecordedMessage {
            RecordedMessage(direction: direction, time: 0, packet: packet)
        }
        // The recording's server reuses identifier 7 once the first message was acknowledged;
        // the replaying server counts up. Both directions are given, so flows are known.
        let recorded = [message(.serverToClient, publish("t", "a", id: 7)), message(.clientToServer, .puback(.init(packetIdentifier: 7))),
                        message(.serverToClient, publish("t", "b", id: 7)), message(.clientToServer, .puback(.init(packetIdentifier: 7)))]
        let replayed = [message(.serverToClient, publish("t", "a", id: 1)), message(.clientToServer, .puback(.init(packetIdentifier: 1))),
                        message(.serverToClient, publish("t", "b", id: 2)), message(.clientToServer, .puback(.init(packetIdentifier: 2)))]
        #expect(Matcher.compare(expected: recorded, actual: replayed).isEmpty)
        // Without the acknowledgement in between, a second 7 is the same flow: 2 cannot stand for it.
        let unacknowledged = [recorded[0], recorded[2]]
        let differences = Matcher.compare(expected: unacknowledged, actual: [replayed[0], replayed[2]])
        #expect(differences.map(\.difference.reason) == ["packet identifier 2 where 1 stood for the recorded 7"])
        #expect(differences.map(\.direction) == [.serverToClient])
    }

    @Test func pingsAndClientIDsDoNotCount() {
        let recorded: [MQTTPacket] = [.connect(ConnectPacket(clientIdentifier: "web-beejs_000000000001")), .pingreq, .pingreq, publish("t", "x")]
        let replayed: [MQTTPacket] = [.connect(ConnectPacket(clientIdentifier: "web-beejs_ffffffffffff")), publish("t", "x"), .pingreq]
        #expect(Matcher.compare(.clientToServer, expected: recorded, actual: replayed).isEmpty)
        #expect(!Matcher.compare(.clientToServer, expected: recorded, actual: replayed, rules: MatchRules(comparesClientID: true)).isEmpty)
    }

    @Test func jsonPayloadsMemberByMemberWithIgnoredPaths() {
        let recorded = [publish("notification", #"{"nType": 1, "loc-args1": "Hello", "createTime": 1, "extras": {"ids": [1, 2]}}"#)]
        let sameButTime = [publish("notification", #"{"createTime": 999, "extras": {"ids": [1, 2]}, "loc-args1": "Hello", "nType": 1}"#)]
        #expect(Matcher.compare(.serverToClient, expected: recorded, actual: sameButTime).isEmpty)
        let otherText = [publish("notification", #"{"nType": 1, "loc-args1": "Bye", "createTime": 1, "extras": {"ids": [1, 2]}}"#)]
        #expect(Matcher.compare(.serverToClient, expected: recorded, actual: otherText).map(\.reason) == [#"$.loc-args1 is "Bye", the recording's "Hello""#])
        let otherItem = [publish("notification", #"{"nType": 1, "loc-args1": "Hello", "createTime": 1, "extras": {"ids": [1, 3]}}"#)]
        #expect(Matcher.compare(.serverToClient, expected: recorded, actual: otherItem).first?.reason.hasPrefix("$.extras.ids[1]") == true)
        #expect(Matcher.compare(.serverToClient, expected: recorded, actual: otherItem, rules: MatchRules(ignoredPaths: ["$.extras.ids[*]", "$.createTime"])).isEmpty)
    }

    @Test func whatMattersIsReported() {
        let recorded: [MQTTPacket] = [.connack(ConnAckPacket()), .suback(SubAckPacket(packetIdentifier: 1, reasonCodes: [ReasonCode(1)])), publish("t", "x")]
        let replayed: [MQTTPacket] = [.connack(ConnAckPacket(sessionPresent: true)), .suback(SubAckPacket(packetIdentifier: 5, reasonCodes: [ReasonCode(0)]))]
        let differences = Matcher.compare(.serverToClient, expected: recorded, actual: replayed)
        #expect(differences.map(\.position) == [1, 2, 3])
        #expect(differences[0].reason == "session present true instead of false")
        #expect(differences[2].expected == #"PUBLISH "t" QoS 1 id 1 1 bytes"# && differences[2].actual == "—" && differences[2].reason == "missing")
        // Subscriptions of one SUBSCRIBE are a set.
        let a = MQTTPacket.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: "a"), .init(topicFilter: "b")]))
        let b = MQTTPacket.subscribe(SubscribePacket(packetIdentifier: 9, subscriptions: [.init(topicFilter: "b"), .init(topicFilter: "a")]))
        #expect(Matcher.compare(.clientToServer, expected: [a], actual: [b]).isEmpty)
    }

    @Test func aRecordingMatchesItselfInEveryFormat() throws {
        let pcap = try Recording.read(path: TestEnvironment.captures.appendingPathComponent("works-sample.pcap").path)
        let har = try Recording.read(path: TestEnvironment.captures.appendingPathComponent("works-sample.har").path)
        #expect(Matcher.compare(expected: pcap.connections[0].messages, actual: har.connections[0].messages).isEmpty)
    }
}

@Suite struct AlignmentTests {
    func message(_ direction: FlowDirection, _ packet: MQTTPacket) -> RecordedMessage {
        RecordedMessage(direction: direction, time: 0, packet: packet)
    }

    func publish(_ topic: String) -> MQTTPacket {
        .publish(PublishPacket(qos: .atMostOnce, topicName: topic, payload: ByteBuffer(string: "x")))
    }

    @Test func anAddedOrLostPacketIsOneRowNotAShift() {
        let recorded = ["a", "b", "c", "d"].map { message(.serverToClient, publish($0)) }
        let lost = [recorded[0], recorded[2], recorded[3]]
        let rows = Matcher.align(expected: recorded, actual: lost)
        #expect(rows.filter { $0.reason != nil }.map(\.difference.description) == [#"#2: expected PUBLISH "b" QoS 0 1 bytes, got —: missing"#])
        let added = [recorded[0], recorded[1], message(.serverToClient, publish("x")), recorded[2], recorded[3]]
        let extra = Matcher.align(expected: recorded, actual: added).filter { $0.reason != nil }
        #expect(extra.map(\.position) == [3])
        #expect(extra.first?.actual?.packet == publish("x") && extra.first?.expected == nil)
        // A different topic at the same place is a missing and an added packet, side by side.
        let replaced = [recorded[0], message(.serverToClient, publish("z")), recorded[2], recorded[3]]
        #expect(Matcher.align(expected: recorded, actual: replaced).filter { $0.reason != nil }.count == 2)
    }

    @Test func longSequencesStillAlign() {
        let recorded = (0..<3000).map { message(.clientToServer, publish("t/\($0 % 7)")) }
        var replayed = recorded
        replayed.remove(at: 1500)
        let differences = Matcher.compare(expected: recorded, actual: replayed)
        #expect(differences.count == 1)
        #expect(differences.first?.difference.reason == "missing")
    }
}
