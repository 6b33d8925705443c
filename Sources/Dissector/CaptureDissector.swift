import ByteStream
public import Capture
public import Dialects
import MQTTWire
import NIOCore
import WebSocketWire

/// What a capture held, connection by connection, in capture order.
public struct CaptureEvent: Sendable {
    public enum Kind: Sendable {
        /// A connection was recognised as `protocol` (`ws-mqtt`, `ws`, `mqtt`), with `how` it was told.
        case opened(protocol: String, how: String)
        case dissected(DissectorEvent)
        /// Bytes of one direction that the capture does not hold.
        case gap(bytes: Int)
        case closed(reason: String)
        /// A connection that carries neither WebSocket nor MQTT; its bytes are not decoded.
        case ignored(reason: String)
    }

    public var connection: Connection
    /// nil for events of the whole connection.
    public var direction: FlowDirection?
    /// The frame, and its time, whose bytes completed the event.
    public var frame: Int
    public var time: Double
    public var kind: Kind

    public init(connection: Connection, direction: FlowDirection?, frame: Int, time: Double, kind: Kind) {
        self.connection = connection
        self.direction = direction
        self.frame = frame
        self.time = time
        self.kind = kind
    }
}

extension CaptureEvent {
    /// Makes the Works annotation left for later (``CaptureDissector/Options/defersWorksAnnotation``), if any.
    public mutating func completeAnnotation() {
        guard case .dissected(var dissected) = kind, dissected.deferredWorks != nil else { return }
        dissected.completeAnnotation()
        kind = .dissected(dissected)
    }
}

/// From TCP segments to annotated events: follows connections (``ConnectionTracker``),
/// recognises what each carries from its first bytes, never from the port alone (HTTP
/// Upgrade on any port, MQTT by its CONNECT, heuristics for connections joined midstream,
/// `assume` to force), and runs a ``ConnectionDissector`` on each.
public struct CaptureDissector {
    /// What `--assume PORT=…` forces for connections on a server port.
    public enum Assumption: String, Sendable, Hashable {
        case webSocketMQTT = "ws-mqtt"
        case mqtt
    }

    public struct Options: Sendable {
        public var redactor: Redactor?
        public var reportsFrames = false
        /// WebSocket messages carrying MQTT reported as messages too (HAR export).
        public var reportsMessages = false
        /// Decrypts TLS connections whose secrets it holds (`--keylog`).
        public var keyLog: TLSKeyLog?
        /// Whether PUBLISH payloads are annotated (`--stats` does without).
        public var annotates = true
        /// Whether the Works annotation of PUBLISH payloads is left to the consumer of the
        /// events (``CaptureEvent/completeAnnotation()``), which may make it on another thread.
        public var defersWorksAnnotation = false
        /// Whether the JSON messages of connections that do not carry MQTT are annotated (and
        /// counted by dialect in `--stats`); the HAR export does without.
        public var annotatesMessages = true
        public var assumptions: [UInt16: Assumption] = [:]
        public var limits = ConnectionTracker.Limits()
        /// Bytes looked at before deciding what a connection joined midstream carries.
        public var detectionWindow = 2048

        public init(redactor: Redactor?) {
            self.redactor = redactor
        }
    }

    private enum Pending {
        case data(FlowDirection, ByteBuffer)
        case gap(FlowDirection, Int)
    }

    /// A class, so that a connection's state is changed where it lives: a struct moved out
    /// of the dictionary and back for every segment was copied, with every buffer of its
    /// decoders retained and released. (So a copy of a CaptureDissector shares its
    /// connections; none is ever copied.)
    private final class Tracked {
        var connection: Connection
        var dissector: ConnectionDissector?
        var ignored = false
        var pending: [Pending] = []
        var pendingBytes = 0
        /// TLS decrypted with the key log: its plaintext is what the rest of the pipeline sees.
        var tls: TLSDecryptor?
        var sawData = false

        init(connection: Connection) {
            self.connection = connection
        }
    }

