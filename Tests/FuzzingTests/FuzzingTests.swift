import Capture
import Dialects
import Dissector
import Foundation
@testable import Fuzzing
import MQTTWire
import NIOCore
import TestSupport
import Testing
import WebSocketWire

let corpora = TestEnvironment.root.appendingPathComponent("corpora")

/// Regular files under a directory, recursively (seeds, fuzzer finds and `regressions/`).
func corpusFiles(_ target: String) -> [URL] {
    let directory = corpora.appendingPathComponent(target)
    guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey])
    else { return [] }
    return enumerator.compactMap { $0 as? URL }
        .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
        .sorted { $0.path < $1.path }
}

@Suite("Committed corpora and regressions")
struct CorpusReplayTests {
    /// What CI runs instead of a fuzzer: every committed input of every target through
    /// the normal build of its harness. A crash fails the run; a broken oracle fails here.
    /// Half a minute of work in all: on threads of their own, not the ones the test runner's
    /// actors need (a mock broker's actor starved behind it, and its CONNACK came too late).
    @Test(arguments: FuzzTarget.all.map(\.name))
    func everyCommittedInputPasses(_ name: String) async throws {
        let target = try #require(FuzzTarget.named(name))
        let files = corpusFiles(name)
        #expect(files.count >= 10, "corpora/\(name) holds \(files.count) inputs; run wmq-fuzz gen")
        let failures = try await onOwnThread { () -> [String] in
            var failures: [String] = []
            for file in files {
                let input = Array(try Data(contentsOf: file))
                do {
                    try target.run(input)
                } catch {
                    failures.append("\(file.path): \(error)")
                }
            }
            return failures
        }
        for failure in failures { Issue.record(Comment(rawValue: failure)) }
    }

    @Test func everyTargetHasADictionary() throws {
        for target in FuzzTarget.all {
            let path = corpora.appendingPathComponent("\(target.name).dict")
            let lines = try String(contentsOf: path, encoding: .utf8).split(separator: "\n")
            #expect(lines.count >= 5, "\(target.name).dict")
            for line in lines {
                #expect(line.wholeMatch(of: /[a-z0-9_]+="([\x20-\x21\x23-\x5B\x5D-\x7E]|\\\\|\\"|\\x[0-9A-F]{2})*"/) != nil,
                        "\(target.name).dict: \(line)")
            }
        }
    }
}

@Suite("Oracles")
struct OracleTests {
    /// The oracles can fail: a packet the encoder refuses, and frames that do not come back.
    @Test func roundTripOracleCatchesAnEncoderRefusal() {
        // A QoS 0 PUBLISH must not carry a packet identifier: the encoder refuses it, so a
        // decoder that produced it would be caught.
        let bad = MQTTPacket.publish(PublishPacket(qos: .atMostOnce, topicName: "t", packetIdentifier: 9, payload: ByteBuffer()))
        #expect(throws: OracleViolation.self) { try MQTTHarness.roundTrip(bad, version: .v3_1_1, target: "test") }
        let good = MQTTPacket.publish(PublishPacket(qos: .atLeastOnce, topicName: "t", packetIdentifier: 9, payload: ByteBuffer()))
        #expect(throws: Never.self) { try MQTTHarness.roundTrip(good, version: .v3_1_1, target: "test") }
    }

    @Test func chunkedOracleComparesErrorsToo() throws {
        // A broken remaining length: one-shot and chunked both end with the same error.
        let stream: ArraySlice<UInt8> = [0xC0, 0x00, 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01][...]
        let oneShot = try MQTTHarness.decode(stream, version: .v3_1_1, target: "test")
        let chunked = try MQTTHarness.decode(stream, version: .v3_1_1, chunkSizes: [1], target: "test")
        #expect(oneShot == chunked)
        guard case .error(let error) = oneShot.last else {
            Issue.record("no error in \(oneShot)")
            return
        }
        #expect(error.offset == 6)  // the fifth length byte
        #expect(firstDifference([1, 2, 3], [1, 5]) == "item 1: expected 2, got 5 (3 vs 2 items)")
    }

