public import MQTTWire
public import NIOCore

/// Generates valid packets of every type for a version, with every property a packet
/// may carry, so round-trip tests and seed corpora reach every branch of the codec.
public struct PacketGenerator {
    public var rng: SplitMix64
    public let version: ProtocolVersion

    public init(seed: UInt64, version: ProtocolVersion) {
        rng = SplitMix64(seed: seed)
        self.version = version
    }

    public mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    public mutating func bool() -> Bool { Bool.random(using: &rng) }

    public mutating func string(maxLength: Int = 12, alphabet: [Unicode.Scalar]? = nil) -> String {
        let pool: [Unicode.Scalar] = alphabet ?? ["a", "b", "Z", "/", "-", "_", " ", "é", "ß", "あ", "漢", "😀", "\u{7F}", "\u{FEFF}"]
        var result = String.UnicodeScalarView()
        for _ in 0..<int(0...maxLength) { result.append(pool[int(0...(pool.count - 1))]) }
        return String(result)
    }

    public mutating func topic() -> String {
        var topic = string(maxLength: 10, alphabet: ["a", "b", "/", "x", "0", "é", "あ"])
        if topic.isEmpty { topic = "t" }
        return topic
    }

    public mutating func filter() -> String {
        let levels = (0..<int(1...4)).map { _ -> String in
            switch int(0...5) {
            case 0: "+"
            case 1: ""
            default: string(maxLength: 4, alphabet: ["a", "b", "c", "ü"])
            }
        }
        var filter = levels.joined(separator: "/")
        if bool() { filter += filter.isEmpty ? "#" : "/#" }
        return filter.isEmpty ? "+" : filter
    }

    public mutating func bytes(maxLength: Int = 40) -> ByteBuffer {
        var out = ByteBuffer()
        for _ in 0..<int(0...maxLength) { out.writeInteger(UInt8(truncatingIfNeeded: int(0...255))) }
        return out
    }

    public mutating func qos() -> QoS { QoS(rawValue: UInt8(int(0...2))) ?? .atMostOnce }
    public mutating func identifier() -> UInt16 { UInt16(int(1...65_535)) }

