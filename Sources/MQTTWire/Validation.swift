import ByteStream

/// Checks shared by the decoder (on what it read) and the encoder (on what it is
/// asked to write), so the encoder never produces bytes the decoder rejects.
enum PropertyRules {
    /// Value rules of MQTT 5.0 §3.x for single properties.
    static func check(_ property: MQTTProperty, at offset: Int, context: PropertyContext, type: PacketType)
        throws(MQTTWireError)
    {
        func invalid(_ reason: @autoclosure @escaping @Sendable () -> String, _ spec: String) -> MQTTWireError {
            MQTTWireError(code: .invalidPropertyValue, offset: offset, packetType: type, describedBy: reason(), specReference: spec)
        }
        switch property {
        case .payloadFormatIndicator(let v) where v > 1:
            // The Will's own property (§3.1.3.2.3) or the PUBLISH's (§3.3.2.3.2).
            throw invalid("Payload Format Indicator \(v) is neither 0 nor 1",
                          context == .will ? "MQTT 5.0 §3.1.3.2.3" : "MQTT 5.0 §3.3.2.3.2")
        case .requestProblemInformation(let v) where v > 1:
            throw invalid("Request Problem Information \(v) is neither 0 nor 1", "MQTT 5.0 §3.1.2.11.7")
        case .requestResponseInformation(let v) where v > 1:
            throw invalid("Request Response Information \(v) is neither 0 nor 1", "MQTT 5.0 §3.1.2.11.6")
        case .maximumQoS(let v) where v > 1:
            throw invalid("Maximum QoS \(v) is neither 0 nor 1", "MQTT 5.0 §3.2.2.3.4")
        case .retainAvailable(let v) where v > 1,
             .wildcardSubscriptionAvailable(let v) where v > 1,
             .subscriptionIdentifierAvailable(let v) where v > 1,
             .sharedSubscriptionAvailable(let v) where v > 1:
            throw invalid("\(property.identifier) \(v) is neither 0 nor 1", "MQTT 5.0 §3.2.2.3")
        case .receiveMaximum(0):
            throw invalid("Receive Maximum 0", "MQTT 5.0 §3.1.2.11.3")
        case .maximumPacketSize(0):
            throw invalid("Maximum Packet Size 0", "MQTT 5.0 §3.1.2.11.4")
        case .topicAlias(0):
            throw invalid("Topic Alias 0", "MQTT-3.3.2-8")
        case .subscriptionIdentifier(let v) where v == 0 || v > 268_435_455:
            throw invalid("Subscription Identifier \(v) is outside 1…268,435,455", "MQTT 5.0 §3.3.2.3.8")
        default:
            return
        }
    }

    /// Whether a property with this identifier may come next in a list: allowed in this
    /// packet, and not a repeat of one that may appear only once.
    static func admit(
        _ identifier: MQTTProperty.Identifier, context: PropertyContext, seen: inout UInt64, offset: Int,
        type: PacketType
    ) throws(MQTTWireError) {
        guard identifier.allowedContexts.contains(context) else {
            throw MQTTWireError(code: .propertyNotAllowed, offset: offset, packetType: type,
                                reason: "\(identifier) may not appear in \(context)", specReference: "MQTT 5.0 §2.2.2.2")
        }
        let bit: UInt64 = 1 << UInt64(identifier.rawValue)
        if seen & bit != 0 && !identifier.mayRepeat(in: context) {
            throw MQTTWireError(code: .duplicateProperty, offset: offset, packetType: type,
                                reason: "\(identifier) appears more than once in \(context)",
                                specReference: "MQTT 5.0 §2.2.2.2 (It is a Protocol Error to include … more than once)")
        }
        seen |= bit
    }

    /// The list-level rules: allowed here, not repeated where it may not be.
    static func checkList(_ properties: MQTTProperties, context: PropertyContext, type: PacketType)
        throws(MQTTWireError)
    {
        var seen: UInt64 = 0
        for property in properties {
            try admit(property.identifier, context: context, seen: &seen, offset: 0, type: type)
            try check(property, at: 0, context: context, type: type)
        }
    }
}

enum TopicRules {
    /// A topic name: at least one character ([MQTT-4.7.3-1]) and no wildcard ([MQTT-3.3.2-2]).
    /// Returns the index of the offending byte, or nil.
    static func wildcardIndex(inTopicName topic: String) -> Int? {
        var index = 0
        for byte in topic.utf8 {
            if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") { return index }
            index += 1
        }
        return nil
    }

    /// A topic filter: not empty ([MQTT-4.7.3-1]), `#` last and alone in its level
    /// ([MQTT-4.7.1-2]), `+` alone in its level ([MQTT-4.7.1-3]). Returns the byte index
    /// of the problem and the statement it breaks.
    static func filterProblem(_ filter: String) -> (index: Int, spec: String, reason: String)? {
        let bytes = Array(filter.utf8)
        if bytes.isEmpty { return (0, "MQTT-4.7.3-1", "topic filter is empty") }
        for (index, byte) in bytes.enumerated() {
            let levelStart = index == 0 || bytes[index - 1] == UInt8(ascii: "/")
            let levelEnd = index == bytes.count - 1 || bytes[index + 1] == UInt8(ascii: "/")
            if byte == UInt8(ascii: "#") && !(levelStart && index == bytes.count - 1) {
                return (index, "MQTT-4.7.1-2", "'#' must be the last character and alone in its level")
            }
            if byte == UInt8(ascii: "+") && !(levelStart && levelEnd) {
                return (index, "MQTT-4.7.1-3", "'+' must occupy a whole level")
            }
        }
        return nil
    }
}

/// UTF-8 checks for MQTT strings.
enum UTF8Check {
    /// Decodes a well-formed string without U+0000, or returns nil. ASCII, the common
    /// case for topics and client ids, is decoded without a second pass.
    @inline(__always)
    static func string(from bytes: UnsafeRawBufferPointer) -> String? {
        var bits: UInt8 = 0
        var hasNul = false
        for byte in bytes {
            bits |= byte
            hasNul = hasNul || byte == 0
        }
        if hasNul { return nil }
        if bits < 0x80 { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// A topic name as the fast path takes it: well-formed UTF-8 without U+0000 and without
    /// a wildcard (`+`, `#`), else nil (the full decoder then says what is wrong). One pass
    /// over the bytes, where the String's UTF-8 view was a second, slower one.
    @inline(__always)
    static func topicName(from bytes: UnsafeRawBufferPointer) -> String? {
        var bits: UInt8 = 0
        for byte in bytes {
            bits |= byte
            if byte == 0 || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") { return nil }
        }
        if bits < 0x80 { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The index of the first byte of the first ill-formed sequence, or nil when the
    /// bytes are well-formed UTF-8.
    static func firstInvalidIndex(_ bytes: [UInt8]) -> Int? {
        var validator = UTF8Validator()
        if let bad = validator.validate(bytes) { return validator.sequenceStart ?? bad }
        return validator.isComplete ? nil : validator.sequenceStart
    }
}
