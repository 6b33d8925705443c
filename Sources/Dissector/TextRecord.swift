import ByteStream
import Capture
import Dialects
import MQTTWire
import NIOCore
import WebSocketWire

/// The text form of a ``CaptureEvent``: one line per MQTT packet (time relative to the
/// first frame, connection, endpoints, packet), the Works summary under PUBLISH, and
/// with `verbose` every field of every layer.
public enum TextRecord {
    /// With `colored`, the lines carry ANSI colours for a terminal (``TextColours``).
    public static func lines(_ event: CaptureEvent, startTime: Double, verbose: Bool, colored: Bool) -> [String] {
        let plain = lines(event, startTime: startTime, verbose: verbose)
        guard colored, let first = plain.first else { return plain }
        let width = pad(format(event.time - startTime), 11).count + 2 + "c\(event.connection.id)".count + 2
        return plain.map { line in
            guard line == first else { return TextColours.indented(line) }
            return TextColours.head(line, prefix: width, direction: event.direction)
        }
    }

    public static func lines(_ event: CaptureEvent, startTime: Double, verbose: Bool) -> [String] {
        let time = pad(format(event.time - startTime), 11)
        let connection = "c\(event.connection.id)"
        let route: String
        if let direction = event.direction {
            route = "\(event.connection.source(of: direction)) → \(event.connection.destination(of: direction))"
        } else {
            route = "\(event.connection.client) ⇄ \(event.connection.server)"
        }
        let head = "\(time)  \(connection)  \(route)  "
        let indent = String(repeating: " ", count: 15)
        switch event.kind {
        case .opened(let proto, let how):
            return [head + "open \(proto) (\(how)\(event.connection.joinedMidstream ? ", joined midstream" : ""))"]
        case .gap(let bytes):
            return [head + "⚠ gap: \(bytes) bytes not captured"]
        case .closed(let reason):
            return [head + "closed (\(reason))"]
        case .ignored(let reason):
            return [head + "not decoded: \(reason)"]
        case .dissected(let dissected):
            var lines: [String] = []
            switch dissected.kind {
            case .request(let request):
                lines.append(head + "HTTP \(request.method.rawValue) \(request.target) "
                             + (request.subprotocols.isEmpty ? "no subprotocol offered" : "subprotocols \(request.subprotocols.joined(separator: ","))"))
                if verbose { lines += request.headers.map { "\(indent)\($0.name): \($0.value)" } }
            case .response(let response, let problems):
                lines.append(head + "HTTP \(response.status.code) \(response.reasonPhrase) · subprotocol \(response.subprotocol ?? "none")"
                             + (problems.isEmpty ? "" : " · \(problems.count) handshake problem(s)"))
                if verbose { lines += response.headers.map { "\(indent)\($0.name): \($0.value)" } }
                lines += problems.map { "\(indent)✗ \($0)" }
            case .frame(let frame):
                lines.append(head + "WebSocket frame \(DecodeRecord.opcodeName(frame.opcode)) fin=\(frame.fin ? 1 : 0)"
                             + " \(frame.length) bytes\(frame.maskKey == nil ? "" : " masked") @\(frame.offset)")
            case .mqtt(let packet, let range, let annotation):
                lines.append(head + "\(packet)" + (dissected.topicFromAlias.map { " (topic from alias \($0))" } ?? ""))
                if verbose {
                    for member in DecodeRecord.mqttFields(packet, range: range, showsSecrets: false).dropFirst() {
                        lines.append("\(indent)\(member.key) = \(member.value.stringValue ?? member.value.description)")
                    }
                    if case .publish(let publish) = packet, annotation == nil {
                        lines.append("\(indent)payload = \(payloadPreview(publish.payload))")
                    }
                }
                if let annotation {
                    lines.append("\(indent)▸ \(annotation.summary)")
                    if verbose { lines += annotation.fields.map { "\(indent)  \($0.name) = \($0.value)" } }
                    lines += annotation.warnings.map { "\(indent)⚠ \($0)" }
                }
            case .webSocketMessage(let message, let annotation):
                guard let annotation else {
                    let body = message.text.map { " \"\(WorksTextLimit.cut($0))\"" } ?? ""
                    lines.append(head + "WebSocket \(DecodeRecord.opcodeName(message.opcode)) message \(message.data.readableBytes) bytes\(body)")
                    break
                }
                lines.append(head + "\(annotation.dialect) \(annotation.kind) \(message.data.readableBytes) bytes")
                lines.append("\(indent)▸ \(annotation.summary)")
                if verbose { lines += annotation.fields.map { "\(indent)  \($0.name) = \($0.value)" } }
                lines += annotation.warnings.map { "\(indent)⚠ \($0)" }
            case .webSocketControl(let control, let meaning):
                switch control {
                case .ping(let data, _): lines.append(head + "WebSocket ping \(data.readableBytes) bytes")
                case .pong(let data, _): lines.append(head + "WebSocket pong \(data.readableBytes) bytes")
                case .close(let close, _):
                    lines.append(head + "WebSocket close \(close.code.map(String.init) ?? "(no code)")"
                                 + (meaning.map { " (\($0))" } ?? "") + (close.reason.isEmpty ? "" : " \"\(close.reason)\""))
                case .message(let message): lines.append(head + "WebSocket message \(message.data.readableBytes) bytes")
                }
            case .resynchronized(let layer, let skipped):
                lines.append(head + "\(layer) resynchronized after skipping \(skipped) bytes")
            case .error(let layer, let description):
                lines.append(head + "✗ \(description.hasPrefix(layer) ? description : "\(layer) \(description)")")
            }
            lines += dissected.warnings.map { "\(indent)⚠ \($0)" }
            return lines
        }
    }

