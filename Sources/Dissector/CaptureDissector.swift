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
    /// Payload bytes the event holds (a PUBLISH's payload, a WebSocket message, inflated
    /// when it was compressed): what a consumer that batches events bounds.
    public var heldBytes: Int {
        guard case .dissected(let dissected) = kind else { return 0 }
        switch dissected.kind {
        case .mqtt(.publish(let publish), _, _): return publish.payload.readableBytes
        case .webSocketMessage(let message, _): return message.data.readableBytes
        default: return 0
        }
    }

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
    public enum Assumption: String, Sendable, Hashable, CaseIterable {
        case webSocketMQTT = "ws-mqtt"
        case mqtt
        /// MQTT 5.0 straight over TCP (packets read as 5.0 until a CONNECT says otherwise).
        case mqtt5
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
        /// Bytes a connection may hold while a unit that began within the detection window
        /// is still arriving (a first PUBLISH of tens of kilobytes): past it, it is decided on
        /// what it showed.
        public var maximumUndecidedBytes = 1 << 20
        /// Bytes all undecided connections may hold together: past it, the connection that
        /// adds more is decided on what it showed.
        public var maximumTotalUndecidedBytes = 64 << 20
        /// What compressed WebSocket messages may inflate to (`--max-inflate`).
        public var inflation = ConnectionDissector.InflationLimits()

        public init(redactor: Redactor?) {
            self.redactor = redactor
        }
    }

    private enum Pending {
        /// Bytes, with the frame (and its time) that brought them.
        case data(FlowDirection, ByteBuffer, frame: Int, time: Double)
        case gap(FlowDirection, Int)
    }

    /// A segment fed to a connection's dissector: its place in the dissector's stream of
    /// its direction, and the frame and time that brought it.
    struct FedSegment {
        var start: Int
        var end: Int
        var frame: Int
        var time: Double
    }

    /// How many fed segments a direction remembers: more than a decoder that looks for its
    /// place again holds before it agrees (a few units).
    static let fedSegmentsKept = 64

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
        /// Client and server are the other way round from the tracker's guess (no SYN seen;
        /// the bytes showed who asks and who answers).
        var swapped = false
        /// Directions that had sent nothing when the connection was recognised by its units'
        /// shapes: their first bytes are looked at for where the first unit starts.
        var awaitingStart: Set<FlowDirection> = []
        var readingKind: ConnectionDetection.Reading.Kind?
        /// Held bytes at which an undecided connection is looked at again.
        var nextLook = 0
        /// The last segments fed to the dissector, per direction: where each lies in the
        /// dissector's stream, and its frame and time, for events that come after their bytes.
        var fed: [[FedSegment]] = [[], []]

        init(connection: Connection) {
            self.connection = connection
        }
    }

    public let options: Options
    private var tracker: ConnectionTracker
    private var tracked: [Int: Tracked] = [:]
    /// What connections decided on strong evidence taught about their server ports, for
    /// connections to the same port that the capture joined midstream.
    private var learned: [UInt16: ConnectionDetection.Hint] = [:]
    /// Bytes held by undecided connections, all together (bounded by ``Options/maximumTotalUndecidedBytes``).
    private var undecidedBytes = 0
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
                              stop: () -> Bool = { false },
                              decoded: ([CaptureEvent]) -> Void, failed: (CaptureError) -> Void) {
        // One array for the events of every frame, emptied (its storage kept) after each.
        var events: [CaptureEvent] = []
        decode(reader, options: options, frameRead: frameRead, stop: stop, event: { events.append($0) }, frameDone: {
            decoded(events)
            events.removeAll(keepingCapacity: true)
        }, failed: failed)
    }

    /// The same loop with each event handed over as it is found (`frameDone` after each
    /// frame's, and after the end's): a consumer that keeps the events (wmq-decode's writing
    /// thread) then takes them without a copy, which would retain every buffer and string in them.
    /// `stop` is asked before each frame: true ends the reading there (Ctrl-C), and the
    /// capture is finished as if it ended.
    public static func decode(_ reader: PcapReader, options: Options, frameRead: (CapturedFrame) -> Void = { _ in },
                              stop: () -> Bool = { false },
                              event: (consuming CaptureEvent) -> Void, frameDone: () -> Void, failed: (CaptureError) -> Void) {
        var dissector = CaptureDissector(options: options)
        let last = readSegments(of: reader, frameRead: frameRead, stop: stop, failed: failed) { segment in
            if let segment { dissector.process(segment, emit: event) }
            frameDone()
        }
        for end in dissector.finish(frame: last.frame, time: last.time) { event(end) }
        frameDone()
    }

    /// Reads a capture to its end, giving `segment` the TCP segment of each frame (nil for a
    /// frame that holds none, or after a capture error, which `failed` got first; a file error
    /// ends the reading). Returns the last frame read, where the capture ends.
    static func readSegments(of reader: PcapReader, frameRead: (CapturedFrame) -> Void, stop: () -> Bool = { false },
                             failed: (CaptureError) -> Void,
                             segment: (TCPSegment?) -> Void) -> (frame: Int, time: Double) {
        var decoder = PacketDecoder()
        var last = (frame: 0, time: 0.0)
        while !stop() {
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
            case .data(let id, let flowDirection, let bytes, let frame, let time):
                guard let entry = tracked[id] else { continue }
                let direction = entry.swapped ? flowDirection.reversed : flowDirection
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
                            receive(.data(direction, plain, frame: frame, time: time), entry: entry, frame: frame, time: time, emit: emit)
                        case .problem(let reason):
                            emit(CaptureEvent(connection: entry.connection, direction: direction, frame: frame, time: time,
                                              kind: .dissected(DissectorEvent(direction: direction.stream,
                                                                              kind: .error(layer: "TLS", description: reason), warnings: []))))
                        }
                    }
                } else {
                    receive(.data(direction, bytes, frame: frame, time: time), entry: entry, frame: frame, time: time, emit: emit)
                }
            case .gap(let id, let flowDirection, let count, let frame, let time):
                guard let entry = tracked[id] else { continue }
                let direction = entry.swapped ? flowDirection.reversed : flowDirection
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
                if let version = entry.dissector?.connectVersion {
                    // What the CONNECT said: later connections to the port joined midstream are read so.
                    let port = entry.connection.server.port
                    switch entry.dissector?.transport {
                    case .webSocket?: learned[port] = .webSocket(version)
                    case .mqtt?: learned[port] = .mqtt(version)
                    case nil: break
                    }
                }
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
            case .data(let direction, let bytes, let frame, let time):
                // Kept alone: a connection waiting to be recognised holds its first bytes only.
                entry.pending.append(.data(direction, bytes.keptAlone(), frame: frame, time: time))
                entry.pendingBytes += bytes.readableBytes
                undecidedBytes += bytes.readableBytes
                // A connection is looked at for each of its first segments, then each time its
                // bytes double: each look reads all it holds (a look per segment made a
                // connection of other bytes quadratic).
                if entry.pendingBytes >= 256 && entry.pendingBytes < entry.nextLook
                    && entry.pendingBytes < options.maximumUndecidedBytes && undecidedBytes <= options.maximumTotalUndecidedBytes
                    && !(entry.pendingBytes >= options.detectionWindow && entry.nextLook <= options.detectionWindow) {
                    return
                }
                entry.nextLook = entry.pendingBytes * 2
            case .gap:
                entry.pending.append(item)
            }
            decide(entry, frame: frame, time: time, final: false, emit: emit)
            return
        }
        if case .data(let direction, var bytes, let itemFrame, let itemTime) = item, entry.awaitingStart.contains(direction),
           let kind = entry.readingKind {
            entry.awaitingStart.remove(direction)
            let first = Array(bytes.readableBytesView.prefix(options.detectionWindow))
            if let start = ConnectionDetection.firstUnit(in: first, kind: kind, direction: direction.stream) {
                if let event = entry.dissector?.begin(direction.stream, atStreamOffset: start) {
                    emit(CaptureEvent(connection: entry.connection, direction: direction, frame: frame, time: time, kind: .dissected(event)))
                }
                bytes.moveReaderIndex(forwardBy: start)
            } else {
                entry.dissector?.lost(nil, direction: direction.stream)
            }
            run(.data(direction, bytes, frame: itemFrame, time: itemTime), entry: entry, frame: frame, time: time, emit: emit)
            return
        }
        run(item, entry: entry, frame: frame, time: time, emit: emit)
    }

    /// Decodes an item; bytes decoded late (held while the connection was undecided) keep
    /// the frame and time that brought them, so each event names the frame that completed it.
    private func run(_ item: Pending, entry: Tracked, frame: Int, time: Double, emit: (consuming CaptureEvent) -> Void) {
        // Changed where it lives: neither copied (a retain and release of every buffer in it)
        // nor moved out and back (a memcpy of the whole dissector).
        switch item {
        case .data(let direction, let bytes, let frame, let time):
            let connection = entry.connection
            guard let start = entry.dissector?.nextStreamOffset(direction.stream) else { return }
            let side = direction == .clientToServer ? 0 : 1
            if entry.fed[side].count >= 2 * Self.fedSegmentsKept { entry.fed[side].removeFirst(Self.fedSegmentsKept) }
            entry.fed[side].append(FedSegment(start: start, end: start + bytes.readableBytes, frame: frame, time: time))
            entry.dissector?.feed(bytes, direction: direction.stream, time: time) { event in
                // Completed by this segment (the usual case), or by an earlier one whose bytes
                // were held: named by the frame that brought its last byte.
                var (eventFrame, eventTime) = (frame, time)
                if let end = event.streamEnd, end <= start,
                   let earlier = entry.fed[side].last(where: { $0.start < end && end <= $0.end }) {
                    (eventFrame, eventTime) = (earlier.frame, earlier.time)
                }
                emit(CaptureEvent(connection: connection, direction: direction, frame: eventFrame, time: eventTime, kind: .dissected(consume event)))
            }
        case .gap(let direction, let count):
            entry.dissector?.lost(count, direction: direction.stream)
        }
    }

    /// Decides what the connection carries once its first bytes say so (or, with `final`,
    /// on whatever it showed): ``ConnectionDetection``'s rules, `--assume`, and what the
    /// capture taught about the server port. Once decided, every byte held since the start
    /// is decoded, each with the frame that brought it.
    private mutating func decide(_ entry: Tracked, frame: Int, time: Double, final: Bool, emit: (consuming CaptureEvent) -> Void) {
        let port = entry.connection.server.port
        let assumption = options.assumptions[port]
        let hint: ConnectionDetection.Hint? = switch assumption {
        case .webSocketMQTT: .webSocket(nil)
        case .mqtt: .mqtt(nil)
        case .mqtt5: .mqtt(.v5)
        case nil: learned[port]
        }
        // A connection that starts with its SYN must say what it is at once; one joined
        // midstream may be inside a large message, whose end may be far.
        let midstream = entry.connection.joinedMidstream || entry.pending.contains { if case .gap = $0 { true } else { false } }
        let budgetReached = entry.pendingBytes >= options.maximumUndecidedBytes || undecidedBytes > options.maximumTotalUndecidedBytes
            || (!midstream && entry.pendingBytes >= options.detectionWindow && !unitStillArriving(entry))
        let detection = ConnectionDetection(
            client: side(of: entry, .clientToServer), server: side(of: entry, .serverToClient),
            final: final, budgetReached: budgetReached, hint: hint,
            rolesGuessed: entry.connection.joinedMidstream && assumption == nil)
        var decision = detection.decide()
        if let assumption, decision.verdict != .handshake && decision.verdict != .connect {
            // Forced: the connection is read as assumed, from where its units chain if they do.
            switch decision.verdict {
            case .units(let reading) where reading.kind.isMQTT == (assumption != .webSocketMQTT): break
            case .undecided where !final && !budgetReached: return
            default:
                decision.verdict = .units(ConnectionDetection.Reading(
                    kind: assumption == .webSocketMQTT ? .webSocket(carriesMQTT: true, version: nil) : .mqtt(assumption == .mqtt5 ? .v5 : .v3_1_1),
                    clientStart: nil, serverStart: nil, units: 0, skipped: 0))
            }
        }
        if decision.rolesSwapped { swapRoles(entry) }
        let connection = entry.connection
        var transport: ConnectionDissector.Transport
        var name: String
        var how: String
        var version: ProtocolVersion?
        var reading: ConnectionDetection.Reading?
        switch decision.verdict {
        case .undecided:
            return
        case .other(let reason):
            return ignore(entry, frame: frame, time: time, emit: emit, reason: reason)
        case .handshake:
            transport = .webSocket(expectsHandshake: true)
            (name, how) = ("websocket", "HTTP Upgrade")
            learned[connection.server.port] = .webSocket(nil)
        case .connect:
            transport = .mqtt
            (name, how) = ("mqtt", "MQTT CONNECT")
            learned[connection.server.port] = .mqtt(nil)
        case .units(let found):
            reading = found
            switch found.kind {
            case .webSocket(let carriesMQTT, let found):
                transport = .webSocket(expectsHandshake: false)
                version = found
                (name, how) = carriesMQTT == false ? ("ws", "WebSocket frames seen midstream")
                    : ("ws-mqtt", "WebSocket frames seen midstream")
            case .mqtt(let found):
                transport = .mqtt
                version = found
                (name, how) = ("mqtt", found == .v5 ? "MQTT 5.0 packets seen midstream" : "MQTT packets seen midstream")
            }
            if assumption != nil { how = "assumed for port \(port)" }
        }
        if decision.rolesSwapped { how += "; client and server told by the bytes" }
        do {
            var dissector = try ConnectionDissector(transport: transport, redactor: options.redactor,
                                                    reportsFrames: options.reportsFrames, mqttVersion: version,
                                                    inflation: options.inflation)
            dissector.annotates = options.annotates
            dissector.defersWorksAnnotation = options.defersWorksAnnotation
            dissector.annotatesMessages = options.annotatesMessages
            dissector.reportsMessages = options.reportsMessages
            if case .webSocket(let carriesMQTT, _)? = reading?.kind { dissector.assumeCarriesMQTT(carriesMQTT ?? true) }
            entry.dissector = consume dissector
        } catch {
            entry.ignored = true
            return
        }
        emit(CaptureEvent(connection: connection, direction: nil, frame: frame, time: time, kind: .opened(protocol: name, how: how)))
        let pending = entry.pending
        undecidedBytes -= entry.pendingBytes
        entry.pending = []
        entry.pendingBytes = 0
        // Where each direction starts: a handshake or CONNECT starts the stream; units found
        // by their shapes start where the detection found the first; a direction joined
        // midstream with none found starts at the next boundary a scan finds.
        var skip: [FlowDirection: Int] = [:]
        if let reading {
            for direction in [FlowDirection.clientToServer, .serverToClient] {
                if let start = direction == .clientToServer ? reading.clientStart : reading.serverStart {
                    skip[direction] = start
                    if let event = entry.dissector?.begin(direction.stream, atStreamOffset: start) {
                        emit(CaptureEvent(connection: connection, direction: direction, frame: frame, time: time, kind: .dissected(event)))
                    }
                } else if !startsAtStreamStart(pending, direction, connection: connection) {
                    if firstBytes(of: entry, pending: pending, direction: direction, limit: 2).isEmpty {
                        entry.awaitingStart.insert(direction)
                        entry.readingKind = reading.kind
                    } else {
                        entry.dissector?.lost(nil, direction: direction.stream)
                    }
                }
            }
        }
        var sawData: Set<FlowDirection> = []
        for item in pending {
            switch item {
            case .gap(let direction, _):
                // A gap before the first unit found is behind the start already.
                if skip[direction] != nil && !sawData.contains(direction) { continue }
                run(item, entry: entry, frame: frame, time: time, emit: emit)
            case .data(let direction, var bytes, let itemFrame, let itemTime):
                sawData.insert(direction)
                if let left = skip[direction], left > 0 {
                    let dropped = min(left, bytes.readableBytes)
                    bytes.moveReaderIndex(forwardBy: dropped)
                    skip[direction] = left - dropped
                    if bytes.readableBytes == 0 { continue }
                }
                run(.data(direction, bytes, frame: itemFrame, time: itemTime), entry: entry, frame: frame, time: time, emit: emit)
            }
        }
    }

    /// Whether a unit whose header began within the detection window is still arriving in
    /// either direction (the detection then waits for it, up to ``Options/maximumUndecidedBytes``).
    private func unitStillArriving(_ entry: Tracked) -> Bool {
        for direction in [FlowDirection.clientToServer, .serverToClient] {
            let bytes = firstBytes(of: entry, direction: direction, limit: options.detectionWindow + 16)
            guard bytes.count >= 2 else { continue }
            let mqtt = bytes.withUnsafeBytes { PacketBoundaryScan.header(in: $0, at: 0, version: .v5) }
            if case .valid(let total) = mqtt, total > bytes.count { return true }
            let frame = bytes.withUnsafeBytes {
                FrameBoundaryScan.header(in: $0, at: 0, direction: direction.stream, allowsRSV1: true)
            }
            if case .valid(let total) = frame, total > bytes.count { return true }
        }
        return false
    }

    /// What the detection sees of one direction.
    private func side(of entry: Tracked, _ direction: FlowDirection) -> ConnectionDetection.Side {
        let limit = max(options.detectionWindow, entry.pendingBytes)
        return ConnectionDetection.Side(bytes: firstBytes(of: entry, direction: direction, limit: limit),
                                        fromStart: startsAtStreamStart(entry.pending, direction, connection: entry.connection))
    }

    /// Whether the bytes held for a direction begin its stream: the SYN was seen and no gap came first.
    private func startsAtStreamStart(_ pending: [Pending], _ direction: FlowDirection, connection: Connection) -> Bool {
        guard !connection.joinedMidstream else { return false }
        for item in pending {
            switch item {
            case .gap(let itemDirection, _) where itemDirection == direction: return false
            case .data(let itemDirection, _, _, _) where itemDirection == direction: return true
            default: continue
            }
        }
        return true
    }

    /// The evidence showed client and server the other way round: the connection's roles
    /// and its held bytes' directions are turned.
    private func swapRoles(_ entry: Tracked) {
        entry.swapped.toggle()
        var connection = entry.connection
        (connection.client, connection.server) = (connection.server, connection.client)
        entry.connection = connection
        entry.pending = entry.pending.map { item in
            switch item {
            case .data(let direction, let bytes, let frame, let time): .data(direction.reversed, bytes, frame: frame, time: time)
            case .gap(let direction, let count): .gap(direction.reversed, count)
            }
        }
    }

    /// Marks a connection as not decoded and says why, once.
    private mutating func ignore(_ entry: Tracked, frame: Int, time: Double, emit: (consuming CaptureEvent) -> Void, reason: String) {
        undecidedBytes -= entry.pendingBytes
        entry.ignored = true
        entry.pending = []
        entry.pendingBytes = 0
        emit(CaptureEvent(connection: entry.connection, direction: nil, frame: frame, time: time, kind: .ignored(reason: reason)))
    }

    /// The first bytes held for a direction, up to `limit`: from its first data, up to a gap
    /// that follows (bytes after a hole do not continue those before it).
    private func firstBytes(of entry: Tracked, pending: [Pending]? = nil, direction: FlowDirection, limit: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        for item in pending ?? entry.pending {
            switch item {
            case .gap(let itemDirection, _) where itemDirection == direction && !bytes.isEmpty:
                return bytes
            case .data(let itemDirection, let data, _, _) where itemDirection == direction:
                bytes += data.readableBytesView.prefix(limit - bytes.count)
                if bytes.count >= limit { return bytes }
            default:
                continue
            }
        }
        return bytes
    }
}

extension ConnectionDetection.Reading.Kind {
    var isMQTT: Bool { if case .mqtt = self { true } else { false } }
}

extension FlowDirection {
    var stream: StreamDirection { self == .clientToServer ? .clientToServer : .serverToClient }
    var reversed: FlowDirection { self == .clientToServer ? .serverToClient : .clientToServer }
}
