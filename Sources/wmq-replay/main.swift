import ArgumentParser
import Capture
import CommandLineSupport
import Dialects
import Foundation
import MQTTWire
import Replay
import Recordings
import WorksClient

@main
enum Main {
    static func main() async { await ReplayTool.runWithToolExitCodes() }
}

struct ReplayTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wmq-replay",
        abstract: "Recorded MQTT-over-WebSocket (and JSON chat) sessions, for replaying them against the mock server or the client under test.",
        discussion: reflowHelp("""
            A session is read from any recording: a pcap or pcapng capture, a HAR file with WebSocket
            messages, or a wmq-mock scenario file (JSON Lines); the format is told by the content.
            Captures are decoded by the same code as wmq-decode, so connection ids (c1, c2, …) are the
            ones wmq-decode prints.

            drive plays the recorded clients against a server (wmq-mock, mosquitto, a staging broker)
            and compares the server's answers with the recorded ones; serve plays the recorded
            servers to a client under test and compares what the client sends; check does both in
            one process, the built-in client against the served recording. Packets go in the
            recorded order: each waits until everything recorded before it has happened (the
            synchronized mode), and for its recorded time under --speed (default original timing;
            --asap drops the pauses). Comparison is MQTT-aware: packet identifiers renumbered,
            client ids and pings left out, JSON payloads compared member by member (see --rules).

            WebSocket connections of JSON chat messages (OneBot v11, CocoroCore chat, the Discord
            gateway) replay too: drive and serve for every dialect, check for OneBot (docs/replay.md).

            Exit codes: 0 every replayed connection matched; 1 a mismatch (the diff says where); 2
            usage error; 3 a recording cannot be read or holds nothing to replay.
            """),
        subcommands: [List.self, Drive.self, Serve.self, Check.self])
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The MQTT connections and JSON chat sockets of a recording, with their packet or message counts each way.",
        discussion: reflowHelp("""
            One paragraph per connection: its id, the client and server addresses, the transport
            (ws-mqtt with the upgrade's path and subprotocol, mqtt, or scenario), the client's
            CONNECT (protocol version, client id), then the packets each way by type, and how long
            the recording of it lasts. --format jsonl writes one object per connection instead
            ({"v": 1, "connection", "client", "server", "transport", "path", "subprotocol",
            "protocolLevel", "clientId", "c2s", "s2c", "duration"}). Problems met while reading (capture
            gaps, decoding errors) are listed after, on standard error.
            """))

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, jsonl }

    @Argument(help: "The recording: pcap, pcapng, HAR or a scenario file (JSON Lines).")
    var recording: String

    @Option(help: "text (default) or jsonl.")
    var format: Format = .text

    func run() throws {
        let session: Recording
        // A large capture takes a while: the same bar as wmq-decode's, on a terminal.
        let progress = Progress(path: recording)
        do {
            session = try Recording.read(path: recording) { progress.update($0) }
            progress.done()
        } catch {
            progress.done()
            throw unreadableInput("wmq-replay", "\(error)")
        }
        var out = ""
        switch format {
        case .text:
            out += "\(recording): \(session.connections.count) MQTT connection\(session.connections.count == 1 ? "" : "s")"
                + (session.chatSockets.isEmpty ? "" : ", \(session.chatSockets.count) JSON chat socket\(session.chatSockets.count == 1 ? "" : "s")") + "\n"
            for connection in session.connections { out += Self.text(connection) }
            for socket in session.chatSockets { out += Self.text(socket) }
        case .jsonl:
            for object in session.connections.map(Self.json) + session.chatSockets.map(Self.json) {
                var bytes: [UInt8] = []
                object.write(to: &bytes)
                out += String(decoding: bytes, as: UTF8.self) + "\n"
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
        for problem in session.problems { StandardError.write("wmq-replay: \(recording): \(problem)\n") }
        if session.connections.isEmpty && session.chatSockets.isEmpty {
            throw unreadableInput("wmq-replay", "\(recording) holds no MQTT connection and no JSON chat socket")
        }
    }

    static func describe(_ counts: [(type: PacketType, count: Int)]) -> String {
        let total = counts.reduce(0) { $0 + $1.count }
        guard total > 0 else { return "0 packets" }
        return "\(total) packet\(total == 1 ? "" : "s") (" + counts.map { "\($0.type.description) \($0.count)" }.joined(separator: ", ") + ")"
    }

    static func text(_ connection: RecordedConnection) -> String {
        var head = "c\(connection.id)  \(connection.client) → \(connection.server)  \(connection.transport.rawValue)"
        if let path = connection.path { head += " \(path)" }
        if let subprotocol = connection.subprotocol { head += " (\(subprotocol))" }
        if let connect = connection.connect {
            head += "  MQTT \(connect.protocolVersion) client \"\(connect.clientIdentifier)\""
        }
        return head + "\n"
            + "    client → server  \(describe(connection.counts(.clientToServer)))\n"
            + "    server → client  \(describe(connection.counts(.serverToClient)))\n"
            + "    \(String(format: "%.3f", connection.duration)) s\n"
    }

    static func text(_ socket: RecordedChatSocket) -> String {
        let sent = socket.messages.filter { $0.direction == .clientToServer }.count
        let received = socket.messages.count - sent
        let duration = (socket.messages.last?.time ?? 0) - (socket.messages.first?.time ?? 0)
        return "c\(socket.id)  \(socket.client) → \(socket.server)  ws-json \(socket.target)  \(socket.dialect ?? "JSON")\n"
            + "    client → server  \(sent) message\(sent == 1 ? "" : "s")\n"
            + "    server → client  \(received) message\(received == 1 ? "" : "s")\n"
            + "    \(String(format: "%.3f", duration)) s\n"
    }

    static func json(_ socket: RecordedChatSocket) -> JSONValue {
        let sent = socket.messages.filter { $0.direction == .clientToServer }.count
        return .members([
            "v": .integer(1), "connection": .string("c\(socket.id)"), "client": .string(socket.client), "server": .string(socket.server),
            "transport": .string("ws-json"), "path": .string(socket.target), "dialect": socket.dialect.map { .string($0) } ?? .null,
            "c2s": .members(["messages": .integer(sent)]), "s2c": .members(["messages": .integer(socket.messages.count - sent)]),
            "duration": .number(String(format: "%.6f", (socket.messages.last?.time ?? 0) - (socket.messages.first?.time ?? 0))),
        ])
    }

    static func json(_ connection: RecordedConnection) -> JSONValue {
        func counts(_ direction: FlowDirection) -> JSONValue {
            .object(connection.counts(direction).map { JSONMember(key: $0.type.description, value: .number(String($0.count))) })
        }
        var members: [JSONMember] = [
            JSONMember(key: "v", value: .number("1")),
            JSONMember(key: "connection", value: .string("c\(connection.id)")),
            JSONMember(key: "client", value: .string(connection.client)),
            JSONMember(key: "server", value: .string(connection.server)),
            JSONMember(key: "transport", value: .string(connection.transport.rawValue)),
        ]
        if let path = connection.path { members.append(JSONMember(key: "path", value: .string(path))) }
        if let subprotocol = connection.subprotocol { members.append(JSONMember(key: "subprotocol", value: .string(subprotocol))) }
        if let connect = connection.connect {
            members.append(JSONMember(key: "protocolLevel", value: .number(String(connect.protocolVersion.rawValue))))
            members.append(JSONMember(key: "clientId", value: .string(connect.clientIdentifier)))
        }
        members.append(JSONMember(key: "c2s", value: counts(.clientToServer)))
        members.append(JSONMember(key: "s2c", value: counts(.serverToClient)))
        members.append(JSONMember(key: "duration", value: .number(String(format: "%.6f", connection.duration))))
        return .object(members)
    }
}

/// What drive, serve and check share: which connections, how fast, how to compare, how to report.
struct ReplayOptionGroup: ParsableArguments {
    @Option(name: .customLong("connection"), help: "Replay only this connection (wmq-decode's id: 2 or c2); repeatable. Default: all.")
    var connections: [String] = []

    // Taken whatever they start with, so that a negative number gets its own message rather
    // than ArgumentParser's "Missing value".
    @Option(parsing: .unconditional, help: "Play the recorded pauses this many times faster (2 = twice as fast).")
    var speed: Double?

    @Flag(help: "No pauses: each packet as soon as what it waits for has happened.")
    var asap = false

    @Option(parsing: .unconditional, help: "Seconds to wait for the peer's next recorded packet before giving up.")
    var timeout: Double = 10

    @Option(help: "A rules file (JSON): {\"ignore\": [JSON paths], \"match\": {path: regex}, \"defaults\": true, \"clientId\": false}.")
    var rules: String?

    @Flag(help: "Show tokens and passwords in the reports as they are (default: keyed pseudonyms).")
    var noRedact = false

    @Option(help: "The key the recording was redacted with (wmq-decode --redaction-key): recorded pseudonyms are then compared with the replayed secrets' pseudonyms.")
    var redactionKey: String?

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Option(help: "text (a side-by-side diff, default) or json (one object per recording, per line).")
    var format: Format = .text

    @Option(help: "Also write a JUnit XML report to this file (a test case per connection).")
    var junit: String?

    @Flag(name: [.short, .long], help: "Print every packet sent and received, with its time, on standard error.")
    var verbose = false

    @Option(name: .customLong("color"), help: "Colours in the text report: auto (on a terminal, unless NO_COLOR is set), always or never.")
    var color: ColourChoice = .auto

    func validate() throws {
        if asap && speed != nil { throw ValidationError("give --asap or --speed, not both") }
        if let speed, !(speed > 0 && speed.isFinite) { throw ValidationError("--speed must be a positive number (2 plays twice as fast), not \(speed)") }
        if !(timeout > 0 && timeout.isFinite) { throw ValidationError("--timeout must be a positive number of seconds, not \(timeout)") }
        _ = try connectionIDs()
        try checkJUnitPath()
    }

    func connectionIDs() throws -> [Int] {
        try connections.map { text in
            let digits = text.lowercased().hasPrefix("c") ? text.dropFirst() : Substring(text)
            guard let id = Int(digits), id > 0 else { throw ValidationError("--connection \(text): give a connection id such as 2 or c2") }
            return id
        }
    }

    /// The JUnit file's folder must exist and be writable before the run, not after it.
    func checkJUnitPath() throws {
        guard let junit else { return }
        let folder = URL(fileURLWithPath: junit).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else {
            throw ValidationError("--junit \(junit): the folder \(folder) does not exist")
        }
        guard isDirectory.boolValue else { throw ValidationError("--junit \(junit): \(folder) is not a folder") }
        guard FileManager.default.isWritableFile(atPath: folder) else {
            throw ValidationError("--junit \(junit): the folder \(folder) is not writable")
        }
        if FileManager.default.fileExists(atPath: junit, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ValidationError("--junit \(junit) is a folder; give a file path")
        }
    }

    func options(defaultPace: Pace) throws -> ReplayOptions {
        let redactor = redactionKey.map { Redactor(key: Array($0.utf8)) }
        var rules = MatchRules(redactor: redactor)
        // Secrets in the reports: pseudonyms, with the recording's key when given (so they read like the recording's).
        if let path = self.rules {
            let text: String
            do {
                text = try readTextFile(path)
            } catch {
                throw unreadableInput("wmq-replay", "the rules file \(error.reason)")
            }
            do {
                rules = try MatchRules(json: text, redactor: redactor)
            } catch {
                throw unreadableInput("wmq-replay", "\(path): \(error)")
            }
        }
        rules.display = noRedact ? nil : redactor ?? .random()
        let pace: Pace = asap ? .asap : speed.map { .speed($0) } ?? defaultPace
        let write: @Sendable (String) -> Void = { line in StandardError.write(line + "\n") }
        let trace = verbose ? write : nil
        return ReplayOptions(pace: pace, timeout: .milliseconds(Int64(timeout * 1000)), rules: rules, trace: trace)
    }

    /// The recording, and its MQTT connections and JSON chat sockets to replay (all, or those of --connection).
    func load(_ path: String) throws -> (Recording, [RecordedConnection], [RecordedChatSocket]) {
        let recording: Recording
        // A large capture takes a while: the same bar as wmq-decode's, on a terminal.
        let progress = Progress(path: path)
        do {
            recording = try Recording.read(path: path) { progress.update($0) }
            progress.done()
        } catch {
            progress.done()
            throw unreadableInput("wmq-replay", "\(error)")
        }
        for problem in recording.problems { StandardError.write("wmq-replay: \(path): \(problem)\n") }
        let sockets = recording.chatSockets
        guard !recording.connections.isEmpty || !sockets.isEmpty else {
            throw unreadableInput("wmq-replay", "\(path) holds no MQTT connection")
        }
        let wanted = try connectionIDs()
        if wanted.isEmpty { return (recording, recording.connections, sockets) }
        var chosen: [RecordedConnection] = []
        var chosenSockets: [RecordedChatSocket] = []
        for id in wanted {
            if let connection = recording.connection(id) {
                chosen.append(connection)
            } else if let socket = sockets.first(where: { $0.id == id }) {
                chosenSockets.append(socket)
            } else {
                let known = (recording.connections.map(\.id) + sockets.map(\.id)).sorted().map { "c\($0)" }.joined(separator: ", ")
                throw ValidationError("\(path) has no connection c\(id) to replay (it has \(known))")
            }
        }
        return (recording, chosen, chosenSockets)
    }

    /// The chat sockets replayed of one recording, for `finish`.
    struct ChatGroup {
        var recording: String
        var reports: [ChatSocketReplay.Report]
        var notes: [String] = []
    }

    /// Prints the reports, writes the JUnit file, and ends with 0 (all matched) or 1.
    func finish(_ reports: [ReplayReport], chat: [ChatGroup] = [], options: ReplayOptions? = nil, mode: ReplayReport.Mode = .drive) throws {
        var out = ""
        for report in reports {
            switch format {
            case .text: out += report.text()
            case .json: out += report.json.description + "\n"
            }
        }
        let pace = options?.pace ?? .asap
        let display = options?.rules.display
        for group in chat where !group.reports.isEmpty || !group.notes.isEmpty {
            switch format {
            case .text:
                out += ChatSocketReplay.text(group.reports, recording: group.recording, pace: pace, display: display, mode: mode)
                out += group.notes.map { "  ! \($0)\n" }.joined()
            case .json:
                out += ChatSocketReplay.json(group.reports, recording: group.recording, pace: pace, display: display, mode: mode).description + "\n"
            }
        }
        let chatMatched = chat.allSatisfy { $0.notes.isEmpty && $0.reports.allSatisfy(\.matched) }
        if format == .text && color.isOn { out = ReportColours.colour(out) }
        FileHandle.standardOutput.write(Data(out.utf8))
        if let junit {
            do {
                let more = chat.filter { !$0.reports.isEmpty }.map { ChatSocketReplay.junit($0.reports, recording: $0.recording, mode: mode) }
                try Data(ReplayReport.junit(reports, more: more).utf8).write(to: URL(fileURLWithPath: junit))
            } catch {
                throw unreadableInput("wmq-replay", "cannot write \(junit): \((error as NSError).localizedFailureReason ?? error.localizedDescription)")
            }
        }
        if !reports.allSatisfy(\.matched) || !chatMatched { throw ExitCode(ToolExit.foundErrors) }
    }
}

struct Drive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Play the recorded clients against a server and compare its answers with the recorded ones.",
        discussion: reflowHelp("""
            Every recorded connection is opened against --url (ws:// or wss:// for connections
            recorded over WebSocket; the URL's path, when it has none, is the recorded one), or an
            mqtt://HOST:PORT --url for connections recorded over TCP; give both for recordings with
            both. The recorded client packets are sent with their recorded client ids, in the
            recorded order across all connections, each once the server's answers recorded before it
            have come; acknowledgements name the server's live packet identifiers. What the server
            sends is compared with what it sent then. Cookies for a Works endpoint come from
            --cookies (a cookie.json, as wmq-client reads).

            JSON chat sockets (OneBot v11, CocoroCore chat, the Discord gateway; serve and check take them
            too) go to the
            first ws:// or wss:// --url, with the recorded path and query when the URL has none and
            the recorded request headers (Authorization included). The recorded client messages are
            sent in order, each once the server's answers recorded before it have come — OneBot API
            responses, every CocoroCore message, Discord's HELLO, READY, RESUMED and HEARTBEAT_ACK —
            and what the server sends is compared member by member, the members each dialect fills
            anew ignored (OneBot time and message_id, CocoroCore total_time, Discord ids, timestamps
            and session). Messages the server sent on its own (OneBot events, Discord dispatches)
            cannot be caused by driving: when they do not come the report says so and still matches;
            when they come they are compared. zlib-stream sockets are inflated.
            """))

    @Argument(help: "The recording: pcap, pcapng, HAR or a scenario file.")
    var recording: String

    @Option(name: .customLong("url"), help: "The server: ws://HOST:PORT/PATH, wss://…, or mqtt://HOST:PORT; repeatable (one per transport).")
    var urls: [String] = []

    @Option(help: "A cookie.json whose cookies the WebSocket upgrade sends.")
    var cookies: String?

    @OptionGroup var replay: ReplayOptionGroup

    func validate() throws {
        if urls.isEmpty { throw ValidationError("give the server with --url") }
        for url in urls {
            do { _ = try ReplayURL(url) } catch { throw ValidationError(error.description) }
        }
    }

    func run() async throws {
        let options = try replay.options(defaultPace: .original)
        let (session, connections, sockets) = try replay.load(recording)
        var jar: WorksCookies?
        if let cookies {
            do { jar = try WorksCookies.load(path: cookies) } catch { throw unreadableInput("wmq-replay", "\(error)") }
        }
        var targets: [ReplayURL] = []
        for text in urls {
            do { targets.append(try ReplayURL(text)) } catch { throw ValidationError(error.description) }
        }
        // Ctrl-C or a CI timeout's SIGTERM: the report of what was played, as serve does.
        let signals = TerminationSignals()
        defer { signals.cancel() }
        var reports: [ReplayReport] = []
        if !connections.isEmpty {
            reports.append(await Replayer.drive(session, connections: connections, urls: targets, cookies: jar, options: options,
                                                stop: signals.stream))
        }
        var chat: [ChatSocketReplay.Report] = []
        if !sockets.isEmpty {
            guard let url = targets.first(where: { $0.scheme != .tcp }) else {
                throw ValidationError("\(recording) has JSON chat sockets: give a ws:// or wss:// --url for them")
            }
            for socket in sockets { chat.append(await ChatSocketReplay.drive(socket, url: url, options: options)) }
        }
        try replay.finish(reports, chat: [.init(recording: recording, reports: chat)], options: options)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Play the recorded servers to a client under test and compare what it sends with the recorded client.",
        discussion: reflowHelp("""
            Listens for WebSocket connections (any path, subprotocol mqtt or mqttv3.1) on --listen,
            and for MQTT over TCP on --listen-tcp when the recording has such connections. Each
            connection the client opens plays the next recorded connection of its transport: the
            recorded server packets are sent in order, each once the client's packets recorded
            before it have come (synchronized) and at its recorded time under --speed/--asap;
            acknowledgements name the client's live packet identifiers, pings are answered. What the
            client sends is compared with the recorded client. Ends when every recorded connection
            is played (or the client stalls for --timeout once connected), or on Ctrl-C, with the
            report.

            A recording of JSON chat sockets alone (OneBot v11, CocoroCore, the Discord gateway) is
            served on --listen, any path: each connection plays the next recorded socket's server
            messages, each once the client's messages that cause server messages recorded before it
            have come (OneBot API calls, CocoroCore chat requests, Discord IDENTIFY, RESUME and
            HEARTBEAT) and at its recorded time; OneBot responses carry the live call's echo; a
            zlib-stream socket is compressed again. The client's messages are compared with the
            recorded client's, keep-alives (OneBot heartbeats, Discord HEARTBEAT) left out.
            """))

    @Argument(help: "The recording: pcap, pcapng, HAR or a scenario file.")
    var recording: String

    @Option(help: "Where to listen for WebSocket clients (HOST:PORT; port 0 picks a free one).")
    var listen: String = "127.0.0.1:9001"

    @Option(name: .customLong("listen-tcp"), help: "Where to listen for MQTT-over-TCP clients, for connections recorded over TCP.")
    var listenTCP: String?

    @OptionGroup var replay: ReplayOptionGroup

    static func address(_ text: String, option: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("\(option) \(text): give HOST:PORT")
        }
        return (String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
    }

    func validate() throws {
        _ = try Self.address(listen, option: "--listen")
        if let listenTCP { _ = try Self.address(listenTCP, option: "--listen-tcp") }
    }

    func run() async throws {
        let options = try replay.options(defaultPace: .original)
        let (session, connections, sockets) = try replay.load(recording)
        if connections.isEmpty {
            try await serveChatSockets(sockets, options: options)
            return
        }
        let server: ReplayServer
        do {
            server = try await ReplayServer.start(session, connections: connections, webSocket: try Self.address(listen, option: "--listen"),
                                                  tcp: try listenTCP.map { try Self.address($0, option: "--listen-tcp") }, options: options)
        } catch let error as ReplayError {
            throw unreadableInput("wmq-replay", error.description)
        }
        var listening: [String] = []
        if let port = server.webSocketPort { listening.append("ws://\(try Self.address(listen, option: "--listen").host):\(port)") }
        if let port = server.tcpPort, let tcp = listenTCP { listening.append("mqtt://\(try Self.address(tcp, option: "--listen-tcp").host):\(port)") }
        StandardError.write("wmq-replay: serving \(server.connections.map { "c\($0.id)" }.joined(separator: ", ")) of \(recording) on \(listening.joined(separator: " and ")) (\(options.pace))\n")
        let signals = TerminationSignals()
        let stopper = Task {
            for await _ in signals.stream {
                server.stop("stopped by a signal before the recording was played")
                break
            }
        }
        let report = await server.run()
        stopper.cancel()
        signals.cancel()
        try replay.finish([report])
    }
}

