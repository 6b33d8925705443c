public import Dialects
import LiveWebSocket
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOWebSocket
public import Recordings
import WebSocketWire
import WorksClient

/// `wmq-replay drive` for the JSON chat sockets of a recording (OneBot v11, CocoroCore chat,
/// the Discord gateway): the recorded client's messages are sent again to a server, each once
/// the server's *answers* recorded before it have come (and not before its recorded time under
/// the pace), and what the server sends is compared with what it sent then, member by member.
///
/// An answer is what the client's messages cause: OneBot API responses, every CocoroCore
/// message, Discord's HELLO, READY, RESUMED and HEARTBEAT_ACK. What a server sends on its own
/// (OneBot events, Discord's other dispatches) cannot be caused by driving it: when it does not
/// come, the row says so and the replay still matches; when it comes, it is compared.
public enum ChatSocketReplay {
    /// The members each dialect's servers fill anew every run, ignored besides the rules' own.
    public static func ignoredPaths(dialect: String?) -> [String] {
        switch dialect {
        case "onebot": ["$.time", "$.message_id", "$.data.message_id"]
        case "cocoro": ["$.data.total_time", "$.data.speed_improvement"]
        case "discord": ["$.d.id", "$.d.timestamp", "$.d.session_id", "$.d.resume_gateway_url", "$.d.message_reference.message_id"]
        default: []
        }
    }

    /// Whether a server message answers the client (see the type's description).
    public static func isAnswer(_ json: JSONValue?, dialect: String?) -> Bool {
        guard let json else { return true }
        switch dialect {
        case "onebot":
            return json["retcode"] != nil || json["echo"] != nil
        case "discord":
            switch json["op"]?.intValue {
            case 10, 11: return true
            case 0: return ["READY", "RESUMED"].contains(json["t"]?.stringValue ?? "")
            default: return false
            }
        default:
            return true
        }
    }

    /// What identifies a message's kind for the alignment: the dialect's annotation kind with the
    /// members that name one message among its kind (a OneBot echo, a Discord event name).
    static func signature(_ json: JSONValue?, dialect: String?) -> String {
        guard let json else { return "not JSON" }
        switch dialect {
        case "onebot":
            // A response by the call it answers (its echo); a call by its action (its echo is the client's choice).
            return [json["post_type"], json["meta_event_type"], json["message_type"], json["retcode"] != nil ? json["echo"] : nil, json["action"]]
                .map { $0?.description ?? "-" }.joined(separator: "|")
        case "discord": return "\(json["op"]?.description ?? "-")|\(json["t"]?.description ?? "-")"
        case "cocoro": return json["type"]?.description ?? json["action"]?.description ?? "-"
        default: return json.members?.map(\.key).joined(separator: ",") ?? json.description
        }
    }

    /// One row of the comparison of the server's messages.
    public struct Row: Sendable {
        public var recorded: RecordedChatMessage?
        public var replayed: String?
        /// Why they differ; nil when they match (or a message the server sends on its own did not come).
        public var reason: String?
        /// A recorded message the server sends on its own, which this replay did not get.
        public var unsolicited: Bool
    }

    public struct Report: Sendable {
        public var socket: RecordedChatSocket
        public var rows: [Row]
        public var notes: [String]
        public var sent: Int
        public var received: Int
        public var seconds: Double
        /// Why this socket was not replayed (check: no built-in client of its dialect).
        public var skipped: String?

        public init(socket: RecordedChatSocket, rows: [Row], notes: [String], sent: Int, received: Int, seconds: Double) {
            self.socket = socket
            self.rows = rows
            self.notes = notes
            self.sent = sent
            self.received = received
            self.seconds = seconds
        }

        public var differences: [Row] { rows.filter { $0.reason != nil } }
        public var matched: Bool { notes.isEmpty && differences.isEmpty }
    }

