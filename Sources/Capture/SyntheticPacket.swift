/// Builds frames with synthetic IP and TCP headers (correct lengths and checksums), for
/// recordings that have no real TCP/IP (a proxy, a client recorder) and for tests.
public enum SyntheticPacket {
    public enum Link: Sendable, Hashable {
        case ethernet
        /// Ethernet with 802.1Q tags, outermost first.
        case ethernetVLAN([UInt16])
        case linuxSLL
        case linuxSLL2
        /// BSD loopback, family in little-endian order as written by Linux and macOS hosts.
        case null
        case raw

        public var linkType: LinkType {
            switch self {
            case .ethernet, .ethernetVLAN: .ethernet
            case .linuxSLL: .linuxSLL
            case .linuxSLL2: .linuxSLL2
            case .null: .null
            case .raw: .raw  // libpcap takes DLT_RAW and stores LINKTYPE_RAW (101) in the file
            }
        }
    }

    /// A TCP segment in an IP packet in a frame of `link`.
    public static func tcp(
        from source: Endpoint, to destination: Endpoint, sequence: UInt32, acknowledgement: UInt32 = 0,
        flags: TCPFlags, payload: [UInt8] = [], link: Link = .ethernet, identification: UInt16 = 0
    ) -> [UInt8] {
        let segment = tcpSegment(from: source, to: destination, sequence: sequence, acknowledgement: acknowledgement,
                                 flags: flags, payload: payload)
        let packet: [UInt8]
        switch (source.address, destination.address) {
        case (.v4(let s), .v4(let d)): packet = ipv4(source: s, destination: d, payload: segment, identification: identification)
        default: packet = ipv6(source: source.address, destination: destination.address, payload: segment)
        }
        return frame(packet, link: link, isIPv6: packet.first.map { $0 >> 4 == 6 } ?? false)
    }

    /// Wraps an IP packet in a link-layer header.
    public static func frame(_ packet: [UInt8], link: Link, isIPv6: Bool) -> [UInt8] {
        let etherType: [UInt8] = isIPv6 ? [0x86, 0xDD] : [0x08, 0x00]
        let macs: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]
        switch link {
        case .ethernet:
            return macs + etherType + packet
        case .ethernetVLAN(let tags):
            var out = macs
            for tag in tags { out += [0x81, 0x00, UInt8(tag >> 8), UInt8(tag & 0xFF)] }
            return out + etherType + packet
        case .linuxSLL:
            return [0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 0x01, 0, 0] + etherType + packet
        case .linuxSLL2:
            return etherType + [0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 0x01, 0, 0] + packet
        case .null:
            return (isIPv6 ? [10, 0, 0, 0] : [2, 0, 0, 0]) + packet
        case .raw:
            return packet
        }
    }

    public static func tcpSegment(from source: Endpoint, to destination: Endpoint, sequence: UInt32,
                                  acknowledgement: UInt32, flags: TCPFlags, payload: [UInt8]) -> [UInt8] {
        var header: [UInt8] = []
        header += bigEndian(source.port) + bigEndian(destination.port)
        header += bigEndian(sequence) + bigEndian(acknowledgement)
        header += [0x50, flags.rawValue] + bigEndian(UInt16(65_535)) + [0, 0, 0, 0]
        var segment = header + payload
        let checksum = internetChecksum(pseudoHeader(source.address, destination.address, length: segment.count) + segment)
        segment[16] = UInt8(checksum >> 8)
        segment[17] = UInt8(checksum & 0xFF)
        return segment
    }

    public static func ipv4(source: UInt32, destination: UInt32, payload: [UInt8], identification: UInt16 = 0,
                            fragmentOffset: Int = 0, moreFragments: Bool = false) -> [UInt8] {
        let flagsAndOffset = UInt16(fragmentOffset / 8) | (moreFragments ? 0x2000 : 0) | (fragmentOffset == 0 && !moreFragments ? 0x4000 : 0)
        var header: [UInt8] = [0x45, 0] + bigEndian(UInt16(20 + payload.count)) + bigEndian(identification)
            + bigEndian(flagsAndOffset) + [64, 6, 0, 0] + bigEndian(source) + bigEndian(destination)
        let checksum = internetChecksum(header)
        header[10] = UInt8(checksum >> 8)
        header[11] = UInt8(checksum & 0xFF)
        return header + payload
    }

    public static func ipv6(source: IPAddress, destination: IPAddress, payload: [UInt8], nextHeader: UInt8 = 6) -> [UInt8] {
        [0x60, 0, 0, 0] + bigEndian(UInt16(payload.count)) + [nextHeader, 64] + bytes(source) + bytes(destination) + payload
    }

    static func pseudoHeader(_ source: IPAddress, _ destination: IPAddress, length: Int) -> [UInt8] {
        switch (source, destination) {
        case (.v4, .v4): bytes(source) + bytes(destination) + [0, 6] + bigEndian(UInt16(length))
        default: bytes(source) + bytes(destination) + bigEndian(UInt32(length)) + [0, 0, 0, 6]
        }
    }

    static func bytes(_ address: IPAddress) -> [UInt8] {
        switch address {
        case .v4(let value): bigEndian(value)
        case .v6(let high, let low): bigEndian(high) + bigEndian(low)
        }
    }

    static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }

    /// RFC 1071 checksum.
    static func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }
}
