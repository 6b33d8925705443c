@testable import Capture
import Foundation
import NIOCore
import Testing

@Suite("pcap input")
struct PcapTests {
    static func write(_ frames: [[UInt8]], link: LinkType) throws -> String {
        let path = temporaryPath(".pcap")
        let writer = try PcapWriter(path: path, linkType: link)
        for (index, frame) in frames.enumerated() { writer.write(frame, time: 1_700_000_000 + Double(index) * 0.25) }
        writer.flush()
        return path
    }

    static func segments(_ path: String) throws -> [TCPSegment] {
        let reader = try PcapReader(path: path)
        var decoder = PacketDecoder()
        var out: [TCPSegment] = []
        while let frame = try reader.next() {
            if let segment = try decoder.segment(from: frame) { out.append(segment) }
        }
        return out
    }

    @Test(arguments: [
        SyntheticPacket.Link.ethernet, .ethernetVLAN([100]), .ethernetVLAN([10, 20]), .linuxSLL, .linuxSLL2, .null, .raw,
    ])
    func everyLinkTypeIPv4(link: SyntheticPacket.Link) throws {
        let frame = SyntheticPacket.tcp(from: client, to: server, sequence: 7, flags: [.ack, .psh], payload: Array("MQTT".utf8), link: link)
        let path = try Self.write([frame], link: link.linkType)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let segments = try Self.segments(path)
        #expect(segments.count == 1)
        #expect(segments.first?.source == client)
        #expect(segments.first?.destination == server)
        #expect(segments.first?.sequence == 7)
        #expect(segments.first.map { String(buffer: $0.payload) } == "MQTT")
        #expect(segments.first?.time == 1_700_000_000)
    }

    @Test(arguments: [SyntheticPacket.Link.ethernet, .linuxSLL2, .null, .raw])
    func ipv6(link: SyntheticPacket.Link) throws {
        let a = Endpoint(address: .v6(high: 0x2001_0db8_0000_0000, low: 1), port: 50_000)
        let b = Endpoint(address: .v6(high: 0, low: 1), port: 8080)
        let frame = SyntheticPacket.tcp(from: a, to: b, sequence: 1, flags: [.ack], payload: [1, 2, 3], link: link)
        let path = try Self.write([frame], link: link.linkType)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let segments = try Self.segments(path)
        #expect(segments.first?.source.description == "[2001:db8::1]:50000")
        #expect(segments.first?.destination.description == "[::1]:8080")
        #expect(segments.first?.payload == ByteBuffer(bytes: [1, 2, 3]))
    }

