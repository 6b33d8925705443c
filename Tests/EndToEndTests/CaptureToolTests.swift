import Foundation
import TestSupport
import Testing

/// `wmq-capture live` on loopback (needs CAP_NET_RAW: CI runs as root; under CI=true these run).
@Suite("wmq-capture live", .serialized, .timeLimit(.minutes(2)))
struct CaptureToolTests {
    static var canCapture: Bool { getuid() == 0 || TestEnvironment.peersRequired }
    static let tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("wmq-capture-\(UUID().uuidString)-\(name)").path
    }

    /// Starts a capture and waits until it says it captures.
    static func start(_ arguments: [String]) async throws -> Background {
        let capture = try Background(DecodeTests.binary("wmq-capture"), ["live", "-i", "lo"] + arguments)
        _ = try await capture.awaiting("capturing on lo")
        try await Task.sleep(for: .milliseconds(300))  // libpcap's socket is open before the line; a margin for the filter
        return capture
    }

    /// A TCP connection on loopback port `port` (Python): a sink that reads everything, and a
    /// client that runs `sending` (one line, with `client` and `time` at hand), then closes.
    static func loopbackStream(port: Int, sending: String) throws -> Background {
        try Background("/usr/bin/python3", ["-c", """
            import socket, threading, time
            server = socket.socket(); server.bind(("127.0.0.1", \(port))); server.listen(1)
            def sink():
                connection, _ = server.accept()
                while connection.recv(65536): pass
            thread = threading.Thread(target=sink); thread.start()
            client = socket.create_connection(("127.0.0.1", \(port)))
            \(sending)
            client.close(); thread.join()
            """])
    }

    @Test(.enabled(if: canCapture))
    func aLiveSessionIsWrittenDecodedAndReadable() async throws {
        let (mock, ws, _) = try await ReplayPeerTests.startMock()
        defer { mock.stop() }
        let port = ws.split(separator: ":").last.map(String.init) ?? ""
        let file = Self.temporary("session.pcap")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let capture = try await Self.start(["--port", port, "-w", file, "--decode"])
        defer { capture.stop() }
        let drive = try await ReplayPeerTests.drive(ReplayPeerTests.capture("mqtt311-ws.pcap"), [ws])
        #expect(drive.status == 0, "\(drive.output)")
        try await Task.sleep(for: .milliseconds(300))
        kill(capture.process.processIdentifier, SIGINT)
        let status = try await capture.finished(seconds: 10)
        #expect(status == 0, "\(capture.output)")
        // The summary, the live view and the file agree.
        let summary = try #require(capture.output.split(separator: "\n").first { $0.contains("packets (") }.map(String.init))
        #expect(summary.contains("the kernel dropped 0"), "\(summary)")
        let written = Int(summary.split(separator: " ")[1]) ?? -1
        #expect(written > 20, "\(summary)")
        #expect(capture.output.contains(#"CONNECT MQTT 3.1.1 client "wmq-sub-311""#), "\(capture.output)")
        #expect(capture.output.components(separatedBy: "PUBLISH").count - 1 >= 8, "\(capture.output)")
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // What was captured replays against the mock as the committed capture did.
        let list = try await ReplayPeerTests.replay(["list", file, "--format", "jsonl"])
        #expect(list.lines.count == 2, "\(list.output)")
        let again = try await ReplayPeerTests.drive(file, [ws])
        #expect(again.status == 0, "\(again.output)")
        if let tshark = Self.tshark {
            let frames = try await onOwnThread { try DecodeTests.run(["-r", file], tool: tshark) }
            #expect(frames.status == 0)
            #expect(frames.lines.count == written, "tshark read \(frames.lines.count) frames, wmq-capture wrote \(written)")
        }
    }

    @Test(.enabled(if: canCapture))
    func aRingKeepsTheNewestFiles() async throws {
        // 3 MB through a loopback TCP connection, captured into files of 1 MB, the newest 2 kept.
        let folder = Self.temporary("ring")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try LoopbackPorts.free()
        let capture = try await Self.start(["--port", "\(port)", "-w", "\(folder)/ring.pcap", "-C", "1", "-W", "2"])
        defer { capture.stop() }
        let blast = try Self.loopbackStream(port: port, sending: "client.sendall(bytes(3 * 1024 * 1024))")
        #expect(try await blast.finished(seconds: 20) == 0, "\(blast.output)")
        try await Task.sleep(for: .milliseconds(300))
        kill(capture.process.processIdentifier, SIGTERM)
        #expect(try await capture.finished(seconds: 10) == 0, "\(capture.output)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(names.count == 2, "\(names) \(capture.output)")
        #expect(names.allSatisfy { $0.hasPrefix("ring-") && $0.hasSuffix(".pcap") }, "\(names)")
        #expect(!names.contains("ring-0001.pcap"), "the oldest file is gone: \(names)")
        for name in names {
            let size = (try FileManager.default.attributesOfItem(atPath: "\(folder)/\(name)")[.size] as? Int) ?? 0
            #expect(size > 0 && size < 1_200_000, "\(name): \(size) bytes")
        }
    }

    @Test(.enabled(if: canCapture))
    func aRingRotatesByTime() async throws {
        // A packet every 100 ms for 1.7 s, files of 0.5 s: four or five files, all kept without -W.
        let folder = Self.temporary("timed")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try LoopbackPorts.free()
        let capture = try await Self.start(["--port", "\(port)", "-w", "\(folder)/timed.pcap", "-G", "0.5"])
        defer { capture.stop() }
        let ticker = try Self.loopbackStream(port: port, sending: "for _ in range(17): client.sendall(b'tick'); time.sleep(0.1)")
        #expect(try await ticker.finished(seconds: 20) == 0, "\(ticker.output)")
        try await Task.sleep(for: .milliseconds(200))
        kill(capture.process.processIdentifier, SIGINT)
        #expect(try await capture.finished(seconds: 10) == 0, "\(capture.output)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect((3...5).contains(names.count), "\(names) \(capture.output)")
        #expect(names.first == "timed-0001.pcap")
        // Together they hold every tick, each file a capture of its own.
        var ticks = 0
        for name in names {
            let frames = try await onOwnThread { try DecodeTests.run(["-r", "\(folder)/\(name)", "-Y", "tcp.len == 4"], tool: CaptureToolTests.tshark ?? "/usr/bin/tshark") }
            ticks += frames.lines.count
        }
        #expect(ticks == 17, "\(ticks) ticks in \(names)")
    }

    @Test(arguments: [(["live", "-i", "lo"], Int32(2), "give -w FILE, --decode, or both"),
                      (["live", "-i", "lo", "-w", "/tmp/x.pcap", "-W", "3"], Int32(2), "-W needs -C or -G"),
                      (["live", "-i", "lo", "--decode", "-C", "1"], Int32(2), "-C and -G need -w FILE"),
                      (["live", "-i", "lo", "--decode", "--port", "70000"], Int32(2), "not a TCP port")])
    func usageErrors(arguments: [String], status: Int32, message: String) async throws {
        let run = try await onOwnThread { try DecodeTests.run(arguments, tool: "wmq-capture") }
        #expect(run.status == status)
        #expect(run.error.contains(message), "\(run.error)")
    }

    @Test(.enabled(if: canCapture))
    func aCaptureThatCannotStartSaysWhy() async throws {
        let noInterface = try await onOwnThread { try DecodeTests.run(["live", "-i", "wmq-nonexistent0", "--decode"], tool: "wmq-capture") }
        #expect(noInterface.status == 3)
        #expect(noInterface.error.contains("no interface wmq-nonexistent0"), "\(noInterface.error)")
        let badFilter = try await onOwnThread { try DecodeTests.run(["live", "-i", "lo", "--decode", "--filter", "tcp port banana"], tool: "wmq-capture") }
        #expect(badFilter.status == 3)
        #expect(badFilter.error.contains(#"filter "tcp port banana""#), "\(badFilter.error)")
        // Without CAP_NET_RAW (as nobody, every capability dropped).
        let unprivileged = try await onOwnThread {
            try DecodeTests.run(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                                 DecodeTests.binary("wmq-capture"), "live", "-i", "lo", "--decode"], tool: "/usr/bin/setpriv")
        }
        #expect(unprivileged.status == 3, "\(unprivileged.output)\(unprivileged.error)")
        #expect(unprivileged.error.contains("needs the CAP_NET_RAW capability"), "\(unprivileged.error)")
    }
}
