import Foundation
import LiveWebSocket
import Logging
import MockServer
import NIOCore
import NIOPosix
import TestSupport
import Testing

/// HTTP connections that hold a descriptor without finishing anything are closed on time, and a
/// full server says so instead of spinning.
@Suite("wmq-mock's HTTP timeouts and connection limit", .serialized, .timeLimit(.minutes(2)))
struct HTTPLimitsTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    func broker(requestHead: Duration = .seconds(1), body: Duration = .seconds(1), maximumConnections: Int = 1000)
        async throws -> (MockBroker, Int) {
        var configuration = MockBroker.Configuration(core: .init(connectionTimeout: requestHead))
        configuration.bodyTimeout = body
        configuration.maximumConnections = maximumConnections
        let broker = MockBroker(configuration: configuration, logger: quiet)
        return (broker, try await broker.listenWebSocket(host: "127.0.0.1", port: 0))
    }

    /// After one answered request a kept-alive connection that says nothing more is closed
    /// (the finding: it stayed open for good); one that keeps asking is served each time.
    @Test func anIdleKeepAliveConnectionIsClosed() async throws {
        let (broker, port) = try await broker(requestHead: .seconds(2))
        defer { Task { await broker.stop() } }
        let idle = try RawSocket(port: port)
        idle.send("GET /api/clients HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(await blocking { idle.receive() }.hasPrefix("HTTP/1.1 200"))
        let started = ContinuousClock.now
        #expect(await blocking { idle.isClosed(within: 6) })
        let waited = ContinuousClock.now - started
        #expect(waited > .milliseconds(1500) && waited < .seconds(5), "closed after \(waited)")

        // Asking every 300 ms for longer than the timeout: each answer re-arms it.
        let busy = try RawSocket(port: port)
        let asking = ContinuousClock.now
        while ContinuousClock.now - asking < .seconds(3) {
            busy.send("GET /api/info HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(await blocking { busy.receive() }.hasPrefix("HTTP/1.1 200"))
            try await Task.sleep(for: .milliseconds(300))
        }
    }

    /// A body sent a byte at a time is cut off by the body timeout, and no fault is applied.
    @Test func aDribbledBodyIsCutOff() async throws {
        let (broker, port) = try await broker(requestHead: .seconds(5), body: .seconds(1))
        defer { Task { await broker.stop() } }
        let slow = try RawSocket(port: port)
        let body = #"{"refuseConnections": true}"#
        slow.send("POST /api/faults HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
        let started = ContinuousClock.now
        var closed = false
        for byte in body.utf8 {
            slow.send(bytes: [byte])
            if await blocking({ slow.isClosed(within: 0.4) }) { closed = true; break }
        }
        #expect(closed)
        #expect(ContinuousClock.now - started < .seconds(3))
        let faults = await blocking { BrowserAccessMockTests.exchange(port, BrowserAccessMockTests.request("GET", "/api/faults", host: "localhost")) }
        #expect(faults.body.contains("\"refuseConnections\":false"), "\(faults.body)")
    }

    /// The live view is a stream: it is not timed out while it lasts.
    @Test func theLiveViewStreamIsNotTimedOut() async throws {
        let (broker, port) = try await broker()
        defer { Task { await broker.stop() } }
        let viewer = try RawSocket(port: port)
        viewer.send("GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(await blocking { viewer.receive() }.hasPrefix("HTTP/1.1 200"))
        #expect(await blocking { !viewer.isClosed(within: 2.5) })
    }

    /// Past the connection limit a new connection is answered 503 and closed; once others went,
    /// connections are taken again.
    @Test func aFullServerSays503AndRecovers() async throws {
        let (broker, port) = try await broker(requestHead: .seconds(30), maximumConnections: 5)
        defer { Task { await broker.stop() } }
        var held: [RawSocket] = []
        for _ in 0..<5 { held.append(try RawSocket(port: port)) }
        #expect(await waitUntil { broker.limiter.count == 5 })
        let extra = try RawSocket(port: port)
        let answer = await blocking { extra.receive(timeout: 3) }
        #expect(answer.hasPrefix("HTTP/1.1 503") && answer.contains("5 connections open"), "\(answer)")
        held.removeAll()  // closes them
        #expect(await waitUntil { broker.limiter.count == 0 })
        let later = try RawSocket(port: port)
        later.send("GET /api/info HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(await blocking { later.receive() }.hasPrefix("HTTP/1.1 200"))
    }

    /// The chat endpoints' listener times out a handshake that never completes too (it had no
    /// timeout at all).
    @Test func aChatEndpointCutsOffADribbledHandshake() async throws {
        let limits = HTTPConnectionLimits(requestHead: .seconds(1), body: .seconds(1))
        let channel = try await JSONSocketListener.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton,
                                                        limits: limits, accepts: { _ in true }, serve: { _, _, _ in })
        defer { channel.close(promise: nil) }
        let port = try #require(channel.localAddress?.port)
        let slow = try RawSocket(port: port)
        let started = ContinuousClock.now
        var closed = false
        for byte in "GET /ws/ HTTP/1.1\r\nHost: localhost\r\n".utf8 {
            slow.send(bytes: [byte])
            if await blocking({ slow.isClosed(within: 0.3) }) { closed = true; break }
        }
        #expect(closed)
        #expect(ContinuousClock.now - started < .seconds(3))
    }
}
