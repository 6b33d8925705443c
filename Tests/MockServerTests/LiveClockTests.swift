import LiveClock
import TestSupport
import LiveClock
import Testing

/// The broker's clock: a manual one stands still until moved, and its sleeps end when it
/// passes their end or their task is cancelled.
@Suite("Live clock")
struct LiveClockTests {
    @Test func aManualClockMovesOnlyWhenAdvanced() async throws {
        let clock = LiveClock.manual()
        let start = clock.now
        try await Task.sleep(for: .milliseconds(20))
        #expect(clock.now == start)
        clock.advance(by: .seconds(3))
        #expect(clock.now - start == .seconds(3))
    }

    @Test func aSleepEndsWhenTheClockPassesItsEnd() async throws {
        let clock = LiveClock.manual()
        let woke = Flag()
        let sleeper = Task {
            await clock.sleep(for: .seconds(10))
            await woke.set()
        }
        #expect(await waitUntil { clock.sleeping == 1 })
        clock.advance(by: .seconds(9))
        try await Task.sleep(for: .milliseconds(50))
        #expect(await !woke.value && clock.sleeping == 1)
        clock.advance(by: .seconds(1))
        await sleeper.value
        #expect(await woke.value && clock.sleeping == 0)
    }

    @Test func aCancelledSleepEndsAtOnce() async throws {
        let clock = LiveClock.manual()
        let sleeper = Task { await clock.sleep(for: .seconds(3600)) }
        #expect(await waitUntil { clock.sleeping == 1 })
        sleeper.cancel()
        await sleeper.value
        #expect(clock.sleeping == 0)
        // Cancelled before it sleeps: it does not wait either.
        let late = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await clock.sleep(for: .seconds(3600))
        }
        await late.value
        #expect(clock.sleeping == 0)
    }

    @Test func theSystemClockSleepsForReal() async {
        let clock = LiveClock.system
        let start = ContinuousClock.now
        await clock.sleep(for: .milliseconds(30))
        #expect(ContinuousClock.now - start >= .milliseconds(30))
    }
}

private actor Flag {
    private(set) var value = false
    func set() { value = true }
}
