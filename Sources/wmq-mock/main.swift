import ArgumentParser
import CommandLineSupport
import Dialects
import Foundation
import Logging
import MockServer
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

            Admin API on the WebSocket port (OpenAPI description at GET /api/openapi.json; CORS open):
              GET /api/clients          clients, subscriptions, pending messages
              POST /api/notify          {"channel", "sender", "text" or "sticker"}
              POST /api/publish         {"topic", "payload", "qos", "retain"}
              DELETE /api/clients/ID    disconnect a client (its will goes out)
            Only loopback by default; on another address --admin-token is required.

            The listeners print their address on standard output ("listening ws://127.0.0.1:PORT")
            once bound; port 0 picks a free one. Ctrl-C stops.

            --scenario FILE plays a JSON Lines script (docs/scenarios.md) against every client once its
            session is accepted; with --once the mock exits after the first play: 0 if every step
            passed, 1 if one failed.

            Exit codes: 0 stopped (or, with --once, the scenario passed); 1 the scenario failed; 2 usage
            error; 3 a file cannot be read or an address cannot be bound.
            """))

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case broker, works
    }

    @Option(help: "WebSocket listener, HOST:PORT.")
    var ws: String = "127.0.0.1:8885"

    @Option(help: "Also a plain MQTT-over-TCP listener, HOST:PORT.")
    var tcp: String?

    @Option(help: "broker or works.")
    var mode: Mode = .broker

    @Option(help: "Works mode: the cookie.json whose cookies a client must send.")
    var cookies: String?

    @Flag(name: .customLong("no-ping-response"), help: "Never answer PINGREQ (the Works service may not).")
    var noPingResponse = false

    @Option(help: "Works mode: seconds before an unacknowledged notification is sent again (default 10).")
    var redelivery: Double?

    @Option(name: .customLong("max-inflight"), help: "Unacknowledged QoS 1/2 messages per session before the rest queue (default 100).")
    var maximumInflight: Int = 100

    @Option(name: .customLong("max-payload"), help: "Largest PUBLISH payload accepted, in bytes (default 8 MiB; rumqttd's max_payload_size).")
    var maximumPayload: Int = 8 << 20

    @Option(help: "A scenario file (JSON Lines, docs/scenarios.md) played against every client once connected.")
    var scenario: String?

    @Flag(help: "With --scenario: exit after the first play, 0 if every step passed, 1 if not (for CI).")
    var once = false

    @Option(name: .customLong("admin-token"), help: "Token the admin API (/api/…) wants as Authorization: Bearer; required when --ws is not a loopback address.")
    var adminToken: String?

    @Option(name: .customLong("log-level"), help: "trace … critical (default info).")
    var logLevel: String = "info"

    static func address(_ text: String, option: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("\(option) takes HOST:PORT, not \(text)")
        }
        let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }

    mutating func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("--log-level: unknown level \(logLevel)") }
        guard maximumInflight >= 1, maximumPayload >= 1 else { throw ValidationError("--max-inflight and --max-payload must be positive") }
        let webSocket = try Self.address(ws, option: "--ws")
        let loopback = webSocket.host == "127.0.0.1" || webSocket.host == "::1" || webSocket.host == "localhost"
        if !loopback && adminToken == nil {
            throw ValidationError("--ws \(ws) is reachable from other machines: give --admin-token to protect the admin API")
        }
        let plain = try tcp.map { try Self.address($0, option: "--tcp") }
        var required: [String: String]?
        if let cookies {
            do {
                required = MockBroker.cookiePairs(try WorksCookies.load(path: cookies).header)
            } catch {
                StandardError.write("wmq-mock: \(error.reason)\n")
                throw ExitCode(ToolExit.unreadableInput)
            }
        }
        var loadedScenario: Scenario?
        if let scenario {
            guard let text = try? String(contentsOfFile: scenario, encoding: .utf8) else {
                StandardError.write("wmq-mock: cannot read \(scenario)\n")
                throw ExitCode(ToolExit.unreadableInput)
            }
            do {
                loadedScenario = try Scenario(jsonLines: text)
            } catch {
                StandardError.write("wmq-mock: \(scenario): \(error)\n")
                throw ExitCode(ToolExit.unreadableInput)
            }
        } else if once {
            throw ValidationError("--once needs --scenario")
        }
        var core = BrokerCore.Configuration(maximumInflight: maximumInflight, maximumPayloadSize: maximumPayload,
                                            answersPing: !noPingResponse)
        if let redelivery { core.redeliveryInterval = .milliseconds(Int64(redelivery * 1000)) }
        let logger = Logger(label: "wmq.mock") { label in ConsoleLogHandler(label: label, level: level) }
        let broker = MockBroker(configuration: .init(mode: mode == .works ? .works : .broker, core: core, requiredCookies: required,
                                                     adminToken: adminToken, scenario: loadedScenario),
                                logger: logger)
        do {
            let port = try await broker.listenWebSocket(host: webSocket.host, port: webSocket.port)
            FileHandle.standardOutput.write(Data("listening ws://\(webSocket.host):\(port)\(mode == .works ? "/wmqtt" : "")\n".utf8))
            if let plain {
                let tcpPort = try await broker.listenTCP(host: plain.host, port: plain.port)
                FileHandle.standardOutput.write(Data("listening mqtt://\(plain.host):\(tcpPort)\n".utf8))
            }
        } catch {
            StandardError.write("wmq-mock: cannot listen: \(error)\n")
            throw ExitCode(ToolExit.unreadableInput)
        }

        let signals = TerminationSignals()
        defer { signals.cancel() }
        let stop = signals.stream
        let input = Task { await Self.readNotifications(into: broker, logger: logger) }
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

    /// Works mode's script: one notification per line of standard input.
    static func readNotifications(into broker: MockBroker, logger: Logger) async {
        var builder = NotificationBuilder()
        // Standard input is read on its own thread: readLine blocks.
        let lines = AsyncStream<String> { continuation in
            Thread.detachNewThread {
                while let line = readLine() { continuation.yield(line) }
                continuation.finish()
            }
        }
        for await line in lines {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { continue }
            do {
                let request = try JSONReader.parse(text)
                let payload = try builder.payload(from: request, now: Int64(Date().timeIntervalSince1970 * 1000))
                let sessions = await broker.pushToAll(payload: payload)
                logger.info("notification pushed", metadata: ["sessions": "\(sessions)"])
            } catch {
                logger.warning("not a notification: \(error)")
            }
        }
    }
}
