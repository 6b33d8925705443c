import Foundation
import TestSupport
import Testing

/// `wmq-capture proxy` between paho-mqtt (and the project's raw WebSocket client) and mosquitto's
/// TLS websockets listener: what the clients sent is what the decrypted recording holds.
@Suite("wmq-capture proxy", .serialized, .timeLimit(.minutes(2)))
struct ProxyTests {
    static var peersPresent: Bool {
        ReplayPeerTests.mosquitto != nil && ReplayPeerTests.pahoPresent && FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")
    }

    /// A CA and a certificate for 127.0.0.1 made by openssl, and mosquitto with a TCP listener
    /// and a TLS websockets listener using them.
    static func tlsMosquitto(in folder: URL, tls13Ciphers: String? = nil) async throws -> (Background, tcp: Int, wss: Int) {
        let d = folder.path
        try Data("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n".utf8).write(to: folder.appendingPathComponent("server.ext"))
        for step in [["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=wmq proxy test CA", "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem"],
                     ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "\(d)/server.key", "-out", "\(d)/server.csr"],
                     ["x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key", "-CAcreateserial", "-days", "1",
                      "-extfile", "\(d)/server.ext", "-out", "\(d)/server.pem"]] {
            let run = try await onOwnThread { try DecodeTests.run(step, tool: "/usr/bin/openssl") }
            guard run.status == 0 else { throw PeerFailure(description: "openssl \(step[0]): \(run.error)") }
        }
        let (tcp, wss) = (try LoopbackPorts.free(), try LoopbackPorts.free())
        try """
            allow_anonymous true
            user root
            max_inflight_messages 0
            listener \(tcp) 127.0.0.1
            socket_domain ipv4
            listener \(wss) 127.0.0.1
            socket_domain ipv4
            protocol websockets
            cafile \(d)/ca.pem
            certfile \(d)/server.pem
            keyfile \(d)/server.key
            \(tls13Ciphers.map { "ciphers_tls1.3 \($0)" } ?? "")
            """.write(to: folder.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
        guard let mosquitto = ReplayPeerTests.mosquitto else { throw PeerFailure(description: "mosquitto is not installed") }
        let broker = try Background(mosquitto, ["-c", folder.appendingPathComponent("mosquitto.conf").path, "-v"])
        _ = try await broker.awaiting("Opening websockets listen socket on port \(wss)")
        try await LoopbackPorts.waitUntilAccepting(wss)
        return (broker, tcp, wss)
    }

    /// Each connection's MQTT packets per direction, in order, as `type topic [length]`, pings
    /// left out (the interleaving of connections and directions varies between runs; payload
    /// lengths are left out where redaction changes them).
    static func packets(_ capture: String, connection: String? = nil, lengths: Bool) async throws -> [String: [String]] {
        let run = try await onOwnThread { try DecodeTests.run([capture, "--format", "jsonl"] + (connection.map { ["--connection", $0] } ?? [])) }
        var flows: [String: [String]] = [:]
        for object in try DecodeTests.jsonObjects(run) {
            guard object["event"] as? String == "mqtt", let type = object["type"] as? String, !type.hasPrefix("PING") else { continue }
            flows["\(object["connection"] ?? "") \(object["direction"] ?? "")", default: []]
                .append("\(type) \(object["topic"] ?? "")" + (lengths ? " \(object["payloadLength"] ?? "")" : ""))
        }
        return flows
    }

