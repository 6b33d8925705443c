import Capture
import Dialects
import Logging
import LiveClock
import MQTTWire
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
public import Recordings
public import WorksClient

/// The three ways to replay a recording.
public enum Replayer {
    /// `drive`: plays the recorded clients against a server at `urls` (a `ws://`/`wss://` URL
    /// for connections recorded over WebSocket, an `mqtt://` one for those over TCP) and
    /// compares what the server answers with what it answered then.
    /// `stop`: an element on it ends the run where it is (Ctrl-C, a CI timeout's SIGTERM), and
    /// the report of what was played comes back as for any other end.
    public static func drive(_ recording: Recording, connections selected: [RecordedConnection], urls: [ReplayURL],
                             cookies: WorksCookies? = nil, options: ReplayOptions, stop: AsyncStream<Void>? = nil,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async -> ReplayReport {
        var playable: [RecordedConnection] = []
        var skipped: [ConnectionReport] = []
        for connection in selected {
            if connection.transport == .scenario {
                skipped.append(ConnectionReport(connection: connection, compared: .serverToClient,
                                                skipped: "a scenario describes only the server's side: serve or check it"))
            } else if urls.contains(where: { $0.carries(connection.transport) }) {
                playable.append(connection)
            } else {
                skipped.append(ConnectionReport(connection: connection, compared: .serverToClient,
                                                skipped: connection.transport == .tcp ? "recorded over TCP: give an mqtt://HOST:PORT --url"
                                                    : "recorded over WebSocket: give a ws:// or wss:// --url"))
            }
        }
        let script = ReplayScript(connections: playable, role: .client, pace: options.pace)
        let played = playable
        let runner = ScriptRunner(script: script, options: options, open: { index throws(ReplayError) in
            let connection = played[index]
            guard let url = urls.first(where: { $0.carries(connection.transport) }) else {
                throw ReplayError(.usage, "no URL for \(connection.transport.rawValue)")
            }
            return try await PacketLink.connect(to: url, connection: connection, cookies: cookies, group: group)
        })
        let stopper = stop.map { stop in
            Task {
                for await _ in stop {
                    runner.continuation.yield(.stop("stopped by a signal before the recording was played"))
                    break
                }
            }
        }
        let outcome = await runner.run()
        stopper?.cancel()
        return report(recording, .drive, playable: playable, skipped: skipped, compared: .serverToClient, outcome: outcome,
                      options: options)
    }

    /// Builds the report: the peer's direction of every played connection compared with the recording.
    static func report(_ recording: Recording, _ mode: ReplayReport.Mode, playable: [RecordedConnection], skipped: [ConnectionReport],
                       compared: FlowDirection,
                       outcome: RunOutcome,
                       options: ReplayOptions) -> ReplayReport {
        var reports = playable.enumerated().map { index, connection in
            ConnectionReport(connection: connection, compared: compared,
                             rows: Matcher.align(expected: connection.messages, actual: outcome.timelines[index], rules: options.rules)
                                .filter { $0.direction == compared },
                             notes: outcome.connectionNotes[index] ?? [])
        } + skipped
        let order = recording.connections.map(\.id)
        reports.sort { (order.firstIndex(of: $0.connection.id) ?? 0) < (order.firstIndex(of: $1.connection.id) ?? 0) }
        return ReplayReport(recording: recording.source, mode: mode, pace: options.pace, seconds: outcome.played / .seconds(1),
                            connections: reports, notes: outcome.notes, packets: outcome.packets, redactor: options.rules.display,
                            warnings: recording.problems)
    }
}

/// `serve`: the recorded servers, listening for the client under test. Each connection the
/// client opens plays the next recorded connection of its transport.
public final class ReplayServer: Sendable {
    let recording: Recording
    let playable: [RecordedConnection]
    let skipped: [ConnectionReport]
    let options: ReplayOptions
    let runner: ScriptRunner
    let listeners: ReplayListeners

