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
/// server's for `serve`), "theirs" those of the peer under test. The replay keeps the order
/// MQTT guarantees, not the recorded total order (docs/replay.md, "The order a replay keeps"):
///
/// - A theirs packet that arrives stands for the first recorded one, on its connection, that
///   has not come yet and is the same packet: its type, a PUBLISH's topic, and its flow (an
///   acknowledgement of our flow names the identifier we sent; the peer's PUBREL names the
///   identifier its PUBLISH came with). One that stands for none is an addition, which the
///   comparison reports.
/// - An ours packet that answers the peer (an acknowledgement of a flow the peer began; the
///   server's CONNACK) waits only for the packet it answers. Every other ours packet (CONNECT,
///   SUBSCRIBE, UNSUBSCRIBE, PUBLISH, our PUBREL, DISCONNECT) is sent in recorded order and waits
///   for the theirs packets recorded before it, except the peer's publications (its PUBLISH and
///   PUBREL packets), which a correct peer may send in another order: a PUBLISH waits for those
///   recorded before it on its own topic, a DISCONNECT for everything recorded before it on its
///   connection.
/// - Every ours packet also waits for its recorded time under the pace.
///
/// What an ours packet waits for came, in the recording, before it without anything sent after
/// it, and answers are never held back: a correct peer cannot make the replay wait for ever.
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
        enum Kind: Sendable, Hashable {
            /// The peer's packet.
            case theirs
            /// Ours, answering the peer's packet `needs` (nil: nothing recorded to answer).
            case answer(needs: Int?)
            /// Ours, sent in recorded order with the others of its kind.
            case ours
        }

        var connection: Int
        var message: Int
        var kind: Kind
        var offset: Double

        var isOurs: Bool { kind != .theirs }
    }

    /// How far ahead of the first missing packet an arriving one is looked for among the
    /// recorded ones: a packet further ahead counts as an addition (bounds the work per packet).
    static let lookahead = 4_096

    public let role: Role
    public let pace: Pace
    public let connections: [RecordedConnection]
    let steps: [Step]
    /// Per connection, a message's place in ``steps``.
    let stepOf: [[Int: Int]]
    let recordedFlows: [[Matcher.Flow?]]
    /// Per connection and message, the message that began its flow.
    private let flowStarts: [[Int?]]
    /// Theirs steps per connection, in order.
    private let theirsOf: [[Int]]
    /// Theirs steps that every later ours packet (not an answer) waits for: all but publications.
    private let ordinary: [Int]
    /// Theirs PUBLISH steps by topic.
    private let publications: [String: [Int]]
    /// Ours steps that are not answers, in order.
    private let oursInOrder: [Int]
    /// Answers by the theirs step they answer.
    private let answersTo: [Int: [Int]]

    public private(set) var states: [ConnectionState]
    /// What happened on each connection, both ways, pings included: what ``Matcher`` compares.
    public private(set) var timelines: [[RecordedMessage]]
    /// QoS 1 and 2 PUBLISHes sent on each connection so far: what the peer has to acknowledge.
    public private(set) var acknowledgeablesSent: [Int]
    /// Sent, arrived, or given up with its connection.
    private var done: [Bool]
    private var remaining: Int
    /// Every step before it is done.
    private var cursor = 0
    /// The next of ``oursInOrder`` to send.
    private var nextOurs = 0
    /// Answers whose packet came (or that answer nothing recorded), in timeline order.
    private var readyAnswers: [Int] = []
    /// First places not known to be done, in ``ordinary``, ``theirsOf`` and ``publications``.
    private var ordinaryFrom = 0
    private var theirsFrom: [Int]
    private var publicationsFrom: [String: Int] = [:]
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
        let flows = connections.map { Matcher.flows(of: $0.messages) }
        let starts = flows.map { Matcher.flowStarts($0) }
        var unordered: [Step] = []
        for (index, connection) in connections.enumerated() {
            for (position, message) in connection.messages.enumerated() where !Matcher.isPing(message.packet) {
                let ours = (message.direction == .clientToServer) == (role == .client)
                unordered.append(Step(connection: index, message: position, kind: ours ? .ours : .theirs, offset: message.time - start))
            }
        }
        // One timeline: by recorded time, a connection's own order kept for equal times.
        var steps = unordered.enumerated().sorted { a, b in
            a.element.offset != b.element.offset ? a.element.offset < b.element.offset : a.offset < b.offset
        }.map(\.element)
        var stepOf = Array(repeating: [Int: Int](), count: connections.count)
        for (position, step) in steps.enumerated() { stepOf[step.connection][step.message] = position }
        var theirsOf = Array(repeating: [Int](), count: connections.count)
        var ordinary: [Int] = []
        var publications: [String: [Int]] = [:]
        var oursInOrder: [Int] = []
        var answersTo: [Int: [Int]] = [:]
        var readyAnswers: [Int] = []
        var lastConnect = Array(repeating: Int?.none, count: connections.count)
        for (position, step) in steps.enumerated() {
            let packet = connections[step.connection].messages[step.message].packet
            guard step.isOurs else {
                theirsOf[step.connection].append(position)
                switch packet {
                case .publish(let publish): publications[publish.topicName, default: []].append(position)
                case .pubrel: break
                default: ordinary.append(position)
                }
                if case .connect = packet { lastConnect[step.connection] = position }
                continue
            }
            if let answered = Self.answers(packet, role: role) {
                // The theirs packet of the same flow just before it (the server's CONNACK: the CONNECT).
                var needs: Int?
                if answered == .connect {
                    needs = lastConnect[step.connection]
                } else if let flow = flows[step.connection][step.message] {
                    needs = (0..<step.message).reversed().first { flows[step.connection][$0] == flow }
                        .flatMap { stepOf[step.connection][$0] }.flatMap { steps[$0].isOurs ? nil : $0 }
                }
                steps[position].kind = .answer(needs: needs)
                if let needs { answersTo[needs, default: []].append(position) } else { readyAnswers.append(position) }
            } else {
                oursInOrder.append(position)
            }
        }
        self.steps = steps
        self.stepOf = stepOf
        recordedFlows = flows
        flowStarts = starts
        self.theirsOf = theirsOf
        self.ordinary = ordinary
        self.publications = publications
        self.oursInOrder = oursInOrder
        self.answersTo = answersTo
        self.readyAnswers = readyAnswers
        states = Array(repeating: .waiting, count: connections.count)
        timelines = Array(repeating: [], count: connections.count)
        acknowledgeablesSent = Array(repeating: 0, count: connections.count)
        done = Array(repeating: false, count: steps.count)
        remaining = steps.count
        theirsFrom = Array(repeating: 0, count: connections.count)
        lastSent = Array(repeating: nil, count: connections.count)
        identifiers = Array(repeating: [:], count: connections.count)
        answersHandshake = connections.map { $0.transport == .scenario && $0.connect == nil && role == .server }
        handshaken = Array(repeating: false, count: connections.count)
    }

    /// The peer's packet type an ours packet answers, or nil when it is not an answer: the
    /// client answers the server's deliveries (PUBACK, PUBREC, PUBCOMP); the server answers
    /// CONNECT, SUBSCRIBE, UNSUBSCRIBE and the client's publications.
    static func answers(_ packet: MQTTPacket, role: Role) -> PacketType? {
        switch (packet, role) {
        case (.puback, _), (.pubrec, _): .publish
        case (.pubcomp, _): .pubrel
        case (.connack, .server): .connect
        case (.suback, .server): .subscribe
        case (.unsuback, .server): .unsubscribe
        default: nil
        }
    }

    /// Every recorded packet has been sent or has arrived (or cannot any more: its connection closed).
    public var isFinished: Bool { remaining == 0 }

    /// Where the walk is: every packet of the timeline before this step has been sent or has arrived.
    public var position: Int { cursor }

    /// The timeline step of message `message` of connection `index` (pings have none).
    public func step(connection index: Int, message: Int) -> Int? {
        stepOf[index][message]
    }

    /// Whether the replay waits for the peer (its packets, its connections), not for our time:
    /// nothing of ours is ready to go but for its time.
    public var waitsOnPeer: Bool {
        guard !isFinished else { return false }
        if readyAnswers.contains(where: { canSend(on: steps[$0].connection) }) { return false }
        guard nextOurs < oursInOrder.count else { return true }
        let next = oursInOrder[nextOurs]
        let connection = steps[next].connection
        guard blocker(of: next) == nil else { return true }
        return !(canSend(on: connection) || (role == .client && states[connection] == .waiting))
    }

    /// What the script waits for and why, for reports of a replay that stalled.
    public var waitingFor: String? {
        guard !isFinished else { return nil }
        if nextOurs < oursInOrder.count {
            let next = oursInOrder[nextOurs]
            let connection = connections[steps[next].connection]
            if let (theirs, why) = blocker(of: next) {
                return "\(describe(theirs)), which \(describe(next)) waits for (\(why))"
            }
            switch states[steps[next].connection] {
            case .waiting where role == .server: return "c\(connection.id): the client to connect"
            case .open where answersHandshake[steps[next].connection] && !handshaken[steps[next].connection]:
                return "c\(connection.id): the client's CONNECT"
            case .opening: return "c\(connection.id): the connection to open"
            default: return "c\(connection.id): its time to send \(Matcher.summary(packet(of: next)))"
            }
        }
        // Only answers and the peer's packets are left: the first that has not come.
        guard let first = steps.indices.dropFirst(cursor).first(where: { !done[$0] && !steps[$0].isOurs }) else {
            return readyAnswers.first.map { "\(describe($0)): its time" }
        }
        let answer = answersTo[first]?.first.map { ", which \(describe($0)) answers" } ?? ""
        return describe(first) + answer
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
        close(index)
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
        // A packet that stands for none is an addition, which the comparison reports.
        guard let step = recordedStep(for: packet, on: index) else { return [] }
        let message = steps[step].message
        if let flow = recordedFlows[index][message], flow.clientChose == (role == .server), flowStarts[index][message] == message,
           let live = packet.packetIdentifier {
            identifiers[index][flow] = live
        }
        finish(step)
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
        func consider(_ instant: ContinuousClock.Instant) { deadline = deadline.map { min($0, instant) } ?? instant }
        if let started {
            if nextOurs < oursInOrder.count, blocker(of: oursInOrder[nextOurs]) == nil {
                consider(started + pace.delay(offset: steps[oursInOrder[nextOurs]].offset))
            }
            for answer in readyAnswers where canSend(on: steps[answer].connection) {
                consider(started + pace.delay(offset: steps[answer].offset))
            }
        }
        if role == .client {
            for index in connections.indices where states[index] == .open {
                let keepAlive = Int(connections[index].connect?.keepAlive ?? 0)
                guard keepAlive > 0, let last = lastSent[index] else { continue }
                consider(last + .seconds(keepAlive))
            }
        }
        return deadline
    }

    // MARK: The walk

    private mutating func advance(now: ContinuousClock.Instant) -> [Action] {
        guard let started else { return [] }
        var actions: [Action] = []
        func due(_ step: Int) -> Bool { now >= started + pace.delay(offset: steps[step].offset) }
        var moved = true
        while moved {
            moved = false
            // Answers go as soon as what they answer came (and their time is due).
            var waiting: [Int] = []
            for answer in readyAnswers {
                let connection = steps[answer].connection
                if states[connection] == .closed {
                    finish(answer)
                } else if canSend(on: connection) && due(answer) {
                    actions.append(sent(packet(of: answer, renumbered: true), on: connection, now: now))
                    finish(answer)
                } else {
                    waiting.append(answer)
                }
            }
            readyAnswers = waiting
            // The rest in recorded order, each once what it waits for came.
            ours: while nextOurs < oursInOrder.count {
                let next = oursInOrder[nextOurs]
                let connection = steps[next].connection
                if states[connection] == .closed {
                    finish(next)
                    nextOurs += 1
                    moved = true
                    continue
                }
                guard blocker(of: next) == nil, due(next) else { break }
                switch states[connection] {
                case .waiting:
                    guard role == .client else { break ours }
                    states[connection] = .opening
                    actions.append(.open(connection))
                    break ours
                case .opening:
                    break ours
                case .closed:
                    break ours
                case .open:
                    if answersHandshake[connection] && !handshaken[connection] { break ours }
                    let packet = packet(of: next, renumbered: true)
                    actions.append(sent(packet, on: connection, now: now))
                    finish(next)
                    nextOurs += 1
                    moved = true
                    if role == .client, case .disconnect = packet {
                        close(connection)
                        actions.append(.close(connection))
                    }
                }
            }
        }
        return actions
    }

    /// Connection `index` is closed: what the peer still had to send on it is given up.
    private mutating func close(_ index: Int) {
        states[index] = .closed
        for step in theirsOf[index].dropFirst(theirsFrom[index]) where !done[step] { finish(step) }
    }

    /// The first place at or after `start` in `list` whose step is not done (`list.count` if none).
    private func firstUndone(in list: [Int], from start: Int) -> Int {
        var place = start
        while place < list.count && done[list[place]] { place += 1 }
        return place
    }

    /// Marks a step done and moves what depended on it along.
    private mutating func finish(_ step: Int) {
        guard !done[step] else { return }
        done[step] = true
        remaining -= 1
        while cursor < steps.count && done[cursor] { cursor += 1 }
        if let answers = answersTo[step] {
            readyAnswers.append(contentsOf: answers)
            readyAnswers.sort()
        }
    }

    /// The first theirs step an ours step (not an answer) still waits for, and why.
    private func blocker(of step: Int) -> (step: Int, why: String)? {
        // The first of `list` not done yet, if it was recorded before the step.
        func undoneBefore(_ list: [Int], from start: Int) -> Int? {
            let place = firstUndone(in: list, from: start)
            return place < list.count && list[place] < step ? list[place] : nil
        }
        if let first = undoneBefore(ordinary, from: ordinaryFrom) { return (first, "recorded before it") }
        let connection = steps[step].connection
        switch packet(of: step) {
        case .publish(let publish):
            if let list = publications[publish.topicName],
               let first = undoneBefore(list, from: publicationsFrom[publish.topicName] ?? 0) {
                return (first, "recorded before it on topic \"\(publish.topicName)\"")
            }
        case .disconnect:
            if let first = undoneBefore(theirsOf[connection], from: theirsFrom[connection]) {
                return (first, "recorded before it on its connection")
            }
        default:
            break
        }
        return nil
    }

    /// The recorded theirs step an arriving packet stands for (see the type's comment).
    private mutating func recordedStep(for live: MQTTPacket, on index: Int) -> Int? {
        let list = theirsOf[index]
        theirsFrom[index] = firstUndone(in: list, from: theirsFrom[index])
        ordinaryFrom = firstUndone(in: ordinary, from: ordinaryFrom)
        if case .publish(let publish) = live, let topics = publications[publish.topicName] {
            publicationsFrom[publish.topicName] = firstUndone(in: topics, from: publicationsFrom[publish.topicName] ?? 0)
        }
        var looked = 0
        for step in list[theirsFrom[index]...] where !done[step] {
            if corresponds(live, step) { return step }
            looked += 1
            if looked >= Self.lookahead { break }
        }
        return nil
    }

    private func corresponds(_ live: MQTTPacket, _ step: Int) -> Bool {
        let (index, message) = (steps[step].connection, steps[step].message)
        let recorded = connections[index].messages[message].packet
        guard live.type == recorded.type else { return false }
        if case .publish(let a) = live, case .publish(let b) = recorded, a.topicName != b.topicName { return false }
        guard let flow = recordedFlows[index][message] else { return true }
        guard flow.clientChose == (role == .server) else {
            // Our flow: we sent the recorded identifier.
            return live.packetIdentifier == recorded.packetIdentifier
        }
        if flowStarts[index][message] == message { return true }
        return identifiers[index][flow] == live.packetIdentifier
    }

    private func canSend(on connection: Int) -> Bool {
        states[connection] == .open && !(answersHandshake[connection] && !handshaken[connection])
    }

    private func packet(of step: Int, renumbered: Bool = false) -> MQTTPacket {
        let (index, message) = (steps[step].connection, steps[step].message)
        let packet = connections[index].messages[message].packet
        // The peer's live identifier where the peer started the flow.
        guard renumbered, let flow = recordedFlows[index][message], flow.clientChose == (role == .server),
              let live = identifiers[index][flow] else { return packet }
        return packet.withPacketIdentifier(live)
    }

    /// `c1: SUBACK id 1 from the server`, `the client's PUBREL id 2 on c1`.
    private func describe(_ step: Int) -> String {
        let connection = connections[steps[step].connection]
        let summary = Matcher.summary(packet(of: step))
        let peer = role == .client ? "server" : "client"
        let us = role == .client ? "client" : "server"
        return steps[step].isOurs ? "the \(us)'s \(summary) on c\(connection.id)" : "c\(connection.id): \(summary) from the \(peer)"
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
