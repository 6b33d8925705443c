import Foundation
import TestSupport
import Testing

/// `wmq-replay` as CI runs it.
@Suite("wmq-replay end to end")
struct ReplayToolTests {
    /// On a thread of its own: the test runner's shared threads are needed by the servers of other suites.
    static func replay(_ arguments: [String]) async throws -> DecodeTests.Run {
        try await onOwnThread { try DecodeTests.run(arguments, tool: "wmq-replay") }
    }

    static let captures = TestEnvironment.root.appendingPathComponent("captures")

    @Test func listShowsConnectionsAndCounts() async throws {
        let run = try await Self.replay(["list", Self.captures.appendingPathComponent("works-ws.pcap").path])
        #expect(run.status == 0)
        #expect(run.lines.first?.hasSuffix("works-ws.pcap: 2 MQTT connections") == true)
        #expect(run.lines.contains { $0.hasPrefix("c1 ") && $0.contains("ws-mqtt /mqtt (mqtt)") && $0.contains("MQTT 3.1.1 client \"web-beejs_0123456789ab\"") })
        #expect(run.lines.contains("    server → client  6 packets (CONNACK 1, SUBACK 1, PUBLISH 3, PINGRESP 1)"))
        #expect(run.lines.contains { $0.hasPrefix("c2 ") && $0.contains("  mqtt  ") })
    }