    public let options: Options
    private var tracker: ConnectionTracker
    private var tracked: [Int: Tracked] = [:]
    /// The flow events of the segment being processed; kept, empty, so that its storage is reused.
    private var flowEvents: [FlowEvent] = []

    public init(options: Options) {
        self.options = options
        tracker = Self.tracker(options: options)
    }

    /// The connection tracker these options ask for (connections on assumed ports are servers).
    static func tracker(options: Options) -> ConnectionTracker {
        ConnectionTracker(limits: options.limits, serverPorts: Set(options.assumptions.keys))
    }

    /// Decodes a whole capture as it is read, the loop wmq-decode runs: `frameRead` sees
    /// each frame before it is decoded, `decoded` gets the events each frame completed
    /// (empty for most) and at the end those of the end, `failed` every capture error (a
    /// file error ends the reading; the frames before it are decoded).
    public static func decode(_ reader: PcapReader, options: Options, frameRead: (CapturedFrame) -> Void = { _ in },
                              decoded: ([CaptureEvent]) -> Void, failed: (CaptureError) -> Void) {
        // One array for the events of every frame, emptied (its storage kept) after each.
        var events: [CaptureEvent] = []
        decode(reader, options: options, frameRead: frameRead, event: { events.append($0) }, frameDone: {
            decoded(events)
            events.removeAll(keepingCapacity: true)
        }, failed: failed)
    }

    /// The same loop with each event handed over as it is found (`frameDone` after each
    /// frame's, and after the end's): a consumer that keeps the events (wmq-decode's writing
    /// thread) then takes them without a copy, which would retain every buffer and string in them.
    public static func decode(_ reader: PcapReader, options: Options, frameRead: (CapturedFrame) -> Void = { _ in },
                              event: (consuming CaptureEvent) -> Void, frameDone: () -> Void, failed: (CaptureError) -> Void) {
        var dissector = CaptureDissector(options: options)
        let last = readSegments(of: reader, frameRead: frameRead, failed: failed) { segment in
            if let segment { dissector.process(segment, emit: event) }
            frameDone()
        }
        for end in dissector.finish(frame: last.frame, time: last.time) { event(end) }
        frameDone()
    }

    /// Reads a capture to its end, giving `segment` the TCP segment of each frame (nil for a
    /// frame that holds none, or after a capture error, which `failed` got first; a file error
    /// ends the reading). Returns the last frame read, where the capture ends.
    static func readSegments(of reader: PcapReader, frameRead: (CapturedFrame) -> Void, failed: (CaptureError) -> Void,
                             segment: (TCPSegment?) -> Void) -> (frame: Int, time: Double) {
        var decoder = PacketDecoder()
        var last = (frame: 0, time: 0.0)
        while true {
            do {
                guard let frame = try reader.next() else { break }
                last = (frame.number, frame.time)
                frameRead(frame)
                segment(try decoder.segment(from: frame))
            } catch {
                failed(error)
                if error.layer == .file { break }
                segment(nil)
            }
        }
        return last
    }

    /// Every event of a capture, as wmq-decode sees them, with the capture errors met on
    /// the way.
    public static func events(from reader: PcapReader, options: Options) -> (events: [CaptureEvent], errors: [CaptureError]) {
        var events: [CaptureEvent] = []
        var errors: [CaptureError] = []
        decode(reader, options: options, decoded: { events += $0 }, failed: { errors.append($0) })
        return (events, errors)
    }

    public mutating func process(_ segment: TCPSegment) -> [CaptureEvent] {
        var events: [CaptureEvent] = []
        process(segment) { events.append($0) }
        return events
    }

    /// Takes the next TCP segment of the capture; `emit` gets the events it completed, in
    /// order, as they are found (no array gathers them).
    public mutating func process(_ segment: TCPSegment, emit: (consuming CaptureEvent) -> Void) {
        var flowEvents: [FlowEvent] = []
        swap(&flowEvents, &self.flowEvents)
        tracker.process(segment) { flowEvents.append($0) }
        translate(flowEvents, emit: emit)
        flowEvents.removeAll(keepingCapacity: true)
        swap(&flowEvents, &self.flowEvents)
    }

