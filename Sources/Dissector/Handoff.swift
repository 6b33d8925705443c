import Foundation

/// Items handed from one thread to another, in order: `put` waits while `capacity` items
/// wait (so memory stays bounded when the taker is slower), `takeAll` waits until there is
/// something and takes all of it, `close` says nothing more comes. An item changes hands: the
/// thread that put it does not touch it again. wmq-decode's other threads are fed this way.
public final class Handoff<Item>: @unchecked Sendable {  // `items` and `closed` are guarded by `condition`
    private let condition = NSCondition()
    private var items: [Item] = []
    private var closed = false
    private let capacity: Int

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    public func put(_ item: Item) {
        condition.lock()
        while items.count >= capacity && !closed { condition.wait() }
        items.append(item)
        condition.broadcast()
        condition.unlock()
    }

    /// Everything waiting, once there is something; nil once closed with nothing left.
    public func takeAll() -> [Item]? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !closed { condition.wait() }
        if items.isEmpty { return nil }
        let taken = items
        items = []
        condition.broadcast()
        return taken
    }

    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// How many items wait.
    public var backlog: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count
    }
}
