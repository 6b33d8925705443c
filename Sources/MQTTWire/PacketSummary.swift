extension MQTTPacket: CustomStringConvertible {
    /// One line with the packet's key fields, e.g. `PUBLISH QoS 1 id 7 "a/b" 312 bytes`.
    public var description: String {
        switch self {
        case .connect(let p):
            var text = "CONNECT MQTT \(p.protocolVersion) client \"\(p.clientIdentifier)\" keep-alive \(p.keepAlive)s"
            text += p.cleanStart ? " clean" : " persistent"
            if let username = p.username { text += " user \"\(username)\"" }
            if p.password != nil { text += " password" }
            if let will = p.will { text += " will \"\(will.topic)\" \(will.qos)" }
            return text + Self.propertyNote(p.properties)
        case .connack(let p):
            let name = p.reasonCode.connectReturnCodeName ?? p.reasonCode.name ?? "unknown"
            return "CONNACK \(name) (0x\(String(p.reasonCode.rawValue, radix: 16)))" + (p.sessionPresent ? " session present" : "")
                + Self.propertyNote(p.properties)
        case .publish(let p):
            var text = "PUBLISH \(p.qos)"
            if let id = p.packetIdentifier { text += " id \(id)" }
            if p.dup { text += " dup" }
            if p.retain { text += " retain" }
            text += " \"\(p.topicName)\" \(p.payload.readableBytes) bytes"
            return text + Self.propertyNote(p.properties)
        case .puback(let p), .pubrec(let p), .pubrel(let p), .pubcomp(let p):
            return "\(type) id \(p.packetIdentifier)" + (p.reasonCode == .success ? "" : " \(p.reasonCode)")
        case .subscribe(let p):
            return "SUBSCRIBE id \(p.packetIdentifier) " + p.subscriptions.map { "\"\($0.topicFilter)\" \($0.qos)" }.joined(separator: ", ")
        case .suback(let p):
            return "SUBACK id \(p.packetIdentifier) " + p.reasonCodes.map { "0x" + String($0.rawValue, radix: 16) }.joined(separator: " ")
        case .unsubscribe(let p):
            return "UNSUBSCRIBE id \(p.packetIdentifier) " + p.topicFilters.map { "\"\($0)\"" }.joined(separator: ", ")
        case .unsuback(let p): return "UNSUBACK id \(p.packetIdentifier)"
        case .pingreq: return "PINGREQ"
        case .pingresp: return "PINGRESP"
        case .disconnect(let p): return "DISCONNECT" + (p.reasonCode == .success ? "" : " \(p.reasonCode)")
        case .auth(let p): return "AUTH \(p.reasonCode)"
        }
    }

    private static func propertyNote(_ properties: MQTTProperties) -> String {
        properties.isEmpty ? "" : " (+\(properties.count) properties)"
    }
}
