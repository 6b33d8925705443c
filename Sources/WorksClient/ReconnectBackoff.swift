/// When to try again after a lost connection: exponential backoff with jitter, 1 s doubling
/// to 300 s, reset after a connection that stayed up 60 s (the hardened client of
/// docs/protocols.md §1, where the seed waited 5 s then 10 s and gave up after 3 tries).
public struct ReconnectPolicy: Sendable, Hashable {
    public var initialDelay: Duration
    public var maximumDelay: Duration
    /// Each delay is drawn from [(1 − jitter) × d, d], so clients that lost the same server
    /// do not all come back at the same instant.
    public var jitter: Double
    /// A connection that lasted this long resets the backoff to ``initialDelay``.
    public var resetAfter: Duration
    /// Attempts after a loss before `run()` gives up; 0 means forever.
    public var maximumAttempts: Int

    public init(initialDelay: Duration = .seconds(1), maximumDelay: Duration = .seconds(300), jitter: Double = 0.25,
                resetAfter: Duration = .seconds(60), maximumAttempts: Int = 0) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.jitter = min(max(jitter, 0), 1)
        self.resetAfter = resetAfter
        self.maximumAttempts = max(maximumAttempts, 0)
    }
}

/// The backoff's state across attempts.
public struct ReconnectBackoff: Sendable {
    public let policy: ReconnectPolicy
    /// Failed attempts since the last reset.
    public private(set) var attempts = 0

    public init(policy: ReconnectPolicy) {
        self.policy = policy
    }

    /// The delay before the next attempt, or nil when the attempts are used up.
    /// `connectedFor` is how long the connection that just ended was up (nil if it never came up).
    public mutating func nextDelay(connectedFor: Duration?, using random: inout some RandomNumberGenerator) -> Duration? {
        if let connectedFor, connectedFor >= policy.resetAfter { attempts = 0 }
        if policy.maximumAttempts > 0 && attempts >= policy.maximumAttempts { return nil }
        let ceiling = baseDelay(attempt: attempts)
        attempts += 1
        guard policy.jitter > 0 else { return ceiling }
        let factor = Double.random(in: (1 - policy.jitter)...1, using: &random)
        return ceiling * factor
    }

    /// The delay before jitter for the `attempt`-th try after a loss (0-based).
    public func baseDelay(attempt: Int) -> Duration {
        var delay = policy.initialDelay
        for _ in 0..<min(attempt, 64) {
            delay *= 2
            if delay >= policy.maximumDelay { return policy.maximumDelay }
        }
        return min(delay, policy.maximumDelay)
    }
}
