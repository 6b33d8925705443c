import Capture
import Dialects
import Dissector
import Foundation
public import MockFiles
import MQTTWire
import NIOCore

/// "Serve this recorded session": the server side of one connection of a capture (pcap,
/// pcapng or HAR, read by the same `Dissector` as `wmq-decode`) turned into a scenario that
/// every client of the mock gets: each PUBLISH the recorded server sent, with its topic,
/// payload and QoS, at the recorded time after the CONNACK (gaps capped at
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
        let events = try events(of: path)
        var publishes: [Int: [(time: Double, publish: PublishPacket)]] = [:]
        var accepted: [Int: Double] = [:]
        var order: [Int] = []
        for event in events {
            guard case .dissected(let dissected) = event.kind, event.direction == .serverToClient,
                  case .mqtt(let packet, _, _) = dissected.kind else { continue }
            let id = event.connection.id
            switch packet {
            case .connack: accepted[id] = accepted[id] ?? event.time
            case .publish(let publish):
                if publishes[id] == nil { order.append(id) }
                publishes[id, default: []].append((event.time, publish))
            default: break
            }
        }
        guard let chosen = wanted ?? order.first else {
            throw Failure(description: "\(path): no connection in which the server sent a PUBLISH")
        }
        guard let recorded = publishes[chosen], let first = recorded.first else {
            throw Failure(description: "\(path): connection c\(chosen) has no PUBLISH from the server (those that do: \(order.map { "c\($0)" }.joined(separator: ", ")))")
        }
        var steps: [(line: Int, step: Scenario.Step)] = []
        var previous = accepted[chosen] ?? first.time
        for (index, entry) in recorded.enumerated() {
            let gap = max(0, entry.time - previous)
            previous = entry.time
            if gap > 0 { steps.append((index + 1, .wait(min(.milliseconds(Int64(gap * 1000)), maximumGap)))) }
            steps.append((index + 1, .publish(topic: entry.publish.topicName, payload: entry.publish.payload, qos: entry.publish.qos)))
        }
        return Scenario(steps: steps)
    }

    static func events(of path: String) throws(Failure) -> [CaptureEvent] {
        // Pseudonyms nowhere: the payloads are served as they were recorded (a recording made
        // by wmq-client or wmq-capture is already redacted).
        let options = CaptureDissector.Options(redactor: nil)
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure(description: "cannot read \(path)") }
        defer { try? handle.close() }
        let start = handle.readData(ofLength: 64)
        if HARInput.looksLikeHAR(start) {
            let file = ByteBuffer(bytes: start + handle.readDataToEndOfFile())
            do {
                return try HARInput.events(from: file, options: options)
            } catch {
                throw Failure(description: "\(path): \(error)")
            }
        }
        let reader: PcapReader
        do {
            reader = try PcapReader(path: path)
        } catch {
            throw Failure(description: "\(path): \(error)")
        }
        return CaptureDissector.events(from: reader, options: options).events
    }
}
