/// The delivery rules of streamed AI replies (docs/protocols.md §4 and §5), as pure values: text and
/// time in, what to send out. The mock serves with them and the decoder reassembles what they
/// cut; tests drive them with explicit times. Lengths count Unicode scalars, as the seeds'
/// Python `len()` does, not grapheme clusters.

/// CocoroCore's text buffering for its `/ws/chat/{client_id}` socket (§5): once the buffer holds
/// at least 80 characters, everything up to the **last** sentence end goes out and the rest stays;
/// 2 s after the last send whatever is buffered goes out (the server polls every 0.1 s); and
/// before `end` the rest goes out. Sentence ends are `。？．` and newline when the buffered text
/// holds kana or kanji, else `.` and newline.
public struct SentenceBuffer: Sendable, Hashable {
    public static let threshold = 80
    public static let forcedAfter = 2.0

    public private(set) var pending = ""
    private var lastSent: Double

    /// `start`: when the reply began (seconds, any clock); the 2 s count from it until the first send.
    public init(start: Double) {
        lastSent = start
    }

    /// Adds streamed text; returns what goes out now, if anything.
    public mutating func append(_ text: String, at time: Double) -> String? {
        pending += text
        guard pending.unicodeScalars.count >= Self.threshold else { return nil }
        let endings = Self.endings(for: pending)
        guard let last = pending.unicodeScalars.lastIndex(where: { endings.contains($0) }) else { return nil }
        let cut = pending.unicodeScalars.index(after: last)
        let out = String(pending.unicodeScalars[..<cut])
        pending = String(pending.unicodeScalars[cut...])
        lastSent = time
        return out
    }

    /// The poll: everything buffered once 2 s passed since the last send.
    public mutating func poll(at time: Double) -> String? {
        guard !pending.isEmpty, time - lastSent >= Self.forcedAfter else { return nil }
        lastSent = time
        defer { pending = "" }
        return pending
    }

    /// Before `end`: the rest.
    public mutating func finish() -> String? {
        guard !pending.isEmpty else { return nil }
        defer { pending = "" }
        return pending
    }

    static let japaneseEndings: Set<Unicode.Scalar> = ["。", "？", "．", "\n"]
    static let latinEndings: Set<Unicode.Scalar> = [".", "\n"]

    /// The sentence ends that count for `text`: Japanese ones when it holds kana or kanji.
    public static func endings(for text: String) -> Set<Unicode.Scalar> {
        text.unicodeScalars.contains(where: isKanaOrKanji) ? japaneseEndings : latinEndings
    }

    static func isKanaOrKanji(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x3040...0x309F, 0x30A0...0x30FF, 0x31F0...0x31FF, 0xFF66...0xFF9F,  // hiragana, katakana, half-width katakana
             0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF:                    // kanji
            true
        default:
            false
        }
    }
}

/// cc-discord's delivery throttle (§4): streamed deltas reach Discord at most once per interval
/// (1 s; the timer starts with the first pending text and is not pushed back by later chunks),
/// each flush at most 1,900 characters. `append` posts each flush as a new message; `edit`
/// edits one placeholder with the text so far and, at the end, re-sends the full text split at
/// 1,900 characters by line (the placeholder edited with the first part, the rest posted).
public struct DeliveryThrottle: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable { case append, edit }

    public enum Delivery: Sendable, Hashable {
        /// A new message.
        case post(String)
        /// The placeholder message, edited to this text.
        case edit(String)
    }

    public static let cap = 1900

    public let mode: Mode
    public let interval: Double
    public private(set) var pending = ""
    public private(set) var full = ""
    /// When the armed timer fires, if one is.
    public private(set) var due: Double?

    public init(mode: Mode, interval: Double = 1.0) {
        self.mode = mode
        self.interval = interval
    }

    /// A streamed delta (`stream-partial`'s `textDelta`).
    public mutating func receive(_ delta: String, at time: Double) {
        guard !delta.isEmpty else { return }
        pending += delta
        full += delta
        if due == nil { due = time + interval }
    }

    /// The timer: a flush when it is due.
    public mutating func tick(at time: Double) -> [Delivery] {
        guard let due, time >= due else { return [] }
        self.due = nil
        guard !pending.isEmpty else { return [] }
        let scalars = pending.unicodeScalars
        let cut = scalars.index(scalars.startIndex, offsetBy: min(Self.cap, scalars.count))
        let chunk = String(scalars[..<cut])
        pending = String(scalars[cut...])
        if !pending.isEmpty { self.due = due + interval }  // the rest at the next beat
        switch mode {
        case .append:
            return [.post(chunk)]
        case .edit:
            return [.edit(String(full.unicodeScalars.prefix(Self.cap)))]
        }
    }

    /// `stream-completed`: what is still to be delivered.
    public mutating func complete() -> [Delivery] {
        due = nil
        defer { pending = "" }
        switch mode {
        case .append:
            return Self.split(pending).map { .post($0) }
        case .edit:
            let parts = Self.split(full)
            guard let first = parts.first else { return [] }
            return [.edit(first)] + parts.dropFirst().map { .post($0) }
        }
    }

    /// Text in parts of at most 1,900 characters, cut after a newline where one is in reach
    /// (a longer line is cut where the cap falls).
    public static func split(_ text: String) -> [String] {
        var parts: [String] = []
        var rest = Substring.UnicodeScalarView(text.unicodeScalars)
        while !rest.isEmpty {
            guard rest.count > cap else {
                parts.append(String(rest))
                break
            }
            let limit = rest.index(rest.startIndex, offsetBy: cap)
            let window = rest[..<limit]
            let cut = window.lastIndex(of: "\n").map { rest.index(after: $0) } ?? limit
            parts.append(String(rest[..<cut]))
            rest = rest[cut...]
        }
        return parts
    }
}
