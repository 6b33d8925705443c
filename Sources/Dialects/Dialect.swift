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
public struct AnnotatedMessage: Sendable, Hashable {
    public var dialect: String
    /// What the message is, in the dialect's words: `notification`, `read-receipt`, …
    public var kind: String
    public var summary: String
    public var fields: [AnnotatedField]
    public var warnings: [String]

    public init(dialect: String, kind: String, summary: String, fields: [AnnotatedField] = [], warnings: [String] = []) {
        self.dialect = dialect
        self.kind = kind
        self.summary = summary
        self.fields = fields
        self.warnings = warnings
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