    /// A payload as text when it is UTF-8 (newlines as ⏎), else as hex; cut at 200 bytes.
    static func payloadPreview(_ payload: ByteBuffer) -> String {
        let limit = 200
        let shown = payload.getSlice(at: payload.readerIndex, length: min(limit, payload.readableBytes)) ?? ByteBuffer()
        let more = payload.readableBytes > limit ? "… (\(payload.readableBytes) bytes)" : ""
        if let text = String(validating: shown.readableBytesView, as: UTF8.self),
           !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
            return "\"\(text.replacing("\n", with: "⏎"))\"" + more
        }
        return "0x" + Hex.string(shown.readableBytesView, separator: "") + more
    }

    static func format(_ seconds: Double) -> String { DecodeRecord.formatTime(seconds) }

    public static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}

enum WorksTextLimit {
    static func cut(_ text: String) -> String {
        let flat = text.replacing("\n", with: "⏎")
        return flat.count > 120 ? String(flat.prefix(120)) + "…" : flat
    }
}

/// Which events to keep: `--connection`, `--type`, `--topic`, time range.
public struct EventFilter: Sendable {
    public var connections: Set<Int> = []
    /// Packet type names in upper case, as the spec writes them.
    public var types: Set<String> = []
    public var topicFilters: [String] = []
    /// Seconds relative to the first frame.
    public var from: Double?
    public var to: Double?

    public init() {}

    public var isEmpty: Bool { connections.isEmpty && types.isEmpty && topicFilters.isEmpty && from == nil && to == nil }

    public func keeps(_ event: CaptureEvent, startTime: Double) -> Bool {
        if !connections.isEmpty && !connections.contains(event.connection.id) { return false }
        let relative = event.time - startTime
        if let from, relative < from { return false }
        if let to, relative > to { return false }
        guard !types.isEmpty || !topicFilters.isEmpty else { return true }
        // Type and topic filters select MQTT packets only.
        guard case .dissected(let dissected) = event.kind, case .mqtt(let packet, _, _) = dissected.kind else { return false }
        if !types.isEmpty && !types.contains(packet.type.description) { return false }
        if !topicFilters.isEmpty {
            guard case .publish(let publish) = packet else { return false }
            return topicFilters.contains { TopicMatching.matches(filter: $0, topic: publish.topicName) }
        }
        return true
    }
}

/// ANSI colours for text on a terminal, as tshark-like tools use them: the connection bold,
/// each direction its colour, packet types by family, warnings yellow, errors red, notes dim.
public enum TextColours {
    static let reset = "\u{1B}[0m"
    static let bold = "\u{1B}[1m"
    static let dim = "\u{1B}[2m"
    static let red = "\u{1B}[31m"
    static let green = "\u{1B}[32m"
    static let yellow = "\u{1B}[33m"
    static let blue = "\u{1B}[34m"
    static let magenta = "\u{1B}[35m"
    static let cyan = "\u{1B}[36m"

    /// The colour of a packet type's family: data green, acknowledgements blue, the session's
    /// own packets (CONNECT, DISCONNECT, pings) yellow, subscriptions magenta.
    static func colour(ofType word: Substring) -> String? {
        switch word {
        case "PUBLISH": green
        case "PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "SUBACK", "UNSUBACK", "CONNACK": blue
        case "CONNECT", "DISCONNECT", "PINGREQ", "PINGRESP", "AUTH": yellow
        case "SUBSCRIBE", "UNSUBSCRIBE": magenta
        default: nil
        }
    }

    /// An event's first line: time and connection (the first `prefix` characters), route, body.
    static func head(_ line: String, prefix: Int, direction: FlowDirection?) -> String {
        let start = line.prefix(prefix)
        let rest = line.dropFirst(prefix)
        guard let split = rest.range(of: "  ") else { return line }
        let route = rest[..<split.lowerBound]
        let body = rest[split.upperBound...]
        let time = start.prefix(11)
        let connection = start.dropFirst(11)
        let routeColour = direction == .clientToServer ? cyan : direction == .serverToClient ? magenta : dim
        return dim + time + reset + bold + connection + reset + routeColour + route + reset + "  " + Self.body(body)
    }

    static func body(_ body: Substring) -> String {
        if body.hasPrefix("✗") { return red + body + reset }
        if body.hasPrefix("⚠") { return yellow + body + reset }
        if body.hasPrefix("open ") || body.hasPrefix("closed ") || body.hasPrefix("not decoded") { return dim + body + reset }
        let word = body.prefix { $0 != " " }
        guard let colour = colour(ofType: word) else { return String(body) }
        return bold + colour + word + reset + body.dropFirst(word.count)
    }

    /// A line under an event: a warning, an error, a Works summary, a field.
    static func indented(_ line: String) -> String {
        let text = line.drop { $0 == " " }
        let indent = line.prefix(line.count - text.count)
        if text.hasPrefix("✗") { return indent + red + text + reset }
        if text.hasPrefix("⚠") { return indent + yellow + text + reset }
        if text.hasPrefix("▸") { return indent + green + "▸" + reset + text.dropFirst() }
        return line
    }
}
