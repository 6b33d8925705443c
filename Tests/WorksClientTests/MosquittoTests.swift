import Dialects
import Foundation
import Logging
import MQTTWire
import NIOCore
import TestSupport
import Testing
import WorksClient

/// Reads a client's events into lists the test can wait on.
actor EventLog {
    private(set) var texts: [String] = []
    private(set) var notificationIDs: [String] = []
    private(set) var duplicates = 0
    private(set) var duplicateIDs: [String] = []
    private(set) var connections = 0
    private(set) var errors: [WorksClientError] = []
    private(set) var received: [MQTTPacket] = []
    private(set) var sent: [MQTTPacket] = []
    private var task: Task<Void, Never>?

    init(_ client: WorksClient) {
        task = nil
        let events = client.events
        Task { await self.consume(events) }
    }

    private func consume(_ events: AsyncStream<WorksClientEvent>) async {
        for await event in events {
            switch event {
            case .notification(let notification, _):
                texts.append(notification.text ?? "")
                notificationIDs.append(notification.notificationID ?? "")
            case .duplicate(let id):
                duplicates += 1
                duplicateIDs.append(id)
            case .stateChanged(.connected): connections += 1
            case .error(let error): errors.append(error)
            case .packet(let packet, .received): received.append(packet)
            case .packet(let packet, .sent): sent.append(packet)
            default: break
            }
        }
    }

    /// Waits until `condition` holds, at most `seconds`.
    func wait(seconds: Double = 20, until condition: @Sendable (isolated EventLog) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(self)
    }
}

extension Logger {
    /// Tests read events, not log lines.
    static let quiet = Logger(label: "wmq.test", factory: { _ in SwiftLogNoOpLogHandler() })
}

extension WorksClientConfiguration {
    static func local(port: Int, scheme: String = "ws", persistent: Bool = false, clientID: String? = nil,
                      subscribe: [String] = ["works/#"]) throws -> WorksClientConfiguration {
        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("\(scheme)://127.0.0.1:\(port)/mqtt")))
        if let clientID { configuration.mqtt.clientIdentifier = clientID }
        configuration.mqtt.persistentSession = persistent
        configuration.mqtt.subscriptions = subscribe.map { .init(topicFilter: $0, qos: .exactlyOnce) }
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(200), maximumDelay: .seconds(2), jitter: 0.1)
        return configuration
    }
}

@Suite("WorksClient against mosquitto and paho-mqtt", .serialized, .enabled(if: Peers.present || TestEnvironment.peersRequired), .timeLimit(.minutes(2)))
struct MosquittoTests {
    @Test(arguments: [0, 1, 2])
    func receivesEveryQoSExactlyOnceInOrder(qos: Int) async throws {
        let broker = try Mosquitto()
        let client = WorksClient(configuration: try .local(port: broker.webSocketPort), logger: .quiet)
        let log = EventLog(client)
        let run = Task { try await client.run() }
        defer { run.cancel() }
        #expect(await log.wait { $0.received.contains { if case .suback = $0 { true } else { false } } }, "no SUBACK: \(broker.log)")

        try await Peers.publish(port: broker.webSocketPort, qos: qos, count: 200, prefix: "q\(qos)")
        let complete = await log.wait { $0.texts.count >= 200 }
        #expect(complete, "broker log: \(broker.log.split(separator: "\n").suffix(100000).joined(separator: "\n"))")
        let texts = await log.texts
        #expect(texts == (0..<200).map { "message \($0)" })
        #expect(await log.duplicates == 0)
        let errors = await log.errors
        #expect(errors.isEmpty, "\(errors)")

        // The acknowledgements are the spec's, never the seed's PUBACK for QoS 2.
        let sent = await log.sent
        let pubacks = sent.filter { if case .puback = $0 { true } else { false } }.count
        let pubrecs = sent.filter { if case .pubrec = $0 { true } else { false } }.count
        #expect(pubacks == (qos == 1 ? 200 : 0))
        #expect(pubrecs == (qos == 2 ? 200 : 0))
        if qos == 2 {
            // mosquitto's PUBRELs can trail the messages.
            let completed = await log.wait { log in log.sent.count { if case .pubcomp = $0 { true } else { false } } >= 200 }
            #expect(completed)
        }
        #expect(await client.inFlight.incomingQoS2.isEmpty)
        await client.disconnect()
        _ = try? await run.value
    }

