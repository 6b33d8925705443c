import Capture
import Foundation
import NIOCore

let client = Endpoint(address: .v4(0x0A00_0001), port: 51_000)
let server = Endpoint(address: .v4(0x0A00_0002), port: 443)

func segment(_ source: Endpoint, _ destination: Endpoint, seq: UInt32, _ flags: TCPFlags = [.ack], _ payload: String = "",
             frame: Int = 0) -> TCPSegment {
    TCPSegment(frame: frame, time: Double(frame), source: source, destination: destination, sequence: seq,
               acknowledgement: 0, flags: flags, payload: ByteBuffer(string: payload))
}

/// Runs segments through a tracker and renders the events compactly:
/// `open 1 c→s`, `1 c2s "abc"`, `1 c2s gap 3`, `close 1 FIN`.
func track(_ segments: [TCPSegment], tracker: ConnectionTracker = ConnectionTracker()) -> [String] {
    var tracker = tracker
    var lines: [String] = []
    func render(_ events: [FlowEvent]) {
        for event in events {
            switch event {
            case .opened(let c): lines.append("open \(c.id) \(c.client)→\(c.server)\(c.joinedMidstream ? " midstream" : "")")
            case .data(let id, let direction, let bytes, _, _):
                lines.append("\(id) \(direction == .clientToServer ? "c2s" : "s2c") \"\(String(buffer: bytes))\"")
            case .gap(let id, let direction, let bytes, _, _):
                lines.append("\(id) \(direction == .clientToServer ? "c2s" : "s2c") gap \(bytes)")
            case .closed(let id, let reason, _, _): lines.append("close \(id) \(reason.rawValue)")
            }
        }
    }
    for segment in segments { render(tracker.process(segment)) }
    render(tracker.finish(frame: 0, time: 0))
    return lines
}

func temporaryPath(_ suffix: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("wmq-\(UUID().uuidString)\(suffix)").path
}
