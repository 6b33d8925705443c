/// MQTT control packet types (MQTT 3.1.1 §2.2.1, MQTT 5.0 §2.1.2).
public enum PacketType: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case connect = 1
    case connack = 2
    case publish = 3
    case puback = 4
    case pubrec = 5
    case pubrel = 6
    case pubcomp = 7
    case subscribe = 8
    case suback = 9
    case unsubscribe = 10
    case unsuback = 11
    case pingreq = 12
    case pingresp = 13
    case disconnect = 14
    /// MQTT 5.0 only.
    case auth = 15

    public var description: String {
        switch self {
        case .connect: "CONNECT"
        case .connack: "CONNACK"
        case .publish: "PUBLISH"
        case .puback: "PUBACK"
        case .pubrec: "PUBREC"
        case .pubrel: "PUBREL"
        case .pubcomp: "PUBCOMP"
        case .subscribe: "SUBSCRIBE"
        case .suback: "SUBACK"
        case .unsubscribe: "UNSUBSCRIBE"
        case .unsuback: "UNSUBACK"
        case .pingreq: "PINGREQ"
        case .pingresp: "PINGRESP"
        case .disconnect: "DISCONNECT"
        case .auth: "AUTH"
        }
    }

    /// The flags the low nibble of the first byte must hold, for every type but PUBLISH
    /// ([MQTT-2.2.2-1] in 3.1.1, [MQTT-2.1.3-1] in 5.0).
    var requiredFlags: UInt8 {
        switch self {
        case .pubrel, .subscribe, .unsubscribe: 0b0010
        default: 0
        }
    }
}

/// Quality of service levels. There is no case for 3: the decoders reject it
/// ([MQTT-3.3.1-4]) instead of mapping it to another level.
public enum QoS: UInt8, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case atMostOnce = 0
    case atLeastOnce = 1
    case exactlyOnce = 2

    public static func < (lhs: QoS, rhs: QoS) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "QoS \(rawValue)" }
}

/// The protocol versions the codec speaks, by their CONNECT protocol level.
public enum ProtocolVersion: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// MQTT 3.1 (`MQIsdp`, level 3): encoded as 3.1.1 apart from the CONNECT name.
    case v3_1 = 3
    case v3_1_1 = 4
    case v5 = 5

    /// The protocol name a CONNECT of this version carries.
    public var protocolName: String { self == .v3_1 ? "MQIsdp" : "MQTT" }
    /// Whether packets of this version carry properties and reason codes.
    public var hasProperties: Bool { self == .v5 }

    public var description: String {
        switch self {
        case .v3_1: "3.1"
        case .v3_1_1: "3.1.1"
        case .v5: "5.0"
        }
    }
}
