import Foundation
import TestSupport
import Testing

/// `wmq-client`, the built binary, end to end.
@Suite("wmq-client", .serialized, .timeLimit(.minutes(2)))
struct ClientToolTests {
    static func binary(_ name: String) -> String { TestEnvironment.builtBinary(name) }

    /// A started process whose standard output goes to a file the test can poll.
    final class Running: @unchecked Sendable {  // used by one test at a time
        let process = Process()
        let output: URL
        let errors: URL

        init(_ arguments: [String], in directory: URL) throws {
            output = directory.appendingPathComponent("stdout-\(UUID().uuidString)")
            errors = directory.appendingPathComponent("stderr-\(UUID().uuidString)")
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
            process.executableURL = URL(fileURLWithPath: ClientToolTests.binary("wmq-client"))
            process.arguments = arguments
            process.standardOutput = try FileHandle(forWritingTo: output)
            process.standardError = try FileHandle(forWritingTo: errors)
            try process.run()
        }

        var stdout: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOf: errors, encoding: .utf8)) ?? "" }

        func waitFor(seconds: Double = 20, _ condition: (String) -> Bool) -> Bool {
            waitUntilBlocking(seconds: seconds) { condition(stdout) }
        }

        /// Waits for the exit; kills it (by its id) after `seconds`.
        func exitStatus(seconds: Double = 20) -> Int32? {
            TestSupport.exitStatus(of: process, seconds: seconds)
        }

        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-client-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test(.enabled(if: Peers.present || TestEnvironment.peersRequired))
    func liveAnnotatedMessagesAndARecordingThatDecodes() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let broker = try Mosquitto()
        let cookies = directory.appendingPathComponent("cookie.json")
        try Data(#"{"WORKS_SES": "cookie-secret-value", "NEO_SES": "x"}"#.utf8).write(to: cookies)
        let recording = directory.appendingPathComponent("session.pcap")
        let client = try Running(["--url", "ws://127.0.0.1:\(broker.webSocketPort)/mqtt", "--cookies", cookies.path,
                                  "--subscribe", "works/#", "--format", "jsonl", "--record", recording.path, "--count", "3"],
                                 in: directory)
        #expect(await offPool { client.waitFor { $0.contains("\"SUBACK\"") } }, "no SUBACK: \(client.stdout) \(client.stderr)")
        try await Peers.publish(port: broker.webSocketPort, qos: 1, count: 3, prefix: "tool")
        #expect(await offPool { client.exitStatus() } == 0, "\(client.stderr)")

        let lines = client.stdout.split(separator: "\n")
        let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == lines.count, "every line is a JSON object")
        #expect(objects.allSatisfy { $0["v"] as? Int == 1 })
        let live = objects.compactMap { $0["type"] as? String }
        #expect(live.filter { $0 == "PUBLISH" }.count == 3)
        #expect(live.filter { $0 == "PUBACK" }.count == 3)
        for index in 0..<3 { #expect(client.stdout.contains("message \(index)")) }
        #expect(!client.stdout.contains("cookie-secret-value") && !client.stdout.contains("not-a-real-token"))

        // The recording: private, redacted, and wmq-decode reads the same packets back.
        let attributes = try FileManager.default.attributesOfItem(atPath: recording.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let bytes = try Data(contentsOf: recording)
        #expect(bytes.range(of: Data("cookie-secret-value".utf8)) == nil)
        #expect(bytes.range(of: Data("not-a-real-token".utf8)) == nil)
        let decode = Process()
        decode.executableURL = URL(fileURLWithPath: Self.binary("wmq-decode"))
        decode.arguments = [recording.path, "--format", "jsonl"]
        let pipe = Pipe()
        decode.standardOutput = pipe
        try decode.run()
        let decoded = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        decode.waitUntilExit()
        #expect(decode.terminationStatus == 0, "\(decoded)")
        let replayed = decoded.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["type"] as? String
        }
        #expect(replayed == live, "the recording decodes to the packets the client printed")

        // Wireshark's reading: tshark sees the upgrade and the WebSocket frames.
        if let tshark = TestEnvironment.tshark {
            let read = Process()
            read.executableURL = URL(fileURLWithPath: tshark)
            read.arguments = ["-r", recording.path, "-d", "tcp.port==\(broker.webSocketPort),http", "-Y", "websocket", "-T", "fields", "-e", "websocket.mask"]
            let out = Pipe()
            read.standardOutput = out
            read.standardError = FileHandle.nullDevice
            try read.run()
            let frames = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
            read.waitUntilExit()
            #expect(read.terminationStatus == 0)
            // Masked client frames and unmasked server frames, in as many segments as were recorded.
            #expect(frames.contains("1") && frames.contains("0"), "tshark reads \(frames)")
            #expect(frames.count >= 6)
        } else {
            #expect(!TestEnvironment.peersRequired, "tshark is missing (make deps installs it)")
        }
    }

    @Test func refusedCookiesExitWithFour() async throws {
        let server = try await ScriptedServer { connection in
            _ = try await connection.readRequest()
            try await connection.write("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        }
        defer { Task { await server.stop() } }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let client = try Running(["--url", "ws://127.0.0.1:\(server.port)/wmqtt"], in: directory)
        #expect(await offPool { client.exitStatus() } == 4)
        #expect(client.stderr.contains("HTTP 401"))
    }

    /// A cookie.json that does not parse: what is wrong and where, exit 3.
    @Test func aBrokenCookieFileSaysWhereAndWhat() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("cookie.json")
        try "{\n  \"WORKS_SES\": \"abc\"\n  \"NNB\": \"x\"\n}\n".write(to: file, atomically: true, encoding: .utf8)
        let client = try Running(["--cookies", file.path], in: directory)
        #expect(await offPool { client.exitStatus() } == 3, "\(client.stderr)")
        #expect(client.stderr.contains("Invalid cookie.json format: line 3, column 3"), "\(client.stderr)")
    }


    @Test(arguments: [
        (["--url", "http://example.com/"], Int32(2), "scheme"),
        (["--cookies", "/nonexistent/cookie.json"], Int32(3), "cookie.json not found"),
        (["--variant", "nope"], Int32(2), "--variant"),
        (["--count", "0"], Int32(2), "--count"),
        (["--onebot", "ftp://127.0.0.1/ws/"], Int32(2), "scheme"),
        (["--onebot", "ws://127.0.0.1:1/ws/", "--token-env", "WMQ_SURELY_UNSET_VARIABLE"], Int32(2), "WMQ_SURELY_UNSET_VARIABLE is not set"),
        (["--onebot", "ws://127.0.0.1:1/ws/", "--heartbeat", "0"], Int32(2), "--heartbeat"),
        (["--onebot", "ws://127.0.0.1:1/ws/", "--reconnect-attempts", "1", "--reconnect-interval", "0.05"], Int32(5), "nothing listens on 127.0.0.1:1 (connection refused)"),
    ])
    func badInvocations(arguments: [String], status: Int32, message: String) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let client = try Running(arguments, in: directory)
        #expect(await offPool { client.exitStatus() } == status, "\(client.stderr)")
        #expect(client.stderr.contains(message), "\(client.stderr)")
    }

    @Test func helpExplainsExitCodes() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let client = try Running(["--help"], in: directory)
        #expect(await offPool { client.exitStatus() } == 0)
        #expect(client.stdout.contains("Exit codes") && client.stdout.contains("--record"))
    }
}

/// Runs a blocking wait on a thread of its own, so that it does not hold one of the few threads
/// of the concurrency pool that the code under test needs.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: body()) }
    }
}
