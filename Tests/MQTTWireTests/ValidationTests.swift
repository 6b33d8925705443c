import Foundation
import MQTTWire
import NIOCore
import TestSupport
import Testing

/// One malformed input: its bytes, the version to decode with, the error code expected,
/// the stream offset of the offending byte, and the normative statement it breaks.
struct MalformedCase: CustomTestStringConvertible, Sendable {
    let statement: String
    let hex: String
    let version: ProtocolVersion
    let code: MQTTWireError.Code
    let offset: Int
    var testDescription: String { "[\(statement)] \(hex)" }

    init(_ statement: String, _ hex: String, _ code: MQTTWireError.Code, at offset: Int) {
        self.init(statement, hex, .v3_1_1, code, at: offset)
    }

    init(_ statement: String, _ hex: String, _ version: ProtocolVersion, _ code: MQTTWireError.Code,
         at offset: Int) {
        self.statement = statement
        self.hex = hex
        self.version = version
        self.code = code
        self.offset = offset
    }
}

@Suite("Validation: every malformed case gets its typed error at its byte")
struct ValidationTests {
    static let cases: [MalformedCase] = [
        // Fixed header
        .init("MQTT-2.2.2-1", "41 02 00 01", .invalidFixedHeaderFlags, at: 0),  // PUBACK flags must be 0
        .init("MQTT-2.2.2-2", "60 02 00 01", .invalidFixedHeaderFlags, at: 0),  // PUBREL flags must be 0010
        .init("MQTT-2.2.2-2", "80 06 00 01 00 01 61 00", .invalidFixedHeaderFlags, at: 0),  // SUBSCRIBE 0010
        .init("MQTT-2.1.3-1", "A0 05 00 01 00 01 61", .v5, .invalidFixedHeaderFlags, at: 0),  // UNSUBSCRIBE in 5.0
        .init("MQTT-3.3.1-4", "36 05 00 01 74 00 01", .invalidQoS, at: 0),  // PUBLISH QoS 3
        .init("MQTT-3.3.1-2", "38 03 00 01 74", .invalidFixedHeaderFlags, at: 0),  // DUP on QoS 0
        .init("MQTT 3.1.1 §2.2.3", "30 FF FF FF FF 01", .malformedRemainingLength, at: 4),
        .init("MQTT 3.1.1 §2.2.1", "00 00", .invalidPacketType, at: 0),  // type 0 is reserved
        .init("MQTT 3.1.1 §2.2.1", "F0 00", .invalidPacketType, at: 0),  // AUTH outside 5.0
        // UTF-8 strings
        .init("MQTT-1.5.3-1", "30 05 00 03 61 C0 80", .invalidUTF8, at: 5),  // overlong encoding
        .init("MQTT-1.5.3-1", "30 05 00 03 ED A0 80", .invalidUTF8, at: 4),  // UTF-16 surrogate
        .init("MQTT-1.5.3-1", "30 04 00 02 61 E3", .invalidUTF8, at: 5),  // sequence cut short
        .init("MQTT-1.5.3-1", "30 06 00 04 F4 90 80 80", .invalidUTF8, at: 4),  // above U+10FFFF
        .init("MQTT-1.5.3-2", "30 05 00 03 61 00 62", .nullCharacterInString, at: 5),
        .init("MQTT-1.5.3-2", "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 61 00 62", .nullCharacterInString, at: 15),
        // Topic names and filters
        .init("MQTT-3.3.2-2", "30 05 00 03 61 2F 23", .invalidTopicName, at: 6),
        .init("MQTT-3.3.2-2", "30 05 00 03 2B 2F 61", .invalidTopicName, at: 4),
        .init("MQTT-4.7.3-1", "30 02 00 00", .invalidTopicName, at: 2),
        .init("MQTT-3.3.2-1", "30 03 00 00 00", .v5, .invalidTopicName, at: 2),  // empty, no alias
        .init("MQTT-4.7.1-2", "82 07 00 01 00 02 61 23 00", .invalidTopicFilter, at: 7),
        .init("MQTT-4.7.1-3", "82 09 00 01 00 04 61 2B 2F 62 00", .invalidTopicFilter, at: 7),
        .init("MQTT-4.7.3-1", "82 05 00 01 00 00 00", .invalidTopicFilter, at: 6),
        // Packet identifiers
        .init("MQTT-2.3.1-1", "32 05 00 01 74 00 00", .invalidPacketIdentifier, at: 5),
        .init("MQTT-2.3.1-1", "40 02 00 00", .invalidPacketIdentifier, at: 2),
        .init("MQTT-2.3.1-1", "62 02 00 00", .invalidPacketIdentifier, at: 2),
        .init("MQTT-2.3.1-1", "82 06 00 00 00 01 61 00", .invalidPacketIdentifier, at: 2),
        .init("MQTT-2.3.1-1", "A2 05 00 00 00 01 61", .invalidPacketIdentifier, at: 2),
        .init("MQTT-2.3.1-1", "90 03 00 00 00", .invalidPacketIdentifier, at: 2),
        // CONNECT
        .init("MQTT-3.1.2-1", "10 0C 00 04 4D 51 54 58 04 02 00 3C 00 00", .unsupportedProtocolName, at: 2),
        .init("MQTT-3.1.2-2", "10 0C 00 04 4D 51 54 54 06 02 00 3C 00 00", .unsupportedProtocolLevel, at: 8),
        .init("MQTT-3.1.2-2", "10 0C 00 04 4D 51 54 54 03 02 00 3C 00 00", .unsupportedProtocolLevel, at: 8),
        .init("MQTT-3.1.2-3", "10 0C 00 04 4D 51 54 54 04 03 00 3C 00 00", .invalidConnectFlags, at: 9),
        .init("MQTT-3.1.2-13", "10 0C 00 04 4D 51 54 54 04 0A 00 3C 00 00", .invalidConnectFlags, at: 9),
        .init("MQTT-3.1.2-14", "10 0C 00 04 4D 51 54 54 04 1E 00 3C 00 00", .invalidQoS, at: 9),
        .init("MQTT-3.1.2-15", "10 0C 00 04 4D 51 54 54 04 22 00 3C 00 00", .invalidConnectFlags, at: 9),
        .init("MQTT-3.1.2-22", "10 0C 00 04 4D 51 54 54 04 42 00 3C 00 00", .invalidConnectFlags, at: 9),
        .init("MQTT-3.2.2-1", "20 03 02 00 00", .v5, .invalidConnectFlags, at: 2),
        .init("MQTT 3.1.1 §3.2.2.3", "20 02 00 06", .invalidReasonCode, at: 3),
        // SUBSCRIBE, SUBACK, UNSUBSCRIBE
        .init("MQTT-3.8.3-3", "82 02 00 01", .emptySubscriptionList, at: 4),
        .init("MQTT-3.10.3-2", "A2 02 00 01", .emptySubscriptionList, at: 4),
        .init("MQTT-3-8.3-4", "82 06 00 01 00 01 61 04", .invalidSubscriptionOptions, at: 7),
        .init("MQTT-3-8.3-4", "82 06 00 01 00 01 61 03", .invalidQoS, at: 7),
        .init("MQTT-3.8.3-5", "82 07 00 01 00 00 01 61 40", .v5, .invalidSubscriptionOptions, at: 8),
        .init("MQTT 5.0 §3.8.3.1", "82 07 00 01 00 00 01 61 30", .v5, .invalidSubscriptionOptions, at: 8),
        .init("MQTT-3.9.3-2", "90 03 00 01 03", .invalidReasonCode, at: 4),
        .init("MQTT 5.0 §3.4.2.1", "40 03 00 01 04", .v5, .invalidReasonCode, at: 4),
        // MQTT 5 properties
        .init("MQTT 5.0 §3.3.2.3.4", "30 0A 00 01 74 06 23 00 01 23 00 02", .v5, .duplicateProperty, at: 9),
        .init("MQTT 5.0 §3.1.2.11.2", "10 17 00 04 4D 51 54 54 05 02 00 3C 0A 11 00 00 00 01 11 00 00 00 02 00 00",
              .v5, .duplicateProperty, at: 18),
        .init("MQTT 5.0 §2.2.2.2", "30 09 00 01 74 05 11 00 00 00 01", .v5, .propertyNotAllowed, at: 6),
        .init("MQTT 5.0 §2.2.2.2", "30 06 00 01 74 02 7F 00", .v5, .unknownProperty, at: 6),
        .init("MQTT-3.3.2-8", "30 07 00 01 74 03 23 00 00", .v5, .invalidPropertyValue, at: 6),
        .init("MQTT 5.0 §3.3.2.3.8", "30 06 00 01 74 02 0B 00", .v5, .invalidPropertyValue, at: 6),
        .init("MQTT 5.0 §3.3.2.3.2", "30 06 00 01 74 02 01 02", .v5, .invalidPropertyValue, at: 6),
        .init("MQTT 5.0 §1.5.5", "30 09 00 01 74 05 0B 80 80 80 80", .v5, .malformedVariableByteInteger, at: 7),
        // Longer encodings than the value needs (found by fuzzing: the fast path misread them).
        .init("MQTT-1.5.5-1", "C0 80 00", .v5, .malformedRemainingLength, at: 2),
        .init("MQTT-1.5.5-1", "40 82 00 00 01", .v5, .malformedRemainingLength, at: 2),
        .init("MQTT-1.5.5-1", "30 05 00 01 74 80 00", .v5, .malformedVariableByteInteger, at: 5),
        .init("MQTT 5.0 §2.2.2.2", "30 09 00 01 74 05 1F 00 02 C3 28", .v5, .propertyNotAllowed, at: 6),
        .init("MQTT-1.5.4-1", "40 08 00 01 80 04 1F 00 01 FF", .v5, .invalidUTF8, at: 9),
        // Lengths
        .init("MQTT 3.1.1 §2.2.3", "30 03 00 05 61", .truncatedPacket, at: 4),
        .init("MQTT 3.1.1 §3.12", "C0 01 00", .trailingBytes, at: 2),
        .init("MQTT 3.1.1 §3.4", "40 03 00 01 00", .trailingBytes, at: 4),
        .init("MQTT 5.0 §2.2.2.1", "30 05 00 01 74 09 00", .v5, .truncatedPacket, at: 6),
    ]

