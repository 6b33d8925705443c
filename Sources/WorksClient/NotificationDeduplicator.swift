/// Drops notifications seen before within a time window, keyed by `notification-id`: the
/// service can deliver the same notification more than once (PROTOCOLS.md §1; the reference
/// window is 60 s). Memory is bounded by what arrives within one window.
public struct NotificationDeduplicator: Sendable {
    public let window: Duration
    private var seen: [String: ContinuousClock.Instant] = [:]
    private var order: [(id: String, time: ContinuousClock.Instant)] = []
    private var head = 0

    public init(window: Duration = .seconds(60)) {
        self.window = window
    }

    /// How many identifiers are remembered now.
    public var count: Int { seen.count }

    /// Records `id` and tells whether it was seen within the window before `now`.
    public mutating func isDuplicate(_ id: String, now: ContinuousClock.Instant) -> Bool {
        expire(now: now)
        if seen[id] != nil { return true }
        seen[id] = now
        order.append((id, now))
        return false
    }

    private mutating func expire(now: ContinuousClock.Instant) {
        while head < order.count, now - order[head].time >= window {
            let entry = order[head]
            if seen[entry.id] == entry.time { seen[entry.id] = nil }
            head += 1
        }
        // Compact once the expired prefix outweighs the live part.
        if head > 1024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
