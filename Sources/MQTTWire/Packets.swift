public import NIOCore

/// One MQTT control packet of either protocol version. The rare, large packets are
/// `indirect` so that the common ones (PUBLISH, acknowledgements) move cheaply.
public enum MQTTPacket: Sendable, Hashable {
    indirect case connect(ConnectPacket)
    indirect case connack(ConnAckPacket)
    case publish(PublishPacket)
    case puback(PublishResponsePacket)
    case pubrec(PublishResponsePacket)
    case pubrel(PublishResponsePacket)
    case pubcomp(PublishResponsePacket)
    indirect case subscribe(SubscribePacket)
    indirect case suback(SubAckPacket)
    indirect case unsubscribe(UnsubscribePacket)
    indirect case unsuback(UnsubAckPacket)
    case pingreq
    case pingresp
    indirect case disconnect(DisconnectPacket)
    indirect case auth(AuthPacket)

    public var type: PacketType {
        switch self {
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
        case .pingreq: .pingreq
        case .pingresp: .pingresp
        case .disconnect: .disconnect
        case .auth: .auth
        }
    }

    /// A PUBLISH packet's topic name, read where it lies: binding the packet to a local to ask
    /// copies it, retaining its payload.
    public var publishTopic: String? {
        if case .publish(let p) = self { return p.topicName }
        return nil
    }

    /// The packet identifier, for the packet types that carry one.
    public var packetIdentifier: UInt16? {
        switch self {
        case .publish(let p): p.packetIdentifier
        case .puback(let p), .pubrec(let p), .pubrel(let p), .pubcomp(let p): p.packetIdentifier
        case .subscribe(let p): p.packetIdentifier
        case .suback(let p): p.packetIdentifier
        case .unsubscribe(let p): p.packetIdentifier
        case .unsuback(let p): p.packetIdentifier
        default: nil
        }
    }
}

/// CONNECT (§3.1). ``protocolVersion`` decides how every later packet of the connection
/// is encoded.
public struct ConnectPacket: Sendable, Hashable {
    public var protocolVersion: ProtocolVersion
    /// Clean Session (3.1.1) or Clean Start (5.0).
    public var cleanStart: Bool
    /// Keep-alive in seconds; 0 turns it off.
    public var keepAlive: UInt16
    public var clientIdentifier: String
    public var will: Will?
    public var username: String?
    /// Binary data in 5.0; 3.1.1 calls it a string but allows any bytes.
    public var password: ByteBuffer?
    public var properties: MQTTProperties

    public init(
        protocolVersion: ProtocolVersion = .v3_1_1, cleanStart: Bool = true, keepAlive: UInt16 = 60,
        clientIdentifier: String, will: Will? = nil, username: String? = nil, password: ByteBuffer? = nil,
        properties: MQTTProperties = []
    ) {
        self.protocolVersion = protocolVersion
        self.cleanStart = cleanStart
        self.keepAlive = keepAlive
        self.clientIdentifier = clientIdentifier
        self.will = will
        self.username = username
        self.password = password
        self.properties = properties
    }

    /// The will message of a CONNECT (§3.1.2.5, §3.1.3.2).
    public struct Will: Sendable, Hashable {
        public var topic: String
        public var payload: ByteBuffer
        public var qos: QoS
        public var retain: Bool
        /// Will properties (5.0 only).
        public var properties: MQTTProperties

        public init(topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false,
                    properties: MQTTProperties = []) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
            self.properties = properties
        }
    }

    /// The connect flags byte this packet encodes to (§3.1.2.3).
    public var connectFlags: UInt8 {
        var flags: UInt8 = 0
        if username != nil { flags |= 0x80 }
        if password != nil { flags |= 0x40 }
        if let will {
            flags |= 0x04 | (will.qos.rawValue << 3)
            if will.retain { flags |= 0x20 }
        }
        if cleanStart { flags |= 0x02 }
        return flags
    }
}

/// CONNACK (§3.2).
public struct ConnAckPacket: Sendable, Hashable {
    public var sessionPresent: Bool
    /// The 5.0 reason code, or the 3.1.1 return code (see ``ReasonCode/connectReturnCodeName``).
    public var reasonCode: ReasonCode
    public var properties: MQTTProperties

