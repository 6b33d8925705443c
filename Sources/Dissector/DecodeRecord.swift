public import ByteStream
import Capture
public import Dialects
public import MQTTWire
import NIOCore
import NIOHTTP1
import WebSocketWire

/// The machine-readable form of a ``CaptureEvent``: one JSON object per event, schema
/// version 1, documented in docs/decode-format.md.
public enum DecodeRecord {
    public static let schemaVersion = 1

    public static func json(_ event: CaptureEvent, showsSecrets: Bool = false) -> JSONValue {
        var members: [JSONMember] = [
            .init(key: "v", value: .number(String(schemaVersion))),
            .init(key: "event", value: .string(name(of: event))),
            .init(key: "connection", value: .string("c\(event.connection.id)")),
            .init(key: "time", value: .number(formatTime(event.time))),
            .init(key: "frame", value: .number(String(event.frame))),
        ]
        if let direction = event.direction {
            members.append(.init(key: "direction", value: .string(direction == .clientToServer ? "c2s" : "s2c")))
            members.append(.init(key: "src", value: .string(event.connection.source(of: direction).description)))
            members.append(.init(key: "dst", value: .string(event.connection.destination(of: direction).description)))
        }
        switch event.kind {
        case .opened(let proto, let how):
            members += [
                .init(key: "protocol", value: .string(proto)), .init(key: "detectedBy", value: .string(how)),
                .init(key: "client", value: .string(event.connection.client.description)),
                .init(key: "server", value: .string(event.connection.server.description)),
                .init(key: "midstream", value: .bool(event.connection.joinedMidstream)),
            ]
        case .gap(let bytes):
            members.append(.init(key: "bytes", value: .number(String(bytes))))
        case .closed(let reason):
            members.append(.init(key: "reason", value: .string(reason)))
        case .ignored(let reason):
            members += [
                .init(key: "reason", value: .string(reason)),
                .init(key: "client", value: .string(event.connection.client.description)),
                .init(key: "server", value: .string(event.connection.server.description)),
            ]
        case .dissected(let dissected):
            members += fields(of: dissected, showsSecrets: showsSecrets)
            if !dissected.warnings.isEmpty {
                members.append(.init(key: "warnings", value: .array(dissected.warnings.map { .string($0) })))
            }
        }
        return .object(members)
    }

    public static func name(of event: CaptureEvent) -> String {
        switch event.kind {
        case .opened: "connection"
        case .gap: "gap"
        case .closed: "closed"
        case .ignored: "ignored"
        case .dissected(let dissected):
            switch dissected.kind {
            case .request, .response: "handshake"
            case .frame: "frame"
            case .mqtt: "mqtt"
            case .webSocketMessage, .webSocketControl: "websocket"
            case .resynchronized: "resync"
            case .error: "error"
            }
        }
    }

