import CPcap
import NIOCore

/// Writes pcap files (nanosecond timestamps) through libpcap, so that Wireshark and
/// tshark open them. Not Sendable: it owns libpcap handles.
public final class PcapWriter {
    private let dead: OpaquePointer
    private let dumper: OpaquePointer
    public let path: String

    public init(path: String, linkType: LinkType = .ethernet, snapLength: Int32 = 262_144) throws(CaptureError) {
        guard let dead = pcap_open_dead_with_tstamp_precision(linkType.rawValue, snapLength, UInt32(PCAP_TSTAMP_PRECISION_NANO)) else {
            throw CaptureError(layer: .file, offset: 0, reason: "libpcap cannot write link type \(linkType.rawValue)")
        }
        guard let dumper = pcap_dump_open(dead, path) else {
            let message = String(cString: pcap_geterr(dead))
            pcap_close(dead)
            throw CaptureError(layer: .file, offset: 0, reason: "cannot create \(path): \(message)")
        }
        self.dead = dead
        self.dumper = dumper
        self.path = path
    }

    deinit {
        pcap_dump_close(dumper)
        pcap_close(dead)
    }

    /// Appends one frame captured at `time` (seconds since the epoch).
    public func write(_ frame: some Collection<UInt8>, time: Double, originalLength: Int? = nil) {
        var header = pcap_pkthdr()
        let seconds = time.rounded(.down)
        header.ts.tv_sec = Int(seconds)
        header.ts.tv_usec = Int(((time - seconds) * 1e9).rounded())
        header.caplen = UInt32(frame.count)
        header.len = UInt32(originalLength ?? frame.count)
        let bytes = Array(frame)
        bytes.withUnsafeBufferPointer { data in
            withUnsafePointer(to: &header) { headerPointer in
                pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), headerPointer, data.baseAddress)
            }
        }
    }

    public func flush() {
        pcap_dump_flush(dumper)
    }
}
