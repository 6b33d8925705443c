// wmq-bench: throughput of the wire codecs on one core. Run through `Tools/bench codecs`
// (release build). Each figure is the best of several runs over the same input; every
// run consumes each decoded value so the work cannot be optimised away.
import ByteStream
import Foundation
import Capture
import Dialects
import Dissector
import MQTTWire
import NIOCore
import NIOEmbedded
import NIOWebSocket
import WebSocketWire

struct Measurement {
    var name: String
    var bytes: Int
    var items: Int
    var seconds: Double
    var gigabytesPerSecond: Double { Double(bytes) / seconds / 1e9 }
    var itemsPerSecond: Double { Double(items) / seconds }
}

func measure(_ name: String, runs: Int, bytes: Int, _ body: () throws -> Int) rethrows -> Measurement {
    var best = Double.infinity
    var items = 0
    for _ in 0..<runs {
        let start = ContinuousClock.now
        items = try body()
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        best = min(best, seconds)
    }
    return Measurement(name: name, bytes: bytes, items: items, seconds: best)
}

func format(_ value: Double, _ digits: Int = 2) -> String {
    let scale = (0..<digits).reduce(1.0) { acc, _ in acc * 10 }
    let rounded = (value * scale).rounded() / scale
    return "\(rounded)"
}

