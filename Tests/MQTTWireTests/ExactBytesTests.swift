import MQTTWire
import NIOCore
import Testing

@Suite("Exact bytes")
struct ExactBytesTests {
    static let clientID = "web-beejs_0123456789ab"

    /// docs/protocols.md §1: the reference Works CONNECT.
    @Test func worksReferenceConnect() throws {
        let expected = hexBytes("10 29 00 04 4D 51 54 54 04 82 00 32 00 16") + Array(Self.clientID.utf8)
            + hexBytes("00 05 64 75 6D 6D 79")
        let connect = ConnectPacket(
            protocolVersion: .v3_1_1, cleanStart: true, keepAlive: 50, clientIdentifier: Self.clientID,
            username: "dummy")
        #expect(connect.connectFlags == 0x82)
        #expect(try encode(.connect(connect)) == expected)
        #expect(try MQTTDecoder.decodePacket(buffer(expected)) == .connect(connect))
    }

    /// docs/protocols.md §1: another CONNECT the service accepts, id = password and flags 0xC6
    /// (user name, password, will flag, clean session), so a will follows the client id.
    @Test func connectFlagsC6CarryAWill() throws {
        let id = "0123456789abcdef012345"
        let connect = ConnectPacket(
            cleanStart: true, keepAlive: 50, clientIdentifier: id,
            will: .init(topic: "w", payload: ByteBuffer(string: "bye")), username: id,
            password: ByteBuffer(string: id))
        #expect(connect.connectFlags == 0xC6)
        let bytes = try encode(.connect(connect))
        #expect(bytes[9] == 0xC6)
        #expect(try MQTTDecoder.decodePacket(buffer(bytes)) == .connect(connect))
    }

    @Test func emptyClientIDConnect() throws {
        let connect = ConnectPacket(cleanStart: true, keepAlive: 60, clientIdentifier: "")
        #expect(try encode(.connect(connect)) == hexBytes("10 0C 00 04 4D 51 54 54 04 02 00 3C 00 00"))
    }

    @Test(arguments: [
        (MQTTPacket.pingreq, "C0 00"),
        (.pingresp, "D0 00"),
        (.disconnect(DisconnectPacket()), "E0 00"),
        (.connack(ConnAckPacket()), "20 02 00 00"),
        (.connack(ConnAckPacket(sessionPresent: true, reasonCode: ReasonCode(5))), "20 02 01 05"),
        (.puback(PublishResponsePacket(packetIdentifier: 1)), "40 02 00 01"),
        (.pubrec(PublishResponsePacket(packetIdentifier: 0x1234)), "50 02 12 34"),
        (.pubrel(PublishResponsePacket(packetIdentifier: 0x1234)), "62 02 12 34"),
        (.pubcomp(PublishResponsePacket(packetIdentifier: 0xFFFF)), "70 02 FF FF"),
        (.subscribe(SubscribePacket(packetIdentifier: 10, subscriptions: [.init(topicFilter: "a/#", qos: .atLeastOnce)])),
         "82 08 00 0A 00 03 61 2F 23 01"),
        (.suback(SubAckPacket(packetIdentifier: 10, reasonCodes: [.grantedQoS1, .unspecifiedError])), "90 04 00 0A 01 80"),
        (.unsubscribe(UnsubscribePacket(packetIdentifier: 11, topicFilters: ["a/+"])), "A2 07 00 0B 00 03 61 2F 2B"),
        (.unsuback(UnsubAckPacket(packetIdentifier: 11)), "B0 02 00 0B"),
        (.publish(PublishPacket(qos: .atLeastOnce, retain: true, topicName: "a/b", packetIdentifier: 7,
                                payload: ByteBuffer(string: "hi"))), "33 09 00 03 61 2F 62 00 07 68 69"),
        (.publish(PublishPacket(dup: true, qos: .exactlyOnce, topicName: "t", packetIdentifier: 2,
                                payload: ByteBuffer())), "3C 05 00 01 74 00 02"),
    ])
    func mqtt311(packet: MQTTPacket, hex: String) throws {
        #expect(try encode(packet) == hexBytes(hex))
        #expect(try MQTTDecoder.decodePacket(buffer(hexBytes(hex))) == packet)
    }

