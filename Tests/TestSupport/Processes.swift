public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A process of a test (a server, a peer): started with pipes, waited on by condition, stopped
/// by its id. Output is collected as it comes, so a chatty process never blocks on a full pipe.
/// Starts a process that SIGINT and SIGTERM reach: a child inherits the spawning thread's
/// blocked signals, and the test runner's threads block both; unblocked while it starts, the
/// peers can be stopped (and tcpdump told to finish), and a tool's Ctrl-C handling tested.
public func startWithSignalsUnblocked(_ process: Process) throws {
    var unblocked = sigset_t()
    var previous = sigset_t()
    sigemptyset(&unblocked)
    pthread_sigmask(SIG_SETMASK, &unblocked, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    try process.run()
}

public final class Background: @unchecked Sendable {  // output is guarded by the lock
    public let process = Process()
    private let lock = NSLock()
    private var collected: [UInt8] = []
    /// The process's standard input.
    public let input = Pipe()

    public init(_ executable: String, _ arguments: [String]) throws {
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

    public var output: String { lock.withLock { String(decoding: collected, as: UTF8.self) } }

    /// Writes a line to the process's standard input.
    public func send(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// The first match of `pattern` (a regular expression) in the output, waiting up to `seconds`.
    public func await(_ pattern: String, seconds: Double = 10) throws -> String {
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
    public func finish(seconds: Double = 30) -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { stop() }
        process.waitUntilExit()
        usleep(50_000)  // the last output
        return process.terminationStatus
    }

    /// SIGTERM by its id, SIGKILL if it has not ended within two seconds.
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}


extension Background {
    public func awaiting(_ pattern: String, seconds: Double = 10) async throws -> String {
        try await onOwnThread { try self.await(pattern, seconds: seconds) }
    }

    public func finished(seconds: Double = 30) async throws -> Int32 {
        try await onOwnThread { self.finish(seconds: seconds) }
    }
}

/// Waits for `process` to end (at most `seconds`, then it is killed by its id); its exit
/// status, nil when it had to be killed.
public func exitStatus(of process: Process, seconds: Double = 20) -> Int32? {
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return nil
    }
    return process.terminationStatus
}

/// mosquitto with a TCP and a websockets listener on free loopback ports; its URLs. Stop it
/// with `stop()` (by its id).
public func startMosquitto(extraConfiguration: String = "") async throws -> (Background, ws: String, tcp: String) {
    guard let mosquitto = TestEnvironment.mosquitto else {
        throw PeerFailure(description: "mosquitto is not installed (Tools/setup --peers)")
    }
    let (tcp, ws) = (try LoopbackPorts.free(), try LoopbackPorts.free())
    let config = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-test-mosquitto-\(UUID().uuidString).conf")
    try """
        listener \(tcp) 127.0.0.1
        socket_domain ipv4
        listener \(ws) 127.0.0.1
        socket_domain ipv4
        protocol websockets
        allow_anonymous true
        \(extraConfiguration)
        """.write(to: config, atomically: true, encoding: .utf8)
    let broker = try Background(mosquitto, ["-c", config.path, "-v"])
    _ = try await broker.awaiting("Opening websockets listen socket on port \(ws)")
    try await LoopbackPorts.waitUntilAccepting(ws)
    try await LoopbackPorts.waitUntilAccepting(tcp)
    return (broker, "ws://127.0.0.1:\(ws)", "mqtt://127.0.0.1:\(tcp)")
}

/// amqtt's broker (MQTT 3.1.1) with a TCP and a WebSocket listener on free loopback ports; its
/// URLs. Stop it with `stop()` (by its id).
public func startAmqtt() async throws -> (Background, ws: String, tcp: String) {
    guard let amqtt = TestEnvironment.amqtt else {
        throw PeerFailure(description: "amqtt is not installed (Tools/setup --peers)")
    }
    let (tcp, ws) = (try LoopbackPorts.free(), try LoopbackPorts.free())
    let config = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-test-amqtt-\(UUID().uuidString).yaml")
    try """
        listeners:
          default:
            type: tcp
            bind: 127.0.0.1:\(tcp)
          ws:
            type: ws
            bind: 127.0.0.1:\(ws)
        plugins:
          amqtt.plugins.authentication.AnonymousAuthPlugin:
            allow_anonymous: true
        """.write(to: config, atomically: true, encoding: .utf8)
    let broker = try Background(amqtt, ["-c", config.path])
    try await LoopbackPorts.waitUntilAccepting(ws, seconds: 20)
    try await LoopbackPorts.waitUntilAccepting(tcp, seconds: 20)
    return (broker, "ws://127.0.0.1:\(ws)", "mqtt://127.0.0.1:\(tcp)")
}
