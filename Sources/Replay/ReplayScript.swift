public import MQTTWire
public import Recordings

/// How recorded pauses are kept.
public enum Pace: Sendable, Hashable, CustomStringConvertible {
    /// As recorded.
    case original
    /// Recorded pauses divided by the factor (2 plays twice as fast).
    case speed(Double)
    /// No pauses: each message as soon as what it waits for has happened.
    case asap

    /// When a message recorded `offset` seconds after the recording's start is due.
    func delay(offset: Double) -> Duration {
        switch self {
        case .original: .milliseconds(Int64((max(0, offset) * 1000).rounded()))
        case .speed(let factor): .milliseconds(Int64((max(0, offset) * 1000 / factor).rounded()))
        case .asap: .zero
        }
    }

    public var description: String {
        switch self {
        case .original: "original timing"
        case .speed(let factor): "speed ×\(factor)"
        case .asap: "as fast as possible"
        }
    }
}

/// One side of a recording played against the other side, live: a value-type state machine
/// (no I/O, no clock of its own), so the rules are tested without sockets.
///
/// The recording's packets of every connection form one timeline, in recorded order, pings
/// left out. "Ours" are the packets of the side we play (the client's for `drive`, the
/// server's for `serve`), "theirs" those of the peer under test. An ours packet is sent once
/// every theirs packet recorded before it (on any connection) has arrived — the synchronized
/// mode — and not before its recorded time under the pace. Theirs packets are counted per
/// connection, by rank: the n-th that arrives stands for the n-th recorded; whether it matches
/// is for ``Matcher`` to say afterwards, from ``timelines``.
///
/// Packet identifiers of flows the peer starts (its PUBLISH, SUBSCRIBE) are taken from what it
/// sent, so our acknowledgements name its identifiers; our own flows keep the recorded ones.
/// Pings are answered (server side) or sent when the keep-alive asks (client side), never
/// replayed.
public struct ReplayScript: Sendable {
    public enum Role: Sendable, Hashable {
        /// We are the client: `drive`.
        case client
        /// We are the server: `serve`.
        case server
    }

    public enum Action: Sendable, Hashable {
        /// Open recorded connection `index` (client role).
        case open(Int)
        case send(Int, MQTTPacket)
        /// Close our end of connection `index`.
        case close(Int)
    }

    public enum ConnectionState: Sendable, Hashable {
        case waiting, opening, open, closed
    }

    struct Step: Sendable {
        var connection: Int
        var message: Int
        var ours: Bool
        /// Theirs only: the rank among the connection's theirs packets.
        var rank: Int
        var offset: Double
    }

    public let role: Role
    public let pace: Pace
    public let connections: [RecordedConnection]
    let steps: [Step]
    /// Per connection, a message's place in ``steps``.
    let stepOf: [[Int: Int]]
    let recordedFlows: [[Matcher.Flow?]]
    /// Per connection, the message indices of theirs packets (pings left out), in order.
    let theirs: [[Int]]

    public private(set) var states: [ConnectionState]
    /// What happened on each connection, both ways, pings included: what ``Matcher`` compares.
    public private(set) var timelines: [[RecordedMessage]]
    /// QoS 1 and 2 PUBLISHes sent on each connection so far: what the peer has to acknowledge.
    public private(set) var acknowledgeablesSent: [Int]
    private var arrived: [Int]
    private var cursor = 0
    private var started: ContinuousClock.Instant?
    private var lastSent: [ContinuousClock.Instant?]
    /// Per connection: a flow the peer started, as recorded → the identifier it uses live.
    private var identifiers: [[Matcher.Flow: UInt16]]
    /// Connections the peer opened beyond the recording's (server role).
    public private(set) var extraConnections = 0
    /// Scenario connections have no recorded CONNECT: the served side answers the client's
    /// itself (and its DISCONNECT), outside the compared timeline, and plays once it came.
    private let answersHandshake: [Bool]
    private var handshaken: [Bool]

