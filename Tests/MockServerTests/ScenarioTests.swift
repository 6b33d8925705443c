import MockFiles
import Foundation
import MQTTWire
@testable import MockServer
import NIOCore
import TestSupport
import LiveClock
import Testing
import WorksClient

@Suite struct ScenarioParsingTests {
    @Test func everyStepKind() throws {
        let text = """
            # a comment
            {"notify": {"channel": 1, "sender": "A", "text": "t"}}
            {"read": {"channel": 1, "reader": 2, "upTo": 3}}
            {"publish": {"topic": "a/b", "payload": {"x": 1}, "qos": 2}}

            {"wait": 0.25}
            {"expect": {"type": "puback", "contains": "x"}, "timeout": 3}
            {"delay_acks": 1}
            {"raw": "30 03 00 01 41"}
            {"drop": true}
            {"close": 1001}
            """
        let scenario = try Scenario(jsonLines: text)
        #expect(scenario.steps.map(\.line) == [2, 3, 4, 6, 7, 8, 9, 10, 11])
        guard case .expect(let expectation, let timeout) = scenario.steps[4].step else { Issue.record("not expect"); return }
        #expect(expectation.type == .puback && expectation.contains == "x" && timeout == .seconds(3))
        guard case .raw(let bytes) = scenario.steps[6].step else { Issue.record("not raw"); return }
        #expect(bytes == [0x30, 0x03, 0x00, 0x01, 0x41])
        guard case .wait(let pause) = scenario.steps[3].step else { Issue.record("not wait"); return }
        #expect(pause == .milliseconds(250))
    }

    @Test(arguments: [("{\"jump\": 1}", 1), ("{\"wait\": -1}", 1), ("{\"raw\": \"zz\"}", 1), ("# c\n{\"close\": 99}", 2),
                      ("{\"expect\": {\"type\": \"NOPE\"}}", 1), ("not json", 1), ("{\"read\": {\"channel\": 1}}", 1),
                      // A notification without text, or with a channel that is no number, is refused at start too.
                      ("{\"delay_acks\": 0}\n{\"notify\": {\"channel\": 1}}", 2), ("{\"notify\": {\"channel\": \"abc\", \"text\": \"x\"}}", 1)])
    func badLinesAreNamed(text: String, line: Int) {
        #expect {
            _ = try Scenario(jsonLines: text)
        } throws: { error in
            (error as? Scenario.ParseError)?.line == line
        }
    }
}

