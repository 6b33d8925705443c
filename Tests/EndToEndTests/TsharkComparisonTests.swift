import Foundation
import TestSupport
import Testing

/// Fidelity against tshark on every committed capture (Tools/compare-tshark). Where
/// tshark is right the packet lists must agree; where it is wrong (an MQTT packet split
/// across WebSocket messages) the test states the right values itself. tshark is a peer
/// installed by `make deps`: under CI=true a missing tshark fails these tests.
@Suite("Fidelity against tshark", .enabled(if: TestEnvironment.tshark != nil || TestEnvironment.peersRequired))
struct TsharkComparisonTests {
    static func compare(_ capture: String, json: Bool = false) throws -> DecodeTests.Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", DecodeTests.root.appendingPathComponent("Tools/compare-tshark").path,
                             DecodeTests.root.appendingPathComponent("captures/\(capture)").path,
                             "--wmq-decode", DecodeTests.binary()] + (json ? ["--json"] : [])
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return DecodeTests.Run(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                               error: String(decoding: error, as: UTF8.self))
    }

    @Test(arguments: ["mqtt311-ws.pcap", "mqtt5-ws.pcap", "works-ws.pcap"])
    func agreesWhereTsharkIsRight(capture: String) throws {
        let run = try Self.compare(capture)
        #expect(run.status == 0, "\(run.output)\(run.error)")
        #expect(run.output.contains("agree"))
        #expect(!run.output.contains("differ"))
    }

    /// tshark cannot put an MQTT packet back together when it spans two WebSocket
    /// messages. Everywhere else the lists agree; at the split, wmq-decode has the packet
    /// the capture's peer really sent.
    @Test(arguments: [
        ("split-ws.pcap", "PUBLISH split/one QoS 1 id 7 41 bytes"),
        ("works-sample.pcap", "PUBLISH notification QoS 0 id - 137 bytes"),
    ])
    func splitPacketsWhereTsharkIsWrong(capture: String, expected: String) throws {
        let run = try Self.compare(capture, json: true)
        #expect(run.status == 0, "\(run.error)")
        let object = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: [String: [[String: Any]]]]
        let tshark = try #require(object?["tshark"]?.values.first)
        let wmq = try #require(object?["wmq"]?.values.first)
        func line(_ packet: [String: Any]) -> String {
            let topic = packet["topic"] as? String
            let qos = packet["qos"] as? Int
            let id = packet["packetId"] as? Int
            let length = packet["payloadLength"] as? Int
            return [packet["type"] as? String ?? "?", topic, qos.map { "QoS \($0)" }, (packet["type"] as? String == "PUBLISH") ? "id \(id.map(String.init) ?? "-")" : id.map { "id \($0)" },
                    length.map { "\($0) bytes" }].compactMap { $0 }.joined(separator: " ")
        }
        let ours = wmq.map(line)
        let theirs = tshark.map(line)
        #expect(ours.contains(expected))
        #expect(!theirs.contains(expected))
        // Apart from the split packet (tshark turns its two halves into one or two wrong
        // packets), the lists are the same.
        let common = ours.filter { $0 != expected }
        #expect(theirs.filter { common.contains($0) } == common)
    }
}
