import NIOCore

/// Decodes the variable header and payload of each packet type.
enum PacketBodyDecoder {
    static func decode(type: PacketType, flags: UInt8, reader: inout BodyReader, version: ProtocolVersion)
        throws(MQTTWireError) -> MQTTPacket
    {
        switch type {
        case .publish: return .publish(try publish(flags: flags, reader: &reader, version: version))
        case .puback: return .puback(try publishResponse(reader: &reader, version: version))
        case .pubrec: return .pubrec(try publishResponse(reader: &reader, version: version))
        case .pubrel: return .pubrel(try publishResponse(reader: &reader, version: version))
        case .pubcomp: return .pubcomp(try publishResponse(reader: &reader, version: version))
        case .pingreq:
            try reader.expectEnd()
            return .pingreq
        case .pingresp:
            try reader.expectEnd()
            return .pingresp
        case .connect: return .connect(try connect(reader: &reader))
        case .connack: return .connack(try connack(reader: &reader, version: version))
        case .subscribe: return .subscribe(try subscribe(reader: &reader, version: version))
        case .suback: return .suback(try suback(reader: &reader, version: version))
        case .unsubscribe: return .unsubscribe(try unsubscribe(reader: &reader, version: version))
        case .unsuback: return .unsuback(try unsuback(reader: &reader, version: version))
        case .disconnect:
            let (code, properties) = try reasonAndProperties(reader: &reader, version: version, context: .disconnect)
            return .disconnect(DisconnectPacket(reasonCode: code, properties: properties))
        case .auth:
            let (code, properties) = try reasonAndProperties(reader: &reader, version: version, context: .auth)
            return .auth(AuthPacket(reasonCode: code, properties: properties))
        }
    }

    // MARK: PUBLISH

    @inline(__always)
    static func publish(flags: UInt8, reader: inout BodyReader, version: ProtocolVersion) throws(MQTTWireError)
        -> PublishPacket
    {
        let headerOffset = reader.packetStart
        guard let qos = QoS(rawValue: (flags >> 1) & 0x03) else {
            throw reader.error(.invalidQoS, at: headerOffset, "PUBLISH with QoS 3", spec: "MQTT-3.3.1-4")
        }
        let dup = flags & 0x08 != 0
        if dup && qos == .atMostOnce {
            throw reader.error(.invalidFixedHeaderFlags, at: headerOffset, "DUP set on a QoS 0 PUBLISH", spec: "MQTT-3.3.1-2")
        }
        let topicOffset = reader.offset + 2
        let topic = try reader.readString("topic name")
        if let index = TopicRules.wildcardIndex(inTopicName: topic) {
            throw reader.error(.invalidTopicName, at: topicOffset + index, "wildcard in a PUBLISH topic name",
                               spec: "MQTT-3.3.2-2")
        }
        let packetIdentifier: UInt16? = qos == .atMostOnce ? nil : try reader.readPacketIdentifier()
        let properties: MQTTProperties = version == .v5 ? try reader.readProperties(.publish) : []
        if topic.isEmpty && (version != .v5 || properties.topicAlias == nil) {
            throw reader.error(.invalidTopicName, at: topicOffset - 2, "empty topic name",
                               spec: version == .v5 ? "MQTT-3.3.2-1" : "MQTT-4.7.3-1")
        }
        return PublishPacket(
            dup: dup, qos: qos, retain: flags & 0x01 != 0, topicName: topic, packetIdentifier: packetIdentifier,
            properties: properties, payload: reader.readRest())
    }

    // MARK: PUBACK, PUBREC, PUBREL, PUBCOMP

    @inline(__always)
    static func publishResponse(reader: inout BodyReader, version: ProtocolVersion) throws(MQTTWireError)
        -> PublishResponsePacket
    {
        let identifier = try reader.readPacketIdentifier()
        guard version == .v5 else {
            try reader.expectEnd()
            return PublishResponsePacket(packetIdentifier: identifier)
        }
        let (code, properties) = try reasonAndProperties(reader: &reader, version: version, context: .of(reader.type))
        return PublishResponsePacket(packetIdentifier: identifier, reasonCode: code, properties: properties)
    }

    /// The optional reason code and property list that end PUBACK…PUBCOMP, DISCONNECT
    /// and AUTH in 5.0: both may be left out when the code is 0 and there are no properties.
    static func reasonAndProperties(reader: inout BodyReader, version: ProtocolVersion, context: PropertyContext)
        throws(MQTTWireError) -> (ReasonCode, MQTTProperties)
    {
        guard version == .v5, !reader.isAtEnd else {
            try reader.expectEnd()
            return (.success, [])
        }
        let code = try readReasonCode(reader: &reader, version: version)
        let properties: MQTTProperties = reader.isAtEnd ? [] : try reader.readProperties(context)
        try reader.expectEnd()
        return (code, properties)
    }

