import Capture
import Foundation
import MockFiles
import MQTTWire
import Replay
import Recordings
import TestSupport
import Testing

/// Recordings read from every format, as wmq-replay and wmq-mock --serve see them.
@Suite struct RecordingTests {
    func summary(_ connection: RecordedConnection, _ direction: FlowDirection) -> String {
        connection.counts(direction).map { "\($0.type) \($0.count)" }.joined(separator: ", ")
    }

    @Test(arguments: ["works-sample.pcap", "works-sample.pcapng", "works-sample.har"])
    func theWorksSampleInEveryFormat(file: String) throws {
        let recording = try Recording.read(path: TestEnvironment.captures.appendingPathComponent(file).path)
        #expect(recording.connections.count == 1)
        let connection = try #require(recording.connections.first)
        #expect(connection.id == 1 && connection.transport == .webSocket)
        #expect(connection.path == "/wmqtt" && connection.subprotocol == "mqtt")
        #expect(connection.connect?.clientIdentifier == "web-beejs_0123456789ab")
        #expect(summary(connection, .clientToServer) == "CONNECT 1, PUBACK 2, PINGREQ 1, DISCONNECT 1")
        #expect(summary(connection, .serverToClient) == "CONNACK 1, PUBLISH 4, PINGRESP 1")
        // The Works annotations of the server's messages come along.
        let kinds = connection.messages.compactMap { $0.annotation?.kind }
        #expect(kinds == ["notification", "notification", "read-receipt", "channel-message"])
        // Times are in order.
        #expect(zip(connection.messages, connection.messages.dropFirst()).allSatisfy { $0.time <= $1.time })
    }

    /// The mock that stands in for each committed recording's server (what
    /// `Tools/replay-captures` starts for `drive`): Works recordings by their path, the chat-topic
    /// tree by a client's `chat/send`, a plain broker for the rest.
    @Test(arguments: [("works-sample.pcap", MockMode.works), ("works-sample.har", .works),
                      ("works-ws.pcap", .broker),  // Works payloads through mosquitto at /mqtt, published by a client it holds
                      ("chat-ws.pcap", .chat), ("mqtt311-ws.pcap", .broker), ("mqtt5-ws.pcap", .broker), ("split-ws.pcap", .broker)])
    func theMockThatServesEachRecording(file: String, mode: MockMode) throws {
        let recording = try Recording.read(path: TestEnvironment.captures.appendingPathComponent(file).path)
        #expect(recording.mockModeToServe == mode)
    }

    @Test func mqtt5AndPlainTCPConnections() throws {
        let five = try Recording.read(path: TestEnvironment.captures.appendingPathComponent("mqtt5-ws.pcap").path)
        #expect(five.connections.map { $0.connect?.protocolVersion } == [.v5, .v5])
        let works = try Recording.read(path: TestEnvironment.captures.appendingPathComponent("works-ws.pcap").path)
        #expect(works.connections.map(\.transport) == [.webSocket, .tcp])
        #expect(works.connection(2)?.connect?.clientIdentifier == "wmq-works-pusher")
    }

    @Test func aScenarioIsTheServerSideItDescribes() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-recording-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("""
            # a hand-written session
            {"notify": {"channel": 42, "sender": "Alice", "text": "Hello"}}
            {"expect": {"type": "PUBACK"}, "timeout": 5}
            {"wait": 1.5}
            {"read": {"channel": 42, "reader": 7, "upTo": 1}}
            {"publish": {"topic": "chat/room", "payload": "hi", "qos": 2}}
            """.utf8).write(to: file)
        let recording = try Recording.read(path: file.path)
        let connection = try #require(recording.connections.first)
        #expect(connection.transport == .scenario)
        // Each PUBLISH numbered and followed by the acknowledgements MQTT asks of the client.
        #expect(connection.messages.map(\.time) == [0, 0, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5])
        #expect(connection.messages.map { Matcher.summary($0.packet).split(separator: " ").prefix(1).joined() }
            == ["PUBLISH", "PUBACK", "PUBLISH", "PUBACK", "PUBLISH", "PUBREC", "PUBREL", "PUBCOMP"])
        #expect(connection.messages.map(\.packet.packetIdentifier) == [1, 1, 2, 2, 3, 3, 3, 3])
        #expect(connection.messages.map { $0.direction == .serverToClient } == [true, false, true, false, true, false, true, false])
        let topics = connection.messages.compactMap { if case .publish(let p) = $0.packet { "\(p.topicName) \(p.qos.rawValue)" } else { nil } }
        #expect(topics == ["notification 1", "notification 1", "chat/room 2"])
    }

    @Test func unreadableAndBrokenFilesAreNamed() throws {
        #expect { try Recording.read(path: "/nonexistent.pcap") } throws: { "\($0)".contains("/nonexistent.pcap: no such file") }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-recording-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("{\"wait\": 1}\n{\"fly\": true}\n".utf8).write(to: file)
        #expect { try Recording.read(path: file.path) } throws: { "\($0)".contains("scenario line 2") }
        // A truncated capture: what is there is read, the damage is reported.
        let bytes = try Data(contentsOf: TestEnvironment.captures.appendingPathComponent("works-sample.pcap"))
        let cut = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-recording-\(UUID().uuidString).pcap")
        defer { try? FileManager.default.removeItem(at: cut) }
        try bytes.prefix(bytes.count - 40).write(to: cut)
        let truncated = try Recording.read(path: cut.path)
        #expect(truncated.connections.count == 1)
        #expect(!truncated.problems.isEmpty)
    }
}
