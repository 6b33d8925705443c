import Foundation
import Testing

/// Runs the built `wmq-demo` binary as a user would and checks its output and exit code.
@Suite("wmq-demo end to end")
struct DemoTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let sample = root.appendingPathComponent("captures/works-sample.wmqs").path

    /// The binary sits beside the test bundle in the build folder.
    static var binary: String {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0])
        var folder = testBinary.deletingLastPathComponent()
        while !folder.path.hasSuffix("/debug") && !folder.path.hasSuffix("/release") && folder.path != "/" {
            folder = folder.deletingLastPathComponent()
        }
        return folder.appendingPathComponent("wmq-demo").path
    }

    struct Run {
        var status: Int32
        var output: String
        var error: String
    }

    static func run(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                   error: String(decoding: error, as: UTF8.self))
    }

    @Test func decodesTheSampleSession() throws {
        let run = try Self.run([Self.sample, "--redaction-key", "test"])
        #expect(run.status == 0)
        let expectedLines = [
            "C→S  HTTP  GET /wmqtt HTTP/1.1",
            "S→C  HTTP  101 Switching Protocols · subprotocol mqtt · handshake ok",
            "C→S  MQTT  CONNECT MQTT 3.1.1 client \"web-beejs_0123456789ab\" keep-alive 50s clean user \"dummy\"",
            "S→C  MQTT  CONNACK Connection Accepted (0x0)",
            "            ▸ REV_MSG · channel 300012345 「開発チーム」 (room) · 田中 太郎: 明日のリリース、準備できました👍",
            "C→S  MQTT  PUBACK id 1",
            "            ▸ REV_MSG · channel 300012345 「開発チーム」 (room) · Alice Smith: [sticker line 11537/52002734]",
            "            ▸ read receipt · channel 300012345 · reader 110002 read up to message 1002",
            "            ⚠ MQTT packet split across WebSocket messages",
            "            ▸ channel message · channel 300099 · Bob: Standup in 5 minutes",
            "C→S  MQTT  PINGREQ",
            "S→C  MQTT  PINGRESP",
            "C→S  WS    close 1000 \"bye\"",
            "11 MQTT packets, 4 annotated PUBLISH, 0 error(s)",
        ]
        let lines = run.output.split(separator: "\n").map(String.init)
        var position = 0
        for expected in expectedLines {
            guard let found = lines[position...].firstIndex(of: expected) else {
                Issue.record("missing or out of order: \(expected)")
                continue
            }
            position = found + 1
        }
        for secret in ["fake-session-not-real", "fake-token-0001", "fake-neo", "fake-user"] {
            #expect(!run.output.contains(secret), "secret \(secret) printed")
        }
        #expect(run.output.contains("WORKS_SES=‹cookie:"))
    }

    @Test func redactionKeyMakesPseudonymsStable() throws {
        let one = try Self.run([Self.sample, "-V", "--redaction-key", "k1"])
        let again = try Self.run([Self.sample, "-V", "--redaction-key", "k1"])
        let other = try Self.run([Self.sample, "-V", "--redaction-key", "k2"])
        #expect(one.output == again.output)
        #expect(one.output != other.output)
    }

    @Test func noRedactShowsSecrets() throws {
        let run = try Self.run([Self.sample, "--no-redact", "-V"])
        #expect(run.status == 0)
        #expect(run.output.contains("WORKS_SES=fake-session-not-real"))
        #expect(run.output.contains("token = fake-token-0001"))
    }

    @Test func truncatedRecordingKeepsWhatCameBefore() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.sample))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-trunc-\(UUID().uuidString).wmqs")
        try data.prefix(900).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let run = try Self.run([path.path])
        #expect(run.status == 1)
        #expect(run.output.contains("S→C  MQTT  CONNACK Connection Accepted (0x0)"))
        #expect(run.output.contains("FILE  ✗ recording: record of 180 bytes, 74 left in the file at byte 821 of the file"))
    }

    @Test func corruptMQTTIsReportedAndDecodingGoesOn() throws {
        // Flip the QoS bits of the first PUBLISH inside its (unmasked) frame to 3.
        var data = try Data(contentsOf: URL(fileURLWithPath: Self.sample))
        let marker = Data([0x32, 0xE0, 0x02, 0x00, 0x0C])  // PUBLISH QoS 1, remaining 352, topic length 12
        let range = try #require(data.range(of: marker))
        data[range.lowerBound] = 0x36
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-bad-\(UUID().uuidString).wmqs")
        try data.write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let run = try Self.run([path.path])
        #expect(run.status == 1)
        #expect(run.output.contains("S→C  MQTT  ✗ MQTT invalidQoS in PUBLISH at byte 4: PUBLISH with QoS 3 [MQTT-3.3.1-4]"))
        #expect(run.output.contains("Alice Smith: [sticker line 11537/52002734]"))
    }

    @Test func notARecordingIsExit3() throws {
        let run = try Self.run([Self.root.appendingPathComponent("Package.swift").path])
        #expect(run.status == 3)
        #expect(run.error.contains("not a wmq byte-stream recording"))
        let missing = try Self.run(["/nonexistent/file.wmqs"])
        #expect(missing.status == 3)
    }

    @Test func helpExplainsExitCodes() throws {
        let run = try Self.run(["--help"])
        #expect(run.status == 0)
        #expect(run.output.contains("Exit codes: 0 decoded cleanly"))
        #expect(run.output.contains("--no-redact"))
    }

    /// The committed sample is exactly what the generator writes: it was made by the
    /// project's own script, with an MQTT/WebSocket encoder independent of ours.
    @Test func sampleIsReproducible() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-sample-\(UUID().uuidString).wmqs")
        defer { try? FileManager.default.removeItem(at: out) }
        let process = Process()
        // python3 from PATH; `make deps` installs it. Missing, the run fails (status 127).
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.root.appendingPathComponent("Tools/make-sample-session.py").path, out.path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(try Data(contentsOf: out) == Data(contentsOf: URL(fileURLWithPath: Self.sample)))
    }
}
