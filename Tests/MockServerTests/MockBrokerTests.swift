import Dialects
import Foundation
import Logging
import MQTTWire
import MockFiles
import MockServer
import NIOCore
import NIOPosix
import NIOWebSocket
import TestSupport
import LiveClock
import Testing
import WorksClient

enum PahoPeer {
    static var root: URL { TestEnvironment.root }
    static var python: String { TestEnvironment.python }
    static var present: Bool { TestEnvironment.pythonPresent }
    static var required: Bool { TestEnvironment.peersRequired }

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Runs Tools/peers/paho_check.py SCENARIO against 127.0.0.1:`port`.
    static func run(_ scenario: String, port: Int, protocolLevel: Int = 4) async throws -> [String: Any] {
        try await script("paho_check.py", ["--port", "\(port)", "--protocol", "\(protocolLevel)", scenario])
    }

    /// Runs a script of Tools/peers with the project's Python (at most `seconds`, killed by its id
    /// after) and reads the JSON object it prints, on a thread of its own: waiting must not hold
    /// one of the few threads the broker under test needs.
    static func script(_ name: String, _ arguments: [String], seconds: Double = 30) async throws -> [String: Any] {
        let json = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
            Thread.detachNewThread {
                continuation.resume(with: Result { try runBlocking(name, arguments, seconds: seconds) })
            }
        }
        guard let object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
            throw Failure(description: "\(name) \(arguments.last ?? ""): not JSON")
        }
        return object
    }

    private static func runBlocking(_ name: String, _ arguments: [String], seconds: Double) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [root.appendingPathComponent("Tools/peers/\(name)").path] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        guard exitStatus(of: process, seconds: seconds) != nil else {
            throw Failure(description: "\(name) did not finish in \(Int(seconds)) s")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            let trace = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw Failure(description: "\(name): \(String(decoding: data, as: UTF8.self)) \(trace.suffix(600))")
        }
        return data
    }
}

let quiet = Logger(label: "wmq.test", factory: { _ in SwiftLogNoOpLogHandler() })

@Suite("wmq-mock with real clients", .serialized, .timeLimit(.minutes(2)))
struct MockBrokerTests {
    func broker(_ configuration: MockBroker.Configuration = .init(), clock: LiveClock = .system) async throws -> (MockBroker, Int) {
        let broker = MockBroker(configuration: configuration, logger: quiet, clock: clock)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        return (broker, port)
    }

    /// paho's MQTT 3.1.1 (level 4) and 5.0 clients.
    static let levels = [4, 5]

    @Test(.enabled(if: PahoPeer.present || PahoPeer.required), arguments: levels)
    func pahoPublishesAndSubscribesAtEveryQoS(level: Int) async throws {
        let (broker, port) = try await broker()
        defer { Task { await broker.stop() } }
        let result = try await PahoPeer.run("pubsub", port: port, protocolLevel: level)
        let received = try #require(result["received"] as? [[Any]])
        #expect(received.map { "\($0[0]) \($0[1]) \($0[2])" } == ["t/0 qos 0 0", "t/1 qos 1 1", "t/2 qos 2 2"])
    }

    @Test(.enabled(if: PahoPeer.present || PahoPeer.required), arguments: levels)
    func pahoSeesRetainedMessagesWithTheFlag(level: Int) async throws {
        let (broker, port) = try await broker()
        defer { Task { await broker.stop() } }
        let received = try #require(try await PahoPeer.run("retained", port: port, protocolLevel: level)["received"] as? [[Any]])
        #expect(received.count == 1)
        #expect(received.first?[1] as? String == "kept" && received.first?[3] as? Bool == true)
    }

    @Test(.enabled(if: PahoPeer.present || PahoPeer.required), arguments: levels)
    func aLostPahoClientsWillIsPublished(level: Int) async throws {
        let (broker, port) = try await broker()
        defer { Task { await broker.stop() } }
        let received = try #require(try await PahoPeer.run("will", port: port, protocolLevel: level)["received"] as? [[Any]])
        #expect(received.map { "\($0[0]) \($0[1])" } == ["w/dying gone"])
    }

