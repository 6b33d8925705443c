import CommandLineSupport
import Dissector
import Foundation

/// Writes JSON Lines on a second thread while the capture is decoded on the first: the Works
/// annotation of PUBLISH payloads (left for later by the dissector), turning events into JSON
/// and writing them out are two thirds of the work of `--format jsonl`, and the decoding
/// (TCP, WebSocket, MQTT, the stateful dialects) cannot be split. Events go over in
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
                        for var event in events {
                            event.completeAnnotation()
                            output.line { DecodeRecord.write(event, showsSecrets: showsSecrets, to: &$0) }
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
        if batch.count >= batchSize { sendBatch() }
    }

    /// A line written as it is, after the events given before it.
    func add(line: String) {
        if !batch.isEmpty { sendBatch() }
        send(.line(line))
    }

    /// Writes what is left and waits until all of it is written.
    func finish() {
        if !batch.isEmpty { sendBatch() }
        condition.lock()
        finished = true
        condition.broadcast()
        while !done { condition.wait() }
        condition.unlock()
    }

    /// Sends the batch; when the writing thread is behind, this thread makes the batch's
    /// Works annotations itself first, so that the two share the work whatever its mix.
    private func sendBatch() {
        var events = batch
        batch = []
        batch.reserveCapacity(batchSize)
        if backlog() >= 1 {
            for index in events.indices { events[index].completeAnnotation() }
        }
        send(.events(events))
    }

    private func backlog() -> Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.count
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
