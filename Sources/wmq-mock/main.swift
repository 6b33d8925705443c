import Broker
import MockFiles
public import ArgumentParser
import CommandLineSupport
import Dialects
import Foundation
import Logging
import MockServer
import NetworkErrors
import MQTTWire
import NIOCore
import WorksClient

@main
enum Main {
    static func main() async { await Mock.runWithToolExitCodes() }
}

struct Mock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wmq-mock",
        abstract: "A local MQTT-over-WebSocket broker that can behave like the Works notification service.",
        discussion: reflowHelp("""
            --mode broker (default): an MQTT 3.1.1 and 5.0 broker on WebSocket (subprotocol mqtt or
            mqttv3.1, any path) and, with --tcp, plain TCP: clean and persistent sessions, wildcards,
            retained messages, QoS 0/1/2 both ways, wills, keep-alive enforcement; for 5.0 session and
            message expiry, will delay, topic aliases, receive maximum, maximum packet size,
            subscription options and identifiers, reason codes and strings, user properties.

            --mode works: the Works service. The WebSocket endpoint is /wmqtt; with --cookies, the
            Cookie header must hold every pair of that cookie.json (else HTTP 401); connected sessions
            get notifications at QoS 1 without subscribing, resent (DUP) every --redelivery seconds
            until PUBACK. Each line on standard input is a notification to push to every session:
              {"channel": 42, "sender": "Alice", "text": "Hello"}
              {"sender": "Bob", "sticker": {"type": "line", "package": "1", "id": "2"}}
            Other keys (chTitle, nType, …) are copied into the payload.

            --mode chat: the chat-topic tree of a rumqttd broker with an AI core behind it (docs/protocols.md
            §3, docs/dialects.md). Without --config it listens as the seed's rumqttd.toml does, on
            loopback: WebSocket 127.0.0.1:8885 and TCP 127.0.0.1:8884, MQTT 3.1.1 only, CONNECT within
            60 s, payloads up to 20480 bytes (larger ends the connection), 500 in flight. A publish
            to chat/send {"id", "sessionId", "content"} is answered with chat/status "received", the
            reply streamed token by token on chat/receive ("done": false pieces, then "done": true
            with the whole text) and chat/status "completed"; chat/session/create|delete|list answer
            on chat/session/list, system/send on system/receive and system/status; bad requests get
            chat/error. connection/ai-core and connection/system are retained "online". Each line on
            standard input is published as the core: {"topic": "connection/ai-core", "payload":
            {"status": "offline"}, "retain": true}. Listeners given with --ws or --tcp replace the pair.

            --config FILE reads TOML: rumqttd's [ws.N] (WebSocket, MQTT 3.1.1), [v4.N] and [v5.N] (TCP)
            listener sections with their connection keys (listen, next_connection_delay_ms,
            connection_timeout_ms, max_client_id_len, max_payload_size, max_inflight_count,
            dynamic_filters) and wmq-mock's own keys in [wmq] (docs/mock.md). Options win over it.

            The page: open http://HOST:PORT/ on a WebSocket port (or --admin) for the connected
            clients, a live view of the traffic decoded as wmq-decode does, and forms that send
            notifications and publish.

            Admin API on every WebSocket port and --admin (OpenAPI description at
            GET /api/openapi.json):
              GET /api/clients          clients, kept sessions, their subscriptions
              POST /api/notify          {"channel", "sender", "text" or "sticker"}
              POST /api/publish         {"topic", "payload", "qos", "retain"}
              DELETE /api/clients/ID    disconnect a client (its will goes out)
              GET /api/events           the live view (Server-Sent Events)
              GET|POST /api/faults      {"answerPing", "refuseConnections", "ackDelay"}
            Only loopback by default. On another address --admin-token is required, and MQTT takes
            only clients with credentials: --users FILE (NAME:PASSWORD lines), or the admin token as
            the password; --insecure-remote lets anyone in.

            Browser pages: the page, the admin API and every WebSocket endpoint serve the mock's own
            page and programs (which send no Origin header). A page of another origin gets 403, so
            that a web site open in the same browser can neither drive the mock nor subscribe to
            its traffic; the refusal is logged with the flag that allows it. A frontend dev server is
            let in with --allow-origin http://localhost:5173 (or --allow-origin 5173). Requests must
            name the mock by an IP address or localhost (--allow-host NAME adds a name): a rebound
            DNS name gets 403.

            The listeners print their address on standard output ("listening ws://127.0.0.1:PORT")
            once bound; port 0 picks a free one. Ctrl-C stops.

            --scenario FILE plays a JSON Lines script (docs/scenarios.md) against every client once its
            session is accepted; --serve CAPTURE plays the server side of a recorded connection
            (pcap, pcapng or HAR) instead. With --once the mock exits after the first play: 0 if
            every step passed, 1 if one failed.

            Exit codes: 0 stopped (or, with --once, the scenario passed); 1 the scenario failed; 2 usage
            error; 3 a file cannot be read or an address cannot be bound.
            """))


    @Option(help: "A TOML configuration (docs/mock.md): rumqttd's [ws.N], [v4.N] and [v5.N] listener sections and wmq-mock's own [wmq] keys. Options given on the command line win.")
    var config: String?

    @Option(help: "WebSocket listener, HOST:PORT (default 127.0.0.1:8885).")
    var ws: String?

    @Option(help: "Also a plain MQTT-over-TCP listener, HOST:PORT.")
    var tcp: String?

    @Option(help: "Also the admin API and the page on a port of their own, HOST:PORT (they are on every WebSocket port too).")
    var admin: String?

    @Option(help: "Also a OneBot v11 endpoint, HOST:PORT (the seed's is 127.0.0.1:8000, path /ws/): lifecycle connect within 1 s or closed, API calls answered; standard input lines become OneBot events instead of Works notifications.")
    var onebot: String?

    @Option(help: "Also CocoroCore's chat socket, HOST:PORT (the seed's port is 55601): ws://HOST:PORT/ws/chat/{client_id} answers each chat request with a canned reply streamed through the server's sentence buffering.")
    var cocoro: String?

    @Option(help: "Also a Discord gateway, HOST:PORT: ws://HOST:PORT/?v=10&encoding=json[&compress=zlib-stream] with HELLO, heartbeats, IDENTIFY and READY; a line {\"user\": \"alice\", \"content\": \"hi bot\"} on standard input is posted in the channel and answered by a bot streaming through cc-discord's delivery throttle.")
    var discord: String?

    @Option(name: .customLong("discord-token"), help: "With --discord: the token IDENTIFY must carry (else close 4004).")
    var discordToken: String?

    @Option(name: .customLong("discord-delivery"), help: "With --discord: how the bot delivers its streamed reply, append (a message per flush) or edit (one message edited; default append).")
    var discordDelivery: Delivery = .append

    @Option(name: .customLong("discord-heartbeat"), help: "With --discord: HELLO's heartbeat interval in milliseconds (default 41250).")
    var discordHeartbeat: Int = 41_250

    enum Delivery: String, ExpressibleByArgument, CaseIterable {
        case append, edit
        var mode: DeliveryThrottle.Mode { self == .append ? .append : .edit }
    }

    @Option(help: "Also an RFC 6455 echo endpoint, HOST:PORT (any path, no subprotocol): each message sent back as it came. For conformance runs (make conformance: the Autobahn TestSuite) of the WebSocket transport every endpoint shares.")
    var echo: String?

    @Option(name: .customLong("onebot-token"), help: "With --onebot: the token clients must send (Authorization: Bearer, or ?access_token=).")
    var onebotToken: String?

    @Option(name: .customLong("onebot-lifecycle-timeout"), help: "With --onebot: seconds a client has to send its lifecycle connect event before the connection is closed (1008). Default 1, the seed's rule.")
    var onebotLifecycleTimeout: Double = 1

    @Option(help: "broker, works or chat (default broker).")
    var mode: MockMode?

    @Option(help: "Works mode: the cookie.json whose cookies a client must send.")
    var cookies: String?

    @Flag(name: .customLong("no-ping-response"), help: "Never answer PINGREQ (the Works service may not).")
    var noPingResponse = false

    // Taken whatever it starts with, so that a negative number gets its own message rather
    // than ArgumentParser's "Missing value".
    @Option(parsing: .unconditional, help: "Works mode: seconds before an unacknowledged notification is sent again (default 10).")
    var redelivery: Double?

    @Option(name: .customLong("max-inflight"), help: "Unacknowledged QoS 1/2 messages per session before the rest queue (default 100; rumqttd's max_inflight_count).")
    var maximumInflight: Int?

    @Option(name: .customLong("max-payload"), help: "Largest PUBLISH payload accepted, in bytes (default 8 MiB; rumqttd's max_payload_size).")
    var maximumPayload: Int?

    @Option(help: "A scenario file (JSON Lines, docs/scenarios.md) played against every client once connected.")
    var scenario: String?

    @Option(help: "Serve a recorded session: every client gets the PUBLISHes the server of one connection of this capture (pcap, pcapng or HAR) sent, at their recorded times.")
    var serve: String?

    @Option(name: .customLong("serve-connection"), help: "With --serve: the connection to serve (wmq-decode's id, 1 for c1; default: the first whose server published).")
    var serveConnection: Int?

    @Flag(help: "With --scenario or --serve: exit after the first play, 0 if every step passed, 1 if not (for CI).")
    var once = false

    @Option(name: .customLong("admin-token"), help: "Token the admin API (/api/…) wants as Authorization: Bearer; required when a listener with the admin API is not on a loopback address.")
    var adminToken: String?

    @Option(name: .customLong("log-level"), help: "trace … critical (default info).")
    var logLevel: String?

    @OptionGroup(title: "Browser pages") var browser: BrowserAccessOptions

    @Option(help: ArgumentHelp("A file of NAME:PASSWORD lines: every MQTT CONNECT must carry one of them (else CONNACK bad user name or password). Needed, or --admin-token (then the token is the password) or --insecure-remote, when an MQTT listener is on an address other machines reach.", valueName: "file"))
    var users: String?

    @Option(name: .customLong("max-connections"), help: "Open connections at once over all listeners; one more gets 503 (HTTP) or is closed (TCP). Default: what the open-file limit allows (ulimit -n less 64).")
    var maximumConnections: Int?

    @Option(name: .customLong("max-queued-bytes"), help: "Bytes one client may leave unread (default 4 MiB, mosquitto's max_queued_bytes): past it its QoS 0 messages are dropped and counted, retained ones wait, and after --stuck-timeout it is disconnected.")
    var maximumQueuedBytes: Int?

    @Option(name: .customLong("stuck-timeout"), help: "Seconds a client may stay over --max-queued-bytes unread before it is disconnected (default 30).")
    var stuckTimeout: Double?

    @Option(name: .customLong("max-subscriptions"), help: "Subscriptions one client may hold (default 10000); filters past it are refused in the SUBACK (3.1.1 0x80, 5.0 0x97).")
    var maximumSubscriptions: Int?

    @Flag(name: .customLong("insecure-remote"), help: "Let any MQTT client of the network in on a non-loopback listener without credentials.")
    var insecureRemote = false

    /// A file's text, parsed; a file that cannot be read or parsed ends wmq-mock with exit code 3,
    /// named with the reason.
    static func load<T>(_ path: String, _ parse: (String) throws -> T) throws -> T {
        let text: String
        do {
            text = try readTextFile(path)
        } catch {
            throw unreadableInput("wmq-mock", error.reason)
        }
        do {
            return try parse(text)
        } catch {
            throw unreadableInput("wmq-mock", "\(path): \(error)")
        }
    }

    /// The configuration file's settings, then the command line's.
    func settings() throws -> MockSettings {
        var settings = mode == .chat ? MockSettings.seedChat : MockSettings()
        if let config { settings = try Self.load(config) { text in try MockSettings(toml: text) } }
        if let mode { settings.mode = mode }
        // Chat mode stands in for rumqttd, whose listeners speak MQTT 3.1.1 only.
        let versions: MockSettings.Versions = settings.mode == .chat ? .version3 : .any
        // Listeners given on the command line replace chat mode's default pair.
        if mode == .chat, config == nil, ws != nil || tcp != nil {
            settings.webSocket = []
            settings.tcp = []
        }
        do {
            if let ws {
                let address = try MockSettings.address(ws, "--ws")
                settings.webSocket = [.init(host: address.host, port: address.port, versions: versions)]
            }
            if let tcp {
                let address = try MockSettings.address(tcp, "--tcp")
                settings.tcp = [.init(host: address.host, port: address.port, versions: versions)]
            }
            if let admin {
                let address = try MockSettings.address(admin, "--admin")
                settings.admin = .init(host: address.host, port: address.port)
            }
        } catch {
            throw ValidationError(error.reason)
        }
        if let cookies { settings.cookiesFile = cookies }
        if noPingResponse { settings.answersPing = false }
        if let redelivery {
            guard redelivery > 0, redelivery.isFinite else { throw ValidationError("--redelivery takes a positive number of seconds, not \(redelivery)") }
            settings.redeliverySeconds = redelivery
        }
        if let maximumInflight {
            guard (1...65_535).contains(maximumInflight) else { throw ValidationError("--max-inflight takes 1 to 65535") }
            settings.maximumInflight = maximumInflight
        }
        if let maximumPayload {
            guard maximumPayload >= 1 else { throw ValidationError("--max-payload must be positive") }
            settings.maximumPayload = maximumPayload
        }
        if let scenario { settings.scenarioFile = scenario }
        if let serve { settings.serveCapture = serve }
        if let serveConnection { settings.serveConnection = serveConnection }
        if settings.scenarioFile != nil && settings.serveCapture != nil {
            throw ValidationError("give --scenario or --serve, not both")
        }
        if let adminToken { settings.adminToken = adminToken }
        if let logLevel { settings.logLevel = logLevel }
        settings.allowOrigins += browser.allowOrigin
        settings.allowHosts += browser.allowHost
        let exposed = (settings.webSocket + (settings.admin.map { [$0] } ?? [])).filter { !$0.isLoopback }
        if let open = exposed.first, settings.adminToken == nil {
            throw ValidationError("\(open.host):\(open.port) is reachable from other machines: give --admin-token (or [wmq] admin_token) to protect the admin API")
        }
        if let users { settings.usersFile = users }
        if insecureRemote { settings.insecureRemote = true }
        if let maximumQueuedBytes {
            guard maximumQueuedBytes >= 1024 else { throw ValidationError("--max-queued-bytes takes 1024 or more") }
            settings.maximumQueuedBytes = maximumQueuedBytes
        }
        if let stuckTimeout {
            guard stuckTimeout > 0, stuckTimeout.isFinite else { throw ValidationError("--stuck-timeout takes a positive number of seconds") }
            settings.stuckTimeoutSeconds = stuckTimeout
        }
        if let maximumSubscriptions {
            guard maximumSubscriptions >= 1 else { throw ValidationError("--max-subscriptions takes a positive number") }
            settings.maximumSubscriptions = maximumSubscriptions
        }
        if let maximumConnections {
            guard maximumConnections >= 1 else { throw ValidationError("--max-connections takes a positive number") }
            settings.maximumConnections = maximumConnections
        }
        // MQTT that other machines reach takes only clients with credentials, unless asked.
        if let open = (settings.webSocket + settings.tcp).first(where: { !$0.isLoopback }),
           settings.usersFile == nil && settings.adminToken == nil && !settings.insecureRemote {
            throw ValidationError("""
                MQTT on \(open.host):\(open.port) is reachable from other machines: give --users FILE (NAME:PASSWORD lines) \
                or --admin-token (the token is then the MQTT password), or --insecure-remote to let anyone in
                """)
        }
        return settings
    }

    mutating func run() async throws {
        let settings = try settings()
        guard let level = Logger.Level(rawValue: settings.logLevel) else { throw ValidationError("log level: unknown level \(settings.logLevel)") }
        var required: [String: String]?
        if let cookies = settings.cookiesFile {
            do {
                required = MockBroker.cookiePairs(try WorksCookies.load(path: cookies).header)
            } catch {
                throw unreadableInput("wmq-mock", error.reason)
            }
        }
        var loadedScenario: Scenario?
        if let scenario = settings.scenarioFile {
            loadedScenario = try Self.load(scenario) { text in try Scenario(jsonLines: text) }
        } else if let capture = settings.serveCapture {
            do {
                loadedScenario = try RecordedSession.scenario(capture: capture, connection: settings.serveConnection)
            } catch {
                throw unreadableInput("wmq-mock", "\(error)")
            }
        } else if once {
            throw ValidationError("--once needs --scenario or --serve")
        }
        var core = BrokerCore.Configuration(
            maximumInflight: settings.maximumInflight, maximumQueued: settings.maximumQueued,
            maximumClientIDLength: settings.maximumClientIDLength, maximumPayloadSize: settings.maximumPayload,
            answersPing: settings.answersPing, connectionTimeout: .milliseconds(settings.connectionTimeoutMilliseconds),
            topicAliasMaximum: UInt16(settings.topicAliasMaximum), dynamicFilters: settings.dynamicFilters)
        core.maximumSubscriptionsPerClient = settings.maximumSubscriptions
        if let redelivery = settings.redeliverySeconds { core.redeliveryInterval = .milliseconds(Int64(redelivery * 1000)) }
        if let file = settings.usersFile {
            core.credentials = try Self.load(file) { text in try BrokerCore.Credentials(passwordFile: text) }
        } else if let token = settings.adminToken, (settings.webSocket + settings.tcp).contains(where: { !$0.isLoopback }),
                  !settings.insecureRemote {
            core.credentials = BrokerCore.Credentials(sharedPassword: token)
        }
        let logger = Logger(label: "wmq.mock") { label in ConsoleLogHandler(label: label, level: level) }
        for key in settings.ignoredKeys {
            logger.notice("configuration key read past: wmq-mock does not apply it", metadata: ["key": "\(key)"])
        }
        let works = settings.mode == .works
        var browserOptions = BrowserAccessOptions()
        browserOptions.allowOrigin = settings.allowOrigins
        browserOptions.allowHost = settings.allowHosts
        let access = try browserOptions.access().reporting { [logger] text in logger.warning("\(text)") }
        var brokerConfiguration = MockBroker.Configuration(mode: settings.mode, core: core, requiredCookies: required,
                                                          path: settings.path, adminToken: settings.adminToken,
                                                          scenario: loadedScenario)
        brokerConfiguration.access = access
        if let maximum = settings.maximumConnections { brokerConfiguration.maximumConnections = maximum }
        brokerConfiguration.maximumQueuedBytes = settings.maximumQueuedBytes
        brokerConfiguration.stuckTimeout = .milliseconds(Int64(settings.stuckTimeoutSeconds * 1000))
        let broker = MockBroker(configuration: brokerConfiguration, logger: logger)
        let delay = Duration.milliseconds(settings.nextConnectionDelayMilliseconds)
        func options(_ listener: MockSettings.Listener) -> MockBroker.ListenerOptions {
            let accepting: BrokerCore.AcceptedVersions = switch listener.versions {
            case .any: .any
            case .version3: .version3
            case .version5: .version5
            }
            return MockBroker.ListenerOptions(accepting: accepting, acceptDelay: delay)
        }
        for listener in settings.webSocket {
            do {
                let port = try await broker.listenWebSocket(host: listener.host, port: listener.port, options: options(listener))
                let base = "\(Self.hostForURL(listener.host == "0.0.0.0" || listener.host == "::" ? "127.0.0.1" : listener.host)):\(port)"
                Self.announce("ws://\(Self.hostForURL(listener.host)):\(port)\(works ? settings.path : "")")
                // What a frontend developer needs first: where to look, and what to connect to.
                Self.say("  page     http://\(base)/")
                Self.say("  clients  ws://\(base)\(works ? settings.path : "/mqtt (any path)"), subprotocol mqtt"
                         + (works && required != nil ? ", with the configured cookies" : ""))
            } catch {
                throw unreadableInput("wmq-mock", NetworkErrorText.listening(error, host: listener.host, port: listener.port, option: "--ws"))
            }
        }
        for listener in settings.tcp {
            do {
                let port = try await broker.listenTCP(host: listener.host, port: listener.port, options: options(listener))
                Self.announce("mqtt://\(Self.hostForURL(listener.host)):\(port)")
            } catch {
                throw unreadableInput("wmq-mock", NetworkErrorText.listening(error, host: listener.host, port: listener.port, option: "--tcp"))
            }
        }
        if let listener = settings.admin {
            do {
                let port = try await broker.listenAdmin(host: listener.host, port: listener.port)
                Self.announce("http://\(Self.hostForURL(listener.host)):\(port)/")
            } catch {
                throw unreadableInput("wmq-mock", NetworkErrorText.listening(error, host: listener.host, port: listener.port, option: "--admin"))
            }
        }

        let signals = TerminationSignals()
        defer { signals.cancel() }
        let stop = signals.stream
        /// Starts one of the JSON-dialect endpoints on `address` (HOST:PORT) and announces `path`.
        func start(_ option: String, _ address: String, path: String, listen: (String, Int) async throws -> Int) async throws {
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
                throw ValidationError("--\(option) \(address): give HOST:PORT")
            }
            let host = String(address[..<colon])
            do {
                let bound = try await listen(host, port)
                Self.announce("ws://\(Self.hostForURL(host)):\(bound)\(path)")
            } catch {
                throw unreadableInput("wmq-mock", NetworkErrorText.listening(error, host: host, port: port, option: "--\(option)"))
            }
        }
        var echoEndpoint: EchoEndpoint?
        if let echo {
            let endpoint = EchoEndpoint(logger: logger)
            try await start("echo", echo, path: "/ (echo)") { try await endpoint.listen(host: $0, port: $1, access: access) }
            echoEndpoint = endpoint
        }
        defer { if let echoEndpoint { Task { await echoEndpoint.stop() } } }
        var oneBot: OneBotMock?
        if let onebot {
            guard onebotLifecycleTimeout > 0 else { throw ValidationError("--onebot-lifecycle-timeout takes a positive number of seconds") }
            let mock = OneBotMock(configuration: .init(token: onebotToken, lifecycleTimeout: .milliseconds(Int64(onebotLifecycleTimeout * 1000))),
                                  logger: logger)
            try await start("onebot", onebot, path: "/ws/ (OneBot v11)") { try await mock.listen(host: $0, port: $1, access: access) }
            oneBot = mock
        }
        var cocoroMock: CocoroMock?
        if let cocoro {
            let mock = CocoroMock(logger: logger)
            try await start("cocoro", cocoro, path: "/ws/chat/{client_id} (CocoroCore chat)") { try await mock.listen(host: $0, port: $1, access: access) }
            cocoroMock = mock
        }
        defer { if let cocoroMock { Task { await cocoroMock.stop() } } }
        var discordMock: DiscordGatewayMock?
        if let discord {
            guard discordHeartbeat > 0 else { throw ValidationError("--discord-heartbeat takes a positive number of milliseconds") }
            let mock = DiscordGatewayMock(configuration: .init(heartbeatInterval: .milliseconds(discordHeartbeat), token: discordToken,
                                                               delivery: discordDelivery.mode),
                                          logger: logger)
            try await start("discord", discord, path: "/?v=10&encoding=json (Discord gateway)") { try await mock.listen(host: $0, port: $1, access: access) }
            discordMock = mock
        }
        defer { if let discordMock { Task { await discordMock.stop() } } }
        let input = Task { [oneBot, discordMock] in
            await Self.readStandardInput(broker: broker, works: works, oneBot: oneBot, discord: discordMock, logger: logger)
        }
        defer { if let oneBot { Task { await oneBot.stop() } } }
        if once {
            // The first play's end, or Ctrl-C; both children end when cancelled.
            let results = broker.scenarioResults
            let passed = await withTaskGroup(of: Bool?.self) { group in
                group.addTask {
                    for await result in results { return result.passed }
                    return false
                }
                group.addTask {
                    for await _ in stop { return nil }
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            input.cancel()
            await broker.stop()
            if passed == false { throw ExitCode(ToolExit.foundErrors) }
            return
        }
        for await _ in stop { break }
        input.cancel()
        await broker.stop()
    }

    static func announce(_ url: String) {
        say("listening \(url)")
    }

    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data("\(line)\n".utf8))
    }

    static func hostForURL(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// Standard input, one JSON object a line, each to the endpoint its shape names
    /// (``InputRouter``, in MockServer, where tests reach it).
    static func readStandardInput(broker: MockBroker, works: Bool, oneBot: OneBotMock?, discord: DiscordGatewayMock?, logger: Logger) async {
        var router = InputRouter(broker: broker, works: works, oneBot: oneBot, discord: discord, logger: logger)
        for await text in standardInputLines() { await router.route(text) }
    }
}

// The command line takes the mode by its name, as the configuration file does.
extension MockMode: ExpressibleByArgument {}