    public var webSocketPort: Int? { listeners.webSocketPort }
    public var tcpPort: Int? { listeners.tcpPort }
    public var connections: [RecordedConnection] { playable }

    /// Listens; ``run()`` plays.
    public static func start(_ recording: Recording, connections selected: [RecordedConnection],
                             webSocket: (host: String, port: Int)?, tcp: (host: String, port: Int)?, options: ReplayOptions,
                             progress: (@Sendable (ReplayProgress) -> Void)? = nil,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws(ReplayError) -> ReplayServer {
        var playable: [RecordedConnection] = []
        var skipped: [ConnectionReport] = []
        for connection in selected {
            if connection.transport == .tcp ? tcp != nil : webSocket != nil {
                playable.append(connection)
            } else {
                skipped.append(ConnectionReport(connection: connection, compared: .clientToServer,
                                                skipped: connection.transport == .tcp ? "recorded over TCP: give --listen-tcp"
                                                    : "recorded over WebSocket: give --listen"))
            }
        }
        let script = ReplayScript(connections: playable, role: .server, pace: options.pace)
        let runner = ScriptRunner(script: script, options: options, progress: progress)
        let listeners = try await ReplayListeners.start(webSocket: webSocket, tcp: tcp, group: group, access: options.access) { link, inbound, transport in
            runner.accept(link, inbound, transport)
        }
        return ReplayServer(recording: recording, playable: playable, skipped: skipped, options: options, runner: runner,
                            listeners: listeners, steps: script)
    }

    private init(recording: Recording, playable: [RecordedConnection], skipped: [ConnectionReport], options: ReplayOptions,
                 runner: ScriptRunner, listeners: ReplayListeners, steps: ReplayScript) {
        self.steps = steps
        self.recording = recording
        self.playable = playable
        self.skipped = skipped
        self.options = options
        self.runner = runner
        self.listeners = listeners
    }

    /// Plays until every recorded connection is done (or the client stalls), then stops listening.
    public func run() async -> ReplayReport {
        let outcome = await runner.run()
        await listeners.close()
        return Replayer.report(recording, .serve, playable: playable, skipped: skipped, compared: .clientToServer, outcome: outcome,
                               options: options)
    }

    /// Ends the replay early (a signal): what happened so far is reported.
    public func stop(_ reason: String) { runner.continuation.yield(.stop(reason)) }

    /// The script as it was before the run: its timeline steps never change, and reading them
    /// here, not from the runner's script that its loop changes, is no data race (check's
    /// client tasks ask while the loop runs).
    private let steps: ReplayScript

    /// The timeline step of a recorded message (check gates its client on it).
    func step(connection index: Int, message: Int) -> Int? { steps.step(connection: index, message: message) }
}

extension Replayer {
    /// `check`: the recorded servers served on loopback to the built-in ``WorksClient``, which
    /// does what the recorded clients did at the application level (connect with their CONNECT's
    /// settings, subscribe, publish, disconnect) while its protocol work (packet identifiers,
    /// acknowledgements, QoS 2, pings) is what gets compared. Connections the client cannot
    /// make (MQTT 5.0, plain TCP) are reported as skipped.
    public static func check(_ recording: Recording, connections selected: [RecordedConnection], options: ReplayOptions,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws(ReplayError) -> ReplayReport {
        var playable: [RecordedConnection] = []
        var skipped: [ConnectionReport] = []
        for connection in selected {
            if let reason = checkRefusal(connection) {
                skipped.append(ConnectionReport(connection: connection, compared: .clientToServer, skipped: reason))
            } else {
                playable.append(connection)
            }
        }
        let gate = ProgressGate()
        let server = try await ReplayServer.start(recording, connections: playable, webSocket: ("127.0.0.1", 0), tcp: nil, options: options,
                                                  progress: { gate.update($0) }, group: group)
        guard let port = server.webSocketPort else { throw ReplayError(.connection, "the loopback listener has no port") }
        let clientNotes = NIOLockedValueBox<[Int: [String]]>([:])
        // The clients keep the recorded times under the pace too, from the timeline's start.
        let clock = (time: options.clock, start: options.clock.now, base: playable.compactMap { $0.messages.first?.time }.min() ?? 0, pace: options.pace)
        async let report = server.run()
        await withTaskGroup(of: Void.self) { tasks in
            for (index, connection) in playable.enumerated() {
                tasks.addTask {
                    let notes = await runClient(connection, index: index, server: server, port: port, gate: gate, clock: clock, group: group)
                    if !notes.isEmpty { clientNotes.withLockedValue { $0[index, default: []] += notes } }
                }
            }
        }
        var final = await report
        final.mode = .check
        final.connections += skipped
        let order = recording.connections.map(\.id)
        final.connections.sort { (order.firstIndex(of: $0.connection.id) ?? 0) < (order.firstIndex(of: $1.connection.id) ?? 0) }
        for (index, notes) in clientNotes.withLockedValue({ $0 }) {
            guard let at = final.connections.firstIndex(where: { $0.connection.id == playable[index].id }) else { continue }
            final.connections[at].notes += notes
        }
        return final
    }

    /// Why the built-in client cannot play a recorded connection, if it cannot.
    static func checkRefusal(_ connection: RecordedConnection) -> String? {
        if connection.transport == .tcp { return "recorded over TCP; the built-in client speaks MQTT over WebSocket" }
        if let version = connection.connect?.protocolVersion, version != .v3_1_1 {
            return "MQTT \(version); the built-in client speaks 3.1.1"
        }
        for message in connection.messages where message.direction == .clientToServer {
            if case .unsubscribe = message.packet { return "has an UNSUBSCRIBE; the built-in client does not unsubscribe" }
            if case .connect(let connect) = message.packet, connect.will != nil { return "its CONNECT has a will; the built-in client sets none" }
        }
        return nil
    }

    /// One recorded client, played by a ``WorksClient`` at the application level; returns notes.
    static func runClient(_ connection: RecordedConnection, index: Int, server: ReplayServer, port: Int, gate: ProgressGate,
                          clock: (time: LiveClock, start: ContinuousClock.Instant, base: Double, pace: Pace),
                          group: any EventLoopGroup) async -> [String] {
        let connect = connection.connect ?? ConnectPacket(clientIdentifier: WorksDefaults.makeClientIdentifier(), username: "dummy")
        let keepAlive = Duration.seconds(Int(connect.keepAlive))
        let mqtt = MQTTSettings(clientIdentifier: connect.clientIdentifier, username: connect.username,
                                password: connect.password.map { String(decoding: $0.readableBytesView, as: UTF8.self) },
                                persistentSession: !connect.cleanStart, keepAlive: keepAlive,
                                pingInterval: keepAlive > .zero ? keepAlive * 0.6 : .seconds(3600))
        let url: WebSocketURL
        do {
            url = try WebSocketURL("ws://127.0.0.1:\(port)\(connection.path ?? "/mqtt")")
        } catch {
            return ["\(error)"]
        }
        let settings = WebSocketSettings(url: url, origin: nil, userAgent: "wmq-replay check", subprotocol: connection.subprotocol ?? "mqtt")
        let client = WorksClient(configuration: WorksClientConfiguration(webSocket: settings, mqtt: mqtt),
                                 logger: Logger(label: "wmq.replay.check", factory: { _ in SwiftLogNoOpLogHandler() }),
                                 redactor: nil, eventLoopGroup: group)
        // QoS 1 and 2 PUBLISHes received: the client acknowledges each in the same turn.
        let acknowledgeablesReceived = NIOLockedValueBox(0)
        let drain = Task {
            for await event in client.events {
                if case .packet(.publish(let publish), .received) = event, publish.qos != .atMostOnce {
                    acknowledgeablesReceived.withLockedValue { $0 += 1 }
                }
            }
        }
        defer { drain.cancel() }
        var notes: [String] = []
        var connected = false
        if connection.connect == nil {
            // A scenario: no recorded CONNECT to wait for.
            do {
                try await client.connect()
                connected = true
            } catch {
                notes.append("the built-in client could not connect: \(error)")
            }
        }
        for (position, message) in connection.messages.enumerated() where message.direction == .clientToServer {
            guard let step = server.step(connection: index, message: position) else { continue }
            switch message.packet {
            case .connect, .subscribe, .publish, .disconnect: break
            default: continue  // acknowledgements and pings are the client's own work
            }
            guard await gate.wait(until: step) else { break }
            await clock.time.sleep(until: clock.start + clock.pace.delay(offset: message.time - clock.base))
            switch message.packet {
            case .connect:
                do {
                    try await client.connect()
                    connected = true
                } catch {
                    if case .connack(let connack)? = connection.messages.first(where: { $0.packet.type == .connack })?.packet,
                       connack.reasonCode != .success { break }
                    notes.append("the built-in client could not connect: \(error)")
                }
            case .subscribe(let subscribe):
                let filters = subscribe.subscriptions.map { (topic: $0.topicFilter, qos: $0.qos) }
                Task { _ = try? await client.subscribe(filters) }
            case .publish(let publish):
                Task { try? await client.publish(topic: publish.topicName, payload: publish.payload, qos: publish.qos, retain: publish.retain) }
            case .disconnect:
                // The recording's acknowledgements before the DISCONNECT are awaited (that is what
                // opened the gate), but not those the client owes beyond them: it first gets what
                // the server sent, so that its DISCONNECT does not race its own acknowledgements
                // and the comparison does not depend on the machine's speed.
                let owed = gate.acknowledgeablesSent(connection: index)
                let deadline = ContinuousClock.now + .seconds(2)
                while acknowledgeablesReceived.withLockedValue({ $0 }) < owed, ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(1))
                }
                await client.disconnect()
                connected = false
            default:
                break
            }
        }
        _ = await gate.wait(until: Int.max)
        if connected { await client.disconnect() }
        await client.finish()
        return notes
    }
}

/// The served script's position, for the check's client to wait on.
final class ProgressGate: Sendable {
    private struct State {
        var position = 0
        var finished = false
        var acknowledgeablesSent: [Int] = []
        var waiters: [(Int, CheckedContinuation<Bool, Never>)] = []
    }

