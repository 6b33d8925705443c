import Capture
public import Dialects
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MQTTWire
import NIOCore
import NIOHTTP1
import WebSocketWire

/// Writes a capture's WebSocket connections as a HAR 1.2 file with Chrome's
/// `_webSocketMessages` (`{type: send|receive, time, opcode, data}`, binary data in base64), the
/// form Chrome DevTools imports and ``HARInput`` reads back. Feed it the events of a capture
/// decoded with `reportsMessages` on; connections that carried no WebSocket (MQTT over plain
/// TCP) have no place in a HAR and are counted in ``skippedConnections``.
///
/// Redaction: the handshake headers come redacted from the dissector; in the messages, a
/// CONNECT password and secret JSON members of PUBLISH payloads become pseudonyms. A message
/// whose packets hold no secret is written byte for byte; one that does is written as its
/// packets re-encoded, and a packet split across messages is then written whole in the
/// message that completed it (the partial ones before it are left out: they hold part of it).
public struct HAROutput {
    struct Message {
        var send: Bool
        var time: Double
        var opcode: UInt8
        var data: [UInt8]
    }

    struct Entry {
        var connection: Connection
        var start: Double
        var request: HTTPUpgradeRequest?
        var response: HTTPUpgradeResponse?
        var messages: [Message] = []
        /// Told by the subprotocol the server chose, else (as the dissector does) by a first client message that is a CONNECT.
        var carriesMQTT: Bool?
        var streams: [Bool: RedactingStream] = [:]
    }

    /// One direction of a connection's MQTT, for redaction.
    struct RedactingStream {
        var decoder: MQTTDecoder
        var held: [Message] = []
        var packets: [MQTTPacket] = []
        var changed = false
    }

    private let redactor: Redactor?
    private var entries: [Int: Entry] = [:]
    private var order: [Int] = []
    public private(set) var skippedConnections = 0
    private var skipped: Set<Int> = []

    public init(redactor: Redactor?) {
        self.redactor = redactor
    }

    public mutating func add(_ events: [CaptureEvent]) {
        for event in events { add(event) }
    }

    public mutating func add(_ event: CaptureEvent) {
        let id = event.connection.id
        switch event.kind {
        case .opened(let kind, _):
            if kind == "mqtt" {
                if skipped.insert(id).inserted { skippedConnections += 1 }
                return
            }
            if entries[id] == nil {
                order.append(id)
                entries[id] = Entry(connection: event.connection, start: event.time)
            }
        case .dissected(let dissected):
            guard entries[id] != nil else { return }
            switch dissected.kind {
            case .request(let request): entries[id]?.request = request
            case .response(let response, _):
                entries[id]?.response = response
                if let chosen = response.subprotocol?.lowercased() { entries[id]?.carriesMQTT = ["mqtt", "mqttv3.1"].contains(chosen) }
            case .webSocketMessage(let message, _):
                guard let direction = event.direction else { return }
                if entries[id]?.carriesMQTT == nil, direction == .clientToServer, message.opcode != .text {
                    entries[id]?.carriesMQTT = message.data.getInteger(at: message.data.readerIndex, as: UInt8.self) == 0x10
                }
                let written = Message(send: direction == .clientToServer, time: event.time,
                                      opcode: message.opcode == .text ? 1 : 2, data: Array(message.data.readableBytesView))
                if let redactor, entries[id]?.carriesMQTT == true, message.opcode != .text {
                    redactMQTT(written, entry: id, redactor: redactor)
                } else if let redactor, message.opcode == .text, let json = try? JSONReader.parse(message.data) {
                    let redacted = redactor.redact(json: json)
                    var out = written
                    if redacted != json { out.data = Array(redacted.description.utf8) }
                    entries[id]?.messages.append(out)
                } else {
                    entries[id]?.messages.append(written)
                }
            default:
                break
            }
        default:
            break
        }
    }

    /// Holds a message until its direction's MQTT stream is at a packet boundary, then writes
    /// what it held: as it was when no packet changed, else as re-encoded packets.
    private mutating func redactMQTT(_ message: Message, entry id: Int, redactor: Redactor) {
        // Moved out while it changes: a copy left in the dictionary would make every append copy
        // the connection's messages (quadratic on long captures).
        guard var entry = entries.removeValue(forKey: id) else { return }
        var stream = entry.streams[message.send] ?? RedactingStream(decoder: MQTTDecoder(configuration: .init(
            maximumPacketSize: 16 << 20, version: .v3_1_1, followsConnect: message.send)))
        if !message.send, let version = entry.streams[true]?.decoder.version { stream.decoder.version = version }
        stream.decoder.append(ByteBuffer(bytes: message.data))
        stream.held.append(message)
        do {
            while let packet = try stream.decoder.next() {
                var out = packet
                switch packet {
                case .connect(let connect) where connect.password != nil:
                    out = .connect(redactor.redact(connect: connect))
                case .publish(var publish):
                    if let json = try? JSONReader.parse(publish.payload) {
                        let redacted = redactor.redact(json: json)
                        if redacted != json {
                            publish.payload = ByteBuffer(string: redacted.description)
                            out = .publish(publish)
                        }
                    }
                default:
                    break
                }
                if out != packet { stream.changed = true }
                stream.packets.append(out)
            }
        } catch {
            // Not MQTT after all (or damaged): what is held is written as it came, unchanged
            // only where nothing decoded held a secret.
            stream.decoder.reset()
        }
        if stream.decoder.bufferedByteCount == 0 {
            if stream.changed {
                let encoder = MQTTEncoder(version: stream.decoder.version)
                var bytes: [UInt8] = []
                for packet in stream.packets {
                    if let encoded = try? encoder.encode(packet) { bytes += encoded.readableBytesView }
                }
                entry.messages.append(Message(send: message.send, time: message.time, opcode: 2, data: bytes))
            } else {
                entry.messages += stream.held
            }
            stream.held = []
            stream.packets = []
            stream.changed = false
        }
        entry.streams[message.send] = stream
        entries[id] = entry
    }