    @Test(.enabled(if: PahoPeer.present || PahoPeer.required), arguments: levels)
    func aSilentPahoClientIsCutOffAfterOneAndAHalfKeepAlives(level: Int) async throws {
        let (broker, port) = try await broker()
        defer { Task { await broker.stop() } }
        let result = try await PahoPeer.run("keepalive", port: port, protocolLevel: level)
        #expect(result["closed"] as? Bool == true)
        let after = try #require(result["after"] as? Double)
        // Not before 1.5 × keep-alive since CONNECT, and not much later (the broker ticks every 250 ms).
        #expect(after >= 1.5 && after < 4.0, "closed after \(after) s")
    }

    @Test(.enabled(if: PahoPeer.present || PahoPeer.required))
    func pahoVersion5Features() async throws {
        let (broker, port) = try await broker(.init(core: .init(maximumInflight: 50, topicAliasMaximum: 8)))
        defer { Task { await broker.stop() } }
        let result = try await PahoPeer.run("v5", port: port, protocolLevel: 5)
        let connack = try #require(result["connack"] as? [String: Any])
        let announced = try #require(connack["properties"] as? [String: Any])
        #expect(announced["ReceiveMaximum"] as? Int == 50)
        #expect(announced["TopicAliasMaximum"] as? Int == 8)
        // Both messages arrive on the aliased topic, QoS capped at the subscription's 1, with the
        // publisher's user property and expiry and the subscription's identifier; the
        // subscriber's own message does not come back (no local).
        let received = try #require(result["received"] as? [[String: Any]])
        #expect(received.map { "\($0["topic"] ?? "") \($0["payload"] ?? "") \($0["qos"] ?? "")" } == ["t/alias one 1", "t/alias two 1"])
        #expect(received.first?["user"] as? [[String]] == [["trace", "abc"]])
        #expect(received.allSatisfy { $0["subscriptionIdentifier"] as? [Int] == [42] })
        let expiry = try #require(received.first?["expiry"] as? Int)
        #expect(expiry > 0 && expiry <= 30)
        let resumed = try #require(result["resumed"] as? [String: Any])
        #expect(resumed["sessionPresent"] as? Bool == true)
        #expect((resumed["received"] as? [[Any]])?.map { "\($0[0]) \($0[1])" } == ["k/queued while away"])
        let will = try #require(result["will"] as? [String: Any])
        #expect(will["received"] as? Int == 1)
        let delay = try #require(will["after"] as? Double)
        #expect(delay >= 0.9 && delay < 3.5, "will after \(delay) s, delay 1 s")
        #expect(result["rogue"] as? Int == Int(ReasonCode.topicAliasInvalid.rawValue))
    }