    @Test func brokerRestartLosesNothingAndDuplicatesNothing() async throws {
        let broker = try Mosquitto(persistence: true)
        var configuration = try WorksClientConfiguration.local(port: broker.webSocketPort, persistent: true, clientID: "wmq-persistent-test")
        // Long enough for the publisher to queue messages for the offline session.
        configuration.reconnect = ReconnectPolicy(initialDelay: .seconds(3), maximumDelay: .seconds(3), jitter: 0)
        let client = WorksClient(configuration: configuration, logger: .quiet)
        let log = EventLog(client)
        let run = Task { try await client.run() }
        defer { run.cancel() }
        #expect(await log.wait { $0.received.contains { if case .suback = $0 { true } else { false } } }, "no SUBACK: \(broker.log)")

        try await Peers.publish(port: broker.webSocketPort, qos: 1, count: 50, start: 0, prefix: "r")
        try await Peers.publish(port: broker.webSocketPort, qos: 2, count: 50, start: 50, prefix: "r")
        #expect(await log.wait { $0.texts.count >= 100 })

        try await Task.sleep(for: .milliseconds(1500))  // the broker's autosave has the session
        try broker.killAndRestart()
        // The client is waiting to reconnect; these go to its persistent session at the broker.
        try await Peers.publish(port: broker.webSocketPort, qos: 1, count: 50, start: 100, prefix: "r")
        try await Peers.publish(port: broker.webSocketPort, qos: 2, count: 50, start: 150, prefix: "r")
        #expect(await log.wait(seconds: 30) { $0.texts.count >= 200 && $0.connections >= 2 })
        try await Task.sleep(for: .milliseconds(300))  // anything delivered twice would arrive now

        let ids = await log.notificationIDs
        #expect(Set(ids) == Set((0..<200).map { "msg.r.\($0)" }), "missing: \(Set((0..<200).map { "msg.r.\($0)" }).subtracting(ids).sorted().prefix(10))")
        #expect(ids.count == 200, "delivered more than once")
        // A broker killed between two autosaves may have lost the PUBACKs and PUBCOMPs of its
        // last second and send those messages again: at-least-once allows it. The client must
        // recognise them (a .duplicate event, never a second notification), and only messages
        // delivered before the kill can come again.
        let beforeTheKill = Set((0..<100).map { "msg.r.\($0)" })
        let again = await log.duplicateIDs
        #expect(Set(again).isSubset(of: beforeTheKill), "redelivered after the restart: \(again)")
        #expect(again.count == Set(again).count, "one message redelivered twice: \(again)")
        #expect(await log.connections == 2)
        await client.disconnect()
        _ = try? await run.value
    }

    @Test func tlsWebSocketListenerWithTheTestsOwnCA() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificates = try TestCertificates(in: directory)
        let broker = try Mosquitto(certificates: certificates)
        let port = try #require(broker.secureWebSocketPort)

        // Without the CA, the certificate is refused.
        var untrusted = try WorksClientConfiguration.local(port: port, scheme: "wss")
        untrusted.reconnect.maximumAttempts = 1
        let refused = WorksClient(configuration: untrusted, logger: .quiet)
        await #expect(throws: WorksClientError(.connection, "")) { try await refused.connect() }

        var configuration = try WorksClientConfiguration.local(port: port, scheme: "wss")
        configuration.webSocket.tls.caFile = certificates.caFile
        let client = WorksClient(configuration: configuration, logger: .quiet)
        let log = EventLog(client)
        try await client.connect()
        #expect(await log.wait { $0.received.contains { if case .suback = $0 { true } else { false } } })
        try await Peers.publish(port: broker.webSocketPort, qos: 1, count: 5, prefix: "tls")
        #expect(await log.wait { $0.texts.count >= 5 })
        #expect(await log.texts == (0..<5).map { "message \($0)" })
        await client.disconnect()
    }

    @Test func publishAndSubscribeThroughTheBroker() async throws {
        let broker = try Mosquitto()
        let client = WorksClient(configuration: try .local(port: broker.webSocketPort, subscribe: []), logger: .quiet)
        let log = EventLog(client)
        try await client.connect()
        let suback = try await client.subscribe([(topic: "echo/#", qos: .exactlyOnce)])
        #expect(suback.reasonCodes == [ReasonCode(2)])
        for qos in QoS.allCases {
            try await client.publish(topic: "echo/\(qos.rawValue)", payload: ByteBuffer(string: #"{"nType": 1, "loc-args0": "me", "loc-args1": "echo \#(qos.rawValue)", "notification-id": "e\#(qos.rawValue)"}"#), qos: qos)
        }
        #expect(await log.wait { $0.texts.count >= 3 })
        #expect(await log.texts.sorted() == ["echo 0", "echo 1", "echo 2"])
        #expect(await client.inFlight.outgoing.isEmpty)
        await client.disconnect()
    }
}