    /// Drives one recorded socket against `url` (its path, when the URL has none, the recorded one).
    public static func drive(_ socket: RecordedChatSocket, url: ReplayURL, options: ReplayOptions) async -> Report {
        let group = MultiThreadedEventLoopGroup.singleton
        let started = ContinuousClock.now
        var report = Report(socket: socket, rows: [], notes: [], sent: 0, received: 0, seconds: 0)
        let target = url.target == "/" ? socket.target : url.target
        let scheme = url.scheme == .secureWebSocket ? "wss" : "ws"
        let skipped: Set<String> = ["host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
                                    "sec-websocket-extensions", "sec-websocket-protocol", "content-length"]
        var headers = socket.headers.filter { !skipped.contains($0.name.lowercased()) }
        // A recorded Origin that named the recorded server itself (programs such as paho-mqtt and
        // websocket-client send one) names the server driven now: a server that checks origins
        // would otherwise take it for a page of another origin. A real page's origin stays.
        let recordedHost = socket.headers.first { $0.name.lowercased() == "host" }?.value
        let liveHost = url.host.contains(":") ? "[\(url.host)]:\(url.port)" : "\(url.host):\(url.port)"
        headers = headers.map { header in
            guard header.name.lowercased() == "origin" else { return header }
            return (name: header.name, value: BrowserAccess.retarget(origin: header.value, requestHost: recordedHost, to: liveHost))
        }
        let transport: WebSocketTransport
        do {
            let webSocketURL = try WebSocketURL("\(scheme)://\(url.host.contains(":") ? "[\(url.host)]" : url.host):\(url.port)\(target)")
            var settings = WebSocketSettings(url: webSocketURL, origin: nil, userAgent: nil, subprotocol: nil, extraHeaders: headers)
            settings.tls.insecure = url.scheme == .secureWebSocket
            transport = try await WebSocketTransport.connect(settings, group: group, tap: nil)
        } catch {
            report.notes.append("cannot connect: \(error.reason)")
            return report
        }
        // Memory stays bounded whatever the server sends: a few times the recording, the rest counted.
        let limit = 4 * socket.messages.count + 1_000
        let dialect = socket.dialect
        let inbox = PeerMessages(peer: "server", limit: limit, trace: options.trace, counts: { isAnswer($0, dialect: dialect) })
        let zlibStream = socket.zlibStream
        let reader = Task {
            var messages = WebSocketFrameMessages()
            var zlib = zlibStream ? try? ZlibStreamReader() : nil
            var opcode = WebSocketOpcode.text
            try? await transport.frames.executeThenClose { inbound, _ in
                for try await frame in inbound {
                    if frame.opcode == .connectionClose { break }
                    if frame.opcode != .continuation { opcode = frame.opcode }
                    guard let message = messages.add(frame) else { continue }
                    // zlib-stream: binary pieces, shown once whole as the text they inflate to.
                    if zlib != nil, opcode == .binary {
                        guard let text = try? zlib?.read(message) else { continue }
                        inbox.add(String(buffer: text))
                    } else {
                        inbox.add(String(buffer: message))
                    }
                }
            }
            inbox.finish()
        }
        let first = socket.messages.first?.time ?? 0
        var answersBefore = 0
        for message in socket.messages {
            if message.direction == .serverToClient {
                if isAnswer(try? JSONReader.parse(message.text), dialect: socket.dialect) { answersBefore += 1 }
                continue
            }
            if let waited = await inbox.waitForCounted(answersBefore, timeout: options.timeout) {
                report.notes.append("stopped after waiting \(waited) for the server's answers before \(summary(of: message))")
                break
            }
            try? await Task.sleep(until: started + options.pace.delay(offset: message.time - first))
            let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: message.text))
            options.trace?("→ \(message.text)")
            do {
                try await transport.channel.writeAndFlush(frame).get()
                report.sent += 1
            } catch {
                report.notes.append("the server closed the connection before \(summary(of: message))")
                break
            }
        }
        if report.notes.isEmpty, let waited = await inbox.waitForCounted(answersBefore, timeout: options.timeout) {
            report.notes.append("stopped after waiting \(waited) for the server's last answers")
        }
        try? await Task.sleep(for: options.settle)
        await transport.close()
        reader.cancel()
        let received = inbox.messages
        report.received = received.count + inbox.dropped
        if inbox.dropped > 0 { report.notes.append("the server sent \(inbox.dropped) messages beyond the first \(limit); they were counted, not compared") }
        report.rows = compare(recorded: socket.messages.filter { $0.direction == .serverToClient }, replayed: received,
                              dialect: socket.dialect, rules: options.rules)
        report.seconds = (ContinuousClock.now - started) / .seconds(1)
        return report
    }

    /// The server's recorded messages against the replayed ones, aligned like a diff.
    /// `answersOnly`: the compared side is the server's, some of whose messages come on their own.
    static func compare(recorded: [RecordedChatMessage], replayed: [String], dialect: String?, rules: MatchRules,
                        answersOnly: Bool = true) -> [Row] {
        var rules = rules
        rules.ignoredPaths += ignoredPaths(dialect: dialect)
        let expected = recorded.map { try? JSONReader.parse($0.text) }
        let actual = replayed.map { try? JSONReader.parse($0) }
        let left = expected.map { signature($0, dialect: dialect) }
        let right = actual.map { signature($0, dialect: dialect) }
        let alignment = Matcher.diff(Array(left.indices), Array(right.indices)) { left[$0] == right[$1] }
        return alignment.map { pair -> Row in
            switch pair {
            case (let e?, let a?):
                let reason: String?
                if let e2 = expected[e], let a2 = actual[a] {
                    reason = Matcher.jsonDifference(e2, a2, path: "$", rules: rules)
                } else {
                    reason = recorded[e].text == replayed[a] ? nil : "the message differs (not JSON)"
                }
                return Row(recorded: recorded[e], replayed: replayed[a], reason: reason, unsolicited: false)
            case (let e?, nil):
                let onItsOwn = answersOnly && !isAnswer(expected[e], dialect: dialect)
                return Row(recorded: recorded[e], replayed: nil, reason: onItsOwn ? nil : "missing", unsolicited: onItsOwn)
            case (nil, let a?):
                return Row(recorded: nil, replayed: replayed[a], reason: "not in the recording", unsolicited: false)
            default:
                return Row(recorded: nil, replayed: nil, reason: nil, unsolicited: false)
            }
        }
    }

    static func summary(of message: RecordedChatMessage) -> String {
        message.annotation?.summary ?? String(message.text.prefix(80))
    }

    /// The text report: what matched, each difference with the recorded and the replayed message.
    public static func text(_ reports: [Report], recording: String, pace: Pace, display: Redactor?, mode: ReplayReport.Mode = .drive) -> String {
        let compared = mode == .drive ? "server → client" : "client → server"
        let matched = reports.allSatisfy(\.matched)
        let seconds = reports.map(\.seconds).reduce(0, +)
        let messages = reports.map { $0.sent + $0.received }.reduce(0, +)
        let skipped = reports.filter { $0.skipped != nil }.count
        var out = "\(recording) — \(mode.rawValue) \(reports.count == 1 ? "a chat socket" : "\(reports.count) chat sockets")"
            + (skipped > 0 ? " (\(skipped) skipped)" : "") + ", \(pace.description): "
            + "\(matched ? "MATCH" : "MISMATCH") in \(String(format: "%.2f", seconds)) s, \(messages) messages\n"
        for report in reports {
            // Replayed answers are annotated knowing the recorded client's calls (a OneBot response names its call).
            var annotator = JSONChatAnnotator(redactor: display)
            for message in report.socket.messages where message.direction == .clientToServer {
                if let json = try? JSONReader.parse(message.text) { _ = annotator.annotate(json) }
            }
            func shown(_ text: String) -> String {
                guard let json = try? JSONReader.parse(text) else { return String(text.prefix(100)) }
                if let summary = annotator.annotate(json)?.summary { return summary }
                return String((display.map { $0.redact(json: json) } ?? json).description.prefix(100))
            }
            // The recording's messages annotated in their order (secrets as the report shows them).
            var recordedAnnotator = JSONChatAnnotator(redactor: display)
            var recordedSummaries: [String: String] = [:]
            for message in report.socket.messages {
                guard let json = try? JSONReader.parse(message.text), let summary = recordedAnnotator.annotate(json)?.summary else { continue }
                recordedSummaries["\(message.time) \(message.text)"] = summary
            }
            func shown(_ message: RecordedChatMessage) -> String {
                recordedSummaries["\(message.time) \(message.text)"] ?? shown(message.text)
            }
            let name = "c\(report.socket.id) \(report.socket.dialect ?? "JSON") \(report.socket.target)"
            if let skipped = report.skipped {
                out += "  \(name): skipped, \(skipped)\n"
                continue
            }
            for note in report.notes { out += "  ! \(note)\n" }
            let onItsOwn = report.rows.filter(\.unsolicited).count
            let same = report.rows.count - onItsOwn
            if report.differences.isEmpty {
                out += "  \(name) \(compared): \(same) messages as recorded"
                    + (onItsOwn > 0 ? "; \(onItsOwn) the server sent on its own in the recording did not come (driving cannot cause them)" : "") + "\n"
                continue
            }
            out += "  \(name) \(compared): \(report.differences.count) differences in \(report.rows.count) messages\n"
            for (index, row) in report.rows.enumerated() where row.reason != nil {
                let position = String(index + 1).leftPadded(4)
                switch (row.recorded, row.replayed) {
                case (let recorded?, let replayed?):
                    out += "  ! \(position) recorded: \(shown(recorded))\n         replayed: \(shown(replayed))\n"
                case (let recorded?, nil):
                    out += "  - \(position) \(shown(recorded))\n"
                case (nil, let replayed?):
                    out += "  + \(position) \(shown(replayed))\n"
                default:
                    break
                }
                out += "         → \(row.reason ?? "")\n"
            }
        }
        return out
    }

    /// A JUnit suite: a test case per chat socket.
    public static func junit(_ reports: [Report], recording: String, mode: ReplayReport.Mode = .drive) -> ReplayReport.JUnitSuite {
        let escape = ReplayReport.xmlEscape
        let className = "wmq-replay.\(mode.rawValue).\((recording as NSString).lastPathComponent)"
        let compared = mode == .drive ? "server → client" : "client → server"
        var cases = ""
        var failures = 0
        for report in reports {
            cases += "    <testcase classname=\"\(escape(className))\" name=\"\(escape("c\(report.socket.id) \(report.socket.dialect ?? "JSON") \(compared)"))\" "
                + "time=\"\(String(format: "%.3f", report.seconds))\">\n"
            if !report.matched {
                failures += 1
                let first = report.notes.first ?? report.differences.first?.reason ?? "differs"
                cases += "      <failure message=\"\(escape(first))\" type=\"mismatch\">\(escape(text([report], recording: recording, pace: .asap, display: nil, mode: mode)))</failure>\n"
            }
            cases += "    </testcase>\n"
        }
        let seconds = String(format: "%.3f", reports.map(\.seconds).reduce(0, +))
        let xml = "  <testsuite name=\"\(escape("\(recording) (\(mode.rawValue), chat sockets)"))\" tests=\"\(reports.count)\" failures=\"\(failures)\" "
            + "errors=\"0\" skipped=\"0\" time=\"\(seconds)\">\n" + cases + "  </testsuite>\n"
        return ReplayReport.JUnitSuite(xml: xml, tests: reports.count, failures: failures, skipped: 0)
    }

    /// One JSON object per recording, as `--format json` writes it.
    public static func json(_ reports: [Report], recording: String, pace: Pace, display: Redactor?, mode: ReplayReport.Mode = .drive) -> JSONValue {
        // Secret members as the report's pseudonyms.
        func shown(_ text: String) -> JSONValue {
            guard let display, let json = try? JSONReader.parse(text) else { return .string(text) }
            return .string(display.redact(json: json).description)
        }
        return .members([
            "recording": .string(recording), "mode": .string(mode.rawValue), "pace": .string(pace.description),
            "matched": .bool(reports.allSatisfy(\.matched)),
            "chatSockets": .array(reports.map { report in
                .members([
                    "connection": .string("c\(report.socket.id)"), "dialect": report.socket.dialect.map { .string($0) } ?? .null,
                    "target": .string(report.socket.target), "matched": .bool(report.matched),
                    "sent": .integer(report.sent), "received": .integer(report.received),
                    "notes": .array(report.notes.map { .string($0) }),
                    "differences": .array(report.rows.enumerated().filter { $0.element.reason != nil }.map { index, row in
                        .members(["position": .integer(index + 1), "reason": .string(row.reason ?? ""),
                                  "recorded": row.recorded.map { shown($0.text) } ?? .null,
                                  "replayed": row.replayed.map { shown($0) } ?? .null])
                    }),
                    "notReceivedUnsolicited": .integer(report.rows.filter(\.unsolicited).count),
                ])
            }),
        ])
    }
}

