/// MQTT topic filter matching (MQTT 3.1.1 §4.7, MQTT 5.0 §4.7).
public enum TopicMatching {
    /// Whether `topic` matches `filter`: `+` matches one level, a final `#` the parent
    /// level and everything below it; filters starting with a wildcard do not match
    /// topics starting with `$` ([MQTT-4.7.2-1]).
    public static func matches(filter: String, topic: String) -> Bool {
        let filterLevels = filter.split(separator: "/", omittingEmptySubsequences: false)
        let topicLevels = topic.split(separator: "/", omittingEmptySubsequences: false)
        if topic.hasPrefix("$") && (filter.hasPrefix("+") || filter.hasPrefix("#")) { return false }
        var index = 0
        while index < filterLevels.count {
            let level = filterLevels[index]
            if level == "#" { return true }
            guard index < topicLevels.count else { return false }
            if level != "+" && level != topicLevels[index] { return false }
            index += 1
        }
        return index == topicLevels.count
    }
}
