import Capture
import Foundation
import TestSupport
import Testing

/// What a newcomer trips over with wmq-decode: each message and exit code as a user meets it.
@Suite("wmq-decode for a newcomer")
struct DecodeNewcomerTests {
    typealias Run = DecodeTests.Run

    @Test func anEmptyFileSaysSo() throws {
        let path = try DecodeTests.temporary(Data())
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try DecodeTests.run([path])
        #expect(run.status == 3)
        #expect(run.error.contains("empty file (0 bytes)"), "\(run.error)")
        #expect(!run.error.contains("truncated dump file"))
        let piped = try DecodeTests.run(["-"], stdin: Data())
        #expect(piped.status == 3)
        #expect(piped.error.contains("standard input is empty"), "\(piped.error)")
    }

    @Test func aHAROnStandardInputIsToldToComeByPath() throws {
        let har = try Data(contentsOf: DecodeTests.root.appendingPathComponent("captures/works-sample.har"))
        let run = try DecodeTests.run(["-"], stdin: har)
        #expect(run.status == 3)
        #expect(run.error.contains("a HAR file is read from its path"), "\(run.error)")
    }

    @Test(arguments: [
        (["--topic", "a/#/b"], "is not a topic filter"),
        (["--topic", "a+/b"], "is not a topic filter"),
        (["--from", "5", "--to", "1"], "is after --to"),
        (["--from", "-1"], "--from takes seconds from the first frame, 0 or more"),
        (["--to", "-0.5"], "--to takes seconds from the first frame, 0 or more"),
    ])
    func silentNoOpsAreUsageErrors(arguments: [String], message: String) throws {
        let run = try DecodeTests.run([DecodeTests.sample] + arguments)
        #expect(run.status == 2, "\(arguments): \(run.error)")
        #expect(run.error.contains(message), "\(run.error)")
        #expect(!run.error.contains("Missing value"))
    }

    @Test func anUnknownConnectionIsNamed() throws {
        let run = try DecodeTests.run([DecodeTests.sample, "--connection", "c9", "--format", "jsonl"])
        #expect(run.status == 0)
        #expect(run.output.isEmpty)
        #expect(run.error.contains("no connection c9; it has c1 only"), "\(run.error)")
    }

    /// A capture that takes a while to decode: many one-packet connections.
    static func longCapture() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-long-\(UUID().uuidString).pcap").path
        let writer = try PcapWriter(path: path)
        let server = Endpoint(address: .v4(0xC633_6414), port: 1883)
        for index in 0..<150_000 {
            let client = Endpoint(address: .v4(0x0A00_0000 | UInt32(index)), port: UInt16(40_000 + index % 20_000))
            let frame = SyntheticPacket.tcp(from: client, to: server, sequence: 1, flags: [.ack, .psh], payload: [0xC0, 0x00])
            writer.write(frame, time: 1_700_000_000 + Double(index) / 1000)
        }
        writer.flush()
        return path
    }

    /// Ctrl-C (or a CI timeout's SIGTERM) ends the reading; what was decoded is written out
    /// whole: a JSON array closed, the statistics so far. Exit 130.
    @Test(arguments: [(["--format", "json"], "SIGINT"), (["--stats", "--format", "jsonl"], "SIGTERM")])
    func interruptedOutputIsWhole(arguments: [String], signalName: String) throws {
        let path = try Self.longCapture()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DecodeTests.binary())
        process.arguments = [path] + arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try startWithSignalsUnblocked(process)
        // Both pipes are drained while it runs; the signal comes once output has begun.
        nonisolated(unsafe) var output = Data()  // written by the reading thread only, read after it joined
        let reader = Thread { output = out.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        Thread.sleep(forTimeInterval: 0.6)
        kill(process.processIdentifier, signalName == "SIGINT" ? SIGINT : SIGTERM)
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        #expect(process.terminationStatus == 130, "\(String(decoding: error, as: UTF8.self))")
        #expect(String(decoding: error, as: UTF8.self).contains("interrupted after frame"))
        let parsed = try JSONSerialization.jsonObject(with: output)
        if arguments.contains("--stats") {
            #expect((parsed as? [String: Any])?["event"] as? String == "stats")
        } else {
            let records = try #require(parsed as? [[String: Any]])
            #expect(!records.isEmpty)
            #expect(records.count < 150_000 * 2, "it stopped early")
        }
    }
}

