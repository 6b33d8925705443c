public import Capture
import Foundation

/// `--stats` of a capture on two threads. One connection tracker follows every connection;
/// the connections are then shared out by their id (even ones stay on the reading thread,
/// odd ones go to a second thread), each side with its own dissector and statistics, merged
/// at the end. A connection's numbers depend only on its own events in their own order, so
/// they are those of one thread (a test holds the two equal on every committed capture);
/// a capture of one connection gains nothing.
public enum ParallelStatistics {
    /// The statistics of a whole capture, read to its end; `failed` gets every capture error
    /// (a file error ends the reading), `frameRead` sees each frame.
    public static func statistics(of reader: PcapReader, options: CaptureDissector.Options,
                                  frameRead: (CapturedFrame) -> Void = { _ in },
                                  failed: (CaptureError) -> Void) -> DecodeStatistics {
        let worker = StatisticsWorker(options: options)
        var tracker = CaptureDissector.tracker(options: options)
        var dissector = CaptureDissector(options: options)
        var statistics = DecodeStatistics()
        let last = CaptureDissector.readSegments(of: reader, frameRead: frameRead, failed: failed) { segment in
            guard let segment else { return }
            var mine: [FlowEvent] = []
            for event in tracker.process(segment) {
                if event.connectionID % 2 == 0 { mine.append(event) } else { worker.add(event) }
            }
            if !mine.isEmpty { for event in dissector.translate(mine) { statistics.add(event) } }
        }
        // As CaptureDissector.finish: undecided connections are decided, then all are closed.
        for event in dissector.decideUndecided(frame: last.frame, time: last.time) { statistics.add(event) }
        let closing = tracker.finish(frame: last.frame, time: last.time)
        let theirs = closing.filter { $0.connectionID % 2 != 0 }
        for event in dissector.translate(closing.filter { $0.connectionID % 2 == 0 }) { statistics.add(event) }
        statistics.merge(worker.finish(frame: last.frame, time: last.time, closing: theirs))
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

/// The second thread of ``ParallelStatistics``: flow events in, in batches (at most eight
/// waiting, so memory stays bounded), statistics out at the end.
private final class StatisticsWorker {
    private enum Item {
        case events([FlowEvent])
        /// The end of the capture at `frame`: undecided connections are decided, then `closing` closes the rest.
        case end(frame: Int, time: Double, closing: [FlowEvent])
    }

    private let queue = Handoff<Item>(capacity: 8)
    private let result = Handoff<DecodeStatistics>(capacity: 1)
    private var batch: [FlowEvent] = []
    private let batchSize = 256

    init(options: CaptureDissector.Options) {
        let queue = queue
        let result = result
        Thread {
            var dissector = CaptureDissector(options: options)
            var statistics = DecodeStatistics()
            while let items = queue.takeAll() {
                for item in items {
                    switch item {
                    case .events(let events):
                        for event in dissector.translate(events) { statistics.add(event) }
                    case .end(let frame, let time, let closing):
                        for event in dissector.decideUndecided(frame: frame, time: time) { statistics.add(event) }
                        for event in dissector.translate(closing) { statistics.add(event) }
                    }
                }
            }
            result.put(statistics)
        }.start()
    }

    func add(_ event: FlowEvent) {
        batch.append(event)
        if batch.count >= batchSize { send() }
    }

    /// The statistics of this thread's connections, once it has decided and closed them.
    func finish(frame: Int, time: Double, closing events: [FlowEvent]) -> DecodeStatistics {
        if !batch.isEmpty { send() }
        queue.put(.end(frame: frame, time: time, closing: events))
        queue.close()
        return result.takeAll()?.first ?? DecodeStatistics()
    }

    private func send() {
        let events = batch
        batch = []
        batch.reserveCapacity(batchSize)
        queue.put(.events(events))
    }
}