    @Test func answerComparisonNoticesAnyDifference() {
        func compare(_ expected: [Int], _ answers: [Int]) -> Bool {
            var comparison = AnswerComparison(expecting: expected)
            for answer in answers { comparison.take(answer) }
            return comparison.matches
        }
        #expect(compare([1, 2, 3], [1, 2, 3]))
        #expect(compare([], []))
        #expect(!compare([1, 2, 3], [1, 2]))  // one missing
        #expect(!compare([1, 2], [1, 2, 3]))  // one more
        #expect(!compare([1, 2, 3], [1, 5, 3]))  // one different
        #expect(!compare([], [1]))
    }

    /// Each call starts from an empty list; the room is kept for the next call; a call inside
    /// another (as runs in parallel) gets a list of its own.
    @Test func spareListIsEmptyEachTimeAndKeepsItsRoom() throws {
        let spare = SpareList<Int>()
        let first = try spare.withEmptyList { (list: inout [Int]) throws(OracleViolation) in
            #expect(list.isEmpty)
            list.append(contentsOf: 0..<1000)
            let inner = try spare.withEmptyList { (other: inout [Int]) throws(OracleViolation) in
                #expect(other.isEmpty)
                other.append(1)
                return other.capacity
            }
            #expect(inner < 1000)
            return list.capacity
        }
        let second = try spare.withEmptyList { (list: inout [Int]) throws(OracleViolation) in
            #expect(list.isEmpty)
            return list.capacity
        }
        #expect(second == first)
        // A violation thrown inside still gives the list back.
        #expect(throws: OracleViolation.self) {
            try spare.withEmptyList { (list: inout [Int]) throws(OracleViolation) in
                list.append(1)
                throw OracleViolation(target: "test", oracle: "thrown", detail: "")
            }
        }
        #expect(try spare.withEmptyList { (list: inout [Int]) throws(OracleViolation) in list.isEmpty && list.capacity >= 1 })
    }

    @Test func chunkSizesAreTheSeedsSizesCycled() {
        let sizes = ChunkSizes(seed: 7)
        #expect(sizes.sizes.allSatisfy { (1...64).contains($0) })
        #expect((0..<16).map(sizes.size(turn:)) == sizes.sizes + sizes.sizes)
        // Derived as before the sizes were packed, so committed inputs are cut as they were.
        var rng = SplitMix64(seed: 8)
        #expect(sizes.sizes == (0..<8).map { _ in Int(rng.next() % 64) + 1 })
        #expect(ChunkSizes([1, 64]).sizes == [1, 64, 1, 64, 1, 64, 1, 64])
        var pieces: [Int] = []
        forEachPiece(of: ByteBuffer(repeating: 0, count: 130), sizes: ChunkSizes([64])) { pieces.append($0.readableBytes) }
        #expect(pieces == [64, 64, 2])
    }

    @Test func jsonOracleRejectsWhatDoesNotReadBack() {
        #expect(throws: Never.self) { try JSONHarness.readsBack(.object([.init(key: "a", value: .number("1"))]), target: "test") }
        // A number that is not JSON is written as is and cannot be read back.
        #expect(throws: OracleViolation.self) { try JSONHarness.readsBack(.number("0x1"), target: "test") }
    }

    @Test func everyTargetTakesEmptyAndTinyInputs() throws {
        for target in FuzzTarget.all {
            for input: [UInt8] in [[], [0], [0xFF], [0x0A, 0x0D, 0x0D, 0x0A], [UInt8](repeating: 0xFF, count: 64)] {
                try target.run(input)
            }
        }
    }
}

@Suite("Corpus generator")
struct CorpusGeneratorTests {
    static func packets(_ seed: [UInt8], version: ProtocolVersion) -> [MQTTPacket] {
        var decoder = MQTTDecoder(configuration: .init(version: version))
        decoder.append(contentsOf: seed)
        var packets: [MQTTPacket] = []
        while true {
            do {
                guard let packet = try decoder.next() else { break }
                packets.append(packet)
            } catch {
                if !error.isRecoverable { break }
            }
        }
        return packets
    }

