public import Dialects
import Foundation
public import Capture
public import Recordings
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
    /// JSON paths whose replayed value must match a regular expression (the whole value: a
    /// string's text, any other value's JSON text) instead of equal the recorded one.
    public var patterns: [(path: String, regex: String)]
    /// Whether CONNECT's client identifier is compared.
    public var comparesClientID: Bool
    /// The key recordings were redacted with: a recorded pseudonym (`‹password:1a2b3c4d›`) is then
    /// compared with the pseudonym of the replayed value. Without it a recorded pseudonym stands
    /// for any value (only its presence is compared).
    public var redactor: Redactor?
    /// How secret values (``SecretNames``) appear in reasons: as pseudonyms made with
    /// it, or as they are when nil.
    public var display: Redactor?
    /// Whether packets must come in the recorded order (`--strict-order`). By default a packet
    /// may come in another order than recorded where MQTT does not order it (see
    /// ``Matcher/orderRule(_:_:)``); the report notes it.
    public var strictOrder = false

    /// The members that vary from run to run: the Works payload's time and id, and the
    /// millisecond clock of the chat-topic tree's messages (docs/protocols.md §3).
    public static let defaultIgnoredPaths = ["$.createTime", "$.notification-id", "$.timestamp"]

    public init(ignoredPaths: [String] = MatchRules.defaultIgnoredPaths, patterns: [(path: String, regex: String)] = [],
                comparesClientID: Bool = false, redactor: Redactor? = nil) {
        self.ignoredPaths = ignoredPaths
        self.patterns = patterns
        self.comparesClientID = comparesClientID
        self.redactor = redactor
    }

    /// Whether a replayed secret matches a recorded one that may be a pseudonym.
    func secretMatches(expected: String, actual: String) -> Bool {
        if expected == actual { return true }
        guard let kind = Self.pseudonymKind(expected) else { return false }
        guard let redactor else { return true }
        return redactor.pseudonym(actual, kind: kind) == expected
    }

    /// `password` for `‹password:1a2b3c4d›`; nil for anything that is not a pseudonym.
    static func pseudonymKind(_ text: String) -> String? {
        guard text.hasPrefix("‹"), text.hasSuffix("›"), let colon = text.lastIndex(of: ":") else { return nil }
        let hex = text[text.index(after: colon)..<text.index(before: text.endIndex)]
        guard hex.count == 8, hex.allSatisfy(\.isHexDigit) else { return nil }
        return String(text[text.index(after: text.startIndex)..<colon])
    }
}

/// A rules file (`--rules`), JSON:
/// `{"ignore": ["$.time"], "match": {"$.token": "^[0-9a-f]+$"}, "defaults": true, "clientId": false}`.
/// `ignore` adds to the default ignored paths (or replaces them with `"defaults": false`),
/// `match` gives regular expressions by path, `clientId: true` compares client identifiers.
extension MatchRules {
    public struct FileError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public init(json text: String, redactor: Redactor? = nil) throws(FileError) {
        let value: JSONValue
        do {
            value = try JSONReader.parse(text)
        } catch {
            throw FileError(description: "not JSON: \(error)")
        }
        guard let members = value.members else { throw FileError(description: "a rules file is one JSON object") }
        var ignored = MatchRules.defaultIgnoredPaths
        var patterns: [(path: String, regex: String)] = []
        var comparesClientID = false
        for member in members {
            switch member.key {
            case "defaults":
                guard let keep = member.value.boolValue else { throw FileError(description: "\"defaults\" is true or false") }
                if !keep { ignored.removeAll { MatchRules.defaultIgnoredPaths.contains($0) } }
            case "ignore":
                guard let items = member.value.arrayValue else { throw FileError(description: "\"ignore\" is an array of JSON paths") }
                for item in items {
                    guard let path = item.stringValue, path.hasPrefix("$") else {
                        throw FileError(description: "\"ignore\": \(item) is not a JSON path starting with $")
                    }
                    ignored.append(path)
                }
            case "match":
                guard let rules = member.value.members else { throw FileError(description: "\"match\" is an object of path: regular expression") }
                for rule in rules {
                    guard rule.key.hasPrefix("$"), let pattern = rule.value.stringValue else {
                        throw FileError(description: "\"match\": \(rule.key) needs a JSON path and a regular expression string")
                    }
                    do {
                        _ = try Regex(pattern)
                    } catch {
                        throw FileError(description: "\"match\": \(rule.key): not a regular expression: \(error)")
                    }
                    patterns.append((rule.key, pattern))
                }
            case "clientId":
                guard let compares = member.value.boolValue else { throw FileError(description: "\"clientId\" is true or false") }
                comparesClientID = compares
            default:
                throw FileError(description: "unknown member \"\(member.key)\" (known: ignore, match, defaults, clientId)")
            }
        }
        self.init(ignoredPaths: ignored, patterns: patterns, comparesClientID: comparesClientID, redactor: redactor)
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

/// One place of a direction's comparison: the recorded packet, the replayed one at the same
/// rank (pings left out), and why they differ (nil when they match).
public struct AlignedRow: Sendable {
    public var direction: FlowDirection
    public var position: Int
    public var expected: RecordedMessage?
    public var actual: RecordedMessage?
    public var reason: String?
    /// The replayed packet came in another order than recorded, which MQTT allows.
    public var reordered = false