    @Test(.enabled(if: peersPresent || ReplayPeerTests.required), arguments: ["mqtt5-ws", "works-ws"])
    func theDecryptedRecordingHoldsWhatTheClientsSent(scenario: String) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-proxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (broker, tcp, wss) = try await Self.tlsMosquitto(in: folder)
        defer { broker.stop() }
        let recording = folder.appendingPathComponent("proxied.pcap").path
        let proxy = try Background(DecodeTests.binary("wmq-capture"), [
            "proxy", "--listen", "127.0.0.1:0", "--upstream", "wss://127.0.0.1:\(wss)", "--ca-file", folder.appendingPathComponent("ca.pem").path,
            "-w", recording, "--decode"])
        defer { proxy.stop() }
        let port = try await proxy.awaiting("listening ws://127\\.0\\.0\\.1:[0-9]+").split(separator: " ")[1].split(separator: ":").last.map(String.init) ?? ""
        // The scenario that recorded the committed capture, through the proxy (its plain TCP publisher, if any, goes straight to mosquitto).
        let client = try Background(ReplayPeerTests.python, [ReplayPeerTests.root.appendingPathComponent("Tools/peers/scenarios.py").path, scenario, port, "\(tcp)"])
        defer { client.stop() }
        let clientStatus = try await client.finished(seconds: 30)
        #expect(clientStatus == 0, "\(client.output)")
        try await Task.sleep(for: .milliseconds(300))
        kill(proxy.process.processIdentifier, SIGINT)
        let proxyStatus = try await proxy.finished(seconds: 10)
        #expect(proxyStatus == 0, "\(proxy.output)")
        #expect(proxy.output.contains("proxied, recorded in \(recording)"), "\(proxy.output)")
        #expect(proxy.output.contains("CONNECT MQTT"), "the live view: \(proxy.output)")
        // What crossed the proxy is what the committed capture of the same scenario holds (its WebSocket connections).
        let committed = ReplayPeerTests.capture("\(scenario).pcap")
        // (Works payloads carry a token, which the recording holds as a pseudonym of another length.)
        let lengths = scenario != "works-ws"
        let expected = try await Self.packets(committed, connection: scenario == "works-ws" ? "c1" : nil, lengths: lengths)
        #expect(!expected.isEmpty)
        let actual = try await Self.packets(recording, lengths: lengths)
        #expect(actual == expected, "\(actual) vs \(expected)")
        // Secrets were recorded as pseudonyms: decoded with nothing hidden, they are not there.
        let shown = try await onOwnThread { try DecodeTests.run([recording, "--format", "jsonl", "--no-redact"]) }
        for secret in ["fake-session-not-real", "fake-token-0001", "fake-user"] {
            #expect(!shown.output.contains(secret), "\(secret) is in the recording")
        }
        if scenario == "works-ws" {
            #expect(shown.output.contains("WORKS_SES=‹cookie:"), "the Cookie header went through, redacted: \(shown.output.prefix(2000))")
        }
    }

    /// An HTTP CONNECT proxy in Python that logs each tunnel it opens (`CONNECT host:port`).
    static let connectProxy = """
        import socket, sys, threading
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(8)
        print("proxy", server.getsockname()[1], flush=True)
        def pump(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data: break
                    b.sendall(data)
            except OSError: pass
            finally:
                for s in (a, b):
                    try: s.shutdown(socket.SHUT_RDWR)
                    except OSError: pass
        def serve(client):
            head = b""
            while b"\\r\\n\\r\\n" not in head:
                chunk = client.recv(4096)
                if not chunk: return
                head += chunk
            target = head.split(b" ")[1].decode()
            print("CONNECT", target, flush=True)
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\\r\\n\\r\\n")
            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
            pump(upstream, client)
        while True:
            connection, _ = server.accept()
            threading.Thread(target=serve, args=(connection,), daemon=True).start()
        """

    @Test(.enabled(if: peersPresent || ReplayPeerTests.required))
    func theUpstreamIsReachedThroughAnHTTPProxy() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-proxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (broker, tcp, wss) = try await Self.tlsMosquitto(in: folder)
        defer { broker.stop() }
        let tunnel = try Background("/usr/bin/python3", ["-c", Self.connectProxy])
        defer { tunnel.stop() }
        let tunnelPort = try await tunnel.awaiting("proxy [0-9]+").split(separator: " ")[1]
        let recording = folder.appendingPathComponent("proxied.pcap").path
        let proxy = try Background(DecodeTests.binary("wmq-capture"), [
            "proxy", "--listen", "127.0.0.1:0", "--upstream", "wss://127.0.0.1:\(wss)/mqtt", "--ca-file", folder.appendingPathComponent("ca.pem").path,
            "--http-proxy", "http://127.0.0.1:\(tunnelPort)", "-w", recording])
        defer { proxy.stop() }
        let port = try await proxy.awaiting("listening ws://127\\.0\\.0\\.1:[0-9]+").split(separator: " ")[1].split(separator: ":").last.map(String.init) ?? ""
        let client = try Background(ReplayPeerTests.python, [ReplayPeerTests.root.appendingPathComponent("Tools/peers/scenarios.py").path, "mqtt5-ws", port, "\(tcp)"])
        defer { client.stop() }
        let clientStatus = try await client.finished(seconds: 30)
        #expect(clientStatus == 0, "\(client.output)")
        #expect(tunnel.output.components(separatedBy: "CONNECT 127.0.0.1:\(wss)").count - 1 == 2, "both connections tunnelled: \(tunnel.output)")
        kill(proxy.process.processIdentifier, SIGINT)
        _ = try await proxy.finished(seconds: 10)
        let expected = try await Self.packets(ReplayPeerTests.capture("mqtt5-ws.pcap"), lengths: true)
        let actual = try await Self.packets(recording, lengths: true)
        #expect(actual == expected, "\(actual) vs \(expected)")
    }

    @Test func anUnreachableUpstreamIsA502WithTheReason() async throws {
        let dead = try LoopbackPorts.free()
        let proxy = try Background(DecodeTests.binary("wmq-capture"), ["proxy", "--listen", "127.0.0.1:0", "--upstream", "ws://127.0.0.1:\(dead)/mqtt", "--decode"])
        defer { proxy.stop() }
        let port = try await proxy.awaiting("listening ws://127\\.0\\.0\\.1:[0-9]+").split(separator: " ")[1].split(separator: ":").last.map(String.init) ?? ""
        let answer = try await onOwnThread {
            try DecodeTests.run(["-s", "-i", "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
                                 "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "-H", "Sec-WebSocket-Protocol: mqtt",
                                 "http://127.0.0.1:\(port)/mqtt"], tool: "/usr/bin/curl")
        }
        #expect(answer.output.hasPrefix("HTTP/1.1 502"), "\(answer.output)")
        #expect(answer.output.contains("nothing listens on 127.0.0.1:\(dead) (connection refused)"), "\(answer.output)")
    }

    /// The JSON chat protocols go through the proxy too: no subprotocol offered, none asked
    /// upstream; the recording decodes into the dialect's messages, its token redacted.
    @Test(.enabled(if: ReplayPeerTests.pahoPresent || ReplayPeerTests.required))
    func oneBotAndDiscordSessionsAreProxiedAndRecorded() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-proxy-json-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--ws", "127.0.0.1:0", "--onebot", "127.0.0.1:0", "--onebot-token", "s3cret",
                                                                  "--discord", "127.0.0.1:0", "--discord-token", "bot-t0ken", "--discord-heartbeat", "500"])
        defer { mock.stop() }
        func port(_ line: String) -> String { String(line.split(separator: ":").last?.prefix { $0.isNumber } ?? "") }
        let onebot = port(try await mock.awaiting("ws://127\\.0\\.0\\.1:[0-9]+/ws/ \\(OneBot"))
        let discord = port(try await mock.awaiting("ws://127\\.0\\.0\\.1:[0-9]+/\\?v=10"))
        for (dialect, upstream, peer) in [
            ("onebot", onebot, ["Tools/peers/onebot_client.py", "--token", "s3cret", "--wait-event", "1"]),
            ("discord", discord, ["Tools/peers/discord_client.py", "--zlib", "--token", "bot-t0ken", "--seconds", "1.5"]),
        ] {
            let recording = folder.appendingPathComponent("\(dialect).pcap").path
            let proxy = try Background(DecodeTests.binary("wmq-capture"), ["proxy", "--listen", "127.0.0.1:0", "--upstream", "ws://127.0.0.1:\(upstream)",
                                                                          "-w", recording])
            let listening = try await proxy.awaiting("listening ws://127\\.0\\.0\\.1:[0-9]+")
            let client = try Background(ReplayPeerTests.python, [ReplayPeerTests.root.appendingPathComponent(peer[0]).path, "--port", port(listening)]
                                        + peer.dropFirst())
            let status = try await client.finished(seconds: 30)
            #expect(status == 0 || dialect == "discord", "\(client.output)")
            #expect(client.output.contains(dialect == "onebot" ? "\"echo\": \"call-3\"" : "\"t\": \"READY\""), "\(client.output)")
            try await Task.sleep(for: .milliseconds(300))
            kill(proxy.process.processIdentifier, SIGINT)
            _ = try await proxy.finished(seconds: 10)
            let decoded = try await onOwnThread { try DecodeTests.run([recording, "--format", "text", "--no-redact"]) }
            if dialect == "onebot" {
                #expect(decoded.output.contains("response failed (retcode 1404, no such action) to set_group_kick (echo call-3)"), "\(decoded.output)")
                #expect(!decoded.output.contains("s3cret"), "the Bearer token was recorded as a pseudonym")
            } else {
                #expect(decoded.output.contains("READY #1") && decoded.output.contains("HEARTBEAT_ACK (latency"), "\(decoded.output)")
                #expect(!decoded.output.contains("bot-t0ken"), "the IDENTIFY token was recorded as a pseudonym")
            }
        }
    }
}
