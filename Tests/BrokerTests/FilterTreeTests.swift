@testable import Broker
import MQTTWire
import NIOCore
import Testing

/// The filter tree finds exactly the filters ``TopicMatching/matches(filter:topic:)`` says a
/// topic matches: generated filters and topics over a small alphabet of levels (empty levels,
/// `$` topics, `+` and `#` in every position they may take), compared one by one.
@Suite("Filter tree")
struct FilterTreeTests {
    static let levels = ["a", "b", "", "$SYS", "c"]

    static func filters(_ generator: inout some RandomNumberGenerator) -> String {
        let depth = Int.random(in: 1...4, using: &generator)
        var parts: [String] = []
        for index in 0..<depth {
            let roll = Int.random(in: 0..<10, using: &generator)
            if roll == 0 && index == depth - 1 { parts.append("#") } else if roll < 3 { parts.append("+") } else {
                parts.append(levels.randomElement(using: &generator)!)
            }
        }
        return parts.joined(separator: "/")
    }

    static func topic(_ generator: inout some RandomNumberGenerator) -> String {
        let depth = Int.random(in: 1...4, using: &generator)
        let topic = (0..<depth).map { _ in levels.randomElement(using: &generator)! }.joined(separator: "/")
        return topic.isEmpty ? "a" : topic
    }

    @Test func agreesWithTopicMatchingOnGeneratedFilters() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var tree = FilterTree()
            var held = Set<String>()
            for _ in 0..<Int.random(in: 1...40, using: &generator) {
                let filter = Self.filters(&generator)
                if TopicMatching.problem(inFilter: filter) != nil { continue }
                tree.insert(filter)
                held.insert(filter)
            }
            // Some go again: the tree prunes what it no longer holds.
            for filter in held.shuffled(using: &generator).prefix(held.count / 3) {
                tree.remove(filter)
                held.remove(filter)
            }
            #expect(tree.count == held.count)
            for _ in 0..<40 {
                let topic = Self.topic(&generator)
                let expected = held.filter { TopicMatching.matches(filter: $0, topic: topic) }
                let found = tree.filters(matching: topic)
                #expect(Set(found) == expected && found.count == expected.count, "topic \(topic): \(found.sorted()) vs \(expected.sorted())")
            }
        }
    }

    @Test func theSpecsExamples() {
        var tree = FilterTree()
        for filter in ["sport/tennis/player1/#", "sport/#", "#", "+/+", "/+", "+", "sport/+/player1", "$SYS/#", "+/monitor/Clients"] {
            tree.insert(filter)
        }
        #expect(Set(tree.filters(matching: "sport/tennis/player1")) == ["sport/tennis/player1/#", "sport/#", "#", "sport/+/player1"])
        #expect(Set(tree.filters(matching: "sport")) == ["sport/#", "#", "+"])
        #expect(Set(tree.filters(matching: "/finance")) == ["#", "+/+", "/+"])
        #expect(Set(tree.filters(matching: "$SYS/monitor/Clients")) == ["$SYS/#"])
    }
}

/// One client cannot hold more subscriptions than the limit, and its count does not slow
/// routing for everyone else.
@Suite("Subscriptions per client")
struct SubscriptionLimitTests {
    @Test(arguments: [ProtocolVersion.v3_1_1, .v5])
    func subscriptionsPastTheLimitAreRefused(version: ProtocolVersion) {
        var core = BrokerCore(configuration: .init())
        core.configuration.maximumSubscriptionsPerClient = 3
        let now = ContinuousClock.now
        core.connectionOpened(1, now: now)
        _ = core.received(.connect(ConnectPacket(protocolVersion: version, cleanStart: true, keepAlive: 60, clientIdentifier: "many")),
                          from: 1, now: now)
        let subscribe = SubscribePacket(packetIdentifier: 1, subscriptions: (0..<5).map { .init(topicFilter: "t/\($0)", qos: .atMostOnce) })
        let actions = core.received(.subscribe(subscribe), from: 1, now: now)
        guard case .send(_, .suback(let suback))? = actions.first else {
            Issue.record("no SUBACK: \(actions)")
            return
        }
        let refused: UInt8 = version == .v5 ? 0x97 : 0x80
        #expect(suback.reasonCodes.map(\.rawValue) == [0, 0, 0, refused, refused])
        // Filters it already holds may be subscribed again (their options change).
        let again = core.received(.subscribe(SubscribePacket(packetIdentifier: 2, subscriptions: [.init(topicFilter: "t/1", qos: .atLeastOnce)])),
                                  from: 1, now: now)
        guard case .send(_, .suback(let second))? = again.first else { return }
        #expect(second.reasonCodes.map(\.rawValue) == [1])
    }
}

/// Retained delivery on SUBSCRIBE finds each new filter's topics through a tree when there are
/// many filters: the same messages, in the same order (filter by filter, topics sorted), as
/// matching every topic against every filter.
@Suite("Retained delivery to many filters")
struct RetainedManyFiltersTests {
    @Test func manyFiltersGetWhatEachFilterMatches() {
        var core = BrokerCore(configuration: .init())
        let now = ContinuousClock.now
        let topics = (0..<300).map { "a/\($0 % 7)/\($0 % 11)/\($0)" } + ["$SYS/x", "b", "a"]
        core.connectionOpened(1, now: now)
        _ = core.received(.connect(ConnectPacket(protocolVersion: .v3_1_1, cleanStart: true, keepAlive: 60, clientIdentifier: "pub")), from: 1, now: now)
        for topic in topics {
            _ = core.received(.publish(PublishPacket(qos: .atMostOnce, retain: true, topicName: topic, payload: ByteBuffer(string: "x"))), from: 1, now: now)
        }
        let filters = ["a/+/3/#", "#", "a/1/+/+", "+/+", "a/#", "a/6/10/+", "$SYS/#", "+", "b", "a/+/+/299", "a/0/0/0", "nothing/+"]
        core.connectionOpened(2, now: now)
        _ = core.received(.connect(ConnectPacket(protocolVersion: .v3_1_1, cleanStart: true, keepAlive: 60, clientIdentifier: "sub")), from: 2, now: now)
        let actions = core.received(.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: filters.map { .init(topicFilter: $0, qos: .atMostOnce) })),
                                    from: 2, now: now)
        let sent = actions.compactMap { action -> String? in
            if case .send(2, .publish(let publish)) = action { return publish.topicName }
            return nil
        }
        let expected = filters.flatMap { filter in topics.sorted().filter { TopicMatching.matches(filter: filter, topic: $0) } }
        #expect(sent == expected)
    }
}
