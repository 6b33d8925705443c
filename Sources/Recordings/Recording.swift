public import Capture
public import Dialects
public import Dissector
import Foundation
public import MockFiles
public import MQTTWire
public import NIOCore

/// A recorded session, what `wmq-replay` and `wmq-mock --serve` consume: the MQTT connections of
/// a capture (pcap or pcapng through libpcap, HAR), each with its packets in order, both ways,
/// decoded by the same `Dissector` as `wmq-decode`; or the one connection a scenario file
/// (JSON Lines) describes from the server's side.
public struct Recording: Sendable {
    /// The file it was read from.
    public var source: String
    public var connections: [RecordedConnection]
    /// The WebSocket connections that carry JSON chat messages instead of MQTT (OneBot v11,
    /// CocoroCore chat, the Discord gateway, or JSON no dialect knows).
    public var chatSockets: [RecordedChatSocket]
    /// Capture and decoding errors met on the way (the rest of the file was still read).
    public var problems: [String]

    public init(source: String, connections: [RecordedConnection], chatSockets: [RecordedChatSocket] = [], problems: [String] = []) {
        self.source = source
        self.connections = connections
        self.chatSockets = chatSockets
        self.problems = problems
    }

    /// The connection wmq-decode calls `c<id>`.
    public func connection(_ id: Int) -> RecordedConnection? { connections.first { $0.id == id } }
}

/// One MQTT connection of a recording.
public struct RecordedConnection: Sendable {
    public enum Transport: String, Sendable, Hashable {
        /// MQTT inside WebSocket.
        case webSocket = "ws-mqtt"
        /// MQTT straight over TCP.
        case tcp = "mqtt"
        /// A scenario file: no transport was recorded.
        case scenario
    }

    /// wmq-decode's connection id (`c1` is 1).
    public var id: Int
    public var client: String
    public var server: String
    public var transport: Transport
    /// The WebSocket upgrade's target and the subprotocol the server chose, when recorded.
    public var path: String?
    public var subprotocol: String?
    public var messages: [RecordedMessage]

    public init(id: Int, client: String, server: String, transport: Transport, path: String? = nil,
                subprotocol: String? = nil, messages: [RecordedMessage] = []) {
        self.id = id
        self.client = client
        self.server = server
        self.transport = transport
        self.path = path
        self.subprotocol = subprotocol
        self.messages = messages
    }

    /// The client's CONNECT, when recorded.
    public var connect: ConnectPacket? {
        for message in messages {
            if case .connect(let connect) = message.packet { return connect }
        }
        return nil
    }

    /// How many packets of each type went `direction`, in the order the types first appeared.
    public func counts(_ direction: FlowDirection) -> [(type: PacketType, count: Int)] {
        var order: [PacketType] = []
        var counts: [PacketType: Int] = [:]
        for message in messages where message.direction == direction {
            let type = message.packet.type
            if counts[type] == nil { order.append(type) }
            counts[type, default: 0] += 1
        }
        return order.map { ($0, counts[$0] ?? 0) }
    }

    /// Seconds from the first recorded packet to the last.
    public var duration: Double { (messages.last?.time ?? 0) - (messages.first?.time ?? 0) }
}

/// One MQTT packet of a recorded connection.
public struct RecordedMessage: Sendable {
    public var direction: FlowDirection
    /// Epoch seconds as recorded (a scenario's start at 0).
    public var time: Double
    public var packet: MQTTPacket
    /// The Works annotation of a PUBLISH payload, when it is a Works message.
    public var annotation: AnnotatedMessage?

    public init(direction: FlowDirection, time: Double, packet: MQTTPacket, annotation: AnnotatedMessage? = nil) {
        self.direction = direction
        self.time = time
        self.packet = packet
        self.annotation = annotation
    }
}

/// A WebSocket connection of JSON chat messages (no MQTT), with its upgrade request.
public struct RecordedChatSocket: Sendable {
    public var id: Int
    public var client: String
    public var server: String
    /// The upgrade's target (path and query) and request headers, as recorded.
    public var target: String
    public var headers: [(name: String, value: String)]
    /// The dialect that annotated its messages (`onebot`, `cocoro`, `discord`), if one did.
    public var dialect: String?
    public var messages: [RecordedChatMessage]

    public init(id: Int, client: String, server: String, target: String = "/", headers: [(name: String, value: String)] = [],
                dialect: String? = nil, messages: [RecordedChatMessage] = []) {
        self.id = id
        self.client = client
        self.server = server
        self.target = target
        self.headers = headers
        self.dialect = dialect
        self.messages = messages
    }