    @Test(arguments: cases)
    func rejected(_ malformed: MalformedCase) {
        var decoder = MQTTDecoder(configuration: .init(version: malformed.version))
        decoder.append(contentsOf: hexBytes(malformed.hex))
        #expect {
            _ = try decoder.next()
        } throws: { error in
            guard let error = error as? MQTTWireError else { return false }
            return error.code == malformed.code && error.offset == malformed.offset
        }
    }

    /// The same cases fed one byte at a time give the same error at the same offset:
    /// the decoder never answers from a partial packet.
    @Test(arguments: cases)
    func rejectedByteByByte(_ malformed: MalformedCase) {
        var decoder = MQTTDecoder(configuration: .init(version: malformed.version))
        var caught: MQTTWireError?
        for byte in hexBytes(malformed.hex) where caught == nil {
            decoder.append(contentsOf: [byte])
            do {
                if let packet = try decoder.next() { Issue.record("decoded \(packet)") }
            } catch {
                caught = error
            }
        }
        #expect(caught?.code == malformed.code)
        #expect(caught?.offset == malformed.offset)
    }

    /// After a malformed packet whose length was readable, the next packet decodes.
    @Test func recoversAfterABadPacket() throws {
        var decoder = MQTTDecoder()
        decoder.append(contentsOf: hexBytes("32 05 00 01 74 00 00  C0 00"))
        #expect(throws: MQTTWireError.self) { _ = try decoder.next() }
        #expect(try decoder.next() == .pingreq)
        #expect(decoder.lastPacketRange == 7..<9)
    }

    /// A broken remaining length loses the packet boundaries: the decoder keeps saying so
    /// until it is reset at a boundary the caller knows.
    @Test func malformedRemainingLengthIsFatalUntilReset() throws {
        var decoder = MQTTDecoder()
        decoder.append(contentsOf: hexBytes("30 FF FF FF FF 01"))
        for _ in 0..<2 {
            #expect { _ = try decoder.next() } throws: { ($0 as? MQTTWireError)?.isRecoverable == false }
        }
        decoder.reset(streamOffset: 100)
        decoder.append(contentsOf: hexBytes("D0 00"))
        #expect(try decoder.next() == .pingresp)
        #expect(decoder.lastPacketRange == 100..<102)
    }

    /// [MQTT-3.2.2-15] analogue for the decoder: a packet over the configured maximum is
    /// refused as soon as its fixed header is read, skipped as its bytes arrive, and the
    /// stream goes on.
    @Test func maximumPacketSize() throws {
        var decoder = MQTTDecoder(configuration: .init(maximumPacketSize: 16))
        let big = try encode(.publish(PublishPacket(topicName: "t", payload: ByteBuffer(repeating: 1, count: 100))))
        decoder.append(contentsOf: big.prefix(3))
        #expect { _ = try decoder.next() } throws: {
            ($0 as? MQTTWireError).map { $0.code == .packetTooLarge && $0.offset == 0 && $0.isRecoverable } ?? false
        }
        decoder.append(contentsOf: big.dropFirst(3))
        decoder.append(contentsOf: hexBytes("C0 00"))
        #expect(try decoder.next() == .pingreq)
    }

    @Test func needsMoreBytes() throws {
        var decoder = MQTTDecoder()
        #expect(try decoder.next() == nil)
        decoder.append(contentsOf: hexBytes("30"))
        #expect(try decoder.next() == nil)
        decoder.append(contentsOf: hexBytes("80"))
        #expect(try decoder.next() == nil)  // remaining length continues
        decoder.append(contentsOf: hexBytes("01 00 01"))
        #expect(try decoder.next() == nil)  // 128 bytes announced, 2 here
        #expect(decoder.bufferedByteCount == 5)
    }

    @Test func decoderFollowsTheConnectVersion() throws {
        let connect = try encode(.connect(ConnectPacket(protocolVersion: .v5, clientIdentifier: "c")), .v5)
        let puback = try encode(.puback(PublishResponsePacket(packetIdentifier: 1, reasonCode: .quotaExceeded)), .v5)
        let packets = try decodeAll(connect + puback)
        #expect(packets.last == .puback(PublishResponsePacket(packetIdentifier: 1, reasonCode: .quotaExceeded)))
    }

    /// The encoder refuses what the decoder would refuse.
    @Test(arguments: [
        (MQTTPacket.publish(PublishPacket(topicName: "a/+", payload: ByteBuffer())), MQTTWireError.Code.invalidTopicName),
        (.publish(PublishPacket(topicName: "", payload: ByteBuffer())), .invalidTopicName),
        (.publish(PublishPacket(qos: .atLeastOnce, topicName: "t", packetIdentifier: 0, payload: ByteBuffer())),
         .invalidPacketIdentifier),
        (.publish(PublishPacket(qos: .atLeastOnce, topicName: "t", payload: ByteBuffer())), .invalidPacketIdentifier),
        (.publish(PublishPacket(dup: true, topicName: "t", payload: ByteBuffer())), .invalidFixedHeaderFlags),
        (.publish(PublishPacket(topicName: "a\u{0}b", payload: ByteBuffer())), .nullCharacterInString),
        (.publish(PublishPacket(topicName: "t", properties: [.topicAlias(1)], payload: ByteBuffer())),
         .propertiesNotSupported),
        (.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [])), .emptySubscriptionList),
        (.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: "a#")])), .invalidTopicFilter),
        (.suback(SubAckPacket(packetIdentifier: 1, reasonCodes: [ReasonCode(3)])), .invalidReasonCode),
        (.auth(AuthPacket()), .invalidPacketType),
        (.connect(ConnectPacket(clientIdentifier: "c", password: ByteBuffer(string: "p"))), .invalidConnectFlags),
        (.publish(PublishPacket(topicName: String(repeating: "x", count: 65_536), payload: ByteBuffer())),
         .stringTooLong),
    ])
    func encoderRejects(packet: MQTTPacket, code: MQTTWireError.Code) {
        #expect { _ = try MQTTEncoder(version: .v3_1_1).encode(packet) } throws: { ($0 as? MQTTWireError)?.code == code }
    }

    @Test func encoderRejectsMQTT5Rules() {
        let duplicate = MQTTPacket.publish(PublishPacket(
            topicName: "t", properties: [.topicAlias(1), .topicAlias(2)], payload: ByteBuffer()))
        #expect { _ = try MQTTEncoder(version: .v5).encode(duplicate) } throws: {
            ($0 as? MQTTWireError)?.code == .duplicateProperty
        }
        let misplaced = MQTTPacket.puback(PublishResponsePacket(packetIdentifier: 1, properties: [.topicAlias(1)]))
        #expect { _ = try MQTTEncoder(version: .v5).encode(misplaced) } throws: {
            ($0 as? MQTTWireError)?.code == .propertyNotAllowed
        }
    }

    @Test func errorDescriptionNamesLayerOffsetAndStatement() {
        var decoder = MQTTDecoder()
        decoder.append(contentsOf: hexBytes("36 05 00 01 74 00 01"))
        do {
            _ = try decoder.next()
            Issue.record("no error")
        } catch {
            #expect(error.description.contains("MQTT invalidQoS in PUBLISH at byte 0"))
            #expect(error.description.contains("[MQTT-3.3.1-4]"))
        }
    }
}

