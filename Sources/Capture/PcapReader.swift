import CPcap
public import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// libpcap link-layer header types wmq decodes (https://www.tcpdump.org/linktypes.html).
public struct LinkType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let null = LinkType(rawValue: 0)
    public static let ethernet = LinkType(rawValue: 1)
    /// DLT_RAW is 12 on most systems, 14 on OpenBSD; LINKTYPE_RAW in files is 101.
    public static let raw = LinkType(rawValue: 12)
    public static let rawOpenBSD = LinkType(rawValue: 14)
    public static let rawLinkType = LinkType(rawValue: 101)
    public static let loop = LinkType(rawValue: 108)
    public static let linuxSLL = LinkType(rawValue: 113)
    public static let ipv4 = LinkType(rawValue: 228)
    public static let ipv6 = LinkType(rawValue: 229)
    public static let linuxSLL2 = LinkType(rawValue: 276)

    public var description: String {
        switch self {
        case .null: "BSD loopback (NULL)"
        case .ethernet: "Ethernet"
        case .raw, .rawOpenBSD, .rawLinkType: "raw IP"
        case .loop: "OpenBSD loopback (LOOP)"
        case .linuxSLL: "Linux cooked (SLL)"
        case .ipv4: "raw IPv4"
        case .ipv6: "raw IPv6"
        case .linuxSLL2: "Linux cooked v2 (SLL2)"
        default: "link type \(rawValue)"
        }
    }

    public var isSupported: Bool {
        [.null, .ethernet, .raw, .rawOpenBSD, .rawLinkType, .loop, .linuxSLL, .ipv4, .ipv6, .linuxSLL2].contains(self)
    }
}

/// One captured frame.
public struct CapturedFrame: Sendable {
    /// 1 for the first frame of the file.
    public var number: Int
    /// Seconds since the epoch, with the file's precision (nanoseconds where it has them).
    public var time: Double
    public var data: ByteBuffer
    /// The length on the wire; larger than `data` when the capture cut the frame (snaplen).
    public var originalLength: Int
    public var linkType: LinkType
}

/// Reads pcap and pcapng files (or standard input, `-`): classic pcap files with
/// ``ClassicPcapFile``, everything else through libpcap.
///
/// Not Sendable: it owns a file descriptor or a libpcap handle. One reader per file.
public final class PcapReader {
    /// libpcap's handle, for pcapng, standard input and unusual pcap variants.
    private let handle: OpaquePointer?
    /// Our own reader, for classic pcap files (read ahead only).
    private var classic: ClassicPcapFile?
    /// The descriptor ``classic`` reads from (-1 for a file image in memory).
    private var descriptor: Int32 = -1
    static let fileBufferSize = 1 << 20
    public let path: String
    public let linkType: LinkType
    private var frameNumber = 0
    private var failed = false
    /// The file image behind a reader made with ``init(bytes:name:)``.
    private var memory: UnsafeMutableRawBufferPointer?

    public convenience init(path: String) throws(CaptureError) {
        try self.init(path: path, readsAhead: path != "-")
    }

