import ByteStream
public import NIOCore

/// TCP header flags.
public struct TCPFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = Self(rawValue: 0x01)
    public static let syn = Self(rawValue: 0x02)
    public static let rst = Self(rawValue: 0x04)
    public static let psh = Self(rawValue: 0x08)
    public static let ack = Self(rawValue: 0x10)

    public var description: String {
        [(Self.syn, "SYN"), (.fin, "FIN"), (.rst, "RST"), (.psh, "PSH"), (.ack, "ACK")]
            .filter { contains($0.0) }.map(\.1).joined(separator: ",")
    }
}

/// One TCP segment out of a frame.
public struct TCPSegment: Sendable {
    public var frame: Int
    public var time: Double
    public var source: Endpoint
    public var destination: Endpoint
    public var sequence: UInt32
    public var acknowledgement: UInt32
    public var flags: TCPFlags
    public var payload: ByteBuffer

    public init(frame: Int, time: Double, source: Endpoint, destination: Endpoint, sequence: UInt32, acknowledgement: UInt32,
                flags: TCPFlags, payload: ByteBuffer) {
        self.frame = frame
        self.time = time
        self.source = source
        self.destination = destination
        self.sequence = sequence
        self.acknowledgement = acknowledgement
        self.flags = flags
        self.payload = payload
    }
}

/// Decodes frames down to TCP segments: the link layer (Ethernet with VLAN tags, Linux
/// SLL and SLL2, BSD loopback, raw IP), IPv4 (fragments reassembled) and IPv6 (extension
/// headers skipped). Frames that carry no TCP are passed over without an error.
public struct PacketDecoder {
    /// Limits for IPv4 fragment reassembly.
    public var maximumPendingDatagrams = 256

    private struct FragmentKey: Hashable {
        var source: UInt32
        var destination: UInt32
        var identification: UInt16
        var proto: UInt8
    }

    private struct PendingDatagram {
        var pieces: [(offset: Int, bytes: ByteBuffer)] = []
        var totalLength: Int?
        var header: ByteBuffer
        var firstFrame: Int
    }

    private var fragments: [FragmentKey: PendingDatagram] = [:]
    private var fragmentOrder: [FragmentKey] = []

    public init() {}

    /// The TCP segment a frame carries; nil when it carries none (another protocol, or a
    /// fragment waiting for the rest of its datagram).
    public mutating func segment(from frame: CapturedFrame) throws(CaptureError) -> TCPSegment? {
        var data = frame.data
        guard let version = try linkPayload(&data, frame: frame) else { return nil }
        let ipStart = data.readerIndex
        func offset() -> Int { data.readerIndex - frame.data.readerIndex }
        switch version {
        case 4:
            guard let (source, destination, payload) = try ipv4(&data, frame: frame, start: ipStart) else { return nil }
            return try tcp(payload, source: .v4(source), destination: .v4(destination), frame: frame,
                           offset: offset())
        default:
            guard let (source, destination, payload) = try ipv6(&data, frame: frame, start: ipStart) else { return nil }
            return try tcp(payload, source: source, destination: destination, frame: frame, offset: offset())
        }
    }

    // MARK: Link layer

    /// Moves past the link header; returns the IP version, or nil for other protocols.
    private func linkPayload(_ data: inout ByteBuffer, frame: CapturedFrame) throws(CaptureError) -> Int? {
        func cut(_ reason: String) -> CaptureError {
            CaptureError(layer: .link, frame: frame.number, offset: data.readerIndex, reason: reason)
        }
        var etherType: UInt16
        switch frame.linkType {
        case .ethernet:
            guard data.readableBytes >= 14 else { throw cut("Ethernet header needs 14 bytes, frame has \(data.readableBytes)") }
            data.moveReaderIndex(forwardBy: 12)
            etherType = data.readInteger(as: UInt16.self) ?? 0
            // 802.1Q and 802.1ad tags, stacked.
            while etherType == 0x8100 || etherType == 0x88A8 || etherType == 0x9100 {
                guard data.readableBytes >= 4 else { throw cut("VLAN tag cut short") }
                data.moveReaderIndex(forwardBy: 2)
                etherType = data.readInteger(as: UInt16.self) ?? 0
            }
        case .linuxSLL:
            guard data.readableBytes >= 16 else { throw cut("Linux SLL header needs 16 bytes") }
            data.moveReaderIndex(forwardBy: 14)
            etherType = data.readInteger(as: UInt16.self) ?? 0
        case .linuxSLL2:
            guard data.readableBytes >= 20 else { throw cut("Linux SLL2 header needs 20 bytes") }
            etherType = data.getInteger(at: data.readerIndex, as: UInt16.self) ?? 0
            data.moveReaderIndex(forwardBy: 20)
        case .null, .loop:
            guard data.readableBytes >= 4, let bytes = data.readBytes(length: 4) else { throw cut("loopback header needs 4 bytes") }
            // NULL stores the family in the capturing host's byte order; LOOP in network order.
            let little = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
            let big = UInt32(bytes[3]) | UInt32(bytes[2]) << 8 | UInt32(bytes[1]) << 16 | UInt32(bytes[0]) << 24
            let family = frame.linkType == .loop ? big : (little < 256 ? little : big)
            switch family {
            case 2: etherType = 0x0800
            case 10, 23, 24, 28, 30: etherType = 0x86DD  // AF_INET6 on Linux, Windows, BSDs, macOS
            default: return nil
            }
        case .raw, .rawOpenBSD, .rawLinkType, .ipv4, .ipv6:
            guard let first = data.getInteger(at: data.readerIndex, as: UInt8.self) else { throw cut("empty raw IP frame") }
            etherType = first >> 4 == 6 ? 0x86DD : 0x0800
        default:
            throw CaptureError(layer: .link, frame: frame.number, offset: 0, reason: "unsupported link type \(frame.linkType.rawValue)")
        }
        switch etherType {
        case 0x0800: return 4
        case 0x86DD: return 6
        default: return nil
        }
    }

