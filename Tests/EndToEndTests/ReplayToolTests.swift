import Foundation
import Testing

/// `wmq-replay` as CI runs it.
@Suite("wmq-replay end to end")
struct ReplayToolTests {
    static func replay(_ arguments: [String]) throws -> DecodeTests.Run {
        try DecodeTests.run(arguments, tool: "wmq-replay")
    }

    static let captures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("captures")

    @Test func listShowsConnectionsAndCounts() throws {
        let run = try Self.replay(["list", Self.captures.appendingPathComponent("works-ws.pcap").path])
        #expect(run.status == 0)
        #expect(run.lines.first?.hasSuffix("works-ws.pcap: 2 MQTT connections") == true)
        #expect(run.lines.contains { $0.hasPrefix("c1 ") && $0.contains("ws-mqtt /mqtt (mqtt)") && $0.contains("MQTT 3.1.1 client \"web-beejs_0123456789ab\"") })
        #expect(run.lines.contains("    server → client  6 packets (CONNACK 1, SUBACK 1, PUBLISH 3, PINGRESP 1)"))
        #expect(run.lines.contains { $0.hasPrefix("c2 ") && $0.contains("  mqtt  ") })
    }

    @Test func listAsJSONLines() throws {
        let run = try Self.replay(["list", "--format", "jsonl", Self.captures.appendingPathComponent("mqtt5-ws.pcap").path])
        #expect(run.status == 0)
        let objects = run.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == 2)
        #expect(objects.allSatisfy { $0["v"] as? Int == 1 && $0["protocolLevel"] as? Int == 5 })
        #expect((objects.first?["s2c"] as? [String: Int])?["PUBLISH"] == 3)
    }

    @Test(arguments: [(["list", "/nonexistent.pcap"], Int32(3), "cannot read"),
                      (["list"], Int32(2), "Missing expected argument"),
                      (["list", "--format", "xml", "x"], Int32(2), "xml")])
    func badInvocations(arguments: [String], status: Int32, message: String) throws {
        let run = try Self.replay(arguments)
        #expect(run.status == status)
        #expect(run.error.contains(message), "\(run.error)")
    }

    @Test func aFileWithoutMQTTIsRefused() throws {
        let run = try Self.replay(["list", Self.captures.appendingPathComponent("README.md").path])
        #expect(run.status == 3)
        #expect(run.error.contains("not a pcap or pcapng file"))
    }
}
