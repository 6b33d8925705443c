import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// A process of a test (a server, a peer): started with pipes, waited on by condition, stopped
/// by its id. Output is collected as it comes, so a chatty process never blocks on a full pipe.
/// Starts a process that SIGINT and SIGTERM reach: a child inherits the spawning thread's
/// blocked signals, and the test runner's threads block both; unblocked while it starts, the
/// peers can be stopped (and tcpdump told to finish), and a tool's Ctrl-C handling tested.
func startWithSignalsUnblocked(_ process: Process) throws {
    var unblocked = sigset_t()
    var previous = sigset_t()
    sigemptyset(&unblocked)
    pthread_sigmask(SIG_SETMASK, &unblocked, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    try process.run()
}

final class Background: @unchecked Sendable {  // output is guarded by the lock
    let process = Process()
    private let lock = NSLock()
    private var collected: [UInt8] = []
    /// The process's standard input.
    let input = Pipe()

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = input
        try startWithSignalsUnblocked(process)
        // Read by a thread of its own with plain blocking reads, until the pipe's end of file.
        // Not `readabilityHandler`: that is a libdispatch read source, and libdispatch on Linux
        // can corrupt its epoll bookkeeping when many are set up and torn down at once, as the
        // parallel suites do (swift-corelibs-libdispatch#949); a crash inside libdispatch ended
        // one CI run of these tests.
        let reading = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 16_384)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(reading.fileDescriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                lock.withLock { collected += buffer[..<count] }
            }
        }
    }

    var output: String { lock.withLock { String(decoding: collected, as: UTF8.self) } }

    /// Writes a line to the process's standard input.
    func send(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// The first match of `pattern` (a regular expression) in the output, waiting up to `seconds`.
    func await(_ pattern: String, seconds: Double = 10) throws -> String {
        let regex = try Regex(pattern)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let match = try regex.firstMatch(in: output) { return String(output[match.range]) }
            if !process.isRunning, (try regex.firstMatch(in: output)) == nil { break }
            usleep(20_000)
        }
        throw PeerFailure(description: "no \(pattern) from \(process.executableURL?.lastPathComponent ?? "?") in \(seconds) s: \(output.suffix(800))")
    }

    /// Waits for the process to end by itself (at most `seconds`, then it is killed); its status.
    func finish(seconds: Double = 30) -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { stop() }
        process.waitUntilExit()
        usleep(50_000)  // the last output
        return process.terminationStatus
    }

    /// SIGTERM by its id, SIGKILL if it has not ended within two seconds.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

struct PeerFailure: Error, CustomStringConvertible { var description: String }

/// Runs blocking work (process waits, pipe reads) on a thread of its own and awaits it: the test
/// runner's few shared threads are needed by the servers under test in other suites.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

extension Background {
    func awaiting(_ pattern: String, seconds: Double = 10) async throws -> String {
        try await onOwnThread { try self.await(pattern, seconds: seconds) }
    }

    func finished(seconds: Double = 30) async throws -> Int32 {
        try await onOwnThread { self.finish(seconds: seconds) }
    }
}

/// Waits (at most 10 s) until something accepts TCP connections on 127.0.0.1:`port`: a peer's
/// "listening" line can come before its socket listens.
func waitUntilAccepting(_ port: Int) async throws {
    try await onOwnThread {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if connected { return }
            usleep(20_000)
        }
        throw PeerFailure(description: "nothing accepts connections on port \(port)")
    }
}