@Suite("Topic matching")
struct TopicMatchingTests {
    @Test(arguments: [
        ("sport/tennis/player1/#", "sport/tennis/player1", true),  // §4.7.1.2: # matches the parent level
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", true),
        ("sport/#", "sport", true),
        ("#", "a/b/c", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("#", "$SYS/uptime", false),  // [MQTT-4.7.2-1]
        ("+/uptime", "$SYS/uptime", false),
        ("$SYS/#", "$SYS/uptime", true),
        ("a/b", "a/b", true),
        ("a/b", "a/c", false),
    ])
    func matching(filter: String, topic: String, expected: Bool) {
        #expect(TopicMatching.matches(filter: filter, topic: topic) == expected)
    }

    /// The spec's rules written the plain way (split into levels), as the reference.
    static func reference(filter: String, topic: String) -> Bool {
        let filterLevels = filter.split(separator: "/", omittingEmptySubsequences: false)
        let topicLevels = topic.split(separator: "/", omittingEmptySubsequences: false)
        if topic.hasPrefix("$") && (filter.hasPrefix("+") || filter.hasPrefix("#")) { return false }
        var index = 0
        while index < filterLevels.count {
            let level = filterLevels[index]
            if level == "#" { return true }
            guard index < topicLevels.count else { return false }
            if level != "+" && level != topicLevels[index] { return false }
            index += 1
        }
        return index == topicLevels.count
    }

    @Test func agreesWithTheReferenceOnRandomFiltersAndTopics() {
        var generator = SystemRandomNumberGenerator()
        let levels = ["a", "b", "", "ab", "é", "$SYS", "+", "#"]
        func random(_ wildcards: Bool) -> String {
            let count = Int.random(in: 1...4, using: &generator)
            return (0..<count).map { _ in
                let pool = wildcards ? levels : levels.filter { $0 != "+" && $0 != "#" }
                return pool.randomElement(using: &generator) ?? "a"
            }.joined(separator: "/")
        }
        for _ in 0..<20_000 {
            let filter = random(true)
            let topic = random(false)
            #expect(TopicMatching.matches(filter: filter, topic: topic) == Self.reference(filter: filter, topic: topic),
                    "\(filter) vs \(topic)")
        }
    }
}