    @Test func listAsJSONLines() async throws {
        let run = try await Self.replay(["list", "--format", "jsonl", Self.captures.appendingPathComponent("mqtt5-ws.pcap").path])
        #expect(run.status == 0)
        let objects = run.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == 2)
        #expect(objects.allSatisfy { $0["v"] as? Int == 1 && $0["protocolLevel"] as? Int == 5 })
        #expect((objects.first?["s2c"] as? [String: Int])?["PUBLISH"] == 3)
    }

    @Test(arguments: [(["list", "/nonexistent.pcap"], Int32(3), "/nonexistent.pcap: no such file"),
                      (["list", "/tmp"], Int32(3), "/tmp: is a directory"),
                      (["list"], Int32(2), "Missing expected argument"),
                      (["list", "--format", "xml", "x"], Int32(2), "xml")])
    func badInvocations(arguments: [String], status: Int32, message: String) async throws {
        let run = try await Self.replay(arguments)
        #expect(run.status == status)
        #expect(run.error.contains(message), "\(run.error)")
    }

    @Test(arguments: [(["drive", "captures/works-sample.pcap"], Int32(2), "give the server with --url"),
                      (["drive", "captures/works-sample.pcap", "--url", "http://x:1"], Int32(2), "not a ws://, wss:// or mqtt:// URL"),
                      (["drive", "captures/works-sample.pcap", "--url", "ws://x:99999"], Int32(2), "port from 1 to 65535"),
                      (["check", "captures/works-sample.pcap", "--asap", "--speed", "2"], Int32(2), "not both"),
                      (["check", "captures/works-sample.pcap", "--speed", "0"], Int32(2), "positive"),
                      (["check", "captures/works-sample.pcap", "--connection", "c9"], Int32(2), "has no connection c9 to replay (it has c1)"),
                      (["check", "captures/works-sample.pcap", "--connection", "x"], Int32(2), "such as 2 or c2"),
                      (["serve", "captures/works-sample.pcap", "--listen", "nowhere"], Int32(2), "give HOST:PORT"),
                      (["check", "/nonexistent.har"], Int32(3), "/nonexistent.har: no such file"),
                      (["check", "captures/works-sample.pcap", "--rules", "/nonexistent.json"], Int32(3), "the rules file /nonexistent.json: no such file"),
                      // Negative numbers get their own message, not ArgumentParser's "Missing value".
                      (["check", "captures/works-sample.pcap", "--speed", "-3"], Int32(2), "--speed must be a positive number"),
                      (["check", "captures/works-sample.pcap", "--timeout", "-1"], Int32(2), "--timeout must be a positive number"),
                      // The JUnit file's folder is checked before the run, not after it.
                      (["drive", "captures/works-sample.pcap", "--url", "ws://127.0.0.1:1/x", "--junit", "/no/such/dir/r.xml"], Int32(2),
                       "--junit /no/such/dir/r.xml: the folder /no/such/dir does not exist"),
                      (["check", "captures/README.md"], Int32(3), "not a pcap or pcapng file")])
    func badReplayInvocations(arguments: [String], status: Int32, message: String) async throws {
        let run = try await Self.replay(arguments.map { $0.hasPrefix("captures/") ? Self.captures.deletingLastPathComponent().appendingPathComponent($0).path : $0 })
        #expect(run.status == status, "\(run.output)\(run.error)")
        #expect(run.error.contains(message), "\(run.error)")
    }

    /// Nothing listening: said so, not NIO's SingleConnectionFailure.
    @Test func aRefusedConnectionIsSaidPlainly() async throws {
        let port = try LoopbackPorts.free()
        let run = try await Self.replay(["drive", Self.captures.appendingPathComponent("works-sample.pcap").path,
                                         "--url", "ws://127.0.0.1:\(port)/wmqtt", "--asap", "--timeout", "2"])
        #expect(run.status == 1)
        #expect(run.output.contains("nothing listens on 127.0.0.1:\(port) (connection refused)"), "\(run.output)")
        #expect(!run.output.contains("SingleConnectionFailure") && !run.output.contains("errno"))
    }

    /// A port in use: said plainly, with the flag that chooses another.
    @Test func aPortInUseIsSaidPlainly() async throws {
        let port = try LoopbackPorts.free()
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--ws", "127.0.0.1:\(port)"])
        defer { mock.stop() }
        #expect(MockNewcomerTests.waitFor("listening", in: mock))
        let run = try await Self.replay(["serve", Self.captures.appendingPathComponent("works-sample.pcap").path, "--listen", "127.0.0.1:\(port)"])
        #expect(run.status == 3)
        #expect(run.error.contains("127.0.0.1:\(port) is already in use") && run.error.contains("choose another with --listen HOST:PORT"),
                "\(run.error)")
        #expect(!run.error.contains("errno"))
    }

    /// A CI timeout's SIGTERM (or Ctrl-C) during drive: the report of what was played, and the
    /// JUnit file, as serve does.
    @Test func driveStoppedBySIGTERMWritesItsReports() async throws {
        let port = try LoopbackPorts.free()
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--ws", "127.0.0.1:\(port)"])
        defer { mock.stop() }
        #expect(MockNewcomerTests.waitFor("listening", in: mock))
        let junit = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-\(UUID().uuidString).xml")
        defer { try? FileManager.default.removeItem(at: junit) }
        let drive = try Background(DecodeTests.binary("wmq-replay"), [
            "drive", Self.captures.appendingPathComponent("mqtt311-ws.pcap").path, "--url", "ws://127.0.0.1:\(port)/mqtt",
            "--speed", "0.05", "--junit", junit.path,
        ])
        try await Task.sleep(for: .seconds(2))
        kill(drive.process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while drive.process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!drive.process.isRunning)
        #expect(drive.process.terminationStatus == 1)
        #expect(drive.output.contains("stopped by a signal before the recording was played"), "\(drive.output)")
        #expect(drive.output.contains("drive, speed ×0.05: MISMATCH"))
        let xml = try String(contentsOf: junit, encoding: .utf8)
        #expect(xml.contains("<testsuites name=\"wmq-replay\""))
    }

    @Test func aBadRulesFileSaysWhereAndWhy() async throws {
        let rules = try DecodeTests.temporary(Data(#"{"ignore": ["createTime"]}"#.utf8))
        defer { try? FileManager.default.removeItem(atPath: rules) }
        let run = try await Self.replay(["check", Self.captures.appendingPathComponent("works-sample.pcap").path, "--rules", rules])
        #expect(run.status == 3)
        #expect(run.error.contains("\(rules): \"ignore\": \"createTime\" is not a JSON path starting with $"), "\(run.error)")
    }

    @Test func checkReportsEveryRecordingAsJSONAndJUnit() async throws {
        let junit = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-check-\(UUID().uuidString).xml").path
        defer { try? FileManager.default.removeItem(atPath: junit) }
        let run = try await Self.replay(["check", "--format", "json", "--junit", junit] + ["works-sample.har", "mqtt5-ws.pcap", "works-ws.pcap"].map {
            Self.captures.appendingPathComponent($0).path
        })
        #expect(run.status == 0, "\(run.output)\(run.error)")
        let reports = run.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(reports.count == 3)
        #expect(reports.allSatisfy { $0["v"] as? Int == 1 && $0["mode"] as? String == "check" && $0["matched"] as? Bool == true })
        let statuses = reports.flatMap { ($0["connections"] as? [[String: Any]] ?? []).compactMap { $0["status"] as? String } }
        #expect(statuses == ["matched", "skipped", "skipped", "matched", "skipped"])
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains(#"<testsuites name="wmq-replay" tests="5" failures="0" errors="0" skipped="3">"#), "\(xml)")
        #expect(xml.contains(#"<skipped message="MQTT 5.0; the built-in client speaks 3.1.1"/>"#))
    }

    @Test func aScenarioIsCheckedAndServedButNotDriven() async throws {
        let scenario = try DecodeTests.temporary(Data("""
            # what wmq-mock would play: two notifications at QoS 1, a QoS 2 publish
            {"notify": {"channel": 42, "sender": "Alice", "text": "Hello"}}
            {"wait": 0.02}
            {"publish": {"topic": "t/x", "payload": "two", "qos": 2}}
            {"notify": {"channel": 42, "sender": "Bob", "text": "Hi"}}
            """.utf8))
        defer { try? FileManager.default.removeItem(atPath: scenario) }
        let check = try await Self.replay(["check", scenario])
        #expect(check.status == 0, "\(check.output)\(check.error)")
        // The client's acknowledgements (PUBACK, PUBREC, PUBCOMP, PUBACK) are what was compared.
        #expect(check.lines.last == "  c1 client → server: 4 packets as recorded", "\(check.output)")
        // Nothing is driven: exit 4, not a pass.
        let drive = try await Self.replay(["drive", scenario, "--url", "ws://127.0.0.1:1"])
        #expect(drive.status == 4)
        #expect(drive.output.contains("skipped, a scenario describes only the server's side: serve or check it"))
    }

    @Test func originalTimingTakesAtLeastAsLongAsTheRecording() async throws {
        // The sample session lasts 0.123 s from CONNECT to DISCONNECT; played as recorded, no sooner.
        let run = try await Self.replay(["check", "--original-timing", "--format", "json", Self.captures.appendingPathComponent("works-sample.pcap").path])
        #expect(run.status == 0, "\(run.output)\(run.error)")
        let report = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any]
        let seconds = Double(report?["seconds"] as? Double ?? 0)
        #expect(seconds >= 0.12, "\(run.output)")
        #expect(report?["pace"] as? String == "original timing")
    }

    @Test func aFileWithoutMQTTIsRefused() async throws {
        let run = try await Self.replay(["list", Self.captures.appendingPathComponent("README.md").path])
        #expect(run.status == 3)
        #expect(run.error.contains("not a pcap or pcapng file"))
    }

    /// A run that replays no connection proves nothing: exit 4, unless --allow-skipped.
    @Test func aRunThatReplaysNothingIsNotAPass() async throws {
        let capture = Self.captures.appendingPathComponent("mqtt5-ws.pcap").path
        let run = try await Self.replay(["check", capture])
        #expect(run.status == 4, "\(run.output)\(run.error)")
        #expect(run.lines.first?.contains("NOTHING REPLAYED (0 connections replayed, 2 skipped)") == true, "\(run.output)")
        #expect(run.error.contains("--allow-skipped"), "\(run.error)")
        let allowed = try await Self.replay(["check", capture, "--allow-skipped", "--format", "json"])
        #expect(allowed.status == 0, "\(allowed.output)\(allowed.error)")
        let report = try JSONSerialization.jsonObject(with: Data(allowed.output.utf8)) as? [String: Any]
        #expect(report?["replayed"] as? Int == 0)
    }

    /// A recording cut short replays what it holds, and every report says it was cut.
    @Test func aTruncatedRecordingIsAWarningInEveryReport() async throws {
        let whole = try Data(contentsOf: Self.captures.appendingPathComponent("works-sample.pcap"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-cut-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let cut = folder.appendingPathComponent("cut.pcap")
        try whole.prefix(whole.count - 7).write(to: cut)
        let junit = folder.appendingPathComponent("report.xml").path
        let text = try await Self.replay(["check", cut.path, "--junit", junit])
        #expect(text.output.contains("warning: the recording: "), "\(text.output)")
        #expect(text.output.contains("truncated"), "\(text.output)")
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("<system-err>warning: the recording: "), "\(xml)")
        let json = try await Self.replay(["check", cut.path, "--format", "json"])
        let report = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        let warnings = report?["warnings"] as? [String] ?? []
        #expect(warnings.count == 1 && warnings.first?.contains("truncated") == true, "\(json.output)")
        // The whole recording has none.
        let clean = try await Self.replay(["check", Self.captures.appendingPathComponent("works-sample.pcap").path, "--format", "json"])
        #expect((try JSONSerialization.jsonObject(with: Data(clean.output.utf8)) as? [String: Any])?["warnings"] as? [String] == [])
    }
}