    public init(sessionPresent: Bool = false, reasonCode: ReasonCode = .success, properties: MQTTProperties = []) {
        self.sessionPresent = sessionPresent
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

/// PUBLISH (§3.3). ``payload`` is a slice of the decoder's input: no bytes are copied.
public struct PublishPacket: Sendable, Hashable {
    public var dup: Bool
    public var qos: QoS
    public var retain: Bool
    /// May be empty in 5.0 when a topic alias stands for it.
    public var topicName: String
    /// Present exactly when ``qos`` is above 0.
    public var packetIdentifier: UInt16?
    public var properties: MQTTProperties
    public var payload: ByteBuffer

    public init(
        dup: Bool = false, qos: QoS = .atMostOnce, retain: Bool = false, topicName: String,
        packetIdentifier: UInt16? = nil, properties: MQTTProperties = [], payload: ByteBuffer
    ) {
        self.dup = dup
        self.qos = qos
        self.retain = retain
        self.topicName = topicName
        self.packetIdentifier = packetIdentifier
        self.properties = properties
        self.payload = payload
    }
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP (§3.4–3.7): the packet type is the enum case.
public struct PublishResponsePacket: Sendable, Hashable {
    public var packetIdentifier: UInt16
    /// Always ``ReasonCode/success`` in 3.1.1.
    public var reasonCode: ReasonCode
    public var properties: MQTTProperties

    public init(packetIdentifier: UInt16, reasonCode: ReasonCode = .success, properties: MQTTProperties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

/// SUBSCRIBE (§3.8).
public struct SubscribePacket: Sendable, Hashable {
    public var packetIdentifier: UInt16
    public var subscriptions: [Subscription]
    public var properties: MQTTProperties

    public init(packetIdentifier: UInt16, subscriptions: [Subscription], properties: MQTTProperties = []) {
        self.packetIdentifier = packetIdentifier
        self.subscriptions = subscriptions
        self.properties = properties
    }

    /// A topic filter and its subscription options (§3.8.3.1).
    public struct Subscription: Sendable, Hashable {
        public var topicFilter: String
        public var qos: QoS
        /// 5.0 only: the options below are zero in 3.1.1.
        public var noLocal: Bool
        public var retainAsPublished: Bool
        public var retainHandling: RetainHandling

        public init(topicFilter: String, qos: QoS = .atMostOnce, noLocal: Bool = false,
                    retainAsPublished: Bool = false, retainHandling: RetainHandling = .sendOnSubscribe) {
            self.topicFilter = topicFilter
            self.qos = qos
            self.noLocal = noLocal
            self.retainAsPublished = retainAsPublished
            self.retainHandling = retainHandling
        }

        var optionsByte: UInt8 {
            qos.rawValue | (noLocal ? 0x04 : 0) | (retainAsPublished ? 0x08 : 0) | (retainHandling.rawValue << 4)
        }
    }

    public enum RetainHandling: UInt8, Sendable, Hashable, CaseIterable {
        case sendOnSubscribe = 0
        case sendOnNewSubscribe = 1
        case doNotSend = 2
    }
}

/// SUBACK (§3.9): one code per subscription, in order.
public struct SubAckPacket: Sendable, Hashable {
    public var packetIdentifier: UInt16
    public var reasonCodes: [ReasonCode]
    public var properties: MQTTProperties

    public init(packetIdentifier: UInt16, reasonCodes: [ReasonCode], properties: MQTTProperties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCodes = reasonCodes
        self.properties = properties
    }
}

/// UNSUBSCRIBE (§3.10).
public struct UnsubscribePacket: Sendable, Hashable {
    public var packetIdentifier: UInt16
    public var topicFilters: [String]
    public var properties: MQTTProperties

    public init(packetIdentifier: UInt16, topicFilters: [String], properties: MQTTProperties = []) {
        self.packetIdentifier = packetIdentifier
        self.topicFilters = topicFilters
        self.properties = properties
    }
}

/// UNSUBACK (§3.11). In 3.1.1 it carries no reason codes.
public struct UnsubAckPacket: Sendable, Hashable {
    public var packetIdentifier: UInt16
    public var reasonCodes: [ReasonCode]
    public var properties: MQTTProperties

    public init(packetIdentifier: UInt16, reasonCodes: [ReasonCode] = [], properties: MQTTProperties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCodes = reasonCodes
        self.properties = properties
    }
}

/// DISCONNECT (§3.14). In 3.1.1 it is empty.
public struct DisconnectPacket: Sendable, Hashable {
    public var reasonCode: ReasonCode
    public var properties: MQTTProperties

    public init(reasonCode: ReasonCode = .success, properties: MQTTProperties = []) {
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

/// AUTH (§3.15, 5.0 only).
public struct AuthPacket: Sendable, Hashable {
    public var reasonCode: ReasonCode
    public var properties: MQTTProperties

    public init(reasonCode: ReasonCode = .success, properties: MQTTProperties = []) {
        self.reasonCode = reasonCode
        self.properties = properties
    }
}