    // MARK: IPv4

    private mutating func ipv4(_ data: inout ByteBuffer, frame: CapturedFrame, start: Int) throws(CaptureError)
        -> (UInt32, UInt32, ByteBuffer)?
    {
        let at = start - frame.data.readerIndex
        func bad(_ reason: String, _ delta: Int = 0) -> CaptureError {
            CaptureError(layer: .ipv4, frame: frame.number, offset: at + delta, reason: reason)
        }
        guard data.readableBytes >= 20, let first = data.getInteger(at: start, as: UInt8.self) else {
            throw bad("IPv4 header needs 20 bytes, \(data.readableBytes) captured")
        }
        guard first >> 4 == 4 else { throw bad("version \(first >> 4) in an IPv4 header") }
        let headerLength = Int(first & 0x0F) * 4
        let totalLength = Int(data.getInteger(at: start + 2, as: UInt16.self) ?? 0)
        guard headerLength >= 20 else { throw bad("header length \(headerLength) is under 20") }
        guard totalLength >= headerLength else { throw bad("total length \(totalLength) is under the header length \(headerLength)", 2) }
        let identification = data.getInteger(at: start + 4, as: UInt16.self) ?? 0
        let flagsAndOffset = data.getInteger(at: start + 6, as: UInt16.self) ?? 0
        let proto = data.getInteger(at: start + 9, as: UInt8.self) ?? 0
        let source = data.getInteger(at: start + 12, as: UInt32.self) ?? 0
        let destination = data.getInteger(at: start + 16, as: UInt32.self) ?? 0
        guard proto == 6 else { return nil }
        // Ethernet pads short frames: the IP total length says where the datagram ends.
        let available = min(totalLength, data.readableBytes)
        guard available >= headerLength, let payload = data.getSlice(at: start + headerLength, length: available - headerLength) else {
            throw bad("header runs past the captured bytes")
        }
        data.moveReaderIndex(forwardBy: headerLength)
        let moreFragments = flagsAndOffset & 0x2000 != 0
        let fragmentOffset = Int(flagsAndOffset & 0x1FFF) * 8
        if !moreFragments && fragmentOffset == 0 {
            return (source, destination, payload)
        }
        let key = FragmentKey(source: source, destination: destination, identification: identification, proto: proto)
        guard let whole = addFragment(key, offset: fragmentOffset, bytes: payload, last: !moreFragments,
                                      header: data, frame: frame.number) else { return nil }
        return (source, destination, whole)
    }

    private mutating func addFragment(_ key: FragmentKey, offset: Int, bytes: ByteBuffer, last: Bool, header: ByteBuffer,
                                      frame: Int) -> ByteBuffer? {
        var pending = fragments[key] ?? {
            fragmentOrder.append(key)
            if fragmentOrder.count > maximumPendingDatagrams {
                fragments[fragmentOrder.removeFirst()] = nil
            }
            return PendingDatagram(header: header, firstFrame: frame)
        }()
        pending.pieces.append((offset, bytes.keptAlone()))
        if last { pending.totalLength = offset + bytes.readableBytes }
        guard let total = pending.totalLength, total <= 65_535 else {
            fragments[key] = pending
            return nil
        }
        // Complete when the pieces cover 0..<total; later copies of a range win nothing.
        let sorted = pending.pieces.sorted { $0.offset < $1.offset }
        var covered = 0
        for piece in sorted where piece.offset <= covered {
            covered = max(covered, piece.offset + piece.bytes.readableBytes)
        }
        guard covered >= total else {
            fragments[key] = pending
            return nil
        }
        var whole = ByteBufferAllocator().buffer(capacity: total)
        whole.writeRepeatingByte(0, count: total)
        for piece in sorted {
            let length = min(piece.bytes.readableBytes, total - piece.offset)
            guard length > 0 else { continue }
            whole.setBuffer(piece.bytes.getSlice(at: piece.bytes.readerIndex, length: length) ?? ByteBuffer(), at: piece.offset)
        }
        fragments[key] = nil
        fragmentOrder.removeAll { $0 == key }
        return whole
    }