    /// Seconds with six decimals, negative values included. Times past what microseconds
    /// in 64 bits hold (only a HAR file can claim them) are written as Swift prints them,
    /// which is still a JSON number; this never traps (the har fuzz target found it did).
    public static func formatTime(_ time: Double) -> String {
        guard time.isFinite, time.magnitude < 9e12 else { return time.isFinite ? "\(time)" : "0" }
        let micros = Int64((time * 1_000_000).rounded())
        let magnitude = micros.magnitude
        let fraction = String(magnitude % 1_000_000)
        return "\(micros < 0 ? "-" : "")\(magnitude / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }

    static func headers(_ headers: HTTPHeaders) -> JSONValue {
        .array(headers.map { name, value in .array([.string(name), .string(value)]) })
    }

    private static func fields(of event: DissectorEvent, showsSecrets: Bool) -> [JSONMember] {
        switch event.kind {
        case .request(let request):
            return [.init(key: "type", value: .string("request")), .init(key: "method", value: .string(request.method.rawValue)),
                    .init(key: "target", value: .string(request.target)), .init(key: "headers", value: headers(request.headers))]
        case .response(let response, let problems):
            var out: [JSONMember] = [
                .init(key: "type", value: .string("response")),
                .init(key: "status", value: .number(String(response.status.code))),
                .init(key: "reason", value: .string(response.reasonPhrase)),
                .init(key: "headers", value: headers(response.headers)),
            ]
            if let subprotocol = response.subprotocol { out.append(.init(key: "subprotocol", value: .string(subprotocol))) }
            out.append(.init(key: "problems", value: .array(problems.map { .string($0.description) })))
            return out
        case .frame(let frame):
            return [.init(key: "type", value: .string(opcodeName(frame.opcode))),
                    .init(key: "fin", value: .bool(frame.fin)),
                    .init(key: "masked", value: .bool(frame.maskKey != nil)),
                    .init(key: "payloadLength", value: .number(String(frame.length))),
                    .init(key: "streamOffset", value: .number(String(frame.offset)))]
        case .mqtt(let packet, let range, let annotation):
            var out = mqttFields(packet, range: range, showsSecrets: showsSecrets)
            // The topic shown is the one the alias stands for; the packet itself carried none.
            if let alias = event.topicFromAlias { out.append(.init(key: "topicFromAlias", value: .number(String(alias)))) }
            if let annotation { out.append(.init(key: annotation.dialect, value: works(annotation))) }
            return out
        case .webSocketMessage(let message, let annotation):
            var out: [JSONMember] = [.init(key: "type", value: .string("message")),
                                     .init(key: "opcode", value: .string(opcodeName(message.opcode))),
                                     .init(key: "payloadLength", value: .number(String(message.data.readableBytes)))]
            if let text = message.text { out.append(.init(key: "text", value: .string(text))) }
            if let annotation { out.append(.init(key: annotation.dialect, value: works(annotation))) }
            return out
        case .webSocketControl(let control, let meaning):
            switch control {
            case .ping(let data, _): return [.init(key: "type", value: .string("ping")), .init(key: "payloadLength", value: .number(String(data.readableBytes)))]
            case .pong(let data, _): return [.init(key: "type", value: .string("pong")), .init(key: "payloadLength", value: .number(String(data.readableBytes)))]
            case .close(let close, _):
                var out: [JSONMember] = [.init(key: "type", value: .string("close"))]
                if let code = close.code { out.append(.init(key: "code", value: .number(String(code)))) }
                if let meaning { out.append(.init(key: "codeName", value: .string(meaning))) }
                out.append(.init(key: "reason", value: .string(close.reason)))
                return out
            case .message(let message):
                return [.init(key: "type", value: .string("message")), .init(key: "payloadLength", value: .number(String(message.data.readableBytes)))]
            }
        case .resynchronized(let layer, let skipped):
            return [.init(key: "layer", value: .string(layer)), .init(key: "skipped", value: .number(String(skipped)))]
        case .error(let layer, let description):
            return [.init(key: "layer", value: .string(layer)), .init(key: "message", value: .string(description))]
        }
    }

    static func opcodeName(_ opcode: some CustomStringConvertible) -> String {
        let text = "\(opcode)"
        // NIO describes opcodes as "WebSocketOpcode.binary".
        return String(text.split(separator: ".").last ?? Substring(text))
    }

    /// The remaining length of a packet of `total` bytes: the fixed header is the type
    /// byte plus the variable byte integer of the remaining length.
    static func remainingLength(total: Int) -> Int {
        for size in 1...4 {
            let remaining = total - 1 - size
            let needed = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4
            if needed == size { return remaining }
        }
        return max(0, total - 2)
    }

    public static func mqttFields(_ packet: MQTTPacket, range: Range<Int>, showsSecrets: Bool) -> [JSONMember] {
        var out: [JSONMember] = [
            .init(key: "type", value: .string(packet.type.description)),
            .init(key: "remainingLength", value: .number(String(remainingLength(total: range.count)))),
            .init(key: "streamOffset", value: .number(String(range.lowerBound))),
        ]
        func add(_ key: String, _ value: JSONValue) { out.append(.init(key: key, value: value)) }
        func number(_ value: some BinaryInteger) -> JSONValue { .number(String(value)) }
        func reason(_ code: ReasonCode) {
            add("reasonCode", number(code.rawValue))
            if let name = code.name { add("reasonName", .string(name)) }
        }
        switch packet {
        case .connect(let p):
            add("protocolName", .string(p.protocolVersion.protocolName))
            add("protocolLevel", number(p.protocolVersion.rawValue))
            add("clientId", .string(p.clientIdentifier))
            add("cleanStart", .bool(p.cleanStart))
            add("keepAlive", number(p.keepAlive))
            if let username = p.username { add("username", .string(username)) }
            if let password = p.password {
                add("password", showsSecrets || String(buffer: password).hasPrefix("‹") ? .string(String(buffer: password)) : .string("‹present›"))
            }
            if let will = p.will {
                add("will", .object([.init(key: "topic", value: .string(will.topic)), .init(key: "qos", value: number(will.qos.rawValue)),
                                     .init(key: "retain", value: .bool(will.retain)),
                                     .init(key: "payloadLength", value: number(will.payload.readableBytes))]))
            }
            addProperties(p.properties, to: &out)
        case .connack(let p):
            add("sessionPresent", .bool(p.sessionPresent))
            add("reasonCode", number(p.reasonCode.rawValue))
            if let name = p.reasonCode.connectReturnCodeName ?? p.reasonCode.name { add("reasonName", .string(name)) }
            addProperties(p.properties, to: &out)
        case .publish(let p):
            add("topic", .string(p.topicName))
            add("qos", number(p.qos.rawValue))
            add("dup", .bool(p.dup))
            add("retain", .bool(p.retain))
            if let id = p.packetIdentifier { add("packetId", number(id)) }
            add("payloadLength", number(p.payload.readableBytes))
            addProperties(p.properties, to: &out)
        case .puback(let p), .pubrec(let p), .pubrel(let p), .pubcomp(let p):
            add("packetId", number(p.packetIdentifier))
            reason(p.reasonCode)
            addProperties(p.properties, to: &out)
        case .subscribe(let p):
            add("packetId", number(p.packetIdentifier))
            add("subscriptions", .array(p.subscriptions.map {
                .object([.init(key: "filter", value: .string($0.topicFilter)), .init(key: "qos", value: number($0.qos.rawValue))])
            }))
            addProperties(p.properties, to: &out)
        case .suback(let p):
            add("packetId", number(p.packetIdentifier))
            add("reasonCodes", .array(p.reasonCodes.map { number($0.rawValue) }))
            addProperties(p.properties, to: &out)
        case .unsubscribe(let p):
            add("packetId", number(p.packetIdentifier))
            add("filters", .array(p.topicFilters.map { .string($0) }))
            addProperties(p.properties, to: &out)
        case .unsuback(let p):
            add("packetId", number(p.packetIdentifier))
            if !p.reasonCodes.isEmpty { add("reasonCodes", .array(p.reasonCodes.map { number($0.rawValue) })) }
            addProperties(p.properties, to: &out)
        case .pingreq, .pingresp:
            break
        case .disconnect(let p):
            reason(p.reasonCode)
            addProperties(p.properties, to: &out)
        case .auth(let p):
            reason(p.reasonCode)
            addProperties(p.properties, to: &out)
        }
        return out
    }

    private static func addProperties(_ properties: MQTTProperties, to out: inout [JSONMember]) {
        guard !properties.isEmpty else { return }
        out.append(.init(key: "properties", value: .array(properties.map { property in
            let value: JSONValue
            switch property {
            case .payloadFormatIndicator(let v), .requestProblemInformation(let v), .requestResponseInformation(let v),
                 .maximumQoS(let v), .retainAvailable(let v), .wildcardSubscriptionAvailable(let v),
                 .subscriptionIdentifierAvailable(let v), .sharedSubscriptionAvailable(let v):
                value = .number(String(v))
            case .messageExpiryInterval(let v), .sessionExpiryInterval(let v), .willDelayInterval(let v),
                 .maximumPacketSize(let v), .subscriptionIdentifier(let v):
                value = .number(String(v))
            case .serverKeepAlive(let v), .receiveMaximum(let v), .topicAliasMaximum(let v), .topicAlias(let v):
                value = .number(String(v))
            case .contentType(let s), .responseTopic(let s), .assignedClientIdentifier(let s), .authenticationMethod(let s),
                 .responseInformation(let s), .serverReference(let s), .reasonString(let s):
                value = .string(s)
            case .correlationData(let b), .authenticationData(let b):
                value = .number(String(b.readableBytes))
            case .userProperty(let name, let v):
                value = .array([.string(name), .string(v)])
            }
            let name = "\(property.identifier)".split(separator: " (").first.map(String.init) ?? ""
            return .object([.init(key: "name", value: .string(name)), .init(key: "value", value: value)])
        })))
    }

    static func works(_ annotation: AnnotatedMessage) -> JSONValue {
        var members: [JSONMember] = [
            .init(key: "kind", value: .string(annotation.kind)),
            .init(key: "summary", value: .string(annotation.summary)),
            .init(key: "fields", value: .object(annotation.fields.map { .init(key: $0.name, value: .string($0.value)) })),
        ]
        if !annotation.warnings.isEmpty {
            members.append(.init(key: "warnings", value: .array(annotation.warnings.map { .string($0) })))
        }
        return .object(members)
    }
}

extension DecodeRecord {
    /// The JSON Lines record of `event` appended to `out`.
    public static func write(_ event: CaptureEvent, showsSecrets: Bool = false, to out: inout [UInt8]) {
        out.append(writing: { write(event, showsSecrets: showsSecrets, to: &$0) })
    }

