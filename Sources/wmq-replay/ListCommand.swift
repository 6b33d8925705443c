import ArgumentParser
import Capture
import CommandLineSupport
import Dialects
import Foundation
import MQTTWire
import Replay
import Recordings
import WorksClient

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The MQTT connections and JSON chat sockets of a recording, with their packet or message counts each way.",
        discussion: reflowHelp("""
            One paragraph per connection: its id, the client and server addresses, the transport
            (ws-mqtt with the upgrade's path and subprotocol, mqtt, or scenario), the client's
            CONNECT (protocol version, client id), then the packets each way by type, and how long
            the recording of it lasts. --format jsonl writes one object per connection instead
            ({"v": 1, "connection", "client", "server", "transport", "path", "subprotocol",
            "protocolLevel", "clientId", "c2s", "s2c", "duration"}). Problems met while reading (capture
            gaps, decoding errors) are listed after, on standard error.
            """))

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, jsonl }

    @Argument(help: "The recording: pcap, pcapng, HAR or a scenario file (JSON Lines).")
    var recording: String

    @Option(help: "text (default) or jsonl.")
    var format: Format = .text

    @Flag(help: "Print only the wmq-mock mode that can stand in for the recording's server when its client side is driven: works (serve the recording's pushes: wmq-mock --mode works --serve FILE), chat (the chat-topic tree's AI core) or broker.")
    var mockMode = false

    func run() throws {
        let session: Recording
        // A large capture takes a while: the same bar as wmq-decode's, on a terminal.
        let progress = Progress(path: recording)
        do {
            session = try Recording.read(path: recording) { progress.update($0) }
            progress.done()
        } catch {
            progress.done()
            throw unreadableInput("wmq-replay", "\(error)")
        }
        if mockMode {
            print(session.mockModeToServe.rawValue)
            return
        }
        var out = ""
        switch format {
        case .text:
            out += "\(recording): \(session.connections.count) MQTT connection\(session.connections.count == 1 ? "" : "s")"
                + (session.chatSockets.isEmpty ? "" : ", \(session.chatSockets.count) JSON chat socket\(session.chatSockets.count == 1 ? "" : "s")") + "\n"
            for connection in session.connections { out += Self.text(connection) }
            for socket in session.chatSockets { out += Self.text(socket) }
            if !session.connections.isEmpty {
                let mode = session.mockModeToServe
                out += "a mock for its server side: wmq-mock --mode \(mode.rawValue)\(mode == .works ? " --serve \(recording)" : "")\n"
            }
        case .jsonl:
            for object in session.connections.map(Self.json) + session.chatSockets.map(Self.json) {
                var bytes: [UInt8] = []
                object.write(to: &bytes)
                out += String(decoding: bytes, as: UTF8.self) + "\n"
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
        for problem in session.problems { StandardError.write("wmq-replay: \(recording): \(problem)\n") }
        if session.connections.isEmpty && session.chatSockets.isEmpty {
            throw unreadableInput("wmq-replay", "\(recording) holds no MQTT connection and no JSON chat socket")
        }
    }

    static func describe(_ counts: [(type: PacketType, count: Int)]) -> String {
        let total = counts.reduce(0) { $0 + $1.count }
        guard total > 0 else { return "0 packets" }
        return "\(total) packet\(total == 1 ? "" : "s") (" + counts.map { "\($0.type.description) \($0.count)" }.joined(separator: ", ") + ")"
    }

    static func text(_ connection: RecordedConnection) -> String {
        var head = "c\(connection.id)  \(connection.client) → \(connection.server)  \(connection.transport.rawValue)"
        if let path = connection.path { head += " \(path)" }
        if let subprotocol = connection.subprotocol { head += " (\(subprotocol))" }
        if let connect = connection.connect {
            head += "  MQTT \(connect.protocolVersion) client \"\(connect.clientIdentifier)\""
        }
        return head + "\n"
            + "    client → server  \(describe(connection.counts(.clientToServer)))\n"
            + "    server → client  \(describe(connection.counts(.serverToClient)))\n"
            + "    \(String(format: "%.3f", connection.duration)) s\n"
    }

    static func text(_ socket: RecordedChatSocket) -> String {
        let sent = socket.messages.filter { $0.direction == .clientToServer }.count
        let received = socket.messages.count - sent
        let duration = (socket.messages.last?.time ?? 0) - (socket.messages.first?.time ?? 0)
        return "c\(socket.id)  \(socket.client) → \(socket.server)  ws-json \(socket.target)  \(socket.dialect ?? "JSON")\n"
            + "    client → server  \(sent) message\(sent == 1 ? "" : "s")\n"
            + "    server → client  \(received) message\(received == 1 ? "" : "s")\n"
            + "    \(String(format: "%.3f", duration)) s\n"
    }

    static func json(_ socket: RecordedChatSocket) -> JSONValue {
        let sent = socket.messages.filter { $0.direction == .clientToServer }.count
        return .members([
            "v": .integer(1), "connection": .string("c\(socket.id)"), "client": .string(socket.client), "server": .string(socket.server),
            "transport": .string("ws-json"), "path": .string(socket.target), "dialect": socket.dialect.map { .string($0) } ?? .null,
            "c2s": .members(["messages": .integer(sent)]), "s2c": .members(["messages": .integer(socket.messages.count - sent)]),
            "duration": .number(String(format: "%.6f", (socket.messages.last?.time ?? 0) - (socket.messages.first?.time ?? 0))),
        ])
    }

    static func json(_ connection: RecordedConnection) -> JSONValue {
        func counts(_ direction: FlowDirection) -> JSONValue {
            .object(connection.counts(direction).map { JSONMember(key: $0.type.description, value: .number(String($0.count))) })
        }
        var members: [JSONMember] = [
            JSONMember(key: "v", value: .number("1")),
            JSONMember(key: "connection", value: .string("c\(connection.id)")),
            JSONMember(key: "client", value: .string(connection.client)),
            JSONMember(key: "server", value: .string(connection.server)),
            JSONMember(key: "transport", value: .string(connection.transport.rawValue)),
        ]
        if let path = connection.path { members.append(JSONMember(key: "path", value: .string(path))) }
        if let subprotocol = connection.subprotocol { members.append(JSONMember(key: "subprotocol", value: .string(subprotocol))) }
        if let connect = connection.connect {
            members.append(JSONMember(key: "protocolLevel", value: .number(String(connect.protocolVersion.rawValue))))
            members.append(JSONMember(key: "clientId", value: .string(connect.clientIdentifier)))
        }
        members.append(JSONMember(key: "c2s", value: counts(.clientToServer)))
        members.append(JSONMember(key: "s2c", value: counts(.serverToClient)))
        members.append(JSONMember(key: "duration", value: .number(String(format: "%.6f", connection.duration))))
        return .object(members)
    }
}
