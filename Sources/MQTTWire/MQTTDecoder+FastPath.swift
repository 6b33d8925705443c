import ByteStream
import NIOCore

/// The fast path: the packets a Works stream is made of (3.1.1 PUBLISH, the four
/// acknowledgements in their short form, PINGREQ/PINGRESP, empty DISCONNECT), read in
/// one pass over the raw bytes. It only ever accepts well-formed packets: anything it
/// is unsure of (an error, MQTT 5 properties, a limit) is left to the full decoder,
/// which reports the exact error. `RoundTripTests` check both paths decode alike.
extension MQTTDecoder {
    enum FastPacket {
        case none
        case ack(type: UInt8, identifier: UInt16, total: Int)
        case bare(MQTTPacket, total: Int)
        case publish(flags: UInt8, topic: String, identifier: UInt16?, payloadStart: Int, total: Int)
    }

    @inline(__always)
    mutating func fastNext() -> MQTTPacket? {
        let version = self.version
        let maximum = configuration.maximumPacketSize
        let cached = lastTopic
        let scan: FastPacket = input.withUnsafeReadableBytes { raw in
            let count = raw.count
            guard count >= 2 else { return .none }
            let first = raw[0]
            guard case .complete(let remaining, let headerLength, _) = RemainingLength.read(raw, headerAt: 0) else { return .none }
            let total = headerLength + remaining
            guard total <= count, total <= maximum else { return .none }
            switch first {
            case 0x40, 0x50, 0x62, 0x70:
                // Only the two-byte fixed header (a longer encoding of a small length is
                // left to the full path, which knows what each version makes of it).
                guard remaining == 2, headerLength == 2 else { return .none }
                let identifier = UInt16(raw[2]) << 8 | UInt16(raw[3])
                return identifier == 0 ? .none : .ack(type: first >> 4, identifier: identifier, total: 4)
            case 0xC0: return total == 2 ? .bare(.pingreq, total: 2) : .none
            case 0xD0: return total == 2 ? .bare(.pingresp, total: 2) : .none
            case 0xE0: return total == 2 ? .bare(.disconnect(DisconnectPacket()), total: 2) : .none
            case 0x30...0x3F:
                guard version != .v5 else { return .none }
                let qosBits = (first >> 1) & 0x03
                guard qosBits != 3, !(qosBits == 0 && first & 0x08 != 0) else { return .none }
                let topicStart = headerLength + 2
                guard topicStart <= total else { return .none }
                let topicLength = Int(raw[headerLength]) << 8 | Int(raw[headerLength + 1])
                guard topicLength > 0 else { return .none }
                var payloadStart = topicStart + topicLength
                var identifier: UInt16?
                if qosBits != 0 {
                    guard payloadStart + 2 <= total else { return .none }
                    let value = UInt16(raw[payloadStart]) << 8 | UInt16(raw[payloadStart + 1])
                    guard value != 0 else { return .none }
                    identifier = value
                    payloadStart += 2
                }
                guard payloadStart <= total else { return .none }
                let topicBytes = UnsafeRawBufferPointer(rebasing: raw[topicStart..<(topicStart + topicLength)])
                // Works pushes every notification on one topic: reuse its String.
                let same = cached.utf8.withContiguousStorageIfAvailable { cachedBytes in
                    cachedBytes.count == topicLength && memoryEqual(UnsafeRawBufferPointer(cachedBytes), topicBytes)
                } ?? false
                let topic: String
                if same {
                    topic = cached
                } else {
                    guard let decoded = UTF8Check.topicName(from: topicBytes) else { return .none }
                    topic = decoded
                }
                return .publish(flags: first & 0x0F, topic: topic, identifier: identifier, payloadStart: payloadStart,
                                total: total)
            default:
                return .none
            }
        }
        let packet: MQTTPacket
        let total: Int
        switch consume scan {
        case .none:
            return nil
        case .ack(let type, let identifier, let size):
            let response = PublishResponsePacket(packetIdentifier: identifier)
            switch type {
            case 4: packet = .puback(response)
            case 5: packet = .pubrec(response)
            case 6: packet = .pubrel(response)
            default: packet = .pubcomp(response)
            }
            total = size
        case .bare(let bare, let size):
            packet = bare
            total = size
        case .publish(let flags, let topic, let identifier, let payloadStart, let size):
            lastTopic = topic
            let payload = input.slice(at: payloadStart, length: size - payloadStart) ?? ByteBuffer()
            packet = .publish(PublishPacket(
                dup: flags & 0x08 != 0, qos: QoS(rawValue: (flags >> 1) & 0x03) ?? .atMostOnce, retain: flags & 0x01 != 0,
                topicName: topic, packetIdentifier: identifier, payload: payload))
            total = size
        }
        lastPacketRange = input.offset..<(input.offset + total)
        input.consume(total)
        return packet
    }
}

@inline(__always)
private func memoryEqual(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var index = 0
    while index + 8 <= lhs.count {
        if lhs.loadUnaligned(fromByteOffset: index, as: UInt64.self) != rhs.loadUnaligned(fromByteOffset: index, as: UInt64.self) {
            return false
        }
        index += 8
    }
    while index < lhs.count {
        if lhs[index] != rhs[index] { return false }
        index += 1
    }
    return true
}
