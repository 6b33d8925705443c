public import Capture
public import Dialects
import MQTTWire

/// `--stats`: per connection, packets by type, bytes, QoS flows completed and left open,
/// ping round trips, reconnects, anomalies and errors.
public struct DecodeStatistics {
    /// A class, so that counting does not copy it in and out of the dictionary.
    public final class PerConnection {
        public let connection: Connection
        public var protocolName = "?"
        /// Packets by type, indexed by the type's number.
        var packetCounts = [Int](repeating: 0, count: 16)
        /// Packets by type name (`PUBLISH`).
        public var packets: [String: Int] {
            var out: [String: Int] = [:]
            for type in PacketType.allCases where packetCounts[Int(type.rawValue)] > 0 {
                out[type.description] = packetCounts[Int(type.rawValue)]
            }
            return out
        }
        public var mqttBytes = ByDirection()
        /// WebSocket messages of a connection that does not carry MQTT, by what its dialect
        /// calls them (`onebot group-message`, `discord dispatch`; `text` when no dialect knew it).
        public var messages: [String: Int] = [:]
        public var messageBytes = ByDirection()
        public var qos1Completed = 0
        public var qos2Completed = 0
        public var pingRoundTrips: [Double] = []
        public var warnings = 0
        public var errors = 0
        public var gaps = 0
        public var gapBytes = 0
        public var clientIdentifier: String?
        public var closeReason: String?

        var openQoS1: Set<UInt32> = []
        var openQoS2: [UInt32: Int] = [:]
        var pendingPing: Double?

        init(connection: Connection) {
            self.connection = connection
        }

        /// QoS 1 and 2 flows that started and did not finish.
        public var openFlows: Int { openQoS1.count + openQoS2.count }
    }

    /// A count for each direction (kept in two fields: counting is a hot path, hashing was not free).
    public struct ByDirection: Sendable, Equatable {
        public var clientToServer = 0
        public var serverToClient = 0

        public subscript(direction: FlowDirection) -> Int {
            get { direction == .clientToServer ? clientToServer : serverToClient }
            set {
                if direction == .clientToServer { clientToServer = newValue } else { serverToClient = newValue }
            }
        }
    }

    public private(set) var connections: [Int: PerConnection] = [:]
    /// The connection of the last event: most events follow one of the same connection.
    private var recent: PerConnection?
    public private(set) var totalPackets = 0
    public private(set) var totalMessages = 0
    public private(set) var totalErrors = 0
    /// Connections not decoded (another protocol, TLS without its keys…), counted by what they
    /// were: kept as counts, not per connection, so that a capture of many such connections
    /// costs no memory per connection.
    public private(set) var ignored: [String: Int] = [:]

    public init() {}

    /// Adds the statistics of other connections (kept apart, as ``ParallelStatistics`` does):
    /// each connection's own numbers come from one side only.
    public mutating func merge(_ other: DecodeStatistics) {
        connections.merge(other.connections) { mine, _ in mine }
        ignored.merge(other.ignored, uniquingKeysWith: +)
        totalPackets += other.totalPackets
        totalMessages += other.totalMessages
        totalErrors += other.totalErrors
    }

    /// CONNECTs per client id beyond the first: reconnections seen in the capture.
    public var reconnects: [String: Int] {
        var counts: [String: Int] = [:]
        for stats in connections.values {
            if let id = stats.clientIdentifier, !id.isEmpty { counts[id, default: 0] += stats.packetCounts[Int(PacketType.connect.rawValue)] }
        }
        return counts.filter { $0.value > 1 }.mapValues { $0 - 1 }
    }

    /// The errors `event` reports, as ``totalErrors`` counts them: for a tool that shows
    /// records, not statistics, and only needs to know whether the capture had errors.
    public static func errorCount(of event: borrowing CaptureEvent) -> Int {
        guard case .dissected(let dissected) = event.kind else { return 0 }
        switch dissected.kind {
        case .error: return 1
        case .response(_, let problems): return problems.count
        default: return 0
        }
    }

