import ByteStream
public import Dialects
public import MQTTWire
public import NIOCore
public import WebSocketWire

/// What the dissector found, in the order the bytes showed it.
public struct DissectorEvent: Sendable {
    /// The rare large cases are `indirect`, so that the common ones (an MQTT packet) are not
    /// moved about in a value as large as an HTTP head.
    public enum Kind: Sendable {
        indirect case request(HTTPUpgradeRequest)
        indirect case response(HTTPUpgradeResponse, problems: [WebSocketWireError])
        case frame(ParsedFrame)
        /// An MQTT packet; `range` is its place in this direction's MQTT byte stream.
        case mqtt(MQTTPacket, range: Range<Int>, annotation: AnnotatedMessage?)
        /// A WebSocket message of a connection that does not carry MQTT (or, for a HAR export,
        /// one that does), with its annotation when a JSON dialect (OneBot v11) recognised it.
        indirect case webSocketMessage(WebSocketMessage, annotation: AnnotatedMessage? = nil)
        /// A control frame; `meaning` names a close code (RFC 6455's, or the dialect's own).
        indirect case webSocketControl(WebSocketEvent, meaning: String? = nil)
        /// Packets or frames were found again after lost bytes; `skipped` bytes were passed over.
        case resynchronized(layer: String, skipped: Int)
        /// A violation, named by layer (`HTTP`, `WebSocket`, `MQTT`) and described with its offset.
        case error(layer: String, description: String)
    }

    public var direction: StreamDirection
    public var kind: Kind
    /// Framing anomalies around an MQTT packet: split across WebSocket messages, text
    /// frames, masking broken.
    public var warnings: [String]
    /// A Works annotation left for later (``ConnectionDissector/defersWorksAnnotation``):
    /// ``completeAnnotation()`` makes it, on any thread.
    public var deferredWorks: DeferredWorksAnnotation?
    /// For an MQTT 5.0 PUBLISH that named its topic by a Topic Alias only: the alias. The
    /// packet's topic is then the one the alias stands for on this connection and direction.
    public var topicFromAlias: UInt16?
    /// Where in this direction's byte stream (the offsets of ``ConnectionDissector/nextStreamOffset(_:)``)
    /// the bytes that completed the event end, when known: a capture names the frame that
    /// brought them, also when the event comes later (a decoder that looked for its place again
    /// holds bytes until several units agree).
    public var streamEnd: Int?

    public init(direction: StreamDirection, kind: Kind, warnings: [String], deferredWorks: DeferredWorksAnnotation? = nil,
                topicFromAlias: UInt16? = nil, streamEnd: Int? = nil) {
        self.direction = direction
        self.kind = kind
        self.warnings = warnings
        self.deferredWorks = deferredWorks
        self.topicFromAlias = topicFromAlias
        self.streamEnd = streamEnd
    }
}

/// What the Works annotation of a PUBLISH needs besides the packet: it depends on nothing else
/// of the connection, so it can be made later and elsewhere (wmq-decode makes it on the thread
/// that writes the JSON Lines).
public struct DeferredWorksAnnotation: Sendable {
    let redactor: Redactor?
    /// Below `likely` confidence, only payloads that are Works messages themselves are annotated.
    let onlyWorksKinds: Bool

    func annotate(_ publish: PublishPacket) -> AnnotatedMessage? {
        // Below `likely`, a payload that cannot be a Works kind would be annotated only to be
        // dropped: tell so from its top-level keys first.
        if onlyWorksKinds && !WorksPayload.mayBeWorksKind(publish.payload) { return nil }
        let candidate = WorksDialect().annotate(publish, redactor: redactor)
        return !onlyWorksKinds || ConnectionDissector.worksKinds.contains(candidate.kind) ? candidate : nil
    }

    /// The JSON of `annotate(publish)` appended straight from the payload, when it is a
    /// notification (a Works kind, so `onlyWorksKinds` keeps it) of the common shape; false,
    /// with nothing written, otherwise.
    func writeJSON(_ publish: PublishPacket, to out: inout ByteWriter) -> Bool {
        WorksDialect().writeAnnotationJSON(of: publish, redactor: redactor, to: &out)
    }
}

