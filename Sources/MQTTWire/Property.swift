public import NIOCore

/// An MQTT 5.0 property (§2.2.2.2). Binary values are slices of the input buffer.
public enum MQTTProperty: Sendable, Hashable {
    case payloadFormatIndicator(UInt8)
    case messageExpiryInterval(UInt32)
    case contentType(String)
    case responseTopic(String)
    case correlationData(ByteBuffer)
    case subscriptionIdentifier(UInt32)
    case sessionExpiryInterval(UInt32)
    case assignedClientIdentifier(String)
    case serverKeepAlive(UInt16)
    case authenticationMethod(String)
    case authenticationData(ByteBuffer)
    case requestProblemInformation(UInt8)
    case willDelayInterval(UInt32)
    case requestResponseInformation(UInt8)
    case responseInformation(String)
    case serverReference(String)
    case reasonString(String)
    case receiveMaximum(UInt16)
    case topicAliasMaximum(UInt16)
    case topicAlias(UInt16)
    case maximumQoS(UInt8)
    case retainAvailable(UInt8)
    case userProperty(name: String, value: String)
    case maximumPacketSize(UInt32)
    case wildcardSubscriptionAvailable(UInt8)
    case subscriptionIdentifierAvailable(UInt8)
    case sharedSubscriptionAvailable(UInt8)

    /// The identifier byte that precedes this property on the wire.
    public var identifier: Identifier {
        switch self {
        case .payloadFormatIndicator: .payloadFormatIndicator
        case .messageExpiryInterval: .messageExpiryInterval
        case .contentType: .contentType
        case .responseTopic: .responseTopic
        case .correlationData: .correlationData
        case .subscriptionIdentifier: .subscriptionIdentifier
        case .sessionExpiryInterval: .sessionExpiryInterval
        case .assignedClientIdentifier: .assignedClientIdentifier
        case .serverKeepAlive: .serverKeepAlive
        case .authenticationMethod: .authenticationMethod
        case .authenticationData: .authenticationData
        case .requestProblemInformation: .requestProblemInformation
        case .willDelayInterval: .willDelayInterval
        case .requestResponseInformation: .requestResponseInformation
        case .responseInformation: .responseInformation
        case .serverReference: .serverReference
        case .reasonString: .reasonString
        case .receiveMaximum: .receiveMaximum
        case .topicAliasMaximum: .topicAliasMaximum
        case .topicAlias: .topicAlias
        case .maximumQoS: .maximumQoS
        case .retainAvailable: .retainAvailable
        case .userProperty: .userProperty
        case .maximumPacketSize: .maximumPacketSize
        case .wildcardSubscriptionAvailable: .wildcardSubscriptionAvailable
        case .subscriptionIdentifierAvailable: .subscriptionIdentifierAvailable
        case .sharedSubscriptionAvailable: .sharedSubscriptionAvailable
        }
    }

    /// MQTT 5.0 property identifiers (§2.2.2.2, table 2-4).
    public enum Identifier: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case payloadFormatIndicator = 0x01
        case messageExpiryInterval = 0x02
        case contentType = 0x03
        case responseTopic = 0x08
        case correlationData = 0x09
        case subscriptionIdentifier = 0x0B
        case sessionExpiryInterval = 0x11
        case assignedClientIdentifier = 0x12
        case serverKeepAlive = 0x13
        case authenticationMethod = 0x15
        case authenticationData = 0x16
        case requestProblemInformation = 0x17
        case willDelayInterval = 0x18
        case requestResponseInformation = 0x19
        case responseInformation = 0x1A
        case serverReference = 0x1C
        case reasonString = 0x1F
        case receiveMaximum = 0x21
        case topicAliasMaximum = 0x22
        case topicAlias = 0x23
        case maximumQoS = 0x24
        case retainAvailable = 0x25
        case userProperty = 0x26
        case maximumPacketSize = 0x27
        case wildcardSubscriptionAvailable = 0x28
        case subscriptionIdentifierAvailable = 0x29
        case sharedSubscriptionAvailable = 0x2A

        public var description: String { "\(Self.names[self] ?? "?") (0x\(String(rawValue, radix: 16)))" }

        private static let names: [Identifier: String] = [
            .payloadFormatIndicator: "Payload Format Indicator", .messageExpiryInterval: "Message Expiry Interval",
            .contentType: "Content Type", .responseTopic: "Response Topic", .correlationData: "Correlation Data",
            .subscriptionIdentifier: "Subscription Identifier", .sessionExpiryInterval: "Session Expiry Interval",
            .assignedClientIdentifier: "Assigned Client Identifier", .serverKeepAlive: "Server Keep Alive",
            .authenticationMethod: "Authentication Method", .authenticationData: "Authentication Data",
            .requestProblemInformation: "Request Problem Information", .willDelayInterval: "Will Delay Interval",
            .requestResponseInformation: "Request Response Information",
            .responseInformation: "Response Information", .serverReference: "Server Reference",
            .reasonString: "Reason String", .receiveMaximum: "Receive Maximum",
            .topicAliasMaximum: "Topic Alias Maximum", .topicAlias: "Topic Alias", .maximumQoS: "Maximum QoS",
            .retainAvailable: "Retain Available", .userProperty: "User Property",
            .maximumPacketSize: "Maximum Packet Size",
            .wildcardSubscriptionAvailable: "Wildcard Subscription Available",
            .subscriptionIdentifierAvailable: "Subscription Identifier Available",
            .sharedSubscriptionAvailable: "Shared Subscription Available",
        ]