/// The peer's messages on a replayed chat socket, as they come: kept up to `limit` (the rest
/// counted, so a flooding peer cannot grow memory), those `counts` picks counted for the replay
/// to wait on, the echo of each OneBot call kept (serve answers with the live echo).
final class PeerMessages: Sendable {
    private struct State {
        var kept: [String] = []
        var dropped = 0
        var counted = 0
        var callEchoes: [JSONValue?] = []
        var finished = false
    }
    private let state = NIOLockedValueBox(State())
    private let limit: Int
    /// "server" or "client", for what waiting says.
    private let peer: String
    private let counts: @Sendable (JSONValue?) -> Bool
    private let keeps: @Sendable (JSONValue?) -> Bool
    private let trace: (@Sendable (String) -> Void)?

    init(peer: String, limit: Int, trace: (@Sendable (String) -> Void)?, counts: @escaping @Sendable (JSONValue?) -> Bool,
         keeps: @escaping @Sendable (JSONValue?) -> Bool = { _ in true }) {
        self.peer = peer
        self.limit = limit
        self.trace = trace
        self.counts = counts
        self.keeps = keeps
    }

    /// The messages kept, in order.
    var messages: [String] { state.withLockedValue { $0.kept } }
    var dropped: Int { state.withLockedValue { $0.dropped } }