extension DissectorEvent {
    /// Makes the Works annotation that was left for later, if any.
    public mutating func completeAnnotation() {
        guard let deferred = deferredWorks.take(), case .mqtt(let packet, let range, nil) = kind,
              case .publish(let publish) = packet else { return }
        kind = .mqtt(packet, range: range, annotation: deferred.annotate(publish))
    }
}

/// One connection, both directions: HTTP Upgrade, WebSocket frames and messages, MQTT
/// packets (which may span messages or share one) or MQTT straight over TCP, Works
/// annotation. Secrets are redacted when a ``Redactor`` is given.
public struct ConnectionDissector {
    public enum Transport: Sendable, Hashable {
        /// MQTT inside WebSocket; `expectsHandshake` is false for a connection joined midstream.
        case webSocket(expectsHandshake: Bool)
        /// MQTT straight over TCP.
        case mqtt
    }

    /// What a compressed WebSocket message may inflate to: a message, and all the messages of
    /// one direction of the connection together. Past either, the message is not inflated and
    /// an error says so; the rest of the connection is still read.
    public struct InflationLimits: Sendable, Hashable {
        public var perMessage: Int
        public var perDirection: Int
        public init(perMessage: Int = 16 << 20, perDirection: Int = 256 << 20) {
            self.perMessage = perMessage
            self.perDirection = perDirection
        }
    }

    /// WebSocket subprotocols that carry MQTT (MQTT 3.1.1 and 5.0 §6; `mqttv3.1` for 3.1).
    public static let mqttSubprotocols: Set<String> = ["mqtt", "mqttv3.1", "mqttv5"]

    /// One direction's decoders. A class, changed where it lives: a struct of this size (about
    /// 600 bytes) was moved out of the dissector and back for every segment, and the dissector
    /// (twice that) out of its connection's entry, so that memcpy was a twentieth of `--stats`.
    /// A copy of the dissector shares its sides until either changes one (``side(_:)``).
    private final class Side {
        var webSocket: WebSocketStreamDecoder
        var mqtt: MQTTDecoder
        /// Bytes of an MQTT packet left over at the end of the last WebSocket message.
        var packetSpansMessages = false
        var messageWarnings: [String] = []
        /// MQTT 5.0 Topic Aliases this direction's sender set (§3.3.2.3.4): alias to topic.
        var topicAliases: [UInt16: String] = [:]

        init(webSocket: WebSocketStreamDecoder, mqtt: MQTTDecoder) {
            self.webSocket = webSocket
            self.mqtt = mqtt
        }

        func copy() -> Side {
            let copy = Side(webSocket: webSocket, mqtt: mqtt)
            copy.packetSpansMessages = packetSpansMessages
            copy.messageWarnings = messageWarnings
            copy.topicAliases = topicAliases
            return copy
        }
    }

    public let transport: Transport
    public let dialect: WorksDialect
    public let redactor: Redactor?
    /// Whether every WebSocket frame is reported too (for `-V` style output).
    public let reportsFrames: Bool
    /// Whether PUBLISH payloads are annotated (statistics do without).
    public var annotates = true
    /// Whether the Works annotation of PUBLISH payloads is left to the events' consumer
    /// (``DissectorEvent/completeAnnotation()``), which may make it on another thread.
    public var defersWorksAnnotation = false
    /// Whether JSON messages of connections without MQTT are annotated and their secrets redacted.
    public var annotatesMessages = true
    /// Whether WebSocket messages that carry MQTT are reported too (as `.webSocketMessage`,
    /// before their packets): what a HAR export writes.
    public var reportsMessages = false
    /// For WebSocket: whether the messages are MQTT. Decided by the subprotocol the server
    /// chose, else by the first client message (a CONNECT); assumed when joined midstream.
    public private(set) var carriesMQTT: Bool?
    /// The MQTT version the client's CONNECT asked for, once one was read.
    public private(set) var connectVersion: ProtocolVersion?
    private var client: Side
    private var server: Side
    private var request: HTTPUpgradeRequest?
    /// How sure the Works dialect is, from the handshake and the CONNECT, that this
    /// connection is a Works one. Below `likely`, only payloads that are Works messages
    /// themselves are annotated, so other MQTT traffic is not flagged as broken Works.
    public private(set) var worksConfidence = DetectionConfidence.none