    public var difference: Difference {
        Difference(position: position, expected: expected.map { Matcher.summary($0.packet) } ?? "—",
                   actual: actual.map { Matcher.summary($0.packet) } ?? "—", reason: reason ?? "")
    }
}

public enum Matcher {
    /// Compares a recorded connection with a replayed one, each direction in its own order (the
    /// interleaving of the two directions varies between runs). Packet identifiers are paired by
    /// flow: a flow is an identifier of one side from its first packet to the packet that
    /// completes it (PUBACK, PUBCOMP, SUBACK, UNSUBACK), so an identifier used again after its flow
    /// completed may pair with another one. Empty when they match.
    public static func compare(expected: [RecordedMessage], actual: [RecordedMessage],
                               rules: MatchRules = MatchRules()) -> [(direction: FlowDirection, difference: Difference)] {
        align(expected: expected, actual: actual, rules: rules).filter { $0.reason != nil }.map { ($0.direction, $0.difference) }
    }

    /// Every compared place, matching or not, each direction in its own order. The two
    /// sequences (pings left out) are aligned like a diff, by packet type (and topic, for
    /// PUBLISH): a packet the replay adds or lacks shows as one extra or missing row instead of
    /// shifting every row after it. Aligned packets are then compared field by field, in the
    /// recording's timeline order, so packet identifiers pair flow by flow.
    public static func align(expected: [RecordedMessage], actual: [RecordedMessage],
                             rules: MatchRules = MatchRules()) -> [AlignedRow] {
        let expectedFlows = flows(of: expected)
        let actualFlows = flows(of: actual)
        var pairs = FlowPairs()
        let directions = [FlowDirection.clientToServer, .serverToClient]
        func ranked(_ messages: [RecordedMessage], _ direction: FlowDirection) -> [Int] {
            messages.indices.filter { messages[$0].direction == direction && !isPing(messages[$0].packet) }
        }
        // (expected index?, actual index?) per direction, in order. First by type and topic; then
        // again with every acknowledgement tied to the packet that began its flow, as the first
        // pass paired those, so a PUBACK aligns with the PUBACK of the same message.
        let expectedBase = expected.map { signature($0.packet) }
        let actualBase = actual.map { signature($0.packet) }
        var alignments: [FlowDirection: [(Int?, Int?)]] = [:]
        for direction in directions {
            alignments[direction] = diff(ranked(expected, direction), ranked(actual, direction)) { expectedBase[$0] == actualBase[$1] }
        }
        let expectedStarts = flowStarts(expectedFlows)
        let actualStarts = flowStarts(actualFlows)
        var label: [Int: Int] = [:]
        for case let (e?, a?) in directions.flatMap({ alignments[$0] ?? [] }) where expectedStarts[e] == e && actualStarts[a] == a {
            label[a] = e
        }
        let expectedKeys = expected.indices.map { index in
            expectedStarts[index].map { $0 == index ? expectedBase[index] : "\(expectedBase[index]) of \($0)" } ?? expectedBase[index]
        }
        let actualKeys = actual.indices.map { index in
            actualStarts[index].map { $0 == index ? actualBase[index] : "\(actualBase[index]) of \(label[$0].map(String.init) ?? "new \($0)")" }
                ?? actualBase[index]
        }
        var moved: [Int: String?] = [:]
        for direction in directions {
            let aligned = diff(ranked(expected, direction), ranked(actual, direction)) { expectedKeys[$0] == actualKeys[$1] }
            alignments[direction] = pairLeftovers(aligned) { expectedBase[$0] == actualBase[$1] }
            if !rules.strictOrder, let rows = alignments[direction] {
                let (paired, reasons) = pairReordered(rows, same: { expectedKeys[$0] == actualKeys[$1] || expectedBase[$0] == actualBase[$1] },
                                                      rule: { orderRule(actual[$0].packet, actual[$1].packet, actualFlows[$0], actualFlows[$1]) })
                alignments[direction] = paired
                moved.merge(reasons) { $1 }
            }
        }
        // Aligned pairs judged in the recording's order, so flows pair as they began.
        var reasons: [Int: String] = [:]
        let matched = directions.flatMap { alignments[$0] ?? [] }.compactMap { pair -> (Int, Int)? in
            guard let e = pair.0, let a = pair.1 else { return nil }
            return (e, a)
        }.sorted { $0.0 < $1.0 }
        for (e, a) in matched {
            let flowReason = pairs.pair(expectedFlows[e], actualFlows[a], expected[e].packet.packetIdentifier, actual[a].packet.packetIdentifier)
            // Another QoS explains another identifier (a QoS 0 message has none): the QoS is the reason.
            let reason = deliveryQoS(expected[e], actual[a]) ?? flowReason ?? mismatch(expected[e].packet, actual[a].packet, rules: rules)
            if let reason { reasons[e] = reason } else if case let broken?? = moved[e] { reasons[e] = broken }
        }
        var rows: [AlignedRow] = []
        for direction in directions {
            var expectedRank = 0
            var actualRank = 0
            for (e, a) in alignments[direction] ?? [] {
                if e != nil { expectedRank += 1 }
                if a != nil { actualRank += 1 }
                switch (e, a) {
                case (let e?, let a?):
                    rows.append(AlignedRow(direction: direction, position: expectedRank, expected: expected[e], actual: actual[a], reason: reasons[e],
                                           reordered: moved[e] != nil))
                case (let e?, nil):
                    rows.append(AlignedRow(direction: direction, position: expectedRank, expected: expected[e], actual: nil, reason: "missing"))
                case (nil, let a?):
                    rows.append(AlignedRow(direction: direction, position: actualRank, expected: nil, actual: actual[a],
                                           reason: "a packet the recording does not have"))
                case (nil, nil):
                    break
                }
            }
        }
        return rows
    }

