import NIOCore

/// Reads the fields of one packet's variable header and payload, turning every short
/// read into ``MQTTWireError/Code/truncatedPacket`` with the stream offset of the field.
struct BodyReader {
    var buffer: ByteBuffer
    /// Stream offset of the byte at reader index 0 of `buffer`.
    let base: Int
    let type: PacketType
    /// Stream offset of the packet's first byte, where fixed-header errors point.
    let packetStart: Int

    init(buffer: ByteBuffer, base: Int, type: PacketType, packetStart: Int) {
        self.buffer = buffer
        self.base = base - buffer.readerIndex
        self.type = type
        self.packetStart = packetStart
    }

    var offset: Int { base + buffer.readerIndex }
    var isAtEnd: Bool { buffer.readableBytes == 0 }
    var remaining: Int { buffer.readableBytes }

    func error(_ code: MQTTWireError.Code, at offset: Int? = nil, _ reason: @autoclosure @escaping @Sendable () -> String, spec: String? = nil)
        -> MQTTWireError
    {
        MQTTWireError(code: code, offset: offset ?? self.offset, packetType: type, describedBy: reason(), specReference: spec)
    }

    /// A field cut short, the error broken packets meet most: written from values, without
    /// an allocation (DeferredText.Values).
    func truncated(_ field: String, needs: Int) -> MQTTWireError {
        MQTTWireError(code: .truncatedPacket, offset: offset, packetType: type, values: .init(field, needs, buffer.readableBytes),
                      describedBy: { "\($0.text) needs \($0.first) byte(s), \($0.second) left in the packet" },
                      specReference: "MQTT 3.1.1 §2.2.3")
    }

    // Field names are written only for an error: some are made from a property's name, and
    // making them for every field read allocated, an error or not.

    @inline(__always)
    mutating func readByte(_ field: @autoclosure () -> String) throws(MQTTWireError) -> UInt8 {
        guard let value = buffer.readInteger(as: UInt8.self) else { throw truncated(field(), needs: 1) }
        return value
    }

    @inline(__always)
    mutating func readUInt16(_ field: @autoclosure () -> String) throws(MQTTWireError) -> UInt16 {
        guard let value = buffer.readInteger(as: UInt16.self) else { throw truncated(field(), needs: 2) }
        return value
    }

    mutating func readUInt32(_ field: @autoclosure () -> String) throws(MQTTWireError) -> UInt32 {
        guard let value = buffer.readInteger(as: UInt32.self) else { throw truncated(field(), needs: 4) }
        return value
    }

    /// A packet identifier that must not be 0 ([MQTT-2.3.1-1]).
    @inline(__always)
    mutating func readPacketIdentifier() throws(MQTTWireError) -> UInt16 {
        let start = offset
        let identifier = try readUInt16("packet identifier")
        guard identifier != 0 else {
            throw error(.invalidPacketIdentifier, at: start, "packet identifier 0 is not allowed",
                        spec: "MQTT-2.3.1-1")
        }
        return identifier
    }

    /// A variable byte integer (MQTT 5.0 §1.5.5; only MQTT 5 has them inside packets): at
    /// most four bytes, and no more than the value needs.
    mutating func readVariableByteInteger(_ field: @autoclosure () -> String) throws(MQTTWireError) -> UInt32 {
        let start = offset
        var value: UInt32 = 0
        for index in 0..<4 {
            guard let byte = buffer.readInteger(as: UInt8.self) else { throw truncated(field(), needs: index + 1) }
            value |= UInt32(byte & 0x7F) << (7 * UInt32(index))
            if byte & 0x80 == 0 {
                if index > 0 && byte == 0 {
                    let (name, value) = (field(), value)
                    throw error(.malformedVariableByteInteger, at: start,
                                "\(name) \(value) is encoded in \(index + 1) bytes, more than it needs", spec: "MQTT-1.5.5-1")
                }
                return value
            }
        }
        let name = field()
        throw error(.malformedVariableByteInteger, at: start, "\(name) runs past four bytes", spec: "MQTT 5.0 §1.5.5")
    }

    /// Binary data: a two-byte length, then that many bytes, as a slice of the input.
    mutating func readBinary(_ field: @autoclosure () -> String) throws(MQTTWireError) -> ByteBuffer {
        let length = Int(try readUInt16("\(field()) length"))
        guard let slice = buffer.readSlice(length: length) else { throw truncated(field(), needs: length) }
        return slice
    }