@Suite("Reason codes each packet may carry")
struct AllowedReasonCodeTests {
    /// Decodes `prefix` followed by `code` (and a zero property length in MQTT 5) and tells
    /// whether the decoder took the code.
    static func accepts(_ prefix: [UInt8], code: UInt8, version: ProtocolVersion) -> Bool {
        var decoder = MQTTDecoder(configuration: .init(version: version, followsConnect: false))
        var bytes = prefix + [code]
        if version == .v5 { bytes.append(0) }
        bytes[1] = UInt8(bytes.count - 2)
        decoder.append(contentsOf: bytes)
        do {
            return try decoder.next() != nil
        } catch {
            #expect(error.code == .invalidReasonCode, "\(error)")
            return false
        }
    }

    /// Every byte value, against the lists of the specifications.
    @Test(arguments: [
        // PUBACK and PUBREC (MQTT 5.0 §3.4.2.1, §3.5.2.1)
        ([0x40, 0, 0x00, 0x01], ProtocolVersion.v5, [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]),
        ([0x50, 0, 0x00, 0x01], .v5, [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]),
        // PUBREL (§3.6.2.1)
        ([0x62, 0, 0x00, 0x01], .v5, [0x00, 0x92]),
        // CONNACK (§3.2.2.2; MQTT 3.1.1 §3.2.2.3 has return codes 0 to 5)
        ([0x20, 0, 0x00], .v5, [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90,
                                0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F]),
        ([0x20, 0, 0x00], .v3_1_1, [0, 1, 2, 3, 4, 5]),
        // SUBACK (MQTT 3.1.1 §3.9.3)
        ([0x90, 0, 0x00, 0x01], .v3_1_1, [0x00, 0x01, 0x02, 0x80]),
        // AUTH (§3.15.2.1)
        ([0xF0, 0], .v5, [0x00, 0x18, 0x19]),
    ] as [([UInt8], ProtocolVersion, [Int])])
    func everyCode(prefix: [UInt8], version: ProtocolVersion, allowed: [Int]) {
        let accepted = (0...255).filter { Self.accepts(prefix, code: UInt8($0), version: version) }
        #expect(accepted == allowed)
    }
}

