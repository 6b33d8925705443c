import NIOConcurrencyHelpers

/// The time a live server goes by: the mock's broker (its ticks, delayed acknowledgements, the
/// AI core's paced replies) and the replay runner (pace, timeouts, the settling time). ``system``
/// is the machine's clock; a test makes a ``manual()`` one and moves it with ``advance(by:)``, so
/// that timed rules are tested by moving time instead of sleeping and measuring windows.
public final class LiveClock: Sendable {
    /// The machine's monotonic clock.
    public static var system: LiveClock { LiveClock(manual: false) }
    /// A clock that stands still until ``advance(by:)`` moves it.
    public static func manual() -> LiveClock { LiveClock(manual: true) }

    private struct Sleeper {
        var deadline: Duration
        var id: UInt64
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var elapsed: Duration = .zero
        var sleepers: [Sleeper] = []
        var nextID: UInt64 = 0
    }

    private let isManual: Bool
    private let origin = ContinuousClock.now
    private let state = NIOLockedValueBox(State())

    private init(manual: Bool) {
        isManual = manual
    }

    /// Now, on this clock.
    public var now: ContinuousClock.Instant {
        isManual ? origin + state.withLockedValue { $0.elapsed } : .now
    }

    /// Returns after `duration` on this clock, or at once when the task is cancelled.
    public func sleep(for duration: Duration) async {
        guard isManual else {
            try? await Task.sleep(for: duration)
            return
        }
        let (id, deadline) = state.withLockedValue { state -> (UInt64, Duration) in
            state.nextID += 1
            return (state.nextID, state.elapsed + duration)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let due = state.withLockedValue { state -> Bool in
                    // Cancelled before waiting (the handler found nothing to resume), or already due.
                    if Task.isCancelled || state.elapsed >= deadline { return true }
                    state.sleepers.append(Sleeper(deadline: deadline, id: id, continuation: continuation))
                    return false
                }
                if due { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLockedValue { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume()
        }
    }

    /// Returns at `deadline` on this clock (at once when it has passed), or when the task is cancelled.
    public func sleep(until deadline: ContinuousClock.Instant) async {
        let wait = deadline - now
        if wait > .zero { await sleep(for: wait) }
    }

    /// Moves a manual clock forward; every sleep whose end has come returns.
    public func advance(by duration: Duration) {
        precondition(isManual, "only a manual clock is moved by hand")
        let due = state.withLockedValue { state -> [Sleeper] in
            state.elapsed += duration
            let due = state.sleepers.filter { $0.deadline <= state.elapsed }
            state.sleepers.removeAll { $0.deadline <= state.elapsed }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// How many sleeps wait on a manual clock (a test waits for the broker to be asleep again).
    public var sleeping: Int { state.withLockedValue { $0.sleepers.count } }
}
