/// MQTT topic filter matching (MQTT 3.1.1 §4.7, MQTT 5.0 §4.7).
public enum TopicMatching {
    /// Whether `topic` matches `filter`: `+` matches one level, a final `#` the parent
    /// level and everything below it; filters starting with a wildcard do not match
    /// topics starting with `$` ([MQTT-4.7.2-1]).
    ///
    /// Walks both strings' UTF-8 bytes level by level without allocating: a broker calls
    /// this for every subscription a message might reach.
    public static func matches(filter: String, topic: String) -> Bool {
        var filter = filter
        var topic = topic
        return filter.withUTF8 { filterBytes in
            topic.withUTF8 { topicBytes in matches(filter: filterBytes, topic: topicBytes) }
        }
    }

    /// Why `filter` is no valid topic filter (MQTT §4.7.1: `#` last and alone in its level,
    /// `+` alone in its level, at least one character), with the normative statement; nil
    /// when it is valid.
    public static func problem(inFilter filter: String) -> String? {
        TopicRules.filterProblem(filter).map { "\($0.reason) [\($0.spec)]" }
    }

    static let slash = UInt8(ascii: "/")
    static let plus = UInt8(ascii: "+")
    static let hash = UInt8(ascii: "#")

    static func matches(filter: UnsafeBufferPointer<UInt8>, topic: UnsafeBufferPointer<UInt8>) -> Bool {
        if let first = topic.first, first == UInt8(ascii: "$"), let lead = filter.first, lead == plus || lead == hash {
            return false
        }
        let filterCount = filter.count
        let topicCount = topic.count
        var filterStart = 0
        // Past topicCount once the topic has no level left.
        var topicStart = 0
        while true {
            var filterEnd = filterStart
            while filterEnd < filterCount && filter[filterEnd] != slash { filterEnd += 1 }
            let width = filterEnd - filterStart
            if width == 1 && filter[filterStart] == hash { return true }
            if topicStart > topicCount { return false }
            var topicEnd = topicStart
            while topicEnd < topicCount && topic[topicEnd] != slash { topicEnd += 1 }
            if !(width == 1 && filter[filterStart] == plus) {
                guard topicEnd - topicStart == width else { return false }
                var offset = 0
                while offset < width {
                    if filter[filterStart + offset] != topic[topicStart + offset] { return false }
                    offset += 1
                }
            }
            let filterHasMore = filterEnd < filterCount
            let topicHasMore = topicEnd < topicCount
            if !filterHasMore { return !topicHasMore }
            filterStart = filterEnd + 1
            topicStart = topicHasMore ? topicEnd + 1 : topicCount + 1
        }
    }
}
