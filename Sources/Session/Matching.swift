import Dialects
import Foundation
public import Capture
public import MQTTWire
import NIOCore

/// MQTT-aware comparison of what was recorded with what happened in a replay, for one
/// direction of one connection. What changes between runs does not count as a difference:
/// packet identifiers are renumbered consistently (the first identifier seen in the recording
/// stands for the first seen in the replay, and so on), client identifiers are not compared,
/// keep-alive pings (and how many there were) are left out, and JSON payloads are compared
/// member by member with paths to ignore.
public struct MatchRules: Sendable {
    /// JSON paths (`$.createTime`, `$.extras.stkOpt`, `$.items[*].id`) whose values are not compared.
    public var ignoredPaths: [String]
    /// Whether CONNECT's client identifier is compared.
    public var comparesClientID: Bool

    public init(ignoredPaths: [String] = ["$.createTime", "$.notification-id"], comparesClientID: Bool = false) {
        self.ignoredPaths = ignoredPaths
        self.comparesClientID = comparesClientID
    }
}

/// One way the replay differs from the recording.
public struct Difference: Sendable, Hashable, CustomStringConvertible {
    /// The place in the compared sequence (pings left out), from 1.
    public var position: Int
    /// What was recorded and what came, as one-line summaries ("—" when nothing).
    public var expected: String
    public var actual: String
    public var reason: String

    public var description: String { "#\(position): expected \(expected), got \(actual): \(reason)" }
}

public enum Matcher {
    /// Compares a recorded connection with a replayed one, each direction in its own order (the
    /// interleaving of the two directions varies between runs). Packet identifiers are paired by
    /// flow: a flow is an identifier of one side from its first packet to the packet that
    /// completes it (PUBACK, PUBCOMP, SUBACK, UNSUBACK), so an identifier used again after its flow
    /// completed may pair with another one. Empty when they match.
    public static func compare(expected: [RecordedMessage], actual: [RecordedMessage],
                               rules: MatchRules = MatchRules()) -> [(direction: FlowDirection, difference: Difference)] {
        let expectedFlows = flows(of: expected)
        let actualFlows = flows(of: actual)
        var pairs = FlowPairs()
        var differences: [(FlowDirection, Difference)] = []
        // In the recording's order, each packet against the replay's packet of the same direction
        // and rank; what the replay has beyond the recording comes last.
        func ranked(_ messages: [RecordedMessage], _ direction: FlowDirection) -> [Int] {
            messages.indices.filter { messages[$0].direction == direction && !isPing(messages[$0].packet) }
        }
        let replayed: [FlowDirection: [Int]] = [.clientToServer: ranked(actual, .clientToServer), .serverToClient: ranked(actual, .serverToClient)]
        var ranks: [FlowDirection: Int] = [:]
        for wanted in expected.indices where !isPing(expected[wanted].packet) {
            let direction = expected[wanted].direction
            let rank = ranks[direction, default: 0]
            ranks[direction] = rank + 1
            guard let candidates = replayed[direction], rank < candidates.count else {
                differences.append((direction, Difference(position: rank + 1, expected: summary(expected[wanted].packet), actual: "—",
                                                          reason: "missing")))
                continue
            }
            let got = candidates[rank]
            let sameType = expected[wanted].packet.type == actual[got].packet.type
            let reason = (sameType ? pairs.pair(expectedFlows[wanted], actualFlows[got], expected[wanted].packet.packetIdentifier,
                                                actual[got].packet.packetIdentifier) : nil)
                ?? mismatch(expected[wanted].packet, actual[got].packet, rules: rules)
            if let reason {
                differences.append((direction, Difference(position: rank + 1, expected: summary(expected[wanted].packet),
                                                          actual: summary(actual[got].packet), reason: reason)))
            }
        }
        for direction in [FlowDirection.clientToServer, .serverToClient] {
            let seen = ranks[direction, default: 0]
            for (offset, got) in (replayed[direction] ?? []).enumerated() where offset >= seen {
                differences.append((direction, Difference(position: offset + 1, expected: "—", actual: summary(actual[got].packet),
                                                          reason: "a packet the recording does not have")))
            }
        }
        return differences
    }