@Suite("Error reasons")
struct ErrorReasonTests {
    static func firstError(_ hex: String, version: ProtocolVersion = .v3_1_1) -> MQTTWireError? {
        var decoder = MQTTDecoder(configuration: .init(version: version, followsConnect: false))
        decoder.append(contentsOf: hex.split(separator: " ").compactMap { UInt8($0, radix: 16) })
        do {
            _ = try decoder.next()
            return nil
        } catch {
            return error
        }
    }

    /// The reasons written from values (not from a capturing closure) say what they said.
    @Test(arguments: [
        ("60 02 00 01", ProtocolVersion.v3_1_1, "PUBREL flags are 0x0, must be 0x2"),
        ("F0 00", .v3_1_1, "reserved packet type 15 (MQTT 3.1.1)"),
        ("40 81 00", .v5, "the remaining length 1 is encoded in 2 bytes, more than it needs"),
        ("40 01 00", .v3_1_1, "packet identifier needs 2 byte(s), 1 left in the packet"),
        ("40 03 00 01 07", .v3_1_1, "1 byte(s) after the last field of PUBACK"),
    ] as [(String, ProtocolVersion, String)])
    func reason(hex: String, version: ProtocolVersion, expected: String) {
        #expect(Self.firstError(hex, version: version)?.reason == expected)
    }