    // MARK: IPv6

    private func ipv6(_ data: inout ByteBuffer, frame: CapturedFrame, start: Int) throws(CaptureError)
        -> (IPAddress, IPAddress, ByteBuffer)?
    {
        let at = start - frame.data.readerIndex
        func bad(_ reason: String, _ delta: Int = 0) -> CaptureError {
            CaptureError(layer: .ipv6, frame: frame.number, offset: at + delta, reason: reason)
        }
        guard data.readableBytes >= 40, let first = data.getInteger(at: start, as: UInt8.self) else {
            throw bad("IPv6 header needs 40 bytes, \(data.readableBytes) captured")
        }
        guard first >> 4 == 6 else { throw bad("version \(first >> 4) in an IPv6 header") }
        let payloadLength = Int(data.getInteger(at: start + 4, as: UInt16.self) ?? 0)
        var next = data.getInteger(at: start + 6, as: UInt8.self) ?? 0
        let source = IPAddress.v6(high: data.getInteger(at: start + 8, as: UInt64.self) ?? 0,
                                  low: data.getInteger(at: start + 16, as: UInt64.self) ?? 0)
        let destination = IPAddress.v6(high: data.getInteger(at: start + 24, as: UInt64.self) ?? 0,
                                       low: data.getInteger(at: start + 32, as: UInt64.self) ?? 0)
        let end = start + 40 + min(payloadLength, data.readableBytes - 40)
        var position = start + 40
        // Hop-by-hop, routing, destination options: skipped. A fragment header is only
        // accepted for an unfragmented datagram (offset 0, no more fragments).
        while true {
            switch next {
            case 6:
                data.moveReaderIndex(to: position)
                return (source, destination, data.getSlice(at: position, length: end - position) ?? ByteBuffer())
            case 0, 43, 60:
                guard position + 8 <= end, let following = data.getInteger(at: position, as: UInt8.self),
                      let length = data.getInteger(at: position + 1, as: UInt8.self) else {
                    throw bad("extension header cut short", position - start)
                }
                next = following
                position += (Int(length) + 1) * 8
            case 44:
                guard position + 8 <= end, let following = data.getInteger(at: position, as: UInt8.self),
                      let offsetField = data.getInteger(at: position + 2, as: UInt16.self) else {
                    throw bad("fragment header cut short", position - start)
                }
                guard offsetField & 0xFFF9 == 0 else { return nil }  // a real fragment: not reassembled
                next = following
                position += 8
            default:
                return nil
            }
            guard position <= end else { throw bad("extension headers run past the payload", 6) }
        }
    }

    // MARK: TCP

    private func tcp(_ segment: ByteBuffer, source: IPAddress, destination: IPAddress, frame: CapturedFrame, offset: Int)
        throws(CaptureError) -> TCPSegment
    {
        let start = segment.readerIndex
        guard segment.readableBytes >= 20 else {
            throw CaptureError(layer: .tcp, frame: frame.number, offset: offset,
                               reason: "TCP header needs 20 bytes, \(segment.readableBytes) captured")
        }
        let dataOffset = Int((segment.getInteger(at: start + 12, as: UInt8.self) ?? 0) >> 4) * 4
        guard dataOffset >= 20, dataOffset <= segment.readableBytes else {
            throw CaptureError(layer: .tcp, frame: frame.number, offset: offset + 12,
                               reason: "data offset \(dataOffset) outside 20…\(segment.readableBytes)")
        }
        return TCPSegment(
            frame: frame.number, time: frame.time,
            source: Endpoint(address: source, port: segment.getInteger(at: start, as: UInt16.self) ?? 0),
            destination: Endpoint(address: destination, port: segment.getInteger(at: start + 2, as: UInt16.self) ?? 0),
            sequence: segment.getInteger(at: start + 4, as: UInt32.self) ?? 0,
            acknowledgement: segment.getInteger(at: start + 8, as: UInt32.self) ?? 0,
            flags: TCPFlags(rawValue: (segment.getInteger(at: start + 13, as: UInt8.self) ?? 0) & 0x1F),
            payload: segment.getSlice(at: start + dataOffset, length: segment.readableBytes - dataOffset) ?? ByteBuffer())
    }
}
