import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A reader of classic pcap files (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html),
/// used by ``PcapReader`` for files in the plain layout; pcapng, standard input and every
/// unusual variant stay with libpcap.
///
/// Why our own, beside libpcap: reading is the part of `wmq-decode --stats` that one thread
/// has to do alone. Through libpcap each byte was copied three times (the kernel into stdio's
/// buffer, stdio into libpcap's packet buffer, that into the buffer the frame is a slice of)
/// and the first copy went to freshly faulted pages. Here the kernel reads straight into the
/// buffer the frames are slices of, and nothing else copies them. The record format is 16
/// bytes of header per frame, so the parser is short; libpcap stays its peer: the tests read
/// every file both ways (`PcapReader(path:readsAhead: false)` is libpcap) and compare frames
/// and errors, and the capture fuzz target does the same on every input.
struct ClassicPcapFile {
    /// Where the bytes come from: `read` fills the buffer it is given as far as it can and
    /// returns the count, 0 at the end; it throws only for an error of the file itself.
    typealias Source = (UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int

    let linkType: LinkType
    private let swapped: Bool
    private let nanoseconds: Bool
    /// The file's snapshot length as libpcap uses it: records longer than it keep only this much.
    private let snapshot: Int
    private let source: Source
    /// Bytes read and not yet handed out: the start of a record cut by the end of a chunk.
    private var carry: [UInt8] = []
    /// The file offset of the first byte of `carry` (or of what is read next when it is empty).
    private(set) var offset: Int
    private var frameNumber = 0
    private var atEnd = false

    /// The largest record libpcap accepts for the usual link types (`max_snaplen_for_dlt`).
    static let maximumSnapshot = 262_144

    /// Reads the 24-byte file header through `source`; nil when the file is not a classic pcap
    /// file this reader handles (libpcap then reads it, or says why it cannot).
    static func open(header: [UInt8], source: @escaping Source) -> ClassicPcapFile? {
        guard header.count >= 24 else { return nil }
        let magic = UInt32(header[0]) << 24 | UInt32(header[1]) << 16 | UInt32(header[2]) << 8 | UInt32(header[3])
        let swapped: Bool
        let nanoseconds: Bool
        switch magic {
        case 0xD4C3_B2A1: (swapped, nanoseconds) = (false, false)  // little-endian file, microseconds
        case 0x4D3C_B2A1: (swapped, nanoseconds) = (false, true)
        case 0xA1B2_C3D4: (swapped, nanoseconds) = (true, false)  // big-endian file
        case 0xA1B2_3C4D: (swapped, nanoseconds) = (true, true)
        default: return nil
        }
        func field16(_ at: Int) -> Int {
            swapped ? Int(header[at]) << 8 | Int(header[at + 1]) : Int(header[at + 1]) << 8 | Int(header[at])
        }
        func field32(_ at: Int) -> UInt32 { Self.field32(header, at: at, swapped: swapped) }
        // Version 2.4 only; older layouts and their quirks are libpcap's.
        guard field16(4) == 2, field16(6) == 4 else { return nil }
        let rawLink = field32(20)
        // Link types whose LINKTYPE_ number is their DLT_ number, and raw IP (101 → DLT_RAW);
        // FCS bits in the upper part of the field, and every other type, are libpcap's.
        let linkType: LinkType
        switch rawLink {
        case 0, 1, 108, 113, 228, 229, 276: linkType = LinkType(rawValue: Int32(rawLink))
        case 101: linkType = .raw
        default: return nil
        }
        // As libpcap: the declared length as a signed number, its maximum when not positive.
        let declared = Int(Int32(bitPattern: field32(16)))
        let snapshot = declared <= 0 ? maximumSnapshot : declared
        return ClassicPcapFile(linkType: linkType, swapped: swapped, nanoseconds: nanoseconds, snapshot: snapshot,
                               source: source, offset: 24)
    }

    private init(linkType: LinkType, swapped: Bool, nanoseconds: Bool, snapshot: Int, source: @escaping Source, offset: Int) {
        self.linkType = linkType
        self.swapped = swapped
        self.nanoseconds = nanoseconds
        self.snapshot = snapshot
        self.source = source
        self.offset = offset
    }

    @inline(__always)
    private static func field32(_ bytes: UnsafeRawBufferPointer, at: Int, swapped: Bool) -> UInt32 {
        let value = bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        return swapped ? value.byteSwapped : value
    }

    private static func field32(_ bytes: [UInt8], at: Int, swapped: Bool) -> UInt32 {
        bytes.withUnsafeBytes { field32($0, at: at, swapped: swapped) }
    }

    struct Frame {
        var number: Int
        var time: Double
        var start: Int
        var length: Int
        var originalLength: Int
    }

    /// Reads about `size` bytes of records into a new buffer (more when one record is longer)
    /// and appends each whole record to `frames`, as a range of that buffer. An error (the
    /// file ends inside a record, a record longer than libpcap accepts, a read error) comes
    /// with the buffer of the records before it; nothing is read after it.
    mutating func read(size: Int, into frames: inout [Frame]) -> (bytes: ByteBuffer, error: CaptureError?) {
        var buffer = ByteBufferAllocator().buffer(capacity: max(size, carry.count + 16))
        buffer.writeBytes(carry)
        carry.removeAll(keepingCapacity: true)
        let bufferOffset = offset  // the file offset of the buffer's first byte
        var position = 0  // the next record's start in the buffer
        while !atEnd || position < buffer.writerIndex {
            let available = buffer.writerIndex - position
            // Header first, then the record's data.
            var needed = 16
            var header: (seconds: UInt32, fraction: UInt32, captured: Int, original: Int)?
            if available >= 16 {
                let swapped = swapped
                let fields = buffer.withUnsafeReadableBytes { raw in
                    (Self.field32(raw, at: position, swapped: swapped), Self.field32(raw, at: position + 4, swapped: swapped),
                     Int(Self.field32(raw, at: position + 8, swapped: swapped)),
                     Int(Self.field32(raw, at: position + 12, swapped: swapped)))
                }
                if fields.2 > Self.maximumSnapshot {
                    offset = bufferOffset + position + 16
                    atEnd = true
                    return (buffer, failure(fields.2 > snapshot
                        ? "invalid packet capture length \(fields.2), bigger than snaplen of \(snapshot)"
                        : "invalid packet capture length \(fields.2), bigger than maximum of \(Self.maximumSnapshot)"))
                }
                header = fields
                needed = 16 + fields.2
            }
            if available >= needed, let header {
                frameNumber += 1
                // Both fields unsigned, as the format's specification has them. libpcap 1.10
                // reads them as signed numbers in files of this machine's byte order and as
                // unsigned in swapped files, so the two readers differ only on a native file
                // with a time after January 2038 or a fraction out of range (the capture fuzz
                // target's oracle accepts exactly that difference). The sum is the one libpcap
                // makes, in nanoseconds, so that every other time agrees to the bit.
                let nanoseconds = Int64(header.fraction) * (self.nanoseconds ? 1 : 1000)
                let seconds = Double(header.seconds)
                // libpcap keeps the first `snapshot` bytes of a record longer than the file's
                // snapshot length and passes over the rest.
                frames.append(Frame(number: frameNumber, time: seconds + Double(nanoseconds) / 1e9,
                                    start: position + 16, length: min(header.captured, snapshot),
                                    originalLength: header.original))
                position += needed
                continue
            }
            if atEnd {
                atEnd = true
                offset = bufferOffset + buffer.writerIndex
                return (buffer, failure(header == nil
                    ? "truncated dump file; tried to read 16 header bytes, only got \(available)"
                    : "truncated dump file; tried to read \(Self.firstRead(captured: needed - 16, snapshot: snapshot, got: available - 16)) captured bytes, only got \(available - 16)"))
            }
            // The record goes on past what was read: read more into this buffer while it has
            // room (or holds no whole record yet), else leave the record to the next one.
            if position > 0 && buffer.writableBytes < needed - available { break }
            buffer.reserveCapacity(minimumWritableBytes: needed - available)
            var outcome: Result<Int, CaptureError> = .success(0)
            buffer.withUnsafeMutableWritableBytes { space in
                do throws(CaptureError) {
                    outcome = .success(try source(space))
                } catch {
                    outcome = .failure(error)
                }
            }
            switch outcome {
            case .success(let count):
                if count == 0 { atEnd = true } else { buffer.moveWriterIndex(forwardBy: count) }
            case .failure(let error):
                atEnd = true
                offset = bufferOffset + buffer.writerIndex
                return (buffer, failure(error.reason))
            }
        }
        // What is left is the start of a record: it goes first into the next buffer.
        if position < buffer.writerIndex {
            carry = buffer.withUnsafeReadableBytes { Array($0[position...]) }
        }
        offset = bufferOffset + position
        return (buffer, nil)
    }

    /// Whether the file was read to its end (or to an error).
    var isFinished: Bool { atEnd && carry.isEmpty }

    /// The count libpcap names when a record is cut short: a record longer than the snap
    /// length is read in two steps, its kept part, then the rest; a cut in the first step
    /// names the kept part's length.
    private static func firstRead(captured: Int, snapshot: Int, got: Int) -> Int {
        captured > snapshot && got < snapshot ? snapshot : captured
    }

    private func failure(_ reason: String) -> CaptureError {
        CaptureError(layer: .file, frame: frameNumber + 1, offset: offset, reason: "after \(frameNumber) frame(s): \(reason)")
    }
}