@Suite("wmq-mock scenarios played against WorksClient", .timeLimit(.minutes(1)))
struct ScenarioPlayTests {
    @Test func aScenarioPushesExpectsAndCloses() async throws {
        let scenario = try Scenario(jsonLines: """
            {"notify": {"channel": 42, "sender": "Alice", "text": "first"}}
            {"expect": {"type": "PUBACK"}, "timeout": 5}
            {"read": {"channel": 42, "reader": 7, "upTo": 1}}
            {"publish": {"topic": "custom/topic", "payload": "raw text", "qos": 2}}
            {"expect": {"type": "PUBCOMP"}, "timeout": 5}
            {"expect": {"type": "SUBSCRIBE"}, "timeout": 0.3}
            {"close": 1001}
            """)
        let broker = MockBroker(configuration: .init(mode: .works, scenario: scenario), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/wmqtt")))
        let client = WorksClient(configuration: configuration, logger: quiet)
        let seen = TextLog()
        Task {
            for await event in client.events {
                switch event {
                case .notification(let n, _): await seen.add("notification \(n.text ?? "")")
                case .readReceipt(let r, _): await seen.add("read \(r.readerID ?? 0) \(r.messageSerial ?? 0)")
                case .otherMessage(let m): await seen.add("other \(m.publish.topicName) \(String(buffer: m.publish.payload))")
                case .error(let e): await seen.add("error \(e.reason)")
                default: break
                }
            }
        }
        let results = Task { () -> ScenarioResult? in
            for await result in broker.scenarioResults { return result }
            return nil
        }
        try await client.connect()
        let result = try #require(await results.value)
        // The client never subscribes, so the third expectation fails: a failing step is reported, by line.
        #expect(result.failures.count == 1, "\(result.failures)")
        #expect(result.failures.first?.hasPrefix("line 6: expect SUBSCRIBE") == true, "\(result.failures)")
        let complete = await seen.wait {
            $0 == ["notification first", "read 7 1", "other custom/topic raw text", "error the server closed the WebSocket with code 1001"]
        }
        let lines = await seen.lines
        #expect(complete, "\(lines)")
        await client.disconnect()
    }

    @Test func delayedAcknowledgementsArriveLateButArrive() async throws {
        let scenario = try Scenario(jsonLines: "{\"delay_acks\": 0.4}\n{\"wait\": 5}\n")
        let clock = LiveClock.manual()
        let broker = MockBroker(configuration: .init(scenario: scenario), logger: quiet, clock: clock)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let client = WorksClient(configuration: WorksClientConfiguration(
            webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/mqtt"))), logger: quiet)
        try await client.connect()
        // The play's first step has set the delay (a fixed sleep here was too short on a busy machine).
        #expect(await waitUntil(seconds: 10) { await broker.plays.values.contains { $0.acknowledgementDelay > .zero } })
        for qos in [QoS.atLeastOnce, .exactlyOnce] {
            let acknowledged = Flag()
            let published = Task {
                try await client.publish(topic: "t", payload: ByteBuffer(string: "x"), qos: qos)
                await acknowledged.set()
            }
            // Late by 0.4 s of the broker's clock, but there: the bug this guards against delayed them forever.
            #expect(await waitUntil { clock.sleeping >= 2 })  // the ticker and the acknowledgement
            clock.advance(by: .milliseconds(300))
            try await Task.sleep(for: .milliseconds(100))
            #expect(await !acknowledged.value, "QoS \(qos.rawValue) acknowledged early")
            // QoS 2: PUBREC, then PUBCOMP, each delayed.
            for _ in 0..<(qos == .exactlyOnce ? 2 : 1) {
                #expect(await waitUntil { clock.sleeping >= 2 })
                clock.advance(by: .milliseconds(400))
            }
            try await published.value
            #expect(await acknowledged.value, "QoS \(qos.rawValue)")
        }
        await client.disconnect()
    }
}

/// `wmq-mock`, the built binary.
@Suite("wmq-mock command", .serialized, .timeLimit(.minutes(1)))
struct MockToolTests {
    static func binary() -> String { TestEnvironment.builtBinary("wmq-mock") }

    /// Starts wmq-mock; returns the process, its output pipe and its stderr pipe.
    func start(_ arguments: [String]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary())
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, output, errors)
    }

    func exitStatus(_ process: Process, seconds: Double = 20) async -> Int32? {
        await blocking { TestSupport.exitStatus(of: process, seconds: seconds) }
    }

    func file(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-scenario-\(UUID().uuidString).jsonl")
        try Data(text.utf8).write(to: url)
        return url
    }

    @Test(arguments: [(#"{"notify": {"channel": 1, "sender": "S", "text": "hi"}}\#n{"expect": {"type": "PUBACK"}, "timeout": 5}"#, Int32(0)),
                      (#"{"expect": {"type": "SUBSCRIBE"}, "timeout": 0.3}"#, Int32(1))])
    func onceExitsWithTheScenariosOutcome(script: String, status: Int32) async throws {
        let scenario = try file(script)
        defer { try? FileManager.default.removeItem(at: scenario) }
        let (process, output, _) = try start(["--mode", "works", "--ws", "127.0.0.1:0", "--scenario", scenario.path, "--once", "--log-level", "error"])
        let line = await blocking { String(decoding: output.fileHandleForReading.availableData, as: UTF8.self) }
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0.split(separator: "/").first ?? "") }, "\(line)")
        let client = WorksClient(configuration: WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/wmqtt"))), logger: quiet)
        try await client.connect()
        #expect(await exitStatus(process) == status)
        await client.disconnect()
    }

    @Test(arguments: [(["--once"], Int32(2), "--once needs --scenario"),
                      (["--scenario", "/nonexistent.jsonl"], Int32(3), "/nonexistent.jsonl: no such file"),
                      (["--ws", "0.0.0.0:0"], Int32(2), "--admin-token"),
                      (["--ws", "nonsense"], Int32(2), "HOST:PORT"),
                      // MQTT other machines reach wants credentials, or to be told it may go without.
                      (["--ws", "127.0.0.1:0", "--tcp", "0.0.0.0:0"], Int32(2), "--users FILE"),
                      (["--ws", "127.0.0.1:0", "--tcp", "0.0.0.0:0", "--users", "/nonexistent-users"], Int32(3), "/nonexistent-users"),
                      (["--ws", "127.0.0.1:0", "--allow-origin", "localhost:5173"], Int32(2), "--allow-origin localhost:5173: give an origin"),
                      (["--ws", "127.0.0.1:0", "--allow-host", "a b"], Int32(2), "--allow-host a b"),
                      (["--ws", "127.0.0.1:0", "--discord", "127.0.0.1"], Int32(2), "--discord 127.0.0.1: give HOST:PORT"),
                      (["--ws", "127.0.0.1:0", "--discord", "127.0.0.1:0", "--discord-heartbeat", "0"], Int32(2), "--discord-heartbeat"),
                      (["--ws", "127.0.0.1:0", "--discord-delivery", "sometimes"], Int32(2), "append"),
                      (["--mode", "gossip"], Int32(2), "chat")])
    func badInvocations(arguments: [String], status: Int32, message: String) async throws {
        let (process, _, errors) = try start(arguments)
        #expect(await exitStatus(process) == status)
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains(message), "\(text)")
    }

    /// MQTT on every interface with --users: a CONNECT without a listed user name and
    /// password gets return code 4, one with them is accepted.
    @Test func aUsersFileGuardsARemoteListener() async throws {
        let users = try file("# who may connect\nalice:wonder land\n")
        defer { try? FileManager.default.removeItem(at: users) }
        let mock = try Background(Self.binary(), ["--ws", "127.0.0.1:0", "--tcp", "0.0.0.0:0", "--users", users.path, "--log-level", "error"])
        defer { mock.stop() }
        let line = try await mock.awaiting("listening mqtt://0\\.0\\.0\\.0:[0-9]+")
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) }, "\(line)")
        func connack(user: String?, password: String?) async throws -> [UInt8] {
            var flags: UInt8 = 0x02
            var payload: [UInt8] = [0, 1, 0x63]
            if let user { flags |= 0x80; payload += [0, UInt8(user.utf8.count)] + Array(user.utf8) }
            if let password { flags |= 0x40; payload += [0, UInt8(password.utf8.count)] + Array(password.utf8) }
            let body: [UInt8] = [0, 4, 0x4D, 0x51, 0x54, 0x54, 4, flags, 0, 60] + payload
            let socket = try RawSocket(port: port)
            socket.send(bytes: [0x10, UInt8(body.count)] + body)
            return await blocking { socket.receiveBytes(timeout: 5) }
        }
        #expect(try await connack(user: nil, password: nil).prefix(4) == [0x20, 2, 0, 4])
        #expect(try await connack(user: "alice", password: "wonder").prefix(4) == [0x20, 2, 0, 4])
        #expect(try await connack(user: "alice", password: "wonder land").prefix(4) == [0x20, 2, 0, 0])
    }

    @Test func aRumqttdConfigurationStartsTheMockAsConfigured() async throws {
        // rumqttd's listener section as is (port 0: a free one), plus wmq-mock's own keys.
        let config = try file("""
            [ws.1]
            name = "ws-1"
            listen = "127.0.0.1:0"
            next_connection_delay_ms = 1
                [ws.1.connections]
                connection_timeout_ms = 60000
                max_payload_size = 20480
                max_inflight_count = 500
                dynamic_filters = true
            [wmq]
            mode = "works"
            admin = "127.0.0.1:0"
            """)
        defer { try? FileManager.default.removeItem(at: config) }
        let (process, output, errors) = try start(["--config", config.path, "--log-level", "notice"])
        defer { kill(process.processIdentifier, SIGKILL) }
        var announced = ""
        // Both listeners announce themselves; stop reading once both lines are in (or output ends).
        while !(announced.contains("listening ws:") && announced.contains("listening http:")) {
            let chunk = await blocking { String(decoding: output.fileHandleForReading.availableData, as: UTF8.self) }
            if chunk.isEmpty { break }
            announced += chunk
        }
        let lines = announced.split(separator: "\n").map(String.init)
        let webSocket = try #require(lines.first { $0.hasPrefix("listening ws://127.0.0.1:") && $0.hasSuffix("/wmqtt") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("listening http://127.0.0.1:") }, "\(lines)")
        let url = String(webSocket.dropFirst("listening ".count))
        let client = WorksClient(configuration: WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL(url))), logger: quiet)
        try await client.connect()
        await client.disconnect()
        kill(process.processIdentifier, SIGINT)
        #expect(await exitStatus(process) == 0)
        // The keys it reads past are named, not silently dropped.
        let notices = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(notices.contains("[ws.1] name"), "\(notices)")
    }

    @Test func serveARecordingOnceThenExit() async throws {
        let capture = RecordedSessionTests.captures.appendingPathComponent("works-sample.pcapng").path
        let (process, output, _) = try start(["--mode", "works", "--ws", "127.0.0.1:0", "--serve", capture, "--once", "--log-level", "error"])
        defer { kill(process.processIdentifier, SIGKILL) }
        let line = await blocking { String(decoding: output.fileHandleForReading.availableData, as: UTF8.self) }
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0.split(separator: "/").first ?? "") }, "\(line)")
        let client = WorksClient(configuration: WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/wmqtt"))), logger: quiet)
        try await client.connect()
        #expect(await exitStatus(process) == 0)
        await client.disconnect()
    }

    @Test func aBadConfigurationIsNamedWithItsLine() async throws {
        let config = try file("[ws.1]\nlisten = \"127.0.0.1:0\"\nmax_payload_size = -1\n")
        defer { try? FileManager.default.removeItem(at: config) }
        let (process, _, errors) = try start(["--config", config.path])
        #expect(await exitStatus(process) == 3)
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(message.contains("line 3: [ws.1] max_payload_size must be an integer"), "\(message)")
    }

    @Test func aBadScenarioLineIsNamed() async throws {
        let scenario = try file("{\"wait\": 1}\n{\"fly\": true}\n")
        defer { try? FileManager.default.removeItem(at: scenario) }
        let (process, _, errors) = try start(["--scenario", scenario.path, "--ws", "127.0.0.1:0"])
        #expect(await exitStatus(process) == 3)
        #expect(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("scenario line 2"))
    }
}

