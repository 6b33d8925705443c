import Foundation
import LiveClock
import Logging
import NIOPosix
import Recordings
import Replay
import TestSupport
import Testing
import WorksClient

/// The replay runner goes by an injectable clock: a stall is found by moving the clock past
/// the timeout, not by waiting ten seconds.
@Suite("Replay runner's clock", .timeLimit(.minutes(1)))
struct ReplayClockTests {
    @Test func aStallIsFoundWhenTheClockPassesTheTimeout() async throws {
        let recording = try Recording.read(path: TestEnvironment.captures.appendingPathComponent("mqtt311-ws.pcap").path)
        let subscriber = try #require(recording.connections.first { $0.connect?.clientIdentifier == "wmq-sub-311" })
        let clock = LiveClock.manual()
        let server = try await ReplayServer.start(recording, connections: [subscriber], webSocket: ("127.0.0.1", 0), tcp: nil,
                                                  options: ReplayOptions(pace: .asap, clock: clock),
                                                  group: MultiThreadedEventLoopGroup.singleton)
        let port = try #require(server.webSocketPort)
        async let report = server.run()
        // A client that connects, as recorded, and then sends nothing: the SUBSCRIBE never comes.
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let client = WorksClient(configuration: WorksClientConfiguration(
            webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/mqtt"))), logger: quiet)
        try await client.connect()
        // Nine seconds of the replay's clock: still waiting.
        #expect(await waitUntil { clock.sleeping > 0 })
        clock.advance(by: .seconds(9))
        try await Task.sleep(for: .milliseconds(100))
        #expect(clock.sleeping > 0, "the replay stopped before its timeout")
        // Past the timeout: it stops, and says what it waited for.
        clock.advance(by: .seconds(2))
        let result = await report
        await client.disconnect()
        #expect(result.notes.contains { $0.hasPrefix("stopped after waiting 10") && $0.contains("SUBSCRIBE") }, "\(result.notes)")
        #expect(!result.matched)
    }
}