    /// - Parameter mqttVersion: the MQTT version to read packets with until a CONNECT says
    ///   otherwise (what `--assume PORT=mqtt5` or the packets of a connection joined midstream tell).
    public init(transport: Transport = .webSocket(expectsHandshake: true), redactor: Redactor?,
                reportsFrames: Bool = false, mqttVersion: ProtocolVersion? = nil,
                inflation: InflationLimits = InflationLimits()) throws(WebSocketWireError) {
        self.transport = transport
        dialect = WorksDialect()
        self.redactor = redactor
        self.reportsFrames = reportsFrames
        let expectsHead: Bool
        switch transport {
        case .webSocket(let expectsHandshake):
            expectsHead = expectsHandshake
            carriesMQTT = expectsHandshake ? nil : true
        case .mqtt:
            expectsHead = false
            carriesMQTT = true
        }
        var clientStream = try WebSocketStreamDecoder(direction: .clientToServer, expectsHead: expectsHead,
                                                      maximumMessageSize: inflation.perMessage,
                                                      maximumInflatedBytes: inflation.perDirection)
        var serverStream = try WebSocketStreamDecoder(direction: .serverToClient, expectsHead: expectsHead,
                                                      maximumMessageSize: inflation.perMessage,
                                                      maximumInflatedBytes: inflation.perDirection)
        clientStream.reportsFrames = reportsFrames
        serverStream.reportsFrames = reportsFrames
        let mqttConfiguration = MQTTDecoder.Configuration(version: mqttVersion ?? .v3_1_1)
        client = Side(webSocket: clientStream, mqtt: MQTTDecoder(configuration: mqttConfiguration))
        server = Side(webSocket: serverStream, mqtt: MQTTDecoder(configuration: mqttConfiguration))
    }

    /// Says whether the WebSocket messages carry MQTT, for a connection joined midstream
    /// whose handshake (and subprotocol) the capture does not hold.
    public mutating func assumeCarriesMQTT(_ value: Bool) {
        carriesMQTT = value
    }

    /// The capture joined this direction midstream and its first unit (frame or packet)
    /// starts at stream offset `offset`: the bytes fed next start at the beginning of the
    /// stream, and those before `offset` are passed over (reported when there are any).
    public mutating func begin(_ direction: StreamDirection, atStreamOffset offset: Int) -> DissectorEvent? {
        let side = side(direction)
        switch transport {
        case .webSocket:
            side.webSocket.begin(atStreamOffset: offset)
            side.mqtt.reset()
            side.packetSpansMessages = false
        case .mqtt:
            side.mqtt.reset(streamOffset: offset)
        }
        guard offset > 0 else { return nil }
        let layer = transport == .mqtt ? "MQTT" : "WebSocket"
        return DissectorEvent(direction: direction, kind: .resynchronized(layer: layer, skipped: offset), warnings: [])
    }

    /// A direction's side, to be changed: this dissector's own, copied first if a copy of the
    /// dissector shares it (value semantics).
    private mutating func side(_ direction: StreamDirection) -> Side {
        if direction == .serverToClient {
            if !isKnownUniquelyReferenced(&server) { server = server.copy() }
            return server
        }
        if !isKnownUniquelyReferenced(&client) { client = client.copy() }
        return client
    }

    /// The stream offset the next byte fed in `direction` will have (events' ``DissectorEvent/streamEnd``
    /// count in these offsets).
    public func nextStreamOffset(_ direction: StreamDirection) -> Int {
        let side = direction == .serverToClient ? server : client
        switch transport {
        case .webSocket: return side.webSocket.nextOffset
        case .mqtt: return side.mqtt.offset + side.mqtt.bufferedByteCount
        }
    }

    /// Bytes of one direction were lost (`count`, or unknown when the capture joined the
    /// connection midstream): decoding resumes at the next recognisable boundary.
    public mutating func lost(_ count: Int?, direction: StreamDirection) {
        let side = side(direction)
        switch transport {
        case .webSocket:
            side.webSocket.lost(count)
            side.mqtt.reset()
            side.packetSpansMessages = false
        case .mqtt:
            side.mqtt.lost(count)
        }
    }

