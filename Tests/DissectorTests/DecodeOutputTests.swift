import Capture
import Dialects
import Dissector
import Foundation
import MQTTWire
import NIOCore
import Testing

@Suite("Decode records and statistics")
struct DecodeOutputTests {
    @Test(arguments: [(0.0, "0.000000"), (1.5, "1.500000"), (1_763_776_800.098760, "1763776800.098760"),
                      (-0.25, "-0.250000"), (-30.0368, "-30.036800"),
                      // A HAR can claim any time; these used to trap (har fuzz target).
                      (1e300, "1e+300"), (-9.3e18, "-9.3e+18"), (Double.infinity, "0")])
    func timeFormatting(time: Double, text: String) {
        #expect(DecodeRecord.formatTime(time) == text)
    }

    static let connection = Connection(id: 1, client: Endpoint(address: .v4(1), port: 50_000),
                                       server: Endpoint(address: .v4(2), port: 80), joinedMidstream: false,
                                       firstFrame: 1, firstTime: 0)

    static func mqtt(_ packet: MQTTPacket, _ direction: FlowDirection, at time: Double) -> CaptureEvent {
        CaptureEvent(connection: connection, direction: direction, frame: 1, time: time,
                     kind: .dissected(DissectorEvent(direction: direction == .clientToServer ? .clientToServer : .serverToClient,
                                                     kind: .mqtt(packet, range: 0..<2, annotation: nil), warnings: [])))
    }

    /// The record writer without the tree writes the tree's bytes: every event of every
    /// committed capture (MQTT 3.1.1 and 5.0, Works annotations, handshakes, errors, the other
    /// dialects), with and without secrets, plus hand-made records the captures lack.
    @Test func directRecordsEqualTheTree() throws {
        let captures = URL(fileURLWithPath: SampleCapture.path).deletingLastPathComponent()
        let files = try FileManager.default.contentsOfDirectory(atPath: captures.path).sorted()
        var events: [CaptureEvent] = []
        for file in files {
            let path = captures.appendingPathComponent(file).path
            let options = CaptureDissector.Options(redactor: Redactor(key: [1]))
            if file.hasSuffix(".har") {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                events += try HARInput.events(from: ByteBuffer(bytes: bytes), options: options)
            } else if file.hasSuffix(".pcap") || file.hasSuffix(".pcapng") {
                events += try SampleCapture.decode(path: path, options: options).events
            }
        }
        let ack = PublishResponsePacket(packetIdentifier: 7, reasonCode: ReasonCode(0x10))
        for (time, packet) in [(-1.5, MQTTPacket.pubrec(ack)), (0.000_001, .pubcomp(ack)),
                               (1e13, .puback(ack))] {
            events.append(Self.mqtt(packet, .serverToClient, at: time))
        }
        let publishes = events.filter {
            if case .dissected(let event) = $0.kind, case .mqtt(.publish, _, _) = event.kind { true } else { false }
        }
        #expect(publishes.count > 100)
        for event in events {
            for showsSecrets in [false, true] {
                var tree: [UInt8] = []
                DecodeRecord.json(event, showsSecrets: showsSecrets).write(to: &tree)
                var direct: [UInt8] = Array("x".utf8)
                DecodeRecord.write(event, showsSecrets: showsSecrets, to: &direct)
                #expect(direct == Array("x".utf8) + tree, "\(String(decoding: tree, as: UTF8.self))")
            }
        }
    }

    /// A PINGREQ held behind a gap and delivered after its PINGRESP does not make a
    /// negative round trip; a PINGRESP sent by the client is not an answer.
    @Test func pingRoundTrips() throws {
        var statistics = DecodeStatistics()
        statistics.add(Self.mqtt(.pingreq, .clientToServer, at: 10))
        statistics.add(Self.mqtt(.pingresp, .serverToClient, at: 10.25))
        statistics.add(Self.mqtt(.pingresp, .serverToClient, at: 20))
        statistics.add(Self.mqtt(.pingreq, .clientToServer, at: 19.5))  // came out late, with its own time
        statistics.add(Self.mqtt(.pingresp, .clientToServer, at: 30))
        let stats = try #require(statistics.connections[1])
        #expect(stats.pingRoundTrips == [0.25])
        #expect(statistics.json().description.contains(#""pings":1"#))
    }