/// "Serve this recorded session": the committed Works sample capture served to WorksClient.
@Suite("wmq-mock serving a recorded session", .timeLimit(.minutes(1)))
struct RecordedSessionTests {
    static let captures = TestEnvironment.root.appendingPathComponent("captures")

    @Test(arguments: ["works-sample.pcap", "works-sample.pcapng", "works-sample.har"])
    func theRecordedServerSideIsServed(file: String) async throws {
        let scenario = try RecordedSession.scenario(capture: Self.captures.appendingPathComponent(file).path)
        // The four PUBLISHes of the recording's server, with the recorded pauses between them.
        let publishes = scenario.steps.compactMap { step -> String? in
            if case .publish(let topic, _, let qos) = step.step { "\(topic) \(qos.rawValue)" } else { nil }
        }
        #expect(publishes == ["notification 1", "notification 1", "notification 0", "notification 0"])
        let broker = MockBroker(configuration: .init(mode: .works, scenario: scenario), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let client = WorksClient(configuration: WorksClientConfiguration(
            webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/wmqtt"))), logger: quiet)
        let seen = TextLog()
        Task {
            for await event in client.events {
                switch event {
                case .notification(let n, _): await seen.add(n.text ?? (n.sticker.map { "sticker \($0.stickerID)" } ?? "?"))
                case .readReceipt(let r, _): await seen.add("read \(r.readerID ?? 0) \(r.messageSerial ?? 0)")
                case .channelMessage(let m, _): await seen.add("channel \(m.message ?? "")")
                default: break
                }
            }
        }
        try await client.connect()
        let complete = await seen.wait(seconds: 10) { $0.count >= 4 }
        let lines = await seen.lines
        #expect(complete, "\(lines)")
        #expect(lines.first == "明日のリリース、準備できました👍")
        #expect(lines.dropFirst(2) == ["read 110002 1002", "channel Standup in 5 minutes"])
        await client.disconnect()
    }

    @Test func aConnectionWithoutServerPublishesIsRefusedByName() throws {
        let path = Self.captures.appendingPathComponent("works-sample.pcap").path
        #expect {
            _ = try RecordedSession.scenario(capture: path, connection: 7)
        } throws: { error in
            "\(error)".contains("no MQTT connection c7 (those whose server published: c1)")
        }
        #expect(throws: RecordedSession.Failure.self) { try RecordedSession.scenario(capture: "/nonexistent.pcap") }
    }
}

/// wmq-mock's standard input, line by line, without a process: each line to the endpoint its
/// shape names, refusals said.
@Suite("wmq-mock's input router")
struct InputRouterTests {
    @Test func linesGoWhereTheirShapeSays() async throws {
        let broker = MockBroker(configuration: .init(mode: .works), logger: quiet)
        var router = InputRouter(broker: broker, works: true, oneBot: nil, discord: nil, logger: quiet)
        #expect(await router.route("not json") == .refused("not a JSON object"))
        #expect(await router.route(#"{"channel": 42, "sender": "Alice", "text": "early"}"#) == .notificationHeld(held: 1))
        #expect(await router.route(#"{"topic": "status/a", "payload": "on", "retain": true}"#) == .published(topic: "status/a"))
        guard case .refused(let why) = await router.route(#"{"channel": "abc", "text": "x"}"#) else {
            Issue.record("a channel that is no number was taken")
            return
        }
        #expect(why.contains("channel number"))
        var plain = InputRouter(broker: broker, works: false, oneBot: nil, discord: nil, logger: quiet)
        guard case .refused(let usage) = await plain.route(#"{"text": "hi"}"#) else {
            Issue.record("a plain broker took a notification")
            return
        }
        #expect(usage.contains("OneBot event"))
        await broker.stop()
    }
}

private actor Flag {
    private(set) var value = false
    func set() { value = true }
}