    /// A packet the replay lacks where the recording has it and one it adds elsewhere that stand
    /// for each other (`same`) are one packet that came in another order. They become one row,
    /// taken back in the recorded place. The keys of the result are the recorded packets so
    /// paired: nil when MQTT allows the new order, or the reason it does not (`rule` tells,
    /// for two replayed packets, why MQTT keeps them in order).
    static func pairReordered(_ alignment: [(Int?, Int?)], same: (Int, Int) -> Bool,
                              rule: (Int, Int) -> String?) -> (rows: [(Int?, Int?)], moved: [Int: String?]) {
        var rows = alignment
        var moved: [Int: String?] = [:]
        var added = rows.indices.filter { rows[$0].0 == nil && rows[$0].1 != nil }
        for place in rows.indices {
            guard let e = rows[place].0, rows[place].1 == nil,
                  let pick = added.firstIndex(where: { rows[$0].1.map { same(e, $0) } ?? false }) else { continue }
            let from = added.remove(at: pick)
            guard let a = rows[from].1 else { continue }
            // The paired packets it now stands on the other side of (its index says where it
            // came), and whether MQTT orders any of them with it.
            let crossed = (min(place, from)...max(place, from)).compactMap { row -> Int? in
                guard rows[row].0 != nil, let other = rows[row].1, other != a, (other < a) != (row < place) else { return nil }
                return other
            }
            var broken: String?
            for other in crossed {
                guard let reason = rule(a, other) else { continue }
                broken = "came \(from < place ? "before" : "after") a packet it must \(from < place ? "follow" : "precede"): \(reason)"
                break
            }
            moved[e] = .some(broken)
            rows[place] = (e, a)
            rows[from] = (nil, nil)
        }
        return (rows.filter { $0.0 != nil || $0.1 != nil }, moved)
    }

