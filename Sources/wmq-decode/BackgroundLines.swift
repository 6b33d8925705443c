import CommandLineSupport
import Dissector
import Foundation

/// Writes JSON Lines on a second thread while the capture is decoded on the first: turning
/// events into JSON and writing them out is a third of the work of `--format jsonl`, and
/// the decoding (TCP, WebSocket, MQTT, annotation) cannot be split. Events go over in
/// batches, in order, with the error records between them; at most `maximumQueued` batches
/// wait, so memory stays bounded when the disk is slower than the decoder.
final class BackgroundLines: @unchecked Sendable {  // `queue` and `finished` are guarded by `condition`
    enum Item: Sendable {
        case events([CaptureEvent])
        case line(String)
    }

    private let condition = NSCondition()
    private var queue: [Item] = []
    private var finished = false
    private var done = false
    private var batch: [CaptureEvent] = []
    private let batchSize = 256
    private let maximumQueued = 4

    init(showsSecrets: Bool) {
        let thread = Thread { [self] in
            let output = OutputBuffer()
            while let items = self.take() {
                for item in items {
                    switch item {
                    case .events(let events):
                        for event in events {
                            output.line { DecodeRecord.json(event, showsSecrets: showsSecrets).write(to: &$0) }
                        }
                    case .line(let text):
                        output.line(text)
                    }
                }
            }
            output.flush()
            self.condition.lock()
            self.done = true
            self.condition.broadcast()
            self.condition.unlock()
        }
        thread.start()
    }

    /// An event to write, after those given before it.
    func add(_ event: CaptureEvent) {
        batch.append(event)
        if batch.count >= batchSize { send(.events(takeBatch())) }
    }

    /// A line written as it is, after the events given before it.
    func add(line: String) {
        if !batch.isEmpty { send(.events(takeBatch())) }
        send(.line(line))
    }

    /// Writes what is left and waits until all of it is written.
    func finish() {
        if !batch.isEmpty { send(.events(takeBatch())) }
        condition.lock()
        finished = true
        condition.broadcast()
        while !done { condition.wait() }
        condition.unlock()
    }

    private func takeBatch() -> [CaptureEvent] {
        defer { batch = []; batch.reserveCapacity(batchSize) }
        return batch
    }

    private func send(_ item: Item) {
        condition.lock()
        while queue.count >= maximumQueued { condition.wait() }
        queue.append(item)
        condition.broadcast()
        condition.unlock()
    }

    /// Everything queued, or nil once finished and drained.
    private func take() -> [Item]? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !finished { condition.wait() }
        if queue.isEmpty { return nil }
        let items = queue
        queue = []
        condition.broadcast()
        return items
    }
}
