import Dialects
import Foundation
import MQTTWire
import NIOCore
import Testing
@testable import WorksClient

@Suite struct ReconnectBackoffTests {
    @Test func doublesFromOneSecondToFiveMinutes() {
        let backoff = ReconnectBackoff(policy: ReconnectPolicy(jitter: 0))
        let delays = (0..<12).map { backoff.baseDelay(attempt: $0) }
        #expect(delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300].map { Duration.seconds($0) })
    }

    @Test func jitterStaysWithinItsBand() {
        var backoff = ReconnectBackoff(policy: ReconnectPolicy(jitter: 0.25))
        var random = SystemRandomNumberGenerator()
        for attempt in 0..<20 {
            let ceiling = backoff.baseDelay(attempt: attempt)
            let delay = backoff.nextDelay(connectedFor: nil, using: &random)
            #expect(delay.map { $0 <= ceiling && $0 >= ceiling * 0.75 } == true)
        }
    }

    @Test func resetsAfterAStableConnection() {
        var backoff = ReconnectBackoff(policy: ReconnectPolicy(jitter: 0))
        var random = SystemRandomNumberGenerator()
        for _ in 0..<5 { _ = backoff.nextDelay(connectedFor: .seconds(3), using: &random) }
        #expect(run { backoff.nextDelay(connectedFor: .seconds(59), using: &random) } == .seconds(32))
        #expect(run { backoff.nextDelay(connectedFor: .seconds(60), using: &random) } == .seconds(1))
    }

    // Seed behaviour: 3 retries then give up; ours is configurable, 0 = forever.
    @Test func attemptsAreCounted() {
        var limited = ReconnectBackoff(policy: ReconnectPolicy(jitter: 0, maximumAttempts: 3))
        var random = SystemRandomNumberGenerator()
        let delays = (0..<4).map { _ in limited.nextDelay(connectedFor: nil, using: &random) }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), nil])
        var forever = ReconnectBackoff(policy: ReconnectPolicy(jitter: 0, maximumAttempts: 0))
        for _ in 0..<1000 { #expect(run { forever.nextDelay(connectedFor: nil, using: &random) } != nil) }
    }
}

@Suite struct DeduplicatorTests {
    @Test func dropsWithinTheWindowOnly() {
        let start = ContinuousClock.now
        var dedup = NotificationDeduplicator(window: .seconds(60))
        #expect(!run { dedup.isDuplicate("msg.1", now: start) })
        #expect(run { dedup.isDuplicate("msg.1", now: start + .seconds(59)) })
        #expect(!run { dedup.isDuplicate("msg.2", now: start + .seconds(59)) })
        #expect(!run { dedup.isDuplicate("msg.1", now: start + .seconds(60)) })
    }

    @Test func capacityForgetsTheOldestFirst() {
        let now = ContinuousClock.now
        var dedup = NotificationDeduplicator(window: .seconds(60), capacity: 3)
        for id in ["a", "b", "c", "d"] { #expect(!run { dedup.isDuplicate(id, now: now) }) }
        #expect(dedup.count == 3)
        #expect(run { dedup.isDuplicate("d", now: now) })
        #expect(run { dedup.isDuplicate("b", now: now) })
        #expect(!run { dedup.isDuplicate("a", now: now) })  // evicted by "d"
        // Window expiry and the ring agree after wrapping around.
        #expect(!run { dedup.isDuplicate("c", now: now + .seconds(61)) })
        #expect(dedup.count == 1)
    }

    @Test func memoryIsBoundedByTheWindow() {
        let start = ContinuousClock.now
        var dedup = NotificationDeduplicator(window: .seconds(1))
        for i in 0..<100_000 {
            _ = dedup.isDuplicate("msg.\(i)", now: start + .milliseconds(i))
        }
        #expect(dedup.count <= 1001)
    }
}

@Suite struct CookieTests {
    func parse(_ text: String) throws(WorksClientError) -> WorksCookies { try WorksCookies.parse(Data(text.utf8)) }

    @Test func flatObjectIsJoinedInFileOrder() throws {
        let cookies = try parse(#"{"WORKS_USER_ID": "u1", "WORKS_SES": "s=2", "NEO_SES": "abc"}"#)
        #expect(cookies.header == "WORKS_USER_ID=u1; WORKS_SES=s=2; NEO_SES=abc")
        #expect(cookies.names == ["WORKS_USER_ID", "WORKS_SES", "NEO_SES"])
        #expect(!cookies.description.contains("abc"))
    }

    @Test func rawHeaderForm() throws {
        #expect(try parse(#"{"cookie": "A=1; B=2"}"#).header == "A=1; B=2")
    }

    /// The seed's message first, then what is wrong and where.
    @Test(arguments: [("not json", "line 1, column 1"), ("[1,2]", "no JSON object"), ("{}", "the object is empty"),
                      (#"{"A": 1}"#, "the value of \"A\" is not text"), (#"{"A": "x;y"}"#, "holds a ';'"),
                      (#"{"bad name": "v"}"#, "is not a cookie name"), (#"{"cookie": ""}"#, "\"cookie\" is empty"),
                      ("{\n  \"A\": \"1\",\n  \"B\": \"2\"\n  \"C\": \"3\"\n}", "line 4, column 3")])
    func malformedFilesSayWhatAndWhere(text: String, detail: String) {
        #expect {
            _ = try parse(text)
        } throws: { error in
            guard let error = error as? WorksClientError, error.code == .cookie else { return false }
            return error.reason.hasPrefix("Invalid cookie.json format: ") && error.reason.contains(detail)
                && error.reason.contains("expected {\"NAME\": \"VALUE\"")
        }
    }

    @Test func missingFile() {
        #expect {
            _ = try WorksCookies.load(path: "/nonexistent/cookie.json")
        } throws: { error in
            (error as? WorksClientError).map { $0.code == .cookie && $0.reason.hasPrefix("cookie.json not found") } ?? false
        }
    }
}

@Suite struct ConfigurationTests {
    @Test func defaultsAreTheReferenceClient() throws {
        let configuration = try WorksClientConfiguration.load(file: nil, environment: [:])
        #expect(configuration.webSocket.url.description == "wss://jp1-web-noti.worksmobile.com/wmqtt")
        #expect(configuration.webSocket.origin == "https://talk.worksmobile.com")
        #expect(configuration.webSocket.subprotocol == "mqtt")
        #expect(configuration.mqtt.keepAlive == .seconds(50))
        #expect(configuration.mqtt.pingInterval == .seconds(30))
        #expect(configuration.mqtt.pingTimeout == .seconds(10))
        #expect(configuration.mqtt.username == "dummy")
        #expect(configuration.deduplicationWindow == .seconds(60))
        #expect(configuration.reconnect.initialDelay == .seconds(1))
        #expect(configuration.reconnect.maximumDelay == .seconds(300))
        let id = configuration.mqtt.clientIdentifier
        #expect(id.hasPrefix("web-beejs_") && id.count == 22 && id.dropFirst(10).allSatisfy(\.isHexDigit))
    }