    /// The fixed header's errors are made where they are thrown, from a small code the header
    /// keeps: every field of each, and decoding goes on after the skipped packet.
    @Test(arguments: [
        ("60 02 00 01", ProtocolVersion.v3_1_1, MQTTWireError.Code.invalidFixedHeaderFlags, 0, PacketType.pubrel,
         "MQTT-2.2.2-1, MQTT-2.2.2-2"),
        ("A0 05 00 01 00 01 61", .v5, .invalidFixedHeaderFlags, 0, .unsubscribe, "MQTT-2.1.3-1"),
        // Type 0 is no packet type: the error names none (it was once called a CONNECT).
        ("00 00", .v3_1_1, .invalidPacketType, 0, nil, "MQTT 3.1.1 §2.2.1"),
        ("F0 00", .v3_1_1, .invalidPacketType, 0, .auth, "MQTT 3.1.1 §2.2.1"),
        ("00 00", .v5, .invalidPacketType, 0, nil, "MQTT 5.0 §2.1.2"),
        ("40 82 00 00 01", .v5, .malformedRemainingLength, 2, .puback, "MQTT-1.5.5-1"),
    ] as [(String, ProtocolVersion, MQTTWireError.Code, Int, PacketType?, String)])
    func fixedHeaderErrorFields(hex: String, version: ProtocolVersion, code: MQTTWireError.Code, offset: Int,
                                type: PacketType?, spec: String) throws {
        var decoder = MQTTDecoder(configuration: .init(version: version, followsConnect: false))
        decoder.append(contentsOf: hex.split(separator: " ").compactMap { UInt8($0, radix: 16) } + [0xC0, 0x00])
        do {
            _ = try decoder.next()
            Issue.record("\(hex) decoded")
        } catch {
            #expect(error.code == code)
            #expect(error.offset == offset)
            #expect(error.packetType == type)
            #expect(error.isRecoverable)
            #expect(error.specReference == spec)
        }
        #expect(try decoder.next() == .pingreq)
    }