    /// A UTF-8 encoded string (§1.5.3 / §1.5.4): well-formed, no U+0000.
    @inline(__always)
    mutating func readString(_ field: @autoclosure () -> String) throws(MQTTWireError) -> String {
        let length = Int(try readUInt16("\(field()) length"))
        guard length <= buffer.readableBytes else { throw truncated(field(), needs: length) }
        let start = offset
        let decoded: String? = buffer.withUnsafeReadableBytes { UTF8Check.string(from: UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
        guard let decoded else {
            let bytes = buffer.withUnsafeReadableBytes { Array($0[0..<length]) }
            let field = field()
            if let nul = bytes.firstIndex(of: 0) {
                throw error(.nullCharacterInString, at: start + nul, "\(field) contains U+0000", spec: "MQTT-1.5.3-2")
            }
            let bad = UTF8Check.firstInvalidIndex(bytes) ?? 0
            throw error(.invalidUTF8, at: start + bad, "\(field) is not well-formed UTF-8", spec: "MQTT-1.5.3-1")
        }
        buffer.moveReaderIndex(forwardBy: length)
        return decoded
    }

    mutating func readRest() -> ByteBuffer {
        buffer.readSlice(length: buffer.readableBytes) ?? ByteBuffer()
    }

    func expectEnd() throws(MQTTWireError) {
        guard buffer.readableBytes == 0 else {
            throw MQTTWireError(code: .trailingBytes, offset: offset, packetType: type,
                                values: .init(type.description, buffer.readableBytes),
                                describedBy: { "\($0.first) byte(s) after the last field of \($0.text)" },
                                specReference: "MQTT 3.1.1 §2.2.3")
        }
    }

    // MARK: MQTT 5 properties

    mutating func readProperties(_ context: PropertyContext) throws(MQTTWireError) -> MQTTProperties {
        let length = Int(try readVariableByteInteger("property length"))
        guard let inner = buffer.readSlice(length: length) else { throw truncated("property list", needs: length) }
        guard length > 0 else { return [] }
        var reader = BodyReader(buffer: inner, base: offset - length, type: type, packetStart: packetStart)
        var properties: [MQTTProperty] = []
        var seen: UInt64 = 0
        while !reader.isAtEnd {
            let start = reader.offset
            let rawIdentifier = try reader.readVariableByteInteger("property identifier")
            guard rawIdentifier < 0x80, let identifier = MQTTProperty.Identifier(rawValue: UInt8(rawIdentifier)) else {
                throw reader.error(.unknownProperty, at: start, "property identifier 0x\(String(rawIdentifier, radix: 16)) is not defined",
                                   spec: "MQTT 5.0 §2.2.2.2")
            }
            try PropertyRules.admit(identifier, context: context, seen: &seen, offset: start, type: type)
            let property = try reader.readPropertyValue(identifier)
            try PropertyRules.check(property, at: start, context: context, type: type)
            properties.append(property)
        }
        return MQTTProperties(properties)
    }

    private mutating func readPropertyValue(_ identifier: MQTTProperty.Identifier) throws(MQTTWireError) -> MQTTProperty {
        switch identifier {
        case .payloadFormatIndicator: return .payloadFormatIndicator(try readByte(identifier.description))
        case .messageExpiryInterval: return .messageExpiryInterval(try readUInt32(identifier.description))
        case .contentType: return .contentType(try readString(identifier.description))
        case .responseTopic: return .responseTopic(try readString(identifier.description))
        case .correlationData: return .correlationData(try readBinary(identifier.description))
        case .subscriptionIdentifier: return .subscriptionIdentifier(try readVariableByteInteger(identifier.description))
        case .sessionExpiryInterval: return .sessionExpiryInterval(try readUInt32(identifier.description))
        case .assignedClientIdentifier: return .assignedClientIdentifier(try readString(identifier.description))
        case .serverKeepAlive: return .serverKeepAlive(try readUInt16(identifier.description))
        case .authenticationMethod: return .authenticationMethod(try readString(identifier.description))
        case .authenticationData: return .authenticationData(try readBinary(identifier.description))
        case .requestProblemInformation: return .requestProblemInformation(try readByte(identifier.description))
        case .willDelayInterval: return .willDelayInterval(try readUInt32(identifier.description))
        case .requestResponseInformation: return .requestResponseInformation(try readByte(identifier.description))
        case .responseInformation: return .responseInformation(try readString(identifier.description))
        case .serverReference: return .serverReference(try readString(identifier.description))
        case .reasonString: return .reasonString(try readString(identifier.description))
        case .receiveMaximum: return .receiveMaximum(try readUInt16(identifier.description))
        case .topicAliasMaximum: return .topicAliasMaximum(try readUInt16(identifier.description))
        case .topicAlias: return .topicAlias(try readUInt16(identifier.description))
        case .maximumQoS: return .maximumQoS(try readByte(identifier.description))
        case .retainAvailable: return .retainAvailable(try readByte(identifier.description))
        case .userProperty:
            let key = try readString("user property name")
            return .userProperty(name: key, value: try readString("user property value"))
        case .maximumPacketSize: return .maximumPacketSize(try readUInt32(identifier.description))
        case .wildcardSubscriptionAvailable: return .wildcardSubscriptionAvailable(try readByte(identifier.description))
        case .subscriptionIdentifierAvailable: return .subscriptionIdentifierAvailable(try readByte(identifier.description))
        case .sharedSubscriptionAvailable: return .sharedSubscriptionAvailable(try readByte(identifier.description))
        }
    }
}