    /// The packets of one direction compared in order (flows completed by the other direction's
    /// acknowledgements are not seen, so a reused identifier stays paired).
    public static func compare(_ direction: FlowDirection, expected: [MQTTPacket], actual: [MQTTPacket],
                               rules: MatchRules = MatchRules()) -> [Difference] {
        compare(expected: expected.map { RecordedMessage(direction: direction, time: 0, packet: $0) },
                actual: actual.map { RecordedMessage(direction: direction, time: 0, packet: $0) }, rules: rules).map(\.difference)
    }

    /// A flow: which side chose the identifier, the identifier, and how many flows with it that
    /// side completed before.
    struct Flow: Hashable {
        var clientChose: Bool
        var identifier: UInt16
        var generation: Int
    }

    /// The flow of every packet that carries an identifier, in one timeline.
    static func flows(of messages: [RecordedMessage]) -> [Flow?] {
        var generations: [Flow: Int] = [:]
        return messages.map { message in
            guard let identifier = message.packet.packetIdentifier else { return nil }
            let fromClient = message.direction == .clientToServer
            let clientChose: Bool
            let completes: Bool
            switch message.packet {
            case .publish, .subscribe, .unsubscribe: clientChose = fromClient; completes = false
            case .pubrel: clientChose = fromClient; completes = false
            case .puback, .pubcomp: clientChose = !fromClient; completes = true
            case .pubrec: clientChose = !fromClient; completes = false
            case .suback, .unsuback: clientChose = true; completes = true
            default: return nil
            }
            let key = Flow(clientChose: clientChose, identifier: identifier, generation: 0)
            let flow = Flow(clientChose: clientChose, identifier: identifier, generation: generations[key] ?? 0)
            if completes { generations[key, default: 0] += 1 }
            return flow
        }
    }

    /// Recorded flows paired with replayed ones, one to one.
    struct FlowPairs {
        var forward: [Flow: Flow] = [:]
        var backward: [Flow: Flow] = [:]

        mutating func pair(_ expected: Flow?, _ actual: Flow?, _ expectedID: UInt16?, _ actualID: UInt16?) -> String? {
            switch (expected, actual) {
            case (nil, nil): return nil
            case (let e?, let a?):
                if let known = forward[e] {
                    return known == a ? nil : "packet identifier \(a.identifier) where \(known.identifier) stood for the recorded \(e.identifier)"
                }
                if let known = backward[a] { return "packet identifier \(a.identifier) already stands for the recorded \(known.identifier), not \(e.identifier)" }
                forward[e] = a
                backward[a] = e
                return nil
            default:
                return "packet identifier \(actualID.map(String.init) ?? "none") where the recording has \(expectedID.map(String.init) ?? "none")"
            }
        }
    }

    static func isPing(_ packet: MQTTPacket) -> Bool {
        switch packet {
        case .pingreq, .pingresp: true
        default: false
        }
    }

    static func mismatch(_ expected: MQTTPacket, _ actual: MQTTPacket, rules: MatchRules) -> String? {
        guard expected.type == actual.type else { return "\(actual.type) instead of \(expected.type)" }
        switch (expected, actual) {
        case (.connect(var e), .connect(var a)):
            if !rules.comparesClientID { e.clientIdentifier = ""; a.clientIdentifier = "" }
            if e.protocolVersion != a.protocolVersion { return "protocol \(a.protocolVersion) instead of \(e.protocolVersion)" }
            return e == a ? nil : "CONNECT fields differ"
        case (.publish(let e), .publish(let a)):
            if e.topicName != a.topicName { return "topic \"\(a.topicName)\" instead of \"\(e.topicName)\"" }
            if e.qos != a.qos { return "\(a.qos) instead of \(e.qos)" }
            if e.retain != a.retain { return a.retain ? "retained, the recording's was not" : "not retained, the recording's was" }
            return payloadDifference(e.payload, a.payload, rules: rules)
        case (.connack(let e), .connack(let a)):
            if e.reasonCode != a.reasonCode { return "\(a.reasonCode) instead of \(e.reasonCode)" }
            return e.sessionPresent == a.sessionPresent ? nil : "session present \(a.sessionPresent) instead of \(e.sessionPresent)"
        case (.suback(let e), .suback(let a)):
            return e.reasonCodes == a.reasonCodes ? nil : "granted \(a.reasonCodes) instead of \(e.reasonCodes)"
        case (.subscribe(let e), .subscribe(let a)):
            // Subscriptions of one SUBSCRIBE are a set: their order is not compared.
            let filters = { (packet: SubscribePacket) in Set(packet.subscriptions.map { "\($0.topicFilter) \($0.qos.rawValue)" }) }
            return filters(e) == filters(a) ? nil : "subscriptions \(filters(a).sorted()) instead of \(filters(e).sorted())"
        case (.puback(let e), .puback(let a)), (.pubrec(let e), .pubrec(let a)), (.pubrel(let e), .pubrel(let a)),
             (.pubcomp(let e), .pubcomp(let a)):
            return e.reasonCode == a.reasonCode ? nil : "\(a.reasonCode) instead of \(e.reasonCode)"
        case (.unsubscribe(let e), .unsubscribe(let a)):
            return Set(e.topicFilters) == Set(a.topicFilters) ? nil : "filters \(a.topicFilters) instead of \(e.topicFilters)"
        case (.disconnect(let e), .disconnect(let a)):
            return e.reasonCode == a.reasonCode ? nil : "\(a.reasonCode) instead of \(e.reasonCode)"
        default:
            return nil
        }
    }

