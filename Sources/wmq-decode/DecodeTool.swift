import ArgumentParser
import Capture
import CommandLineSupport
import Dialects
import Dissector
import Foundation
import MQTTWire
import NIOCore

@main
struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wmq-decode",
        abstract: "Decode every MQTT-over-WebSocket (and plain MQTT) packet of a capture or HAR file into annotated Works messages.",
        discussion: reflowHelp("""
            Reads a pcap or pcapng file (or - for standard input) or a HAR file with WebSocket
            messages (Chrome DevTools' _webSocketMessages), follows every TCP connection,
            recognises WebSocket by its HTTP Upgrade on any port and MQTT by its CONNECT (or, for
            connections the capture joined midstream, by frames or packets that chain exactly in
            both directions; --assume forces it), names other protocols (TLS, SSH, HTTP, …) and
            leaves them out, reassembles WebSocket messages and MQTT packets however they were cut, and prints
            each MQTT packet with its Works annotation: channel, sender, text or sticker.

            Cookies, Authorization headers, CONNECT passwords and token fields are replaced by keyed
            pseudonyms unless --no-redact.

            Output: --format text (default on a terminal), jsonl (default when piped; one JSON object
            per event, schema in docs/decode-format.md), json (one array), or har (the WebSocket
            connections as a HAR file that Chrome DevTools imports). --stats prints a summary per
            connection instead of the events.

            Ctrl-C (or SIGTERM) stops the reading: what was decoded is written out whole (a JSON
            array closed, the statistics so far).

            Exit codes: 0 decoded without errors; 1 decoded, with protocol or capture errors reported;
            2 usage error; 3 the input cannot be read (missing, empty, not a capture, unsupported link
            type); 130 stopped by Ctrl-C or SIGTERM.
            """))

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, jsonl, json, har
    }

    @Argument(help: "The capture: a pcap, pcapng or HAR file, or - for a pcap or pcapng on standard input.")
    var capture: String

    @Option(help: "Output format: text, jsonl, json, or har (a HAR file with _webSocketMessages, as Chrome DevTools exports; default: text on a terminal, jsonl otherwise).")
    var format: Format?

    @Flag(name: .customShort("V"), help: "Every field of every layer: HTTP headers, WebSocket frames, MQTT fields, Works fields.")
    var verbose = false

    @Flag(help: "A summary per connection instead of the events.")
    var stats = false

    @Option(name: .customLong("assume"), parsing: .singleValue,
            help: ArgumentHelp("Treat connections to PORT as ws-mqtt, mqtt (3.1.1) or mqtt5 (for captures without the handshake).",
                               valueName: "PORT=ws-mqtt|mqtt|mqtt5"))
    var assumptions: [String] = []

    @Option(name: .customLong("connection"), parsing: .singleValue, help: "Only this connection (c3 or 3); repeatable.")
    var connections: [String] = []

    @Option(name: .customLong("type"), help: "Only these MQTT packet types, comma-separated (PUBLISH,PUBACK).")
    var types: String?

    @Option(name: .customLong("topic"), parsing: .singleValue, help: "Only PUBLISH packets whose topic matches this MQTT filter; repeatable.")
    var topics: [String] = []

    // Taken whatever they start with, so that a negative number gets its own message rather
    // than ArgumentParser's "Missing value".
    @Option(parsing: .unconditional, help: "Only events at or after this many seconds from the first frame.")
    var from: Double?

    @Option(parsing: .unconditional, help: "Only events at or before this many seconds from the first frame.")
    var to: Double?

    @Flag(help: "Show cookies, tokens and passwords as captured.")
    var noRedact = false

    @Option(name: .customLong("redact"), help: ArgumentHelp("Also treat this JSON member, query parameter or header as a secret (repeatable; any case). Names like token, secret, password, api_key, auth, cookie, sig are secrets already.", valueName: "name"))
    var redact: [String] = []

    @Option(help: "An NSS key log (SSLKEYLOGFILE, as browsers and Python's ssl write it): TLS connections whose secrets it holds are decrypted (TLS 1.2 and 1.3, AES-GCM and ChaCha20-Poly1305).")
    var keylog: String?

    @Option(help: "Key for the redaction pseudonyms: the same key gives the same pseudonyms across runs. Default: random.")
    var redactionKey: String?

    @Option(name: .customLong("color"), help: "Colours in --format text: auto (on a terminal, unless NO_COLOR is set), always or never.")
    var color: ColourChoice = .auto

    @Option(name: .customLong("max-inflate"),
            help: ArgumentHelp("What permessage-deflate may inflate to, in MiB: one message, and all the messages of one direction of a connection (a deflate bomb is an error past it, and the rest is still decoded).",
                               valueName: "MESSAGE[,DIRECTION]"))
    var maxInflate: String = "16,256"

    /// `--max-inflate` as byte counts.
    var inflationLimits: ConnectionDissector.InflationLimits? {
        let parts = maxInflate.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard (1...2).contains(parts.count), let message = parts[0], message > 0, message <= 1024 else { return nil }
        let direction = parts.count == 2 ? parts[1] : max(message, 256)
        guard let direction, direction >= message, direction <= 1 << 20 else { return nil }
        return .init(perMessage: message << 20, perDirection: direction << 20)
    }

    static func main() { mainWithToolExitCodes() }

    func validate() throws {
        if format == .har && stats { throw ValidationError("--format har writes the messages; it does not go with --stats") }
        for assumption in assumptions {
            let parts = assumption.split(separator: "=")
            guard parts.count == 2, UInt16(parts[0]) != nil, CaptureDissector.Assumption(rawValue: String(parts[1])) != nil else {
                throw ValidationError("--assume takes PORT=ws-mqtt, PORT=mqtt or PORT=mqtt5, not \"\(assumption)\"")
            }
        }
        for topic in topics {
            if let problem = TopicMatching.problem(inFilter: topic) {
                throw ValidationError("--topic \"\(topic)\" is not a topic filter: \(problem)")
            }
        }
        for (name, value) in [("--from", from), ("--to", to)] {
            if let value, !(value >= 0) || !value.isFinite {
                throw ValidationError("\(name) takes seconds from the first frame, 0 or more, not \(value)")
            }
        }
        if let from, let to, from > to {
            throw ValidationError("--from \(from) is after --to \(to): no event could be shown")
        }
        if inflationLimits == nil {
            throw ValidationError("--max-inflate takes MiB for a message (1 to 1024), then optionally for a direction (at least as many), e.g. 16,256, not \"\(maxInflate)\"")
        }
        for connection in connections where Int(connection.hasPrefix("c") ? String(connection.dropFirst()) : connection) == nil {
            throw ValidationError("--connection takes a connection id such as c3, not \"\(connection)\"")
        }
        if let types {
            let known = ["CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK",
                         "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"]
            for type in types.split(separator: ",") where !known.contains(type.uppercased()) {
                throw ValidationError("unknown packet type \"\(type)\"; types are \(known.joined(separator: ", "))")
            }
        }
    }

    func run() throws {
        // A HAR is JSON; anything else goes to libpcap, which knows pcap and pcapng.
        var harFile: ByteBuffer?
        var isDirectory: ObjCBool = false
        if capture != "-", FileManager.default.fileExists(atPath: capture, isDirectory: &isDirectory), isDirectory.boolValue {
            throw unreadableInput("wmq-decode", "\(capture): is a directory, not a capture file")
        }
        if capture != "-", let handle = FileHandle(forReadingAtPath: capture) {
            defer { try? handle.close() }
            // The throwing reads: readData(ofLength:) traps when reading fails.
            do {
                let start = try handle.read(upToCount: 64) ?? Data()
                if HARInput.looksLikeHAR(start) {
                    harFile = ByteBuffer(bytes: start + (try handle.readToEnd() ?? Data()))
                }
            } catch {
                throw unreadableInput("wmq-decode", "\(capture): cannot be read (\(error.localizedDescription))")
            }
        }
        var reader: PcapReader?
        if harFile == nil {
            if capture != "-", let size = (try? FileManager.default.attributesOfItem(atPath: capture))?[.size] as? Int, size == 0 {
                throw unreadableInput("wmq-decode", "\(capture): empty file (0 bytes), no capture in it")
            }
            do {
                reader = try PcapReader(path: capture)
            } catch {
                if capture == "-" && error.reason.contains("only got 0") {
                    throw unreadableInput("wmq-decode", "standard input is empty: no capture came")
                }
                if capture == "-" && error.reason.hasPrefix("not a pcap or pcapng") {
                    throw unreadableInput("wmq-decode", "standard input: \(error.reason); a HAR file is read from its path (wmq-decode session.har)")
                }
                throw unreadableInput("wmq-decode", "\(capture): \(error)")
            }
            if let linkType = reader?.linkType, !linkType.isSupported {
                throw unreadableInput("wmq-decode", "\(capture): link: unsupported link type \(linkType.rawValue); "
                                      + "supported: Ethernet, Linux SLL and SLL2, BSD loopback, raw IPv4/IPv6")
            }
        }
        var options = CaptureDissector.Options(redactor: noRedact ? nil : redactionKey.map { Redactor(key: Array($0.utf8), names: SecretNames(adding: redact)) }
                                                    ?? .random(names: SecretNames(adding: redact)))
        options.reportsFrames = verbose
        options.annotates = !stats && format != .har
        options.annotatesMessages = format != .har
        options.reportsMessages = format == .har
        if let keylog {
            guard let data = FileManager.default.contents(atPath: keylog), let text = String(data: data, encoding: .utf8) else {
                throw unreadableInput("wmq-decode", "cannot read the key log \(keylog)")
            }
            do {
                options.keyLog = try TLSKeyLog(text: text)
            } catch {
                throw unreadableInput("wmq-decode", "\(keylog): \(error)")
            }
        }
        var har = HAROutput(redactor: options.redactor)
        if let inflationLimits { options.inflation = inflationLimits }
        for assumption in assumptions {
            let parts = assumption.split(separator: "=")
            if let port = UInt16(parts[0]), let kind = CaptureDissector.Assumption(rawValue: String(parts[1])) {
                options.assumptions[port] = kind
            }
        }
        var filter = EventFilter()
        filter.connections = Set(connections.compactMap { Int($0.hasPrefix("c") ? String($0.dropFirst()) : $0) })
        filter.types = Set((types ?? "").split(separator: ",").map { $0.uppercased() })
        filter.topicFilters = topics
        filter.from = from
        filter.to = to

        let output = OutputBuffer()
        let streams = capture == "-" || OutputBuffer.isTerminal
        let format = self.format ?? (OutputBuffer.isTerminal ? .text : .jsonl)
        let progress = Progress(path: capture)
        var statistics = DecodeStatistics()
        var startTime: Double?
        var errors = 0
        var jsonArrayStarted = false
        var memory = DecodeRecord.HeaderMemory()
        // JSON Lines to a file or a pipe read in bulk are written on a second thread; a live
        // stream (stdin, a terminal) writes each line when its frame is read, so it does not.
        let background = format == .jsonl && !stats && !streams ? BackgroundLines(showsSecrets: noRedact) : nil
        options.defersWorksAnnotation = background != nil
        defer { background?.finish() }

        // Statistics are kept for --stats; records only need to know whether there were errors.
        var recordedErrors = 0
        // The flags as plain values: reading an ArgumentParser property wrapper per event
        // looked up its generic metadata each time.
        let stats = self.stats, noRedact = self.noRedact, verbose = self.verbose
        let colored = format == .text && color.isOn
        // The highest connection number met, to say so when --connection names none of them.
        var lastConnection = 0
        func emit(_ events: [CaptureEvent]) {
            for event in events { emit(event) }
        }
        func emit(_ event: consuming CaptureEvent) {
            lastConnection = max(lastConnection, event.connection.id)
            if stats { statistics.add(copy event) } else { recordedErrors += DecodeStatistics.errorCount(of: event) }
            if format == .har {
                // A HAR holds whole connections: only --connection applies.
                if filter.connections.isEmpty || filter.connections.contains(event.connection.id) { har.add(event) }
                return
            }
            guard !stats, filter.keeps(event, startTime: startTime ?? event.time) else { return }
            switch format {
            case .text:
                for line in TextRecord.lines(event, startTime: startTime ?? event.time, verbose: verbose, colored: colored) {
                    output.line(line)
                }
            case .jsonl:
                if let background {
                    background.add(consume event)
                } else {
                    let record = copy event
                    output.line { DecodeRecord.write(record, showsSecrets: noRedact, memory: &memory, to: &$0) }
                }
            case .json:
                output.line((jsonArrayStarted ? "," : "[") + DecodeRecord.json(event, showsSecrets: noRedact).description)
                jsonArrayStarted = true
            case .har:
                break
            }
        }

        func report(_ error: CaptureError) {
            errors += 1
            switch format {
            case .text:
                if !stats { output.line("\(TextRecord.pad("frame \(error.frame.map(String.init) ?? "-")", 11))  ✗ \(error)") }
                else { StandardError.write("wmq-decode: \(capture): \(error)\n") }
            case .har:
                StandardError.write("wmq-decode: \(capture): \(error)\n")
            case .jsonl, .json:
                let record = JSONValue.object([
                    .init(key: "v", value: .number("1")), .init(key: "event", value: .string("error")),
                    .init(key: "layer", value: .string(error.layer.rawValue)),
                    .init(key: "frame", value: error.frame.map { .number(String($0)) } ?? .null),
                    .init(key: "offset", value: .number(String(error.offset))),
                    .init(key: "message", value: .string(error.description)),
                ])
                if let background {
                    background.add(line: record.description)
                } else if !stats {
                    output.line(format == .json ? (jsonArrayStarted ? "," : "[") + record.description : record.description)
                    jsonArrayStarted = true
                }
            }
        }

        if let harFile {
            do {
                let events = try HARInput.events(from: harFile, options: options)
                startTime = events.first?.time
                emit(events)
            } catch {
                throw unreadableInput("wmq-decode", "\(capture): \(error)")
            }
        }
        func failed(_ error: CaptureError) {
            report(error)
            if error.layer == .file && (format == .text || stats) { StandardError.write("wmq-decode: \(capture): \(error)\n") }
        }
        // Ctrl-C or SIGTERM end the reading where it is: what was decoded is written out as
        // usual (a JSON array closed, the statistics so far), then exit 130.
        let interruption = Interruption()
        var lastFrame = 0
        if let reader, stats {
            // Only numbers come out: connections are shared out between two dissecting threads.
            statistics.merge(ParallelStatistics.statistics(of: reader, options: options, frameRead: { frame in
                lastFrame = frame.number
                progress.update(reader.fileOffset)
            }, stop: { interruption.isRequested }, failed: failed))
        } else if let reader {
            CaptureDissector.decode(reader, options: options, frameRead: { frame in
                if startTime == nil { startTime = frame.time }
                lastFrame = frame.number
                progress.update(reader.fileOffset)
            }, stop: { interruption.isRequested }, event: { emit($0) }, frameDone: {
                // A live pipe (tcpdump -U -w - | wmq-decode -) or a person watching: show each
                // packet when its frame is read, not when 64 KiB of output have gathered.
                if streams { output.flush() }
            }, failed: failed)
        }
        background?.finish()
        progress.done()
        if format == .json && !stats { output.line(jsonArrayStarted ? "]" : "[]") }
        if format == .har {
            output.line(har.json(creator: "wmq-decode").description)
            if har.skippedConnections > 0 {
                StandardError.write("wmq-decode: \(capture): \(har.skippedConnections) MQTT-over-TCP connection(s) left out: a HAR holds WebSocket connections only\n")
            }
        }
        if stats {
            if format == .text {
                statistics.text().forEach(output.line)
            } else {
                output.line(statistics.json().description)
            }
        }
        output.flush()
        if !stats, format != .har, let missing = filter.connections.filter({ $0 > lastConnection }).min() {
            StandardError.write("wmq-decode: \(capture): no connection c\(missing); "
                                + (lastConnection == 0 ? "it has none\n"
                                   : lastConnection == 1 ? "it has c1 only\n" : "it has c1 to c\(lastConnection)\n"))
        }
        if interruption.isRequested {
            StandardError.write("wmq-decode: interrupted after frame \(lastFrame): what was decoded before it is written above\n")
            throw ExitCode(ToolExit.interrupted)
        }
        if errors + statistics.totalErrors + recordedErrors > 0 { throw ExitCode(ToolExit.foundErrors) }
    }
}