    static func properties(of packet: MQTTPacket) -> [MQTTProperty] {
        switch packet {
        case .connect(let p): Array(p.properties) + Array(p.will?.properties ?? [])
        case .connack(let p): Array(p.properties)
        case .publish(let p): Array(p.properties)
        case .puback(let p), .pubrec(let p), .pubrel(let p), .pubcomp(let p): Array(p.properties)
        case .subscribe(let p): Array(p.properties)
        case .suback(let p): Array(p.properties)
        case .unsubscribe(let p): Array(p.properties)
        case .unsuback(let p): Array(p.properties)
        case .disconnect(let p): Array(p.properties)
        case .auth(let p): Array(p.properties)
        case .pingreq, .pingresp: []
        }
    }

    @Test(arguments: [("mqtt311", ProtocolVersion.v3_1_1), ("mqtt5", .v5)])
    func mqttSeedsHaveEveryPacketTypeAndBoundary(_ target: String, _ version: ProtocolVersion) {
        let seeds = CorpusGenerator.seeds(for: target)
        let decoded = seeds.flatMap { Self.packets($0, version: version) }
        let types = Set(decoded.map(\.type))
        #expect(types == Set(PacketGenerator.types(for: version)))
        if version == .v5 {
            let properties = Set(decoded.flatMap { Self.properties(of: $0).map(\.identifier) })
            #expect(properties == Set(MQTTProperty.Identifier.allCases), "missing \(Set(MQTTProperty.Identifier.allCases).subtracting(properties))")
        }
        // Remaining lengths on both sides of each step of the variable-length integer.
        let lengths = Set(seeds.compactMap { seed -> Int? in
            var value = 0
            for (index, byte) in seed.dropFirst().prefix(4).enumerated() {
                value |= Int(byte & 0x7F) << (7 * index)
                if byte & 0x80 == 0 { return value }
            }
            return nil
        })
        #expect(lengths.isSuperset(of: [127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455]))
        // Invalid flags and malformed UTF-8 are among the seeds, and the decoder refuses them.
        let refused = seeds.filter { seed in
            var decoder = MQTTDecoder(configuration: .init(version: version))
            decoder.append(contentsOf: seed)
            return (try? decoder.next()) == nil && decoder.bufferedByteCount == 0
        }
        #expect(refused.count >= 20)
    }

    @Test func webSocketSeedsCoverMaskingFragmentsAndDeflate() {
        var masked = 0, unmasked = 0, fragmented = 0, compressed = 0
        for seed in CorpusGenerator.seeds(for: "websocket") {
            var cursor = InputCursor(seed)
            let setup = WebSocketHarness.StreamSetup(flags: cursor.byte())
            _ = cursor.byte()
            guard let events = try? WebSocketHarness.events(cursor.rest, setup: setup) else { continue }
            for event in events {
                switch event {
                case .frame(let frame): if frame.maskKey == nil { unmasked += 1 } else { masked += 1 }
                case .message(let message):
                    if message.frameCount > 1 { fragmented += 1 }
                    if message.wasCompressed { compressed += 1 }
                default: break
                }
            }
        }
        #expect(masked >= 20 && unmasked >= 20 && fragmented >= 4 && compressed >= 8,
                "masked \(masked), unmasked \(unmasked), fragmented \(fragmented), compressed \(compressed)")
    }

    /// The capture seeds decode into Works messages over every link type, and the damaged
    /// ones into errors.
    @Test func captureSeedsDecode() throws {
        var linkTypes: Set<Int32> = []
        var decodedSessions = 0
        var damaged = 0
        for seed in CorpusGenerator.seeds(for: "capture") {
            guard let reader = try? PcapReader(bytes: seed) else {
                damaged += 1
                continue
            }
            let (events, errors) = CaptureDissector.events(from: reader, options: CaptureHarness.options)
            if !errors.isEmpty { damaged += 1 }
            let works = events.filter {
                if case .dissected(let event) = $0.kind, case .mqtt(_, _, let annotation?) = event.kind {
                    return annotation.dialect == "works"
                }
                return false
            }
            if works.count >= 2 {
                decodedSessions += 1
                linkTypes.insert(reader.linkType.rawValue)
            }
        }
        // libpcap reads LINKTYPE_RAW (101) back as DLT_RAW (12).
        #expect(linkTypes.isSuperset(of: [0, 1, 12, 113, 276]), "\(linkTypes)")
        #expect(decodedSessions >= 12)
        #expect(damaged >= 10)
    }

    @Test func worksSeedsHaveEveryNotificationType() throws {
        var types: Set<Int> = []
        var kinds: Set<String> = []
        for seed in CorpusGenerator.seeds(for: "works") {
            let payload = ByteBuffer(bytes: seed)
            if let json = try? JSONReader.parse(payload), let type = json["nType"]?.intValue { types.insert(Int(type)) }
            let publish = PublishPacket(topicName: "notification", payload: payload)
            kinds.insert(WorksDialect().annotate(publish, redactor: nil).kind)
        }
        #expect(types.isSuperset(of: NotificationType.names.keys))
        #expect(kinds.isSuperset(of: ["notification", "read-receipt", "channel-message", "unparsed"]), "\(kinds)")
    }

    @Test func seedsAreTheSameOnEveryRun() {
        for target in FuzzTarget.all {
            #expect(CorpusGenerator.seeds(for: target.name) == CorpusGenerator.seeds(for: target.name), "\(target.name)")
        }
    }
}

