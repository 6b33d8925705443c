public import Capture
public import Dialects
public import LiveClock
public import LiveWebSocket
import MQTTWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
public import Recordings
import WorksClient

/// Why a replay could not run: a usage mistake, a recording it cannot use, a peer it cannot reach.
public struct ReplayError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable { case usage, input, connection }
    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

public struct ReplayOptions: Sendable {
    public var pace: Pace
    /// How long the replay waits for the peer's next recorded packet before it stops.
    public var timeout: Duration
    /// How long it still listens once the recording is played, for packets beyond it.
    public var settle: Duration
    public var rules: MatchRules
    /// Told every packet sent and received, as a line (`--verbose`).
    public var trace: (@Sendable (String) -> Void)?
    /// The time the replay goes by (pace, timeout, settling): the machine's, or a test's.
    public var clock: LiveClock
    /// `serve`: which browser pages and host names its listeners serve (by default programs
    /// and no page of another origin; `--allow-origin`, `--allow-host`).
    public var access = BrowserAccess.standard

    public init(pace: Pace = .original, timeout: Duration = .seconds(10), settle: Duration = .milliseconds(200),
                rules: MatchRules = MatchRules(), trace: (@Sendable (String) -> Void)? = nil, clock: LiveClock = .system) {
        self.clock = clock
        self.pace = pace
        self.timeout = timeout
        self.settle = settle
        self.rules = rules
        self.trace = trace
    }
}

/// What one replayed connection showed: the peer's direction compared with the recording.
public struct ConnectionReport: Sendable {
    public var connection: RecordedConnection
    /// The peer's direction: the one under test.
    public var compared: FlowDirection
    public var rows: [AlignedRow]
    public var notes: [String]
    /// Why this connection was not replayed (check: a transport or version the built-in client lacks).
    public var skipped: String?

    public init(connection: RecordedConnection, compared: FlowDirection, rows: [AlignedRow] = [], notes: [String] = [],
                skipped: String? = nil) {
        self.connection = connection
        self.compared = compared
        self.rows = rows
        self.notes = notes
        self.skipped = skipped
    }

    public var differences: [AlignedRow] { rows.filter { $0.reason != nil } }
    public var matched: Bool { skipped == nil && notes.isEmpty && differences.isEmpty }
}

/// The outcome of replaying one recording.
public struct ReplayReport: Sendable {
    public enum Mode: String, Sendable { case drive, serve, check }

    public var recording: String
    public var mode: Mode
    public var pace: Pace
    public var seconds: Double
    public var connections: [ConnectionReport]
    /// What concerns the whole replay (a stall, connections the recording does not have).
    public var notes: [String]

    public var matched: Bool { notes.isEmpty && connections.allSatisfy { $0.matched || $0.skipped != nil } }
    /// Packets sent and received, pings included.
    public var packets: Int
    /// Secrets in the reports (payload previews, annotations) appear as pseudonyms made with it; nil shows them.
    public var redactor: Redactor?
    /// What is wrong with the recording itself (cut short, bytes missing, a layer's error): the
    /// replay played what could be read, and the reports say so.
    public var warnings: [String] = []

    /// Connections actually replayed (not skipped).
    public var replayed: Int { connections.count { $0.skipped == nil } }
}

/// What a run of the script left: the live timelines and what went wrong on the way.
struct RunOutcome: Sendable {
    var timelines: [[RecordedMessage]]
    var notes: [String]
    var connectionNotes: [Int: [String]]
    var packets: Int
    /// From the start to the last recorded packet played (the listening for extras after it not counted).
    var played: Duration
}

/// Where a served script stands: its position in the timeline, whether it is done, and the
/// QoS 1 and 2 PUBLISHes it has sent on each connection.
public struct ReplayProgress: Sendable {
    public var position: Int
    public var finished: Bool
    public var acknowledgeablesSent: [Int]
}

