import ArgumentParser
import Capture
import CommandLineSupport
import Dialects
import Foundation
import MQTTWire
import Replay
import Recordings
import WorksClient

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
