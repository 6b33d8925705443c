import Dialects
import Foundation
import Logging
import MockServer
import TestSupport
import Testing
import ChatClients
import WorksClient

/// What the client's callbacks saw, awaited with a deadline.
actor Seen {
    struct Snapshot: Sendable {
        var messages: [JSONValue] = []
        var connects = 0
        var disconnects: [WorksClientError] = []
        var errors: [WorksClientError] = []
    }
    private(set) var now = Snapshot()

    func message(_ json: JSONValue) { now.messages.append(json) }
    func connected() { now.connects += 1 }
    func disconnected(_ error: WorksClientError) { now.disconnects.append(error) }
    func failed(_ error: WorksClientError) { now.errors.append(error) }

    /// Waits (at most `seconds`) until `condition` holds.
    func until(seconds: Double = 10, _ condition: (Snapshot) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition(now) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(now)
    }

    func wire(_ client: OneBotClient) async {
        await client.onMessage { json in await self.message(json) }
        await client.onConnect { await self.connected() }
        await client.onDisconnect { error in await self.disconnected(error) }
        await client.onError { error in await self.failed(error) }
    }
}

/// Every message a OneBot mock received so far, read from its stream on a task of its own.
actor MockInbox {
    private(set) var messages: [JSONValue] = []
    private var reader: Task<Void, Never>?

    init(_ mock: OneBotMock) {
        let stream = mock.received
        Task { await self.start(stream) }
    }

    private func start(_ stream: AsyncStream<JSONValue>) {
        reader = Task { for await json in stream { self.add(json) } }
    }

    private func add(_ json: JSONValue) { messages.append(json) }

    func until(seconds: Double = 10, _ condition: ([JSONValue]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition(messages) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(messages)
    }
}

func isLifecycleConnect(_ json: JSONValue) -> Bool { json["meta_event_type"] == .string("lifecycle") && json["sub_type"] == .string("connect") }
func isHeartbeat(_ json: JSONValue) -> Bool { json["meta_event_type"] == .string("heartbeat") }

/// The OneBot client (the OneBot seed's `WebSocketClient`, docs/protocols.md §2): against wmq-mock's OneBot endpoint, in
/// process, and against a bot written with aiocqhttp, a OneBot SDK from PyPI.
@Suite("OneBot client", .serialized, .timeLimit(.minutes(2)))
struct OneBotClientTests {
    static let logger = Logger(label: "test.onebot") { _ in SwiftLogNoOpLogHandler() }

    static func client(port: Int, token: String? = nil, attempts: Int = 0, heartbeat: Duration = .seconds(30),
                       reconnect: Duration = .milliseconds(200)) throws -> OneBotClient {
        OneBotClient(configuration: .init(url: try WebSocketURL("ws://127.0.0.1:\(port)/ws/"), botID: 4242,
                                          reconnectInterval: reconnect, maximumReconnectAttempts: attempts,
                                          heartbeatInterval: heartbeat, accessToken: token),
                     logger: logger)
    }

    @Test func itAnnouncesItselfBeatsSendsTextsAndReconnects() async throws {
        let mock = OneBotMock(configuration: .init(token: "s3cret"), logger: Self.logger)
        let port = try await mock.listen(host: "127.0.0.1", port: 0)
        defer { Task { await mock.stop() } }
        let inbox = MockInbox(mock)
        let client = try Self.client(port: port, token: "s3cret", heartbeat: .milliseconds(250))
        let seen = Seen()
        await seen.wire(client)
        let running = Task { await client.run() }
        defer { running.cancel() }

        #expect(await seen.until { $0.connects == 1 })
        // The lifecycle event came first, so the seed's 1 s rule does not close the connection.
        #expect(await inbox.until { $0.first.map(isLifecycleConnect) == true })
        #expect(await inbox.until { $0.filter(isHeartbeat).count >= 5 }, "past the seed server's 1 s rule")
        let connected = await client.isConnected
        let lost = await seen.now.disconnects
        #expect(connected && lost.isEmpty)
        let beat = try #require(await inbox.messages.first(where: isHeartbeat))
        #expect(beat["interval"] == .integer(250) && beat["self_id"] == .integer(4242) && beat["status"]?["online"] == .bool(true))

        let privateID = try await client.sendText("Hello!", type: .private, targetID: 67890)
        let groupID = try await client.sendText("Hello, everyone!", type: .group, groupID: 123456)
        #expect(groupID > privateID)
        #expect(await inbox.until { $0.contains { $0["raw_message"] == .string("Hello, everyone!") } })
        let texts = await inbox.messages.filter { $0["post_type"] == .string("message") }
        #expect(texts.count == 2)
        #expect(texts[0]["message_type"] == .string("private") && texts[0]["target_id"] == .integer(67890) && texts[0]["group_id"] == nil)
        #expect(texts[1]["group_id"] == .integer(123456) && texts[1]["message_format"] == .string("array"))
        #expect(texts[1]["message"] == OneBotMessages.segments("Hello, everyone!") && texts[1]["message_id"] == .integer(groupID))
        // Both annotate as the dialect shows them.
        var calls: [String: String] = [:]
        let summary = OneBotDialect().annotate(texts[1], calls: &calls).summary
        #expect(summary.contains("group 123456 · user 4242: Hello, everyone!"), "\(summary)")

        // An event pushed by the server reaches the message callback.
        #expect(mock.push(mock.messageEvent(group: 5, user: 6, text: "ping")) == 1)
        #expect(await seen.until { $0.messages.contains { $0["raw_message"] == .string("ping") } })

        // The server goes away: the client notices, waits its interval, comes back and announces itself again.
        let before = ContinuousClock.now
        await mock.closeConnections()
        #expect(await seen.until { $0.connects == 2 })
        #expect(ContinuousClock.now - before >= .milliseconds(200))
        let reason = await seen.now.disconnects.first?.reason
        #expect(reason?.contains("1001") == true, "\(String(describing: reason))")
        #expect(await inbox.until { $0.filter(isLifecycleConnect).count == 2 })
        #expect(await client.connections == 2)

        await client.disconnect()
        #expect(await running.value == nil, "run() ends without an error after disconnect()")
    }

    @Test func aRefusedTokenIsNotRetried() async throws {
        let mock = OneBotMock(configuration: .init(token: "right"), logger: Self.logger)
        let port = try await mock.listen(host: "127.0.0.1", port: 0)
        defer { Task { await mock.stop() } }
        let client = try Self.client(port: port, token: "wrong")
        let seen = Seen()
        await seen.wire(client)
        let ending = await client.run()
        #expect(ending?.code == .authentication, "\(String(describing: ending))")
        let snapshot = await seen.now
        #expect(snapshot.connects == 0 && snapshot.errors.count == 1)
    }

    @Test func attemptsAreCountedAndSpacedWhenNobodyListens() async throws {
        let port = try LoopbackPorts.free()
        let client = try Self.client(port: port, attempts: 3, reconnect: .milliseconds(150))
        let seen = Seen()
        await seen.wire(client)
        let start = ContinuousClock.now
        let ending = await client.run()
        #expect(ending?.code == .connection)
        // The first try and three more, 150 ms apart.
        let errors = await seen.now.errors
        #expect(errors.count == 4)
        #expect(ContinuousClock.now - start >= .milliseconds(450))
    }

    @Test func aTextNeedsItsTarget() async throws {
        let client = try Self.client(port: 1)
        await #expect(throws: WorksClientError(.message, "")) { try await client.sendText("x", type: .group) }
        await #expect(throws: WorksClientError(.message, "")) { try await client.sendText("x", type: .private) }
        await #expect(throws: WorksClientError(.connection, "")) { try await client.sendText("x", targetID: 1) }
    }

    // MARK: Against aiocqhttp

    static let sdk = ReplayPeerTests.root.appendingPathComponent("Tools/peers/onebot_sdk.py").path

    static func startSDK(token: String?) async throws -> (Background, port: Int) {
        let port = try LoopbackPorts.free()
        let bot = try Background(ReplayPeerTests.python, [sdk, "--port", String(port)] + (token.map { ["--token", $0] } ?? []))
        _ = try await bot.awaiting("\\{\"ready\"")
        try await LoopbackPorts.waitUntilAccepting(port)
        return (bot, port)
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func anAiocqhttpBotSeesTheClientAndItsAnswersReachTheBot() async throws {
        let (bot, port) = try await Self.startSDK(token: "t0ken")
        defer { bot.stop() }
        let client = try Self.client(port: port, token: "t0ken", heartbeat: .milliseconds(300))
        let seen = Seen()
        await seen.wire(client)
        let running = Task { await client.run() }
        defer { running.cancel() }
        #expect(await seen.until { $0.connects == 1 })
        // aiocqhttp dispatched the lifecycle event as lifecycle.connect, and heartbeats as heartbeat.
        _ = try await bot.awaiting("\\{\"connect\": 4242\\}")
        _ = try await bot.awaiting("\\{\"heartbeat\": 300\\}")

        try await client.sendText("Hello from wmq", type: .group, groupID: 123456)
        // The bot got the message event and answered it through send_msg over the same socket...
        let event = try await bot.awaiting("\\{\"message\": .*Hello from wmq")
        #expect(event.contains("\"group_id\": 123456") && event.contains("\"self_id\": 4242"))
        #expect(await seen.until { seen in
            seen.messages.contains { $0["action"] == .string("send_msg") && $0["params"]?["group_id"] == .integer(123456) }
        })
        let call = try #require((await seen.now).messages.first { $0["action"] == .string("send_msg") })
        #expect(call["params"]?["message"] == OneBotMessages.segments("echo: Hello from wmq"))
        // ...and the client's answer, matched by aiocqhttp through its echo, came back as the call's result.
        let sent = try await bot.awaiting("\\{\"sent\": \\{\"message_id\": [0-9]+\\}\\}")
        #expect(!sent.isEmpty)
        #expect(!bot.output.contains("\"failed\""), "\(bot.output)")

        await client.disconnect()
        #expect(await running.value == nil)
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func theCommandLineClientTalksToAnAiocqhttpBot() async throws {
        let (bot, port) = try await Self.startSDK(token: "t0ken")
        defer { bot.stop() }
        let record = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-onebot-\(UUID().uuidString).pcap")
        defer { try? FileManager.default.removeItem(at: record) }
        let client = try Background("/usr/bin/env", [
            "WMQ_ONEBOT_TOKEN=t0ken", DecodeTests.binary("wmq-client"), "--onebot", "ws://127.0.0.1:\(port)/ws/",
            "--token-env", "WMQ_ONEBOT_TOKEN", "--bot-id", "4242", "--format", "text", "--heartbeat", "0.3", "--record", record.path,
        ])
        defer { client.stop() }
        _ = try await client.awaiting("lifecycle connect \\(bot 4242\\)")
        _ = try await bot.awaiting("\\{\"connect\": 4242\\}")
        _ = try await client.awaiting("heartbeat every 300 ms")
        client.send("group 123456 Hello from the CLI")
        _ = try await bot.awaiting("\\{\"message\": .*Hello from the CLI")
        // The bot's reply reached the command line as an API call, annotated, and its answer went back.
        _ = try await client.awaiting("call send_msg · group 123456 · user 4242: echo: Hello from the CLI")
        _ = try await client.awaiting("response ok \\(retcode 0, ok\\) to send_msg")
        _ = try await bot.awaiting("\\{\"sent\": \\{\"message_id\": [0-9]+\\}\\}")
        client.send("nonsense")
        _ = try await client.awaiting("a line is \"private USER TEXT\"")
        client.stop()
        #expect(!client.output.contains("t0ken"), "the token never shows")
        // The recording decodes into the same conversation, with the token redacted.
        let decoded = try DecodeTests.run(["--format", "text", record.path])
        #expect(decoded.output.contains("group 123456 · user 4242: Hello from the CLI"), "\(decoded.output)")
        #expect(!decoded.output.contains("t0ken"))
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func aiocqhttpRefusesAWrongToken() async throws {
        let (bot, port) = try await Self.startSDK(token: "t0ken")
        defer { bot.stop() }
        let ending = await (try Self.client(port: port, token: "nope")).run()
        #expect(ending?.code == .authentication, "\(String(describing: ending))")
    }
}