    /// Payloads that are JSON on both sides are compared member by member (ignored paths left
    /// out); others byte for byte.
    static func payloadDifference(_ expected: ByteBuffer, _ actual: ByteBuffer, rules: MatchRules) -> String? {
        if expected == actual { return nil }
        guard let e = try? JSONReader.parse(expected), let a = try? JSONReader.parse(actual) else {
            return "payload differs (\(actual.readableBytes) bytes, the recording's \(expected.readableBytes))"
        }
        return jsonDifference(e, a, path: "$", rules: rules)
    }

    static func jsonDifference(_ expected: JSONValue, _ actual: JSONValue, path: String, rules: MatchRules) -> String? {
        if rules.ignoredPaths.contains(where: { matches(pattern: $0, path: path) }) { return nil }
        switch (expected, actual) {
        case (.object(let e), .object(let a)):
            for member in e {
                let child = "\(path).\(member.key)"
                guard let other = a.first(where: { $0.key == member.key })?.value else {
                    if rules.ignoredPaths.contains(where: { matches(pattern: $0, path: child) }) { continue }
                    return "\(child) is missing"
                }
                if let difference = jsonDifference(member.value, other, path: child, rules: rules) { return difference }
            }
            for member in a where !e.contains(where: { $0.key == member.key }) {
                let child = "\(path).\(member.key)"
                if !rules.ignoredPaths.contains(where: { matches(pattern: $0, path: child) }) { return "\(child) is not in the recording" }
            }
            return nil
        case (.array(let e), .array(let a)):
            guard e.count == a.count else { return "\(path) has \(a.count) items, the recording \(e.count)" }
            for (index, pair) in zip(e, a).enumerated() {
                if let difference = jsonDifference(pair.0, pair.1, path: "\(path)[\(index)]", rules: rules) { return difference }
            }
            return nil
        default:
            return expected == actual ? nil : "\(path) is \(actual), the recording's \(expected)"
        }
    }

    /// `$.a.b` matches itself; `[*]` matches any index.
    static func matches(pattern: String, path: String) -> Bool {
        guard pattern.contains("[*]") else { return pattern == path }
        var remaining = Substring(path)
        let pieces = pattern.components(separatedBy: "[*]")
        for (index, piece) in pieces.enumerated() {
            guard remaining.hasPrefix(piece) else { return false }
            remaining = remaining.dropFirst(piece.count)
            if index < pieces.count - 1 {
                guard remaining.hasPrefix("["), let close = remaining.firstIndex(of: "]"),
                      remaining[remaining.index(after: remaining.startIndex)..<close].allSatisfy(\.isNumber) else { return false }
                remaining = remaining[remaining.index(after: close)...]
            }
        }
        return remaining.isEmpty
    }

    /// A one-line description of a packet for reports.
    public static func summary(_ packet: MQTTPacket) -> String {
        switch packet {
        case .publish(let p):
            "PUBLISH \"\(p.topicName)\" QoS \(p.qos.rawValue)\(p.packetIdentifier.map { " id \($0)" } ?? "") \(p.payload.readableBytes) bytes"
        case .connect(let c): "CONNECT MQTT \(c.protocolVersion) \"\(c.clientIdentifier)\""
        default: packet.packetIdentifier.map { "\(packet.type) id \($0)" } ?? "\(packet.type)"
        }
    }
}
