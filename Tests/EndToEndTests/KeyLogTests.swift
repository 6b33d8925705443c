import Foundation
import TestSupport
import Testing

/// `wmq-decode --keylog`: paho-mqtt sessions over wss:// to mosquitto's TLS websockets listener,
/// captured on loopback by wmq-capture (root), decrypted with the key log the client wrote.
@Suite("wmq-decode --keylog", .serialized, .timeLimit(.minutes(3)))
struct KeyLogTests {
    static var canRun: Bool { ProxyTests.peersPresent && getuid() == 0 }

    struct Session {
        var capture: String
        var keyLog: String
    }

    /// Captures one session: TLS `version` with `ciphers` (TLS 1.2: the client's OpenSSL list;
    /// TLS 1.3: the server's ciphersuites).
    static func record(_ version: String, ciphers: String?, in folder: URL) async throws -> Session {
        let (broker, _, wss) = try await ProxyTests.tlsMosquitto(in: folder, tls13Ciphers: version == "1.3" ? ciphers : nil)
        defer { broker.stop() }
        let capture = folder.appendingPathComponent("tls.pcap").path
        let keyLog = folder.appendingPathComponent("keys.log").path
        let live = try await CaptureToolTests.start(["--port", "\(wss)", "-w", capture])
        defer { live.stop() }
        var arguments = [ReplayPeerTests.root.appendingPathComponent("Tools/peers/tls_session.py").path, "\(wss)",
                         folder.appendingPathComponent("ca.pem").path, keyLog, version]
        if version == "1.2", let ciphers { arguments.append(ciphers) }
        let client = try Background(ReplayPeerTests.python, arguments)
        defer { client.stop() }
        let status = try await client.finished(seconds: 30)
        guard status == 0 else { throw PeerFailure(description: "the TLS client failed: \(client.output)") }
        try await Task.sleep(for: .milliseconds(300))
        kill(live.process.processIdentifier, SIGINT)
        _ = try await live.finished(seconds: 10)
        return Session(capture: capture, keyLog: keyLog)
    }

    static func decode(_ arguments: [String]) async throws -> DecodeTests.Run {
        try await onOwnThread { try DecodeTests.run(arguments) }
    }

    @Test(.enabled(if: canRun || ReplayPeerTests.required),
          arguments: [("1.2", "ECDHE-RSA-AES128-GCM-SHA256"), ("1.2", "ECDHE-RSA-AES256-GCM-SHA384"), ("1.2", "ECDHE-RSA-CHACHA20-POLY1305"),
                      ("1.3", "TLS_AES_128_GCM_SHA256"), ("1.3", "TLS_AES_256_GCM_SHA384"), ("1.3", "TLS_CHACHA20_POLY1305_SHA256")])
    func aSessionDecryptsWithItsKeyLog(version: String, ciphers: String) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-keylog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = try await Self.record(version, ciphers: ciphers, in: folder)
        let decrypted = try await Self.decode([session.capture, "--keylog", session.keyLog, "--format", "jsonl"])
        #expect(decrypted.status == 0, "\(decrypted.output)\(decrypted.error)")
        let packets = try DecodeTests.jsonObjects(decrypted).filter { $0["event"] as? String == "mqtt" }
        #expect(packets.map { $0["type"] as? String ?? "" } == ["CONNECT", "CONNACK", "SUBSCRIBE", "SUBACK", "PUBLISH", "PUBLISH", "PUBACK", "PUBACK", "DISCONNECT"]
                || packets.count == 9, "\(packets.map { $0["type"] ?? "" })")
        let publishes = packets.filter { $0["type"] as? String == "PUBLISH" }
        #expect(publishes.count == 2 && publishes.allSatisfy { $0["topic"] as? String == "notification" })
        // The decrypted notification is annotated as a Works message, its token redacted.
        let text = try await Self.decode([session.capture, "--keylog", session.keyLog, "--format", "text"])
        #expect(text.output.contains("REV_MSG · channel 300012345 「TLS room」 (room) · Alice: hello over TLS \(version)"), "\(text.output)")
        #expect(!decrypted.output.contains("fake-token-tls"))
        #expect((packets.first?["clientId"] as? String) == "wmq-tls")
        // Without the key log, the connection is named as TLS and left alone.
        let sealed = try await Self.decode([session.capture, "--format", "text"])
        #expect(sealed.output.contains("encrypted: give its key log with --keylog"), "\(sealed.output)")
        #expect(!sealed.output.contains("PUBLISH"))
    }

    @Test(.enabled(if: canRun || ReplayPeerTests.required))
    func aKeyLogWithoutTheSessionsSecretSaysSo() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-keylog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = try await Self.record("1.3", ciphers: nil, in: folder)
        let other = folder.appendingPathComponent("other.log").path
        try "CLIENT_TRAFFIC_SECRET_0 \(String(repeating: "ab", count: 32)) \(String(repeating: "cd", count: 32))\n".write(toFile: other, atomically: true, encoding: .utf8)
        let run = try await Self.decode([session.capture, "--keylog", other, "--format", "text"])
        #expect(run.output.contains("TLS") && run.output.contains("no secret in the key log for client random"), "\(run.output)")
        #expect(!run.output.contains("PUBLISH"))
    }

    @Test func aMalformedKeyLogIsRefusedWithItsLine() async throws {
        let file = try DecodeTests.temporary(Data("# keys\nCLIENT_RANDOM 00ff nothex\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let run = try await Self.decode([DecodeTests.sample, "--keylog", file])
        #expect(run.status == 3)
        #expect(run.error.contains("key log line 2: CLIENT_RANDOM needs a 32-byte client random and a secret, in hex"), "\(run.error)")
    }
}
