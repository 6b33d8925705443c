import NIOCore
import Synchronization

/// A property a harness checks on every input besides "no crash, no hang, no leak":
/// round trips, chunked decoding equal to one-shot decoding, bounded output. A fuzzer
/// turns a violation into a crash (so libFuzzer keeps the input); tests report it.
public struct OracleViolation: Error, Sendable, CustomStringConvertible {
    public let target: String
    public let oracle: String
    public let detail: String

    public init(target: String, oracle: String, detail: String) {
        self.target = target
        self.oracle = oracle
        self.detail = detail
    }

    public var description: String { "\(target): \(oracle): \(detail)" }
}

/// One fuzz target: a name (the folder in `corpora/`), what it exercises, and its
/// harness body, a plain function the fuzzer, the corpus tests and `wmq-fuzz replay`
/// all call.
public struct FuzzTarget: Sendable {
    public let name: String
    public let summary: String
    /// libFuzzer's `-max_len` for this target: inputs longer than this are not generated.
    public let maximumInputLength: Int
    /// The fuzz build that runs it (`Tools/fuzz`; Package.swift's `WMQ_FUZZ`).
    public let build: Build
    private let body: @Sendable ([UInt8]) throws(OracleViolation) -> Void

    /// Which modules carry coverage counters in the build a target runs in.
    public enum Build: String, Sendable, CaseIterable {
        /// Only ByteStream, MQTTWire and WebSocketWire: libFuzzer scans every counter after each
        /// run, and a codec's runs are short, so the fewer counters the more runs (docs/fuzzing.md).
        case codecs
        /// Every parser module.
        case all
    }

    init(name: String, build: Build = .all, summary: String, maximumInputLength: Int = 4096,
         body: @escaping @Sendable ([UInt8]) throws(OracleViolation) -> Void) {
        self.name = name
        self.summary = summary
        self.maximumInputLength = maximumInputLength
        self.build = build
        self.body = body
    }

    /// Runs one input through the harness.
    public func run(_ input: [UInt8]) throws(OracleViolation) {
        try body(input)
    }

    /// Every target, in the order of the issue that asked for them. Later parsers (other
    /// dialects) add theirs here.
    public static let all: [FuzzTarget] = [
        MQTTHarness.v311, MQTTHarness.v5, MQTTHarness.chunked,
        WebSocketHarness.frames, WebSocketHarness.httpUpgrade, WebSocketHarness.deflate,
        CaptureHarness.capture, WorksHarness.works, CaptureHarness.har,
        MockFilesHarness.config, MockFilesHarness.scenario, BrokerHarness.broker,
        DialectsHarness.dialects,
    ]

    public static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}

/// Reads the control bytes some harnesses take from the front of their input (flags,
/// chunk sizes), so that the fuzzer mutates them like the rest.
struct InputCursor {
    private let bytes: [UInt8]
    private(set) var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The next control byte, 0 once the input is used up.
    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// What is left after the control bytes.
    var rest: ArraySlice<UInt8> { bytes[min(index, bytes.count)...] }
}

/// Chunk sizes for feeding a stream in pieces: eight sizes of 1...64 bytes, cycled, so that
/// one-byte feeding and odd splits both happen. They are packed into one word (six bits
/// each), so that cutting a stream allocates nothing: the codec targets run each input in
/// a few microseconds, and every allocation costs AddressSanitizer's allocator and
/// quarantine.
struct ChunkSizes: Sendable, Equatable {
    private let packed: UInt64

    /// Sizes derived from a seed byte of the input.
    init(seed: UInt8) {
        var rng = SplitMix64(seed: UInt64(seed) &+ 1)
        var packed: UInt64 = 0
        for slot in 0..<8 { packed |= (rng.next() % 64) << UInt64(slot * 6) }
        self.packed = packed
    }

    /// The given sizes (each 1...64), cycled through the eight slots.
    init(_ sizes: [Int]) {
        precondition(!sizes.isEmpty && sizes.allSatisfy { (1...64).contains($0) }, "chunk sizes are 1...64")
        var packed: UInt64 = 0
        for slot in 0..<8 { packed |= UInt64(sizes[slot % sizes.count] - 1) << UInt64(slot * 6) }
        self.packed = packed
    }

    /// The size of the `turn`th piece.
    func size(turn: Int) -> Int {
        Int((packed >> UInt64((turn & 7) * 6)) & 63) + 1
    }

    /// The first eight sizes, for messages.
    var sizes: [Int] { (0..<8).map(size(turn:)) }
}

/// Calls `body` with `buffer` cut into slices of `sizes` (cycled), or whole when `sizes` is
/// nil. Slices share the buffer's storage: feeding them allocates nothing.
func forEachPiece<Failure: Error>(of buffer: ByteBuffer, sizes: ChunkSizes?,
                                  _ body: (ByteBuffer) throws(Failure) -> Void) throws(Failure) {
    guard let sizes else {
        try body(buffer)
        return
    }
    var start = 0
    var turn = 0
    while start < buffer.readableBytes {
        let length = min(sizes.size(turn: turn), buffer.readableBytes - start)
        if let slice = buffer.getSlice(at: buffer.readerIndex + start, length: length) { try body(slice) }
        start += length
        turn += 1
    }
}

/// Compares the answers of a later pass over an input (chunked, or by another path) with the
/// first pass's, one by one as they come, without building a second list: the list is built
/// only to describe a difference.
struct AnswerComparison<Answer: Equatable> {
    let expected: [Answer]
    private(set) var count = 0
    private(set) var differs = false

    init(expecting expected: [Answer]) { self.expected = expected }

    mutating func take(_ answer: Answer) {
        if !differs {
            if count < expected.count && expected[count] == answer { count += 1 } else { differs = true }
        }
    }

    /// Whether every answer came, in order, and no other.
    var matches: Bool { !differs && count == expected.count }
}

/// A harness's answer list, kept from one run to the next with its capacity: a fuzz input can
/// hold thousands of frames, and growing a fresh list for each run copied the answers again and
/// again, into fresh pages. `websocket`: median 1.12× over twenty alternating pairs of `wmq-fuzz
/// replay websocket corpora/websocket --rounds 20` (0.80–1.53×); `mqtt-chunked`'s lists are
/// shorter, and it did not move (0.99×), so it builds its own. The list is taken out while a run uses it, so
/// that harnesses run in parallel (as the tests run them) each have one.
final class SpareList<Element: Sendable>: Sendable {
    private let spare = Mutex<[Element]>([])

    /// Calls `body` with an empty list, and keeps the list's room for the next call.
    func withEmptyList<Result>(_ body: (inout [Element]) throws(OracleViolation) -> Result) throws(OracleViolation) -> Result {
        var list = spare.withLock { spare in
            var taken: [Element] = []
            swap(&taken, &spare)
            return taken
        }
        defer {
            list.removeAll(keepingCapacity: true)
            spare.withLock { spare in swap(&list, &spare) }
        }
        return try body(&list)
    }
}

/// "item N: expected …, got …" for the first place two answer lists differ.
func firstDifference<T: Equatable>(_ expected: [T], _ actual: [T]) -> String {
    let index = zip(expected, actual).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        ?? min(expected.count, actual.count)
    let want = index < expected.count ? "\(expected[index])" : "nothing"
    let got = index < actual.count ? "\(actual[index])" : "nothing"
    return "item \(index): expected \(want), got \(got) (\(expected.count) vs \(actual.count) items)"
}