extension Serve {
    /// A recording of JSON chat sockets alone: each connection the client opens plays the next one.
    func serveChatSockets(_ sockets: [RecordedChatSocket], options: ReplayOptions) async throws {
        let address = try Self.address(listen, option: "--listen")
        let server: ChatSocketServer
        do {
            server = try await ChatSocketServer(sockets: sockets, host: address.host, port: address.port, options: options)
        } catch {
            throw unreadableInput("wmq-replay", error.description)
        }
        let host = address.host.contains(":") ? "[\(address.host)]" : address.host
        StandardError.write("wmq-replay: serving \(sockets.map { "c\($0.id) (\($0.dialect ?? "JSON"))" }.joined(separator: ", ")) of \(recording) "
                            + "on ws://\(host):\(server.port ?? address.port) (\(options.pace))\n")
        let signals = TerminationSignals()
        let stopper = Task {
            for await _ in signals.stream {
                server.stop("stopped by a signal before the recording was played")
                break
            }
        }
        let (reports, notes) = await server.run()
        stopper.cancel()
        signals.cancel()
        try replay.finish([], chat: [.init(recording: recording, reports: reports, notes: notes)], options: options, mode: .serve)
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The built-in client against the served recording, in one process: the client's regression test.",
        discussion: reflowHelp("""
            Each recording's servers are served on loopback (as serve does) to the built-in client
            (WorksClient), which does what each recorded client did at the application level —
            connects with the recorded CONNECT's client id, credentials, clean-session flag and
            keep-alive, subscribes, publishes, disconnects — while its own protocol work
            (packet identifiers, acknowledgements, QoS 2 handshakes) is compared with the recorded
            client's. Connections the built-in client cannot make (MQTT 5.0, plain TCP, wills,
            UNSUBSCRIBE) are reported as skipped. Default pace: --asap.

            JSON chat sockets: OneBot v11 ones are served to the built-in OneBot client (the recorded
            bot id, token, client role and heartbeat interval), which makes the lifecycle event, the
            heartbeats and the answers to the server's API calls itself and is handed the recorded
            client's other messages to send; what it sends is compared with the recorded client's,
            heartbeats left out. Sockets of dialects without a built-in client are skipped.
            """))