    /// Why MQTT keeps two packets of one direction of a connection in their order, or nil when a
    /// correct peer may send them either way: the connection's bounds, a flow's own steps, one
    /// topic's messages at one QoS (taken to come from one publisher), and acknowledgements of
    /// one kind ([MQTT-4.6.0]).
    package static func orderRule(_ a: MQTTPacket, _ b: MQTTPacket, _ flowA: Flow?, _ flowB: Flow?) -> String? {
        for packet in [a, b] {
            switch packet {
            case .connect, .connack, .disconnect, .auth: return "\(packet.type) bounds the connection"
            default: break
            }
        }
        if let flowA, flowA == flowB { return "the steps of one flow (packet identifier \(flowA.identifier)) keep their order" }
        switch (a, b) {
        case (.publish(let x), .publish(let y)) where x.topicName == y.topicName && x.qos == y.qos:
            return "messages on one topic at one QoS keep their order [MQTT-4.6.0-6]"
        case (.puback, .puback): return "PUBACKs go in the order of their PUBLISHes [MQTT-4.6.0-2]"
        case (.pubrec, .pubrec): return "PUBRECs go in the order of their PUBLISHes [MQTT-4.6.0-3]"
        case (.pubrel, .pubrel): return "PUBRELs go in the order of their PUBRECs [MQTT-4.6.0-4]"
        default: return nil
        }
    }

    /// A delivery (a PUBLISH from the server) at another QoS than recorded. Higher is against
    /// the rule that a subscriber gets the smaller of the published and the granted QoS, as
    /// long as the recording's broker kept it (the replayed publisher sends what it sent then).
    static func deliveryQoS(_ expected: RecordedMessage, _ actual: RecordedMessage) -> String? {
        guard expected.direction == .serverToClient, case .publish(let e) = expected.packet, case .publish(let a) = actual.packet,
              e.qos != a.qos else { return nil }
        let rule = a.qos.rawValue > e.qos.rawValue
            ? ": a delivery goes at the smaller of the published and the granted QoS ([MQTT-3.8.4-6] in 3.1.1, [MQTT-3.8.4-8] in 5.0)" : ""
        return "\(a.qos) instead of \(e.qos)" + rule
    }

    /// Within each run of unaligned packets, a missing and an added packet of the same type and
    /// topic stand side by side as one row (an acknowledgement naming another identifier is one
    /// difference, not a missing and an extra packet).
    static func pairLeftovers(_ alignment: [(Int?, Int?)], same: (Int, Int) -> Bool) -> [(Int?, Int?)] {
        var out: [(Int?, Int?)] = []
        var run: [(Int?, Int?)] = []
        func flush() {
            var missing = run.compactMap(\.0)
            var added = run.compactMap(\.1)
            var merged: [(Int?, Int?)] = []
            while let e = missing.first {
                if let match = added.firstIndex(where: { same(e, $0) }) {
                    merged.append(contentsOf: added[..<match].map { (nil, $0) })
                    merged.append((e, added[match]))
                    added.removeSubrange(...match)
                } else {
                    merged.append((e, nil))
                }
                missing.removeFirst()
            }
            merged.append(contentsOf: added.map { (nil, $0) })
            out.append(contentsOf: merged)
            run = []
        }
        for pair in alignment {
            if pair.0 != nil && pair.1 != nil {
                flush()
                out.append(pair)
            } else {
                run.append(pair)
            }
        }
        flush()
        return out
    }

    /// For every packet of a flow, the index of the packet that began it (itself for the first).
    static func flowStarts(_ flows: [Flow?]) -> [Int?] {
        var first: [Flow: Int] = [:]
        return flows.indices.map { index in
            guard let flow = flows[index] else { return nil }
            if let start = first[flow] { return start }
            first[flow] = index
            return index
        }
    }

    /// What aligns two packets before they are compared: the type, and a PUBLISH's topic.
    static func signature(_ packet: MQTTPacket) -> String {
        if case .publish(let publish) = packet { return "PUBLISH \(publish.topicName)" }
        return packet.type.description
    }

    /// A longest-common-subsequence alignment of `a` and `b` (indices), where `same` says which
    /// elements may stand for each other; ties keep the later pairing, so an extra element is
    /// reported where it was added. A common head and tail are paired first, so a long session
    /// with a few changes aligns cheaply; a middle that is still long (over 4 million cell
    /// comparisons) is paired rank by rank.
    package static func diff(_ a: [Int], _ b: [Int], same: (Int, Int) -> Bool) -> [(Int?, Int?)] {
        var head = 0
        while head < a.count && head < b.count && same(a[head], b[head]) { head += 1 }
        var tail = 0
        while tail < a.count - head && tail < b.count - head && same(a[a.count - 1 - tail], b[b.count - 1 - tail]) { tail += 1 }
        let middleA = Array(a[head..<(a.count - tail)])
        let middleB = Array(b[head..<(b.count - tail)])
        return (0..<head).map { (a[$0], b[$0]) } + middle(middleA, middleB, same: same)
            + (0..<tail).reversed().map { (a[a.count - 1 - $0], b[b.count - 1 - $0]) }
    }