        /// Where the property may appear (table 2-4).
        var allowedContexts: PropertyContext {
            switch self {
            case .payloadFormatIndicator, .messageExpiryInterval, .contentType, .responseTopic, .correlationData:
                [.publish, .will]
            case .subscriptionIdentifier: [.publish, .subscribe]
            case .sessionExpiryInterval: [.connect, .connack, .disconnect]
            case .assignedClientIdentifier, .serverKeepAlive, .responseInformation, .maximumQoS, .retainAvailable,
                .wildcardSubscriptionAvailable, .subscriptionIdentifierAvailable, .sharedSubscriptionAvailable:
                [.connack]
            case .authenticationMethod, .authenticationData: [.connect, .connack, .auth]
            case .requestProblemInformation, .requestResponseInformation: [.connect]
            case .willDelayInterval: [.will]
            case .serverReference: [.connack, .disconnect]
            case .reasonString:
                [.connack, .puback, .pubrec, .pubrel, .pubcomp, .suback, .unsuback, .disconnect, .auth]
            case .receiveMaximum, .topicAliasMaximum, .maximumPacketSize: [.connect, .connack]
            case .topicAlias: [.publish]
            case .userProperty: .all
            }
        }

        /// Whether the property may appear more than once in one packet
        /// ([MQTT-3.3.4-?]: several subscription identifiers in a server's PUBLISH).
        func mayRepeat(in context: PropertyContext) -> Bool {
            self == .userProperty || (self == .subscriptionIdentifier && context == .publish)
        }
    }
}

/// The places a property list can stand in: one bit each.
public struct PropertyContext: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let connect = Self(rawValue: 1 << 0)
    public static let connack = Self(rawValue: 1 << 1)
    public static let publish = Self(rawValue: 1 << 2)
    public static let will = Self(rawValue: 1 << 3)
    public static let puback = Self(rawValue: 1 << 4)
    public static let pubrec = Self(rawValue: 1 << 5)
    public static let pubrel = Self(rawValue: 1 << 6)
    public static let pubcomp = Self(rawValue: 1 << 7)
    public static let subscribe = Self(rawValue: 1 << 8)
    public static let suback = Self(rawValue: 1 << 9)
    public static let unsubscribe = Self(rawValue: 1 << 10)
    public static let unsuback = Self(rawValue: 1 << 11)
    public static let disconnect = Self(rawValue: 1 << 12)
    public static let auth = Self(rawValue: 1 << 13)
    public static let all = Self(rawValue: (1 << 14) - 1)

    public var description: String {
        let names = [
            "CONNECT", "CONNACK", "PUBLISH", "Will", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE",
            "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "DISCONNECT", "AUTH",
        ]
        return names.indices.filter { rawValue & (1 << $0) != 0 }.map { names[$0] }.joined(separator: "|")
    }

    static func of(_ type: PacketType) -> PropertyContext {
        switch type {
        case .connect: .connect
        case .connack: .connack
        case .publish: .publish
        case .puback: .puback
        case .pubrec: .pubrec
        case .pubrel: .pubrel
        case .pubcomp: .pubcomp
        case .subscribe: .subscribe
        case .suback: .suback
        case .unsubscribe: .unsubscribe
        case .unsuback: .unsuback
        case .disconnect: .disconnect
        case .auth: .auth
        case .pingreq, .pingresp: []
        }
    }
}

/// An ordered MQTT 5.0 property list. Order is kept as sent (user properties are
/// ordered by the spec); lookups scan, which is cheaper than hashing for the few
/// properties a packet carries.
public struct MQTTProperties: Sendable, Hashable, RandomAccessCollection, ExpressibleByArrayLiteral {
    public var elements: [MQTTProperty]

    public init(_ elements: [MQTTProperty] = []) { self.elements = elements }
    public init(arrayLiteral elements: MQTTProperty...) { self.elements = elements }

    public var startIndex: Int { elements.startIndex }
    public var endIndex: Int { elements.endIndex }
    public subscript(position: Int) -> MQTTProperty { elements[position] }

    public mutating func append(_ property: MQTTProperty) { elements.append(property) }

    /// The first property with this identifier.
    public func first(_ identifier: MQTTProperty.Identifier) -> MQTTProperty? {
        elements.first { $0.identifier == identifier }
    }

    /// The user properties, in order.
    public var userProperties: [(name: String, value: String)] {
        elements.compactMap {
            if case .userProperty(let name, let value) = $0 { return (name, value) }
            return nil
        }
    }

    public var topicAlias: UInt16? {
        if case .topicAlias(let alias)? = first(.topicAlias) { return alias }
        return nil
    }

    public var reasonString: String? {
        if case .reasonString(let text)? = first(.reasonString) { return text }
        return nil
    }
}
