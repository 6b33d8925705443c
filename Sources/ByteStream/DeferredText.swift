/// A text written now, or only when it is read: the reason of a decoding error, which the
/// decoders throw far more often than anyone reads it (broken streams; fuzzers, millions of
/// inputs). Both error types of the codecs keep their reason this way.
public struct DeferredText: Sendable {
    private enum Source: Sendable {
        case written(String)
        case deferred(@Sendable () -> String)
    }

    private let source: Source

    public init(_ text: String) {
        source = .written(text)
    }

    public init(deferred write: @escaping @Sendable () -> String) {
        source = .deferred(write)
    }

    public var text: String {
        switch source {
        case .written(let text): text
        case .deferred(let write): write()
        }
    }
}