    private static func middle(_ a: [Int], _ b: [Int], same: (Int, Int) -> Bool) -> [(Int?, Int?)] {
        let (n, m) = (a.count, b.count)
        guard n * m <= 4_000_000 else {
            return (0..<max(n, m)).map { ($0 < n ? a[$0] : nil, $0 < m ? b[$0] : nil) }
        }
        // lengths[i][j]: the longest common subsequence of a[i...] and b[j...].
        var lengths = [[Int32]](repeating: [Int32](repeating: 0, count: m + 1), count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                lengths[i][j] = same(a[i], b[j]) ? lengths[i + 1][j + 1] + 1 : max(lengths[i + 1][j], lengths[i][j + 1])
            }
        }
        var out: [(Int?, Int?)] = []
        var (i, j) = (0, 0)
        while i < n && j < m {
            if same(a[i], b[j]) && lengths[i][j] == lengths[i + 1][j + 1] + 1 && lengths[i][j + 1] < lengths[i][j] {
                out.append((a[i], b[j]))
                i += 1
                j += 1
            } else if lengths[i][j + 1] >= lengths[i + 1][j] {
                out.append((nil, b[j]))
                j += 1
            } else {
                out.append((a[i], nil))
                i += 1
            }
        }
        while i < n { out.append((a[i], nil)); i += 1 }
        while j < m { out.append((nil, b[j])); j += 1 }
        return out
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
    package struct Flow: Hashable, Sendable {
        package var clientChose: Bool
        package var identifier: UInt16
        package var generation: Int
    }

    /// The flow of every packet that carries an identifier, in one timeline.
    package static func flows(of messages: [RecordedMessage]) -> [Flow?] {
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

    package static func isPing(_ packet: MQTTPacket) -> Bool {
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
            if e.cleanStart != a.cleanStart { return "clean session \(a.cleanStart) instead of \(e.cleanStart)" }
            if e.keepAlive != a.keepAlive { return "keep-alive \(a.keepAlive) s instead of \(e.keepAlive) s" }
            if e.clientIdentifier != a.clientIdentifier { return "client id \"\(a.clientIdentifier)\" instead of \"\(e.clientIdentifier)\"" }
            // User names and passwords may be recorded as pseudonyms.
            switch (e.username, a.username) {
            case (nil, nil): break
            case (let recorded?, let replayed?) where rules.secretMatches(expected: recorded, actual: replayed): break
            default: return "user name \(a.username.map { "\"\($0)\"" } ?? "none") instead of \(e.username.map { "\"\($0)\"" } ?? "none")"
            }
            switch (e.password.map { String(decoding: $0.readableBytesView, as: UTF8.self) }, a.password.map { String(decoding: $0.readableBytesView, as: UTF8.self) }) {
            case (nil, nil): break
            case (let recorded?, let replayed?) where rules.secretMatches(expected: recorded, actual: replayed): break
            case (nil, _?): return "a password the recording does not have"
            case (_?, nil): return "no password, the recording has one"
            default: return "another password than the recording's"
            }
            e.username = nil; a.username = nil; e.password = nil; a.password = nil
            return e == a ? nil : "CONNECT fields differ (will or properties)"
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

    package static func jsonDifference(_ expected: JSONValue, _ actual: JSONValue, path: String, rules: MatchRules) -> String? {
        if rules.ignoredPaths.contains(where: { matches(pattern: $0, path: path) }) { return nil }
        if let rule = rules.patterns.first(where: { matches(pattern: $0.path, path: path) }) {
            let text = actual.stringValue ?? actual.description
            guard let regex = try? Regex(rule.regex) else { return "\(path): the rule's regular expression does not compile" }
            return (try? regex.wholeMatch(in: text)) != nil ? nil : "\(path) is \(actual), which does not match /\(rule.regex)/"
        }
        if case .string(let recorded) = expected, case .string(let replayed) = actual,
           rules.secretMatches(expected: recorded, actual: replayed) { return nil }
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
            guard expected != actual else { return nil }
            let key = path.split(separator: ".").last.map { String($0.prefix { $0 != "[" }).lowercased() } ?? ""
            if let display = rules.display, display.names.contains(key) {
                func shown(_ value: JSONValue) -> String {
                    let text = value.stringValue ?? value.description
                    return MatchRules.pseudonymKind(text) != nil ? text : display.pseudonym(text, kind: key)
                }
                return "\(path) is \(shown(actual)), the recording's \(shown(expected))"
            }
            return "\(path) is \(actual), the recording's \(expected)"
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
