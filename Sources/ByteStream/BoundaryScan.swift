/// Finding where units (WebSocket frames, MQTT packets) start again after lost bytes: the
/// next offset where a header is plausible and is followed by another plausible header.
/// The chain is what keeps random payload bytes from passing for a header. Each protocol
/// supplies its own header rule.
///
/// The answer depends only on the bytes, never on how they were cut into segments: an
/// offset is decided only once the bytes needed to check both headers are there (a
/// unit that ends where the bytes end waits for the next one). Only at the end of the
/// stream is a unit that ends exactly there taken without a successor.
public enum BoundaryScan {
    /// What a header rule says of the bytes at one offset.
    public enum Header: Sendable, Hashable {
        /// A plausible header; the unit it starts is `total` bytes long.
        case valid(total: Int)
        /// Too few bytes to tell.
        case incomplete
        case invalid
    }

    public enum Result: Sendable, Hashable {
        /// Units start at this index.
        case found(Int)
        /// Nothing yet; bytes before this index can never start a unit and may be dropped.
        case notYet(discardable: Int)
    }

    public static func find(in bytes: UnsafeRawBufferPointer, endOfStream: Bool = false,
                            header: (UnsafeRawBufferPointer, Int) -> Header) -> Result {
        var index = 0
        while index < bytes.count {
            switch header(bytes, index) {
            case .invalid:
                index += 1
            case .incomplete:
                return .notYet(discardable: index)
            case .valid(let total):
                let next = index + total
                if next == bytes.count && endOfStream { return .found(index) }
                if next >= bytes.count { return .notYet(discardable: index) }
                switch header(bytes, next) {
                case .valid: return .found(index)
                case .incomplete: return endOfStream ? .found(index) : .notYet(discardable: index)
                case .invalid: index += 1
                }
            }
        }
        return .notYet(discardable: bytes.count)
    }
}