    /// Whether the server's messages are one zlib stream (the Discord gateway's `compress=zlib-stream`).
    public var zlibStream: Bool { target.contains("compress=zlib-stream") }
}

/// One message of a chat socket: its text (inflated when it was compressed) and annotation.
public struct RecordedChatMessage: Sendable {
    public var direction: FlowDirection
    public var time: Double
    public var text: String
    public var annotation: AnnotatedMessage?

    public init(direction: FlowDirection, time: Double, text: String, annotation: AnnotatedMessage? = nil) {
        self.direction = direction
        self.time = time
        self.text = text
        self.annotation = annotation
    }
}

/// A file that is not a recording: cannot be read, or is none of the formats.
public struct RecordingError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Recording {
    /// Reads a pcap, pcapng, HAR or scenario (JSON Lines) file; the format is told by the
    /// content, not the name. Secrets are not redacted here: recordings made by the toolkit
    /// already are, and replay compares what was recorded.
    /// Why a file could not be read, in plain words.
    static func whyUnreadable(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "\(path): no such file" }
        if isDirectory.boolValue { return "\(path): is a directory, not a recording" }
        if !FileManager.default.isReadableFile(atPath: path) { return "\(path): permission denied (not readable by this user)" }
        return "\(path): cannot be read"
    }

    /// `progress` is told, now and then, how many of the file's bytes were read (a bar on a terminal).
    public static func read(path: String, progress: ((Int) -> Void)? = nil) throws(RecordingError) -> Recording {
        guard let data = FileManager.default.contents(atPath: path) else { throw RecordingError(Self.whyUnreadable(path)) }
        let bytes = [UInt8](data)
        let options = CaptureDissector.Options(redactor: nil)
        // A scenario and a HAR both are JSON; a scenario's first line is a whole object of its
        // own (or a comment), a HAR's is not, or is one object holding "log".
        if Self.looksLikeScenario(bytes) {
            guard let text = String(validating: bytes, as: UTF8.self) else { throw RecordingError("\(path): not UTF-8") }
            do {
                return try Recording(source: path, scenario: try Scenario(jsonLines: text))
            } catch let error as Scenario.ParseError {
                throw RecordingError("\(path): \(error)")
            } catch {
                throw RecordingError("\(path): \(error)")
            }
        }
        if HARInput.looksLikeHAR(bytes.prefix(64)) {
            do {
                return Recording(source: path, events: try HARInput.events(from: ByteBuffer(bytes: bytes), options: options), problems: [])
            } catch {
                throw RecordingError("\(path): \(error)")
            }
        }
        let reader: PcapReader
        do {
            reader = try PcapReader(bytes: bytes, name: path)
        } catch {
            throw RecordingError("\(path): \(error)")
        }
        var events: [CaptureEvent] = []
        var errors: [CaptureError] = []
        CaptureDissector.decode(reader, options: options, frameRead: { _ in progress?(reader.fileOffset) },
                                decoded: { events += $0 }, failed: { errors.append($0) })
        return Recording(source: path, events: events, problems: errors.map { "\($0)" })
    }

    /// Whether the first line that is neither blank nor a comment (`#`, `//`) is a JSON object on
    /// its own without a `log` member: a scenario file, not a HAR.
    static func looksLikeScenario(_ bytes: [UInt8]) -> Bool {
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: true) {
            let trimmed = line.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            guard let first = trimmed.first else { continue }
            if first == UInt8(ascii: "#") || (first == UInt8(ascii: "/") && trimmed.dropFirst().first == UInt8(ascii: "/")) { continue }
            guard first == UInt8(ascii: "{"), let object = try? JSONReader.parse(ByteBuffer(bytes: trimmed)),
                  case .object = object else { return false }
            return object["log"] == nil
        }
        return false
    }

    /// The MQTT connections among a capture's events, in the order they opened.
    public init(source: String, events: [CaptureEvent], problems: [String]) {
        var order: [Int] = []
        var connections: [Int: RecordedConnection] = [:]
        var sockets: [Int: RecordedChatSocket] = [:]
        var problems = problems
        for event in events {
            let id = event.connection.id
            // Each connection is changed in place: copying it out and back per event would copy
            // its messages every time (quadratic on long sessions).
            if connections[id] == nil {
                order.append(id)
                connections[id] = RecordedConnection(id: id, client: event.connection.client.description,
                                                     server: event.connection.server.description, transport: .webSocket)
            }
            switch event.kind {
            case .opened(let kind, _):
                connections[id]?.transport = kind == "mqtt" ? .tcp : .webSocket
            case .dissected(let dissected):
                switch dissected.kind {
                case .request(let request):
                    connections[id]?.path = request.target
                    sockets[id] = RecordedChatSocket(id: id, client: event.connection.client.description, server: event.connection.server.description,
                                                     target: request.target, headers: request.headers.map { ($0.name, $0.value) })
                case .webSocketMessage(let message, let annotation):
                    guard let direction = event.direction, let text = message.text, sockets[id] != nil else { break }
                    if sockets[id]?.dialect == nil { sockets[id]?.dialect = annotation?.dialect }
                    sockets[id]?.messages.append(RecordedChatMessage(direction: direction, time: event.time, text: text, annotation: annotation))
                case .response(let response, _): connections[id]?.subprotocol = response.subprotocol
                case .mqtt(let packet, _, let annotation):
                    guard let direction = event.direction else { break }
                    connections[id]?.messages.append(RecordedMessage(direction: direction, time: event.time, packet: packet, annotation: annotation))
                case .error(let layer, let description):
                    problems.append("c\(id) \(layer): \(description)")
                default: break
                }
            case .gap(let bytes):
                problems.append("c\(id): \(bytes) bytes missing from the capture")
            case .closed, .ignored:
                break
            }
        }
        self.init(source: source, connections: order.compactMap { connections[$0] }.filter { !$0.messages.isEmpty },
                  chatSockets: order.compactMap { sockets[$0] }.filter { !$0.messages.isEmpty }, problems: problems)
    }

    /// A scenario as the one connection it describes from the server's side: each notification,
    /// read receipt or publish step a PUBLISH to the client at the time the waits before it add
    /// up to (QoS 1 and 2 ones numbered 1, 2, … as the mock numbers them), each followed by the
    /// acknowledgements MQTT asks of the client (PUBACK; PUBREC, the server's PUBREL, PUBCOMP).
    /// The CONNECT and CONNACK are not part of it (replay answers the client's CONNECT itself),
    /// nor what the scenario's `expect` steps look for.
    public init(source: String, scenario: Scenario) throws(RecordingError) {
        var builder = NotificationBuilder()
        var time = 0.0
        var messages: [RecordedMessage] = []
        var nextIdentifier: UInt16 = 1
        func push(_ publish: PublishPacket) {
            var publish = publish
            guard publish.qos != .atMostOnce else {
                messages.append(RecordedMessage(direction: .serverToClient, time: time, packet: .publish(publish)))
                return
            }
            let identifier = nextIdentifier
            nextIdentifier = nextIdentifier == .max ? 1 : nextIdentifier + 1
            publish.packetIdentifier = identifier
            messages.append(RecordedMessage(direction: .serverToClient, time: time, packet: .publish(publish)))
            let response = PublishResponsePacket(packetIdentifier: identifier)
            if publish.qos == .atLeastOnce {
                messages.append(RecordedMessage(direction: .clientToServer, time: time, packet: .puback(response)))
            } else {
                messages.append(RecordedMessage(direction: .clientToServer, time: time, packet: .pubrec(response)))
                messages.append(RecordedMessage(direction: .serverToClient, time: time, packet: .pubrel(response)))
                messages.append(RecordedMessage(direction: .clientToServer, time: time, packet: .pubcomp(response)))
            }
        }
        for (line, step) in scenario.steps {
            switch step {
            case .wait(let duration):
                time += duration / .seconds(1)
            case .notify(let request):
                do {
                    let payload = try builder.payload(from: request, now: Int64(time * 1000))
                    let topic = request["topic"]?.stringValue ?? "notification"
                    push(PublishPacket(qos: .atLeastOnce, topicName: topic, payload: payload))
                } catch {
                    throw RecordingError("\(source) line \(line): \(error)")
                }
            case .readReceipt(let channel, let reader, let serial):
                push(PublishPacket(qos: .atLeastOnce, topicName: "notification",
                                   payload: NotificationBuilder.readReceipt(channel: channel, reader: reader, messageSerial: serial)))
            case .publish(let topic, let payload, let qos):
                push(PublishPacket(qos: qos, topicName: topic, payload: payload))
            case .expect, .delayAcknowledgements, .raw, .drop, .close:
                continue
            }
        }
        self.init(source: source, connections: [RecordedConnection(id: 1, client: "client", server: "scenario", transport: .scenario,
                                                                    messages: messages)])
    }
}
