public import NIOCore

/// A TCP connection seen in a capture.
public struct Connection: Sendable, Hashable {
    /// Stable within one reading of a file: 1 for the first connection seen.
    public var id: Int
    public var client: Endpoint
    public var server: Endpoint
    /// Whether the capture started after the connection did (no SYN seen), in which case
    /// client and server are a guess: the side on the lower or assumed port is the server.
    public var joinedMidstream: Bool
    public var firstFrame: Int
    public var firstTime: Double

    public init(id: Int, client: Endpoint, server: Endpoint, joinedMidstream: Bool, firstFrame: Int, firstTime: Double) {
        self.id = id
        self.client = client
        self.server = server
        self.joinedMidstream = joinedMidstream
        self.firstFrame = firstFrame
        self.firstTime = firstTime
    }

    public func source(of direction: FlowDirection) -> Endpoint { direction == .clientToServer ? client : server }
    public func destination(of direction: FlowDirection) -> Endpoint { direction == .clientToServer ? server : client }
}

/// What the tracker reports, in capture order.
public enum FlowEvent: Sendable {
    case opened(Connection)
    case data(connection: Int, direction: FlowDirection, bytes: ByteBuffer, frame: Int, time: Double)
    /// Bytes lost in this direction (not captured); the data that follows comes after the hole.
    case gap(connection: Int, direction: FlowDirection, bytes: Int, frame: Int, time: Double)
    case closed(connection: Int, reason: CloseReason, frame: Int, time: Double)

    public enum CloseReason: String, Sendable {
        case fin = "FIN", reset = "RST", reused = "port reused", evicted = "evicted (connection limit)"
        case endOfCapture = "end of capture"
    }
}

/// Follows every TCP connection of a capture: who is client and server, the byte stream
/// of each direction, gaps, closing, port reuse. Memory is bounded: at most
/// ``Limits/maximumConnections`` open connections (the least recently active is closed
/// first) and ``Limits/maximumPendingBytes`` waiting behind a hole per direction.
public struct ConnectionTracker {
    public struct Limits: Sendable {
        public var maximumConnections: Int
        /// Bytes that may wait behind a hole in one direction.
        public var maximumPendingBytes: Int
        /// Bytes that may wait behind holes in all connections together; past it, the
        /// connection holding the most gives its holes up as gaps.
        public var maximumTotalPendingBytes: Int
        public init(maximumConnections: Int = 10_000, maximumPendingBytes: Int = 1 << 20,
                    maximumTotalPendingBytes: Int = 64 << 20) {
            self.maximumConnections = maximumConnections
            self.maximumPendingBytes = maximumPendingBytes
            self.maximumTotalPendingBytes = maximumTotalPendingBytes
        }
    }

    private struct Key: Hashable {
        var low: Endpoint
        var high: Endpoint
        init(_ a: Endpoint, _ b: Endpoint) {
            (low, high) = a < b ? (a, b) : (b, a)
        }
    }

    /// A class, so that a connection's state is changed where it lives (one dictionary
    /// look-up per segment, no copy of its reassemblers moved out and back).
    private final class State {
        let connection: Connection
        var toServer: TCPDirectionReassembler
        var toClient: TCPDirectionReassembler
        let clientInitialSequence: UInt32?
        var reset = false
        var lastFrame: Int
        /// Neighbours in the list of open connections by last activity (``ConnectionTracker/touch(_:)``).
        var older: State?
        var newer: State?
        var closed: Bool { reset || (toServer.isFinished && toClient.isFinished) }
        var pendingBytes: Int { toServer.pendingBytes + toClient.pendingBytes }

        init(connection: Connection, maximumPendingBytes: Int, clientInitialSequence: UInt32?, lastFrame: Int) {
            self.connection = connection
            toServer = TCPDirectionReassembler(maximumPendingBytes: maximumPendingBytes)
            toClient = TCPDirectionReassembler(maximumPendingBytes: maximumPendingBytes)
            self.clientInitialSequence = clientInitialSequence
            self.lastFrame = lastFrame
        }