    /// The HAR file.
    public func json(creator: String) -> JSONValue {
        .object([
            JSONMember(key: "log", value: .object([
                JSONMember(key: "version", value: .string("1.2")),
                JSONMember(key: "creator", value: .object([JSONMember(key: "name", value: .string(creator)),
                                                           JSONMember(key: "version", value: .string("1"))])),
                JSONMember(key: "pages", value: .array([])),
                JSONMember(key: "entries", value: .array(order.compactMap { entries[$0].map(Self.entry) })),
            ])),
        ])
    }

    public var connectionCount: Int { entries.count }

    static func entry(_ entry: Entry) -> JSONValue {
        func headers(_ head: HTTPHeaders?) -> JSONValue {
            .array((head ?? HTTPHeaders()).map { .object([JSONMember(key: "name", value: .string($0.name)),
                                                           JSONMember(key: "value", value: .string($0.value))]) })
        }
        let request = entry.request
        let host = request?.headers.first(name: "Host") ?? entry.connection.server.description
        let secure = entry.connection.server.port == 443
        let url = "\(secure ? "wss" : "ws")://\(host)\(request?.target ?? "/")"
        let response = entry.response
        let messages: [JSONValue] = entry.messages.map { message in
            .object([
                JSONMember(key: "type", value: .string(message.send ? "send" : "receive")),
                JSONMember(key: "time", value: .number(String(format: "%.6f", message.time))),
                JSONMember(key: "opcode", value: .number(String(message.opcode))),
                JSONMember(key: "data", value: .string(message.opcode == 1 ? String(decoding: message.data, as: UTF8.self)
                                                        : Data(message.data).base64EncodedString())),
            ])
        }
        return .object([
            JSONMember(key: "startedDateTime", value: .string(isoDate(entry.start))),
            JSONMember(key: "time", value: .number("0")),
            JSONMember(key: "request", value: .object([
                JSONMember(key: "method", value: .string(request.map { "\($0.method.rawValue)" } ?? "GET")),
                JSONMember(key: "url", value: .string(url)),
                JSONMember(key: "httpVersion", value: .string("HTTP/1.1")),
                JSONMember(key: "headers", value: headers(request?.headers)),
                JSONMember(key: "queryString", value: .array([])),
                JSONMember(key: "cookies", value: .array([])),
                JSONMember(key: "headersSize", value: .number("-1")),
                JSONMember(key: "bodySize", value: .number("0")),
            ])),
            JSONMember(key: "response", value: .object([
                JSONMember(key: "status", value: .number(String(response?.status.code ?? 101))),
                JSONMember(key: "statusText", value: .string(response?.reasonPhrase ?? "Switching Protocols")),
                JSONMember(key: "httpVersion", value: .string("HTTP/1.1")),
                JSONMember(key: "headers", value: headers(response?.headers)),
                JSONMember(key: "cookies", value: .array([])),
                JSONMember(key: "content", value: .object([JSONMember(key: "size", value: .number("0")),
                                                           JSONMember(key: "mimeType", value: .string("x-unknown"))])),
                JSONMember(key: "redirectURL", value: .string("")),
                JSONMember(key: "headersSize", value: .number("-1")),
                JSONMember(key: "bodySize", value: .number("-1")),
            ])),
            JSONMember(key: "cache", value: .object([])),
            JSONMember(key: "timings", value: .object([JSONMember(key: "send", value: .number("0")),
                                                       JSONMember(key: "wait", value: .number("0")),
                                                       JSONMember(key: "receive", value: .number("0"))])),
            JSONMember(key: "serverIPAddress", value: .string(entry.connection.server.address.description)),
            JSONMember(key: "_resourceType", value: .string("websocket")),
            JSONMember(key: "_webSocketMessages", value: .array(messages)),
        ])
    }

    /// `2025-11-22T02:00:00.000Z` for epoch seconds.
    static func isoDate(_ seconds: Double) -> String {
        var time = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        let millis = Int(((seconds - seconds.rounded(.down)) * 1000).rounded(.down))
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }
}