/// `wmq-bench pipeline CAPTURE`: the cost of each stage of wmq-decode's pipeline.
func runPipeline(_ path: String) throws {
    func time(_ name: String, _ body: () throws -> Int) rethrows {
        var best = Double.infinity
        var count = 0
        for _ in 0..<3 {
            let start = ContinuousClock.now
            count = try body()
            let elapsed = ContinuousClock.now - start
            best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        print("\(name): \(format(best, 3)) s (\(count))")
    }
    try time("read frames (libpcap)") {
        let reader = try PcapReader(path: path)
        var n = 0
        while try reader.next() != nil { n += 1 }
        return n
    }
    try time("+ link/IP/TCP decode") {
        let reader = try PcapReader(path: path)
        var decoder = PacketDecoder()
        var n = 0
        while let frame = try reader.next() { if try decoder.segment(from: frame) != nil { n += 1 } }
        return n
    }
    try time("+ TCP reassembly") {
        let reader = try PcapReader(path: path)
        var decoder = PacketDecoder()
        var tracker = ConnectionTracker()
        var n = 0
        while let frame = try reader.next() {
            if let segment = try decoder.segment(from: frame) { n += tracker.process(segment).count }
        }
        return n
    }
    for annotates in [false, true] {
        try time("+ WebSocket, MQTT\(annotates ? ", Works annotation" : "")") {
            let reader = try PcapReader(path: path)
            var decoder = PacketDecoder()
            var options = CaptureDissector.Options(redactor: nil)
            options.annotates = annotates
            var dissector = CaptureDissector(options: options)
            var n = 0
            while let frame = try reader.next() {
                if let segment = try decoder.segment(from: frame) { n += dissector.process(segment).count }
            }
            return n
        }
    }
    // What `wmq-decode --format jsonl` to a file does on its two threads, one at a time: decode
    // with the Works annotation left for later, then write every record.
    var options = CaptureDissector.Options(redactor: Redactor(key: Array("bench".utf8)))
    options.defersWorksAnnotation = true
    func decode(_ each: ([CaptureEvent]) -> Void) throws {
        let reader = try PcapReader(path: path)
        var decoder = PacketDecoder()
        var dissector = CaptureDissector(options: options)
        while let frame = try reader.next() {
            if let segment = try decoder.segment(from: frame) { each(dissector.process(segment)) }
        }
    }
    try time("+ WebSocket, MQTT, Works annotation deferred (jsonl's decoding thread)") {
        var n = 0
        try decode { n += $0.count }
        return n
    }
    var events: [CaptureEvent] = []
    try decode { events += $0 }
    var written = 0
    time("JSON Lines records of those events, to memory (jsonl's writing)") {
        var out = ByteWriter(capacity: 1 << 17)
        var memory = DecodeRecord.HeaderMemory()
        written = 0
        for event in events {
            DecodeRecord.write(event, memory: &memory, to: &out)
            out.append(0x0A)
            if out.count >= 1 << 16 {
                written += out.count
                out.removeAll()
            }
        }
        return written + out.count
    }
}

/// What wmq-bench takes; anything else is a usage error, not a start of the full run.
let usage = """
    wmq-bench: throughput of the wire codecs on one core (release builds; run through Tools/bench codecs).

    Usage:
      wmq-bench [--quick]          MQTT and WebSocket decoders against NIOWebSocket's (minutes; --quick: seconds)
      wmq-bench pipeline CAPTURE   the time of wmq-decode's stages on CAPTURE
      wmq-bench --help             this text

    """

func runBenchmarks() throws {
let arguments = CommandLine.arguments.dropFirst()
if arguments.contains("--help") || arguments.contains("-h") {
    print(usage, terminator: "")
    return
}
if arguments.first == "pipeline" && arguments.count != 2 || arguments.first != "pipeline" && arguments.contains(where: { $0 != "--quick" }) {
    FileHandle.standardError.write(Data(("wmq-bench: unknown arguments \(arguments.joined(separator: " "))\n\n" + usage).utf8))
    exit(2)
}
if arguments.first == "pipeline", let path = arguments.dropFirst().first {
    try runPipeline(path)
    return
}
let quick = arguments.contains("--quick")
let runs = quick ? 2 : 7

// MARK: Inputs

/// A Works notification of about 300 bytes of JSON.
func worksPayload(_ index: Int) -> ByteBuffer {
    let json = """
        {"nType":1,"chNo":\(300_000_000 + index % 977),"chType":2,"chTitle":"開発チーム","loc-key":"REV_MSG",\
        "loc-args0":"田中 太郎","loc-args1":"明日のリリースの件、準備できました。確認お願いします #\(index)",\
        "fromUserNo":110001,"createTime":1763776800123,"notification-id":"msg.300012345.\(index)","badge":1,"sType":0}
        """
    return ByteBuffer(string: json)
}

let encoder = MQTTEncoder(version: .v3_1_1)
var publishStream = ByteBuffer()
let publishCount = quick ? 20_000 : 200_000
var payloadBytes = 0
for index in 0..<publishCount {
    let payload = worksPayload(index)
    payloadBytes += payload.readableBytes
    let packet = MQTTPacket.publish(PublishPacket(
        qos: .atLeastOnce, topicName: "/domains/10001/users/110001", packetIdentifier: UInt16(index % 65_535 + 1),
        payload: payload))
    try encoder.encode(packet, into: &publishStream)
}

var ackStream = ByteBuffer()
let ackCount = quick ? 1_000_000 : 10_000_000
for index in 0..<ackCount {
    if index % 2 == 0 {
        ackStream.writeBytes([0x40, 0x02, UInt8(truncatingIfNeeded: index >> 8) | 1, UInt8(truncatingIfNeeded: index)])
    } else {
        ackStream.writeBytes([0xC0, 0x00])
    }
}

var frameStream = ByteBuffer()
let frameCount = quick ? 1_000 : 8_192
let framePayload = ByteBuffer(bytes: (0..<16_384).map { UInt8(truncatingIfNeeded: $0 &* 31) })
for index in 0..<frameCount {
    let key = WebSocketMaskingKey([UInt8(index & 0xFF), 0x5A, 0xA5, 0x3C]) ?? [1, 2, 3, 4]
    WebSocketFrameWriter.write(WebSocketFrame(fin: true, opcode: .binary, data: framePayload), maskKey: key, into: &frameStream)
}

// MARK: Runs

var results: [Measurement] = []

results.append(try measure("MQTT PUBLISH stream, ~300-byte Works JSON, one buffer", runs: runs, bytes: publishStream.readableBytes) {
    var decoder = MQTTDecoder()
    decoder.append(publishStream)
    var count = 0
    var checksum = 0
    while let packet = try decoder.next() {
        if case .publish(let publish) = packet { checksum &+= publish.payload.readableBytes &+ publish.topicName.utf8.count }
        count += 1
    }
    precondition(checksum > payloadBytes && count == publishCount)
    return count
})

results.append(try measure("MQTT PUBLISH stream, fed in 64 KiB chunks", runs: runs, bytes: publishStream.readableBytes) {
    var decoder = MQTTDecoder()
    var count = 0
    var input = publishStream
    while input.readableBytes > 0 {
        let chunk = input.readSlice(length: min(65_536, input.readableBytes)) ?? ByteBuffer()
        decoder.append(chunk)
        while let packet = try decoder.next() {
            if case .publish = packet { count += 1 }
        }
    }
    precondition(count == publishCount)
    return count
})

results.append(try measure("MQTT PUBACK/PINGREQ stream", runs: runs, bytes: ackStream.readableBytes) {
    var decoder = MQTTDecoder()
    decoder.append(ackStream)
    var count = 0
    var identifiers = 0
    while let packet = try decoder.next() {
        if case .puback(let ack) = packet { identifiers &+= Int(ack.packetIdentifier) }
        count += 1
    }
    precondition(count == ackCount && identifiers > 0)
    return count
})

let ours = try measure("WebSocket masked 16 KiB frames (wmq parser, unmasked)", runs: runs, bytes: frameStream.readableBytes) {
    var parser = WebSocketFrameParser(configuration: .init(direction: .clientToServer))
    parser.append(frameStream)
    var count = 0
    var checksum = 0
    while let frame = try parser.next() {
        checksum &+= Int(frame.frame.data.getInteger(at: frame.frame.data.readerIndex + 100, as: UInt8.self) ?? 0)
        count += 1
    }
    precondition(count == frameCount)
    return count &+ (checksum & 0)
}
results.append(ours)

// The peer: SwiftNIO's own WebSocketFrameDecoder in a channel pipeline, with
// `unmaskedData` read so that it does the same work.
let nio = try measure("WebSocket masked 16 KiB frames (NIOWebSocket decoder, peer)", runs: runs, bytes: frameStream.readableBytes) {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)))
    var count = 0
    var checksum = 0
    var input = frameStream
    while input.readableBytes > 0 {
        let chunk = input.readSlice(length: min(1 << 20, input.readableBytes)) ?? ByteBuffer()
        try channel.writeInbound(chunk)
        while let frame = try channel.readInbound(as: WebSocketFrame.self) {
            let data = frame.unmaskedData
            checksum &+= Int(data.getInteger(at: data.readerIndex + 100, as: UInt8.self) ?? 0)
            count += 1
        }
    }
    _ = try channel.finish()
    precondition(count == frameCount)
    return count &+ (checksum & 0)
}
results.append(nio)

print("wmq-bench codecs · best of \(runs) runs · one core\n")
for result in results {
    let rate = result.itemsPerSecond >= 1e6 ? "\(format(result.itemsPerSecond / 1e6)) M/s" : "\(format(result.itemsPerSecond / 1e3)) k/s"
    print("\(result.name)")
    print("    \(format(result.gigabytesPerSecond)) GB/s · \(rate) · \(result.items) items, \(result.bytes) bytes in \(format(result.seconds * 1000, 1)) ms")
}
print("\nwmq / NIOWebSocket on masked frames: \(format(ours.gigabytesPerSecond / nio.gigabytesPerSecond))×")
}

try runBenchmarks()