    public init(connections: [RecordedConnection], role: Role, pace: Pace) {
        self.role = role
        self.pace = pace
        self.connections = connections
        let start = connections.compactMap { $0.messages.first?.time }.min() ?? 0
        var steps: [Step] = []
        var theirs: [[Int]] = []
        for (index, connection) in connections.enumerated() {
            var mine: [Int] = []
            for (position, message) in connection.messages.enumerated() where !Matcher.isPing(message.packet) {
                let ours = (message.direction == .clientToServer) == (role == .client)
                steps.append(Step(connection: index, message: position, ours: ours, rank: ours ? 0 : mine.count,
                                  offset: message.time - start))
                if !ours { mine.append(position) }
            }
            theirs.append(mine)
        }
        // One timeline: by recorded time, a connection's own order kept for equal times.
        self.steps = steps.enumerated().sorted { a, b in
            a.element.offset != b.element.offset ? a.element.offset < b.element.offset : a.offset < b.offset
        }.map(\.element)
        self.theirs = theirs
        var stepOf = Array(repeating: [Int: Int](), count: connections.count)
        for (position, step) in self.steps.enumerated() { stepOf[step.connection][step.message] = position }
        self.stepOf = stepOf
        recordedFlows = connections.map { Matcher.flows(of: $0.messages) }
        states = Array(repeating: .waiting, count: connections.count)
        timelines = Array(repeating: [], count: connections.count)
        acknowledgeablesSent = Array(repeating: 0, count: connections.count)
        arrived = Array(repeating: 0, count: connections.count)
        lastSent = Array(repeating: nil, count: connections.count)
        identifiers = Array(repeating: [:], count: connections.count)
        answersHandshake = connections.map { $0.transport == .scenario && $0.connect == nil && role == .server }
        handshaken = Array(repeating: false, count: connections.count)
    }

    /// Every recorded packet has been sent or has arrived (or cannot any more: its connection closed).
    public var isFinished: Bool { cursor == steps.count }

    /// Where the walk is: every packet of the timeline before this step has been sent or has arrived.
    public var position: Int { cursor }

    /// The timeline step of message `message` of connection `index` (pings have none).
    public func step(connection index: Int, message: Int) -> Int? {
        stepOf[index][message]
    }

    /// Whether the next step waits for the peer (its packet, its connection), not for our time.
    public var waitsOnPeer: Bool {
        guard cursor < steps.count else { return false }
        let step = steps[cursor]
        return !step.ours || states[step.connection] == .opening || (role == .server && states[step.connection] == .waiting)
            || (answersHandshake[step.connection] && !handshaken[step.connection])
    }

    /// What the script waits for, for reports of a replay that stalled.
    public var waitingFor: String? {
        guard cursor < steps.count else { return nil }
        let step = steps[cursor]
        let connection = connections[step.connection]
        let packet = Matcher.summary(connection.messages[step.message].packet)
        if step.ours {
            switch states[step.connection] {
            case .waiting where role == .server: return "c\(connection.id): the client to connect"
            case .open where answersHandshake[step.connection] && !handshaken[step.connection]: return "c\(connection.id): the client's CONNECT"
            case .opening: return "c\(connection.id): the connection to open"
            default: return "c\(connection.id): its time to send \(packet)"
            }
        }
        return "c\(connection.id): \(packet) from the \(role == .client ? "server" : "client")"
    }

    // MARK: Events

    public mutating func start(now: ContinuousClock.Instant) -> [Action] {
        started = now
        return advance(now: now)
    }

    /// The client under test opened a connection (server role): the index of the recorded
    /// connection it plays, or nil when the recording has no more (close it).
    public mutating func accepted(_ transport: RecordedConnection.Transport, now: ContinuousClock.Instant) -> (index: Int?, actions: [Action]) {
        func carries(_ recorded: RecordedConnection.Transport) -> Bool { (recorded == .tcp) == (transport == .tcp) }
        guard let index = states.indices.first(where: { states[$0] == .waiting && carries(connections[$0].transport) }) else {
            extraConnections += 1
            return (nil, [])
        }
        states[index] = .open
        return (index, advance(now: now))
    }

    /// Our connection `index` is open (client role).
    public mutating func opened(_ index: Int, now: ContinuousClock.Instant) -> [Action] {
        guard states[index] == .opening else { return [] }
        states[index] = .open
        return advance(now: now)
    }

    /// Connection `index` closed (either end) or could not be opened: what it still had to send
    /// or receive is given up, so the rest of the recording goes on.
    public mutating func closed(_ index: Int, now: ContinuousClock.Instant) -> [Action] {
        states[index] = .closed
        return advance(now: now)
    }

    public mutating func received(_ packet: MQTTPacket, on index: Int, now: ContinuousClock.Instant) -> [Action] {
        if answersHandshake[index] {
            switch packet {
            case .connect:
                handshaken[index] = true
                lastSent[index] = now
                return [.send(index, .connack(ConnAckPacket()))] + advance(now: now)
            case .disconnect:
                return []
            default:
                break
            }
        }
        timelines[index].append(RecordedMessage(direction: role == .client ? .serverToClient : .clientToServer,
                                                time: seconds(now), packet: packet))
        if Matcher.isPing(packet) {
            guard case .pingreq = packet, role == .server, states[index] == .open else { return [] }
            return [sent(.pingresp, on: index, now: now)]
        }
        let rank = arrived[index]
        arrived[index] += 1
        if rank < theirs[index].count, let flow = recordedFlows[index][theirs[index][rank]], let live = packet.packetIdentifier,
           flow.clientChose == (role == .server) {
            identifiers[index][flow] = live
        }
        return advance(now: now)
    }

