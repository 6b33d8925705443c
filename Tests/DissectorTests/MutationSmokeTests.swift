import Dialects
import Dissector
import Fuzzing
import Foundation
import MQTTWire
import NIOCore
import NIOWebSocket
import Testing
import WebSocketWire

/// Damaged input of every kind goes through every parser without a crash, a hang or an
/// untyped error, and the parsers keep making progress. (The fuzzing issue adds
/// coverage-guided runs; this is the deterministic floor that runs in every `make test`.)
@Suite("Mutation smoke")
struct MutationSmokeTests {
    typealias Random = SplitMix64

    static func mutate(_ bytes: [UInt8], _ rng: inout Random) -> [UInt8] {
        var out = bytes
        for _ in 0..<Int.random(in: 1...6, using: &rng) where !out.isEmpty {
            let index = Int.random(in: 0..<out.count, using: &rng)
            switch Int.random(in: 0...4, using: &rng) {
            case 0: out[index] = UInt8.random(in: 0...255, using: &rng)
            case 1: out[index] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            case 2: out.removeSubrange(index..<min(out.count, index + Int.random(in: 1...8, using: &rng)))
            case 3: out.insert(contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: index)
            default: out = Array(out.prefix(index))
            }
        }
        return out
    }

    @Test func mqttDecoderOnDamagedStreams() throws {
        var rng = Random(seed: 1)
        var stream: [UInt8] = []
        let encoder5 = MQTTEncoder(version: .v5)
        for index in 0..<40 {
            let packet: MQTTPacket = index % 3 == 0
                ? .publish(PublishPacket(qos: .atLeastOnce, topicName: "a/b", packetIdentifier: UInt16(index + 1),
                                         properties: [.topicAlias(3), .userProperty(name: "k", value: "v")],
                                         payload: ByteBuffer(string: "{\"nType\":1}")))
                : .puback(PublishResponsePacket(packetIdentifier: UInt16(index + 1), reasonCode: .quotaExceeded,
                                                properties: [.reasonString("r")]))
            stream += Array(try encoder5.encode(packet).readableBytesView)
        }
        for round in 0..<2000 {
            let damaged = Self.mutate(stream, &rng)
            for version in [ProtocolVersion.v3_1_1, .v5] {
                var decoder = MQTTDecoder(configuration: .init(maximumPacketSize: 4096, version: version))
                decoder.append(contentsOf: damaged)
                var steps = 0
                var lastOffset = -1
                while steps < 10_000 {
                    steps += 1
                    do {
                        guard try decoder.next() != nil else { break }
                    } catch {
                        if !error.isRecoverable { break }
                    }
                    // Every answer moves the stream forward.
                    #expect(decoder.offset > lastOffset, "round \(round)")
                    lastOffset = decoder.offset
                }
                #expect(steps < 10_000, "decoder did not stop on round \(round)")
            }
        }
    }

    /// Damaged captures through the whole pipeline: pcap reading, link, IP, TCP
    /// reassembly, WebSocket, MQTT, Works.
    @Test func pipelineOnDamagedCaptures() throws {
        var rng = Random(seed: 2)
        let sample = try SampleCapture.bytes()
        let path = temporaryCapturePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        for _ in 0..<400 {
            // Keep the 24-byte file header intact half of the time, so frames get decoded.
            var damaged = Self.mutate(Array(sample.dropFirst(24)), &rng)
            damaged = (Bool.random(using: &rng) ? Array(sample.prefix(24)) : Self.mutate(Array(sample.prefix(24)), &rng)) + damaged
            try Data(damaged).write(to: URL(fileURLWithPath: path))
            _ = try? SampleCapture.decode(path: path)
        }
    }

    @Test func webSocketWithDeflateOnRandomBytes() throws {
        var rng = Random(seed: 3)
        for _ in 0..<3000 {
            let length = Int.random(in: 0...200, using: &rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Often start with a plausible header so the parser gets past the first byte.
            if !bytes.isEmpty { bytes[0] = [0xC1, 0xC2, 0x41, 0x80, 0x88, 0x89, 0x02][Int.random(in: 0...6, using: &rng)] }
            var parser = WebSocketFrameParser(configuration: .init(maximumFrameSize: 1 << 16, allowedReservedBits: .rsv1))
            var assembler = try WebSocketMessageAssembler(configuration: .init(
                maximumMessageSize: 1 << 16, deflate: PerMessageDeflateParameters()))
            parser.append(contentsOf: bytes)
            for _ in 0..<1000 {
                do {
                    guard let frame = try parser.next() else { break }
                    _ = try? assembler.push(frame)
                } catch {
                    if !error.isRecoverable { break }
                }
            }
        }
    }

    @Test func textParsersOnRandomBytes() {
        var rng = Random(seed: 4)
        let seeds: [[UInt8]] = [
            Array("GET /wmqtt HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n".utf8),
            Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".utf8),
            Array(#"{"nType":18,"extras":"{\"stkType\":\"line\",\"pkgId\":1,\"stkId\":2}","loc-args0":"\u3042"}"#.utf8),
        ]
        for _ in 0..<3000 {
            let damaged = Self.mutate(seeds[Int.random(in: 0...2, using: &rng)], &rng)
            var request = ByteBuffer(bytes: damaged)
            _ = try? HTTPHeadParser.parseRequest(&request)
            var response = ByteBuffer(bytes: damaged)
            _ = try? HTTPHeadParser.parseResponse(&response)
            let annotation = WorksDialect().annotate(PublishPacket(topicName: "t", payload: ByteBuffer(bytes: damaged)),
                                                     redactor: Redactor(key: [1]))
            #expect(!annotation.summary.isEmpty)
        }
    }
}
