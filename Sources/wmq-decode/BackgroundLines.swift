import ByteStream
import CommandLineSupport
import Dissector
import Foundation

/// Writes JSON Lines on a second thread while the capture is decoded on the first: the Works
/// annotation of PUBLISH payloads (left for later by the dissector), turning events into JSON
/// and writing them out are two thirds of the work of `--format jsonl`, and the decoding
/// (TCP, WebSocket, MQTT, the stateful dialects) cannot be split. Events go over in
/// batches, in order, with the error records between them; at most four batches wait, and a
/// batch holds at most 256 events and about 4 MiB of payloads (large or inflated messages), so
/// memory stays bounded when the disk is slower than the decoder.
final class BackgroundLines {
    private enum Item {
        case events([CaptureEvent])
        /// Lines the decoding thread wrote itself, newlines included.
        case lines(WrittenLines)
        case line(String)
    }

    private let queue = Handoff<Item>(capacity: 4)
    private let written = Handoff<Void>(capacity: 1)
    private let spareLines = SpareLines()
    private var batch: [CaptureEvent] = []
    /// The decoding thread's own, for the lines it writes itself.
    private var memory = DecodeRecord.HeaderMemory()
    private let batchSize = 256
    /// Payload bytes the batch being gathered holds, and the most it may.
    private var batchBytes = 0
    private let batchByteLimit = 4 << 20
    private var finished = false
    private let showsSecrets: Bool

    init(showsSecrets: Bool) {
        self.showsSecrets = showsSecrets
        let queue = queue
        let written = written
        let spareLines = spareLines
        Thread {
            let output = OutputBuffer()
            var memory = DecodeRecord.HeaderMemory()
            while let items = queue.takeAll() {
                for item in items {
                    switch item {
                    case .events(let events):
                        // By index: the event is read where it lies, not copied out (retaining
                        // every buffer and string in it) by the array's iterator.
                        for index in events.indices {
                            output.line { DecodeRecord.write(events[index], showsSecrets: showsSecrets, memory: &memory, to: &$0) }
                        }
                    case .lines(let lines):
                        lines.writer.withUnsafeBytes { output.write($0) }
                        spareLines.give(lines)
                    case .line(let text):
                        output.line(text)
                    }
                }
            }
            output.flush()
            written.put(())
        }.start()
    }

    /// An event to write, after those given before it.
    func add(_ event: consuming CaptureEvent) {
        batchBytes += event.heldBytes
        batch.append(event)
        if batch.count >= batchSize || batchBytes >= batchByteLimit { sendBatch() }
    }

    /// A line written as it is, after the events given before it.
    func add(line: String) {
        if !batch.isEmpty { sendBatch() }
        queue.put(.line(line))
    }

    /// Writes what is left and waits until all of it is written.
    func finish() {
        guard !finished else { return }
        finished = true
        if !batch.isEmpty { sendBatch() }
        queue.close()
        _ = written.takeAll()
    }

    /// Sends the batch; when the writing thread is two batches behind, this thread writes the
    /// batch's lines itself (Works annotations included), so that the two share the work
    /// whatever its mix. (At one batch behind, this thread, which also decodes, took too much
    /// of the writing: 0.262 s against 0.246 s on the benchmark capture.)
    private func sendBatch() {
        let events = batch
        batch = []
        batchBytes = 0
        batch.reserveCapacity(batchSize)
        if queue.backlog >= 2 {
            let lines = spareLines.take(capacity: events.count * 1024)
            for index in events.indices {
                DecodeRecord.write(events[index], showsSecrets: showsSecrets, memory: &memory, to: &lines.writer)
                lines.writer.append(0x0A)
            }
            queue.put(.lines(lines))
        } else {
            queue.put(.events(events))
        }
    }
}

/// A block of lines on its way from the decoding thread to the writing one: made by the one,
/// then only read by the other.
private final class WrittenLines: @unchecked Sendable {
    var writer: ByteWriter

    init(capacity: Int) {
        writer = ByteWriter(capacity: capacity)
    }
}

/// Blocks of lines written out and handed back for the next ones: a new block each time was
/// fresh memory, and the page faults of filling it were a twentieth of the run.
private final class SpareLines: @unchecked Sendable {  // `blocks` is guarded by `lock`
    private let lock = NSLock()
    private var blocks: [WrittenLines] = []

    func take(capacity: Int) -> WrittenLines {
        lock.withLock { blocks.popLast() } ?? WrittenLines(capacity: capacity)
    }

    func give(_ lines: WrittenLines) {
        lines.writer.removeAll()
        lock.withLock {
            if blocks.count < 4 { blocks.append(lines) }
        }
    }
}
