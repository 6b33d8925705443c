public import NIOCore

/// Encodes packets for one protocol version. It checks what it is given against the
/// same rules as the decoder, so it never writes bytes the decoder would reject.
public struct MQTTEncoder: Sendable {
    public var version: ProtocolVersion

    public init(version: ProtocolVersion = .v3_1_1) {
        self.version = version
    }

    /// The encoded packet in a new buffer.
    public func encode(_ packet: MQTTPacket) throws(MQTTWireError) -> ByteBuffer {
        var buffer = ByteBuffer()
        try encode(packet, into: &buffer)
        return buffer
    }

    /// Appends the encoded packet to `buffer`; on error nothing is appended.
    public func encode(_ packet: MQTTPacket, into buffer: inout ByteBuffer) throws(MQTTWireError) {
        var body = BodyWriter(type: packet.type, version: version)
        let flags = try body.write(packet)
        guard body.buffer.readableBytes <= 268_435_455 else {
            throw body.error(.packetTooLarge, "remaining length \(body.buffer.readableBytes) exceeds 268,435,455")
        }
        buffer.writeInteger(packet.type.rawValue << 4 | flags)
        buffer.writeVariableByteInteger(UInt32(body.buffer.readableBytes))
        buffer.writeBuffer(&body.buffer)
    }
}

extension ByteBuffer {
    /// Writes an MQTT variable byte integer (at most 268,435,455).
    @discardableResult
    public mutating func writeVariableByteInteger(_ value: UInt32) -> Int {
        var value = value
        var written = 0
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value > 0 { byte |= 0x80 }
            writeInteger(byte)
            written += 1
        } while value > 0
        return written
    }
}

/// Writes one packet's variable header and payload.
private struct BodyWriter {
    var buffer = ByteBuffer()
    let type: PacketType
    let version: ProtocolVersion

    init(type: PacketType, version: ProtocolVersion) {
        self.type = type
        self.version = version
    }

    func error(_ code: MQTTWireError.Code, _ reason: String, spec: String? = nil) -> MQTTWireError {
        MQTTWireError(code: code, offset: 0, packetType: type, reason: reason, specReference: spec)
    }

    /// Writes the body and returns the fixed-header flags.
    mutating func write(_ packet: MQTTPacket) throws(MQTTWireError) -> UInt8 {
        if type == .auth && version != .v5 {
            throw error(.invalidPacketType, "AUTH exists only in MQTT 5.0", spec: "MQTT 3.1.1 §2.2.1")
        }
        switch packet {
        case .connect(let p): try connect(p)
        case .connack(let p): try connack(p)
        case .publish(let p): return try publish(p)
        case .puback(let p), .pubrec(let p), .pubrel(let p), .pubcomp(let p): try publishResponse(p)
        case .subscribe(let p): try subscribe(p)
        case .suback(let p):
            try identifier(p.packetIdentifier)
            try properties(p.properties, .suback)
            for code in p.reasonCodes { try reasonCode(code) }
        case .unsubscribe(let p):
            try identifier(p.packetIdentifier)
            try properties(p.properties, .unsubscribe)
            guard !p.topicFilters.isEmpty else {
                throw error(.emptySubscriptionList, "UNSUBSCRIBE without a topic filter", spec: "MQTT-3.10.3-2")
            }
            for filter in p.topicFilters { try topicFilter(filter) }
        case .unsuback(let p):
            try identifier(p.packetIdentifier)
            if version == .v5 {
                try properties(p.properties, .unsuback)
                for code in p.reasonCodes { try reasonCode(code) }
            } else if !p.reasonCodes.isEmpty || !p.properties.isEmpty {
                throw error(.propertiesNotSupported, "UNSUBACK carries no reason codes in MQTT \(version)")
            }
        case .pingreq, .pingresp: break
        case .disconnect(let p): try trailingReason(p.reasonCode, p.properties, .disconnect)
        case .auth(let p): try trailingReason(p.reasonCode, p.properties, .auth)
        }
        return type.requiredFlags
    }

    // MARK: Fields