    /// `time` (epoch seconds) of the bytes, when known: it times what dialects time (Discord's heartbeats).
    public mutating func feed(_ bytes: ByteBuffer, direction: StreamDirection, time: Double? = nil) -> [DissectorEvent] {
        var events: [DissectorEvent] = []
        feed(bytes, direction: direction, time: time) { events.append($0) }
        return events
    }

    /// As ``feed(_:direction:time:)``, giving each event to `emit` as it is found instead of
    /// gathering them in an array.
    public mutating func feed(_ bytes: ByteBuffer, direction: StreamDirection, time: Double? = nil,
                              emit: (consuming DissectorEvent) -> Void) {
        self.time = time
        let side = side(direction)
        switch transport {
        case .webSocket: feedWebSocket(bytes, side: side, direction: direction, emit: emit)
        case .mqtt:
            side.mqtt.append(bytes)
            drainMQTT(side: side, direction: direction, warnings: [], emit: emit)
        }
    }

    private mutating func feedWebSocket(_ bytes: ByteBuffer, side: Side, direction: StreamDirection,
                                        emit: (consuming DissectorEvent) -> Void) {
        // Each event is handled as the decoder finds it. Handling one changes only this
        // dissector and the other direction's side (the client's decoder when the server's
        // response arrives, the server's MQTT version when the client's CONNECT does).
        side.webSocket.feed(bytes) { event in
            handle(event, side: side, direction: direction, emit: emit)
        }
    }

    private mutating func handle(_ event: consuming WebSocketStreamDecoder.Event, side: Side, direction: StreamDirection,
                                 emit: (consuming DissectorEvent) -> Void) {
        func add(_ kind: DissectorEvent.Kind, _ warnings: [String] = [], end: Int? = nil) {
            emit(DissectorEvent(direction: direction, kind: kind, warnings: warnings, streamEnd: end))
        }
        switch consume event {
        case .request(let request):
            self.request = request
            worksConfidence = max(worksConfidence, dialect.detect(DetectionEvidence(request: request)))
            if request.target.contains("compress=zlib-stream") { zlibStream = try? ZlibStreamReader() }
            var shown = request
            if let redactor {
                shown.headers = redactor.redact(headers: request.headers)
                shown.target = redactor.redact(target: request.target)
            }
            add(.request(shown))
        case .response(let response):
            let problems = request.map { WebSocketHandshake.problems(request: $0, response: response) } ?? []
            var shown = response
            if let redactor { shown.headers = redactor.redact(headers: response.headers) }
            if response.status != .switchingProtocols {
                // Refused: both directions go on in HTTP, which is not decoded.
                self.side(.clientToServer).webSocket.stop()
            } else if let chosen = response.subprotocol {
                carriesMQTT = Self.mqttSubprotocols.contains(chosen.lowercased())
            }
            if let deflate = PerMessageDeflateParameters(extensions: response.extensions) {
                do {
                    // The server's own decoder turned it on when it read the response.
                    try self.side(.clientToServer).webSocket.enableDeflate(deflate)
                } catch {
                    add(.error(layer: "WebSocket", description: "\(error)"))
                }
            }
            add(.response(shown, problems: problems))
        case .frame(let frame):
            if reportsFrames { add(.frame(frame), end: frame.endOffset) }
        case .message(let message):
            if carriesMQTT == nil {
                // No subprotocol was chosen: MQTT if the client opens with a CONNECT.
                carriesMQTT = direction == .clientToServer && message.data.readableBytes > 0
                    && message.data.getInteger(at: message.data.readerIndex, as: UInt8.self) == 0x10
            }
            if carriesMQTT == true {
                if reportsMessages { add(.webSocketMessage(message), end: message.range.upperBound) }
                mqttPackets(in: message, side: side, direction: direction, emit: emit)
            } else {
                var shown = message
                if zlibStream != nil, direction == .serverToClient, message.opcode == .binary {
                    // Discord's zlib-stream: pieces are shown once whole, as the text they inflate to.
                    do {
                        guard let text = try zlibStream?.read(message.data, offset: message.range.lowerBound) else { return }
                        shown.data = text
                        shown.opcode = .text
                        shown.wasCompressed = true
                    } catch {
                        add(.error(layer: "zlib-stream", description: "\(error)"))
                    }
                }
                let annotation = annotatesMessages ? annotateJSON(&shown) : nil
                add(.webSocketMessage(shown, annotation: annotation), end: shown.range.upperBound)
            }
        case .control(let control):
            var meaning: String?
            if case .close(let close, _) = control, let code = close.code {
                // The dialect's name for its own codes, else RFC 6455's.
                meaning = (carriesMQTT == true ? nil : jsonChats.closeCodeName(code)) ?? WebSocketClose.name(of: code)
            }
            add(.webSocketControl(control, meaning: meaning))
        case .error(let error):
            add(.error(layer: Self.layer(of: error), description: "\(error)"))
        case .resynchronized(let offset, let skipped):
            // Named with the frame that brought the first byte of the unit found again.
            add(.resynchronized(layer: "WebSocket", skipped: skipped), end: offset + skipped + 1)
        }
    }

