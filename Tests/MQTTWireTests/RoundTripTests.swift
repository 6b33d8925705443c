import MQTTWire
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