    private let state = NIOLockedValueBox(State())

    /// QoS 1 and 2 PUBLISHes the script has sent on connection `index` so far.
    func acknowledgeablesSent(connection index: Int) -> Int {
        state.withLockedValue { $0.acknowledgeablesSent.indices.contains(index) ? $0.acknowledgeablesSent[index] : 0 }
    }

    func update(_ progress: ReplayProgress) {
        let ready: [(CheckedContinuation<Bool, Never>, Bool)] = state.withLockedValue { state in
            state.position = progress.position
            state.acknowledgeablesSent = progress.acknowledgeablesSent
            state.finished = state.finished || progress.finished
            var ready: [(CheckedContinuation<Bool, Never>, Bool)] = []
            state.waiters.removeAll { wanted, waiter in
                if wanted <= progress.position { ready.append((waiter, true)); return true }
                if state.finished { ready.append((waiter, false)); return true }
                return false
            }
            return ready
        }
        for (waiter, reached) in ready { waiter.resume(returning: reached) }
    }

    /// Returns true once the position reaches `wanted`, false when the replay ended first.
    func wait(until wanted: Int) async -> Bool {
        await withCheckedContinuation { waiter in
            let immediate: Bool? = state.withLockedValue { state in
                if state.position >= wanted { return true }
                if state.finished { return false }
                state.waiters.append((wanted, waiter))
                return nil
            }
            if let immediate { waiter.resume(returning: immediate) }
        }
    }
}