    /// The Discord gateway's `compress=zlib-stream`: the server's binary messages are one zlib
    /// stream, inflated piece by piece (a piece ends with 00 00 FF FF, maybe several messages on).
    private var zlibStream: ZlibStreamReader?

    /// What the JSON chat dialects (OneBot v11, CocoroCore, Discord) keep across messages.
    private lazy var jsonChats = JSONChatAnnotator(redactor: redactor)
    /// The time of the bytes being fed.
    private var time: Double?
    /// The chat-topic tree's replies streamed on this connection.
    private var chatReplies = ChatReplies()

    /// A JSON message: its secret members (`token`, …) as pseudonyms when redacting, and its
    /// annotation when a JSON chat dialect recognises it.
    private mutating func annotateJSON(_ message: inout WebSocketMessage) -> AnnotatedMessage? {
        guard let first = message.data.getInteger(at: message.data.readerIndex, as: UInt8.self), first == UInt8(ascii: "{"),
              let json = try? JSONReader.parse(message.data) else { return nil }
        if let redactor {
            let redacted = redactor.redact(json: json)
            if redacted != json { message.data = ByteBuffer(string: redacted.description) }
        }
        return jsonChats.annotate(json, time: time)
    }

    private mutating func mqttPackets(in message: WebSocketMessage, side: Side, direction: StreamDirection,
                                      emit: (consuming DissectorEvent) -> Void) {
        var warnings: [String] = []
        if message.opcode == .text { warnings.append("MQTT in a text frame (MQTT over WebSocket uses binary frames)") }
        if !message.anomalies.isEmpty { warnings.append("WebSocket: \(message.anomalies)") }
        side.mqtt.append(message.data)
        drainMQTT(side: side, direction: direction, warnings: warnings, end: message.range.upperBound, emit: emit)
        if side.mqtt.bufferedByteCount > 0 {
            side.packetSpansMessages = true
            side.messageWarnings = warnings
        }
    }

