import CPcap
import Foundation
import Testing

/// The libpcap system library target links and works: write a capture file with
/// libpcap and read it back, as `Capture` will.
@Suite("CPcap")
struct CPcapTests {
    @Test func versionString() throws {
        let version = try #require(pcap_lib_version())
        #expect(String(cString: version).hasPrefix("libpcap version"))
    }

    @Test func writesAndReadsAPcapFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-cpcap-\(UUID().uuidString).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let dead = try #require(pcap_open_dead(DLT_EN10MB, 65_535))
        defer { pcap_close(dead) }
        let dumper = try #require(pcap_dump_open(dead, path))
        var header = pcap_pkthdr()
        header.ts.tv_sec = 1_700_000_000
        header.ts.tv_usec = 123
        let packet: [UInt8] = Array(repeating: 0xAB, count: 60)
        header.caplen = UInt32(packet.count)
        header.len = UInt32(packet.count)
        packet.withUnsafeBufferPointer { bytes in
            withUnsafePointer(to: &header) { headerPointer in
                pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), headerPointer, bytes.baseAddress)
            }
        }
        pcap_dump_close(dumper)

        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let reader = try #require(pcap_open_offline(path, &errorBuffer))
        defer { pcap_close(reader) }
        #expect(pcap_datalink(reader) == DLT_EN10MB)
        var readHeader: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        #expect(pcap_next_ex(reader, &readHeader, &data) == 1)
        #expect(readHeader?.pointee.caplen == 60)
        #expect(readHeader?.pointee.ts.tv_sec == 1_700_000_000)
        #expect(data?[59] == 0xAB)
        #expect(pcap_next_ex(reader, &readHeader, &data) == PCAP_ERROR_BREAK)
    }
}