    /// The end of the capture: undecided connections are decided on what they showed,
    /// and every connection is closed.
    public mutating func finish(frame: Int, time: Double) -> [CaptureEvent] {
        var events: [CaptureEvent] = []
        decideUndecided(frame: frame, time: time) { events.append($0) }
        translate(tracker.finish(frame: frame, time: time)) { events.append($0) }
        return events
    }

    /// Connections whose kind is still undecided at the end of the capture are decided on
    /// what they showed.
    mutating func decideUndecided(frame: Int, time: Double, emit: (consuming CaptureEvent) -> Void) {
        for id in tracked.keys.sorted() {
            guard let entry = tracked[id] else { continue }
            guard entry.dissector == nil, !entry.ignored else { continue }
            decide(entry, frame: frame, time: time, final: true, emit: emit)
        }
    }

    /// Events of a connection tracker kept outside (``ParallelStatistics`` runs one tracker
    /// for several dissectors, each given the events of its own connections).
    mutating func translate(_ flowEvents: [FlowEvent], emit: (consuming CaptureEvent) -> Void) {
        for flowEvent in flowEvents {
            switch flowEvent {
            case .opened(let connection):
                tracked[connection.id] = Tracked(connection: connection)
            case .data(let id, let direction, let bytes, let frame, let time):
                guard let entry = tracked[id] else { continue }
                if !entry.sawData {
                    entry.sawData = true
                    if let keyLog = options.keyLog, direction == .clientToServer, TLSDecryptor.looksLikeClientHello(bytes) {
                        entry.tls = TLSDecryptor(keyLog: keyLog)
                    }
                }
                if var tls = entry.tls {
                    let outputs = tls.feed(bytes, fromClient: direction == .clientToServer)
                    entry.tls = tls
                    for output in outputs {
                        switch output {
                        case .plaintext(let plain):
                            receive(.data(direction, plain), entry: entry, frame: frame, time: time, emit: emit)
                        case .problem(let reason):
                            emit(CaptureEvent(connection: entry.connection, direction: direction, frame: frame, time: time,
                                              kind: .dissected(DissectorEvent(direction: direction.stream,
                                                                              kind: .error(layer: "TLS", description: reason), warnings: []))))
                        }
                    }
                } else {
                    receive(.data(direction, bytes), entry: entry, frame: frame, time: time, emit: emit)
                }
            case .gap(let id, let direction, let count, let frame, let time):
                guard let entry = tracked[id] else { continue }
                if !entry.ignored {
                    emit(CaptureEvent(connection: entry.connection, direction: direction, frame: frame, time: time,
                                      kind: .gap(bytes: count)))
                }
                if var tls = entry.tls {
                    for case .problem(let reason) in tls.lost(fromClient: direction == .clientToServer) {
                        emit(CaptureEvent(connection: entry.connection, direction: direction, frame: frame, time: time,
                                          kind: .dissected(DissectorEvent(direction: direction.stream,
                                                                          kind: .error(layer: "TLS", description: reason), warnings: []))))
                    }
                    entry.tls = tls
                } else {
                    receive(.gap(direction, count), entry: entry, frame: frame, time: time, emit: emit)
                }
            case .closed(let id, let reason, let frame, let time):
                guard let entry = tracked.removeValue(forKey: id) else { continue }
                if entry.dissector == nil && !entry.ignored {
                    decide(entry, frame: frame, time: time, final: true, emit: emit)
                }
                if !entry.ignored {
                    emit(CaptureEvent(connection: entry.connection, direction: nil, frame: frame, time: time,
                                      kind: .closed(reason: reason.rawValue)))
                }
            }
        }
    }

    private mutating func receive(_ item: Pending, entry: Tracked, frame: Int, time: Double, emit: (consuming CaptureEvent) -> Void) {
        if entry.ignored { return }
        guard entry.dissector != nil else {
            switch item {
            case .data(let direction, let bytes):
                // Kept alone: a connection waiting to be recognised holds its first bytes only.
                entry.pending.append(.data(direction, bytes.keptAlone()))
                entry.pendingBytes += bytes.readableBytes
            case .gap:
                entry.pending.append(item)
            }
            decide(entry, frame: frame, time: time, final: false, emit: emit)
            return
        }
        run(item, entry: entry, frame: frame, time: time, emit: emit)
    }

