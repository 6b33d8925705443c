import Dialects
import Testing

/// CocoroCore's sentence buffering and cc-discord's delivery throttle, with explicit times.
@Suite struct SentenceBufferTests {
    @Test func underEightyCharactersNothingGoesOut() {
        var buffer = SentenceBuffer(start: 0)
        #expect(buffer.append("Hello. This is short.", at: 0.1) == nil)
        #expect(buffer.pending == "Hello. This is short.")
    }

    @Test func atEightyEverythingUpToTheLastSentenceEndGoesOut() {
        var buffer = SentenceBuffer(start: 0)
        let first = String(repeating: "a", count: 40) + ". " + String(repeating: "b", count: 33) + ". tail"
        #expect(first.unicodeScalars.count == 81)
        // The last end, not the first: both sentences go, "tail" waits (with its leading space).
        #expect(buffer.append(first, at: 0.5) == String(repeating: "a", count: 40) + ". " + String(repeating: "b", count: 33) + ".")
        #expect(buffer.pending == " tail")
        // Eighty characters with no sentence end: they wait for the forced flush.
        #expect(buffer.append(String(repeating: "c", count: 80), at: 0.6) == nil)
        #expect(buffer.poll(at: 2.4) == nil, "1.9 s after the last send")
        #expect(buffer.poll(at: 2.5) == " tail" + String(repeating: "c", count: 80))
        #expect(buffer.poll(at: 9) == nil, "nothing buffered")
    }

    @Test func japaneseTextEndsAtJapanesePunctuation() {
        var buffer = SentenceBuffer(start: 0)
        // 40 kana, 。, 39 more, then a Latin period: with kana the Latin "." is no sentence end.
        let text = String(repeating: "あ", count: 40) + "。" + String(repeating: "い", count: 39) + "x.y"
        #expect(buffer.append(text, at: 0) == String(repeating: "あ", count: 40) + "。")
        #expect(buffer.pending == String(repeating: "い", count: 39) + "x.y")
        #expect(SentenceBuffer.endings(for: "漢字") == ["。", "？", "．", "\n"])
        #expect(SentenceBuffer.endings(for: "plain text") == [".", "\n"])
        // Scalars are counted as Python counts them: 80 emoji-free CJK characters reach the threshold.
        var counted = SentenceBuffer(start: 0)
        #expect(counted.append(String(repeating: "字", count: 79) + "\n", at: 0) == String(repeating: "字", count: 79) + "\n")
    }

    @Test func theRestGoesOutBeforeEnd() {
        var buffer = SentenceBuffer(start: 0)
        _ = buffer.append("Partial sentence without an end", at: 0.1)
        #expect(buffer.finish() == "Partial sentence without an end")
        #expect(buffer.finish() == nil)
    }

    @Test func theForcedFlushCountsFromTheStartUntilTheFirstSend() {
        var buffer = SentenceBuffer(start: 10)
        _ = buffer.append("slow", at: 10.5)
        #expect(buffer.poll(at: 11.9) == nil)
        #expect(buffer.poll(at: 12.0) == "slow")
    }
}

@Suite struct DeliveryThrottleTests {
    @Test func oneFlushPerSecondTheTimerNotPushedBackByChunks() {
        var throttle = DeliveryThrottle(mode: .append)
        throttle.receive("Hel", at: 0.0)
        throttle.receive("lo ", at: 0.4)
        throttle.receive("world", at: 0.9)
        #expect(throttle.due == 1.0, "armed by the first chunk, not moved by later ones")
        #expect(throttle.tick(at: 0.99).isEmpty)
        #expect(throttle.tick(at: 1.0) == [.post("Hello world")])
        #expect(throttle.due == nil)
        throttle.receive("!", at: 1.2)
        #expect(throttle.due == 2.2)
        #expect(throttle.complete() == [.post("!")])
    }

    @Test func eachFlushIsCappedAndTheRestWaitsForTheNextBeat() {
        var throttle = DeliveryThrottle(mode: .append)
        throttle.receive(String(repeating: "x", count: 2000), at: 0)
        #expect(throttle.tick(at: 1) == [.post(String(repeating: "x", count: 1900))])
        #expect(throttle.due == 2)
        #expect(throttle.tick(at: 2) == [.post(String(repeating: "x", count: 100))])
    }

    @Test func editModeEditsThePlaceholderAndSplitsTheFullTextByLineAtTheEnd() {
        var throttle = DeliveryThrottle(mode: .edit)
        throttle.receive("first line\n", at: 0)
        #expect(throttle.tick(at: 1) == [.edit("first line\n")])
        let long = String(repeating: "y", count: 1000) + "\n" + String(repeating: "z", count: 1000)
        throttle.receive(long, at: 1.5)
        // The placeholder shows what fits.
        #expect(throttle.tick(at: 2.5) == [.edit(String(("first line\n" + long).unicodeScalars.prefix(1900)))])
        // At the end: the full text again, cut after a newline within 1,900 characters.
        let end = throttle.complete()
        #expect(end == [.edit("first line\n" + String(repeating: "y", count: 1000) + "\n"), .post(String(repeating: "z", count: 1000))])
    }

    @Test func splittingCutsAfterNewlinesAndHardCutsLongLines() {
        #expect(DeliveryThrottle.split("") == [])
        #expect(DeliveryThrottle.split("short") == ["short"])
        let oneLine = String(repeating: "w", count: 4000)
        #expect(DeliveryThrottle.split(oneLine).map(\.count) == [1900, 1900, 200])
        let lines = (0..<100).map { "line \($0) " + String(repeating: "-", count: 40) }.joined(separator: "\n")
        let parts = DeliveryThrottle.split(lines)
        #expect(parts.joined() == lines)
        #expect(parts.allSatisfy { $0.unicodeScalars.count <= 1900 })
        #expect(parts.dropLast().allSatisfy { $0.hasSuffix("\n") })
    }
}