    /// `end`: where the WebSocket message that brought the bytes ends in the connection's
    /// stream (nil for MQTT over TCP, whose packets' own ranges are stream offsets).
    private mutating func drainMQTT(side: Side, direction: StreamDirection, warnings: [String], end: Int? = nil,
                                    emit: (consuming DissectorEvent) -> Void) {
        let wasScanning = side.mqtt.isScanning
        // Whether this drain gave anything yet: a resynchronisation is reported before its first packet only.
        var gaveNothing = true
        while true {
            do {
                // Without a CONNECT the version is a guess, which a packet only 5.0 reads
                // corrects; asked before each packet, as a CONNECT in these bytes ends the guess.
                side.mqtt.infersVersion = connectVersion == nil
                let guessed = side.mqtt.version
                guard var shown = try side.mqtt.next() else { break }
                if side.mqtt.version != guessed, connectVersion == nil {
                    // The other direction speaks the same version.
                    self.side(direction == .clientToServer ? .serverToClient : .clientToServer).mqtt.version = side.mqtt.version
                }
                let streamEnd = end ?? side.mqtt.lastPacketRange.upperBound
                if wasScanning && gaveNothing {
                    emit(DissectorEvent(direction: direction,
                                        kind: .resynchronized(layer: "MQTT", skipped: side.mqtt.skippedWhileScanning),
                                        warnings: [], streamEnd: streamEnd))
                }
                var packetWarnings = warnings
                if side.packetSpansMessages {
                    packetWarnings = side.messageWarnings + warnings + ["MQTT packet split across WebSocket messages"]
                    side.packetSpansMessages = false
                    side.messageWarnings = []
                }
                // The packet is changed in place and moved into its event, never copied: a
                // copy retains every buffer and string in it.
                var topicFromAlias: UInt16?
                if case .publish(var publish) = shown, let alias = publish.properties.topicAlias {
                    // Aliases are per connection and direction: set by a PUBLISH with a topic,
                    // used by one without.
                    if publish.topicName.isEmpty {
                        if let topic = side.topicAliases[alias] {
                            publish.topicName = topic
                            topicFromAlias = alias
                            shown = .publish(publish)
                        } else {
                            packetWarnings.append("Topic Alias \(alias) was not set on this connection before [MQTT-3.3.2-7]")
                        }
                    } else {
                        side.topicAliases[alias] = publish.topicName
                    }
                }
                if case .connect(let connect) = shown {
                    // A new session: the aliases of the last one are gone.
                    side.topicAliases = [:]
                    // The server's packets are decoded with the version the client asked for.
                    // (Only the other side is asked for here: asking for this one while its
                    // decoder runs would copy it, `side` being a second reference.)
                    if direction == .clientToServer {
                        self.side(.serverToClient).topicAliases = [:]
                        self.side(.serverToClient).mqtt.version = connect.protocolVersion
                        connectVersion = connect.protocolVersion
                    }
                    worksConfidence = max(worksConfidence, dialect.detect(DetectionEvidence(mqttPackets: [shown])))
                    if let redactor { shown = .connect(redactor.redact(connect: connect)) }
                }
                var annotation: AnnotatedMessage?
                var deferred: DeferredWorksAnnotation?
                if annotates, let topic = shown.publishTopic {
                    if ChatTopicDialect.recognises(topic: topic), case .publish(let publish) = shown {
                        var chat = ChatTopicDialect().annotate(publish, redactor: redactor)
                        chatReplies.follow(publish, annotation: &chat)
                        annotation = chat
                    } else {
                        let works = DeferredWorksAnnotation(redactor: redactor, onlyWorksKinds: worksConfidence < .likely)
                        if defersWorksAnnotation {
                            deferred = works
                        } else if case .publish(let publish) = shown {
                            annotation = works.annotate(publish)
                        }
                    }
                }
                gaveNothing = false
                emit(DissectorEvent(direction: direction,
                                    kind: .mqtt(consume shown, range: side.mqtt.lastPacketRange, annotation: annotation),
                                    warnings: packetWarnings, deferredWorks: deferred, topicFromAlias: topicFromAlias,
                                    streamEnd: streamEnd))
            } catch {
                gaveNothing = false
                if direction == .clientToServer, error.packetType == .connect {
                    // A CONNECT that broke a rule still named its version (the decoder took it
                    // from the protocol level): the server's packets are read with it too.
                    let asked = side.mqtt.version
                    self.side(.serverToClient).mqtt.version = asked
                    connectVersion = asked
                }
                emit(DissectorEvent(direction: direction, kind: .error(layer: "MQTT", description: "\(error)"), warnings: warnings))
                if !error.isRecoverable {
                    // Packet boundaries are lost: find them again.
                    if case .mqtt = transport { side.mqtt.lost(0) } else { side.mqtt.reset() }
                    break
                }
            }
        }
    }

    /// Annotation kinds that are Works messages in their own right.
    public static let worksKinds: Set<String> = ["notification", "read-receipt", "channel-message"]

    static func layer(of error: WebSocketWireError) -> String {
        String(error.description.prefix { $0 != " " })
    }
}
