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
    static let path = TestEnvironment.root.appendingPathComponent("captures/works-sample.pcap").path

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
        CaptureDissector.events(from: try PcapReader(path: path), options: options)
    }
}

import TestSupport
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

@Suite("Gaps and captures joined midstream")
struct GapTests {
    /// The sample's frames, to rebuild captures with some left out.
    static func frames() throws -> [CapturedFrame] {
        let reader = try PcapReader(path: SampleCapture.path)
        var frames: [CapturedFrame] = []
        while let frame = try reader.next() { frames.append(frame) }
        return frames
    }

    static func write(_ frames: [CapturedFrame]) throws -> String {
        let path = temporaryCapturePath()
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        for frame in frames { writer.write(frame.data.readableBytesView, time: frame.time) }
        writer.flush()
        return path
    }

    static func lines(_ events: [CaptureEvent]) -> [String] {
        events.compactMap { event in
            switch event.kind {
            case .opened(let proto, let how): return "open \(proto) (\(how))"
            case .gap(let bytes): return "gap \(bytes)"
            case .dissected(let d):
                switch d.kind {
                case .mqtt(let packet, _, _): return "\(packet)"
                case .resynchronized(let layer, let skipped): return "\(layer) resync \(skipped)"
                case .error(let layer, _): return "\(layer) error"
                default: return nil
                }
            default: return nil
            }
        }
    }

    /// Frame 9 (the second half of the first notification's WebSocket frame) is lost:
    /// the gap is reported with its size, the broken frame is passed over, and decoding
    /// resumes with the next frame.
    @Test func lostSegment() throws {
        var frames = try Self.frames()
        let lost = frames.remove(at: 8)
        #expect(lost.number == 9)
        let path = try Self.write(frames)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = Self.lines(try SampleCapture.decode(path: path).events)
        let gap = try #require(lines.firstIndex { $0.hasPrefix("gap ") })
        #expect(lines[gap] == "gap \(lost.data.readableBytes - 54)")  // the TCP payload: frame minus Ethernet, IPv4, TCP headers
        #expect(lines[gap + 1].hasPrefix("WebSocket resync"))
        #expect(!lines.contains { $0.hasPrefix("PUBLISH QoS 1 id 1 ") })
        #expect(lines.contains("PUBLISH QoS 1 id 2 \"notification\" 343 bytes"))
        #expect(lines.contains("PINGRESP"))
        #expect(lines.filter { $0.hasPrefix("MQTT") || $0.hasPrefix("WebSocket error") }.isEmpty)
    }

    /// The capture starts after the handshake and the CONNECT (frames 1–7 missing): the
    /// connection is recognised by the shape of its WebSocket frames and decoded from
    /// the first whole frame on.
    @Test func joinedMidstream() throws {
        let frames = Array(try Self.frames().dropFirst(7))
        let path = try Self.write(frames)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = Self.lines(try SampleCapture.decode(path: path).events)
        #expect(lines.first == "open ws-mqtt (WebSocket frames seen midstream)")
        #expect(lines.contains("PUBLISH QoS 1 id 2 \"notification\" 343 bytes"))
        #expect(lines.contains("PUBACK id 2"))
        #expect(lines.contains("PINGREQ"))
        #expect(lines.contains("DISCONNECT"))
    }
}

@Suite("Connections that are not decoded")
struct IgnoredConnectionTests {
    static let client = Endpoint(address: .v4(0xC000_020A), port: 51_000)
    static let server = Endpoint(address: .v4(0xC633_6414), port: 443)

    static func capture(_ clientPayload: [UInt8]) throws -> String {
        let path = temporaryCapturePath()
        let writer = try PcapWriter(path: path)
        let frames = [
            SyntheticPacket.tcp(from: client, to: server, sequence: 1, flags: [.syn]),
            SyntheticPacket.tcp(from: server, to: client, sequence: 9, acknowledgement: 2, flags: [.syn, .ack]),
            SyntheticPacket.tcp(from: client, to: server, sequence: 2, flags: [.ack, .psh], payload: clientPayload),
        ]
        for (index, frame) in frames.enumerated() { writer.write(frame, time: Double(index)) }
        writer.flush()
        return path
    }

    static func reasons(_ path: String) throws -> [String] {
        try SampleCapture.decode(path: path).events.compactMap {
            if case .ignored(let reason) = $0.kind { return reason }
            return nil
        }
    }

    /// wss:// as captured on the wire: said to be TLS, once, instead of nothing.
    @Test func tlsIsReportedAsNotDecoded() throws {
        let clientHello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0xC8, 0x01, 0x00, 0x00, 0xC4, 0x03, 0x03] + Array(repeating: 0x42, count: 60)
        let path = try Self.capture(clientHello)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reasons = try Self.reasons(path)
        #expect(reasons.count == 1)
        #expect(reasons.first == "TLS (handshake record), encrypted: give its key log with --keylog, or capture the plain side with wmq-capture proxy", "\(reasons)")
    }

    /// Known protocols are named; unknown bytes are shown.
    @Test func otherProtocolsAreReportedWithTheirFirstBytes() throws {
        let ssh = try Self.capture(Array("SSH-2.0-OpenSSH_9.2\r\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: ssh) }
        #expect(try Self.reasons(ssh) == ["SSH (SSH-2.0-OpenSSH_9.2)"])
        let unknown = try Self.capture([0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x01, 0x00, 0x99])
        defer { try? FileManager.default.removeItem(atPath: unknown) }
        #expect(try Self.reasons(unknown) == ["neither WebSocket nor MQTT (first bytes 7f 45 4c 46 02 01 01 00); --assume PORT=ws-mqtt|mqtt forces it"])
    }
}