    static func readReasonCode(reader: inout BodyReader, version: ProtocolVersion) throws(MQTTWireError)
        -> ReasonCode
    {
        let start = reader.offset
        let code = ReasonCode(try reader.readByte("reason code"))
        guard ReasonCode.allowed(in: reader.type, version: version).contains(code.rawValue) else {
            let type = reader.type
            throw reader.error(.invalidReasonCode, at: start, "\(code) may not appear in \(type)",
                               spec: version == .v5 ? "MQTT 5.0 §2.4" : "MQTT 3.1.1 §3.2.2.3, MQTT-3.9.3-2")
        }
        return code
    }

    // MARK: CONNECT, CONNACK

    static func connect(reader: inout BodyReader) throws(MQTTWireError) -> ConnectPacket {
        let nameOffset = reader.offset
        let name = try reader.readString("protocol name")
        let levelOffset = reader.offset
        let level = try reader.readByte("protocol level")
        guard name == "MQTT" || name == "MQIsdp" else {
            throw reader.error(.unsupportedProtocolName, at: nameOffset, "protocol name \"\(name)\" is neither MQTT nor MQIsdp",
                               spec: "MQTT-3.1.2-1")
        }
        guard let version = ProtocolVersion(rawValue: level), version.protocolName == name else {
            throw reader.error(.unsupportedProtocolLevel, at: levelOffset,
                               "protocol level \(level) with protocol name \(name)", spec: "MQTT-3.1.2-2")
        }
        let flagsOffset = reader.offset
        let flags = try reader.readByte("connect flags")
        func flagError(_ reason: @autoclosure @escaping @Sendable () -> String, _ spec: String) -> MQTTWireError {
            reader.error(.invalidConnectFlags, at: flagsOffset, reason(), spec: spec)
        }
        if flags & 0x01 != 0 { throw flagError("reserved connect flag bit 0 is set", "MQTT-3.1.2-3") }
        let hasWill = flags & 0x04 != 0
        let willQoSBits = (flags >> 3) & 0x03
        let willRetain = flags & 0x20 != 0
        if !hasWill && willQoSBits != 0 { throw flagError("Will QoS set without the Will flag", "MQTT-3.1.2-13") }
        if !hasWill && willRetain { throw flagError("Will Retain set without the Will flag", "MQTT-3.1.2-15") }
        guard let willQoS = QoS(rawValue: willQoSBits) else {
            throw reader.error(.invalidQoS, at: flagsOffset, "Will QoS 3", spec: "MQTT-3.1.2-14")
        }
        let hasUsername = flags & 0x80 != 0
        let hasPassword = flags & 0x40 != 0
        if version != .v5 && hasPassword && !hasUsername {
            throw flagError("Password flag set without the User Name flag", "MQTT-3.1.2-22")
        }
        let keepAlive = try reader.readUInt16("keep alive")
        let properties: MQTTProperties = version == .v5 ? try reader.readProperties(.connect) : []
        let clientIdentifier = try reader.readString("client identifier")
        var will: ConnectPacket.Will?
        if hasWill {
            let willProperties: MQTTProperties = version == .v5 ? try reader.readProperties(.will) : []
            let topicOffset = reader.offset + 2
            let topic = try reader.readString("will topic")
            if topic.isEmpty || TopicRules.wildcardIndex(inTopicName: topic) != nil {
                throw reader.error(.invalidTopicName, at: topicOffset + (TopicRules.wildcardIndex(inTopicName: topic) ?? 0),
                                   "will topic is empty or holds a wildcard", spec: "MQTT-3.1.3-11, MQTT-4.7.3-1")
            }
            let payload = try reader.readBinary("will message")
            will = .init(topic: topic, payload: payload, qos: willQoS, retain: willRetain, properties: willProperties)
        }
        let username = hasUsername ? try reader.readString("user name") : nil
        let password = hasPassword ? try reader.readBinary("password") : nil
        try reader.expectEnd()
        return ConnectPacket(
            protocolVersion: version, cleanStart: flags & 0x02 != 0, keepAlive: keepAlive,
            clientIdentifier: clientIdentifier, will: will, username: username, password: password,
            properties: properties)
    }