/// Plays a ``ReplayScript`` over live connections: one loop reads every event (connections
/// opened, packets, closes, timers) from one stream, so the script needs no lock.
/// `@unchecked Sendable`: its mutable state (the script, links, notes) is touched by `run()`'s
/// loop alone; other tasks only yield events into the stream and take link ids from a locked box.
final class ScriptRunner: @unchecked Sendable {
    enum Event: Sendable {
        case accepted(link: Int, PacketLink, PacketLink.Inbound, RecordedConnection.Transport)
        case opened(index: Int, PacketLink, PacketLink.Inbound)
        case openFailed(index: Int, String)
        case received(link: Int, MQTTPacket)
        case closed(link: Int, String?)
        case wake
        case stop(String)
    }

    /// The loop's own: nothing outside `run()` reads it (ReplayServer keeps its own copy of the steps).
    private var script: ReplayScript
    private let options: ReplayOptions
    let events: AsyncStream<Event>
    let continuation: AsyncStream<Event>.Continuation
    private var links: [Int: PacketLink] = [:]
    /// Link id → recorded connection index (our connections use the index itself).
    private var indexOf: [Int: Int] = [:]
    private var notes: [String] = []
    private var connectionNotes: [Int: [String]] = [:]
    private var packets = 0
    private let nextLink = NIOLockedValueBox(1_000_000)
    /// Our connections (client role) are opened with it.
    private let open: (@Sendable (Int) async throws(ReplayError) -> (PacketLink, PacketLink.Inbound))?
    /// Told the script's progress after every event (check gates its client on it).
    private let progress: (@Sendable (ReplayProgress) -> Void)?

    init(script: ReplayScript, options: ReplayOptions,
         open: (@Sendable (Int) async throws(ReplayError) -> (PacketLink, PacketLink.Inbound))? = nil,
         progress: (@Sendable (ReplayProgress) -> Void)? = nil) {
        self.script = script
        self.options = options
        self.open = open
        self.progress = progress
        (events, continuation) = AsyncStream.makeStream(of: Event.self)
    }

    /// For listeners: hands an accepted connection to the loop and reads it.
    func accept(_ link: PacketLink, _ inbound: PacketLink.Inbound, _ transport: RecordedConnection.Transport) {
        let id = nextLink.withLockedValue { value in
            value += 1
            return value
        }
        continuation.yield(.accepted(link: id, link, inbound, transport))
    }

    private func startReading(_ link: PacketLink, _ inbound: PacketLink.Inbound, id: Int) {
        let continuation = self.continuation
        Task {
            let reason = await link.read(inbound) { continuation.yield(.received(link: id, $0)) }
            continuation.yield(.closed(link: id, reason))
        }
    }