    public mutating func reasonCode(for type: PacketType) -> ReasonCode {
        let allowed: [UInt8]
        switch (version, type) {
        case (.v5, .connack): allowed = [0x00, 0x80, 0x85, 0x86, 0x87, 0x9F]
        case (.v5, .puback), (.v5, .pubrec): allowed = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]
        case (.v5, .pubrel), (.v5, .pubcomp): allowed = [0x00, 0x92]
        case (.v5, .suback): allowed = [0x00, 0x01, 0x02, 0x80, 0x9E, 0xA2]
        case (.v5, .unsuback): allowed = [0x00, 0x11, 0x8F]
        case (.v5, .disconnect): allowed = [0x00, 0x04, 0x8E, 0x93, 0xA2]
        case (.v5, .auth): allowed = [0x00, 0x18, 0x19]
        case (_, .connack): allowed = [0, 1, 2, 3, 4, 5]
        case (_, .suback): allowed = [0, 1, 2, 0x80]
        default: allowed = [0]
        }
        return ReasonCode(allowed[int(0...(allowed.count - 1))])
    }

    /// A property list valid for the context: a random subset of the allowed properties,
    /// each once, plus user properties (and repeated subscription identifiers in PUBLISH).
    public mutating func properties(_ identifiers: [MQTTProperty.Identifier], repeatable: Bool = false) -> MQTTProperties {
        guard version == .v5 else { return [] }
        var list = MQTTProperties()
        for identifier in identifiers where int(0...2) == 0 {
            list.append(property(identifier))
        }
        for _ in 0..<int(0...2) { list.append(.userProperty(name: string(), value: string())) }
        if repeatable && bool() { list.append(.subscriptionIdentifier(UInt32(int(1...268_435_455)))) }
        return list
    }

    public mutating func property(_ identifier: MQTTProperty.Identifier) -> MQTTProperty {
        let flag = UInt8(int(0...1))
        let u32 = UInt32(truncatingIfNeeded: int(0...Int(UInt32.max)))
        let u16 = UInt16(int(1...65_535))
        switch identifier {
        case .payloadFormatIndicator: return .payloadFormatIndicator(flag)
        case .messageExpiryInterval: return .messageExpiryInterval(u32)
        case .contentType: return .contentType(string())
        case .responseTopic: return .responseTopic(topic())
        case .correlationData: return .correlationData(bytes())
        case .subscriptionIdentifier: return .subscriptionIdentifier(UInt32(int(1...268_435_455)))
        case .sessionExpiryInterval: return .sessionExpiryInterval(u32)
        case .assignedClientIdentifier: return .assignedClientIdentifier(string())
        case .serverKeepAlive: return .serverKeepAlive(u16)
        case .authenticationMethod: return .authenticationMethod(string())
        case .authenticationData: return .authenticationData(bytes())
        case .requestProblemInformation: return .requestProblemInformation(flag)
        case .willDelayInterval: return .willDelayInterval(u32)
        case .requestResponseInformation: return .requestResponseInformation(flag)
        case .responseInformation: return .responseInformation(string())
        case .serverReference: return .serverReference(string())
        case .reasonString: return .reasonString(string())
        case .receiveMaximum: return .receiveMaximum(u16)
        case .topicAliasMaximum: return .topicAliasMaximum(u16)
        case .topicAlias: return .topicAlias(u16)
        case .maximumQoS: return .maximumQoS(flag)
        case .retainAvailable: return .retainAvailable(flag)
        case .userProperty: return .userProperty(name: string(), value: string())
        case .maximumPacketSize: return .maximumPacketSize(max(1, u32))
        case .wildcardSubscriptionAvailable: return .wildcardSubscriptionAvailable(flag)
        case .subscriptionIdentifierAvailable: return .subscriptionIdentifierAvailable(flag)
        case .sharedSubscriptionAvailable: return .sharedSubscriptionAvailable(flag)
        }
    }

    public mutating func packet(_ type: PacketType) -> MQTTPacket {
        switch type {
        case .connect:
            var will: ConnectPacket.Will?
            if bool() {
                will = .init(topic: topic(), payload: bytes(), qos: qos(), retain: bool(),
                             properties: properties([.willDelayInterval, .payloadFormatIndicator, .messageExpiryInterval,
                                                     .contentType, .responseTopic, .correlationData]))
            }
            let username: String? = bool() ? string() : nil
            let password: ByteBuffer? = (username != nil || version == .v5) && bool() ? bytes() : nil
            return .connect(ConnectPacket(
                protocolVersion: version, cleanStart: bool(), keepAlive: UInt16(int(0...65_535)),
                clientIdentifier: string(maxLength: 23), will: will, username: username, password: password,
                properties: properties([.sessionExpiryInterval, .receiveMaximum, .maximumPacketSize, .topicAliasMaximum,
                                        .requestResponseInformation, .requestProblemInformation,
                                        .authenticationMethod, .authenticationData])))
        case .connack:
            return .connack(ConnAckPacket(
                sessionPresent: bool(), reasonCode: reasonCode(for: .connack),
                properties: properties([.sessionExpiryInterval, .receiveMaximum, .maximumQoS, .retainAvailable,
                                        .maximumPacketSize, .assignedClientIdentifier, .topicAliasMaximum,
                                        .reasonString, .wildcardSubscriptionAvailable,
                                        .subscriptionIdentifierAvailable, .sharedSubscriptionAvailable,
                                        .serverKeepAlive, .responseInformation, .serverReference,
                                        .authenticationMethod, .authenticationData])))
        case .publish:
            let qos = qos()
            let properties = properties([.payloadFormatIndicator, .messageExpiryInterval, .topicAlias, .responseTopic,
                                         .correlationData, .contentType], repeatable: true)
            let topicName = version == .v5 && properties.topicAlias != nil && bool() ? "" : topic()
            return .publish(PublishPacket(
                dup: qos != .atMostOnce && bool(), qos: qos, retain: bool(), topicName: topicName,
                packetIdentifier: qos == .atMostOnce ? nil : identifier(), properties: properties,
                payload: bytes(maxLength: 300)))
        case .puback, .pubrec, .pubrel, .pubcomp:
            let response = PublishResponsePacket(
                packetIdentifier: identifier(), reasonCode: version == .v5 ? reasonCode(for: type) : .success,
                properties: properties([.reasonString]))
            switch type {
            case .puback: return .puback(response)
            case .pubrec: return .pubrec(response)
            case .pubrel: return .pubrel(response)
            default: return .pubcomp(response)
            }
        case .subscribe:
            let subscriptions = (0..<int(1...4)).map { _ in
                version == .v5
                    ? SubscribePacket.Subscription(
                        topicFilter: filter(), qos: qos(), noLocal: bool(), retainAsPublished: bool(),
                        retainHandling: SubscribePacket.RetainHandling(rawValue: UInt8(int(0...2))) ?? .doNotSend)
                    : SubscribePacket.Subscription(topicFilter: filter(), qos: qos())
            }
            return .subscribe(SubscribePacket(
                packetIdentifier: identifier(), subscriptions: subscriptions, properties: properties([.subscriptionIdentifier])))
        case .suback:
            return .suback(SubAckPacket(
                packetIdentifier: identifier(), reasonCodes: (0..<int(1...4)).map { _ in reasonCode(for: .suback) },
                properties: properties([.reasonString])))
        case .unsubscribe:
            return .unsubscribe(UnsubscribePacket(
                packetIdentifier: identifier(), topicFilters: (0..<int(1...4)).map { _ in filter() },
                properties: properties([])))
        case .unsuback:
            return .unsuback(UnsubAckPacket(
                packetIdentifier: identifier(),
                reasonCodes: version == .v5 ? (0..<int(1...4)).map { _ in reasonCode(for: .unsuback) } : [],
                properties: properties([.reasonString])))
        case .pingreq: return .pingreq
        case .pingresp: return .pingresp
        case .disconnect:
            return .disconnect(DisconnectPacket(
                reasonCode: version == .v5 ? reasonCode(for: .disconnect) : .success,
                properties: properties([.sessionExpiryInterval, .reasonString, .serverReference])))
        case .auth:
            return .auth(AuthPacket(
                reasonCode: reasonCode(for: .auth),
                properties: properties([.authenticationMethod, .authenticationData, .reasonString])))
        }
    }

    public static func types(for version: ProtocolVersion) -> [PacketType] {
        PacketType.allCases.filter { $0 != .auth || version == .v5 }
    }
}
