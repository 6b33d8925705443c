public import Dialects
import Foundation
import LiveWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NetworkErrors
import NIOPosix
import NIOWebSocket
public import Recordings
import WebSocketWire
import WorksClient

/// `wmq-replay serve` for JSON chat sockets: the recorded server played to a client under test,
/// whose messages are compared with the recorded client's.
///
/// Each connection the client opens plays the next recorded socket. A server message goes once
/// the client's messages that *cause* server messages, recorded before it, have come (OneBot API
/// calls, CocoroCore chat requests, Discord's IDENTIFY, RESUME and HEARTBEAT), and not before its
/// recorded time under the pace; OneBot responses carry the echo of the live call they answer
/// (the recorded call at the same place), and a zlib-stream socket is compressed again.
/// Keep-alives (OneBot heartbeats, Discord HEARTBEAT) are not compared: their number follows the clock.
public final class ChatSocketServer: Sendable {
    public let sockets: [RecordedChatSocket]
    private let options: ReplayOptions
    private let state = NIOLockedValueBox(State())
    private let done: AsyncStream<Void>
    private let doneContinuation: AsyncStream<Void>.Continuation

    private struct State {
        var listener: (any Channel)?
        var next = 0
        var reports: [Int: ChatSocketReplay.Report] = [:]
        var notes: [String] = []
    }

    /// Listens on `host`:`port` (0: a free port); `port` tells the bound one.
    public init(sockets: [RecordedChatSocket], host: String, port: Int, options: ReplayOptions) async throws(ReplayError) {
        self.sockets = sockets
        self.options = options
        (done, doneContinuation) = AsyncStream.makeStream(of: Void.self)
        do {
            let channel = try await JSONSocketListener.bind(
                host: host, port: port, group: MultiThreadedEventLoopGroup.singleton, maximumFrameSize: 16 << 20, access: options.access,
                accepts: { _ in true },
                serve: { [self] frames, channel, head in await self.accept(frames, channel: channel, uri: head.uri) })
            state.withLockedValue { $0.listener = channel }
        } catch {
            throw ReplayError(.connection, NetworkErrorText.listening(error, host: host, port: port, option: "--listen",
                                                                      tool: "wmq-replay or server"))
        }
    }

    public var port: Int? { state.withLockedValue { $0.listener?.localAddress?.port } }

    /// Waits until every socket was played (or ``stop(_:)``), then reports them in recorded order.
    public func run() async -> (reports: [ChatSocketReplay.Report], notes: [String]) {
        for await _ in done { break }
        let listener = state.withLockedValue { $0.listener }
        try? await listener?.close()
        return state.withLockedValue { state in
            (sockets.indices.compactMap { state.reports[$0] }, state.notes)
        }
    }

    /// Ends the replay now (Ctrl-C): what was not played is said.
    public func stop(_ reason: String) {
        state.withLockedValue { state in
            if state.reports.count < sockets.count { state.notes.append(reason) }
        }
        doneContinuation.finish()
    }

    private func accept(_ frames: JSONSocketListener.Frames, channel: any Channel, uri: String) async {
        let index: Int? = state.withLockedValue { state in
            guard state.next < sockets.count else { return nil }
            defer { state.next += 1 }
            return state.next
        }
        guard let index else {
            try? await channel.close()
            return
        }
        let report = await ChatSocketReplay.play(sockets[index], frames: frames, channel: channel,
                                                 compress: sockets[index].zlibStream && uri.contains("compress=zlib-stream"), options: options)
        let finished = state.withLockedValue { state in
            state.reports[index] = report
            return state.reports.count == sockets.count
        }
        if finished { doneContinuation.finish() }
    }
}

extension ChatSocketReplay {
    /// A client message whose arrival a served server message may wait for.
    public static func isCause(_ json: JSONValue?, dialect: String?) -> Bool {
        guard let json else { return true }
        switch dialect {
        case "onebot", "cocoro": return json["action"] != nil
        case "discord": return [1, 2, 6].contains(json["op"]?.intValue ?? -1)
        default: return true
        }
    }

    /// A client message left out of the comparison: a keep-alive, whose number follows the clock.
    public static func isKeepAlive(_ json: JSONValue?, dialect: String?) -> Bool {
        switch dialect {
        case "onebot": json?["meta_event_type"]?.stringValue == "heartbeat"
        case "discord": json?["op"]?.intValue == 1
        default: false
        }
    }