        /// Takes a segment of either direction; `emit` gets what it completed.
        func receive(_ segment: TCPSegment, emit: (FlowEvent) -> Void) {
            let id = connection.id
            if segment.source == connection.client {
                toServer.receive(segment) { emit(FlowEvent($0, connection: id, direction: .clientToServer)) }
            } else {
                toClient.receive(segment) { emit(FlowEvent($0, connection: id, direction: .serverToClient)) }
            }
        }

        /// Delivers what waits behind holes in both directions, after gaps.
        func flush(emit: (FlowEvent) -> Void) {
            let id = connection.id
            toServer.flush { emit(FlowEvent($0, connection: id, direction: .clientToServer)) }
            toClient.flush { emit(FlowEvent($0, connection: id, direction: .serverToClient)) }
        }
    }

    public let limits: Limits
    /// Ports assumed to be servers' (from `--assume`), for connections joined midstream.
    public var serverPorts: Set<UInt16>
    private var states: [Key: State] = [:]
    /// Open connections from the least to the most recently active, so that the one to
    /// evict is found at once, not by a scan of all of them (which made a capture of many
    /// connections quadratic).
    private var oldest: State?
    private var newest: State?
    private var nextID = 1
    /// Address pairs of connections that ended, so that their late retransmissions and
    /// ACKs are ignored instead of opening a new connection; first in, first out, at
    /// most `maximumConnections` of them. Closed connections keep no other state.
    private var recentlyClosed: Set<Key> = []
    private var closedOrder: [Key] = []
    private var closedOrderStart = 0

    public init(limits: Limits = Limits(), serverPorts: Set<UInt16> = []) {
        self.limits = limits
        self.serverPorts = serverPorts
    }

    /// Connections being followed now (closed ones are not counted).
    public var openConnectionCount: Int { states.count }
    /// Bytes waiting behind holes, all connections together.
    public private(set) var pendingByteCount = 0

    public mutating func process(_ segment: TCPSegment) -> [FlowEvent] {
        var events: [FlowEvent] = []
        process(segment) { events.append($0) }
        return events
    }

    /// Takes the next segment of the capture; `emit` gets the events it caused, in order.
    public mutating func process(_ segment: TCPSegment, emit: (FlowEvent) -> Void) {
        let key = Key(segment.source, segment.destination)
        let isOpeningSYN = segment.flags.contains(.syn) && !segment.flags.contains(.ack)
        var found = states[key]
        if let state = found {
            // `states` holds open connections only. The same SYN again is a retransmission;
            // any other opening SYN on this address pair starts a new connection (port
            // reuse, or the real start of one joined midstream).
            if isOpeningSYN && !(segment.source == state.connection.client && state.clientInitialSequence == segment.sequence) {
                close(state, reason: .reused, frame: segment.frame, time: segment.time, emit: emit)
                remove(key, state)
                found = nil
            }
        } else if recentlyClosed.contains(key) {
            guard isOpeningSYN else { return }  // a late segment of a connection that ended
            recentlyClosed.remove(key)
        }
        let state: State
        if let found {
            state = found
        } else {
            if states.count >= limits.maximumConnections { evictLeastRecent(frame: segment.frame, time: segment.time, emit: emit) }
            let (client, server, midstream) = roles(of: segment)
            let connection = Connection(id: nextID, client: client, server: server, joinedMidstream: midstream,
                                        firstFrame: segment.frame, firstTime: segment.time)
            nextID += 1
            state = State(connection: connection, maximumPendingBytes: limits.maximumPendingBytes,
                          clientInitialSequence: isOpeningSYN ? segment.sequence : nil, lastFrame: segment.frame)
            states[key] = state
            emit(.opened(connection))
        }
        state.lastFrame = segment.frame
        touch(state)
        let pendingBefore = state.pendingBytes
        state.receive(segment, emit: emit)
        pendingByteCount += state.pendingBytes - pendingBefore
        if segment.flags.contains(.rst) {
            state.reset = true
        }
        if state.closed {
            close(state, reason: state.reset ? .reset : .fin, frame: segment.frame, time: segment.time, emit: emit)
            remove(key, state)
            rememberClosed(key)
        }
        if pendingByteCount > limits.maximumTotalPendingBytes { giveUpHoles(emit: emit) }
    }

