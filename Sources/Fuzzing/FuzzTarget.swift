import NIOCore

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
    private let body: @Sendable ([UInt8]) throws(OracleViolation) -> Void

    init(name: String, summary: String, maximumInputLength: Int = 4096,
         body: @escaping @Sendable ([UInt8]) throws(OracleViolation) -> Void) {
        self.name = name
        self.summary = summary
        self.maximumInputLength = maximumInputLength
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

/// Chunk sizes for feeding a stream in pieces, derived from a seed byte: sizes 1...64,
/// cycled, so that one-byte feeding and odd splits both happen.
func chunkSizes(seed: UInt8) -> [Int] {
    var rng = SplitMix64(seed: UInt64(seed) &+ 1)
    return (0..<8).map { _ in Int(rng.next() % 64) + 1 }
}

/// `buffer` cut into slices of `sizes` (cycled), or whole when `sizes` is nil. Slices
/// share the buffer's storage: feeding them allocates nothing, which keeps the harnesses
/// fast under AddressSanitizer.
func pieces(of buffer: ByteBuffer, sizes: [Int]?) -> [ByteBuffer] {
    guard let sizes else { return [buffer] }
    var out: [ByteBuffer] = []
    var start = 0
    var turn = 0
    while start < buffer.readableBytes {
        let length = min(sizes[turn % sizes.count], buffer.readableBytes - start)
        if let slice = buffer.getSlice(at: buffer.readerIndex + start, length: length) { out.append(slice) }
        start += length
        turn += 1
    }
    return out
}

/// "item N: expected …, got …" for the first place two answer lists differ.
func firstDifference<T: Equatable>(_ expected: [T], _ actual: [T]) -> String {
    let index = zip(expected, actual).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        ?? min(expected.count, actual.count)
    let want = index < expected.count ? "\(expected[index])" : "nothing"
    let got = index < actual.count ? "\(actual[index])" : "nothing"
    return "item \(index): expected \(want), got \(got) (\(expected.count) vs \(actual.count) items)"
}
