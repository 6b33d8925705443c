import Foundation
import LiveWebSocket
import Logging
import MockServer
import MQTTWire
import NIOCore
import TestSupport
import Testing
import WorksClient

/// What a page of another origin, or a request under a rebound host name, can do to the mock:
/// nothing. Raw requests show each refusal; a real browser (headless Chromium) shows that a page
/// served from another loopback origin can neither read the API, nor turn on a fault, nor
/// subscribe, while a page whose origin is allowed can.
@Suite("wmq-mock refuses pages of other origins", .serialized, .timeLimit(.minutes(3)))
struct BrowserAccessMockTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// One request on a new connection with the given headers; the status line's code, the
    /// headers (lower-cased names) and the body.
    static func exchange(_ port: Int, _ request: String) -> (status: Int, headers: [String: String], body: String) {
        guard let socket = try? RawSocket(port: port) else { return (0, [:], "") }
        socket.send(request)
        let response = socket.receive(timeout: 5)
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? 0
        let parts = response.components(separatedBy: "\r\n\r\n")
        var headers: [String: String] = [:]
        for line in (parts.first ?? "").components(separatedBy: "\r\n").dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1)
            if pair.count == 2 { headers[pair[0].lowercased()] = pair[1].trimmingCharacters(in: .whitespaces) }
        }
        return (status, headers, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    static func request(_ method: String, _ path: String, host: String, origin: String? = nil, body: String = "",
                        contentType: String = "text/plain") -> String {
        "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n" + (origin.map { "Origin: \($0)\r\n" } ?? "")
            + "Content-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
    }

    static func upgrade(host: String, origin: String?) -> String {
        "GET /mqtt HTTP/1.1\r\nHost: \(host)\r\n" + (origin.map { "Origin: \($0)\r\n" } ?? "")
            + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
    }

    func faults(_ port: Int) async -> String {
        await blocking { Self.exchange(port, Self.request("GET", "/api/faults", host: "127.0.0.1:\(port)")).body }
    }

    /// Each thing the finding did from a foreign page, done with raw requests: refused with
    /// 403, nothing changed, no CORS header; the same from the mock's own page works.
    @Test func aForeignOriginCanNeitherReadNorWriteNorSubscribe() async throws {
        let broker = MockBroker(configuration: .init(), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let host = "127.0.0.1:\(port)"
        let evil = "http://127.0.0.1:5999"
        let before = await faults(port)
        for (method, path, body) in [("GET", "/api/clients", ""), ("POST", "/api/faults", #"{"refuseConnections": true}"#),
                                     ("POST", "/api/publish", #"{"topic": "t", "payload": "x", "retain": true}"#),
                                     ("DELETE", "/api/clients/victim", ""), ("OPTIONS", "/api/faults", ""), ("GET", "/api/events", ""),
                                     ("GET", "/", "")] {
            let answer = await blocking { Self.exchange(port, Self.request(method, path, host: host, origin: evil, body: body)) }
            #expect(answer.status == 403, "\(method) \(path): \(answer)")
            #expect(answer.headers["access-control-allow-origin"] == nil, "\(method) \(path)")
            #expect(answer.body.contains("--allow-origin \(evil)"), "\(answer.body)")
        }
        #expect(await faults(port) == before, "a refused POST changed the faults")
        let retained = await blocking { Self.exchange(port, Self.request("GET", "/api/retained", host: host)) }
        #expect(retained.status == 200 && !retained.body.contains("\"t\""), "a refused publish was retained: \(retained.body)")
        // The WebSocket handshake of a foreign page: 403, not 101.
        let socket = try RawSocket(port: port)
        socket.send(Self.upgrade(host: host, origin: evil))
        #expect(await blocking { socket.receive() }.hasPrefix("HTTP/1.1 403"))
        // The mock's own page (same host and port) and a program (no Origin) are served.
        let own = await blocking { Self.exchange(port, Self.request("GET", "/api/clients", host: host, origin: "http://\(host)")) }
        #expect(own.status == 200 && own.headers["access-control-allow-origin"] == nil, "\(own)")
        let program = try RawSocket(port: port)
        program.send(Self.upgrade(host: host, origin: nil))
        #expect(await blocking { program.receive() }.hasPrefix("HTTP/1.1 101"))
    }

    /// DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 is same-origin
    /// with itself, and its requests say `Host: evil.example:PORT`. Refused; --allow-host lets a
    /// chosen name in.
    @Test func aReboundHostNameIsRefused() async throws {
        let broker = MockBroker(configuration: .init(), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let rebound = "evil.example:\(port)"
        let answer = await blocking { Self.exchange(port, Self.request("GET", "/api/clients", host: rebound, origin: "http://\(rebound)")) }
        #expect(answer.status == 403 && answer.body.contains("--allow-host"), "\(answer)")
        let socket = try RawSocket(port: port)
        socket.send(Self.upgrade(host: rebound, origin: "http://\(rebound)"))
        #expect(await blocking { socket.receive() }.hasPrefix("HTTP/1.1 403"))

        var configuration = MockBroker.Configuration()
        configuration.access = BrowserAccess(allowedHosts: ["mock.test"])
        let named = MockBroker(configuration: configuration, logger: quiet)
        let namedPort = try await named.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await named.stop() } }
        let served = await blocking { Self.exchange(namedPort, Self.request("GET", "/api/clients", host: "mock.test:\(namedPort)")) }
        #expect(served.status == 200, "\(served)")
    }

    /// An allowed frontend origin gets its answers with CORS naming it, preflights included.
    @Test func anAllowedFrontendIsServedWithCORS() async throws {
        var configuration = MockBroker.Configuration()
        configuration.access = BrowserAccess(allowedOrigins: try BrowserAccess.origins(allowing: "5173"))
        let broker = MockBroker(configuration: configuration, logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let frontend = "http://localhost:5173"
        let preflight = await blocking { Self.exchange(port, Self.request("OPTIONS", "/api/publish", host: "127.0.0.1:\(port)", origin: frontend)) }
        #expect(preflight.status == 204)
        #expect(preflight.headers["access-control-allow-origin"] == frontend)
        #expect(preflight.headers["vary"] == "Origin")
        let list = await blocking { Self.exchange(port, Self.request("GET", "/api/clients", host: "127.0.0.1:\(port)", origin: frontend)) }
        #expect(list.status == 200 && list.headers["access-control-allow-origin"] == frontend, "\(list)")
        let socket = try RawSocket(port: port)
        socket.send(Self.upgrade(host: "127.0.0.1:\(port)", origin: frontend))
        #expect(await blocking { socket.receive() }.hasPrefix("HTTP/1.1 101"))
    }

    /// The chat endpoints (OneBot here) and the echo endpoint refuse foreign pages the same way.
    @Test func theChatEndpointsRefuseForeignPagesToo() async throws {
        let oneBot = OneBotMock(configuration: .init(), logger: quiet)
        let port = try await oneBot.listen(host: "127.0.0.1", port: 0)
        defer { Task { await oneBot.stop() } }
        let echo = EchoEndpoint(logger: quiet)
        let echoPort = try await echo.listen(host: "127.0.0.1", port: 0)
        defer { Task { await echo.stop() } }
        for listener in [port, echoPort] {
            let socket = try RawSocket(port: listener)
            socket.send(Self.upgrade(host: "127.0.0.1:\(listener)", origin: "http://evil.example").replacingOccurrences(of: "GET /mqtt", with: "GET /ws/"))
            let answer = await blocking { socket.receive() }
            #expect(answer.hasPrefix("HTTP/1.1 403") && answer.contains("--allow-origin"), "\(answer)")
        }
    }

    /// With credentials configured, a CONNECT without them is refused: 3.1.1 return code 4,
    /// 5.0 reason 0x86; the right user name and password, or the shared token, are accepted.
    @Test func credentialsAreChecked() async throws {
        var configuration = MockBroker.Configuration()
        configuration.core.credentials = .init(users: ["alice": "wonder"], sharedPassword: "t0ken")
        let broker = MockBroker(configuration: configuration, logger: quiet)
        let port = try await broker.listenTCP(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        func connack(version: UInt8, user: String?, password: String?) async throws -> [UInt8] {
            var flags: UInt8 = 0x02
            var payload: [UInt8] = [0, 1, 0x63]
            if let user { flags |= 0x80; payload += [0, UInt8(user.utf8.count)] + Array(user.utf8) }
            if let password { flags |= 0x40; payload += [0, UInt8(password.utf8.count)] + Array(password.utf8) }
            let variable: [UInt8] = [0, 4, 0x4D, 0x51, 0x54, 0x54, version, flags, 0, 60] + (version == 5 ? [0] : [])
            let body = variable + payload
            let socket = try RawSocket(port: port)
            socket.send(bytes: [0x10, UInt8(body.count)] + body)
            return await blocking { socket.receiveBytes(timeout: 5) }
        }
        #expect(try await connack(version: 4, user: nil, password: nil).prefix(4) == [0x20, 2, 0, 4])
        #expect(try await connack(version: 4, user: "alice", password: "wrong").prefix(4) == [0x20, 2, 0, 4])
        #expect(try await connack(version: 4, user: "bob", password: "wonder").prefix(4) == [0x20, 2, 0, 4])
        #expect(try await connack(version: 4, user: "alice", password: "wonder").prefix(4) == [0x20, 2, 0, 0])
        #expect(try await connack(version: 4, user: "anyone", password: "t0ken").prefix(4) == [0x20, 2, 0, 0])
        let refused5 = try await connack(version: 5, user: "alice", password: "wonde")
        #expect(refused5.count > 3 && refused5[3] == 0x86, "\(refused5)")
    }

    // MARK: A real browser

    /// Debian's chromium-headless-shell (Tools/setup --peers), as the page's tests use.
    static var chromium: String? {
        ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The attack page of the finding, served by another loopback origin: it reads the client
    /// list, POSTs a fault as text/plain, opens a WebSocket with subprotocol mqtt and an
    /// EventSource on the live view, and writes what happened into the page.
    static let attackPage = """
        <!doctype html><title>attack</title><script>
        const mock = new URLSearchParams(location.search).get("mock");
        const results = {};
        (async () => {
          try { const r = await fetch(mock + "/api/clients"); results.clients = r.status + " " + (await r.text()).slice(0, 30); }
          catch (e) { results.clients = "blocked"; }
          try {
            await fetch(mock + "/api/faults", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                                               body: '{"refuseConnections": true}'});
            results.fault = "sent";
          } catch (e) { results.fault = "error"; }
          results.socket = await new Promise((resolve) => {
            const socket = new WebSocket(mock.replace("http", "ws") + "/mqtt", "mqtt");
            socket.onopen = () => { socket.close(); resolve("open"); };
            socket.onerror = () => resolve("refused");
          });
          results.events = await new Promise((resolve) => {
            const source = new EventSource(mock + "/api/events");
            source.onopen = () => { source.close(); resolve("open"); };
            source.onerror = () => { source.close(); resolve("refused"); };
          });
          window.probeResult = results;
        })();
        </script>
        """

    /// Serves the attack page from its own loopback origin (Python's http.server), loads it in
    /// headless Chromium (Tools/peers/page_probe.py, through the DevTools protocol) and returns
    /// what the page found.
    func runAttackPage(mockPort: Int, pagePort: Int) async throws -> [String: Any] {
        let chromium = try #require(Self.chromium, "chromium-headless-shell is missing: Tools/setup --peers installs it")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-attack-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.attackPage.write(to: folder.appendingPathComponent("attack.html"), atomically: true, encoding: .utf8)
        let server = try Background("/usr/bin/env", ["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", folder.path, "\(pagePort)"])
        defer { server.stop() }
        try await LoopbackPorts.waitUntilAccepting(pagePort)
        return try await PahoPeer.script("page_probe.py", [
            "--browser", chromium, "--url", "http://127.0.0.1:\(pagePort)/attack.html?mock=http://127.0.0.1:\(mockPort)",
        ], seconds: 60)
    }

    @Test(.enabled(if: (chromium != nil && PahoPeer.present) || TestEnvironment.peersRequired))
    func aPageOfAnotherOriginCannotDriveTheMock() async throws {
        let broker = MockBroker(configuration: .init(), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let before = await faults(port)
        let found = try await runAttackPage(mockPort: port, pagePort: try LoopbackPorts.free())
        #expect(found["clients"] as? String == "blocked", "\(found)")
        #expect(found["socket"] as? String == "refused", "\(found)")
        #expect(found["events"] as? String == "refused", "\(found)")
        #expect(await faults(port) == before, "the page turned a fault on: \(found)")
    }

    @Test(.enabled(if: (chromium != nil && PahoPeer.present) || TestEnvironment.peersRequired))
    func anAllowedFrontendOriginCanUseTheMock() async throws {
        let pagePort = try LoopbackPorts.free()
        var configuration = MockBroker.Configuration()
        configuration.access = BrowserAccess(allowedOrigins: try BrowserAccess.origins(allowing: "http://127.0.0.1:\(pagePort)"))
        let broker = MockBroker(configuration: configuration, logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let found = try await runAttackPage(mockPort: port, pagePort: pagePort)
        #expect((found["clients"] as? String)?.hasPrefix("200 {\"clients\"") == true, "\(found)")
        #expect(found["socket"] as? String == "open", "\(found)")
        #expect(found["events"] as? String == "open", "\(found)")
        #expect(await faults(port).contains("\"refuseConnections\":true"), "the allowed page's POST did not arrive")
    }
}
