import ArgumentParser
import Capture
import CommandLineSupport
import Dialects
import Foundation
import MQTTWire
import Replay
import Recordings
import WorksClient

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

            Browser pages of another origin than the listener's own get 403 (a web site open in the
            same browser cannot use the served session); a frontend under test is let in with
            --allow-origin http://localhost:5173 (or its port alone).
            """))

    @Argument(help: "The recording: pcap, pcapng, HAR or a scenario file.")
    var recording: String

    @Option(help: "Where to listen for WebSocket clients (HOST:PORT; port 0 picks a free one).")
    var listen: String = "127.0.0.1:9001"

    @Option(name: .customLong("listen-tcp"), help: "Where to listen for MQTT-over-TCP clients, for connections recorded over TCP.")
    var listenTCP: String?

    @OptionGroup var replay: ReplayOptionGroup

    @OptionGroup(title: "Browser pages") var browser: BrowserAccessOptions

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
        var options = try replay.options(defaultPace: .original)
        options.access = try browser.access().reporting { text in FileHandle.standardError.write(Data("wmq-replay: \(text)\n".utf8)) }
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