    /// The JSON Lines record of `event`, without a ``HeaderMemory`` kept between records.
    public static func write(_ event: CaptureEvent, showsSecrets: Bool = false, to out: inout ByteWriter) {
        var memory = HeaderMemory()
        write(event, showsSecrets: showsSecrets, memory: &memory, to: &out)
    }

    /// What a thread that writes many records keeps between them: the members of an MQTT
    /// packet's record that only depend on its connection and direction (the connection id,
    /// direction, source and destination), written once per connection instead of once per
    /// packet from the endpoints' numbers. A few dozen connections are kept, by id, in one
    /// block of bytes (arrays per connection cost a retain and a release each time).
    public struct HeaderMemory {
        private struct Key: Equatable {
            var id: Int
            var client: Endpoint
            var server: Endpoint
        }

        /// Each slot's bytes: `{"v":1,"event":"mqtt","connection":"c1","time":`, then
        /// `,"direction":"c2s","src":"…","dst":"…","type":"` client to server, then server to
        /// client, each in a region of its own.
        private static let slots = 64
        private static let openingSize = 80
        private static let membersSize = 160
        private static let slotSize = openingSize + 2 * membersSize
        private var keys: [Key?] = Array(repeating: nil, count: slots)
        private var lengths: [Int] = Array(repeating: 0, count: slots * 3)
        private var text: [UInt8] = Array(repeating: 0, count: slots * slotSize)