    @Test func fileThenEnvironment() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-config-\(UInt32.random(in: 0...UInt32.max)).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(#"{"url": "ws://127.0.0.1:9001/mqtt", "persistent": true, "ping_timeout": 2.5, "ping_response": "required", "subscribe": ["a/#"], "reconnect_attempts": 4}"#.utf8).write(to: file)
        let configuration = try WorksClientConfiguration.load(file: file.path, environment: ["WMQ_CLIENT_ID": "from-env"])
        #expect(configuration.webSocket.url == (try WebSocketURL("ws://127.0.0.1:9001/mqtt")))
        #expect(configuration.webSocket.url.hostHeader == "127.0.0.1:9001")
        #expect(configuration.mqtt.persistentSession)
        #expect(configuration.mqtt.persistentSession)
        #expect(configuration.mqtt.pingTimeout == .milliseconds(2500))
        #expect(configuration.mqtt.pingResponse == .required)
        #expect(configuration.mqtt.subscriptions.map(\.topicFilter) == ["a/#"])
        #expect(configuration.mqtt.clientIdentifier == "from-env")
        #expect(configuration.reconnect.maximumAttempts == 4)
    }

    @Test(arguments: [#"{"url": "http://x/"}"#, #"{"urll": "ws://x/"}"#, #"{"ping_timeout": -1}"#, #"{"persistent": "yes"}"#, "[]"])
    func badSettingsAreConfigErrors(text: String) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-config-\(UInt32.random(in: 0...UInt32.max)).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(text.utf8).write(to: file)
        #expect(throws: WorksClientError(.config, "")) { _ = try WorksClientConfiguration.load(file: file.path, environment: [:]) }
    }

    @Test func connectVariants() throws {
        let hex = MQTTSettings.variant(.hexIdentifierWithPassword)
        #expect(hex.clientIdentifier.count == 22 && hex.password == hex.clientIdentifier)
        let anonymous = MQTTSettings.variant(.anonymous)
        var session = MQTTClientSession(configuration: anonymous)
        guard case .send(let connect)? = session.transportOpened(now: .now).first else { Issue.record("no CONNECT"); return }
        let bytes = try MQTTEncoder().encode(connect)
        // flags 0x02, keep-alive 60, empty identifier
        #expect(Array(bytes.readableBytesView) == [0x10, 0x0C, 0, 4, 0x4D, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0, 0])
        #expect(MQTTSettings.variant(.mqttClient).clientIdentifier.hasPrefix("mqtt-client-"))
    }
}

@Suite struct InboxTests {
    func publish(_ json: String) -> PublishPacket {
        PublishPacket(qos: .atLeastOnce, topicName: "notification", packetIdentifier: 1, payload: ByteBuffer(string: json))
    }

    @Test func routesAndDeduplicates() {
        var inbox = WorksInbox(deduplicationWindow: .seconds(60), redactor: Redactor(key: [1]))
        let now = ContinuousClock.now
        let text = #"{"nType": 1, "chNo": 42, "loc-key": "REV_MSG", "loc-args0": "Alice", "loc-args1": "Hello", "notification-id": "msg.1", "token": "SECRET"}"#
        guard case .notification(let n, let message) = inbox.receive(publish(text), now: now) else { Issue.record("not a notification"); return }
        #expect(n.senderName == "Alice" && n.text == "Hello")
        #expect(message.annotation.summary.contains("Hello"))
        #expect(!message.annotation.fields.map(\.value).joined().contains("SECRET"))
        guard case .duplicate(let id) = inbox.receive(publish(text), now: now + .seconds(1)) else { Issue.record("not dropped"); return }
        #expect(id == "msg.1")
        guard case .readReceipt = inbox.receive(publish(#"{"command": 93004, "chNo": 42, "readerId": 7, "msgSn": 9}"#), now: now) else {
            Issue.record("not a read receipt"); return
        }
        guard case .otherMessage(let other) = inbox.receive(publish("not json"), now: now) else { Issue.record("not other"); return }
        #expect(other.payload == nil)
    }
}

/// Calls a mutating method inside `#expect`, whose expansion cannot mutate its operands.
func run<T>(_ body: () throws -> T) rethrows -> T { try body() }