    /// Consuming: the caller hands its event over. Its kind is switched on where it lies;
    /// taking it apart into locals first copied the MQTT case (every buffer and string in the
    /// packet retained) through the runtime's generic tuple copy.
    public mutating func add(_ event: consuming CaptureEvent) {
        let stats: PerConnection
        if let recent, recent.connection.id == event.connection.id {
            stats = recent
        } else if let known = connections[event.connection.id] {
            stats = known
            recent = known
        } else {
            stats = PerConnection(connection: event.connection)
            connections[event.connection.id] = stats
            recent = stats
        }
        let direction = event.direction
        let time = event.time
        switch event.kind {
        case .opened(let proto, _): stats.protocolName = proto
        case .gap(let bytes):
            stats.gaps += 1
            stats.gapBytes += bytes
        case .closed(let reason): stats.closeReason = reason
        case .ignored(let reason):
            // Its few events before the decision (a gap) are dropped with it.
            connections[event.connection.id] = nil
            recent = nil
            ignored[Self.kind(ofIgnored: reason), default: 0] += 1
        case .dissected(let dissected):
            stats.warnings += dissected.warnings.count
            switch dissected.kind {
            case .error:
                stats.errors += 1
                totalErrors += 1
            case .response(_, let problems):
                stats.errors += problems.count
                totalErrors += problems.count
            case .mqtt(let packet, let range, let annotation):
                totalPackets += 1
                stats.warnings += annotation?.warnings.count ?? 0
                stats.packetCounts[Int(packet.type.rawValue)] += 1
                if let direction { stats.mqttBytes[direction] += range.count }
                track(packet, direction: direction, time: time, stats: stats)
            case .webSocketMessage(let message, let annotation):
                totalMessages += 1
                stats.warnings += annotation?.warnings.count ?? 0
                stats.messages[annotation.map { "\($0.dialect) \($0.kind)" } ?? DecodeRecord.opcodeName(message.opcode), default: 0] += 1
                if let direction { stats.messageBytes[direction] += message.data.readableBytes }
            default: break
            }
        }
    }

    /// Flows are keyed by packet id and the direction of the PUBLISH.
    private func track(_ packet: MQTTPacket, direction: FlowDirection?, time: Double, stats: PerConnection) {
        let sender: UInt32 = direction == .clientToServer ? 0 : 1 << 16
        let receiver: UInt32 = direction == .clientToServer ? 1 << 16 : 0
        switch packet {
        case .connect(let connect): stats.clientIdentifier = connect.clientIdentifier
        case .publish(let publish):
            guard let id = publish.packetIdentifier else { return }
            if publish.qos == .atLeastOnce { stats.openQoS1.insert(sender | UInt32(id)) }
            if publish.qos == .exactlyOnce { stats.openQoS2[sender | UInt32(id)] = 1 }
        case .puback(let ack):
            if stats.openQoS1.remove(receiver | UInt32(ack.packetIdentifier)) != nil { stats.qos1Completed += 1 }
        case .pubrec(let ack):
            if stats.openQoS2[receiver | UInt32(ack.packetIdentifier)] == 1 { stats.openQoS2[receiver | UInt32(ack.packetIdentifier)] = 2 }
        case .pubrel(let ack):
            if stats.openQoS2[sender | UInt32(ack.packetIdentifier)] == 2 { stats.openQoS2[sender | UInt32(ack.packetIdentifier)] = 3 }
        case .pubcomp(let ack):
            if stats.openQoS2[receiver | UInt32(ack.packetIdentifier)] == 3 {
                stats.openQoS2[receiver | UInt32(ack.packetIdentifier)] = nil
                stats.qos2Completed += 1
            }
        case .pingreq where direction == .clientToServer:
            stats.pendingPing = time
        case .pingresp where direction == .serverToClient:
            // Bytes held behind a capture gap come out late with their own, earlier time:
            // a round trip is only counted when the answer is not older than the question.
            if let sent = stats.pendingPing, time >= sent {
                stats.pingRoundTrips.append(time - sent)
            }
            stats.pendingPing = nil
        default: break
        }
    }

    /// What an ignored connection was, from its reason: the protocol named before any detail
    /// (`SSH`, `TLS`, `HTTP`), or `other`.
    static func kind(ofIgnored reason: String) -> String {
        var name = reason.prefix { $0 != "(" && $0 != "," }
        while name.last == " " { name = name.dropLast() }
        return name.hasPrefix("neither") || name.hasPrefix("a text protocol") || name.isEmpty ? "other" : String(name)
    }

