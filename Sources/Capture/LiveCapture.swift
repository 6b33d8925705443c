public import CPcap
import Foundation
import NIOCore

/// A live capture on a network interface through libpcap, written to pcap files libpcap's
/// own dumper writes (so Wireshark and tcpdump read them), optionally rotated.
///
/// Not Sendable: one thread reads it. ``stop()`` may be called from any thread.
public final class LiveCapture {
    public struct Settings: Sendable {
        public var interface: String
        /// Bytes kept of each packet (0: libpcap's maximum, 262,144).
        public var snapLength: Int32 = 262_144
        /// The kernel buffer, in bytes: what absorbs bursts while the file is written.
        public var bufferSize: Int32 = 32 << 20
        /// A BPF filter (tcpdump's syntax), or nil for everything.
        public var filter: String?
        public var promiscuous = false
        /// Hand packets over as they come (for a live view) rather than in blocks.
        public var immediate = false

        public init(interface: String) {
            self.interface = interface
        }
    }

    /// Why a capture could not start: no permission, no such interface, a bad filter.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public enum Kind: Sendable { case permission, noSuchInterface, filter, other }
        public let kind: Kind
        public let description: String
    }

    public struct Statistics: Sendable, Hashable {
        /// Packets the filter accepted.
        public var received: UInt32
        /// Dropped for lack of room in the kernel buffer (the reader fell behind).
        public var dropped: UInt32
        /// Dropped by the interface or its driver.
        public var interfaceDropped: UInt32
    }

    private let handle: OpaquePointer
    public let settings: Settings
    public let linkType: LinkType
    private var frameNumber = 0
    private let stopped = StopFlag()

    public init(_ settings: Settings) throws(Failure) {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_create(settings.interface, &errorBuffer) else {
            throw Failure(kind: .other, description: "\(settings.interface): \(Self.text(errorBuffer))")
        }
        pcap_set_snaplen(handle, settings.snapLength == 0 ? 262_144 : settings.snapLength)
        pcap_set_promisc(handle, settings.promiscuous ? 1 : 0)
        pcap_set_timeout(handle, 100)  // the read returns at least every 100 ms, so a stop is seen
        pcap_set_buffer_size(handle, settings.bufferSize)
        pcap_set_immediate_mode(handle, settings.immediate ? 1 : 0)
        pcap_set_tstamp_precision(handle, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let status = pcap_activate(handle)
        if status < 0 {
            let detail = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            switch status {
            case PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED:
                throw Failure(kind: .permission, description: """
                    capturing on \(settings.interface) needs the CAP_NET_RAW capability (and CAP_NET_ADMIN for its \
                    buffer): run as root, or once `sudo setcap cap_net_raw,cap_net_admin+eip $(command -v wmq-capture)` \
                    (\(detail))
                    """)
            case PCAP_ERROR_NO_SUCH_DEVICE:
                throw Failure(kind: .noSuchInterface, description: "no interface \(settings.interface) (\(detail)); `ip link` lists them")
            default:
                throw Failure(kind: .other, description: "\(settings.interface): \(detail)")
            }
        }
        if let filter = settings.filter {
            var program = bpf_program()
            guard pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                let detail = String(cString: pcap_geterr(handle))
                pcap_close(handle)
                throw Failure(kind: .filter, description: "filter \"\(filter)\": \(detail)")
            }
            defer { pcap_freecode(&program) }
            guard pcap_setfilter(handle, &program) == 0 else {
                let detail = String(cString: pcap_geterr(handle))
                pcap_close(handle)
                throw Failure(kind: .filter, description: "filter \"\(filter)\": \(detail)")
            }
        }
        self.handle = handle
        self.settings = settings
        linkType = LinkType(rawValue: pcap_datalink(handle))
    }

    deinit {
        pcap_close(handle)
    }

    /// What a read gave.
    public enum Read {
        /// A packet as libpcap holds it (valid until the next read); ``frame(_:_:)`` copies it out.
        case packet(header: UnsafePointer<pcap_pkthdr>, bytes: UnsafePointer<UInt8>)
        /// Nothing within the read timeout.
        case idle
        case stopped
    }

    /// The next packet; `.idle` after the read timeout without one, `.stopped` after ``stop()``.
    /// The frame's pointers are valid until the next call.
    public func next() throws(Failure) -> Read {
        if stopped.isSet { return .stopped }
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        switch pcap_next_ex(handle, &header, &data) {
        case 1:
            guard let header, let data else { return .idle }
            frameNumber += 1
            // Not copied here: written to the file straight from libpcap's buffer, copied only to decode.
            return .packet(header: UnsafePointer(header), bytes: data)
        case 0:
            return stopped.isSet ? .stopped : .idle
        case PCAP_ERROR_BREAK:
            return .stopped
        default:
            throw Failure(kind: .other, description: "\(settings.interface): \(String(cString: pcap_geterr(handle)))")
        }
    }

    /// The packet of the last read as a frame (a copy) for the decoders.
    public func frame(_ header: UnsafePointer<pcap_pkthdr>, _ bytes: UnsafePointer<UInt8>) -> CapturedFrame {
        CapturedFrame(number: frameNumber, time: Self.time(header), data: ByteBuffer(bytes: UnsafeBufferPointer(start: bytes, count: Int(header.pointee.caplen))),
                      originalLength: Int(header.pointee.len), linkType: linkType)
    }

    /// A packet's time in epoch seconds (the handle counts nanoseconds).
    public static func time(_ header: UnsafePointer<pcap_pkthdr>) -> Double {
        Double(header.pointee.ts.tv_sec) + Double(header.pointee.ts.tv_usec) / 1e9
    }

    /// Ends the capture from any thread (a signal handler's queue): the reading thread sees
    /// `.stopped` at its next read, within the 100 ms read timeout.
    public func stop() { stopper.stop() }

    /// What another thread holds to stop this capture.
    public var stopper: Stopper { Stopper(handle: handle, flag: stopped) }

    public final class Stopper: @unchecked Sendable {  // pcap_breakloop is safe from any thread; the flag has a lock
        private let handle: OpaquePointer
        private let flag: StopFlag

        fileprivate init(handle: OpaquePointer, flag: StopFlag) {
            self.handle = handle
            self.flag = flag
        }

        /// Must not outlive the capture.
        public func stop() {
            flag.set()
            pcap_breakloop(handle)
        }
    }

    public var statistics: Statistics? {
        var stats = pcap_stat()
        guard pcap_stats(handle, &stats) == 0 else { return nil }
        return Statistics(received: stats.ps_recv, dropped: stats.ps_drop, interfaceDropped: stats.ps_ifdrop)
    }

    /// A dumper for this capture's link type, snap length and time precision.
    func openDumper(_ path: String) throws(Failure) -> OpaquePointer {
        guard let dumper = pcap_dump_open(handle, path) else {
            throw Failure(kind: .other, description: "cannot write \(path): \(String(cString: pcap_geterr(handle)))")
        }
        return dumper
    }

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A flag set from one thread and read from another.
fileprivate final class StopFlag: @unchecked Sendable {  // guarded by its lock
    private let lock = NSLock()
    private var value = false

    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// Where a live capture is written: one file, or a ring of files rotated by size (`-C`) or time
/// (`-G`), of which the newest `-W` are kept. Rotated files are named with a sequence number
/// before the extension: `trace.pcap` → `trace-0001.pcap`, `trace-0002.pcap`, …
public final class CaptureFiles {
    public struct Rotation: Sendable, Hashable {
        /// Start a new file once this many bytes were written (0: never).
        public var bytes: Int = 0
        /// Start a new file after this many seconds (0: never).
        public var seconds: Double = 0
        /// Keep only this many files, deleting the oldest (0: keep all).
        public var files: Int = 0

        public init(bytes: Int = 0, seconds: Double = 0, files: Int = 0) {
            self.bytes = bytes
            self.seconds = seconds
            self.files = files
        }

        public var rotates: Bool { bytes > 0 || seconds > 0 }
    }

    private let capture: LiveCapture
    public let path: String
    public let rotation: Rotation
    private var dumper: OpaquePointer?
    private var written = 0
    private var openedAt = 0.0
    private var sequence = 0
    /// Every file written so far that is still on disk, oldest first.
    public private(set) var files: [String] = []
    public private(set) var packets = 0
    public private(set) var bytes = 0

    public init(capture: LiveCapture, path: String, rotation: Rotation) throws(LiveCapture.Failure) {
        self.capture = capture
        self.path = path
        self.rotation = rotation
        try open(time: 0)
    }

    deinit {
        close()
    }

    /// The name of file number `sequence` of a ring.
    public static func name(_ path: String, sequence: Int) -> String {
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension
        let base = ext.isEmpty ? path : String(path.dropLast(ext.count + 1))
        let number = String(format: "%04d", sequence)
        return ext.isEmpty ? "\(base)-\(number)" : "\(base)-\(number).\(ext)"
    }

    private func open(time: Double) throws(LiveCapture.Failure) {
        close()
        sequence += 1
        let name = rotation.rotates ? Self.name(path, sequence: sequence) : path
        dumper = try capture.openDumper(name)
        // Created 0600: a capture holds whatever crossed the wire, secrets included.
        chmod(name, 0o600)
        files.append(name)
        written = 24
        openedAt = time
        if rotation.files > 0 {
            while files.count > rotation.files { unlink(files.removeFirst()) }
        }
    }

    public func write(_ header: UnsafePointer<pcap_pkthdr>, _ data: UnsafePointer<UInt8>, time: Double) throws(LiveCapture.Failure) {
        if rotation.rotates && packets > 0 {
            if openedAt == 0 { openedAt = time }
            if (rotation.bytes > 0 && written >= rotation.bytes) || (rotation.seconds > 0 && time - openedAt >= rotation.seconds) {
                try open(time: time)
            }
        }
        if openedAt == 0 { openedAt = time }
        guard let dumper else { return }
        pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), header, data)
        let size = Int(header.pointee.caplen)
        written += 16 + size
        bytes += size
        packets += 1
    }

    /// Pushes what is buffered to the file (after each packet of a live view, and at the end).
    public func flush() {
        if let dumper { pcap_dump_flush(dumper) }
    }

    public func close() {
        if let dumper {
            pcap_dump_flush(dumper)
            pcap_dump_close(dumper)
        }
        dumper = nil
    }
}