    static func connack(reader: inout BodyReader, version: ProtocolVersion) throws(MQTTWireError) -> ConnAckPacket {
        let flagsOffset = reader.offset
        let flags = try reader.readByte("connect acknowledge flags")
        if flags & 0xFE != 0 {
            throw reader.error(.invalidConnectFlags, at: flagsOffset, "reserved connect acknowledge flag bits are set",
                               spec: version == .v5 ? "MQTT-3.2.2-1" : "MQTT 3.1.1 §3.2.2.1")
        }
        let code = try readReasonCode(reader: &reader, version: version)
        let properties: MQTTProperties = version == .v5 && !reader.isAtEnd ? try reader.readProperties(.connack) : []
        try reader.expectEnd()
        return ConnAckPacket(sessionPresent: flags & 0x01 != 0, reasonCode: code, properties: properties)
    }

    // MARK: SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK

    static func readFilter(reader: inout BodyReader) throws(MQTTWireError) -> String {
        let start = reader.offset + 2
        let filter = try reader.readString("topic filter")
        if let problem = TopicRules.filterProblem(filter) {
            throw reader.error(.invalidTopicFilter, at: start + problem.index, problem.reason, spec: problem.spec)
        }
        return filter
    }

    static func subscribe(reader: inout BodyReader, version: ProtocolVersion) throws(MQTTWireError) -> SubscribePacket {
        let identifier = try reader.readPacketIdentifier()
        let properties: MQTTProperties = version == .v5 ? try reader.readProperties(.subscribe) : []
        var subscriptions: [SubscribePacket.Subscription] = []
        while !reader.isAtEnd {
            let filter = try readFilter(reader: &reader)
            let optionsOffset = reader.offset
            let options = try reader.readByte("subscription options")
            guard let qos = QoS(rawValue: options & 0x03) else {
                throw reader.error(.invalidQoS, at: optionsOffset, "requested QoS 3",
                                   spec: version == .v5 ? "MQTT 5.0 §3.8.3.1" : "MQTT-3-8.3-4")
            }
            let reservedMask: UInt8 = version == .v5 ? 0xC0 : 0xFC
            if options & reservedMask != 0 {
                throw reader.error(.invalidSubscriptionOptions, at: optionsOffset, "reserved subscription option bits are set",
                                   spec: version == .v5 ? "MQTT-3.8.3-5" : "MQTT-3-8.3-4")
            }
            guard let retainHandling = SubscribePacket.RetainHandling(rawValue: (options >> 4) & 0x03) else {
                throw reader.error(.invalidSubscriptionOptions, at: optionsOffset, "retain handling 3",
                                   spec: "MQTT 5.0 §3.8.3.1")
            }
            subscriptions.append(.init(
                topicFilter: filter, qos: qos, noLocal: options & 0x04 != 0, retainAsPublished: options & 0x08 != 0,
                retainHandling: retainHandling))
        }
        guard !subscriptions.isEmpty else {
            throw reader.error(.emptySubscriptionList, "SUBSCRIBE without a topic filter", spec: "MQTT-3.8.3-3")
        }
        return SubscribePacket(packetIdentifier: identifier, subscriptions: subscriptions, properties: properties)
    }

    static func suback(reader: inout BodyReader, version: ProtocolVersion) throws(MQTTWireError) -> SubAckPacket {
        let identifier = try reader.readPacketIdentifier()
        let properties: MQTTProperties = version == .v5 ? try reader.readProperties(.suback) : []
        var codes: [ReasonCode] = []
        while !reader.isAtEnd { codes.append(try readReasonCode(reader: &reader, version: version)) }
        return SubAckPacket(packetIdentifier: identifier, reasonCodes: codes, properties: properties)
    }

    static func unsubscribe(reader: inout BodyReader, version: ProtocolVersion) throws(MQTTWireError)
        -> UnsubscribePacket
    {
        let identifier = try reader.readPacketIdentifier()
        let properties: MQTTProperties = version == .v5 ? try reader.readProperties(.unsubscribe) : []
        var filters: [String] = []
        while !reader.isAtEnd { filters.append(try readFilter(reader: &reader)) }
        guard !filters.isEmpty else {
            throw reader.error(.emptySubscriptionList, "UNSUBSCRIBE without a topic filter", spec: "MQTT-3.10.3-2")
        }
        return UnsubscribePacket(packetIdentifier: identifier, topicFilters: filters, properties: properties)
    }

    static func unsuback(reader: inout BodyReader, version: ProtocolVersion) throws(MQTTWireError) -> UnsubAckPacket {
        let identifier = try reader.readPacketIdentifier()
        guard version == .v5 else {
            try reader.expectEnd()
            return UnsubAckPacket(packetIdentifier: identifier)
        }
        let properties = try reader.readProperties(.unsuback)
        var codes: [ReasonCode] = []
        while !reader.isAtEnd { codes.append(try readReasonCode(reader: &reader, version: version)) }
        return UnsubAckPacket(packetIdentifier: identifier, reasonCodes: codes, properties: properties)
    }
}