        /// Where part 0 (the opening), 1 (client to server) or 2 (server to client) lies in a slot.
        private static func region(_ part: Int) -> (start: Int, size: Int) {
            part == 0 ? (0, openingSize) : (openingSize + (part - 1) * membersSize, membersSize)
        }

        public init() {}

        /// The connection's slot, written now unless it is kept; nil if its members do not
        /// fit (they always do; the record is then written without the memory).
        fileprivate mutating func slot(for connection: Connection) -> Int? {
            let slot = connection.id & (Self.slots - 1)
            let key = Key(id: connection.id, client: connection.client, server: connection.server)
            if keys[slot] == key { return slot }
            var opening = ByteWriter(capacity: 80)
            opening.append("{\"v\":")
            DecimalText.append(UInt64(DecodeRecord.schemaVersion), to: &opening)
            opening.append(",\"event\":\"mqtt\",\"connection\":\"c")
            DecimalText.append(Int64(connection.id), to: &opening)
            opening.append("\",\"time\":")
            func members(_ direction: FlowDirection) -> ByteWriter {
                var out = ByteWriter(capacity: 160)
                out.append(direction == .clientToServer ? ",\"direction\":\"c2s\",\"src\":\"" : ",\"direction\":\"s2c\",\"src\":\"")
                connection.source(of: direction).write(to: &out)
                out.append("\",\"dst\":\"")
                connection.destination(of: direction).write(to: &out)
                out.append("\",\"type\":\"")
                return out
            }
            let parts = [opening.bytes, members(.clientToServer).bytes, members(.serverToClient).bytes]
            keys[slot] = nil
            for (index, part) in parts.enumerated() {
                let region = Self.region(index)
                guard part.count <= region.size else { return nil }
                let start = slot * Self.slotSize + region.start
                text.replaceSubrange(start..<(start + part.count), with: part)
                lengths[slot * 3 + index] = part.count
            }
            keys[slot] = key
            return slot
        }

