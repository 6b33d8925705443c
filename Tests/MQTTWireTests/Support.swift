@_exported import Fuzzing
import MQTTWire
import NIOCore

/// Bytes from a hex string such as "10 29 00 04"; spaces are ignored.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16) ?? 0xEE)
        index = next
    }
    return bytes
}

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

func encode(_ packet: MQTTPacket, _ version: ProtocolVersion = .v3_1_1) throws -> [UInt8] {
    let encoded = try MQTTEncoder(version: version).encode(packet)
    return Array(encoded.readableBytesView)
}

/// Decodes every packet of `bytes` fed in chunks of the given sizes (cycled).
func decodeAll(_ bytes: [UInt8], version: ProtocolVersion = .v3_1_1, chunks: [Int] = [Int.max]) throws -> [MQTTPacket] {
    var decoder = MQTTDecoder(configuration: .init(version: version))
    var packets: [MQTTPacket] = []
    var index = 0
    var chunk = 0
    while index < bytes.count {
        let size = min(chunks[chunk % chunks.count], bytes.count - index)
        decoder.append(contentsOf: bytes[index..<(index + size)])
        index += size
        chunk += 1
        while let packet = try decoder.next() { packets.append(packet) }
    }
    return packets
}