/// A free TCP port on 127.0.0.1 (for peers that cannot be told to pick one).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw PeerFailure(description: "no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// `wmq-replay` against real peers: mosquitto and wmq-mock as servers, paho-mqtt as the client.
/// Under CI=true a missing peer fails these tests.
@Suite("wmq-replay with real peers", .serialized, .timeLimit(.minutes(3)))
struct ReplayPeerTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let python = root.appendingPathComponent(".venv/bin/python3").path
    static var required: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
    static let mosquitto = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var pahoPresent: Bool { FileManager.default.isExecutableFile(atPath: python) }
    static let recordedWithPaho = ["mqtt311-ws.pcap", "mqtt5-ws.pcap", "split-ws.pcap", "works-ws.pcap"]

    static func capture(_ name: String) -> String { root.appendingPathComponent("captures/\(name)").path }

    /// mosquitto with a TCP and a websockets listener on loopback; its URLs.
    static func startMosquitto() async throws -> (Background, ws: String, tcp: String) {
        guard let mosquitto else { throw PeerFailure(description: "mosquitto is not installed (Tools/setup --peers)") }
        let (tcp, ws) = (try freePort(), try freePort())
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-replay-mosquitto-\(UUID().uuidString).conf")
        try """
            listener \(tcp) 127.0.0.1
            socket_domain ipv4
            listener \(ws) 127.0.0.1
            socket_domain ipv4
            protocol websockets
            allow_anonymous true
            """.write(to: config, atomically: true, encoding: .utf8)
        let broker = try Background(mosquitto, ["-c", config.path, "-v"])
        _ = try await broker.awaiting("Opening websockets listen socket on port \(ws)")
        try await waitUntilAccepting(ws)
        try await waitUntilAccepting(tcp)
        return (broker, "ws://127.0.0.1:\(ws)", "mqtt://127.0.0.1:\(tcp)")
    }

    /// wmq-mock on free ports; its URLs.
    static func startMock(_ arguments: [String] = []) async throws -> (Background, ws: String, tcp: String) {
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--ws", "127.0.0.1:0", "--tcp", "127.0.0.1:0"] + arguments)
        let ws = try await mock.awaiting("ws://127\\.0\\.0\\.1:[0-9]+")
        let tcp = try await mock.awaiting("mqtt://127\\.0\\.0\\.1:[0-9]+")
        return (mock, ws, tcp)
    }

    static func drive(_ capture: String, _ urls: [String], _ extra: [String] = []) async throws -> DecodeTests.Run {
        try await replay(["drive", capture, "--asap"] + urls.flatMap { ["--url", $0] } + extra)
    }

    static func replay(_ arguments: [String]) async throws -> DecodeTests.Run {
        try await onOwnThread { try DecodeTests.run(arguments, tool: "wmq-replay") }
    }

    @Test(.enabled(if: mosquitto != nil || required), arguments: recordedWithPaho)
    func drivingPahoRecordingsMatchesMosquittoAndTheMock(capture: String) async throws {
        let (broker, ws, tcp) = try await Self.startMosquitto()
        defer { broker.stop() }
        let against = try await Self.drive(Self.capture(capture), [ws, tcp])
        #expect(against.status == 0, "\(against.output)\(against.error)")
        #expect(against.lines.first?.contains("drive, as fast as possible: MATCH") == true, "\(against.output)")

        let (mock, mockWS, mockTCP) = try await Self.startMock()
        defer { mock.stop() }
        let againstMock = try await Self.drive(Self.capture(capture), [mockWS, mockTCP])
        #expect(againstMock.status == 0, "\(againstMock.output)\(againstMock.error)")
        #expect(againstMock.lines.first?.contains("MATCH") == true)
    }

    @Test(.enabled(if: pahoPresent || required), arguments: ["mqtt311-ws", "mqtt5-ws", "split-ws", "works-ws"])
    func servingToThePahoClientsThatWereRecordedMatches(scenario: String) async throws {
        let serve = try Background(DecodeTests.binary("wmq-replay"), ["serve", Self.capture("\(scenario).pcap"), "--listen", "127.0.0.1:0",
                                                                      "--listen-tcp", "127.0.0.1:0", "--asap", "--timeout", "10"])
        defer { serve.stop() }
        let ws = try await serve.awaiting("ws://127\\.0\\.0\\.1:[0-9]+").split(separator: ":").last.map(String.init) ?? ""
        let tcp = try await serve.awaiting("mqtt://127\\.0\\.0\\.1:[0-9]+").split(separator: ":").last.map(String.init) ?? ""
        // The very scenario that recorded the capture against mosquitto, now against the recording.
        let client = try Background(Self.python, [Self.root.appendingPathComponent("Tools/peers/scenarios.py").path, scenario, ws, tcp])
        defer { client.stop() }
        let clientStatus = try await client.finished(seconds: 30)
        #expect(clientStatus == 0, "\(client.output)")
        let serveStatus = try await serve.finished(seconds: 20)
        #expect(serveStatus == 0, "\(serve.output)")
        #expect(serve.output.contains("serve, as fast as possible: MATCH"), "\(serve.output)")
    }

    /// The sample HAR with one notification's text changed ("Standup in 5" → "in 9"), same length.
    static func changedHAR(from name: String, replacing old: String, with new: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: capture(name)))
        guard var har = try JSONSerialization.jsonObject(with: data) as? [String: Any], var log = har["log"] as? [String: Any],
              var entries = log["entries"] as? [[String: Any]], var messages = entries.first?["_webSocketMessages"] as? [[String: Any]] else {
            throw PeerFailure(description: "not the sample HAR")
        }
        var changed = 0
        for index in messages.indices {
            guard let text = messages[index]["data"] as? String, let bytes = Data(base64Encoded: text),
                  let range = bytes.range(of: Data(old.utf8)) else { continue }
            var edited = bytes
            edited.replaceSubrange(range, with: Data(new.utf8))
            messages[index]["data"] = edited.base64EncodedString()
            changed += 1
        }
        guard changed == 1 else { throw PeerFailure(description: "\(old) is in \(changed) messages") }
        entries[0]["_webSocketMessages"] = messages
        log["entries"] = entries
        har["log"] = log
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-changed-\(UUID().uuidString).har").path
        try JSONSerialization.data(withJSONObject: har).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aChangedServerAnswerFailsWithAReadableDiff() async throws {
        let changed = try Self.changedHAR(from: "works-sample.har", replacing: "Standup in 5", with: "Standup in 9")
        defer { try? FileManager.default.removeItem(atPath: changed) }
        let (mock, ws, tcp) = try await Self.startMock(["--mode", "works", "--serve", changed])
        defer { mock.stop() }
        let junit = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-junit-\(UUID().uuidString).xml").path
        defer { try? FileManager.default.removeItem(atPath: junit) }
        let run = try await Self.drive(Self.capture("works-sample.har"), [ws, tcp], ["--junit", junit])
        #expect(run.status == 1, "\(run.output)\(run.error)")
        #expect(run.lines.first?.contains("MISMATCH (1 connection replayed, 1 differ)") == true, "\(run.output)")
        // The differing PUBLISH side by side, as annotated Works messages, with the reason under it.
        let marked = run.lines.firstIndex { $0.hasPrefix("  !    5 PUBLISH \"notification\" QoS 0 137 bytes") }
        #expect(marked != nil, "\(run.output)")
        if let marked, run.lines.count > marked + 3 {
            #expect(run.lines[marked + 1] == "           recorded: channel message · channel 300099 · Bob: Standup in 5 minutes")
            #expect(run.lines[marked + 2] == "           replayed: channel message · channel 300099 · Bob: Standup in 9 minutes")
            #expect(run.lines[marked + 3] == #"         → $.msg is "Standup in 9 minutes", the recording's "Standup in 5 minutes""#)
        }
        // The four other packets matched and say so with no mark.
        #expect(run.lines.filter { $0.hasPrefix("       ") && $0.contains("PUBLISH") || $0.contains("CONNACK") }.count >= 2)
        #if canImport(FoundationXML)
        let document = try XMLDocument(contentsOf: URL(fileURLWithPath: junit))
        let suites = try document.nodes(forXPath: "/testsuites").first as? XMLElement
        #expect(suites?.attribute(forName: "failures")?.stringValue == "1")
        let failure = try document.nodes(forXPath: "//testcase/failure").first as? XMLElement
        #expect(failure?.attribute(forName: "message")?.stringValue?.contains("#5:") == true)
        #expect(failure?.stringValue?.contains("Standup in 9") == true)
        #endif
    }

    @Test func secretsInTheReportArePseudonymsUnlessAskedOtherwise() async throws {
        let changed = try Self.changedHAR(from: "works-sample.har", replacing: "fake-token-0001", with: "fake-token-0009")
        defer { try? FileManager.default.removeItem(atPath: changed) }
        let (mock, ws, tcp) = try await Self.startMock(["--mode", "works", "--serve", changed])
        defer { mock.stop() }
        let redacted = try await Self.drive(Self.capture("works-sample.har"), [ws, tcp])
        #expect(redacted.status == 1)
        #expect(redacted.output.contains("→ $.token is ‹token:"), "\(redacted.output)")
        #expect(!redacted.output.contains("fake-token-0009") && !redacted.output.contains("fake-token-0001"), "\(redacted.output)")
        let shown = try await Self.drive(Self.capture("works-sample.har"), [ws, tcp], ["--no-redact"])
        #expect(shown.output.contains(#"→ $.token is "fake-token-0009", the recording's "fake-token-0001""#), "\(shown.output)")
    }

    @Test func checkCatchesAClientThatActsOtherwiseThanRecorded() async throws {
        // The recorded client left the first notification unacknowledged; the built-in client does not.
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.capture("works-sample.har")))
        guard var har = try JSONSerialization.jsonObject(with: data) as? [String: Any], var log = har["log"] as? [String: Any],
              var entries = log["entries"] as? [[String: Any]], var messages = entries.first?["_webSocketMessages"] as? [[String: Any]] else {
            throw PeerFailure(description: "not the sample HAR")
        }
        let pubacks = messages.indices.filter { (messages[$0]["data"] as? String).flatMap { Data(base64Encoded: $0) }?.first == 0x40 }
        #expect(pubacks.count == 2)
        messages.remove(at: pubacks[0])
        entries[0]["_webSocketMessages"] = messages
        log["entries"] = entries
        har["log"] = log
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-unacked-\(UUID().uuidString).har").path
        try JSONSerialization.data(withJSONObject: har).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try await Self.replay(["check", path, "--format", "json"])
        #expect(run.status == 1, "\(run.output)\(run.error)")
        let report = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any]
        let connection = (report?["connections"] as? [[String: Any]])?.first
        #expect(connection?["status"] as? String == "mismatched")
        let differences = connection?["differences"] as? [[String: Any]] ?? []
        // One extra packet, not every packet after it shifted: the rest aligns as recorded.
        #expect(differences.count == 1, "\(differences)")
        #expect(differences.first?["actual"] as? String == "PUBACK id 1")
        #expect(differences.first?["expected"] as? String == "—")
        #expect(differences.first?["reason"] as? String == "a packet the recording does not have")
    }

    @Test(.enabled(if: (getuid() == 0 && mosquitto != nil && pahoPresent) || required))
    func aFreshPahoMosquittoRecordingReplays() async throws {
        // Recorded now by the project's script (tcpdump on loopback, root), then replayed every way.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-fresh-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let record = try Background(Self.root.appendingPathComponent("Tools/make-captures").path, [folder.path, "mqtt5-ws", "split-ws"])
        let recorded = try await record.finished(seconds: 60)
        #expect(recorded == 0, "\(record.output)")
        for name in ["mqtt5-ws.pcap", "split-ws.pcap"] {
            let capture = folder.appendingPathComponent(name).path
            let (broker, ws, tcp) = try await Self.startMosquitto()
            defer { broker.stop() }
            let run = try await Self.drive(capture, [ws, tcp])
            #expect(run.status == 0, "\(name) against mosquitto: \(run.output)\(run.error)")
            let (mock, mockWS, mockTCP) = try await Self.startMock()
            defer { mock.stop() }
            let againstMock = try await Self.drive(capture, [mockWS, mockTCP])
            #expect(againstMock.status == 0, "\(name) against wmq-mock: \(againstMock.output)\(againstMock.error)")
            let check = try await Self.replay(["check", capture])
            #expect(check.status == 0, "\(name) check: \(check.output)\(check.error)")
        }
    }
}