    /// `readsAhead`: whether frames are read in batches (see ``aheadSize``); tests compare both ways.
    init(path: String, readsAhead: Bool) throws(CaptureError) {
        self.readsAhead = readsAhead
        self.path = path
        if readsAhead, path != "-" {
            let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if descriptor >= 0 {
                var header = [UInt8](repeating: 0, count: 24)
                let count = header.withUnsafeMutableBytes { Glibc.pread(descriptor, $0.baseAddress, 24, 0) }
                if count == 24, let file = ClassicPcapFile.open(header: header, source: Self.reading(descriptor, offset: 24)) {
                    handle = nil
                    classic = file
                    self.descriptor = descriptor
                    linkType = file.linkType
                    return
                }
                Glibc.close(descriptor)
            }
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let opened: OpaquePointer?
        if path != "-", let file = fopen(path, "rb") {
            // libpcap reads through stdio, whose buffer is one page: a read() for every 4 KiB,
            // a fifth of the time of `--stats`. A buffer of 1 MiB, set before any reading.
            setvbuf(file, nil, _IOFBF, Self.fileBufferSize)
            opened = pcap_fopen_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer)
            if opened == nil { fclose(file) }
        } else {
            // Standard input, or a file fopen could not open: libpcap says why.
            opened = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer)
        }
        guard let handle = opened else {
            throw CaptureError(layer: .file, offset: 0, reason: Self.explain(errorBuffer))
        }
        self.handle = handle
        linkType = LinkType(rawValue: pcap_datalink(handle))
    }

    /// A ``ClassicPcapFile/Source`` reading `descriptor` from `offset` on.
    private static func reading(_ descriptor: Int32, offset: Int) -> ClassicPcapFile.Source {
        var offset = offset
        return { (space: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int in
            while true {
                let count = Glibc.pread(descriptor, space.baseAddress, space.count, off_t(offset))
                if count >= 0 {
                    offset += count
                    return count
                }
                if errno == EINTR { continue }
                throw CaptureError(layer: .file, offset: offset, reason: "cannot read the file (\(String(cString: strerror(errno))))")
            }
        }
    }

    /// Reads a file image held in memory (fuzzing, tests); `name` stands for the path in
    /// messages.
    public convenience init(bytes: some Collection<UInt8>, name: String = "memory") throws(CaptureError) {
        try self.init(bytes: bytes, name: name, classic: true)
    }

    /// `classic`: whether a classic pcap image is read by ``ClassicPcapFile`` (false: libpcap
    /// reads every image; the capture fuzz target compares the two).
    public init(bytes: some Collection<UInt8>, name: String = "memory", classic useClassic: Bool) throws(CaptureError) {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
        memory.copyBytes(from: bytes)
        if useClassic, bytes.count >= 24 {
            var position = 24
            let image = UnsafeRawBufferPointer(memory)
            let count = bytes.count
            let source: ClassicPcapFile.Source = { (space: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int in
                let length = min(space.count, count - position)
                guard length > 0 else { return 0 }
                space.copyMemory(from: UnsafeRawBufferPointer(rebasing: image[position..<(position + length)]))
                position += length
                return length
            }
            if let file = ClassicPcapFile.open(header: Array(image[0..<24]), source: source) {
                handle = nil
                classic = file
                self.memory = memory
                readsAhead = true
                path = name
                linkType = file.linkType
                return
            }
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard !bytes.isEmpty, let file = fmemopen(memory.baseAddress, bytes.count, "rb") else {
            memory.deallocate()
            throw CaptureError(layer: .file, offset: 0, reason: "not a pcap or pcapng file (empty)")
        }
        guard let handle = pcap_fopen_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer)
        else {
            fclose(file)
            memory.deallocate()
            throw CaptureError(layer: .file, offset: 0, reason: Self.explain(errorBuffer))
        }
        self.handle = handle
        self.memory = memory
        readsAhead = true
        path = name
        linkType = LinkType(rawValue: pcap_datalink(handle))
    }

    deinit {
        if let handle { pcap_close(handle) }
        if descriptor >= 0 { Glibc.close(descriptor) }
        memory?.deallocate()
    }

    /// The next frame, nil at the end of the file. A damaged record ends the reading:
    /// the error says where, and the frames before it were all returned.
    public func next() throws(CaptureError) -> CapturedFrame? {
        if readsAhead {
            if aheadIndex == ahead.count { readAhead() }
            if aheadIndex < ahead.count {
                let frame = ahead[aheadIndex]
                aheadIndex += 1
                return CapturedFrame(number: frame.number, time: frame.time,
                                     data: aheadBytes.getSlice(at: frame.start, length: frame.length) ?? ByteBuffer(),
                                     originalLength: frame.originalLength, linkType: linkType)
            }
            if let error = aheadError.take() { throw error }
            return nil
        }
        guard let (header, data) = try nextRecord() else { return nil }
        return CapturedFrame(number: frameNumber, time: Self.time(of: header),
                             data: ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: Int(header.pointee.caplen))),
                             originalLength: Int(header.pointee.len), linkType: linkType)
    }

    /// libpcap's next record: its header and bytes, valid until the next call.
    private func nextRecord() throws(CaptureError) -> (UnsafeMutablePointer<pcap_pkthdr>, UnsafePointer<UInt8>)? {
        guard !failed, let handle else { return nil }
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let status = pcap_next_ex(handle, &header, &data)
        switch status {
        case 1:
            guard let header, let data else { return nil }
            frameNumber += 1
            return (header, data)
        case PCAP_ERROR_BREAK:
            return nil
        default:
            failed = true
            let message = String(cString: pcap_geterr(handle))
            throw CaptureError(layer: .file, frame: frameNumber + 1, offset: fileOffset,
                               reason: "after \(frameNumber) frame(s): \(Self.explain(message))")
        }
    }

    private static func time(of header: UnsafeMutablePointer<pcap_pkthdr>) -> Double {
        Double(header.pointee.ts.tv_sec) + Double(header.pointee.ts.tv_usec) / 1e9
    }

    // Reading a file ahead: the bytes of up to 32 KiB of frames are copied into one buffer,
    // and each frame is a slice of it. One allocation for dozens of frames instead of one
    // per frame, and one free (often on another thread, which costs glibc a lock). A slice
    // keeps its whole buffer alive, so the buffer is kept small: a connection holding on to
    // part of a frame holds at most about as much as a large frame did before. Standard input
    // is read frame by frame, so that a live pipe shows each frame as it comes.
    static let aheadSize = 32 << 10
    private let readsAhead: Bool
    private typealias AheadFrame = ClassicPcapFile.Frame
    private var ahead: [AheadFrame] = []
    private var aheadIndex = 0
    private var aheadBytes = ByteBuffer()
    /// An error met while reading ahead, thrown once the frames before it are returned.
    private var aheadError: CaptureError?

    private func readAhead() {
        ahead.removeAll(keepingCapacity: true)
        aheadIndex = 0
        if classic != nil {
            guard !failed else { return }
            let (bytes, error) = classic?.read(size: Self.aheadSize, into: &ahead) ?? (ByteBuffer(), nil)
            aheadBytes = bytes
            if let error {
                failed = true
                aheadError = error
            }
            return
        }
        // A new buffer each time: the frames handed out share the old one.
        var bytes = ByteBufferAllocator().buffer(capacity: Self.aheadSize)
        while bytes.readableBytes < Self.aheadSize {
            do {
                guard let (header, data) = try nextRecord() else { break }
                let length = Int(header.pointee.caplen)
                ahead.append(AheadFrame(number: frameNumber, time: Self.time(of: header), start: bytes.writerIndex,
                                        length: length, originalLength: Int(header.pointee.len)))
                bytes.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
            } catch {
                aheadError = error
                break
            }
        }
        aheadBytes = bytes
    }

    /// Where libpcap stands in the file (for standard input, the bytes read so far).
    public var fileOffset: Int {
        if let classic { return classic.offset }
        guard let handle, let file = pcap_file(handle) else { return 0 }
        return Int(ftell(file))
    }

    /// libpcap's message in its error buffer, explained.
    private static func explain(_ errorBuffer: [CChar]) -> String {
        explain(String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    private static func explain(_ message: String) -> String {
        if message.contains("unknown file format") || message.contains("bad dump file format") {
            return "not a pcap or pcapng file (\(message))"
        }
        return message
    }
}
