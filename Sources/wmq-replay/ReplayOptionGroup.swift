import ArgumentParser
import Capture
import CommandLineSupport
import Dialects
import Foundation
import MQTTWire
import Replay
import Recordings
import WorksClient

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

    @Flag(help: "Packets must come in the recorded order. By default a packet may come in another order where MQTT does not order it (an acknowledgement and a delivery, messages on different topics); the report notes it.")
    var strictOrder = false

    @Flag(help: "Exit 0 when every connection was skipped (by default a run that replays nothing exits 4).")
    var allowSkipped = false

    @Flag(help: "Show tokens and passwords in the reports as they are (default: keyed pseudonyms).")
    var noRedact = false

    @Option(name: .customLong("redact"), help: ArgumentHelp("Also treat this JSON member, query parameter or header as a secret (repeatable; any case). Names like token, secret, password, api_key, auth, cookie, sig are secrets already.", valueName: "name"))
    var redact: [String] = []

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
        let redactor = redactionKey.map { Redactor(key: Array($0.utf8), names: SecretNames(adding: redact)) }
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
        rules.display = noRedact ? nil : redactor ?? .random(names: SecretNames(adding: redact))
        rules.strictOrder = strictOrder
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
                // A report holds what the session said: 0600, as every file of session data.
                try writeSessionFile(Array(ReplayReport.junit(reports, more: more).utf8), to: junit)
            } catch {
                throw unreadableInput("wmq-replay", error.description)
            }
        }
        if !reports.allSatisfy(\.matched) || !chatMatched { throw ExitCode(ToolExit.foundErrors) }
        // A run that replayed nothing proves nothing: not a pass unless asked for.
        let replayedAny = reports.contains { $0.replayed > 0 } || chat.contains { !$0.reports.isEmpty }
        if !replayedAny && !allowSkipped {
            StandardError.write("wmq-replay: no connection was replayed: every one was skipped (the report says why); --allow-skipped exits 0 for this\n")
            throw ExitCode(ToolExit.nothingDone)
        }
    }
}