    func callEcho(at place: Int) -> JSONValue? {
        state.withLockedValue { place < $0.callEchoes.count ? $0.callEchoes[place] : nil }
    }

    func add(_ text: String) {
        trace?("← \(text)")
        let json = try? JSONReader.parse(text)
        let counted = counts(json), kept = keeps(json)
        state.withLockedValue { state in
            if counted { state.counted += 1 }
            if kept {
                if state.kept.count < limit { state.kept.append(text) } else { state.dropped += 1 }
            }
            if let json, json["action"] != nil, state.callEchoes.count < limit { state.callEchoes.append(json["echo"]) }
        }
    }

    /// The peer closed the connection: waiting stops.
    func finish() { state.withLockedValue { $0.finished = true } }

    /// Waits until `count` messages were counted; nil when they were, else how long it waited.
    func waitForCounted(_ count: Int, timeout: Duration) async -> String? {
        await waitFor(timeout) { $0.counted >= count }
    }

    /// Waits until `count` messages were kept.
    func waitForKept(_ count: Int, timeout: Duration) async -> String? {
        await waitFor(timeout) { $0.kept.count >= count }
    }

    private func waitFor(_ timeout: Duration, _ condition: (State) -> Bool) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (met, finished) = state.withLockedValue { (condition($0), $0.finished) }
            if met { return nil }
            if finished { return "until the \(peer) closed the connection" }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return "\(timeout)"
    }
}
