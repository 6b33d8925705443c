import Foundation
import Dialects
import TestSupport
import MockAgents
import Testing

/// The captures of the other chat protocols that `Tools/make-captures --dialects` records with
/// wmq-mock's endpoints and the peers in Tools/peers/ (OneBot v11, the chat-topic tree, CocoroCore
/// chat, the Discord gateway with zlib-stream, and all four at once), decoded by wmq-decode:
/// every dialect recognised from its handshake and messages, annotated, its secrets redacted.
@Suite("Dialect captures", .serialized, .timeLimit(.minutes(3)))
struct DialectCaptureTests {
    /// A decode's JSON Lines, and the annotation summaries of one dialect, in order.
    struct Decoded {
        let status: Int32
        let output: String
        let events: [[String: Any]]

        init(_ path: String) throws {
            let run = try DecodeTests.run(["--format", "jsonl", path])
            status = run.status
            output = run.output
            events = run.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }

        func summaries(_ dialect: String) -> [String] {
            events.compactMap { ($0[dialect] as? [String: Any])?["summary"] as? String }
        }

        func annotations(_ dialect: String) -> [[String: Any]] { events.compactMap { $0[dialect] as? [String: Any] } }

        var errors: [[String: Any]] { events.filter { $0["event"] as? String == "error" } }

        /// The connections on which `dialect` annotated something.
        func connections(_ dialect: String) -> Set<String> {
            Set(events.filter { $0[dialect] != nil }.compactMap { $0["connection"] as? String })
        }
    }

    static func path(_ name: String, in folder: String? = nil) -> String {
        folder.map { "\($0)/\(name)" } ?? ReplayPeerTests.capture(name)
    }

    static func checkOneBot(_ decoded: Decoded) {
        let lines = decoded.summaries("onebot")
        for expected in [
            "lifecycle connect (bot 12345)", "heartbeat every 30000 ms (online, good)", "private · user 12345: Hello!",
            "group 123456 · user 12345: Hello, everyone!", "group 123456 · user 12345: @10001 天気&ニュース[face:14]",
            "call send_group_msg · group 123456: Hi from the API (echo call-1)",
            "response failed (retcode 1404, no such action) to set_group_kick (echo call-3)",
            "group 123456 · user 67890 (Alice): こんにちは、サーバーから",
        ] {
            #expect(lines.contains(expected), "missing \(expected) in \(lines)")
        }
        #expect(lines.contains { $0.hasPrefix("response ok (retcode 0, ok) to send_group_msg · message ") && $0.hasSuffix("(echo call-1)") })
        #expect(!decoded.output.contains("s3cret"), "the Bearer token is redacted")
    }

    static func checkChat(_ decoded: Decoded) throws {
        let lines = decoded.summaries("chat")
        #expect(lines.contains("chat/send · session s-1 · id m-1: Hello, AI!"))
        #expect(lines.contains("chat/status · session s-1 · id m-1 · received"))
        #expect(lines.contains("chat/status · session s-1 · id m-1 · completed"))
        #expect(lines.contains("connection/ai-core · online"))
        // The streamed pieces add up to the whole reply the last message carries.
        let texts = decoded.events.filter { $0["topic"] as? String == "chat/receive" && $0["direction"] as? String == "s2c" }
            .compactMap { (($0["chat"] as? [String: Any])?["fields"] as? [String: Any])?["text"] as? String }
        let whole = CannedReply.reply(to: "Hello, AI!")
        #expect(texts.last == whole)
        #expect(texts.dropLast().joined() == whole, "\(texts.count) pieces")
        // The dissector reassembled the reply itself and found its pieces complete.
        let reassembled = decoded.annotations("chat").filter { ($0["summary"] as? String)?.hasPrefix("reply in \(texts.count - 1) pieces") == true }
        #expect(reassembled.count == 1 && (reassembled.first?["warnings"] as? [String] ?? []).isEmpty, "\(decoded.summaries("chat").suffix(3))")
    }

    static func checkCocoro(_ decoded: Decoded) {
        let answers = decoded.annotations("cocoro").filter { $0["kind"] as? String == "answer" }
        #expect(answers.count == 2)
        for answer in answers {
            #expect((answer["warnings"] as? [String] ?? []).isEmpty, "the chunks add up to final_text: \(answer)")
        }
        let lines = decoded.summaries("cocoro")
        #expect(lines.contains("chat request (text) · session session-1: 今日の天気は？"))
        #expect(lines.contains { $0.hasPrefix("answer in ") && $0.contains("session session-2: You asked: What is the weather today?") })
        #expect(lines.contains { $0.hasPrefix("error PROCESSING_ERROR · session session-bad") })
    }