    private func run(_ item: Pending, entry: Tracked, frame: Int, time: Double, emit: (consuming CaptureEvent) -> Void) {
        // Changed where it lives: neither copied (a retain and release of every buffer in it)
        // nor moved out and back (a memcpy of the whole dissector).
        switch item {
        case .data(let direction, let bytes):
            let connection = entry.connection
            entry.dissector?.feed(bytes, direction: direction.stream, time: time) { event in
                emit(CaptureEvent(connection: connection, direction: direction, frame: frame, time: time, kind: .dissected(consume event)))
            }
        case .gap(let direction, let count):
            entry.dissector?.lost(count, direction: direction.stream)
        }
    }

    /// Decides what the connection carries once its first bytes say so (or, with
    /// `final`, on whatever it showed).
    private func decide(_ entry: Tracked, frame: Int, time: Double, final: Bool, emit: (consuming CaptureEvent) -> Void) {
        let connection = entry.connection
        let clientBytes = firstBytes(of: entry, direction: .clientToServer)
        let serverBytes = firstBytes(of: entry, direction: .serverToClient)
        var transport: ConnectionDissector.Transport?
        var name = ""
        var how = ""
        var joinMidstream = connection.joinedMidstream || entry.pending.contains { if case .gap = $0 { true } else { false } }

        if let assumption = options.assumptions[connection.server.port] {
            how = "assumed for port \(connection.server.port)"
            switch assumption {
            case .webSocketMQTT:
                let hasHandshake = clientBytes.starts(with: Array("GET ".utf8))
                transport = .webSocket(expectsHandshake: hasHandshake && !joinMidstream)
                if hasHandshake { joinMidstream = false }
                name = "ws-mqtt"
            case .mqtt:
                transport = .mqtt
                name = "mqtt"
                if clientBytes.first == 0x10 { joinMidstream = false }
            }
        } else if let record = Self.tlsRecord(clientBytes) ?? Self.tlsRecord(serverBytes) {
            return ignore(entry, frame: frame, time: time, emit: emit,
                          reason: "TLS (\(record)), encrypted: give its key log with --keylog, or capture the plain side with wmq-capture proxy")
        } else if !connection.joinedMidstream && clientBytes.starts(with: Array("GET ".utf8)) {
            transport = .webSocket(expectsHandshake: true)
            (name, how) = ("websocket", "HTTP Upgrade")
        } else if !connection.joinedMidstream && Self.looksLikeConnect(clientBytes) {
            transport = .mqtt
            (name, how) = ("mqtt", "MQTT CONNECT")
        } else if connection.joinedMidstream || final || entry.pendingBytes >= options.detectionWindow {
            // No beginning to go by: try the shapes of WebSocket frames, then of MQTT packets.
            let needed = final ? 1 : min(options.detectionWindow, 64)
            guard final || clientBytes.count >= needed || serverBytes.count >= needed else { return }
            if Self.framesPlausible(serverBytes, .serverToClient, final: final) || Self.framesPlausible(clientBytes, .clientToServer, final: final) {
                transport = .webSocket(expectsHandshake: false)
                (name, how) = ("ws-mqtt", "WebSocket frames seen midstream")
                joinMidstream = true
            } else if Self.packetsPlausible(serverBytes, final: final) || Self.packetsPlausible(clientBytes, final: final) {
                transport = .mqtt
                (name, how) = ("mqtt", "MQTT packets seen midstream")
                joinMidstream = true
            } else if final || entry.pendingBytes >= options.detectionWindow {
                let sample = (clientBytes.isEmpty ? serverBytes : clientBytes).prefix(8)
                return ignore(entry, frame: frame, time: time, emit: emit,
                              reason: "neither WebSocket nor MQTT (first bytes \(Hex.string(sample))); --assume PORT=ws-mqtt|mqtt forces it")
            }
        }
        guard let transport else { return }
        do {
            var dissector = try ConnectionDissector(transport: transport, redactor: options.redactor,
                                                    reportsFrames: options.reportsFrames)
            dissector.annotates = options.annotates
            dissector.defersWorksAnnotation = options.defersWorksAnnotation
            dissector.annotatesMessages = options.annotatesMessages
            dissector.reportsMessages = options.reportsMessages
            entry.dissector = consume dissector
        } catch {
            entry.ignored = true
            return
        }
        emit(CaptureEvent(connection: connection, direction: nil, frame: frame, time: time, kind: .opened(protocol: name, how: how)))
        if joinMidstream {
            entry.dissector?.lost(nil, direction: .clientToServer)
            entry.dissector?.lost(nil, direction: .serverToClient)
        }
        let pending = entry.pending
        entry.pending = []
        entry.pendingBytes = 0
        for item in pending { run(item, entry: entry, frame: frame, time: time, emit: emit) }
    }

