import ArgumentParser
import Capture
import CommandLineSupport
import Dialects
import Foundation
import MQTTWire
import Replay
import Recordings
import WorksClient

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