        /// Part 0 (the opening), 1 (client to server) or 2 (server to client) of a slot.
        fileprivate func write(part: Int, slot: Int, to out: inout ByteWriter) {
            let start = slot * Self.slotSize + Self.region(part).start
            let count = lengths[slot * 3 + part]
            text.withUnsafeBytes { out.append(UnsafeRawBufferPointer(rebasing: $0[start..<(start + count)])) }
        }
    }

    /// The JSON Lines record of `event` written straight into `out`: the bytes of
    /// `json(event).write(to:)` (a test holds the two equal on every event of every committed
    /// capture), without the tree of strings and arrays for the events captures are mostly
    /// made of, PUBLISH packets and their acknowledgements; other events go through the tree.
    public static func write(_ event: CaptureEvent, showsSecrets: Bool = false, memory: inout HeaderMemory,
                             to out: inout ByteWriter) {
        guard case .dissected(let dissected) = event.kind, case .mqtt(let packet, let range, let annotation) = dissected.kind,
              dissected.warnings.isEmpty, let direction = event.direction, event.time.isFinite, event.time.magnitude < 9e12
        else {
            writeTree(event, showsSecrets: showsSecrets, to: &out)
            return
        }
        var record = RecordWriter()
        switch packet {
        case .publish(let p) where p.properties.isEmpty:
            record.header(event, direction: direction, type: "PUBLISH", range: range, memory: &memory, to: &out)
            record.key("topic", to: &out)
            JSONValue.writeString(p.topicName, to: &out)
            record.key("qos", to: &out)
            DecimalText.append(UInt64(p.qos.rawValue), to: &out)
            record.key("dup", to: &out)
            out.append(p.dup ? "true" : "false")
            record.key("retain", to: &out)
            out.append(p.retain ? "true" : "false")
            if let id = p.packetIdentifier {
                record.key("packetId", to: &out)
                DecimalText.append(UInt64(id), to: &out)
            }
            record.key("payloadLength", to: &out)
            DecimalText.append(UInt64(p.payload.readableBytes), to: &out)
        case .puback(let p) where p.properties.isEmpty, .pubrec(let p) where p.properties.isEmpty,
             .pubrel(let p) where p.properties.isEmpty, .pubcomp(let p) where p.properties.isEmpty:
            record.header(event, direction: direction, type: packet.type.description, range: range, memory: &memory, to: &out)
            record.key("packetId", to: &out)
            DecimalText.append(UInt64(p.packetIdentifier), to: &out)
            record.key("reasonCode", to: &out)
            DecimalText.append(UInt64(p.reasonCode.rawValue), to: &out)
            if let name = p.reasonCode.name {
                record.key("reasonName", to: &out)
                JSONValue.writeString(name, to: &out)
            }
        default:
            writeTree(event, showsSecrets: showsSecrets, to: &out)
            return
        }
        if let annotation {
            record.key(dynamic: annotation.dialect, to: &out)
            RecordWriter.annotation(annotation, to: &out)
        } else if let deferred = dissected.deferredWorks, case .publish(let publish) = packet {
            // A Works annotation left for later is written straight from the payload when it
            // can be, else made and written.
            let mark = out.count
            out.append(",\"works\":")
            if !deferred.writeJSON(publish, to: &out) {
                out.truncate(to: mark)
                if let annotation = deferred.annotate(publish) {
                    record.key(dynamic: annotation.dialect, to: &out)
                    RecordWriter.annotation(annotation, to: &out)
                }
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    /// An annotation's JSON object, as records hold it under the dialect's name.
    public static func writeAnnotation(_ annotation: AnnotatedMessage, to out: inout ByteWriter) {
        RecordWriter.annotation(annotation, to: &out)
    }

    /// The record through the tree of values, with any Works annotation left for later made first.
    private static func writeTree(_ event: CaptureEvent, showsSecrets: Bool, to out: inout ByteWriter) {
        var event = event
        event.completeAnnotation()
        json(event, showsSecrets: showsSecrets).write(to: &out)
    }

    /// Writes an object's members one by one: the brace or comma in front of each key.
    private struct RecordWriter {
        private var first = true

        mutating func key(_ name: StaticString, to out: inout ByteWriter) {
            out.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
            first = false
            out.append(UInt8(ascii: "\""))
            out.append(name)
            out.append("\":")
        }

        mutating func key(dynamic name: String, to out: inout ByteWriter) {
            out.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
            first = false
            JSONValue.writeString(name, to: &out)
            out.append(UInt8(ascii: ":"))
        }

        /// `formatTime` without its strings: the caller checked the time is finite and small.
        static func time(_ time: Double, to out: inout ByteWriter) {
            let micros = Int64((time * 1_000_000).rounded())
            if micros < 0 { out.append(UInt8(ascii: "-")) }
            DecimalText.append(micros.magnitude / 1_000_000, to: &out)
            out.append(UInt8(ascii: "."))
            DecimalText.append(micros.magnitude % 1_000_000, minimumDigits: 6, to: &out)
        }

        /// The members every MQTT packet record starts with, up to `streamOffset`: those of the
        /// connection and direction as `memory` keeps them. `type` is a packet type's name,
        /// which needs no escapes.
        mutating func header(_ event: CaptureEvent, direction: FlowDirection, type: String, range: Range<Int>,
                             memory: inout HeaderMemory, to out: inout ByteWriter) {
            first = false
            let slot = memory.slot(for: event.connection)
            if let slot {
                memory.write(part: 0, slot: slot, to: &out)
            } else {
                out.append("{\"v\":")
                DecimalText.append(UInt64(DecodeRecord.schemaVersion), to: &out)
                out.append(",\"event\":\"mqtt\",\"connection\":\"c")
                DecimalText.append(Int64(event.connection.id), to: &out)
                out.append("\",\"time\":")
            }
            Self.time(event.time, to: &out)
            out.append(",\"frame\":")
            DecimalText.append(Int64(event.frame), to: &out)
            if let slot {
                memory.write(part: direction == .clientToServer ? 1 : 2, slot: slot, to: &out)
            } else {
                out.append(direction == .clientToServer ? ",\"direction\":\"c2s\",\"src\":\"" : ",\"direction\":\"s2c\",\"src\":\"")
                event.connection.source(of: direction).write(to: &out)
                out.append("\",\"dst\":\"")
                event.connection.destination(of: direction).write(to: &out)
                out.append("\",\"type\":\"")
            }
            out.append(contentsOf: type)
            out.append("\",\"remainingLength\":")
            DecimalText.append(Int64(DecodeRecord.remainingLength(total: range.count)), to: &out)
            out.append(",\"streamOffset\":")
            DecimalText.append(Int64(range.lowerBound), to: &out)
        }

        /// `DecodeRecord.works(annotation)`, written.
        static func annotation(_ annotation: AnnotatedMessage, to out: inout ByteWriter) {
            var nested = RecordWriter()
            nested.key("kind", to: &out)
            JSONValue.writeString(annotation.kind, to: &out)
            nested.key("summary", to: &out)
            JSONValue.writeString(annotation.summary, to: &out)
            nested.key("fields", to: &out)
            if annotation.fields.isEmpty {
                out.append("{}")
            } else {
                var fields = RecordWriter()
                for field in annotation.fields {
                    fields.key(dynamic: field.name, to: &out)
                    JSONValue.writeString(field.value, to: &out)
                }
                out.append(UInt8(ascii: "}"))
            }
            if !annotation.warnings.isEmpty {
                nested.key("warnings", to: &out)
                out.append(UInt8(ascii: "["))
                for (index, warning) in annotation.warnings.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    JSONValue.writeString(warning, to: &out)
                }
                out.append(UInt8(ascii: "]"))
            }
            out.append(UInt8(ascii: "}"))
        }
    }
}