    /// Runs until the recording is played and settled, or the peer stalls.
    func run() async -> RunOutcome {
        let clock = options.clock
        let start = clock.now
        started = start
        perform(script.start(now: start))
        var lastProgress = start
        var finishedAt: ContinuousClock.Instant?
        var wake: Task<Void, Never>?
        var everConnected = script.role == .client
        var iterator = events.makeAsyncIterator()
        loop: while true {
            progress?(ReplayProgress(position: script.position, finished: script.isFinished,
                                     acknowledgeablesSent: script.acknowledgeablesSent))
            let now = clock.now
            if script.isFinished && finishedAt == nil { finishedAt = now }
            if let finishedAt, now >= finishedAt + options.settle { break }
            if finishedAt == nil, everConnected, waitsOnPeer, now >= lastProgress + options.timeout {
                notes.append("stopped after waiting \(options.timeout) for \(script.waitingFor ?? "the peer")")
                break
            }
            var deadline = script.nextDeadline()
            let limit = finishedAt.map { $0 + options.settle } ?? (everConnected && waitsOnPeer ? lastProgress + options.timeout : nil)
            if let limit { deadline = deadline.map { min($0, limit) } ?? limit }
            wake?.cancel()
            if let deadline {
                let continuation = self.continuation
                wake = Task {
                    await clock.sleep(until: deadline)
                    if !Task.isCancelled { continuation.yield(.wake) }
                }
            }
            guard let event = await iterator.next() else { break }
            let when = clock.now
            let before = script.position
            switch event {
            case .wake:
                perform(script.tick(now: when))
            case .stop(let reason):
                notes.append(reason)
                break loop
            case .accepted(let id, let link, let inbound, let transport):
                let (index, actions) = script.accepted(transport, now: when)
                startReading(link, inbound, id: id)
                guard let index else {
                    notes.append("the client opened a connection (\(transport.rawValue), from \(link.description)) the recording does not have")
                    Task { await link.close() }
                    continue
                }
                everConnected = true
                lastProgress = when
                link.version = script.connections[index].connect?.protocolVersion ?? .v3_1_1
                links[id] = link
                indexOf[id] = index
                perform(actions)
            case .opened(let index, let link, let inbound):
                links[index] = link
                indexOf[index] = index
                startReading(link, inbound, id: index)
                lastProgress = when
                perform(script.opened(index, now: when))
            case .openFailed(let index, let reason):
                connectionNotes[index, default: []].append(reason)
                perform(script.closed(index, now: when))
            case .received(let id, let packet):
                packets += 1
                guard let index = indexOf[id] else { continue }
                // Pings keep a connection alive, not the replay: they are no progress.
                if !Matcher.isPing(packet) { lastProgress = when }
                trace(index, packet, sent: false, at: when - start)
                // A scenario recorded no CONNECT: answer in the version the client speaks.
                if case .connect(let connect) = packet, script.connections[index].connect == nil { links[id]?.version = connect.protocolVersion }
                perform(script.received(packet, on: index, now: when))
            case .closed(let id, let reason):
                links[id] = nil
                guard let index = indexOf.removeValue(forKey: id) else { continue }
                if let reason, !script.isFinished {
                    connectionNotes[index, default: []].append("the connection ended: \(reason)")
                }
                perform(script.closed(index, now: when))
            }
            if script.position != before { lastProgress = when }
            if script.isFinished && finishedAt == nil { finishedAt = when }
        }
        wake?.cancel()
        progress?(ReplayProgress(position: script.position, finished: true, acknowledgeablesSent: script.acknowledgeablesSent))
        for link in links.values { await link.close() }
        links = [:]
        return RunOutcome(timelines: script.timelines, notes: notes, connectionNotes: connectionNotes, packets: packets,
                          played: (finishedAt ?? clock.now) - start)
    }

    private var waitsOnPeer: Bool { script.waitsOnPeer }
    private var started = ContinuousClock.now

    private func trace(_ index: Int, _ packet: MQTTPacket, sent: Bool, at elapsed: Duration) {
        guard let trace = options.trace else { return }
        let peer = script.role == .client ? "server" : "client"
        let arrow = sent ? "→ \(peer)" : "← \(peer)"
        trace(String(format: "%8.3f", elapsed / .seconds(1)) + "  c\(script.connections[index].id) \(arrow)  \(Matcher.summary(packet))")
    }

    private func perform(_ actions: [ReplayScript.Action]) {
        var outgoing: [Int: [MQTTPacket]] = [:]
        var order: [Int] = []
        func flush() {
            for index in order {
                guard let link = links.first(where: { indexOf[$0.key] == index })?.value, let packets = outgoing[index] else { continue }
                self.packets += packets.count
                link.send(packets)
            }
            outgoing = [:]
            order = []
        }
        for action in actions {
            switch action {
            case .send(let index, let packet):
                trace(index, packet, sent: true, at: options.clock.now - started)
                if outgoing[index] == nil { order.append(index) }
                outgoing[index, default: []].append(packet)
            case .close(let index):
                flush()
                if let (id, link) = links.first(where: { indexOf[$0.key] == index }) {
                    links[id] = nil
                    Task { await link.close() }
                }
            case .open(let index):
                guard let open else { continue }
                let continuation = self.continuation
                Task {
                    do throws(ReplayError) {
                        let (link, inbound) = try await open(index)
                        continuation.yield(.opened(index: index, link, inbound))
                    } catch {
                        continuation.yield(.openFailed(index: index, error.description))
                    }
                }
            }
        }
        flush()
    }
}