    @Test(arguments: [
        // Short forms: success and no properties leave out the reason code (MQTT 5.0 §3.4.2.1).
        (MQTTPacket.puback(PublishResponsePacket(packetIdentifier: 1)), "40 02 00 01"),
        (.puback(PublishResponsePacket(packetIdentifier: 1, reasonCode: .noMatchingSubscribers)), "40 03 00 01 10"),
        (.pubrel(PublishResponsePacket(packetIdentifier: 1, reasonCode: .packetIdentifierNotFound,
                                       properties: [.reasonString("x")])), "62 08 00 01 92 04 1F 00 01 78"),
        (.disconnect(DisconnectPacket()), "E0 00"),
        (.disconnect(DisconnectPacket(reasonCode: .sessionTakenOver)), "E0 01 8E"),
        (.auth(AuthPacket(reasonCode: .continueAuthentication, properties: [.authenticationMethod("M")])),
         "F0 06 18 04 15 00 01 4D"),
        (.connack(ConnAckPacket(properties: [.topicAliasMaximum(10), .maximumQoS(1)])),
         "20 08 00 00 05 22 00 0A 24 01"),
        (.connect(ConnectPacket(protocolVersion: .v5, keepAlive: 30, clientIdentifier: "c",
                                properties: [.sessionExpiryInterval(60)])),
         "10 13 00 04 4D 51 54 54 05 02 00 1E 05 11 00 00 00 3C 00 01 63"),
        (.publish(PublishPacket(topicName: "", properties: [.topicAlias(3)], payload: ByteBuffer(string: "p"))),
         "30 07 00 00 03 23 00 03 70"),
        (.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [
            .init(topicFilter: "x", qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend)],
                                    properties: [.subscriptionIdentifier(300)])),
         "82 0A 00 01 03 0B AC 02 00 01 78 2E"),
        (.unsuback(UnsubAckPacket(packetIdentifier: 2, reasonCodes: [.success, .noSubscriptionExisted])),
         "B0 05 00 02 00 00 11"),
    ])
    func mqtt5(packet: MQTTPacket, hex: String) throws {
        #expect(try encode(packet, .v5) == hexBytes(hex))
        #expect(try MQTTDecoder.decodePacket(buffer(hexBytes(hex)), version: .v5) == packet)
    }

    @Test(arguments: [
        (0, "00"), (127, "7F"), (128, "80 01"), (16_383, "FF 7F"), (16_384, "80 80 01"),
        (2_097_151, "FF FF 7F"), (2_097_152, "80 80 80 01"), (268_435_455, "FF FF FF 7F"),
    ])
    func variableByteIntegerBoundaries(value: UInt32, hex: String) {
        var out = ByteBuffer()
        out.writeVariableByteInteger(value)
        #expect(Array(out.readableBytesView) == hexBytes(hex))
    }

    /// A PUBLISH whose remaining length needs every length form decodes the same in one
    /// piece and byte by byte.
    @Test(arguments: [0, 120, 16_000, 2_100_000])
    func publishAcrossLengthForms(payloadSize: Int) throws {
        let packet = MQTTPacket.publish(PublishPacket(
            topicName: "big", payload: ByteBuffer(repeating: 0x5A, count: payloadSize)))
        let bytes = try encode(packet)
        #expect(try decodeAll(bytes) == [packet])
        if payloadSize < 20_000 { #expect(try decodeAll(bytes, chunks: [1]) == [packet]) }
    }

    /// Payloads are slices of the decoder's input: same storage, no copy.
    @Test func payloadIsZeroCopy() throws {
        let bytes = try encode(.publish(PublishPacket(topicName: "t", payload: ByteBuffer(string: "payload!"))))
        let input = buffer(bytes)
        var decoder = MQTTDecoder()
        decoder.append(input)
        guard case .publish(let publish)? = try decoder.next() else {
            Issue.record("no PUBLISH")
            return
        }
        let inputAddress = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let payloadAddress = publish.payload.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(payloadAddress == inputAddress + UInt(bytes.count - 8))
    }
}
