import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The real peers these tests run against: mosquitto (its websockets listeners), paho-mqtt in
/// the project's virtualenv, openssl. `make test` installs them (Tools/setup --peers); under
/// CI=true a missing peer fails the tests instead of disabling them.
enum Peers {
    static var root: URL { TestEnvironment.root }
    static var python: String { TestEnvironment.python }

    static var present: Bool {
        TestEnvironment.mosquitto != nil && TestEnvironment.executable("openssl") != nil && TestEnvironment.pythonPresent
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a command to its end (bounded by `timeout`) and returns its exit status and stderr.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        guard let status = exitStatus(of: process, seconds: timeout) else {
            throw Missing(description: "\(executable) \(arguments.joined(separator: " ")) did not finish in \(timeout) s")
        }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (status, text)
    }

    /// paho-mqtt publishing `count` Works notifications to mosquitto's websockets listener, on a
    /// thread of its own (the client under test needs the concurrency pool's few threads).
    static func publish(port: Int, qos: Int, count: Int, start: Int = 0, prefix: String, topic: String = "works/notification") async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    try publishBlocking(port: port, qos: qos, count: count, start: start, prefix: prefix, topic: topic)
                })
            }
        }
    }

    static func publishBlocking(port: Int, qos: Int, count: Int, start: Int, prefix: String, topic: String) throws {
        let result = try run(python, [root.appendingPathComponent("Tools/peers/works_publisher.py").path,
                                      "--port", "\(port)", "--qos", "\(qos)", "--count", "\(count)", "--start", "\(start)",
                                      "--prefix", prefix, "--topic", topic])
        guard result.status == 0 else { throw Missing(description: "the paho publisher failed: \(result.stderr)") }
    }
}

/// A certificate authority and a server certificate for 127.0.0.1, made with openssl.
struct TestCertificates {
    let directory: URL
    var caFile: String { directory.appendingPathComponent("ca.pem").path }
    var certificateFile: String { directory.appendingPathComponent("server.pem").path }
    var keyFile: String { directory.appendingPathComponent("server.key").path }

    init(in directory: URL) throws {
        self.directory = directory
        guard let openssl = TestEnvironment.executable("openssl") else { throw Peers.Missing(description: "openssl is not installed") }
        let d = directory.path
        let extensions = directory.appendingPathComponent("server.ext")
        try Data("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n".utf8).write(to: extensions)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=wmq test CA",
             "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "\(d)/server.key", "-out", "\(d)/server.csr"],
            ["x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", extensions.path, "-out", "\(d)/server.pem"],
        ]
        for step in steps {
            let result = try Peers.run(openssl, step)
            guard result.status == 0 else { throw Peers.Missing(description: "openssl \(step[0]) failed: \(result.stderr)") }
        }
    }
}

/// mosquitto on free loopback ports: a TCP listener (mosquitto 2.0 will not start with a
/// websockets listener alone), a websockets listener and optionally a TLS websockets one.
/// Stopped by its process id; the same ports and persistence survive ``restart()``.
final class Mosquitto {
    let directory: URL
    private(set) var tcpPort = 0
    private(set) var webSocketPort = 0
    private(set) var secureWebSocketPort: Int?
    private var process: Process?

    init(certificates: TestCertificates? = nil, persistence: Bool = false) throws {
        guard let executable = TestEnvironment.mosquitto else { throw Peers.Missing(description: "mosquitto is not installed (make deps)") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-mosquitto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.executable = executable
        self.certificates = certificates
        self.persistence = persistence
        // A free port can be taken by another test between freePort() and mosquitto's bind:
        // the broker then exits at once, and is started again on other ports.
        for attempt in 1... {
            tcpPort = try LoopbackPorts.free()
            webSocketPort = try LoopbackPorts.free()
            secureWebSocketPort = certificates == nil ? nil : try LoopbackPorts.free()
            try writeConfiguration()
            do {
                try start()
                return
            } catch is Exited where attempt < 3 {
                continue
            }
        }
    }

    private let certificates: TestCertificates?
    private let persistence: Bool

    private func writeConfiguration() throws {
        var lines = [
            "allow_anonymous true",
            // As root, mosquitto would switch to its own user and lose access to this directory.
            "user root",
            "persistence \(persistence)",
            "persistence_location \(directory.path)/",
            // Saved every second, so that a killed broker comes back with its sessions.
            "autosave_interval 1",
            "max_queued_messages 100000",
            // mosquitto 2.0.11 stops after the first 20 QoS 2 messages to a websockets client
            // when the in-flight window is full (a paho subscriber sees the same): no window.
            "max_inflight_messages 0",
            "listener \(tcpPort) 127.0.0.1", "socket_domain ipv4",
            "listener \(webSocketPort) 127.0.0.1", "socket_domain ipv4", "protocol websockets",
        ]
        if let certificates, let secureWebSocketPort {
            lines += ["listener \(secureWebSocketPort) 127.0.0.1", "socket_domain ipv4", "protocol websockets",
                      "cafile \(certificates.caFile)", "certfile \(certificates.certificateFile)", "keyfile \(certificates.keyFile)"]
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: directory.appendingPathComponent("mosquitto.conf"))
    }

    private let executable: String

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-c", directory.appendingPathComponent("mosquitto.conf").path]
        let log = directory.appendingPathComponent("mosquitto.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if !process.isRunning {
                process.waitUntilExit()
                self.process = nil
                throw Exited(description: "mosquitto exited with status \(process.terminationStatus): \(self.log)")
            }
            if LoopbackPorts.accepts(webSocketPort) && (secureWebSocketPort.map(LoopbackPorts.accepts) ?? true) { return }
            usleep(20_000)
        }
        stop()
        throw Peers.Missing(description: "mosquitto did not accept connections within 10 s: \(self.log)")
    }

    /// The broker stopped on its own while starting (a port taken, a bad configuration).
    struct Exited: Error, CustomStringConvertible {
        let description: String
    }

    /// SIGTERM, SIGKILL after 1 s (its websockets listener can take 5 s to say goodbye).
    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(1)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        self.process = nil
    }

    /// Kills the broker (SIGKILL: no goodbye to its clients) and starts it again on the same ports.
    func killAndRestart() throws {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        process = nil
        try start()
    }

    var log: String {
        (try? String(contentsOf: directory.appendingPathComponent("mosquitto.log"), encoding: .utf8)) ?? ""
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
