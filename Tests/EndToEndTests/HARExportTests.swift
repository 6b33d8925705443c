import Foundation
import TestSupport
import Testing

/// `wmq-decode --format har`: captures written as HAR files with `_webSocketMessages`.
@Suite("wmq-decode --format har")
struct HARExportTests {
    static func messages(_ har: Data) throws -> [[String: Any]] {
        let object = try JSONSerialization.jsonObject(with: har) as? [String: Any]
        let entries = (object?["log"] as? [String: Any])?["entries"] as? [[String: Any]] ?? []
        return entries.first?["_webSocketMessages"] as? [[String: Any]] ?? []
    }

    static func types(_ run: DecodeTests.Run) throws -> [String] {
        try DecodeTests.jsonObjects(run).compactMap { $0["event"] as? String == "mqtt" ? "\($0["direction"] ?? "") \($0["type"] ?? "")" : nil }
    }

    @Test func unredactedItIsTheSessionsMessagesByteForByte() async throws {
        let run = try await onOwnThread { try DecodeTests.run([DecodeTests.sample, "--format", "har", "--no-redact"]) }
        #expect(run.status == 0, "\(run.error)")
        let exported = try Self.messages(Data(run.output.utf8))
        // The committed HAR of the same session (made by Tools/make-sample-session.py) has the same messages.
        let committed = try Self.messages(Data(contentsOf: DecodeTests.root.appendingPathComponent("captures/works-sample.har")))
        #expect(exported.count == 11)
        #expect(exported.map { "\($0["type"] ?? "") \($0["opcode"] ?? "") \($0["data"] ?? "")" }
            == committed.map { "\($0["type"] ?? "") \($0["opcode"] ?? "") \($0["data"] ?? "")" })
        let entry = try #require(((try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])?["log"] as? [String: Any])?["entries"] as? [[String: Any]]).first
        #expect((entry?["request"] as? [String: Any])?["url"] as? String == "ws://jp1-web-noti.worksmobile.com/wmqtt")
        #expect((entry?["response"] as? [String: Any])?["status"] as? Int == 101)
        #expect(entry?["_resourceType"] as? String == "websocket")
        #expect(entry?["startedDateTime"] as? String == "2025-11-22T02:00:00.037Z")
    }

    @Test func redactedItHoldsNoSecretAndDecodesToTheSamePackets() async throws {
        let run = try await onOwnThread { try DecodeTests.run([DecodeTests.sample, "--format", "har"]) }
        #expect(run.status == 0)
        let file = try DecodeTests.temporary(Data(run.output.utf8))
        defer { try? FileManager.default.removeItem(atPath: file) }
        // Read back with nothing hidden: the secrets are not in the file at all.
        let back = try await onOwnThread { try DecodeTests.run([file, "--format", "jsonl", "--no-redact"]) }
        #expect(back.status == 0, "\(back.error)")
        for secret in ["fake-token-0001", "fake-token-0002", "fake-session-not-real", "fake-user", "fake-neo"] {
            #expect(!back.output.contains(secret), "\(secret) is in the exported HAR")
        }
        #expect(back.output.contains(#""token":"‹token:"#))
        let original = try await onOwnThread { try DecodeTests.run([DecodeTests.sample, "--format", "jsonl"]) }
        #expect(try Self.types(back) == Self.types(original))
        #expect(try Self.types(back).filter { $0.hasSuffix("PUBLISH") }.count == 4)
    }

    @Test func tcpConnectionsAreLeftOutAndSaid() async throws {
        let run = try await onOwnThread { try DecodeTests.run([DecodeTests.root.appendingPathComponent("captures/works-ws.pcap").path, "--format", "har"]) }
        #expect(run.status == 0)
        #expect(run.error.contains("1 MQTT-over-TCP connection(s) left out"), "\(run.error)")
        let entries = ((try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])?["log"] as? [String: Any])?["entries"] as? [Any]
        #expect(entries?.count == 1)
    }

    /// A HAR file of one WebSocket connection with text messages, as DevTools saves it.
    static func webSocketHAR(url: String, messages: [(String, String)]) throws -> String {
        let entries: [String: Any] = ["log": ["version": "1.2", "entries": [[
            "startedDateTime": "2023-11-14T22:13:20.000Z",
            "request": ["method": "GET", "url": url, "headers": [
                ["name": "Upgrade", "value": "websocket"], ["name": "Connection", "value": "Upgrade"], ["name": "Sec-WebSocket-Version", "value": "13"],
                ["name": "Sec-WebSocket-Key", "value": "dGhlIHNhbXBsZSBub25jZQ=="]]],
            "response": ["status": 101, "headers": [["name": "Upgrade", "value": "websocket"], ["name": "Connection", "value": "Upgrade"],
                                                    ["name": "Sec-WebSocket-Accept", "value": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]]],
            "_webSocketMessages": messages.enumerated().map { ["type": $1.0, "time": 1_700_000_000.0 + Double($0), "opcode": 1, "data": $1.1] },
        ]]]]
        return try DecodeTests.temporary(try JSONSerialization.data(withJSONObject: entries))
    }

    @Test func aDiscordGatewaySessionIsAnnotatedWithItsTokenRedacted() async throws {
        let file = try Self.webSocketHAR(url: "wss://gateway.discord.gg/?v=10&encoding=json", messages: [
            ("receive", #"{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}"#),
            ("send", #"{"op":2,"d":{"token":"MTIz.fake-bot-token","intents":513,"properties":{"os":"linux"}}}"#),
            ("receive", #"{"op":0,"d":{"channel_id":"99","content":"hi bot","author":{"username":"alice"}},"s":1,"t":"MESSAGE_CREATE"}"#),
        ])
        defer { try? FileManager.default.removeItem(atPath: file) }
        let text = try await onOwnThread { try DecodeTests.run([file, "--format", "text"]) }
        #expect(text.output.contains("▸ MESSAGE_CREATE #1 · channel 99 · alice: hi bot"), "\(text.output)")
        #expect(text.output.contains("▸ IDENTIFY (token ‹token:"), "\(text.output)")
        let json = try await onOwnThread { try DecodeTests.run([file, "--format", "jsonl"]) }
        #expect(!json.output.contains("fake-bot-token") && !text.output.contains("fake-bot-token"), "the token is in the output")
        #expect(json.output.contains(#"\"token\":\"‹token:"#), "the message's text is shown redacted")
    }

    @Test func discordsZlibStreamIsInflatedAcrossMessages() async throws {
        // Three gateway payloads compressed as Discord does: one zlib context, a sync flush after
        // each; the second piece split over two WebSocket messages.
        let python = try await onOwnThread { try DecodeTests.run(["-c", """
            import base64, zlib
            c = zlib.compressobj()
            pieces = [c.compress(p.encode()) + c.flush(zlib.Z_SYNC_FLUSH) for p in [
                '{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}',
                '{"op":0,"d":{"channel_id":"7","content":"compressed hello","author":{"username":"bob"}},"s":2,"t":"MESSAGE_CREATE"}',
                '{"op":11,"d":null}']]
            parts = [pieces[0], pieces[1][:5], pieces[1][5:], pieces[2]]
            print("\\n".join(base64.b64encode(p).decode() for p in parts))
            """], tool: "/usr/bin/python3") }
        let parts = python.lines
        #expect(parts.count == 4, "\(python.output)\(python.error)")
        let entries: [String: Any] = ["log": ["version": "1.2", "entries": [[
            "startedDateTime": "2023-11-14T22:13:20.000Z",
            "request": ["method": "GET", "url": "wss://gateway.discord.gg/?v=10&encoding=json&compress=zlib-stream", "headers": [
                ["name": "Upgrade", "value": "websocket"], ["name": "Connection", "value": "Upgrade"], ["name": "Sec-WebSocket-Version", "value": "13"],
                ["name": "Sec-WebSocket-Key", "value": "dGhlIHNhbXBsZSBub25jZQ=="]]],
            "response": ["status": 101, "headers": [["name": "Upgrade", "value": "websocket"], ["name": "Connection", "value": "Upgrade"],
                                                    ["name": "Sec-WebSocket-Accept", "value": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]]],
            "_webSocketMessages": parts.enumerated().map { ["type": "receive", "time": 1_700_000_000.0 + Double($0), "opcode": 2, "data": $1] },
        ]]]]
        let file = try DecodeTests.temporary(try JSONSerialization.data(withJSONObject: entries))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let run = try await onOwnThread { try DecodeTests.run([file, "--format", "text"]) }
        #expect(run.status == 0, "\(run.output)\(run.error)")
        for line in ["▸ HELLO (heartbeat every 41250 ms)", "▸ MESSAGE_CREATE #2 · channel 7 · bob: compressed hello", "▸ HEARTBEAT_ACK"] {
            #expect(run.output.contains(line), "\(line) in \(run.output)")
        }
        #expect(run.output.components(separatedBy: "discord ").count - 1 == 3, "three payloads from four messages: \(run.output)")
    }

    @Test func oneBotMessagesInAHARAreAnnotated() async throws {
        // A OneBot v11 session as DevTools saves it: text messages, an event, a call and its response.
        let messages = [
            ("receive", #"{"time":1700000000,"self_id":10001,"post_type":"meta_event","meta_event_type":"lifecycle","sub_type":"connect"}"#),
            ("receive", #"{"time":1700000001,"self_id":10001,"post_type":"message","message_type":"group","group_id":123456,"user_id":12345,"message":[{"type":"text","data":{"text":"Hello"}}],"sender":{"nickname":"Alice"}}"#),
            ("send", #"{"action":"send_group_msg","params":{"group_id":123456,"message":"Hi [CQ:at,qq=12345]"},"echo":"1"}"#),
            ("receive", #"{"status":"ok","retcode":0,"data":{"message_id":7},"echo":"1"}"#),
        ]
        let file = try Self.webSocketHAR(url: "ws://127.0.0.1:8000/ws/", messages: messages)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let run = try await onOwnThread { try DecodeTests.run([file, "--format", "text"]) }
        #expect(run.status == 0, "\(run.output)\(run.error)")
        for line in ["▸ lifecycle connect (bot 10001)", "▸ group 123456 · user 12345 (Alice): Hello",
                     "▸ call send_group_msg · group 123456: Hi @12345 (echo 1)", "▸ response ok (retcode 0, ok) to send_group_msg · message 7 (echo 1)"] {
            #expect(run.output.contains(line), "\(line) in \(run.output)")
        }
        let json = try await onOwnThread { try DecodeTests.run([file, "--format", "jsonl"]) }
        let annotated = try DecodeTests.jsonObjects(json).compactMap { $0["onebot"] as? [String: Any] }
        #expect(annotated.map { $0["kind"] as? String } == ["lifecycle", "group-message", "api-call", "api-response"])
    }

    @Test func harDoesNotGoWithStats() async throws {
        let run = try await onOwnThread { try DecodeTests.run([DecodeTests.sample, "--format", "har", "--stats"]) }
        #expect(run.status == 2)
        #expect(run.error.contains("does not go with --stats"))
    }
}
