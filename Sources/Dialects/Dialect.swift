public import MQTTWire
public import NIOCore
public import WebSocketWire

/// What a connection has shown so far, for dialects to recognise themselves by.
public struct DetectionEvidence: Sendable {
    public var request: HTTPUpgradeRequest?
    public var response: HTTPUpgradeResponse?
    /// The first MQTT packets of the connection, when it carries MQTT.
    public var mqttPackets: [MQTTPacket]
    /// The first WebSocket messages, when it does not.
    public var messages: [ByteBuffer]

    public init(request: HTTPUpgradeRequest? = nil, response: HTTPUpgradeResponse? = nil,
                mqttPackets: [MQTTPacket] = [], messages: [ByteBuffer] = []) {
        self.request = request
        self.response = response
        self.mqttPackets = mqttPackets
        self.messages = messages
    }
}

/// How sure a dialect is that a connection speaks it.
public enum DetectionConfidence: Int, Sendable, Comparable, CustomStringConvertible {
    case none = 0, possible, likely, certain
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { ["none", "possible", "likely", "certain"][rawValue] }
}

/// One named field of an annotation: `channel.number = 12345`.
public struct AnnotatedField: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A message as a person reads it: one summary line, the structured fields behind it,
/// and what was odd about it.
///
/// Its members live in one shared object, copied on write: an annotation (or its absence)
/// rides in every decoded MQTT event, and five members inline made every event, annotated or
/// not, some 60 bytes larger to move about.
public struct AnnotatedMessage: Sendable, Hashable {
    // Changed only while this value holds the one reference to it (copy on write below).
    private final class Storage: @unchecked Sendable {
        var dialect: String
        var kind: String
        var summary: String
        var fields: [AnnotatedField]
        var warnings: [String]

        init(dialect: String, kind: String, summary: String, fields: [AnnotatedField], warnings: [String]) {
            self.dialect = dialect
            self.kind = kind
            self.summary = summary
            self.fields = fields
            self.warnings = warnings
        }

        func copy() -> Storage {
            Storage(dialect: dialect, kind: kind, summary: summary, fields: fields, warnings: warnings)
        }
    }

    private var storage: Storage

    public init(dialect: String, kind: String, summary: String, fields: [AnnotatedField] = [], warnings: [String] = []) {
        storage = Storage(dialect: dialect, kind: kind, summary: summary, fields: fields, warnings: warnings)
    }

    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    public var dialect: String {
        get { storage.dialect }
        set { makeUnique(); storage.dialect = newValue }
    }

    /// What the message is, in the dialect's words: `notification`, `read-receipt`, …
    public var kind: String {
        get { storage.kind }
        set { makeUnique(); storage.kind = newValue }
    }

    public var summary: String {
        get { storage.summary }
        set { makeUnique(); storage.summary = newValue }
    }

    public var fields: [AnnotatedField] {
        get { storage.fields }
        _modify {
            makeUnique()
            yield &storage.fields
        }
    }

    public var warnings: [String] {
        get { storage.warnings }
        _modify {
            makeUnique()
            yield &storage.warnings
        }
    }

    public static func == (lhs: AnnotatedMessage, rhs: AnnotatedMessage) -> Bool {
        lhs.storage === rhs.storage
            || (lhs.dialect == rhs.dialect && lhs.kind == rhs.kind && lhs.summary == rhs.summary
                && lhs.fields == rhs.fields && lhs.warnings == rhs.warnings)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(dialect)
        hasher.combine(kind)
        hasher.combine(summary)
        hasher.combine(fields)
        hasher.combine(warnings)
    }

    public func field(_ name: String) -> String? { fields.first { $0.name == name }?.value }
}

/// A chat protocol the toolkit understands. Dialects are recognised from the handshake
/// and the first messages, never from the port alone.
public protocol Dialect: Sendable {
    /// Short lower-case name used in output and options: `works`.
    var name: String { get }
    func detect(_ evidence: DetectionEvidence) -> DetectionConfidence
}

/// A dialect carried in MQTT PUBLISH payloads.
public protocol MQTTDialect: Dialect {
    func annotate(_ publish: PublishPacket, redactor: Redactor?) -> AnnotatedMessage
}
