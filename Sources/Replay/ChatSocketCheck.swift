import Dialects
import Foundation
import Logging
public import Recordings
import ChatClients
import WorksClient

extension ChatSocketReplay {
    /// `wmq-replay check` of a JSON chat socket: the recorded server served on loopback to the
    /// built-in client of its dialect, which does what the recorded client did at the application
    /// level while its own protocol work is compared with the recorded client's.
    ///
    /// OneBot: `OneBotClient`, with the recorded bot id, token, client role and heartbeat
    /// interval, makes the lifecycle event, the heartbeats and the answers to the server's API
    /// calls itself; the recorded client's other messages (its events and calls) are handed to
    /// it to send, each once the server's messages recorded before it have come and at its time
    /// under the pace. Other dialects have no built-in client: skipped, with the reason.
    public static func check(_ socket: RecordedChatSocket, options: ReplayOptions) async -> Report {
        guard socket.dialect == "onebot" else {
            var report = Report(socket: socket, rows: [], notes: [], sent: 0, received: 0, seconds: 0)
            report.skipped = "no built-in \(socket.dialect ?? "JSON") client (OneBot has one)"
            return report
        }
        let server: ChatSocketServer
        do {
            server = try await ChatSocketServer(sockets: [socket], host: "127.0.0.1", port: 0, options: options)
        } catch {
            return Report(socket: socket, rows: [], notes: ["cannot serve the recording: \(error)"], sent: 0, received: 0, seconds: 0)
        }
        let recorded = socket.messages.map { (message: $0, json: try? JSONReader.parse($0.text)) }
        let first = recorded.first { $0.message.direction == .clientToServer && $0.json?["self_id"] != nil }?.json
        let heartbeat = recorded.first { $0.json?["meta_event_type"]?.stringValue == "heartbeat" }?.json?["interval"]?.intValue
        let authorization = socket.headers.first { $0.name.lowercased() == "authorization" }?.value
        let token = authorization.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        let role = socket.headers.first { $0.name.lowercased() == "x-client-role" }?.value
        let configuration: OneBotClient.Configuration
        do {
            configuration = .init(url: try WebSocketURL("ws://127.0.0.1:\(server.port ?? 0)\(socket.target)"),
                                  botID: first?["self_id"]?.intValue ?? 12345, maximumReconnectAttempts: 1,
                                  heartbeatInterval: .milliseconds(heartbeat ?? 30_000), accessToken: token, clientRole: role)
        } catch {
            return Report(socket: socket, rows: [], notes: ["\(error)"], sent: 0, received: 0, seconds: 0)
        }
        let client = OneBotClient(configuration: configuration, logger: Logger(label: "wmq.replay.check") { _ in SwiftLogNoOpLogHandler() })
        // The server's messages, counted: each recorded client message waits for those before it.
        let arrived = PeerMessages(peer: "server", limit: 0, trace: nil, counts: { _ in true }, keeps: { _ in false })
        await client.onMessage { json in arrived.add(json.description) }
        let connected = AsyncStream<Void>.makeStream()
        await client.onConnect { connected.continuation.yield() }
        let running = Task { await client.run() }
        // What the client does at the application level: the recorded client's messages that its
        // protocol work does not make itself.
        let player = Task {
            for await _ in connected.stream { break }
            let started = ContinuousClock.now
            let start = socket.messages.first?.time ?? 0
            var serverBefore = 0
            for (message, json) in recorded {
                guard message.direction == .clientToServer else {
                    serverBefore += 1
                    continue
                }
                if let json, isOwnWork(json) { continue }
                _ = await arrived.waitForCounted(serverBefore, timeout: options.timeout)
                try? await Task.sleep(until: started + options.pace.delay(offset: message.time - start))
                guard let json else { continue }
                try? await client.sendMessage(json)
            }
        }
        let (reports, notes) = await server.run()
        player.cancel()
        await client.disconnect()
        running.cancel()  // out of a reconnection's pause at once
        _ = await running.value
        guard var report = reports.first else {
            return Report(socket: socket, rows: [], notes: notes.isEmpty ? ["the built-in client never connected"] : notes,
                          sent: 0, received: 0, seconds: 0)
        }
        report.notes += notes
        return report
    }

    /// What the OneBot client makes itself: the lifecycle event, heartbeats, answers to calls.
    static func isOwnWork(_ json: JSONValue) -> Bool {
        if json["retcode"] != nil { return true }
        switch json["meta_event_type"]?.stringValue {
        case "heartbeat"?: return true
        case "lifecycle"?: return json["sub_type"]?.stringValue == "connect"
        default: return false
        }
    }
}
