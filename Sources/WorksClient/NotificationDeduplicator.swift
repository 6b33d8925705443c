/// Drops notifications seen before within a time window, keyed by `notification-id`: the
/// service can deliver the same notification more than once (docs/protocols.md §1; the reference
/// window is 60 s).
///
/// Memory is bounded twice: entries leave after the window, and at most ``capacity`` are kept
/// (the oldest go first), so a burst of a million notifications costs no more than a quiet
/// hour. Identifiers are kept as 64-bit hashes: a false "duplicate" needs two identifiers of
/// one window to collide, about 1 in 10^8 at full capacity.
public struct NotificationDeduplicator: Sendable {
    public let window: Duration
    public let capacity: Int
    private var seen: [UInt64: ContinuousClock.Instant] = [:]
    /// Insertion order, as a ring of `capacity` slots.
    private var ring: [(key: UInt64, time: ContinuousClock.Instant)] = []
    private var head = 0

    public init(window: Duration = .seconds(60), capacity: Int = 100_000) {
        self.window = window
        self.capacity = max(capacity, 1)
    }

    /// How many identifiers are remembered now.
    public var count: Int { seen.count }

    /// Records `id` and tells whether it was seen within the window before `now`.
    public mutating func isDuplicate(_ id: String, now: ContinuousClock.Instant) -> Bool {
        expire(now: now)
        var hasher = Hasher()
        hasher.combine(id)
        let key = UInt64(bitPattern: Int64(hasher.finalize()))
        if seen[key] != nil { return true }
        if seen.count == capacity { evictOldest() }
        seen[key] = now
        if ring.count < capacity {
            ring.append((key, now))
        } else {
            ring[(head + seen.count - 1) % capacity] = (key, now)
        }
        return false
    }

    private mutating func expire(now: ContinuousClock.Instant) {
        while !seen.isEmpty, now - ring[head].time >= window { evictOldest() }
    }

    private mutating func evictOldest() {
        let oldest = ring[head]
        if seen[oldest.key] == oldest.time { seen[oldest.key] = nil }
        head = (head + 1) % capacity
    }
}