    @Test func ipv6ExtensionHeadersAreSkipped() throws {
        let a = Endpoint(address: .v6(high: 1, low: 2), port: 1000)
        let b = Endpoint(address: .v6(high: 3, low: 4), port: 2000)
        let tcp = SyntheticPacket.tcpSegment(from: a, to: b, sequence: 5, acknowledgement: 0, flags: [.ack], payload: [9])
        let hopByHop: [UInt8] = [6, 0, 1, 4, 0, 0, 0, 0]  // next header TCP, length 0 (8 bytes), PadN
        let packet = SyntheticPacket.ipv6(source: a.address, destination: b.address, payload: hopByHop + tcp, nextHeader: 0)
        let path = try Self.write([SyntheticPacket.frame(packet, link: .ethernet, isIPv6: true)], link: .ethernet)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try Self.segments(path).first?.payload == ByteBuffer(bytes: [9]))
    }

    /// IPv4 fragments, out of order and with a duplicate, are reassembled.
    @Test func ipv4Fragments() throws {
        let payload = (0..<100).map { UInt8($0) }
        let tcp = SyntheticPacket.tcpSegment(from: client, to: server, sequence: 1, acknowledgement: 0, flags: [.ack], payload: payload)
        guard case .v4(let s) = client.address, case .v4(let d) = server.address else { return }
        let pieces = [(0, Array(tcp[0..<48]), true), (48, Array(tcp[48..<96]), true), (96, Array(tcp[96...]), false)]
        let frames = [pieces[2], pieces[0], pieces[0], pieces[1]].map { offset, bytes, more in
            SyntheticPacket.frame(SyntheticPacket.ipv4(source: s, destination: d, payload: bytes, identification: 42,
                                                       fragmentOffset: offset, moreFragments: more), link: .ethernet, isIPv6: false)
        }
        let path = try Self.write(frames, link: .ethernet)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let segments = try Self.segments(path)
        #expect(segments.count == 1)
        #expect(segments.first.map { Array($0.payload.readableBytesView) } == payload)
        #expect(segments.first?.frame == 4)
    }

    @Test func ethernetPaddingIsNotPayload() throws {
        var frame = SyntheticPacket.tcp(from: client, to: server, sequence: 1, flags: [.ack], payload: [], link: .ethernet)
        frame += [0, 0, 0, 0, 0, 0]  // padded to the Ethernet minimum
        let path = try Self.write([frame], link: .ethernet)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try Self.segments(path).first?.payload.readableBytes == 0)
    }

    @Test func wrongMagicIsAFileError() throws {
        let path = temporaryPath(".pcap")
        try Data("this is not a capture file at all".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { _ = try PcapReader(path: path) } throws: { error in
            guard let error = error as? CaptureError else { return false }
            return error.layer == .file && error.reason.contains("not a pcap or pcapng file")
        }
    }

    /// Every truncation length of a small capture: no crash, the complete frames before
    /// the cut come out, and a cut inside a record is an error naming the frame.
    @Test func everyTruncationLength() throws {
        let frames = (0..<3).map { index in
            SyntheticPacket.tcp(from: client, to: server, sequence: UInt32(index * 10), flags: [.ack],
                                payload: Array(repeating: UInt8(index), count: 10))
        }
        let path = try Self.write(frames, link: .ethernet)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        let recordSize = 16 + frames[0].count
        for length in 0..<whole.count {
            let cut = temporaryPath(".pcap")
            try whole.prefix(length).write(to: URL(fileURLWithPath: cut))
            defer { try? FileManager.default.removeItem(atPath: cut) }
            guard let reader = try? PcapReader(path: cut) else {
                #expect(length < 24, "a file with a whole header did not open (\(length) bytes)")
                continue
            }
            var count = 0
            var failure: CaptureError?
            do {
                while try reader.next() != nil { count += 1 }
            } catch {
                failure = error
            }
            let complete = (length - 24) / recordSize
            #expect(count == complete, "length \(length)")
            let cleanEnd = (length - 24) % recordSize == 0
            #expect((failure == nil) == cleanEnd, "length \(length)")
            if let failure { #expect(failure.frame == complete + 1) }
        }
    }

    @Test func unknownLinkTypeIsAFrameError() throws {
        let path = try Self.write([[1, 2, 3, 4]], link: LinkType(rawValue: 147))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reader = try PcapReader(path: path)
        #expect(!reader.linkType.isSupported)
        let frame = try #require(try reader.next())
        var decoder = PacketDecoder()
        #expect { _ = try decoder.segment(from: frame) } throws: { ($0 as? CaptureError)?.layer == .link }
    }

    @Test(arguments: [
        // (frame bytes after Ethernet, layer, offset in the frame of the field at fault)
        ([0x45, 0, 0, 10] + [UInt8](repeating: 0, count: 16), CaptureError.Layer.ipv4, 16),  // total length < header
        ([0x46, 0, 0, 20] + [UInt8](repeating: 0, count: 16), .ipv4, 16),  // header length 24 > total
        ([0x60, 0, 0, 0, 0, 0, 6], .ipv6, 14),  // IPv6 header cut short
    ])
    func malformedIPHeaders(ip: [UInt8], layer: CaptureError.Layer, offset: Int) throws {
        let isIPv6 = ip[0] >> 4 == 6
        let path = try Self.write([SyntheticPacket.frame(ip, link: .ethernet, isIPv6: isIPv6)], link: .ethernet)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reader = try PcapReader(path: path)
        let frame = try #require(try reader.next())
        var decoder = PacketDecoder()
        #expect { _ = try decoder.segment(from: frame) } throws: { error in
            guard let error = error as? CaptureError else { return false }
            return error.layer == layer && error.frame == 1 && error.offset == offset
        }
    }
}