    mutating func string(_ value: String, _ field: String) throws(MQTTWireError) {
        let count = value.utf8.count
        guard count <= 65_535 else { throw error(.stringTooLong, "\(field) is \(count) bytes, more than 65,535") }
        if value.utf8.contains(0) {
            throw error(.nullCharacterInString, "\(field) contains U+0000", spec: "MQTT-1.5.3-2")
        }
        buffer.writeInteger(UInt16(count))
        buffer.writeString(value)
    }

    mutating func binary(_ value: ByteBuffer, _ field: String) throws(MQTTWireError) {
        var value = value
        guard value.readableBytes <= 65_535 else {
            throw error(.stringTooLong, "\(field) is \(value.readableBytes) bytes, more than 65,535")
        }
        buffer.writeInteger(UInt16(value.readableBytes))
        buffer.writeBuffer(&value)
    }

    mutating func identifier(_ value: UInt16) throws(MQTTWireError) {
        guard value != 0 else { throw error(.invalidPacketIdentifier, "packet identifier 0", spec: "MQTT-2.3.1-1") }
        buffer.writeInteger(value)
    }

    mutating func reasonCode(_ code: ReasonCode) throws(MQTTWireError) {
        guard ReasonCode.allowed(in: type, version: version).contains(code.rawValue) else {
            throw error(.invalidReasonCode, "\(code) may not appear in \(type) of MQTT \(version)")
        }
        buffer.writeInteger(code.rawValue)
    }

    mutating func topicName(_ topic: String, allowEmpty: Bool) throws(MQTTWireError) {
        if TopicRules.wildcardIndex(inTopicName: topic) != nil {
            throw error(.invalidTopicName, "wildcard in topic name \"\(topic)\"", spec: "MQTT-3.3.2-2")
        }
        if topic.isEmpty && !allowEmpty {
            throw error(.invalidTopicName, "empty topic name", spec: "MQTT-4.7.3-1")
        }
        try string(topic, "topic name")
    }

    mutating func topicFilter(_ filter: String) throws(MQTTWireError) {
        if let problem = TopicRules.filterProblem(filter) {
            throw error(.invalidTopicFilter, "\(problem.reason) in \"\(filter)\"", spec: problem.spec)
        }
        try string(filter, "topic filter")
    }

    /// Writes a property list in 5.0; in 3.1.1 only an empty list is acceptable.
    mutating func properties(_ list: MQTTProperties, _ context: PropertyContext) throws(MQTTWireError) {
        guard version == .v5 else {
            if !list.isEmpty {
                throw error(.propertiesNotSupported, "MQTT \(version) packets carry no properties")
            }
            return
        }
        try PropertyRules.checkList(list, context: context, type: type)
        var inner = BodyWriter(type: type, version: version)
        for property in list { try inner.property(property) }
        buffer.writeVariableByteInteger(UInt32(inner.buffer.readableBytes))
        buffer.writeBuffer(&inner.buffer)
    }

    mutating func property(_ property: MQTTProperty) throws(MQTTWireError) {
        buffer.writeInteger(property.identifier.rawValue)
        let name = "\(property.identifier)"
        switch property {
        case .payloadFormatIndicator(let v), .requestProblemInformation(let v), .requestResponseInformation(let v),
             .maximumQoS(let v), .retainAvailable(let v), .wildcardSubscriptionAvailable(let v),
             .subscriptionIdentifierAvailable(let v), .sharedSubscriptionAvailable(let v):
            buffer.writeInteger(v)
        case .messageExpiryInterval(let v), .sessionExpiryInterval(let v), .willDelayInterval(let v),
             .maximumPacketSize(let v):
            buffer.writeInteger(v)
        case .serverKeepAlive(let v), .receiveMaximum(let v), .topicAliasMaximum(let v), .topicAlias(let v):
            buffer.writeInteger(v)
        case .contentType(let s), .responseTopic(let s), .assignedClientIdentifier(let s),
             .authenticationMethod(let s), .responseInformation(let s), .serverReference(let s),
             .reasonString(let s):
            try string(s, name)
        case .correlationData(let b), .authenticationData(let b):
            try binary(b, name)
        case .subscriptionIdentifier(let v):
            buffer.writeVariableByteInteger(v)
        case .userProperty(let key, let value):
            try string(key, "user property name")
            try string(value, "user property value")
        }
    }