    @Test func worksModePushesToWorksClientAndRedelivers() async throws {
        let clock = LiveClock.manual()
        let (broker, port) = try await broker(.init(mode: .works, core: .init(redeliveryInterval: .milliseconds(300)),
                                                    requiredCookies: ["WORKS_SES": "s3cret"]), clock: clock)
        defer { Task { await broker.stop() } }
        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/wmqtt")))
        configuration.webSocket.cookies = WorksCookies(header: "NNB=x; WORKS_SES=s3cret")
        let client = WorksClient(configuration: configuration, logger: quiet)
        let texts = TextLog()
        Task { for await event in client.events { if case .notification(let n, _) = event { await texts.add(n.text ?? "") } } }
        try await client.connect()
        #expect(await broker.connectedClients.count == 1)
        var builder = NotificationBuilder()
        let payload = try builder.payload(from: try JSONReader.parse(#"{"channel": 7, "sender": "Mock", "text": "pushed"}"#), now: 1)
        #expect(await broker.pushToAll(payload: payload) == 1)
        #expect(await texts.wait { $0 == ["pushed"] })
        // Acknowledged: nothing comes again after the redelivery interval, moved past on the
        // broker's clock (its ticker wakes, ticks and sleeps again).
        #expect(await waitUntil { await broker.pending(of: broker.connectedClients.first ?? "")?.inflight == 0 })
        #expect(await waitUntil { clock.sleeping > 0 })
        clock.advance(by: .milliseconds(700))
        #expect(await waitUntil { clock.sleeping > 0 })
        try await Task.sleep(for: .milliseconds(100))  // what a redelivery would take over loopback
        #expect(await texts.lines == ["pushed"])
        await client.disconnect()

        // Wrong cookies: HTTP 401, an authentication error.
        configuration.webSocket.cookies = WorksCookies(header: "WORKS_SES=wrong")
        let refused = WorksClient(configuration: configuration, logger: quiet)
        await #expect(throws: WorksClientError(.authentication, "")) { try await refused.connect() }
    }

    @Test func garbageFramesCutOneClientOffAndOthersKeepWorking() async throws {
        let (broker, port) = try await broker()
        defer { Task { await broker.stop() } }
        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/mqtt")))
        configuration.mqtt.subscriptions = [.init(topicFilter: "news/#", qos: .atLeastOnce)]
        let good = WorksClient(configuration: configuration, logger: quiet)
        let texts = TextLog()
        Task { for await event in good.events { if case .notification(let n, _) = event { await texts.add(n.text ?? "") } } }
        try await good.connect()
        #expect(await waitUntil { await broker.connectedClients.count == 1 })

        // A raw TCP client sends an upgrade, then garbage instead of MQTT.
        let hostile = try RawSocket(port: port)
        hostile.send("GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
        #expect(await blocking { hostile.receive() }.hasPrefix("HTTP/1.1 101"))
        hostile.send(bytes: [0x82, 0x84, 1, 2, 3, 4, 0xF1, 0xF2, 0xF3, 0xF4])  // one masked binary frame: not MQTT
        #expect(await blocking { hostile.receive(timeout: 5) }.isEmpty, "the broker closes the hostile connection")

        await broker.publish(PublishPacket(qos: .atLeastOnce, topicName: "news/1", payload: ByteBuffer(string: #"{"nType":1,"loc-args0":"S","loc-args1":"still here"}"#)))
        #expect(await texts.wait { $0 == ["still here"] })
        await good.disconnect()
    }
}

@Suite("wmq-mock against hostile clients", .serialized, .timeLimit(.minutes(2)))
struct HostileClientTests {
    /// A broker whose missing-CONNECT timeout is 10 s unless a test is about that timeout: on a
    /// loaded CI machine a CONNECT once arrived more than 1 s after the upgrade, and a test about
    /// something else saw its connection cut off.
    func broker(connectionTimeout: Duration = .seconds(10)) async throws -> (MockBroker, Int) {
        let broker = MockBroker(configuration: .init(core: .init(connectionTimeout: connectionTimeout)), logger: quiet)
        return (broker, try await broker.listenWebSocket(host: "127.0.0.1", port: 0))
    }

    static let upgrade = "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"

    /// Handshakes the broker does not upgrade are told why in RFC 6455's terms, never served the
    /// page: version 8 gets 426 naming version 13, a missing key 400, no MQTT subprotocol 400.
    @Test(arguments: [
        ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", "HTTP/1.1 426", "sec-websocket-version: 13"),
        ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", "HTTP/1.1 400", "Sec-WebSocket-Key"),
        ("Sec-WebSocket-Protocol: mqtt\r\n", "", "HTTP/1.1 400", "offer the subprotocol mqtt"),
    ])
    func aBadHandshakeIsRefusedWithItsReason(replace: String, with: String, status: String, says: String) async throws {
        let (broker, port) = try await broker()
        defer { Task { await broker.stop() } }
        let socket = try RawSocket(port: port)
        socket.send(Self.upgrade.replacingOccurrences(of: replace, with: with).replacingOccurrences(of: "GET /mqtt", with: "GET /"))
        let answer = await blocking { socket.receive(timeout: 3) }
        #expect(answer.hasPrefix(status), "\(answer)")
        #expect(answer.lowercased().contains(says.lowercased()), "\(answer)")
        #expect(!answer.contains("<html"), "the page was served: \(answer.prefix(200))")
    }

    /// A text frame on the MQTT endpoint: Close 1003 (RFC 6455 §7.1.7), not a silent end.
    @Test func aTextFrameIsUnsupportedData() async throws {
        let (broker, port) = try await broker()
        defer { Task { await broker.stop() } }
        let socket = try RawSocket(port: port)
        socket.send(Self.upgrade)
        #expect(await blocking { socket.receive() }.hasPrefix("HTTP/1.1 101"))
        socket.send(bytes: [0x81, 0x82, 1, 2, 3, 4, 0x69 ^ 1, 0x21 ^ 2])  // "i!" as text, masked
        let close = await blocking { socket.receiveBytes() }
        #expect(close.starts(with: [0x88, 0x02, 0x03, 0xEB]), "\(close)")
    }

    /// Stopping (Ctrl-C): a 5.0 session gets DISCONNECT 0x8B, every WebSocket a Close 1001.
    @Test func stoppingSaysGoodbye() async throws {
        let (broker, port) = try await broker()
        let client = try RawSocket(port: port)
        client.send(Self.upgrade)
        #expect(await blocking { client.receive() }.hasPrefix("HTTP/1.1 101"))
        // CONNECT, MQTT 5.0, client id "bye".
        client.send(bytes: Self.maskedFrame([0x10, 0x10, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x05, 0x02, 0x00, 0x3C, 0x00,
                                                        0x00, 0x03, 0x62, 0x79, 0x65]))
        // Waited for up to 10 s: on a loaded machine the first answer took over 2 s.
        let connack = await blocking { client.receiveBytes(timeout: 10) }
        #expect(connack.starts(with: [0x82]) && connack.count >= 4 && connack[2] == 0x20, "\(connack)")
        await broker.stop()
        let goodbye = await blocking { client.receiveBytes(timeout: 3) }
        // A binary frame holding DISCONNECT with reason 0x8B, then a Close frame with 1001.
        let disconnect = goodbye.firstIndex(of: 0xE0)
        #expect(disconnect.map { goodbye.count > $0 + 2 && goodbye[$0 + 2] == 0x8B } == true, "\(goodbye)")
        let close = goodbye.firstIndex(of: 0x88)
        #expect(close.map { goodbye.count > $0 + 3 && goodbye[$0 + 2] == 0x03 && goodbye[$0 + 3] == 0xE9 } == true, "\(goodbye)")
    }

    @Test func anUpgradeDribbledInIsCutOff() async throws {
        let (broker, port) = try await broker(connectionTimeout: .seconds(1))
        defer { Task { await broker.stop() } }
        let slow = try RawSocket(port: port)
        let started = ContinuousClock.now
        var closed = false
        for byte in Self.upgrade.utf8.prefix(10) {
            slow.send(bytes: [byte])
            if await blocking({ slow.isClosed(within: 0.3) }) { closed = true; break }
        }
        #expect(closed)
        #expect(ContinuousClock.now - started < .seconds(3))
    }

    @Test func noConnectAfterTheUpgradeIsCutOff() async throws {
        let (broker, port) = try await broker(connectionTimeout: .seconds(1))
        defer { Task { await broker.stop() } }
        let idle = try RawSocket(port: port)
        idle.send(Self.upgrade)
        #expect(await blocking { idle.receive() }.hasPrefix("HTTP/1.1 101"))
        #expect(await blocking { idle.isClosed(within: 3) })
        #expect(await waitUntil { await broker.openConnections == 0 })
    }

    @Test func aThousandConnectionsOpenedAndDroppedLeaveNothingBehind() async throws {
        let (broker, port) = try await broker(connectionTimeout: .seconds(1))
        defer { Task { await broker.stop() } }
        for index in 0..<1000 {
            let socket = try RawSocket(port: port)
            if index % 2 == 0 { socket.send(Self.upgrade) }  // half upgrade first, half say nothing
        }
        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/mqtt")))
        configuration.mqtt.subscriptions = [.init(topicFilter: "t", qos: .atMostOnce)]
        let client = WorksClient(configuration: configuration, logger: quiet)
        try await client.connect()
        #expect(await waitUntil(seconds: 10) { await broker.openConnections == 1 })
        #expect(await broker.connectedClients.count == 1)
        await client.disconnect()
    }

    @Test func anOversizePacketIsCutOff() async throws {
        let broker = MockBroker(configuration: .init(core: .init(maximumPayloadSize: 1000)), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let big = try RawSocket(port: port)
        big.send(Self.upgrade)
        #expect(await blocking { big.receive() }.hasPrefix("HTTP/1.1 101"))
        // CONNECT, then a PUBLISH announcing a 100,000-byte body: refused by the decoder's limit.
        let connect: [UInt8] = [0x10, 0x0D, 0, 4, 0x4D, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 1, 0x61]
        big.send(bytes: Self.maskedFrame(connect))
        _ = await blocking { big.receive() }
        big.send(bytes: Self.maskedFrame([0x30, 0xA0, 0x8D, 0x06, 0, 1, 0x74]))
        #expect(await blocking { big.isClosed(within: 3) })
    }

    static func maskedFrame(_ payload: [UInt8]) -> [UInt8] {
        let key: [UInt8] = [9, 8, 7, 6]
        return [0x82, 0x80 | UInt8(payload.count)] + key + payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
    }
}

@Suite("wmq-mock admin API", .serialized, .timeLimit(.minutes(1)))
struct AdminAPITests {
    /// One HTTP/1.1 request on a new connection; returns the status and the body.
    func request(_ method: String, _ path: String, port: Int, body: String = "", headers: [String] = []) async -> (Int, String) {
        await blocking { Self.requestBlocking(method, path, port: port, body: body, headers: headers) }
    }

    static func requestBlocking(_ method: String, _ path: String, port: Int, body: String, headers: [String]) -> (Int, String) {
        guard let socket = try? RawSocket(port: port) else { return (0, "") }
        let extra = headers.map { $0 + "\r\n" }.joined()
        socket.send("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let response = socket.receive(timeout: 5)
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? 0
        let text = response.range(of: "\r\n\r\n").map { String(response[$0.upperBound...]) } ?? ""
        return (status, text)
    }

    @Test func notifyPublishListAndKick() async throws {
        let broker = MockBroker(configuration: .init(mode: .works), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/wmqtt")))
        configuration.mqtt.clientIdentifier = "web-beejs_000000000001"
        configuration.mqtt.subscriptions = [.init(topicFilter: "raw/#", qos: .atLeastOnce)]
        configuration.reconnect.maximumAttempts = 1
        let client = WorksClient(configuration: configuration, logger: quiet)
        let texts = TextLog()
        Task {
            for await event in client.events {
                switch event {
                case .notification(let n, _): await texts.add(n.text ?? "")
                case .otherMessage(let m): await texts.add("raw " + String(buffer: m.publish.payload))
                default: break
                }
            }
        }
        try await client.connect()
        #expect(await waitUntil { await broker.subscriptions(of: "web-beejs_000000000001")?["raw/#"] != nil })

        let (listStatus, list) = await request("GET", "/api/clients", port: port)
        #expect(listStatus == 200)
        #expect(list.contains("\"id\":\"web-beejs_000000000001\"") && list.contains("\"raw/#\":1"), "\(list)")

        #expect(await request("POST", "/api/notify", port: port, body: #"{"channel": 3, "sender": "Admin", "text": "from the API"}"#) == (200, "{\"sessions\":1}\n"))
        #expect(await request("POST", "/api/publish", port: port, body: #"{"topic": "raw/x", "payload": "plain", "qos": 1}"#).0 == 200)
        #expect(await texts.wait { $0 == ["from the API", "raw plain"] })

        #expect(await request("POST", "/api/notify", port: port, body: #"{"channel": 3}"#).0 == 400)
        #expect(await request("POST", "/api/publish", port: port, body: #"{"topic": "a/#"}"#).0 == 400)
        #expect(await request("GET", "/api/nothing", port: port).0 == 404)
        #expect(await request("DELETE", "/api/clients/web-beejs_000000000001", port: port).0 == 204)
        #expect(await waitUntil { await broker.connectedClients.isEmpty })
        #expect(await request("DELETE", "/api/clients/web-beejs_000000000001", port: port).0 == 404)
        await client.disconnect()
    }

    /// The newcomer's cases: a channel that is no number, an unknown client, no text; a
    /// notification pushed before anyone connects is kept for the first client that does.
    @Test func notifyRefusesWhatItCannotSendAndKeepsWhatNobodyReceived() async throws {
        let broker = MockBroker(configuration: .init(mode: .works), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let (badChannel, why) = await request("POST", "/api/notify", port: port, body: #"{"channel": "abc", "text": "hi"}"#)
        #expect(badChannel == 400 && why.contains("channel number"), "\(why)")
        #expect(await request("POST", "/api/notify", port: port, body: #"{"channel": 3, "text": 5}"#).0 == 400)
        let (unknown, unknownWhy) = await request("POST", "/api/notify", port: port, body: #"{"client": "nobody", "text": "hi"}"#)
        #expect(unknown == 404 && unknownWhy.contains("no client") && unknownWhy.contains("nobody"), "\(unknownWhy)")

        // Nobody connected: held, and said so.
        #expect(await request("POST", "/api/notify", port: port, body: #"{"channel": 3, "text": "waited 1"}"#) == (200, "{\"sessions\":0,\"held\":1}\n"))
        #expect(await broker.pushToAll(payload: ByteBuffer(string: #"{"nType":1,"chNo":3,"loc-args0":"x","loc-args1":"waited 2"}"#)) == 0)
        #expect(await broker.heldNotifications == 2)

        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/wmqtt")))
        configuration.reconnect.maximumAttempts = 1
        let client = WorksClient(configuration: configuration, logger: quiet)
        let texts = TextLog()
        Task { for await event in client.events { if case .notification(let n, _) = event { await texts.add(n.text ?? "") } } }
        try await client.connect()
        let delivered = await texts.wait { $0 == ["waited 1", "waited 2"] }
        let received = await texts.lines
        #expect(delivered, "\(received)")
        #expect(await broker.heldNotifications == 0)
        await client.disconnect()
    }

    @Test func tokenCORSAndTheOpenAPIDescription() async throws {
        let broker = MockBroker(configuration: .init(adminToken: "t0ken"), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        #expect(await request("GET", "/api/clients", port: port).0 == 401)
        #expect(await request("GET", "/api/clients", port: port, headers: ["Authorization: Bearer t0ken"]) == (200, "{\"clients\":[]}\n"))
        // A preflight from a page of another origin is refused (BrowserAccessTests has the rest).
        #expect(await request("OPTIONS", "/api/notify", port: port, headers: ["Origin: http://localhost:5173"]).0 == 403)
        let (status, document) = await request("GET", "/api/openapi.json", port: port, headers: ["Authorization: Bearer t0ken"])
        #expect(status == 200)
        let paths = (try? JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any])?["paths"] as? [String: Any]
        #expect(Set(paths?.keys.map { $0 } ?? []) == ["/api/clients", "/api/clients/{id}", "/api/notify", "/api/publish", "/api/events", "/api/faults", "/api/info", "/api/retained"])
        #expect(await request("GET", "/nothing", port: port).0 == 404)
        // The page itself is public; the live view wants the token (as a header or ?token=).
        let (pageStatus, page) = await request("GET", "/", port: port)
        #expect(pageStatus == 200 && page.contains("<title>wmq-mock</title>"))
        #expect(await request("GET", "/api/events", port: port).0 == 401)
    }

    @Test func sessionsOfClientsThatAreAwayAreListed() async throws {
        let broker = MockBroker(configuration: .init(), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/mqtt")))
        configuration.mqtt.persistentSession = true
        configuration.mqtt.clientIdentifier = "away-client"
        configuration.mqtt.subscriptions = [.init(topicFilter: "news/#", qos: .atLeastOnce)]
        let client = WorksClient(configuration: configuration, logger: quiet)
        try await client.connect()
        #expect(await waitUntil { await broker.subscriptions(of: "away-client")?["news/#"] != nil })
        await client.disconnect()
        #expect(await waitUntil { await broker.connectedClients.isEmpty })
        #expect(await request("POST", "/api/publish", port: port, body: #"{"topic": "news/1", "payload": "kept", "qos": 1}"#).0 == 200)
        let (status, list) = await request("GET", "/api/clients", port: port)
        #expect(status == 200)
        #expect(list == #"{"clients":[{"id":"away-client","connected":false,"protocolLevel":4,"subscriptions":{"news/#":1},"inflight":0,"queued":1,"dropped":0,"heldBack":0}]}"# + "\n", "\(list)")
    }

    @Test func aSecondConnectIsAnsweredInTheFirstOnesVersion() async throws {
        let broker = MockBroker(configuration: .init(), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let transport = try await WebSocketTransport.connect(WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/mqtt")),
                                                             group: MultiThreadedEventLoopGroup.singleton, tap: nil)
        // MQTT 5 first, then a 3.1.1 CONNECT on the same connection (found by the broker fuzz target).
        var five = ByteBuffer()
        try MQTTEncoder(version: .v5).encode(.connect(ConnectPacket(protocolVersion: .v5, clientIdentifier: "twice")), into: &five)
        try MQTTEncoder(version: .v3_1_1).encode(.connect(ConnectPacket(clientIdentifier: "twice")), into: &five)
        try await transport.frames.executeThenClose { inbound, outbound in
            try await outbound.write(WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: five))
            var decoder = MQTTDecoder(configuration: .init(version: .v5, followsConnect: false))
            var received: [MQTTPacket] = []
            for try await frame in inbound where frame.opcode == .binary {
                decoder.append(frame.unmaskedData)
                while let packet = try decoder.next() { received.append(packet) }
                if received.count >= 2 { break }
            }
            #expect(received.map(\.type) == [.connack, .disconnect])
            guard case .disconnect(let disconnect)? = received.last else { return }
            #expect(disconnect.reasonCode == .protocolError)
        }
    }

    @Test func faultsTurnOnAndOff() async throws {
        let clock = LiveClock.manual()
        let broker = MockBroker(configuration: .init(), logger: quiet, clock: clock)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/mqtt")))
        configuration.reconnect.maximumAttempts = 1
        let (status, body) = await request("POST", "/api/faults", port: port, body: #"{"refuseConnections": true, "ackDelay": 0.5}"#)
        #expect(status == 200 && body.contains("\"refuseConnections\":true") && body.contains("\"ackDelay\":0.5"), "\(body)")
        // Every CONNECT is refused as "server unavailable".
        let refused = WorksClient(configuration: configuration, logger: quiet)
        await #expect(throws: WorksClientError.self) { try await refused.connect() }
        #expect(await request("POST", "/api/faults", port: port, body: #"{"refuseConnections": false}"#).0 == 200)
        // Accepted again, with acknowledgements half a second late.
        let client = WorksClient(configuration: configuration, logger: quiet)
        try await client.connect()
        let acknowledged = TextLog()
        let published = Task {
            try await client.publish(topic: "t", payload: ByteBuffer(string: "x"), qos: .atLeastOnce)
            await acknowledged.add("PUBACK")
        }
        // The PUBACK waits on the broker's clock: not there after 0.4 s of it, there after 0.5 s.
        #expect(await waitUntil { clock.sleeping >= 2 })  // the ticker and the acknowledgement
        clock.advance(by: .milliseconds(400))
        try await Task.sleep(for: .milliseconds(100))
        #expect(await acknowledged.lines.isEmpty)
        clock.advance(by: .milliseconds(100))
        try await published.value
        #expect(await acknowledged.lines == ["PUBACK"])
        await client.disconnect()
        #expect(await request("POST", "/api/faults", port: port, body: #"{"fly": true}"#).0 == 400)
        #expect(await request("GET", "/api/faults", port: port).1 == "{\"answerPing\":true,\"refuseConnections\":false,\"ackDelay\":0.5}\n")
    }

    @Test func aSeparateAdminPortServesTheAPIAndThePage() async throws {
        let broker = MockBroker(configuration: .init(), logger: quiet)
        let admin = try await broker.listenAdmin(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        #expect(await request("GET", "/api/clients", port: admin) == (200, "{\"clients\":[]}\n"))
        #expect(await request("GET", "/", port: admin).0 == 200)
    }
}

actor TextLog {
    private(set) var lines: [String] = []
    func add(_ line: String) { lines.append(line) }
    func wait(seconds: Double = 10, until condition: @Sendable ([String]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition(lines) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(lines)
    }
}
