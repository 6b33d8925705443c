public import Dialects
public import MQTTWire
public import NIOCore
public import WebSocketWire

/// What the dissector found, in the order the bytes showed it.
public struct DissectorEvent: Sendable {
    public enum Kind: Sendable {
        case request(HTTPUpgradeRequest)
        case response(HTTPUpgradeResponse, problems: [WebSocketWireError])
        case frame(ParsedFrame)
        case mqtt(MQTTPacket, annotation: AnnotatedMessage?)
        case webSocketControl(WebSocketEvent)
        /// A violation, named by layer (`HTTP`, `WebSocket`, `MQTT`) and described with its offset.
        case error(layer: String, description: String)
    }

    public var direction: StreamDirection
    public var kind: Kind
    /// Framing anomalies around an MQTT packet: split across WebSocket messages, text
    /// frames, masking broken.
    public var warnings: [String]
}

/// One MQTT-over-WebSocket connection, both directions: HTTP Upgrade, WebSocket frames
/// and messages, MQTT packets (which may span messages or share one), Works annotation.
/// Secrets are redacted when a ``Redactor`` is given.
public struct ConnectionDissector {
    private struct Side {
        var webSocket: WebSocketStreamDecoder
        var mqtt: MQTTDecoder
        /// Bytes of an MQTT packet left over at the end of the last WebSocket message.
        var packetSpansMessages = false
        var messageWarnings: [String] = []
    }

    public let dialect: WorksDialect
    public let redactor: Redactor?
    /// Whether every WebSocket frame is reported too (for `-V` style output).
    public var reportsFrames: Bool
    private var client: Side
    private var server: Side
    private var request: HTTPUpgradeRequest?

    public init(redactor: Redactor?, reportsFrames: Bool = false, expectsHandshake: Bool = true) throws(WebSocketWireError) {
        dialect = WorksDialect()
        self.redactor = redactor
        self.reportsFrames = reportsFrames
        client = Side(webSocket: try WebSocketStreamDecoder(direction: .clientToServer, expectsHead: expectsHandshake),
                      mqtt: MQTTDecoder())
        server = Side(webSocket: try WebSocketStreamDecoder(direction: .serverToClient, expectsHead: expectsHandshake),
                      mqtt: MQTTDecoder())
    }

    public mutating func feed(_ bytes: ByteBuffer, direction: StreamDirection) -> [DissectorEvent] {
        var events: [DissectorEvent] = []
        var side = direction == .serverToClient ? server : client
        for event in side.webSocket.feed(bytes) {
            switch event {
            case .request(let request):
                self.request = request
                var shown = request
                if let redactor { shown.headers = redactor.redact(headers: request.headers) }
                events.append(DissectorEvent(direction: direction, kind: .request(shown), warnings: []))
            case .response(let response):
                let problems = request.map { WebSocketHandshake.problems(request: $0, response: response) } ?? []
                var shown = response
                if let redactor { shown.headers = redactor.redact(headers: response.headers) }
                if let deflate = PerMessageDeflateParameters(extensions: response.extensions) {
                    do {
                        // The server's own decoder turned it on when it read the response.
                        try client.webSocket.enableDeflate(deflate)
                    } catch {
                        events.append(DissectorEvent(direction: direction, kind: .error(layer: "WebSocket", description: "\(error)"), warnings: []))
                    }
                }
                events.append(DissectorEvent(direction: direction, kind: .response(shown, problems: problems), warnings: []))
            case .frame(let frame):
                if reportsFrames { events.append(DissectorEvent(direction: direction, kind: .frame(frame), warnings: [])) }
            case .message(let message):
                events += mqttPackets(in: message, side: &side, direction: direction)
            case .control(let control):
                events.append(DissectorEvent(direction: direction, kind: .webSocketControl(control), warnings: []))
            case .error(let error):
                events.append(DissectorEvent(direction: direction, kind: .error(layer: Self.layer(of: error), description: "\(error)"), warnings: []))
            }
        }
        if direction == .serverToClient { server = side } else { client = side }
        return events
    }

    private mutating func mqttPackets(in message: WebSocketMessage, side: inout Side, direction: StreamDirection) -> [DissectorEvent] {
        var warnings: [String] = []
        if message.opcode == .text { warnings.append("MQTT in a text frame (MQTT over WebSocket uses binary frames)") }
        if !message.anomalies.isEmpty { warnings.append("WebSocket: \(message.anomalies)") }
        side.mqtt.append(message.data)
        var events: [DissectorEvent] = []
        while true {
            do {
                guard let packet = try side.mqtt.next() else { break }
                var packetWarnings = side.messageWarnings + warnings
                if side.packetSpansMessages {
                    packetWarnings.append("MQTT packet split across WebSocket messages")
                    side.packetSpansMessages = false
                    side.messageWarnings = []
                }
                var shown = packet
                if case .connect(let connect) = packet {
                    // The server's packets are decoded with the version the client asked for.
                    server.mqtt.version = connect.protocolVersion
                    if let redactor { shown = .connect(redactor.redact(connect: connect)) }
                }
                var annotation: AnnotatedMessage?
                if case .publish(let publish) = packet { annotation = dialect.annotate(publish, redactor: redactor) }
                events.append(DissectorEvent(direction: direction, kind: .mqtt(shown, annotation: annotation), warnings: packetWarnings))
            } catch {
                events.append(DissectorEvent(direction: direction, kind: .error(layer: "MQTT", description: "\(error)"), warnings: warnings))
                if !error.isRecoverable {
                    // Packet boundaries are lost: start again at the next WebSocket message.
                    side.mqtt.reset()
                    break
                }
            }
        }
        if side.mqtt.bufferedByteCount > 0 {
            side.packetSpansMessages = true
            side.messageWarnings = warnings
        }
        return events
    }

    static func layer(of error: WebSocketWireError) -> String {
        String(error.description.prefix { $0 != " " })
    }
}
