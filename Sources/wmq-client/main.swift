public import ArgumentParser
import CommandLineSupport
import Dialects
import Dissector
import Foundation
import Logging
import MQTTWire
import NIOConcurrencyHelpers
import ChatClients
import WorksClient

@main
enum Main {
    static func main() async { await Client.runWithToolExitCodes() }
}

struct Client: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wmq-client",
        abstract: "Connect to a Works notification service (or any MQTT-over-WebSocket broker) and print what arrives, live.",
        discussion: reflowHelp("""
            Connects with the Works web client's handshake (Origin, User-Agent, Sec-WebSocket-Protocol:
            mqtt, the cookies of cookie.json), sends its CONNECT, answers every PUBLISH as the spec says
            (QoS 1: PUBACK; QoS 2: PUBREC, PUBREL, PUBCOMP), keeps the session alive with PINGREQ, drops
            notifications seen within 60 s, and reconnects with backoff (1 s doubling to 300 s) until
            stopped with Ctrl-C.

            Every MQTT packet is printed one line each, as wmq-decode prints a capture of the same
            session (--format jsonl: the JSON Lines schema of docs/decode-format.md). Cookies,
            passwords and token fields are shown, logged and recorded as keyed pseudonyms unless
            --no-redact. Settings come from --config (JSON), then the environment (WMQ_URL,
            WMQ_COOKIES, WMQ_CLIENT_ID, WMQ_USERNAME, WMQ_PASSWORD, WMQ_CA_FILE, WMQ_PROXY), then these flags.

            --onebot URL (ws://127.0.0.1:8000/ws/ for the OneBot seed's server, docs/protocols.md §2) runs the OneBot v11 client
            instead (docs/dialects.md): the lifecycle connect event at once, a heartbeat every
            --heartbeat seconds (30), reconnection every --reconnect-interval seconds (5) up to
            --reconnect-attempts (0: forever), the bot id --bot-id (12345), the token from the
            environment variable --token-env names (Authorization: Bearer), API calls from the server
            answered. Every message both ways is printed as wmq-decode prints a capture (OneBot
            annotations; --record writes the pcap). Each line on standard input is sent: "private
            USER TEXT", "group GROUP TEXT", or a JSON object as it is.

            Exit codes: 0 stopped (Ctrl-C, --count reached); 2 usage or configuration error; 3 a file
            (cookie.json, --config, CA) cannot be read; 4 the server refused the credentials (HTTP
            401/403, CONNACK 4/5); 5 the connection could not be kept (attempts used up, refused).
            """))

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, jsonl
    }

    @Option(help: "ws:// or wss:// URL (default: the Works service, wss://jp1-web-noti.worksmobile.com/wmqtt).")
    var url: String?

    @Option(help: "cookie.json: {\"NAME\": \"VALUE\", …} or {\"cookie\": \"<header>\"}.")
    var cookies: String?

    @Option(help: "A JSON configuration file (keys in docs/client.md).")
    var config: String?

    @Option(name: .customLong("subscribe"), parsing: .singleValue, help: "Subscribe to this topic filter at QoS 2 (repeatable); the Works service needs none.")
    var subscriptions: [String] = []

    @Option(name: .customLong("client-id"), help: "MQTT client identifier (default: web-beejs_<12 hex>).")
    var clientID: String?

    @Option(help: "A CONNECT variant the Works service accepts: reference, hex-password, anonymous, mqtt-client.")
    var variant: String?

    @Option(help: "MQTT user name (default: dummy).")
    var username: String?

    @Option(name: .customLong("password-env"), help: "Name of an environment variable holding the MQTT password (never a flag: flags show in ps).")
    var passwordVariable: String?

    @Flag(help: "Ask for a persistent session (clean session off): the broker keeps QoS 1/2 messages while the client is away.")
    var persistent = false

    @Option(help: "Output: text (default on a terminal) or jsonl.")
    var format: Format?

    @Flag(name: .customShort("V"), help: "Every field of every layer, as wmq-decode -V.")
    var verbose = false

    @Option(help: "Record everything sent and received (after TLS) into this pcap file (mode 0600).")
    var record: String?

    @Flag(name: .customLong("no-redact"), help: "Show, log and record cookies, passwords and tokens as they are.")
    var noRedact = false

    @Option(name: .customLong("redact"), help: ArgumentHelp("Also treat this JSON member, query parameter or header as a secret (repeatable; any case). Names like token, secret, password, api_key, auth, cookie, sig are secrets already.", valueName: "name"))
    var redact: [String] = []

    @Option(name: .customLong("origin"), help: "Origin header (default: https://talk.worksmobile.com; empty: none).")
    var origin: String?

    @Option(name: .customLong("header"), parsing: .singleValue, help: "An extra request header, \"Name: value\" (repeatable).")
    var headers: [String] = []

    @Option(help: "Tunnel through this HTTP proxy: http://[user:password@]host:port.")
    var proxy: String?

    @Option(name: .customLong("ca-file"), help: "PEM file of the certificate authorities to trust for wss://.")
    var caFile: String?

    @Flag(help: "Do not verify the server's certificate (local experiments only).")
    var insecure = false

    @Option(name: .customLong("ping-response"), help: "required: no PINGRESP in time ends the connection; optional (default): it is reported once.")
    var pingResponse: MQTTClientSession.PingResponsePolicy?

    @Option(name: .customLong("reconnect-attempts"), help: "Reconnect attempts after a loss before giving up; 0 (default) = forever.")
    var reconnectAttempts: Int?

    @Option(help: "Stop after this many messages.")
    var count: Int?

    @Option(name: .customLong("log-file"), help: "Also log to this file, rotated at 10 MB (the seed wrote works_mqtt.log).")
    var logFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default: warning; the file gets debug).")
    var logLevel: String?

    @Option(help: "Run the OneBot v11 client against this ws:// URL instead (docs/protocols.md §2: ws://127.0.0.1:8000/ws/).")
    var onebot: String?

    @Option(name: .customLong("bot-id"), help: "With --onebot: the bot's id, self_id of every event (default 12345).")
    var botID: Int64 = 12345

    @Option(name: .customLong("token-env"), help: "With --onebot: the environment variable holding the access token (sent as Authorization: Bearer).")
    var tokenVariable: String?

    @Option(help: "With --onebot: seconds between heartbeat events (default 30).")
    var heartbeat: Double = 30

    @Option(name: .customLong("reconnect-interval"), help: "With --onebot: seconds between reconnection attempts (default 5).")
    var reconnectInterval: Double = 5

    func makeConfiguration() throws -> WorksClientConfiguration {
        var configuration = try WorksClientConfiguration.load(file: config, environment: ProcessInfo.processInfo.environment)
        if let url { configuration.webSocket.url = try WebSocketURL(url) }
        if let cookies { configuration.webSocket.cookies = try WorksCookies.load(path: cookies) }
        if let variant {
            guard let chosen = MQTTSettings.ConnectVariant(rawValue: variant) else {
                throw ValidationError("--variant must be one of \(MQTTSettings.ConnectVariant.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let subscriptions = configuration.mqtt.subscriptions
            configuration.mqtt = MQTTSettings.variant(chosen)
            configuration.mqtt.subscriptions = subscriptions
        }
        if let clientID { configuration.mqtt.clientIdentifier = clientID }
        if let username { configuration.mqtt.username = username.isEmpty ? nil : username }
        if let passwordVariable {
            guard let password = ProcessInfo.processInfo.environment[passwordVariable] else {
                throw ValidationError("--password-env: \(passwordVariable) is not set")
            }
            configuration.mqtt.password = password
        }
        if persistent { configuration.mqtt.persistentSession = true }
        if !subscriptions.isEmpty { configuration.mqtt.subscriptions = subscriptions.map { .init(topicFilter: $0, qos: .exactlyOnce) } }
        if let origin { configuration.webSocket.origin = origin.isEmpty ? nil : origin }
        for header in headers {
            guard let colon = header.firstIndex(of: ":") else { throw ValidationError("--header takes \"Name: value\", not \"\(header)\"") }
            configuration.webSocket.extraHeaders.append((name: String(header[..<colon]).trimmingCharacters(in: .whitespaces),
                                                         value: String(header[header.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
        }
        if let caFile { configuration.webSocket.tls.caFile = caFile }
        if let proxy { configuration.webSocket.proxy = try HTTPProxy(url: proxy) }
        if insecure { configuration.webSocket.tls.insecure = true }
        if let pingResponse { configuration.mqtt.pingResponse = pingResponse }
        if let reconnectAttempts {
            guard reconnectAttempts >= 0 else { throw ValidationError("--reconnect-attempts must be 0 or more") }
            configuration.reconnect.maximumAttempts = reconnectAttempts
        }
        return configuration
    }

    /// The live view printing every event, and the recorder when --record asks for one.
    func makeTaps(redactor: Redactor?, output: LockedOutput, protocolName: String) throws -> ([any ByteTap], SessionRecorder?) {
        var taps: [any ByteTap] = [LiveView(redactor: redactor, protocolName: protocolName) { output.print($0) }]
        guard let record else { return (taps, nil) }
        do {
            let recorder = try SessionRecorder(path: record, redactor: redactor)
            taps.append(recorder)
            return (taps, recorder)
        } catch {
            throw unreadableInput("wmq-client", error.reason)
        }
    }

    func makeLogger() throws -> Logger {
        let console = try logLevel.map { name in
            guard let level = Logger.Level(rawValue: name) else { throw ValidationError("--log-level: unknown level \(name)") }
            return level
        } ?? .warning
        let file = try logFile.map { try RotatingLogFile(path: $0) }
        return Logger(label: "wmq.client") { label in
            var handlers: [any LogHandler] = [ConsoleLogHandler(label: label, level: console)]
            if let file { handlers.append(FileLogHandler(file: file, level: min(console, .debug))) }
            return handlers.count == 1 ? handlers[0] : MultiplexLogHandler(handlers)
        }
    }

    mutating func run() async throws {
        if let onebot {
            try await runOneBot(onebot)
            return
        }
        let configuration: WorksClientConfiguration
        let logger: Logger
        do {
            configuration = try makeConfiguration()
            logger = try makeLogger()
        } catch let error as WorksClientError {
            StandardError.write("wmq-client: \(error.reason)\n")
            throw ExitCode(error.code == .cookie || error.reason.contains("not found") ? ToolExit.unreadableInput : ToolExit.usage)
        }
        if count.map({ $0 < 1 }) == true { throw ValidationError("--count must be 1 or more") }

        let redactor = noRedact ? nil : Redactor.random(names: SecretNames(adding: redact))
        let output = LockedOutput(format: format ?? (OutputBuffer.isTerminal ? .text : .jsonl), verbose: verbose, showsSecrets: noRedact)
        let (taps, recorder) = try makeTaps(redactor: redactor, output: output, protocolName: "ws-mqtt")
        let client = WorksClient(configuration: configuration, logger: logger, redactor: redactor, tap: TapGroup(taps))

        // Ctrl-C and SIGTERM disconnect cleanly: DISCONNECT, close frame, files flushed.
        let signals = TerminationSignals()
        defer { signals.cancel() }
        let stopper = Task { for await _ in signals.stream { await client.disconnect() } }
        defer { stopper.cancel() }
        let limit = count
        let counter = Task {
            var delivered = 0
            for await event in client.events {
                switch event {
                case .notification, .readReceipt, .channelMessage, .otherMessage:
                    delivered += 1
                    if let limit, delivered >= limit { await client.disconnect() }
                default:
                    break
                }
            }
        }
        defer { counter.cancel() }

        var exit: Int32 = ToolExit.success
        do {
            try await client.run()
        } catch {
            StandardError.write("wmq-client: \(error.reason)\n")
            exit = error.code == .authentication ? 4 : error.code == .config || error.code == .cookie ? ToolExit.unreadableInput : 5
        }
        output.flush()
        recorder?.flush()
        if let recorder, recorder.withheldBytes > 0 {
            StandardError.write("wmq-client: \(recorder.withheldBytes) bytes could not be checked for secrets and were left out of \(record ?? "")\n")
        }
        if exit != ToolExit.success { throw ExitCode(exit) }
    }
}

extension Client {
    /// `--onebot`: the OneBot seed's client (docs/protocols.md §2), printed like a capture, fed from standard input.
    func runOneBot(_ address: String) async throws {
        let url: WebSocketURL
        do { url = try WebSocketURL(address) } catch { throw ValidationError(error.reason) }
        guard heartbeat > 0, heartbeat.isFinite, reconnectInterval > 0, reconnectInterval.isFinite else {
            throw ValidationError("--heartbeat and --reconnect-interval take a positive number of seconds")
        }
        var token: String?
        if let tokenVariable {
            guard let value = ProcessInfo.processInfo.environment[tokenVariable] else { throw ValidationError("--token-env: \(tokenVariable) is not set") }
            token = value
        }
        let logger = try makeLogger()
        let redactor = noRedact ? nil : Redactor.random(names: SecretNames(adding: redact))
        let output = LockedOutput(format: format ?? (OutputBuffer.isTerminal ? .text : .jsonl), verbose: verbose, showsSecrets: noRedact)
        let (taps, recorder) = try makeTaps(redactor: redactor, output: output, protocolName: "websocket")
        let client = OneBotClient(configuration: .init(
            url: url, botID: botID, reconnectInterval: .milliseconds(Int64(reconnectInterval * 1000)),
            maximumReconnectAttempts: reconnectAttempts ?? 0, heartbeatInterval: .milliseconds(Int64(heartbeat * 1000)),
            accessToken: token), logger: logger, tap: TapGroup(taps))
        await client.onError { error in logger.warning("\(error.reason)") }
        let signals = TerminationSignals()
        defer { signals.cancel() }
        let stopper = Task { for await _ in signals.stream { await client.disconnect() } }
        defer { stopper.cancel() }
        let input = Task {
            for await line in standardInputLines() {
                do {
                    try await Self.sendOneBot(line, with: client)
                } catch {
                    StandardError.write("wmq-client: \(error)\n")
                }
            }
        }
        defer { input.cancel() }
        let ending = await client.run()
        output.flush()
        recorder?.flush()
        guard let ending else { return }
        StandardError.write("wmq-client: \(ending.reason)\n")
        throw ExitCode(ending.code == .authentication ? 4 : 5)
    }

    /// A line of standard input: "private USER TEXT", "group GROUP TEXT", or a JSON object.
    static func sendOneBot(_ line: String, with client: OneBotClient) async throws {
        if line.hasPrefix("{") {
            let json: JSONValue
            do { json = try JSONReader.parse(line) } catch { throw WorksClientError(.message, "not JSON: \(error)") }
            try await client.sendMessage(json)
            return
        }
        let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
        guard parts.count == 3, let type = OneBotMessages.MessageType(rawValue: parts[0]), let target = Int64(parts[1]) else {
            throw WorksClientError(.message, "a line is \"private USER TEXT\", \"group GROUP TEXT\" or a JSON object, not \"\(line)\"")
        }
        try await client.sendText(parts[2], type: type, targetID: type == .private ? target : nil, groupID: type == .group ? target : nil)
    }
}

extension MQTTClientSession.PingResponsePolicy: ExpressibleByArgument {}

/// The printer, shared by the connection's event loop and the main task: the buffer and the
/// first event's time live in one locked box, so the compiler checks that nothing reaches them
/// without the lock.
final class LockedOutput: Sendable {
    /// `@unchecked Sendable`: reached only through the box's lock.
    private final class State: @unchecked Sendable {
        let buffer = OutputBuffer()
        var startTime: Double?
    }

    private let state = NIOLockedValueBox(State())
    let format: Client.Format
    let verbose: Bool
    let showsSecrets: Bool

    init(format: Client.Format, verbose: Bool, showsSecrets: Bool) {
        self.format = format
        self.verbose = verbose
        self.showsSecrets = showsSecrets
    }

    func print(_ event: CaptureEvent) {
        state.withLockedValue { state in
            switch format {
            case .text:
                let start = state.startTime ?? event.time
                state.startTime = start
                for line in TextRecord.lines(event, startTime: start, verbose: verbose) { state.buffer.line(line) }
            case .jsonl:
                state.buffer.line { DecodeRecord.json(event, showsSecrets: showsSecrets).write(to: &$0) }
            }
            state.buffer.flush()  // live: every event as it comes
        }
    }

    func flush() {
        state.withLockedValue { $0.buffer.flush() }
    }
}