    /// Over the budget for bytes waiting behind holes: the connections holding the most
    /// deliver what they hold, after gaps, until the total is within the budget.
    private mutating func giveUpHoles(emit: (FlowEvent) -> Void) {
        while pendingByteCount > limits.maximumTotalPendingBytes,
              let largest = states.values.max(by: { $0.pendingBytes < $1.pendingBytes }), largest.pendingBytes > 0 {
            pendingByteCount -= largest.pendingBytes
            largest.flush(emit: emit)
        }
    }

    /// The end of the capture: every open connection is flushed and closed.
    public mutating func finish(frame: Int, time: Double) -> [FlowEvent] {
        var events: [FlowEvent] = []
        for (key, state) in states.sorted(by: { $0.value.connection.id < $1.value.connection.id }) {
            close(state, reason: .endOfCapture, frame: frame, time: time) { events.append($0) }
            remove(key, state)
        }
        return events
    }

    private func roles(of segment: TCPSegment) -> (client: Endpoint, server: Endpoint, midstream: Bool) {
        if segment.flags.contains(.syn) {
            return segment.flags.contains(.ack)
                ? (segment.destination, segment.source, false) : (segment.source, segment.destination, false)
        }
        let (a, b) = (segment.source, segment.destination)
        if serverPorts.contains(b.port) && !serverPorts.contains(a.port) { return (a, b, true) }
        if serverPorts.contains(a.port) && !serverPorts.contains(b.port) { return (b, a, true) }
        // Servers listen on the lower port, clients on ephemeral ones.
        return a.port >= b.port ? (a, b, true) : (b, a, true)
    }

    private mutating func close(_ state: State, reason: FlowEvent.CloseReason, frame: Int, time: Double,
                                emit: (FlowEvent) -> Void) {
        pendingByteCount -= state.pendingBytes
        state.flush(emit: emit)
        emit(.closed(connection: state.connection.id, reason: reason, frame: frame, time: time))
    }

    private mutating func rememberClosed(_ key: Key) {
        recentlyClosed.insert(key)
        closedOrder.append(key)
        if closedOrder.count - closedOrderStart > limits.maximumConnections {
            recentlyClosed.remove(closedOrder[closedOrderStart])
            closedOrderStart += 1
            if closedOrderStart > 4096 && closedOrderStart * 2 > closedOrder.count {
                closedOrder.removeFirst(closedOrderStart)
                closedOrderStart = 0
            }
        }
    }

    private mutating func evictLeastRecent(frame: Int, time: Double, emit: (FlowEvent) -> Void) {
        // Closed connections keep no state, so every connection here is open: close the
        // least recently active one, the oldest in the list.
        guard let state = oldest else { return }
        let key = Key(state.connection.client, state.connection.server)
        close(state, reason: .evicted, frame: frame, time: time, emit: emit)
        remove(key, state)
        rememberClosed(key)
    }

    /// Moves a connection to the most recent end of the activity list.
    private mutating func touch(_ state: State) {
        guard newest !== state else { return }
        unlink(state)
        state.older = newest
        newest?.newer = state
        newest = state
        if oldest == nil { oldest = state }
    }

    private mutating func unlink(_ state: State) {
        state.older?.newer = state.newer
        state.newer?.older = state.older
        if oldest === state { oldest = state.newer }
        if newest === state { newest = state.older }
        state.older = nil
        state.newer = nil
    }

    /// Forgets an open connection: its entry and its place in the activity list.
    private mutating func remove(_ key: Key, _ state: State) {
        states[key] = nil
        unlink(state)
    }
}

extension FlowEvent {
    init(_ output: TCPDirectionReassembler.Output, connection: Int, direction: FlowDirection) {
        switch output {
        case .data(let bytes, let frame, let time):
            self = .data(connection: connection, direction: direction, bytes: bytes, frame: frame, time: time)
        case .gap(let bytes, let frame, let time):
            self = .gap(connection: connection, direction: direction, bytes: bytes, frame: frame, time: time)
        }
    }
}