    // MARK: Packets

    mutating func connect(_ p: ConnectPacket) throws(MQTTWireError) {
        guard p.protocolVersion == version else {
            throw error(.unsupportedProtocolLevel,
                        "a CONNECT for MQTT \(p.protocolVersion) given to an MQTT \(version) encoder")
        }
        if version != .v5 && p.password != nil && p.username == nil {
            throw error(.invalidConnectFlags, "a password without a user name", spec: "MQTT-3.1.2-22")
        }
        try string(version.protocolName, "protocol name")
        buffer.writeInteger(version.rawValue)
        buffer.writeInteger(p.connectFlags)
        buffer.writeInteger(p.keepAlive)
        try properties(p.properties, .connect)
        try string(p.clientIdentifier, "client identifier")
        if let will = p.will {
            try properties(will.properties, .will)
            try topicName(will.topic, allowEmpty: false)
            try binary(will.payload, "will message")
        }
        if let username = p.username { try string(username, "user name") }
        if let password = p.password { try binary(password, "password") }
    }

    mutating func connack(_ p: ConnAckPacket) throws(MQTTWireError) {
        buffer.writeInteger(UInt8(p.sessionPresent ? 1 : 0))
        try reasonCode(p.reasonCode)
        try properties(p.properties, .connack)
    }

    mutating func publish(_ p: PublishPacket) throws(MQTTWireError) -> UInt8 {
        if p.dup && p.qos == .atMostOnce {
            throw error(.invalidFixedHeaderFlags, "DUP set on a QoS 0 PUBLISH", spec: "MQTT-3.3.1-2")
        }
        if (p.qos == .atMostOnce) != (p.packetIdentifier == nil) {
            throw error(.invalidPacketIdentifier, "a packet identifier is present exactly when QoS > 0",
                        spec: "MQTT-2.3.1-5")
        }
        try topicName(p.topicName, allowEmpty: version == .v5 && p.properties.topicAlias != nil)
        if let identifier = p.packetIdentifier { try self.identifier(identifier) }
        try properties(p.properties, .publish)
        var payload = p.payload
        buffer.writeBuffer(&payload)
        return (p.dup ? 0x08 : 0) | p.qos.rawValue << 1 | (p.retain ? 0x01 : 0)
    }

    mutating func publishResponse(_ p: PublishResponsePacket) throws(MQTTWireError) {
        try identifier(p.packetIdentifier)
        try trailingReason(p.reasonCode, p.properties, .of(type))
    }

    /// The reason code and properties that 5.0 lets a packet leave out when the code is
    /// success and there are no properties; the short form is written then.
    mutating func trailingReason(_ code: ReasonCode, _ list: MQTTProperties, _ context: PropertyContext)
        throws(MQTTWireError)
    {
        guard version == .v5 else {
            if code != .success || !list.isEmpty {
                throw error(.propertiesNotSupported, "\(type) carries no reason code or properties in MQTT \(version)")
            }
            return
        }
        guard code != .success || !list.isEmpty else { return }
        try reasonCode(code)
        if !list.isEmpty { try properties(list, context) }
    }

    mutating func subscribe(_ p: SubscribePacket) throws(MQTTWireError) {
        try identifier(p.packetIdentifier)
        try properties(p.properties, .subscribe)
        guard !p.subscriptions.isEmpty else {
            throw error(.emptySubscriptionList, "SUBSCRIBE without a topic filter", spec: "MQTT-3.8.3-3")
        }
        for subscription in p.subscriptions {
            try topicFilter(subscription.topicFilter)
            if version != .v5 && subscription.optionsByte & 0xFC != 0 {
                throw error(.invalidSubscriptionOptions, "MQTT \(version) subscriptions carry only a QoS",
                            spec: "MQTT-3-8.3-4")
            }
            buffer.writeInteger(subscription.optionsByte)
        }
    }
}