    @Test func qosFlows() throws {
        var statistics = DecodeStatistics()
        let publish1 = MQTTPacket.publish(PublishPacket(qos: .atLeastOnce, topicName: "t", packetIdentifier: 5, payload: ByteBuffer()))
        let publish2 = MQTTPacket.publish(PublishPacket(qos: .exactlyOnce, topicName: "t", packetIdentifier: 5, payload: ByteBuffer()))
        statistics.add(Self.mqtt(publish1, .serverToClient, at: 1))
        statistics.add(Self.mqtt(.puback(PublishResponsePacket(packetIdentifier: 5)), .clientToServer, at: 2))
        statistics.add(Self.mqtt(publish2, .clientToServer, at: 3))
        statistics.add(Self.mqtt(.pubrec(PublishResponsePacket(packetIdentifier: 5)), .serverToClient, at: 4))
        statistics.add(Self.mqtt(.pubrel(PublishResponsePacket(packetIdentifier: 5)), .clientToServer, at: 5))
        statistics.add(Self.mqtt(.pubcomp(PublishResponsePacket(packetIdentifier: 5)), .serverToClient, at: 6))
        statistics.add(Self.mqtt(publish1, .clientToServer, at: 7))  // left open
        let stats = try #require(statistics.connections[1])
        #expect(stats.qos1Completed == 1)
        #expect(stats.qos2Completed == 1)
        #expect(stats.openFlows == 1)
    }
}

@Suite("Statistics on two threads")
struct ParallelStatisticsTests {
    /// Connections shared out between two threads give the numbers of one thread: every
    /// committed capture (one to four connections each), whole and cut short.
    @Test func equalToOneThread() throws {
        let captures = URL(fileURLWithPath: SampleCapture.path).deletingLastPathComponent()
        let files = try FileManager.default.contentsOfDirectory(atPath: captures.path).sorted()
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }
        #expect(files.count >= 10)
        var connectionsSeen = 0
        for file in files {
            let bytes = Array(try Data(contentsOf: captures.appendingPathComponent(file)))
            for length in [bytes.count, bytes.count * 2 / 3, bytes.count / 3] {
                let image = Array(bytes.prefix(length))
                let options = CaptureDissector.Options(redactor: Redactor(key: [1]))
                var single = DecodeStatistics()
                var singleErrors = 0
                CaptureDissector.decode(try PcapReader(bytes: image), options: options,
                                        decoded: { $0.forEach { single.add($0) } }, failed: { _ in singleErrors += 1 })
                var parallelErrors = 0
                let parallel = ParallelStatistics.statistics(of: try PcapReader(bytes: image), options: options,
                                                             failed: { _ in parallelErrors += 1 })
                #expect(parallel.json().description == single.json().description, "\(file), \(length) bytes")
                #expect(parallel.text() == single.text(), "\(file), \(length) bytes")
                #expect(parallelErrors == singleErrors)
                if length == bytes.count { connectionsSeen += single.connections.count }
            }
        }
        #expect(connectionsSeen >= 15)
    }
}

@Suite("Handoff between threads")
struct HandoffTests {
    /// Everything put comes out once, in order, and no more than the capacity ever waits.
    @Test func inOrderAndBounded() {
        let handoff = Handoff<Int>(capacity: 3)
        let count = 20_000
        let producer = Thread {
            for value in 0..<count { handoff.put(value) }
            handoff.close()
        }
        producer.start()
        var received: [Int] = []
        var largest = 0
        while let values = handoff.takeAll() {
            largest = max(largest, values.count)
            received += values
        }
        #expect(received == Array(0..<count))
        #expect(largest <= 3)
        #expect(handoff.takeAll() == nil)
    }
}