    @Argument(help: "Recordings: pcap, pcapng, HAR or scenario files.")
    var recordings: [String]

    @Flag(help: "Keep the recorded pauses (default: as fast as possible).")
    var originalTiming = false

    @OptionGroup var replay: ReplayOptionGroup

    func run() async throws {
        let options = try replay.options(defaultPace: originalTiming ? .original : .asap)
        var reports: [ReplayReport] = []
        var chat: [ReplayOptionGroup.ChatGroup] = []
        for path in recordings {
            let (session, connections, sockets) = try replay.load(path)
            if !connections.isEmpty {
                do {
                    reports.append(try await Replayer.check(session, connections: connections, options: options))
                } catch {
                    throw unreadableInput("wmq-replay", "\(path): \(error)")
                }
            }
            if !sockets.isEmpty {
                var group = ReplayOptionGroup.ChatGroup(recording: path, reports: [])
                for socket in sockets { group.reports.append(await ChatSocketReplay.check(socket, options: options)) }
                chat.append(group)
            }
        }
        try replay.finish(reports, chat: chat, options: options, mode: .check)
    }
}

/// The text report in colour: MATCH green, MISMATCH red, a missing packet red, an added one
/// green, a differing one and the reasons yellow, notes dim.
enum ReportColours {
    static func colour(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.contains(": MISMATCH") { return line.replacingOccurrences(of: "MISMATCH", with: "\u{1B}[1;31mMISMATCH\u{1B}[0m") }
            if line.contains(": MATCH") { return line.replacingOccurrences(of: "MATCH", with: "\u{1B}[1;32mMATCH\u{1B}[0m") }
            let trimmed = line.drop { $0 == " " }
            let wrap: String? = if line.hasPrefix("  - ") { "31" }
                else if line.hasPrefix("  + ") { "32" }
                else if line.hasPrefix("  ! ") || trimmed.hasPrefix("→ ") { "33" }
                else if trimmed.hasPrefix("! ") { "2" }
                else { nil }
            return wrap.map { "\u{1B}[\($0)m" + line + "\u{1B}[0m" } ?? String(line)
        }.joined(separator: "\n")
    }
}
