/// An MQTT 5.0 reason code (§2.4), or an MQTT 3.1.1 CONNACK/SUBACK return code. The raw
/// byte is kept as sent; ``name`` gives the spec's wording for known values.
public struct ReasonCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    public static let success = ReasonCode(0x00)
    public static let grantedQoS1 = ReasonCode(0x01)
    public static let grantedQoS2 = ReasonCode(0x02)
    public static let disconnectWithWillMessage = ReasonCode(0x04)
    public static let noMatchingSubscribers = ReasonCode(0x10)
    public static let noSubscriptionExisted = ReasonCode(0x11)
    public static let continueAuthentication = ReasonCode(0x18)
    public static let reAuthenticate = ReasonCode(0x19)
    public static let unspecifiedError = ReasonCode(0x80)
    public static let malformedPacket = ReasonCode(0x81)
    public static let protocolError = ReasonCode(0x82)
    public static let implementationSpecificError = ReasonCode(0x83)
    public static let unsupportedProtocolVersion = ReasonCode(0x84)
    public static let clientIdentifierNotValid = ReasonCode(0x85)
    public static let badUserNameOrPassword = ReasonCode(0x86)
    public static let notAuthorized = ReasonCode(0x87)
    public static let serverUnavailable = ReasonCode(0x88)
    public static let serverBusy = ReasonCode(0x89)
    public static let banned = ReasonCode(0x8A)
    public static let serverShuttingDown = ReasonCode(0x8B)
    public static let badAuthenticationMethod = ReasonCode(0x8C)
    public static let keepAliveTimeout = ReasonCode(0x8D)
    public static let sessionTakenOver = ReasonCode(0x8E)
    public static let topicFilterInvalid = ReasonCode(0x8F)
    public static let topicNameInvalid = ReasonCode(0x90)
    public static let packetIdentifierInUse = ReasonCode(0x91)
    public static let packetIdentifierNotFound = ReasonCode(0x92)
    public static let receiveMaximumExceeded = ReasonCode(0x93)
    public static let topicAliasInvalid = ReasonCode(0x94)
    public static let packetTooLarge = ReasonCode(0x95)
    public static let messageRateTooHigh = ReasonCode(0x96)
    public static let quotaExceeded = ReasonCode(0x97)
    public static let administrativeAction = ReasonCode(0x98)
    public static let payloadFormatInvalid = ReasonCode(0x99)
    public static let retainNotSupported = ReasonCode(0x9A)
    public static let qosNotSupported = ReasonCode(0x9B)
    public static let useAnotherServer = ReasonCode(0x9C)
    public static let serverMoved = ReasonCode(0x9D)
    public static let sharedSubscriptionsNotSupported = ReasonCode(0x9E)
    public static let connectionRateExceeded = ReasonCode(0x9F)
    public static let maximumConnectTime = ReasonCode(0xA0)
    public static let subscriptionIdentifiersNotSupported = ReasonCode(0xA1)
    public static let wildcardSubscriptionsNotSupported = ReasonCode(0xA2)

    /// Whether the code reports a failure (0x80 and above).
    public var isFailure: Bool { rawValue >= 0x80 }

    /// The MQTT 5.0 name of the code, or `nil` for a value the spec does not define.
    public var name: String? {
        switch rawValue {
        case 0x00: "Success"
        case 0x01: "Granted QoS 1"
        case 0x02: "Granted QoS 2"
        case 0x04: "Disconnect with Will Message"
        case 0x10: "No matching subscribers"
        case 0x11: "No subscription existed"
        case 0x18: "Continue authentication"
        case 0x19: "Re-authenticate"
        case 0x80: "Unspecified error"
        case 0x81: "Malformed Packet"
        case 0x82: "Protocol Error"
        case 0x83: "Implementation specific error"
        case 0x84: "Unsupported Protocol Version"
        case 0x85: "Client Identifier not valid"
        case 0x86: "Bad User Name or Password"
        case 0x87: "Not authorized"
        case 0x88: "Server unavailable"
        case 0x89: "Server busy"
        case 0x8A: "Banned"
        case 0x8B: "Server shutting down"
        case 0x8C: "Bad authentication method"
        case 0x8D: "Keep Alive timeout"
        case 0x8E: "Session taken over"
        case 0x8F: "Topic Filter invalid"
        case 0x90: "Topic Name invalid"
        case 0x91: "Packet Identifier in use"
        case 0x92: "Packet Identifier not found"
        case 0x93: "Receive Maximum exceeded"
        case 0x94: "Topic Alias invalid"
        case 0x95: "Packet too large"
        case 0x96: "Message rate too high"
        case 0x97: "Quota exceeded"
        case 0x98: "Administrative action"
        case 0x99: "Payload format invalid"
        case 0x9A: "Retain not supported"
        case 0x9B: "QoS not supported"
        case 0x9C: "Use another server"
        case 0x9D: "Server moved"
        case 0x9E: "Shared Subscriptions not supported"
        case 0x9F: "Connection rate exceeded"
        case 0xA0: "Maximum connect time"
        case 0xA1: "Subscription Identifiers not supported"
        case 0xA2: "Wildcard Subscriptions not supported"
        default: nil
        }
    }

    /// The MQTT 3.1.1 name of a CONNACK return code (§3.2.2.3).
    public var connectReturnCodeName: String? {
        switch rawValue {
        case 0: "Connection Accepted"
        case 1: "unacceptable protocol version"
        case 2: "identifier rejected"
        case 3: "Server unavailable"
        case 4: "bad user name or password"
        case 5: "not authorized"
        default: nil
        }
    }

    public var description: String {
        let hex = "0x" + String(rawValue, radix: 16, uppercase: true)
        return name.map { "\(hex) \($0)" } ?? "unknown(\(hex))"
    }

    /// The codes each packet may carry (MQTT 5.0: §3.x.2.1 of each packet; MQTT 3.1.1: CONNACK's
    /// return codes and SUBACK's). The sets are built once: a `Set` literal here was built, and
    /// hashed into, for every acknowledgement read or written.
    static func allowed(in type: PacketType, version: ProtocolVersion) -> ReasonCodeSet {
        if version != .v5 {
            switch type {
            case .connack: return ReasonCodeSet.v3ConnAck
            case .suback: return ReasonCodeSet.v3SubAck
            default: return ReasonCodeSet()
            }
        }
        switch type {
        case .connack: return ReasonCodeSet.connAck
        case .puback, .pubrec: return ReasonCodeSet.pubAck
        case .pubrel, .pubcomp: return ReasonCodeSet.pubRel
        case .suback: return ReasonCodeSet.subAck
        case .unsuback: return ReasonCodeSet.unsubAck
        case .disconnect: return ReasonCodeSet.disconnect
        case .auth: return ReasonCodeSet.auth
        default: return ReasonCodeSet()
        }
    }
}

/// A set of reason code values as 256 bits: four words, the code's top two bits choosing one.
struct ReasonCodeSet: Sendable {
    private var words = SIMD4<UInt64>()

    init() {}

    init(_ codes: [UInt8]) {
        for code in codes { words[Int(code >> 6)] |= UInt64(1) << UInt64(code & 63) }
    }

    func contains(_ code: UInt8) -> Bool {
        words[Int(code >> 6)] & (UInt64(1) << UInt64(code & 63)) != 0
    }

    static let v3ConnAck = ReasonCodeSet([0, 1, 2, 3, 4, 5])
    static let v3SubAck = ReasonCodeSet([0, 1, 2, 0x80])
    static let connAck = ReasonCodeSet([
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90,
        0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
    ])
    static let pubAck = ReasonCodeSet([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99])
    static let pubRel = ReasonCodeSet([0x00, 0x92])
    static let subAck = ReasonCodeSet([0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2])
    static let unsubAck = ReasonCodeSet([0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91])
    static let disconnect = ReasonCodeSet([
        0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93,
        0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
    ])
    static let auth = ReasonCodeSet([0x00, 0x18, 0x19])
}
