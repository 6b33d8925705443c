@_spi(Testing) @testable import MQTTWire
import NIOCore
import Testing

@Suite("Round trip: decode(encode(p)) == p")
struct RoundTripTests {
    /// 300 generated packets of every type, per version.
    @Test(arguments: [ProtocolVersion.v3_1_1, .v5, .v3_1])
    func everyPacketType(version: ProtocolVersion) throws {
        var generator = PacketGenerator(seed: 0x5EED_0000 + UInt64(version.rawValue), version: version)
        for type in PacketGenerator.types(for: version) {
            for _ in 0..<300 {
                let packet = generator.packet(type)
                let bytes = try encode(packet, version)
                let decoded = try MQTTDecoder.decodePacket(buffer(bytes), version: version)
                #expect(decoded == packet, "\(type) \(bytes)")
                // Re-encoding what was decoded gives the same bytes.
                #expect(try encode(decoded, version) == bytes)
            }
        }
    }

    /// A stream of mixed packets decodes the same in one piece, byte by byte, and in
    /// random chunk sizes.
    @Test(arguments: [ProtocolVersion.v3_1_1, .v5])
    func anyChunking(version: ProtocolVersion) throws {
        var generator = PacketGenerator(seed: 42, version: version)
        let types = PacketGenerator.types(for: version).filter { $0 != .connect }
        let packets = (0..<400).map { index in generator.packet(types[index % types.count]) }
        let stream = try packets.flatMap { try encode($0, version) }
        #expect(try decodeAll(stream, version: version) == packets)
        #expect(try decodeAll(stream, version: version, chunks: [1]) == packets)
        let sizes = (0..<64).map { _ in generator.int(1...700) }
        #expect(try decodeAll(stream, version: version, chunks: sizes) == packets)
    }

    /// Stream offsets reported for each packet add up to the stream.
    @Test func packetRangesTileTheStream() throws {
        var generator = PacketGenerator(seed: 7, version: .v3_1_1)
        let packets = (0..<50).map { _ in generator.packet(.publish) }
        let encoded = try packets.map { try encode($0) }
        var decoder = MQTTDecoder()
        decoder.append(contentsOf: encoded.flatMap { $0 })
        var expectedStart = 0
        for bytes in encoded {
            _ = try decoder.next()
            #expect(decoder.lastPacketRange == expectedStart..<(expectedStart + bytes.count))
            expectedStart += bytes.count
        }
    }
}

@Suite("Fast path")
struct FastPathTests {
    /// The one-pass path for common packets and the full decoder agree on every
    /// generated stream, and the fast path never accepts what the full one rejects.
    @Test func fastAndFullPathsAgree() throws {
        var generator = PacketGenerator(seed: 99, version: .v3_1_1)
        let types: [PacketType] = [.publish, .puback, .pubrec, .pubrel, .pubcomp, .pingreq, .pingresp, .disconnect]
        var packets = (0..<3000).map { index in generator.packet(types[index % types.count]) }
        // Repeated topics exercise the topic cache.
        packets += (0..<50).map { _ in .publish(PublishPacket(topicName: "/domains/1/users/2", payload: ByteBuffer(string: "x"))) }
        let stream = try packets.flatMap { try encode($0) }
        for chunk in [Int.max, 1, 333] {
            var fast = MQTTDecoder()
            var full = MQTTDecoder()
            full.usesFastPath = false
            var fastPackets: [MQTTPacket] = []
            var fullPackets: [MQTTPacket] = []
            var index = 0
            while index < stream.count {
                let end = min(stream.count, index + chunk)
                fast.append(contentsOf: stream[index..<end])
                full.append(contentsOf: stream[index..<end])
                index = end
                while let packet = try fast.next() { fastPackets.append(packet) }
                while let packet = try full.next() { fullPackets.append(packet) }
            }
            #expect(fastPackets == packets)
            #expect(fullPackets == packets)
        }
    }

    /// MQTT 3.1.1 has no rule against a remaining length encoded in more bytes than it
    /// needs: both paths take such packets whole, with the right identifier (the fast path
    /// used to read a 3-byte header as a 2-byte one; found by the mqtt-chunked fuzz target).
    @Test func longerLengthEncodingsIn311() throws {
        let stream = hexBytes("C0 80 00  40 82 00 12 34  D0 00")
        for usesFastPath in [true, false] {
            var decoder = MQTTDecoder()
            decoder.usesFastPath = usesFastPath
            decoder.append(contentsOf: stream)
            #expect(try decoder.next() == .pingreq)
            #expect(decoder.lastPacketRange == 0..<3)
            #expect(try decoder.next() == .puback(PublishResponsePacket(packetIdentifier: 0x1234)))
            #expect(decoder.lastPacketRange == 3..<8)
            #expect(try decoder.next() == .pingresp)
            #expect(try decoder.next() == nil)
        }
    }

    @Test(arguments: ValidationTests.cases.filter { $0.version == .v3_1_1 })
    func fullPathErrorsStandWithTheFastPathOff(_ malformed: MalformedCase) {
        var decoder = MQTTDecoder()
        decoder.usesFastPath = false
        decoder.append(contentsOf: hexBytes(malformed.hex))
        #expect { _ = try decoder.next() } throws: { ($0 as? MQTTWireError)?.code == malformed.code }
    }
}

/// A decoder waiting for the rest of a packet keeps only the bytes it has, not the larger
/// buffer they were sliced from.
@Suite("Decoder memory")
struct DecoderMemoryTests {
    @Test func aPartialPacketDoesNotKeepItsSourceAlive() throws {
        let packet = try encode(.publish(PublishPacket(topicName: "a/b", payload: ByteBuffer(bytes: [UInt8](repeating: 7, count: 300)))))
        var big = ByteBuffer(bytes: [UInt8](repeating: 0, count: 32_768))
        big.setBytes(packet, at: 2_000)
        var decoder = MQTTDecoder()
        decoder.append(big.getSlice(at: 2_000, length: 100) ?? ByteBuffer())
        #expect(try decoder.next() == nil)
        let before = big.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        let after = big.withUnsafeMutableReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(before == after, "the decoder still shares the source buffer")
        decoder.append(contentsOf: packet.dropFirst(100))
        #expect(try decoder.next() == .publish(PublishPacket(topicName: "a/b", payload: ByteBuffer(bytes: [UInt8](repeating: 7, count: 300)))))
    }
}
