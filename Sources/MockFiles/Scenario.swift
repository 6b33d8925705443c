public import Dialects
public import MQTTWire
public import NIOCore

/// A scenario file (`docs/scenarios.md`): JSON Lines, one step a line, played against each
/// client once its session is accepted. Blank lines and lines starting with `#` or `//` are skipped.
public struct Scenario: Sendable {
    public enum Step: Sendable {
        /// A Works notification from simple JSON (`{"notify": {"channel", "sender", "text" | "sticker"}}`).
        case notify(JSONValue)
        /// A read receipt (`{"read": {"channel", "reader", "upTo"}}`), command 93004.
        case readReceipt(channel: Int64, reader: Int64, messageSerial: Int64)
        /// Any PUBLISH to this client (`{"publish": {"topic", "payload", "qos"}}`).
        case publish(topic: String, payload: ByteBuffer, qos: QoS)
        /// `{"wait": seconds}`
        case wait(Duration)
        /// `{"expect": {"type": "PUBACK", "topic": …, "contains": …}, "timeout": seconds}`: the next
        /// matching packet from the client must come within the timeout.
        case expect(Expectation, timeout: Duration)
        /// `{"delay_acks": seconds}`: PUBACK/PUBREC/PUBCOMP to this client's publishes go out late from now on.
        case delayAcknowledgements(Duration)
        /// `{"raw": "30 03 00 01 41"}`: bytes sent as they are in one binary frame (a malformed packet, say).
        case raw([UInt8])
        /// `{"drop": true}`: the TCP connection is cut without a close frame.
        case drop
        /// `{"close": 1001}`: a WebSocket close frame with this code, then the end of the connection.
        case close(code: UInt16)
    }

    /// What an `expect` step matches.
    public struct Expectation: Sendable, CustomStringConvertible {
        public var type: PacketType?
        public var topic: String?
        public var contains: String?

        public func matches(_ packet: MQTTPacket) -> Bool {
            if let type, packet.type != type { return false }
            if let topic {
                guard case .publish(let publish) = packet, TopicMatching.matches(filter: topic, topic: publish.topicName) else { return false }
            }
            if let contains {
                guard case .publish(let publish) = packet, String(buffer: publish.payload).contains(contains) else { return false }
            }
            return true
        }

        public var description: String {
            [type.map { "\($0)" }, topic.map { "topic \($0)" }, contains.map { "containing \"\($0)\"" }].compactMap { $0 }.joined(separator: " ")
        }
    }

    /// A step the file could not be read as: line number and why.
    public struct ParseError: Error, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "scenario line \(line): \(reason)" }
    }

    public var steps: [(line: Int, step: Step)]

    /// A scenario from steps built elsewhere (a recorded session); `line` numbers them in reports.
    public init(steps: [(line: Int, step: Step)]) {
        self.steps = steps
    }

    public init(jsonLines text: String) throws(ParseError) {
        steps = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("//") { continue }
            let json: JSONValue
            do {
                json = try JSONReader.parse(String(line))
            } catch {
                throw ParseError(line: index + 1, reason: "\(error)")
            }
            steps.append((index + 1, try Self.step(json, line: index + 1)))
        }
    }

    static func seconds(_ value: JSONValue?, line: Int, key: String) throws(ParseError) -> Duration {
        guard let value, case .number(let text) = value, let number = Double(text), number >= 0, number <= 86_400 else {
            throw ParseError(line: line, reason: "\"\(key)\" takes a number of seconds")
        }
        return .milliseconds(Int64((number * 1000).rounded()))
    }

    static func step(_ json: JSONValue, line: Int) throws(ParseError) -> Step {
        if let notify = json["notify"] {
            // Refused at start, as a bad line is, not when the step comes.
            do {
                try NotificationBuilder.check(notify)
            } catch {
                throw ParseError(line: line, reason: "\"notify\": \(error.description)")
            }
            return .notify(notify)
        }
        if let read = json["read"] {
            guard let channel = read["channel"]?.intValue, let reader = read["reader"]?.intValue, let serial = read["upTo"]?.intValue else {
                throw ParseError(line: line, reason: "\"read\" takes {\"channel\", \"reader\", \"upTo\"} numbers")
            }
            return .readReceipt(channel: channel, reader: reader, messageSerial: serial)
        }
        if let publish = json["publish"] {
            guard let topic = publish["topic"]?.stringValue, !topic.isEmpty else { throw ParseError(line: line, reason: "\"publish\" needs a \"topic\"") }
            guard let qos = QoS(rawValue: UInt8(clamping: publish["qos"]?.intValue ?? 0)), (publish["qos"]?.intValue ?? 0) <= 2 else {
                throw ParseError(line: line, reason: "\"qos\" is 0, 1 or 2")
            }
            var bytes: [UInt8] = []
            switch publish["payload"] {
            case .string(let text)?: bytes = Array(text.utf8)
            case let value?: value.write(to: &bytes)
            case nil: break
            }
            return .publish(topic: topic, payload: ByteBuffer(bytes: bytes), qos: qos)
        }
        if json["wait"] != nil { return .wait(try seconds(json["wait"], line: line, key: "wait")) }
        if let expect = json["expect"] {
            var expectation = Expectation()
            if let name = expect["type"]?.stringValue {
                guard let type = PacketType.allCases.first(where: { "\($0)".uppercased() == name.uppercased() }) else {
                    throw ParseError(line: line, reason: "unknown packet type \(name)")
                }
                expectation.type = type
            }
            expectation.topic = expect["topic"]?.stringValue
            expectation.contains = expect["contains"]?.stringValue
            let timeout = json["timeout"] == nil ? .seconds(10) : try seconds(json["timeout"], line: line, key: "timeout")
            return .expect(expectation, timeout: timeout)
        }
        if json["delay_acks"] != nil { return .delayAcknowledgements(try seconds(json["delay_acks"], line: line, key: "delay_acks")) }
        if let raw = json["raw"]?.stringValue {
            var bytes: [UInt8] = []
            for pair in raw.split(separator: " ") {
                guard let byte = UInt8(pair, radix: 16) else { throw ParseError(line: line, reason: "\"raw\" takes hexadecimal bytes separated by spaces") }
                bytes.append(byte)
            }
            return .raw(bytes)
        }
        if json["drop"] != nil { return .drop }
        if let close = json["close"] {
            guard let code = close.intValue, (1000...4999).contains(code) else { throw ParseError(line: line, reason: "\"close\" takes a code from 1000 to 4999") }
            return .close(code: UInt16(code))
        }
        throw ParseError(line: line, reason: "no known step (notify, read, publish, wait, expect, delay_acks, raw, drop, close)")
    }
}
