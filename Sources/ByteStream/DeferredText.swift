/// A text written now, or only when it is read: the reason of a decoding error, which the
/// decoders throw far more often than anyone reads it (broken streams; fuzzers, millions of
/// inputs). Both error types of the codecs keep their reason this way.
public struct DeferredText: Sendable {
    /// What a reason is written from when it is read: a short text and two numbers.
    ///
    /// A closure that captures the values of a reason is allocated each time an error is made;
    /// a formatter that captures nothing, given these values, is not. The decoders' most
    /// frequent errors (a fixed header's, a field cut short) use it: a fuzzer meets several
    /// per input, and each allocation went through AddressSanitizer's allocator.
    public struct Values: Sendable {
        /// A field's name or a version: short texts are kept inline, without an allocation.
        public var text: String
        public var first: Int
        public var second: Int

        public init(_ text: String = "", _ first: Int = 0, _ second: Int = 0) {
            self.text = text
            self.first = first
            self.second = second
        }
    }

    private enum Source: Sendable {
        case written(String)
        case deferred(@Sendable () -> String)
        case formatted(@Sendable (Values) -> String, Values)
    }

    private let source: Source

    public init(_ text: String) {
        source = .written(text)
    }

    public init(deferred write: @escaping @Sendable () -> String) {
        source = .deferred(write)
    }

    /// `format` should capture nothing: what it needs comes in `values`.
    public init(_ values: Values, format: @escaping @Sendable (Values) -> String) {
        source = .formatted(format, values)
    }

    public var text: String {
        switch source {
        case .written(let text): text
        case .deferred(let write): write()
        case .formatted(let format, let values): format(values)
        }
    }
}