    /// Time passed: sends what has become due.
    public mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        var actions = advance(now: now)
        if role == .client {
            for index in connections.indices where states[index] == .open {
                let keepAlive = Int(connections[index].connect?.keepAlive ?? 0)
                guard keepAlive > 0, let last = lastSent[index], now - last >= .seconds(keepAlive) else { continue }
                actions.append(sent(.pingreq, on: index, now: now))
            }
        }
        return actions
    }

    /// When ``tick(now:)`` should be called next: the next due time, or a keep-alive ping.
    public func nextDeadline() -> ContinuousClock.Instant? {
        var deadline: ContinuousClock.Instant?
        if cursor < steps.count, steps[cursor].ours, let started {
            deadline = started + pace.delay(offset: steps[cursor].offset)
        }
        if role == .client {
            for index in connections.indices where states[index] == .open {
                let keepAlive = Int(connections[index].connect?.keepAlive ?? 0)
                guard keepAlive > 0, let last = lastSent[index] else { continue }
                let ping = last + .seconds(keepAlive)
                deadline = deadline.map { min($0, ping) } ?? ping
            }
        }
        return deadline
    }

    // MARK: The walk

    private mutating func advance(now: ContinuousClock.Instant) -> [Action] {
        guard let started else { return [] }
        var actions: [Action] = []
        while cursor < steps.count {
            let step = steps[cursor]
            if !step.ours {
                guard arrived[step.connection] > step.rank || states[step.connection] == .closed else { break }
                cursor += 1
                continue
            }
            guard now >= started + pace.delay(offset: step.offset) else { break }
            switch states[step.connection] {
            case .waiting:
                guard role == .client else { return actions }
                states[step.connection] = .opening
                actions.append(.open(step.connection))
                return actions
            case .opening:
                return actions
            case .closed:
                cursor += 1
            case .open:
                if answersHandshake[step.connection] && !handshaken[step.connection] { return actions }
                cursor += 1
                let packet = renumbered(step)
                actions.append(sent(packet, on: step.connection, now: now))
                if role == .client, case .disconnect = packet {
                    states[step.connection] = .closed
                    actions.append(.close(step.connection))
                }
            }
        }
        return actions
    }

    /// The recorded packet, with the peer's live identifier where the peer started the flow.
    private func renumbered(_ step: Step) -> MQTTPacket {
        let packet = connections[step.connection].messages[step.message].packet
        guard let flow = recordedFlows[step.connection][step.message], flow.clientChose == (role == .server),
              let live = identifiers[step.connection][flow] else { return packet }
        return packet.withPacketIdentifier(live)
    }

    private mutating func sent(_ packet: MQTTPacket, on index: Int, now: ContinuousClock.Instant) -> Action {
        if case .publish(let publish) = packet, publish.qos != .atMostOnce { acknowledgeablesSent[index] += 1 }
        timelines[index].append(RecordedMessage(direction: role == .client ? .clientToServer : .serverToClient,
                                                time: seconds(now), packet: packet))
        lastSent[index] = now
        return .send(index, packet)
    }

    private func seconds(_ now: ContinuousClock.Instant) -> Double {
        guard let started else { return 0 }
        return (now - started) / .seconds(1)
    }
}

extension MQTTPacket {
    /// The same packet with another packet identifier (packets without one are unchanged).
    func withPacketIdentifier(_ identifier: UInt16) -> MQTTPacket {
        switch self {
        case .publish(var p): if p.packetIdentifier != nil { p.packetIdentifier = identifier }; return .publish(p)
        case .puback(var p): p.packetIdentifier = identifier; return .puback(p)
        case .pubrec(var p): p.packetIdentifier = identifier; return .pubrec(p)
        case .pubrel(var p): p.packetIdentifier = identifier; return .pubrel(p)
        case .pubcomp(var p): p.packetIdentifier = identifier; return .pubcomp(p)
        case .subscribe(var p): p.packetIdentifier = identifier; return .subscribe(p)
        case .suback(var p): p.packetIdentifier = identifier; return .suback(p)
        case .unsubscribe(var p): p.packetIdentifier = identifier; return .unsubscribe(p)
        case .unsuback(var p): p.packetIdentifier = identifier; return .unsuback(p)
        default: return self
        }
    }
}
