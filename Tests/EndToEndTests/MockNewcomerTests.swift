import Foundation
import TestSupport
import Testing

/// What a frontend developer meets first with wmq-mock: the banner, the hint on the client
/// path, and plain messages when something is in the way.
@Suite("wmq-mock for a newcomer", .serialized, .timeLimit(.minutes(1)))
struct MockNewcomerTests {
    static func waitFor(_ text: String, in mock: Background, seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if mock.output.contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    @Test func theBannerSaysWhereToLookAndWhatToConnectTo() throws {
        let port = try LoopbackPorts.free()
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--mode", "works", "--ws", "127.0.0.1:\(port)"])
        defer { mock.stop() }
        #expect(Self.waitFor("clients", in: mock), "\(mock.output)")
        #expect(mock.output.contains("page     http://127.0.0.1:\(port)/"))
        #expect(mock.output.contains("clients  ws://127.0.0.1:\(port)/wmqtt, subprotocol mqtt"))

        // GET on the client path without an upgrade: what to connect to, and where the page is.
        let (status, body) = AdminAPIRequest.blocking("GET", "/wmqtt", port: port)
        #expect(status == 404)
        #expect(body.contains("connect ws://localhost/wmqtt with the WebSocket subprotocol mqtt") && body.contains("The page is at http://localhost/"), "\(body)")

        // The same port again: said in plain words, exit 3.
        let second = try DecodeTests.run(["--ws", "127.0.0.1:\(port)"], tool: "wmq-mock")
        #expect(second.status == 3)
        #expect(second.error.contains("127.0.0.1:\(port) is already in use (another wmq-mock?); choose another with --ws HOST:PORT"),
                "\(second.error)")
        #expect(!second.error.contains("errno"))
    }

    /// A notification typed before any client connects is kept, and the terminal says so.
    @Test func aNotificationBeforeAnyClientIsKeptAndSaidSo() throws {
        let port = try LoopbackPorts.free()
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--mode", "works", "--ws", "127.0.0.1:\(port)"])
        defer { mock.stop() }
        #expect(Self.waitFor("clients", in: mock))
        mock.input.fileHandleForWriting.write(Data("{\"channel\": 42, \"sender\": \"Alice\", \"text\": \"early\"}\n".utf8))
        #expect(Self.waitFor("no client is connected: the notification is kept for the next that connects", in: mock), "\(mock.output)")
        #expect(mock.output.contains("held=1"))
    }

    @Test func aNegativeRedeliveryHasItsOwnMessage() throws {
        let run = try DecodeTests.run(["--mode", "works", "--redelivery", "-1"], tool: "wmq-mock")
        #expect(run.status == 2)
        #expect(run.error.contains("--redelivery takes a positive number of seconds, not -1.0"), "\(run.error)")
    }

    @Test(arguments: [("/no/such/config.toml", "no such file"), ("/tmp", "is a directory")])
    func aConfigurationThatCannotBeReadSaysWhy(path: String, why: String) throws {
        let run = try DecodeTests.run(["--config", path], tool: "wmq-mock")
        #expect(run.status == 3)
        #expect(run.error.contains("\(path): \(why)"), "\(run.error)")
    }

    /// docs/mock.md's configuration example with a blank line before a table loads.
    @Test func aConfigurationWithBlankLinesLoads() throws {
        let port = try LoopbackPorts.free()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-\(UUID().uuidString).toml")
        try "[ws.1]\nlisten = \"127.0.0.1:\(port)\"\n\n[wmq]\nmode = \"works\"\n".write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let mock = try Background(DecodeTests.binary("wmq-mock"), ["--config", config.path])
        defer { mock.stop() }
        #expect(Self.waitFor("listening ws://127.0.0.1:\(port)/wmqtt", in: mock), "\(mock.output)")
    }
}

/// One HTTP/1.1 request on a new connection.
enum AdminAPIRequest {
    static func blocking(_ method: String, _ path: String, port: Int) -> (Int, String) {
        let socket = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return (0, "") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return (0, "") }
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        let response = String(decoding: received, as: UTF8.self)
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = response.range(of: "\r\n\r\n").map { String(response[$0.upperBound...]) } ?? ""
        return (status, body)
    }
}