/// The arithmetic of Tools/fuzz rate: ratios of two builds' rates and their median.
@Suite("Fuzz rate statistics")
struct RateStatisticsTests {
    @Test func ratiosAndMedians() {
        #expect(RateStatistics.ratio(ours: 300, theirs: 200) == 1.5)
        #expect(RateStatistics.ratio(ours: 300, theirs: 0) == 0)
        #expect(RateStatistics.median([3, 1, 2]) == 2)
        #expect(RateStatistics.median([4, 1, 3, 2]) == 2.5)
        #expect(RateStatistics.median([]) == nil)
    }
}

/// The frame parser against NIOWebSocket's frame decoder (wmq-fuzz diff websocket): every
/// committed input and generated ones agree, or differ in a way corpora/websocket.oracle
/// lists with its reason.
@Suite("The frame parser against NIO's")
struct FrameOracleTests {
    static var known: [String: String] {
        get throws {
            FrameOracle.knownDifferences(try String(contentsOf: corpora.appendingPathComponent("websocket.oracle"), encoding: .utf8))
        }
    }

    /// Seconds of work: on a thread of its own, not one the test runner's actors need.
    @Test func theCorpusAndGeneratedInputsAgree() async throws {
        let known = Set(try Self.known.keys)
        let inputs = corpusFiles("websocket").compactMap { FileManager.default.contents(atPath: $0.path).map(Array.init) }
            + FrameOracle.generated(count: 5_000, seed: 20_261_207)
        #expect(inputs.count > 5_500)
        let (agreed, disagreements) = try await onOwnThread { () -> (Int, [String]) in
            var agreed = 0
            var disagreements: [String] = []
            for input in inputs {
                switch FrameOracle.compare(input, known: known) {
                case .agree: agreed += 1
                case .disagree(let why): disagreements.append("\(input.prefix(40).map { String(format: "%02x", $0) }.joined()): \(why)")
                case .known, .notCompared: break
                }
            }
            return (agreed, disagreements)
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(10))")
        // Most inputs are compared frame by frame, not waved through as known.
        #expect(agreed > inputs.count / 2, "\(agreed) of \(inputs.count)")
    }

    /// Every listed difference has a reason; without the list, they are disagreements.
    @Test func aDifferenceNotListedIsADisagreement() throws {
        let known = try Self.known
        #expect(known.keys.contains("reservedBitsSet") && known.values.allSatisfy { $0.count > 20 })
        // A client frame with RSV2 set and no extension: NIO reads it, the parser refuses it.
        let frame: [UInt8] = [0xA2, 0x82, 1, 2, 3, 4, 0x69 ^ 1, 0x21 ^ 2]
        #expect(FrameOracle.compare([0, 0] + frame, known: Set(known.keys)) == .known("reservedBitsSet"))
        guard case .disagree = FrameOracle.compare([0, 0] + frame, known: []) else {
            Issue.record("an unlisted difference passed")
            return
        }
        // The same frame without RSV2: both read it alike.
        #expect(FrameOracle.compare([0, 0, 0x82] + frame.dropFirst(), known: []) == .agree)
    }
}