    /// Marks a connection as not decoded and says why, once.
    private func ignore(_ entry: Tracked, frame: Int, time: Double, emit: (consuming CaptureEvent) -> Void, reason: String) {
        entry.ignored = true
        entry.pending = []
        entry.pendingBytes = 0
        emit(CaptureEvent(connection: entry.connection, direction: nil, frame: frame, time: time, kind: .ignored(reason: reason)))
    }

    /// The TLS record a connection opens with (a handshake, or application data when the
    /// capture joined it late): content type 20–23, version 3.x, a length up to 2^14 + 2048.
    static func tlsRecord(_ bytes: [UInt8]) -> String? {
        guard bytes.count >= 5, (20...23).contains(bytes[0]), bytes[1] == 3, bytes[2] <= 4 else { return nil }
        let length = Int(bytes[3]) << 8 | Int(bytes[4])
        guard length > 0, length <= 18_432 else { return nil }
        switch bytes[0] {
        case 22: return "handshake record"
        case 23: return "application data"
        case 21: return "alert"
        default: return "change cipher spec"
        }
    }

    private func firstBytes(of entry: Tracked, direction: FlowDirection) -> [UInt8] {
        var bytes: [UInt8] = []
        for item in entry.pending {
            guard case .data(let itemDirection, let data) = item, itemDirection == direction else { continue }
            bytes += data.readableBytesView.prefix(options.detectionWindow - bytes.count)
            if bytes.count >= options.detectionWindow { break }
        }
        return bytes
    }

    static func looksLikeConnect(_ bytes: [UInt8]) -> Bool {
        guard bytes.first == 0x10, bytes.count >= 8 else { return false }
        var index = 1
        while index < min(bytes.count, 5), bytes[index] & 0x80 != 0 { index += 1 }
        let nameStart = index + 1
        guard nameStart + 6 <= bytes.count else { return false }
        let name = Array(bytes[nameStart..<min(bytes.count, nameStart + 8)])
        return name.starts(with: [0x00, 0x04] + Array("MQTT".utf8)) || name.starts(with: [0x00, 0x06] + Array("MQIsdp".utf8))
    }

    /// `final`: the connection has ended, so a frame ending exactly at the end counts.
    static func framesPlausible(_ bytes: [UInt8], _ direction: StreamDirection, final: Bool) -> Bool {
        guard bytes.count >= 2 else { return false }
        let result = bytes.withUnsafeBytes { FrameBoundaryScan.find(in: $0, direction: direction, endOfStream: final) }
        // Frames must be found near the start; junk before them is what joining midstream cut.
        if case .found(let index) = result { return index < max(64, bytes.count / 2) }
        return false
    }

    static func packetsPlausible(_ bytes: [UInt8], final: Bool) -> Bool {
        guard bytes.count >= 2 else { return false }
        let result = bytes.withUnsafeBytes { PacketBoundaryScan.find(in: $0, version: .v3_1_1, endOfStream: final) }
        if case .found(let index) = result { return index < max(64, bytes.count / 2) }
        return false
    }
}

extension FlowDirection {
    var stream: StreamDirection { self == .clientToServer ? .clientToServer : .serverToClient }
}