    @Test func packetTooLargeNamesBothSizes() {
        var decoder = MQTTDecoder(configuration: .init(maximumPacketSize: 10))
        decoder.append(contentsOf: [0x30, 0x0A])
        #expect(throws: MQTTWireError.self) { _ = try decoder.next() }
        do {
            _ = try decoder.next()
        } catch {
            Issue.record("the packet was skipped whole, yet: \(error)")
        }
        var again = MQTTDecoder(configuration: .init(maximumPacketSize: 10))
        again.append(contentsOf: [0x30, 0x0A])
        do {
            _ = try again.next()
        } catch {
            #expect(error.reason == "packet of 12 bytes exceeds the maximum of 10")
        }
    }
}

/// An MQTT 5.0 stream's errors cite MQTT 5.0, never a 3.1.1 section: every input of the
/// committed mqtt5 corpus (valid and broken packets), decoded as 5.0 whole and with each
/// byte from the tenth on flipped.
@Suite("MQTT 5.0 errors cite 5.0")
struct Version5CitationTests {
    static let corpus = TestEnvironment.root.appendingPathComponent("corpora/mqtt5")

    static func errors(_ bytes: [UInt8]) -> [MQTTWireError] {
        var decoder = MQTTDecoder(configuration: .init(version: .v5, followsConnect: false))
        decoder.append(contentsOf: bytes)
        var errors: [MQTTWireError] = []
        for _ in 0..<10_000 {
            do {
                guard try decoder.next() != nil else { break }
            } catch {
                errors.append(error)
                if !error.isRecoverable { break }
            }
        }
        return errors
    }

    @Test func noCitationOf311() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.corpus, includingPropertiesForKeys: nil)
            .filter { !$0.hasDirectoryPath }.sorted { $0.path < $1.path }
        #expect(files.count > 50)
        var checked = 0
        for file in files.prefix(200) {
            let bytes = Array(try Data(contentsOf: file))
            var inputs = [bytes]
            for index in stride(from: 10, to: min(bytes.count, 60), by: 7) {
                var flipped = bytes
                flipped[index] ^= 0xFF
                inputs.append(flipped)
            }
            for input in inputs {
                for error in Self.errors(input) {
                    checked += 1
                    #expect(error.specReference?.contains("3.1.1") != true, "\(file.lastPathComponent): \(error)")
                }
            }
        }
        #expect(checked > 100)
    }
}
