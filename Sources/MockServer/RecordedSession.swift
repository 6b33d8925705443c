import Capture
public import MockFiles
import MQTTWire
import Recordings

/// "Serve this recorded session": the server side of one connection of a recording (pcap,
/// pcapng or HAR, read by `Session` through the same `Dissector` as `wmq-decode`) turned into a
/// scenario that every client of the mock gets: each PUBLISH the recorded server sent, with its
/// topic, payload and QoS, at the recorded time after the CONNACK (gaps capped at
/// ``maximumGap``). What the broker answers live (CONNACK, SUBACK, acknowledgements,
/// PINGRESP) is not replayed; matching what the client sends against the recording is
/// `wmq-replay`'s job.
public enum RecordedSession {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// A recorded pause longer than this is shortened to it.
    public static let maximumGap: Duration = .seconds(10)

    /// The scenario of `connection` (the id wmq-decode prints, `c1` = 1), or of the first
    /// connection whose server sent a PUBLISH.
    public static func scenario(capture path: String, connection wanted: Int? = nil) throws(Failure) -> Scenario {
        let recording: Recording
        do {
            recording = try Recording.read(path: path)
        } catch {
            throw Failure(description: error.description)
        }
        func publishes(_ connection: RecordedConnection) -> [RecordedMessage] {
            connection.messages.filter { if case .publish = $0.packet { $0.direction == .serverToClient } else { false } }
        }
        let serving = recording.connections.filter { !publishes($0).isEmpty }
        guard let chosen = wanted.flatMap({ recording.connection($0) }) ?? (wanted == nil ? serving.first : nil) else {
            let those = serving.map { "c\($0.id)" }.joined(separator: ", ")
            throw Failure(description: wanted.map { "\(path): no MQTT connection c\($0) (those whose server published: \(those))" }
                ?? "\(path): no connection in which the server sent a PUBLISH")
        }
        let recorded = publishes(chosen)
        guard let first = recorded.first else {
            throw Failure(description: "\(path): connection c\(chosen.id) has no PUBLISH from the server (those that do: \(serving.map { "c\($0.id)" }.joined(separator: ", ")))")
        }
        let connack = chosen.messages.first { if case .connack = $0.packet { true } else { false } }
        var previous = connack?.time ?? first.time
        var steps: [(line: Int, step: Scenario.Step)] = []
        for (index, message) in recorded.enumerated() {
            guard case .publish(let publish) = message.packet else { continue }
            let gap = max(0, message.time - previous)
            previous = message.time
            if gap > 0 { steps.append((index + 1, .wait(min(.milliseconds(Int64(gap * 1000)), maximumGap)))) }
            steps.append((index + 1, .publish(topic: publish.topicName, payload: publish.payload, qos: publish.qos)))
        }
        return Scenario(steps: steps)
    }
}
