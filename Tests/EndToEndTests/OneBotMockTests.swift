import Foundation
import TestSupport
import Testing

/// `wmq-mock --onebot`: the seed's OneBot v11 server rules, met by a websocket-client peer.
@Suite("wmq-mock --onebot", .serialized, .timeLimit(.minutes(1)))
struct OneBotMockTests {
    static let peer = """
        import json, sys, time, websocket
        url, token = sys.argv[1], sys.argv[2]
        out = {}
        ws = websocket.create_connection(url, header=["Authorization: Bearer " + token], timeout=5)
        ws.send(json.dumps({"time": int(time.time()), "self_id": 10001, "post_type": "meta_event", "meta_event_type": "lifecycle", "sub_type": "connect"}))
        ws.send(json.dumps({"action": "send_group_msg", "params": {"group_id": 123456, "message": "Hello"}, "echo": "1"}))
        out["send"] = json.loads(ws.recv())
        ws.send(json.dumps({"action": "get_login_info", "params": {}, "echo": 2}))
        out["login"] = json.loads(ws.recv())
        ws.send(json.dumps({"action": "no_such_thing", "params": {}, "echo": "3"}))
        out["unknown"] = json.loads(ws.recv())
        print("ready", flush=True)
        out["event"] = json.loads(ws.recv())
        time.sleep(1.3)
        ws.send(json.dumps({"action": "get_status", "params": {}, "echo": "4"}))
        out["status"] = json.loads(ws.recv())
        ws.close()
        silent = websocket.create_connection(url + "?access_token=" + token, timeout=5)
        started = time.time()
        try:
            while True:
                frame = silent.recv_frame()
                if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                    out["closed"] = {"code": int.from_bytes(frame.data[:2], "big"), "after": time.time() - started}
                    break
        except Exception as error:
            out["closed"] = {"error": str(error), "after": time.time() - started}
        try:
            websocket.create_connection(url, header=["Authorization: Bearer wrong"], timeout=5)
            out["wrong"] = "accepted"
        except websocket.WebSocketBadStatusException as error:
            out["wrong"] = error.status_code
        print(json.dumps(out), flush=True)
        """

    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func theSeedsServerRulesHold() async throws {
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--ws", "127.0.0.1:0", "--onebot", "127.0.0.1:0", "--onebot-token", "s3cret"])
        defer { mock.stop() }
        let url = try await mock.awaiting("ws://127\\.0\\.0\\.1:[0-9]+/ws/")
        let client = try Background(ReplayPeerTests.python, ["-c", Self.peer, url, "s3cret"])
        defer { client.stop() }
        _ = try await client.awaiting("ready")
        mock.send(#"{"group": 123456, "user": 12345, "text": "from the mock", "nickname": "Bob"}"#)
        let status = try await client.finished(seconds: 20)
        #expect(status == 0, "\(client.output)")
        let line = try #require(client.output.split(separator: "\n").last.map(String.init))
        let result = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(client.output)")
        let send = result["send"] as? [String: Any]
        #expect(send?["status"] as? String == "ok" && send?["retcode"] as? Int == 0 && send?["echo"] as? String == "1")
        #expect(((send?["data"] as? [String: Any])?["message_id"] as? Int).map { $0 > 0 } == true)
        let login = result["login"] as? [String: Any]
        #expect((login?["data"] as? [String: Any])?["user_id"] as? Int == 10001 && login?["echo"] as? Int == 2, "the echo comes back as sent")
        #expect((result["unknown"] as? [String: Any])?["retcode"] as? Int == 1404)
        let event = result["event"] as? [String: Any]
        #expect(event?["post_type"] as? String == "message" && event?["group_id"] as? Int == 123456 && event?["self_id"] as? Int == 10001)
        #expect((event?["sender"] as? [String: Any])?["nickname"] as? String == "Bob")
        // Announced in time, the connection outlives the timeout.
        #expect((result["status"] as? [String: Any])?["retcode"] as? Int == 0)
        // Silent: closed (1008) after about 1 s; a wrong token: 401.
        let closed = result["closed"] as? [String: Any]
        #expect(closed?["code"] as? Int == 1008, "\(String(describing: closed))")
        #expect(((closed?["after"] as? Double) ?? 0) >= 0.9 && ((closed?["after"] as? Double) ?? 9) < 3)
        #expect(result["wrong"] as? Int == 401)
    }
}
