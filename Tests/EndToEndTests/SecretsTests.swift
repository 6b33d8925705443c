import Dialects
import Foundation
import Logging
import MockServer
import MQTTWire
import NIOCore
import TestSupport
import Testing

/// Secrets planted in every form a session carries them — URL query parameters, request headers,
/// the CONNECT password, JSON members at depth in a message — and looked for in every output of
/// the tools that touch the session: wmq-client's standard output, standard error, log file and
/// recording, and wmq-decode's text, JSON Lines and HAR of that recording. None may appear; the
/// files holding the session are 0600 even where they existed as 0644 before.
@Suite("Secrets never leak from a tool's outputs", .serialized, .timeLimit(.minutes(2)))
struct SecretsTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// Each secret is unlike anything else in the session, so that finding it means it leaked.
    static let secrets = [
        "access_token": "QSECRET-aaa111", "api_key": "QSECRET-bbb222", "sig": "QSECRET-ccc333",
        "X-Api-Key": "HSECRET-ddd444", "X-Auth-Token": "HSECRET-eee555", "password": "PSECRET-fff666",
        "accessToken": "JSECRET-ggg777", "refresh_token": "JSECRET-hhh888", "apiKey": "JSECRET-iii999", "secret": "JSECRET-jjj000",
    ]

    static func mode(of path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func plantedSecretsAppearInNoOutput() async throws {
        let broker = MockBroker(configuration: .init(), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let log = folder.appendingPathComponent("client.log").path
        let recording = folder.appendingPathComponent("session.pcap").path
        // Both exist already, readable by everyone: they must end up 0600 all the same.
        for path in [log, recording] {
            FileManager.default.createFile(atPath: path, contents: Data("old\n".utf8), attributes: [.posixPermissions: 0o644])
        }
        let s = Self.secrets
        let url = "ws://127.0.0.1:\(port)/mqtt?room=7&access_token=\(s["access_token"]!)&api_key=\(s["api_key"]!)&sig=\(s["sig"]!)"
        let client = try Background("/usr/bin/env", [
            "WMQ_SECRETS_TEST_PASSWORD=\(s["password"]!)", DecodeTests.binary("wmq-client"),
            "--url", url, "--origin", "", "--subscribe", "t/#", "--count", "1", "--format", "jsonl", "-V",
            "--header", "X-Api-Key: \(s["X-Api-Key"]!)", "--header", "X-Auth-Token: \(s["X-Auth-Token"]!)",
            "--username", "alice", "--password-env", "WMQ_SECRETS_TEST_PASSWORD",
            "--record", recording, "--log-file", log, "--log-level", "debug",
        ])
        defer { client.stop() }
        // Subscribed (not only connected) before the message goes out.
        #expect(await waitUntil(seconds: 10) {
            guard let id = await broker.connectedClients.first else { return false }
            return await broker.subscriptions(of: id)?.isEmpty == false
        })
        let payload = #"{"text": "hello", "data": {"user": {"accessToken": "\#(s["accessToken"]!)", "refresh_token": "\#(s["refresh_token"]!)"}, "list": [{"apiKey": "\#(s["apiKey"]!)", "secret": "\#(s["secret"]!)"}]}}"#
        await broker.publish(PublishPacket(qos: .atLeastOnce, topicName: "t/1", payload: ByteBuffer(string: payload)))
        let status = try await client.finished(seconds: 20)
        #expect(status == 0, "\(client.output.suffix(2000))")
        // The message did arrive (the test would prove nothing otherwise), its secrets as pseudonyms.
        let shown = client.output
        #expect(shown.contains("hello") && shown.contains("‹"), "\(shown.suffix(1500))")

        var outputs: [(String, Data)] = [("standard output and error", Data(shown.utf8))]
        outputs.append(("log file", try Data(contentsOf: URL(fileURLWithPath: log))))
        outputs.append(("recording", try Data(contentsOf: URL(fileURLWithPath: recording))))
        for format in ["text", "jsonl"] {
            let decoded = try DecodeTests.run([recording, "--format", format, "-V"])
            outputs.append(("wmq-decode --format \(format)", Data((decoded.output + decoded.error).utf8)))
            #expect(decoded.output.contains("hello"), "wmq-decode --format \(format) did not show the message")
        }
        // HAR carries binary WebSocket messages in base64: searched decoded, with the rest of the file.
        let har = try DecodeTests.run([recording, "--format", "har"])
        var harText = har.output + har.error
        let document = try JSONSerialization.jsonObject(with: Data(har.output.utf8)) as? [String: Any]
        let entries = ((document?["log"] as? [String: Any])?["entries"] as? [[String: Any]]) ?? []
        for message in entries.flatMap({ ($0["_webSocketMessages"] as? [[String: Any]]) ?? [] }) {
            if let data = message["data"] as? String, let bytes = Data(base64Encoded: data) { harText += String(decoding: bytes, as: UTF8.self) }
        }
        #expect(harText.contains("hello"), "the HAR's messages did not hold the message")
        outputs.append(("wmq-decode --format har", Data(harText.utf8)))
        for (name, data) in outputs {
            let text = String(decoding: data, as: UTF8.self)
            for (field, secret) in s.sorted(by: { $0.key < $1.key }) {
                #expect(!text.contains(secret), "\(field)'s secret is in \(name)")
            }
        }
        #expect(Self.mode(of: log) == 0o600, "log file mode \(String(Self.mode(of: log), radix: 8))")
        #expect(Self.mode(of: recording) == 0o600, "recording mode \(String(Self.mode(of: recording), radix: 8))")
    }
}
