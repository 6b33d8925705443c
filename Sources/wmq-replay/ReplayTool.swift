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
            one process, the built-in client against the served recording. Packets keep the order
            MQTT guarantees, not the recorded total order: an acknowledgement of the peer's packet
            waits for that packet only; every other packet goes in recorded order once the peer's
            packets recorded before it have come (its deliveries on other topics excepted, which a
            correct peer may send later), and at its recorded time under --speed (default original
            timing; --asap drops the pauses). Comparison is MQTT-aware: packet identifiers
            renumbered, client ids and pings left out, JSON payloads compared member by member (see
            --rules), and a packet that came in another order MQTT allows is not a difference
            (--strict-order makes it one).

            WebSocket connections of JSON chat messages (OneBot v11, CocoroCore chat, the Discord
            gateway) replay too: drive and serve for every dialect, check for OneBot (docs/replay.md).

            Exit codes: 0 every replayed connection matched; 1 a mismatch (the diff says where); 2
            usage error; 3 a recording cannot be read or holds nothing to replay; 4 every connection
            was skipped, so nothing was replayed (--allow-skipped makes it 0). A recording cut short
            or missing bytes still replays what it holds, with a warning in every report.
            """),
        subcommands: [List.self, Drive.self, Serve.self, Check.self])
}
