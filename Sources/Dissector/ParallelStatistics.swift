public import Capture
import Foundation

/// `--stats` of a capture on three threads. The reading thread reads the frames and follows
/// every connection with one connection tracker; the connections are shared out by their id
/// between two dissecting threads (even ones to the first, odd ones to the second), each with
/// its own dissector and statistics, merged at the end. A connection's numbers depend only on
/// its own events in their own order, so they are those of one thread (a test holds the two
/// equal on every committed capture). Reading is about a fifth of the work, so the three share
/// two cores well; a capture of one connection is read on one thread and dissected on another.
public enum ParallelStatistics {
    /// The statistics of a whole capture, read to its end; `failed` gets every capture error
    /// (a file error ends the reading), `frameRead` sees each frame.
    public static func statistics(of reader: PcapReader, options: CaptureDissector.Options,
                                  frameRead: (CapturedFrame) -> Void = { _ in },
                                  stop: () -> Bool = { false },
                                  failed: (CaptureError) -> Void) -> DecodeStatistics {
        let workers = [StatisticsWorker(options: options), StatisticsWorker(options: options)]
        var tracker = CaptureDissector.tracker(options: options)
        let last = CaptureDissector.readSegments(of: reader, frameRead: frameRead, stop: stop, failed: failed) { segment in
            guard let segment else { return }
            tracker.process(segment) { event in workers[event.connectionID % 2].add(event) }
        }
        let closing = tracker.finish(frame: last.frame, time: last.time)
        for (index, worker) in workers.enumerated() {
            worker.end(frame: last.frame, time: last.time, closing: closing.filter { $0.connectionID % 2 == index })
        }
        var statistics = DecodeStatistics()
        for worker in workers { statistics.merge(worker.result()) }
        return statistics
    }
}

extension FlowEvent {
    var connectionID: Int {
        switch self {
        case .opened(let connection): connection.id
        case .data(let id, _, _, _, _), .gap(let id, _, _, _, _), .closed(let id, _, _, _): id
        }
    }
}

/// A dissecting thread of ``ParallelStatistics``: flow events in, in batches (at most eight
/// waiting, so memory stays bounded), statistics out at the end.
private final class StatisticsWorker {
    private enum Item {
        case events([FlowEvent])
        /// The end of the capture at `frame`: undecided connections are decided, then `closing` closes the rest.
        case end(frame: Int, time: Double, closing: [FlowEvent])
    }

    private let queue = Handoff<Item>(capacity: 8)
    private let outcome = Handoff<DecodeStatistics>(capacity: 1)
    private var batch: [FlowEvent] = []
    private let batchSize = 256

    init(options: CaptureDissector.Options) {
        let queue = queue
        let outcome = outcome
        Thread {
            var dissector = CaptureDissector(options: options)
            var statistics = DecodeStatistics()
            while let items = queue.takeAll() {
                for item in items {
                    switch item {
                    case .events(let events):
                        dissector.translate(events) { statistics.add($0) }
                    case .end(let frame, let time, let closing):
                        dissector.decideUndecided(frame: frame, time: time) { statistics.add($0) }
                        dissector.translate(closing) { statistics.add($0) }
                    }
                }
            }
            outcome.put(statistics)
        }.start()
    }

    func add(_ event: FlowEvent) {
        batch.append(event)
        if batch.count >= batchSize { send() }
    }

    /// The end of the capture at `frame`: the thread decides its undecided connections and
    /// closes the rest with `events`.
    func end(frame: Int, time: Double, closing events: [FlowEvent]) {
        if !batch.isEmpty { send() }
        queue.put(.end(frame: frame, time: time, closing: events))
        queue.close()
    }

    /// The statistics of this thread's connections, once it has ended (waits for it).
    func result() -> DecodeStatistics {
        outcome.takeAll()?.first ?? DecodeStatistics()
    }

    private func send() {
        let events = batch
        batch = []
        batch.reserveCapacity(batchSize)
        queue.put(.events(events))
    }
}