/// Colours: on a terminal by default (unless NO_COLOR), always or never on request, none when piped.
@Suite("Colours")
struct ColourTests {
    static let escape = "\u{1B}["

    @Test func decodeColoursOnRequestOnly() throws {
        let piped = try DecodeTests.run([DecodeTests.sample, "--format", "text"])
        #expect(!piped.output.contains(Self.escape), "piped output stays plain")
        let always = try DecodeTests.run([DecodeTests.sample, "--format", "text", "--color", "always"])
        #expect(always.output.contains("\u{1B}[1m\u{1B}[32mPUBLISH\u{1B}[0m"), "PUBLISH bold green")
        #expect(always.output.contains("\u{1B}[36m192.0.2.10:51234 → 198.51.100.20:80\u{1B}[0m"), "client to server cyan")
        // Without the colours the text is what it was.
        let stripped = always.output.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
        #expect(stripped == piped.output)
        let never = try DecodeTests.run([DecodeTests.sample, "--format", "text", "--color", "never"])
        #expect(never.output == piped.output)
        // JSON is never coloured.
        #expect(!(try DecodeTests.run([DecodeTests.sample, "--format", "jsonl", "--color", "always"])).output.contains(Self.escape))
        #expect(try DecodeTests.run([DecodeTests.sample, "--color", "sometimes"]).status == 2)
    }

    @Test func replayReportColoursOnRequestOnly() throws {
        let port = try LoopbackPorts.free()
        let arguments = ["drive", DecodeTests.sample, "--url", "ws://127.0.0.1:\(port)/x", "--asap", "--timeout", "1"]
        let piped = try DecodeTests.run(arguments, tool: "wmq-replay")
        #expect(!piped.output.contains(Self.escape))
        let always = try DecodeTests.run(arguments + ["--color", "always"], tool: "wmq-replay")
        #expect(always.output.contains("\u{1B}[1;31mMISMATCH\u{1B}[0m"), "\(always.output)")
    }
}

/// Every tool that reads a large capture shows the same progress bar on a terminal (run under
/// `script`, which gives it one), and none when its output is not a terminal.
@Suite("Progress on a terminal")
struct ProgressTests {
    static func onATerminal(_ command: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", command.map { "'\($0)'" }.joined(separator: " "), "/dev/null"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// Over the bar's 8 MiB: 2,000 connections of 60 segments each of TLS application data
    /// (told at once and not decoded: the time goes to reading the file).
    static func largeCapture() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-large-\(UUID().uuidString).pcap").path
        let writer = try PcapWriter(path: path)
        let server = Endpoint(address: .v4(0xC633_6414), port: 443)
        let payload: [UInt8] = [0x17, 0x03, 0x03, 0x00, 0x23] + [UInt8](repeating: 0x5C, count: 35)
        var time = 1_700_000_000.0
        for round in 0..<60 {
            for index in 0..<2_000 {
                let client = Endpoint(address: .v4(0x0A00_0000 | UInt32(index)), port: UInt16(40_000 + index))
                let frame = SyntheticPacket.tcp(from: client, to: server, sequence: UInt32(1 + round * payload.count),
                                                flags: [.ack, .psh], payload: payload)
                writer.write(frame, time: time)
                time += 0.0001
            }
        }
        writer.flush()
        return path
    }

    @Test func replayListAndDecodeShowTheBar() throws {
        let path = try Self.largeCapture()
        defer { try? FileManager.default.removeItem(atPath: path) }
        for command in [[DecodeTests.binary("wmq-replay"), "list", path], [DecodeTests.binary(), path, "--stats"]] {
            let shown = try Self.onATerminal(command)
            #expect(shown.contains("░") && shown.contains(" MiB"), "\(command[0]): \(shown.prefix(300))")
            // The bar is cleared at the end: the last bar is followed by the erase sequence.
            #expect(shown.contains("\r\u{1B}[K"))
        }
        // Piped: no bar.
        let piped = try DecodeTests.run(["list", path], tool: "wmq-replay")
        #expect(!piped.error.contains("░"))
    }
}