    public func json() -> JSONValue {
        let list = connections.keys.sorted().compactMap { connections[$0] }.map { stats -> JSONValue in
            let packets = stats.packets
            let rtts = stats.pingRoundTrips.map { $0 * 1000 }
            var members: [JSONMember] = [
                .init(key: "connection", value: .string("c\(stats.connection.id)")),
                .init(key: "protocol", value: .string(stats.protocolName)),
                .init(key: "client", value: .string(stats.connection.client.description)),
                .init(key: "server", value: .string(stats.connection.server.description)),
                .init(key: "packets", value: .object(packets.keys.sorted().map { .init(key: $0, value: .number(String(packets[$0] ?? 0))) })),
                .init(key: "bytes", value: .object([
                    .init(key: "c2s", value: .number(String(stats.mqttBytes.clientToServer))),
                    .init(key: "s2c", value: .number(String(stats.mqttBytes.serverToClient))),
                ])),
                .init(key: "qos1Completed", value: .number(String(stats.qos1Completed))),
                .init(key: "qos2Completed", value: .number(String(stats.qos2Completed))),
                .init(key: "flowsOpen", value: .number(String(stats.openFlows))),
                .init(key: "pings", value: .number(String(rtts.count))),
                .init(key: "warnings", value: .number(String(stats.warnings))),
                .init(key: "errors", value: .number(String(stats.errors))),
                .init(key: "gaps", value: .number(String(stats.gaps))),
                .init(key: "gapBytes", value: .number(String(stats.gapBytes))),
            ]
            if let minimum = rtts.min(), let maximum = rtts.max() {
                members.append(.init(key: "pingMilliseconds", value: .object([
                    .init(key: "min", value: .number(DecodeRecord.formatTime(minimum))),
                    .init(key: "avg", value: .number(DecodeRecord.formatTime(rtts.reduce(0, +) / Double(rtts.count)))),
                    .init(key: "max", value: .number(DecodeRecord.formatTime(maximum))),
                ])))
            }
            if !stats.messages.isEmpty {
                members.append(.init(key: "messages", value: .object(stats.messages.keys.sorted().map { .init(key: $0, value: .integer(stats.messages[$0] ?? 0)) })))
                members.append(.init(key: "messageBytes", value: .members([
                    "c2s": .integer(stats.messageBytes.clientToServer), "s2c": .integer(stats.messageBytes.serverToClient),
                ])))
            }
            if let id = stats.clientIdentifier { members.append(.init(key: "clientId", value: .string(id))) }
            if let reason = stats.closeReason { members.append(.init(key: "closed", value: .string(reason))) }
            return .object(members)
        }
        return .object([
            .init(key: "v", value: .number(String(DecodeRecord.schemaVersion))),
            .init(key: "event", value: .string("stats")),
            .init(key: "packets", value: .number(String(totalPackets))),
            .init(key: "messages", value: .integer(totalMessages)),
            .init(key: "errors", value: .number(String(totalErrors))),
            .init(key: "reconnects", value: .object(reconnects.keys.sorted().map { .init(key: $0, value: .number(String(reconnects[$0] ?? 0))) })),
            .init(key: "connections", value: .array(list)),
            .init(key: "ignored", value: .object(ignored.keys.sorted().map { .init(key: $0, value: .integer(ignored[$0] ?? 0)) })),
        ])
    }

    public func text() -> [String] {
        var lines: [String] = []
        for id in connections.keys.sorted() {
            guard let stats = connections[id] else { continue }
            lines.append("c\(id)  \(stats.protocolName)  \(stats.connection.client) → \(stats.connection.server)"
                         + (stats.clientIdentifier.map { "  client \"\($0)\"" } ?? "") + (stats.closeReason.map { "  (\($0))" } ?? ""))
            if stats.messages.isEmpty {
                let counts = stats.packets
                let packets = counts.keys.sorted().map { "\($0) \(counts[$0] ?? 0)" }.joined(separator: ", ")
                lines.append("    packets: \(packets.isEmpty ? "none" : packets)")
                lines.append("    MQTT bytes: \(stats.mqttBytes.clientToServer) c→s, \(stats.mqttBytes.serverToClient) s→c")
                lines.append("    QoS flows: \(stats.qos1Completed) QoS 1 and \(stats.qos2Completed) QoS 2 completed, \(stats.openFlows) open")
            } else {
                let messages = stats.messages.keys.sorted().map { "\($0) \(stats.messages[$0] ?? 0)" }.joined(separator: ", ")
                lines.append("    messages: \(messages)")
                lines.append("    message bytes: \(stats.messageBytes.clientToServer) c→s, \(stats.messageBytes.serverToClient) s→c")
            }
            if !stats.pingRoundTrips.isEmpty {
                let rtts = stats.pingRoundTrips.map { $0 * 1000 }
                let average = rtts.reduce(0, +) / Double(rtts.count)
                lines.append("    pings: \(rtts.count), round trip min/avg/max \(ms(rtts.min() ?? 0))/\(ms(average))/\(ms(rtts.max() ?? 0)) ms")
            }
            lines.append("    anomalies: \(stats.warnings) warning(s), \(stats.errors) error(s), \(stats.gaps) gap(s) (\(stats.gapBytes) bytes)")
        }
        for (id, count) in reconnects.sorted(by: { $0.key < $1.key }) { lines.append("client \"\(id)\" reconnected \(count) time(s)") }
        if !ignored.isEmpty {
            lines.append("not decoded: " + ignored.keys.sorted().map { "\($0) \(ignored[$0] ?? 0)" }.joined(separator: ", "))
        }
        lines.append("\(connections.count) connection(s), \(totalPackets) MQTT packet(s)"
                     + (totalMessages > 0 ? ", \(totalMessages) other WebSocket message(s)" : "") + ", \(totalErrors) error(s)")
        return lines
    }

    private func ms(_ value: Double) -> String {
        let scaled = (value * 1000).rounded() / 1000
        return "\(scaled)"
    }
}
