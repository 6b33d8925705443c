import ByteStream
import NIOCore

/// Which way bytes flow in a connection.
public enum FlowDirection: Sendable, Hashable {
    case clientToServer
    case serverToClient
}

/// Serial-number comparison of 32-bit sequence numbers (RFC 1982, as TCP uses them).
@inline(__always)
func sequenceDistance(from a: UInt32, to b: UInt32) -> Int { Int(Int32(bitPattern: b &- a)) }

/// One direction of a TCP connection, reassembled into the byte stream the application
/// sent: out-of-order segments wait, retransmissions are dropped, overlaps trimmed (the
/// first copy of a byte wins), and a hole that never fills becomes a reported gap.
struct TCPDirectionReassembler {
    enum Output {
        case data(ByteBuffer, frame: Int, time: Double)
        /// `bytes` missing before the data that follows.
        case gap(bytes: Int, frame: Int, time: Double)
    }

    private struct Pending {
        var sequence: UInt32
        var bytes: ByteBuffer
        var frame: Int
        var time: Double
    }

    let maximumPendingBytes: Int
    private(set) var nextSequence: UInt32?
    private var pending: [Pending] = []
    private(set) var pendingBytes = 0
    private(set) var finSequence: UInt32?
    /// Whether every byte up to a FIN has been delivered.
    var isFinished: Bool { finSequence != nil && nextSequence == finSequence }
    private(set) var deliveredBytes = 0

    init(maximumPendingBytes: Int) {
        self.maximumPendingBytes = maximumPendingBytes
    }

    /// Takes a segment of this direction; `emit` gets what it completed, in stream order.
    mutating func receive(_ segment: TCPSegment, emit: (Output) -> Void) {
        var sequence = segment.sequence
        if segment.flags.contains(.syn) {
            sequence &+= 1
            if nextSequence == nil || deliveredBytes == 0 { nextSequence = sequence }
        }
        let length = segment.payload.readableBytes
        if segment.flags.contains(.fin) { finSequence = sequence &+ UInt32(truncatingIfNeeded: length) }
        guard length > 0 else { return }
        guard let next = nextSequence else {
            // The capture starts inside the connection: this segment is where we join.
            nextSequence = sequence
            receive(data: segment.payload, sequence: sequence, frame: segment.frame, time: segment.time, emit: emit)
            return
        }
        // Entirely before what was delivered: a retransmission.
        if sequenceDistance(from: next, to: sequence &+ UInt32(truncatingIfNeeded: length)) <= 0 { return }
        if sequence == next && pending.isEmpty {
            // The next bytes of the stream with nothing waiting, most segments: delivered as
            // they are, what queueing and delivering them would give.
            nextSequence = next &+ UInt32(truncatingIfNeeded: length)
            deliveredBytes += length
            emit(.data(segment.payload, frame: segment.frame, time: segment.time))
            return
        }
        receive(data: segment.payload, sequence: sequence, frame: segment.frame, time: segment.time, emit: emit)
    }

    private mutating func receive(data: ByteBuffer, sequence: UInt32, frame: Int, time: Double, emit: (Output) -> Void) {
        let index = pending.firstIndex { sequenceDistance(from: sequence, to: $0.sequence) > 0 } ?? pending.endIndex
        // Kept alone: waiting segments are counted by their bytes, not by the frames read
        // ahead with them that a slice would keep alive.
        pending.insert(Pending(sequence: sequence, bytes: data.keptAlone(), frame: frame, time: time), at: index)
        pendingBytes += data.readableBytes
        deliver(emit: emit)
        // Too much waiting behind a hole: give the hole up as lost.
        while pendingBytes > maximumPendingBytes, !pending.isEmpty {
            skipToFirstPending(emit: emit)
        }
    }

    /// Delivers every pending segment that continues the stream.
    private mutating func deliver(emit: (Output) -> Void) {
        while let first = pending.first, let next = nextSequence {
            let distance = sequenceDistance(from: next, to: first.sequence)
            guard distance <= 0 else { break }
            pending.removeFirst()
            pendingBytes -= first.bytes.readableBytes
            let overlap = -distance
            guard overlap < first.bytes.readableBytes else { continue }  // all seen before
            let fresh = first.bytes.getSlice(at: first.bytes.readerIndex + overlap, length: first.bytes.readableBytes - overlap)
                ?? ByteBuffer()
            nextSequence = next &+ UInt32(truncatingIfNeeded: fresh.readableBytes)
            deliveredBytes += fresh.readableBytes
            emit(.data(fresh, frame: first.frame, time: first.time))
        }
    }

    private mutating func skipToFirstPending(emit: (Output) -> Void) {
        guard let first = pending.first, let next = nextSequence else { return }
        let missing = sequenceDistance(from: next, to: first.sequence)
        if missing > 0 {
            nextSequence = first.sequence
            emit(.gap(bytes: missing, frame: first.frame, time: first.time))
        }
        deliver(emit: emit)
    }

    /// The connection ended (or the capture did): whatever waits behind holes is
    /// delivered after gaps.
    mutating func flush(emit: (Output) -> Void) {
        while !pending.isEmpty { skipToFirstPending(emit: emit) }
    }
}
