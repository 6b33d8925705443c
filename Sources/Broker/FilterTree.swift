import MQTTWire

/// The topic filters of every subscription, level by level: the filters a topic matches are
/// found by walking the topic's levels (each level's exact child, its `+` child, and any `#`
/// below), so a publish costs what its topic's depth and the matching filters cost, not the
/// number of filters held. One client with a million subscriptions made every publish of the
/// broker scan them all (0.54 s each). Matches exactly as ``TopicMatching/matches(filter:topic:)``
/// does, `$` topics included [MQTT-4.7.2-1]; a test holds the two equal on generated filters.
struct FilterTree: Sendable {
    private struct Node: Sendable {
        var children: [Substring: Node] = [:]
        /// The filter that ends at this node, if one does.
        var filter: String?

        var isEmpty: Bool { children.isEmpty && filter == nil }
    }

    private var root = Node()
    private(set) var count = 0

    mutating func insert(_ filter: String) {
        let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
        if Self.insert(filter, levels: levels[...], into: &root) { count += 1 }
    }

    private static func insert(_ filter: String, levels: ArraySlice<Substring>, into node: inout Node) -> Bool {
        guard let level = levels.first else {
            defer { node.filter = filter }
            return node.filter == nil
        }
        return insert(filter, levels: levels.dropFirst(), into: &node.children[level, default: Node()])
    }

    mutating func remove(_ filter: String) {
        let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
        if Self.remove(levels: levels[...], from: &root) { count -= 1 }
    }

    /// Whether the filter was there; empty nodes on its path are pruned.
    private static func remove(levels: ArraySlice<Substring>, from node: inout Node) -> Bool {
        guard let level = levels.first else {
            defer { node.filter = nil }
            return node.filter != nil
        }
        guard node.children[level] != nil else { return false }
        let removed = remove(levels: levels.dropFirst(), from: &node.children[level]!)
        if node.children[level]?.isEmpty == true { node.children[level] = nil }
        return removed
    }

    /// Every filter that `topic` matches, each once.
    func filters(matching topic: String) -> [String] {
        var found: [String] = []
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        // Filters that start with a wildcard do not match topics that start with `$`.
        Self.collect(root, levels: levels[...], wildcardsAllowed: !topic.hasPrefix("$"), into: &found)
        return found
    }

    private static func collect(_ node: Node, levels: ArraySlice<Substring>, wildcardsAllowed: Bool, into found: inout [String]) {
        // `#` matches this level's parent and everything below it ("a/#" matches "a").
        if wildcardsAllowed, let filter = node.children["#"]?.filter { found.append(filter) }
        guard let level = levels.first else {
            if let filter = node.filter { found.append(filter) }
            return
        }
        let rest = levels.dropFirst()
        if let exact = node.children[level] { collect(exact, levels: rest, wildcardsAllowed: true, into: &found) }
        // A topic has no wildcards; a level spelled "+" (which no valid topic has) is visited once.
        if wildcardsAllowed, level != "+", let plus = node.children["+"] { collect(plus, levels: rest, wildcardsAllowed: true, into: &found) }
    }
}
