import Foundation
import TestSupport
import Testing

/// `wmq-replay drive` of the JSON chat sockets in the dialect captures, against wmq-mock's
/// OneBot, CocoroCore and Discord endpoints: matches, a changed answer, a refused token.
@Suite("wmq-replay drive of chat sockets", .serialized, .timeLimit(.minutes(2)))
struct ChatSocketReplayToolTests {
    /// wmq-mock with the three JSON endpoints (the gateway's heartbeat as the captures were made); their base URLs.
    static func startMock(_ extra: [String] = []) async throws -> (Background, onebot: String, cocoro: String, discord: String) {
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--ws", "127.0.0.1:0", "--onebot", "127.0.0.1:0", "--cocoro", "127.0.0.1:0",
                                                                  "--discord", "127.0.0.1:0", "--discord-heartbeat", "1000"] + extra)
        func base(_ pattern: String) async throws -> String {
            let line = try await mock.awaiting(pattern)
            return String(line.prefix { $0 != "/" || line.prefix(while: { $0 != "/" }).count < 5 }).components(separatedBy: "/").prefix(3).joined(separator: "/")
        }
        let onebot = try await base("ws://127\\.0\\.0\\.1:[0-9]+/ws/ \\(OneBot")
        let cocoro = try await base("ws://127\\.0\\.0\\.1:[0-9]+/ws/chat/")
        let discord = try await base("ws://127\\.0\\.0\\.1:[0-9]+/\\?v=10")
        return (mock, onebot, cocoro, discord)
    }

    @Test func eachDialectsRecordingMatchesTheMock() async throws {
        let (mock, onebot, cocoro, discord) = try await Self.startMock()
        defer { mock.stop() }
        for (capture, url) in [("onebot-ws.pcap", onebot), ("cocoro-ws.pcap", cocoro), ("discord-zlib.pcap", discord)] {
            let run = try await ReplayPeerTests.replay(["drive", ReplayPeerTests.capture(capture), "--asap", "--url", url])
            #expect(run.status == 0, "\(capture): \(run.output)\(run.error)")
            #expect(run.lines.first?.contains("drive a chat socket, as fast as possible: MATCH") == true, "\(run.output)")
        }
        // The OneBot event and the Discord conversation came from the server on its own: said, not failed.
        let onebotRun = try await ReplayPeerTests.replay(["drive", ReplayPeerTests.capture("onebot-ws.pcap"), "--asap", "--url", onebot])
        #expect(onebotRun.output.contains("1 the server sent on its own in the recording did not come"))
    }

    @Test func aChangedAnswerIsShownAndFails() async throws {
        // The recording's get_login_info answer says "wmq-MOCK"; the mock says "wmq-mock".
        var bytes = try Data(contentsOf: URL(fileURLWithPath: ReplayPeerTests.capture("onebot-ws.pcap")))
        let old = Data(#""nickname":"wmq-mock""#.utf8), new = Data(#""nickname":"wmq-MOCK""#.utf8)
        let range = try #require(bytes.range(of: old))
        bytes.replaceSubrange(range, with: new)
        let changed = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-onebot-changed-\(UUID().uuidString).pcap")
        try bytes.write(to: changed)
        let junit = changed.deletingPathExtension().appendingPathExtension("xml")
        defer {
            try? FileManager.default.removeItem(at: changed)
            try? FileManager.default.removeItem(at: junit)
        }
        let (mock, onebot, _, _) = try await Self.startMock()
        defer { mock.stop() }
        let run = try await ReplayPeerTests.replay(["drive", changed.path, "--asap", "--url", onebot, "--junit", junit.path])
        #expect(run.status == 1, "\(run.output)\(run.error)")
        #expect(run.output.contains("MISMATCH"))
        #expect(run.output.contains(#"→ $.data.nickname is "wmq-mock", the recording's "wmq-MOCK""#), "\(run.output)")
        #expect(run.output.contains("recorded: response ok (retcode 0, ok) to get_login_info · wmq-MOCK (echo call-2)"), "\(run.output)")
        let xml = try String(contentsOf: junit, encoding: .utf8)
        #expect(xml.contains("failures=\"1\"") && xml.contains("<failure message=\"$.data.nickname is"))

        let json = try await ReplayPeerTests.replay(["drive", changed.path, "--asap", "--url", onebot, "--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        let sockets = try #require(object["chatSockets"] as? [[String: Any]])
        #expect(object["matched"] as? Bool == false && sockets.first?["dialect"] as? String == "onebot")
        #expect((sockets.first?["differences"] as? [[String: Any]])?.count == 1)
    }

    @Test func aRefusedTokenIsReported() async throws {
        let (mock, onebot, _, _) = try await Self.startMock(["--onebot-token", "another"])
        defer { mock.stop() }
        let run = try await ReplayPeerTests.replay(["drive", ReplayPeerTests.capture("onebot-ws.pcap"), "--asap", "--url", onebot])
        #expect(run.status == 1)
        #expect(run.output.contains("! cannot connect"), "\(run.output)")
    }

    // MARK: serve

    /// `wmq-replay serve CAPTURE` on a free port, the peer script that recorded it run against it; both finished.
    static func serve(_ capture: String, peer: [String], extra: [String] = []) async throws -> (replay: Background, peer: Background) {
        let replay = try Background(DecodeTests.binary("wmq-replay"), ["serve", ReplayPeerTests.capture(capture), "--listen", "127.0.0.1:0"] + extra)
        let line = try await replay.awaiting("on ws://127\\.0\\.0\\.1:[0-9]+")
        let port = String(line.split(separator: ":").last ?? "")
        let client = try Background(ReplayPeerTests.python, [ReplayPeerTests.root.appendingPathComponent(peer[0]).path, "--port", port] + peer.dropFirst())
        _ = try await client.finished(seconds: 30)
        _ = try await replay.finished(seconds: 30)
        return (replay, client)
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required), arguments: [
        ("onebot-ws.pcap", ["Tools/peers/onebot_client.py", "--token", "s3cret"]),
        ("cocoro-ws.pcap", ["Tools/peers/cocoro_client.py"]),
        ("discord-zlib.pcap", ["Tools/peers/discord_client.py", "--zlib", "--token", "bot-t0ken", "--until", "That is all"]),
    ])
    func servedRecordingsMatchTheClientsThatMadeThem(capture: String, peer: [String]) async throws {
        let (replay, client) = try await Self.serve(capture, peer: peer)
        #expect(replay.process.terminationStatus == 0, "\(replay.output)\n\(client.output)")
        #expect(replay.output.contains("serve a chat socket, original timing: MATCH"), "\(replay.output)")
        #expect(replay.output.contains("client → server"))
    }

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func aClientWithAnotherTokenIsShownWithPseudonyms() async throws {
        let (replay, _) = try await Self.serve("discord-zlib.pcap", peer: ["Tools/peers/discord_client.py", "--zlib", "--token", "other-token",
                                                                           "--until", "That is all"], extra: ["--asap"])
        #expect(replay.process.terminationStatus == 1, "\(replay.output)")
        #expect(replay.output.contains("→ $.d.token is ‹token:"), "\(replay.output)")
        #expect(!replay.output.contains("other-token") && !replay.output.contains("bot-t0ken"))
    }

    // MARK: check

    static let lifecycle = #"{"time":1700000000,"self_id":777,"post_type":"meta_event","meta_event_type":"lifecycle","sub_type":"connect"}"#
    static let call = #"{"action":"get_status","params":{},"echo":"s1"}"#
    static let answer = #"{"status":"ok","retcode":0,"data":{"online":true,"good":true},"echo":"s1"}"#
    static let group = #"{"time":1700000001,"self_id":777,"post_type":"message","message_type":"group","user_id":777,"message_id":5,"group_id":9,"raw_message":"hi","message":[{"type":"text","data":{"text":"hi"}}],"message_format":"array"}"#

    @Test func theBuiltInOneBotClientIsCheckedAgainstTheServedRecording() async throws {
        // The client announced itself, answered the server's get_status, then posted a group message.
        let good = try HARExportTests.webSocketHAR(url: "ws://127.0.0.1:8000/ws/", messages: [
            ("send", Self.lifecycle), ("receive", Self.call), ("send", Self.answer), ("send", Self.group),
        ])
        // A client that never sent the lifecycle event: ours always does.
        let silent = try HARExportTests.webSocketHAR(url: "ws://127.0.0.1:8000/ws/", messages: [
            ("receive", Self.call), ("send", Self.answer), ("send", Self.group),
        ])
        defer {
            try? FileManager.default.removeItem(atPath: good)
            try? FileManager.default.removeItem(atPath: silent)
        }
        let matched = try await ReplayPeerTests.replay(["check", good, ReplayPeerTests.capture("onebot-ws.pcap"), ReplayPeerTests.capture("cocoro-ws.pcap")])
        #expect(matched.status == 0, "\(matched.output)\(matched.error)")
        #expect(matched.output.contains("check a chat socket, as fast as possible: MATCH"), "\(matched.output)")
        #expect(matched.output.contains("c1 onebot /ws/ client → server: 3 messages as recorded"), "\(matched.output)")
        #expect(matched.output.contains("c1 cocoro /ws/chat/wmq-capture: skipped, no built-in cocoro client"))

        let differs = try await ReplayPeerTests.replay(["check", silent])
        #expect(differs.status == 1, "\(differs.output)")
        #expect(differs.output.contains("+    1 lifecycle connect (bot 777)") && differs.output.contains("→ not in the recording"), "\(differs.output)")
    }
}
