import Capture
import Dialects
import Dissector
import Foundation
import NIOCore
import WebSocketWire

func temporaryCapturePath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("wmq-\(UUID().uuidString).pcap").path
}

/// The bundled sample capture, read through Capture.
enum SampleCapture {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("captures/works-sample.pcap").path

    static func bytes() throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// The reassembled byte streams of the sample's one connection, in capture order.
    static func streams() throws -> [(StreamDirection, ByteBuffer)] {
        let reader = try PcapReader(path: path)
        var decoder = PacketDecoder()
        var tracker = ConnectionTracker()
        var out: [(StreamDirection, ByteBuffer)] = []
        while let frame = try reader.next() {
            guard let segment = try decoder.segment(from: frame) else { continue }
            for case .data(_, let direction, let bytes, _, _) in tracker.process(segment) {
                out.append((direction == .clientToServer ? .clientToServer : .serverToClient, bytes))
            }
        }
        return out
    }

    /// Every event of a capture, as wmq-decode sees them; capture errors included.
    static func decode(path: String, options: CaptureDissector.Options = .init(redactor: Redactor(key: [1])))
        throws -> (events: [CaptureEvent], errors: [CaptureError])
    {
        let reader = try PcapReader(path: path)
        var decoder = PacketDecoder()
        var dissector = CaptureDissector(options: options)
        var events: [CaptureEvent] = []
        var errors: [CaptureError] = []
        var last = (0, 0.0)
        while true {
            do {
                guard let frame = try reader.next() else { break }
                last = (frame.number, frame.time)
                if let segment = try decoder.segment(from: frame) { events += dissector.process(segment) }
            } catch {
                errors.append(error)
                if error.layer == .file { break }
            }
        }
        events += dissector.finish(frame: last.0, time: last.1)
        return (events, errors)
    }
}

import Testing

@Suite("Damaged captures")
struct DamagedCaptureTests {
    static func mqttCount(_ events: [CaptureEvent]) -> Int {
        events.filter {
            if case .dissected(let d) = $0.kind, case .mqtt = d.kind { return true }
            return false
        }.count
    }

    /// Every truncation length of the sample: no crash; a cut inside a record is a file
    /// error naming the frame; the MQTT packets decoded never decrease as more of the
    /// file is kept, and the whole file gives all 11.
    @Test func everyTruncationLength() throws {
        let sample = try SampleCapture.bytes()
        let path = temporaryCapturePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var previous = 0
        for length in 0...sample.count {
            try Data(sample.prefix(length)).write(to: URL(fileURLWithPath: path))
            guard let (events, errors) = try? SampleCapture.decode(path: path) else {
                #expect(length < 24, "a file with its whole header did not open at \(length) bytes")
                continue
            }
            let count = Self.mqttCount(events)
            #expect(count >= previous, "length \(length)")
            previous = count
            for error in errors { #expect(error.layer == .file && error.frame != nil) }
        }
        #expect(previous == 11)
    }
}