    static func checkDiscord(_ decoded: Decoded) throws {
        let lines = decoded.summaries("discord")
        #expect(lines.first == "HELLO (heartbeat every 1000 ms)")
        #expect(lines.contains { $0.hasPrefix("IDENTIFY (token ‹token:") && $0.hasSuffix("›, intents 513)") })
        #expect(!decoded.output.contains("bot-t0ken"), "the IDENTIFY token is redacted")
        #expect(lines.contains("READY #1"))
        #expect(lines.contains { $0.hasPrefix("MESSAGE_CREATE #") && $0.hasSuffix("· alice: hi bot") })
        // Heartbeats are acknowledged, with their latency, over the zlib stream.
        let acks = decoded.annotations("discord").filter { $0["kind"] as? String == "heartbeat_ack" }
        #expect(!acks.isEmpty && acks.allSatisfy { (($0["fields"] as? [String: Any])?["latency_ms"] as? String).flatMap(Int.init) != nil })
        // The bot's posts (one flush a second) add up to its reply.
        let posts = lines.filter { $0.contains("· wmq-bot: ") }.map { String($0[$0.range(of: "· wmq-bot: ")!.upperBound...]) }
        #expect(posts.joined() == CannedReply.reply(to: "hi bot"), "\(posts)")
        #expect(decoded.events.contains { $0["type"] as? String == "close" && $0["codeName"] as? String == "normal closure" })
    }

    static func checkAll(in folder: String? = nil) throws {
        for name in ["onebot-ws.pcap", "chat-ws.pcap", "cocoro-ws.pcap", "discord-zlib.pcap"] {
            let decoded = try Decoded(path(name, in: folder))
            #expect(decoded.status == 0 && decoded.errors.isEmpty, "\(name): \(decoded.errors)")
            switch name {
            case "onebot-ws.pcap": checkOneBot(decoded)
            case "chat-ws.pcap": try checkChat(decoded)
            case "cocoro-ws.pcap": checkCocoro(decoded)
            default: try checkDiscord(decoded)
            }
        }
        // All four at once: each dialect on its own connection, each annotated as when alone.
        let mixed = try Decoded(path("dialects-mixed.pcap", in: folder))
        #expect(mixed.status == 0 && mixed.errors.isEmpty, "\(mixed.errors)")
        let owners = ["onebot", "chat", "cocoro", "discord"].map { mixed.connections($0) }
        #expect(owners.allSatisfy { $0.count == 1 }, "\(owners)")
        #expect(Set(owners.flatMap { $0 }).count == 4, "four connections, one dialect each")
        checkOneBot(mixed)
        try checkChat(mixed)
        checkCocoro(mixed)
        try checkDiscord(mixed)
    }

    @Test func theCommittedCapturesDecodeIntoEveryDialect() throws {
        try Self.checkAll()
    }

    @Test func statsCountMessagesByDialect() throws {
        let run = try DecodeTests.run(["--stats", "--format", "text", Self.path("dialects-mixed.pcap")])
        #expect(run.status == 0)
        #expect(run.output.contains("discord heartbeat_ack"), "\(run.output)")
        #expect(run.output.contains("onebot group-message 3"))
        #expect(run.output.contains("cocoro answer 2"))
        #expect(run.output.contains("PUBLISH"))
    }

    /// The script makes them anew with real processes (tcpdump, wmq-mock, the peers), and they decode the same way.
    @Test(.enabled(if: (ReplayPeerTests.pahoPresent && getuid() == 0) || ReplayPeerTests.required))
    func makeCapturesRecordsThemAnew() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-dialects-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let script = ReplayPeerTests.root.appendingPathComponent("Tools/make-captures").path
        let record = try Background("/usr/bin/env", ["WMQ_MOCK=\(DecodeTests.binary("wmq-mock"))", script, "--dialects", folder.path])
        defer { record.stop() }
        #expect(try await record.finished(seconds: 120) == 0, "\(record.output)")
        try Self.checkAll(in: folder.path)
    }
}
