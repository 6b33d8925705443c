/// Finding where units (WebSocket frames, MQTT packets) start again after lost bytes: the
/// next offset where a header is plausible and is followed by another plausible header,
/// or ends exactly where the data ends. The chain is what keeps random payload bytes
/// from passing for a header. Each protocol supplies its own header rule.
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

    public static func find(in bytes: UnsafeRawBufferPointer, header: (UnsafeRawBufferPointer, Int) -> Header) -> Result {
        var index = 0
        while index < bytes.count {
            switch header(bytes, index) {
            case .invalid:
                index += 1
            case .incomplete:
                return .notYet(discardable: index)
            case .valid(let total):
                let next = index + total
                if next == bytes.count { return .found(index) }
                if next > bytes.count { return .notYet(discardable: index) }
                switch header(bytes, next) {
                case .valid, .incomplete: return .found(index)
                case .invalid: index += 1
                }
            }
        }
        return .notYet(discardable: bytes.count)
    }
}