/// Classic pcap files are read by our own reader (``ClassicPcapFile``), read ahead into
/// buffers the frames are slices of; `readsAhead: false` reads through libpcap, frame by
/// frame, as standard input is. libpcap is the peer: both give the same frames, in the same
/// order, with the same error at the same place when the file is cut short or damaged.
@Suite("pcap reading ahead")
struct PcapReadAheadTests {
    /// A classic pcap image written by hand, in either byte order and time unit.
    static func image(bigEndian: Bool, nanoseconds: Bool, snapLength: UInt32, linkType: UInt32 = 1,
                      records: [(seconds: UInt32, fraction: UInt32, bytes: [UInt8], original: UInt32)]) -> [UInt8] {
        func u32(_ value: UInt32) -> [UInt8] {
            let little = [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
            return bigEndian ? little.reversed() : little
        }
        func u16(_ value: UInt16) -> [UInt8] {
            bigEndian ? [UInt8(value >> 8), UInt8(value & 0xFF)] : [UInt8(value & 0xFF), UInt8(value >> 8)]
        }
        var bytes = u32(nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4) + u16(2) + u16(4) + u32(0) + u32(0) + u32(snapLength) + u32(linkType)
        for record in records {
            bytes += u32(record.seconds) + u32(record.fraction) + u32(UInt32(record.bytes.count)) + u32(record.original)
            bytes += record.bytes
        }
        return bytes
    }

    /// Every byte order, time unit and snap length (ordinary, shorter than the records, 0,
    /// negative), cut at every length: our reader and libpcap agree on every frame and error.
    @Test(arguments: [false, true])
    func ourReaderAgreesWithLibpcapOnEveryCut(bigEndian: Bool) throws {
        let records: [(seconds: UInt32, fraction: UInt32, bytes: [UInt8], original: UInt32)] = [
            (1_700_000_000, 999_999, (0..<60).map { UInt8($0) }, 60),
            (1_700_000_001, 5, (0..<90).map { UInt8($0 ^ 0x5A) }, 1_500),  // cut by the capture (snaplen)
            (0xFFFF_FFF0, 0xFFFF_FFFF, [1, 2, 3], 2),  // after 2038 and a fraction out of range
        ]
        let path = temporaryPath(".pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        for nanoseconds in [false, true] {
            for snapLength: UInt32 in [262_144, 40, 0, 0xFFFF_FFFF] {
                let whole = Self.image(bigEndian: bigEndian, nanoseconds: nanoseconds, snapLength: snapLength, records: records)
                for cut in 24...whole.count {
                    try Data(whole.prefix(cut)).write(to: URL(fileURLWithPath: path))
                    let ours = Self.frames(path, readsAhead: true)
                    let libpcap = Self.frames(path, readsAhead: false)
                    let label = "big-endian \(bigEndian), ns \(nanoseconds), snaplen \(snapLength), cut \(cut)"
                    #expect(ours.error == libpcap.error, "\(label)")
                    #expect(ours.frames.count == libpcap.frames.count, "\(label)")
                    for (a, b) in zip(ours.frames, libpcap.frames) {
                        // The third record's time: the format says unsigned, and so read both
                        // readers in a swapped file; libpcap reads a native file's as signed.
                        let expected = b.number != 3 || bigEndian ? b.time
                            : 4_294_967_280 + 4_294_967_295 * (nanoseconds ? 1e-9 : 1e-6)
                        if b.number == 3 && !bigEndian {
                            #expect(b.time < 0, "libpcap reads a native file's times as signed (\(label))")
                        }
                        #expect(abs(a.time - expected) < 1e-6, "\(label)")
                        #expect(a.number == b.number && (a.time == b.time || b.number == 3) && a.originalLength == b.originalLength && a.data == b.data
                                && a.linkType == b.linkType, "frame \(b.number), \(label): \(a.time) \(b.time) \(a.originalLength) \(b.originalLength) \(a.data.readableBytes) \(b.data.readableBytes)")
                    }
                    if cut == whole.count { #expect(ours.error == nil && ours.frames.count == 3, "\(label)") }
                }
            }
        }
    }

    /// A record longer than libpcap accepts (256 KiB) ends the reading with libpcap's words.
    @Test func anAbsurdRecordLengthIsLibpcapsError() throws {
        var whole = Self.image(bigEndian: false, nanoseconds: false, snapLength: 65_535,
                               records: [(1, 0, [1, 2, 3], 3), (2, 0, [4, 5, 6], 3)])
        whole[24 + 19 + 11] = 0x10  // the top byte of the second record's captured length: 0x10000003
        let path = temporaryPath(".pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(whole).write(to: URL(fileURLWithPath: path))
        let ours = Self.frames(path, readsAhead: true)
        #expect(ours.frames.count == 1)
        #expect(ours.error?.contains("invalid packet capture length 268435459, bigger than snaplen of 65535") == true)
        #expect(ours.error == Self.frames(path, readsAhead: false).error)
    }

    /// Link types that need libpcap's mapping or are unusual are read by libpcap.
    @Test(arguments: [(UInt32(101), LinkType.raw), (UInt32(1), .ethernet), (UInt32(113), .linuxSLL), (UInt32(147), LinkType(rawValue: 147))])
    func linkTypesAsLibpcapNamesThem(raw: UInt32, expected: LinkType) throws {
        let whole = Self.image(bigEndian: false, nanoseconds: false, snapLength: 65_535, linkType: raw, records: [(1, 0, [0x45], 1)])
        let path = temporaryPath(".pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(whole).write(to: URL(fileURLWithPath: path))
        #expect(try PcapReader(path: path, readsAhead: true).linkType == expected)
        #expect(try PcapReader(path: path, readsAhead: false).linkType == expected)
    }

    static func frames(_ path: String, readsAhead: Bool) -> (frames: [CapturedFrame], error: String?) {
        var frames: [CapturedFrame] = []
        do {
            let reader = try PcapReader(path: path, readsAhead: readsAhead)
            while let frame = try reader.next() { frames.append(frame) }
            // After an error or the end, nothing more comes.
            if try reader.next() != nil { return (frames, "a frame after the end") }
        } catch {
            return (frames, "\(error)")
        }
        return (frames, nil)
    }

    @Test func readingAheadGivesTheFramesOneByOneReadingGives() throws {
        var generator = SystemRandomNumberGenerator()
        // Small frames, frames around the batch size and larger than it.
        let sizes = (0..<400).map { index -> Int in
            index % 50 == 7 ? [31_000, 33_000, 70_000].randomElement(using: &generator) ?? 70_000 : Int.random(in: 1...1_600, using: &generator)
        }
        let frames = sizes.enumerated().map { index, size in (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ index) } }
        let path = try PcapTests.write(frames, link: .ethernet)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let whole = try #require(FileManager.default.contents(atPath: path))
        let cutPath = path + ".cut"
        defer { try? FileManager.default.removeItem(atPath: cutPath) }
        for cut in [whole.count, whole.count - 1, whole.count / 2, whole.count / 3 + 5, 24 + 16 + 3] {
            try whole.prefix(cut).write(to: URL(fileURLWithPath: cutPath))
            let ahead = Self.frames(cutPath, readsAhead: true)
            let oneByOne = Self.frames(cutPath, readsAhead: false)
            #expect(ahead.error == oneByOne.error, "cut at \(cut)")
            #expect(ahead.frames.count == oneByOne.frames.count, "cut at \(cut)")
            for (a, b) in zip(ahead.frames, oneByOne.frames) {
                #expect(a.number == b.number && a.time == b.time && a.originalLength == b.originalLength && a.data == b.data,
                        "frame \(b.number), cut at \(cut)")
            }
            if cut == whole.count {
                #expect(ahead.error == nil && ahead.frames.count == frames.count)
                #expect(ahead.frames.map { Array($0.data.readableBytesView) } == frames)
            } else {
                #expect(ahead.error != nil, "cut at \(cut)")
            }
        }
    }
}