    /// What the client fills anew each run, besides each dialect's server-side members.
    static func clientIgnoredPaths(dialect: String?) -> [String] {
        switch dialect {
        case "onebot": ["$.time", "$.message_id", "$.echo"]
        default: []
        }
    }

    /// Plays one recorded socket's server side on an accepted connection.
    static func play(_ socket: RecordedChatSocket, frames: JSONSocketListener.Frames, channel: any Channel, compress: Bool,
                     options: ReplayOptions) async -> Report {
        let started = ContinuousClock.now
        var report = Report(socket: socket, rows: [], notes: [], sent: 0, received: 0, seconds: 0)
        let limit = 4 * socket.messages.count + 1_000
        let dialect = socket.dialect
        // Causes counted (the served messages wait on them); keep-alives not compared.
        let client = PeerMessages(peer: "client", limit: limit, trace: options.trace, counts: { isCause($0, dialect: dialect) },
                                  keeps: { !isKeepAlive($0, dialect: dialect) })
        let reader = Task {
            var messages = WebSocketFrameMessages()
            try? await frames.executeThenClose { inbound, _ in
                for try await frame in inbound {
                    if frame.opcode == .connectionClose { break }
                    if let message = messages.add(frame) { client.add(String(buffer: message)) }
                }
            }
            client.finish()
        }
        let compressor = compress ? try? ZlibStreamWriter() : nil
        let recordedCalls = socket.messages.filter { $0.direction == .clientToServer }
            .compactMap { try? JSONReader.parse($0.text) }.filter { $0["action"] != nil }.map { $0["echo"] }
        let first = socket.messages.first?.time ?? 0
        var causesBefore = 0
        for message in socket.messages {
            let json = try? JSONReader.parse(message.text)
            if message.direction == .clientToServer {
                if isCause(json, dialect: socket.dialect) { causesBefore += 1 }
                continue
            }
            if let waited = await client.waitForCounted(causesBefore, timeout: options.timeout) {
                report.notes.append("stopped after waiting \(waited) for the client's messages before \(summary(of: message))")
                break
            }
            try? await Task.sleep(until: started + options.pace.delay(offset: message.time - first))
            var text = message.text
            // A OneBot response answers the live call at the recorded call's place: its echo.
            if socket.dialect == "onebot", var members = json?.members, let echo = json?["echo"],
               let place = recordedCalls.firstIndex(of: echo), let live = client.callEcho(at: place) {
                members = members.map { $0.key == "echo" ? JSONMember(key: "echo", value: live) : $0 }
                text = JSONValue.object(members).description
            }
            options.trace?("→ \(text)")
            var data = ByteBuffer(string: text)
            var opcode = WebSocketOpcode.text
            if let compressor {
                guard let compressed = try? compressor.write(data) else { break }
                data = compressed
                opcode = .binary
            }
            do {
                try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: opcode, data: data)).get()
                report.sent += 1
            } catch {
                report.notes.append("the client closed the connection before \(summary(of: message))")
                break
            }
        }
        // The rest of the client's recorded messages, then a moment for extras.
        let expected = socket.messages.filter { $0.direction == .clientToServer && !isKeepAlive(try? JSONReader.parse($0.text), dialect: socket.dialect) }
        if report.notes.isEmpty, let waited = await client.waitForKept(expected.count, timeout: options.timeout) {
            report.notes.append("stopped after waiting \(waited) for the client's last messages")
        }
        try? await Task.sleep(for: options.settle)
        var close = channel.allocator.buffer(capacity: 2)
        close.write(webSocketErrorCode: .normalClosure)
        try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: close)).get()
        try? await channel.close()
        reader.cancel()
        let received = client.messages
        report.received = received.count + client.dropped
        if client.dropped > 0 { report.notes.append("the client sent \(client.dropped) messages beyond the first \(limit); they were counted, not compared") }
        var rules = options.rules
        rules.ignoredPaths += clientIgnoredPaths(dialect: socket.dialect)
        report.rows = compare(recorded: expected, replayed: received, dialect: socket.dialect, rules: rules, answersOnly: false)
        report.seconds = (ContinuousClock.now - started) / .seconds(1)
        return report
    }
}
