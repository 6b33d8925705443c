@testable import Dissector
import MQTTWire
import NIOCore
import Testing
import WebSocketWire

/// Each detection rule of docs/decoding.md on bytes as other implementations send them.
/// The differential suite (`Tools/compare-tshark --suite`, run by `make test`) checks the
/// same rules on whole captures against their truth and tshark.
@Suite("Connection detection")
struct ConnectionDetectionTests {
    static func decide(client: [UInt8], server: [UInt8], fromStart: Bool = false, final: Bool = false,
                       hint: ConnectionDetection.Hint? = nil, rolesGuessed: Bool = true) -> ConnectionDetection.Decision {
        ConnectionDetection(client: .init(bytes: client, fromStart: fromStart), server: .init(bytes: server, fromStart: fromStart),
                            final: final, budgetReached: false, hint: hint, rolesGuessed: rolesGuessed && !fromStart).decide()
    }

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var digits = text.filter { !$0.isWhitespace }[...]
        while digits.count >= 2 {
            bytes.append(UInt8(digits.prefix(2), radix: 16) ?? 0)
            digits = digits.dropFirst(2)
        }
        return bytes
    }

    static func other(_ decision: ConnectionDetection.Decision) -> String? {
        if case .other(let reason) = decision.verdict { reason } else { nil }
    }

    static func reading(_ decision: ConnectionDetection.Decision) -> ConnectionDetection.Reading? {
        if case .units(let reading) = decision.verdict { reading } else { nil }
    }

    static let publishQoS1 = hex("32 14 00 0a 73 65 6e 73 6f 72 73 2f 74 31 00 08") + Array("21.5C".utf8) + [0x0A]

    // MARK: Other protocols are named, not decoded

    @Test(arguments: [
        (Array("SSH-2.0-OpenSSH_9.6\r\n".utf8), Array("SSH-2.0-OpenSSH_9.2p1\r\n".utf8), "SSH"),
        (Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8), [], "HTTP/2"),
        (hex("00 00 00 08 04 d2 16 2f"), [], "PostgreSQL"),
        ([], hex("4a 00 00 00 0a 38 2e 30 2e 33 36 00 0c 00 00 00 61 62 63 64 65 66 67 68 00 ff ff ff 02 00 ff df 15 00 00 00 00 00 00 00 00 00 00 69 6a 6b 6c 6d 6e 6f 70 71 72 73 74 00 6d 79 73 71 6c 00"), "MySQL"),
        (hex("00 00 00 24 fe 53 4d 42 40 00") + [UInt8](repeating: 0, count: 30), [], "SMB"),
        (hex("05 01 00"), hex("05 00"), "SOCKS5"),
        (hex("16 03 01 00 2f 01 00 00 2b 03 03") + [UInt8](repeating: 1, count: 42), [], "TLS"),
        (hex("00 01 00 00 00 06 01 03 00 00 00 02"), hex("00 01 00 00 00 07 01 03 04 00 64 00 65"), "Modbus/TCP"),
        (hex("00 1d 12 34 01 00 00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01"), [], "DNS over TCP"),
    ])
    func otherProtocolsAreNamed(client: [UInt8], server: [UInt8], name: String) {
        for fromStart in [true, false] {
            let reason = Self.other(Self.decide(client: client, server: server, fromStart: fromStart, final: true))
            #expect(reason?.contains(name) == true, "\(name), from start \(fromStart): \(String(describing: reason))")
        }
    }

    @Test func httpWithoutUpgradeIsHTTPAndWithUpgradeIsAHandshake() {
        let plain = Array("GET /video.mp4 HTTP/1.1\r\nHost: media.example\r\nRange: bytes=0-999\r\n\r\n".utf8)
        #expect(Self.other(Self.decide(client: plain, server: [], fromStart: true))?.contains("without a WebSocket upgrade") == true)
        let upgrade = Array("GET /wmqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".utf8)
        #expect(Self.decide(client: upgrade, server: [], fromStart: true).verdict == .handshake)
        // Half a head: wait for the rest.
        #expect(Self.decide(client: Array(upgrade.prefix(30)), server: [], fromStart: true).verdict == .undecided)
    }

    /// The capture missed the SYN and the ports guessed the roles wrong: the side that
    /// sends the request is the client.
    @Test func theRequestTellsTheClient() {
        let request = Array("GET /next HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let response = Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".utf8)
        let decision = Self.decide(client: response, server: request, final: true)
        #expect(decision.rolesSwapped)
        #expect(Self.other(decision)?.hasPrefix("HTTP") == true)
    }

    // MARK: Units seen midstream

    /// PINGREQ, PINGRESP, then a PUBLISH QoS 1: plain MQTT, not WebSocket frames.
    @Test func midstreamPlainMQTTIsMQTT() throws {
        let decision = Self.decide(client: Self.hex("c0 00") + Self.publishQoS1, server: Self.hex("d0 00 40 02 00 08"))
        let reading = try #require(Self.reading(decision))
        #expect(reading.kind == .mqtt(.v3_1_1))
        #expect(reading.clientStart == 0 && reading.serverStart == 0)
        #expect(reading.units == 4)
    }

    /// A lone PINGREQ / PINGRESP is not evidence while the connection goes on; once it
    /// ended with nothing else, or when the port is known to carry MQTT, it is.
    @Test func aLonePingExchange() {
        let client = Self.hex("c0 00")
        let server = Self.hex("d0 00")
        #expect(Self.decide(client: client, server: server).verdict == .undecided)
        #expect(Self.reading(Self.decide(client: client, server: server, final: true))?.kind == .mqtt(.v3_1_1))
        #expect(Self.reading(Self.decide(client: client, server: [], hint: .mqtt(nil)))?.kind == .mqtt(.v3_1_1))
        // Random bytes that happen to start so do not chain on.
        #expect(Self.reading(Self.decide(client: client + [0x7F, 0x12, 0x99], server: server, final: true)) == nil)
    }

    /// The packet types only one side sends: a client that sends SUBACK is not a client.
    @Test func roleImplausiblePacketsAreNotEvidence() {
        let suback = Self.hex("90 03 00 01 00")
        let decision = Self.decide(client: suback + suback + suback, server: [], final: true, rolesGuessed: false)
        #expect(Self.reading(decision) == nil)
    }

    /// A first PUBLISH far larger than the detection window: waited for, then decoded.
    @Test func aLargeFirstPacketIsWaitedFor() throws {
        let topic = Array("bulk/data".utf8)
        let payload = [UInt8](repeating: 0xAB, count: 35_767 - 2 - topic.count - 2)
        var packet: [UInt8] = [0x32, 0xB7, 0x97, 0x02, 0x00, UInt8(topic.count)] + topic + [0x00, 0x4D] + payload
        #expect(packet.count == 35_767 + 4)
        #expect(Self.decide(client: Array(packet.prefix(2048)), server: []).verdict == .undecided)
        packet += Self.hex("c0 00")
        let reading = try #require(Self.reading(Self.decide(client: packet, server: Self.hex("40 02 00 4d d0 00"))))
        #expect(reading.kind == .mqtt(.v3_1_1))
    }

    /// MQTT 5.0 midstream: a PUBLISH with properties and a PUBACK with a reason code say 5.0.
    @Test func version5IsInferredFromWhatParses() throws {
        let publish = Self.hex("32 0c 00 03 6d 2f 30 00 0a 02 01 01 68 69")
        let puback = Self.hex("40 03 00 0a 10")
        let reading = try #require(Self.reading(Self.decide(client: publish + publish, server: puback)))
        #expect(reading.kind == .mqtt(.v5))
    }

    static func frame(_ payload: [UInt8], opcode: UInt8, masked: Bool) -> [UInt8] {
        var bytes: [UInt8] = [0x80 | opcode, (masked ? 0x80 : 0) | UInt8(payload.count)]
        guard masked else { return bytes + payload }
        let key: [UInt8] = [0x11, 0x22, 0x33, 0x44]
        bytes += key
        bytes += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
        return bytes
    }

    /// A text WebSocket the capture joined after its handshake: frames, no MQTT.
    @Test func aTextWebSocketMidstreamCarriesNoMQTT() throws {
        let client = (0..<3).flatMap { Self.frame(Array("{\"action\":\"send_msg\",\"n\":\($0)}".utf8), opcode: 1, masked: true) }
        let server = (0..<3).flatMap { Self.frame(Array("{\"status\":\"ok\",\"echo\":\($0)}".utf8), opcode: 1, masked: false) }
        let reading = try #require(Self.reading(Self.decide(client: client, server: server)))
        #expect(reading.kind == .webSocket(carriesMQTT: false, version: nil))
    }

    /// Binary frames whose payloads are MQTT packets, joined inside a message: the frames
    /// chain after the message's tail, and carry MQTT.
    @Test func webSocketMQTTAfterAMessageTail() throws {
        let tail = Array(" spans two WebSocket messages".utf8)
        let server = tail + Self.frame(Self.hex("40 02 00 07"), opcode: 2, masked: false) + Self.frame(Self.hex("d0 00"), opcode: 2, masked: false)
            + Self.frame(Self.publishQoS1, opcode: 2, masked: false)
        let client = Self.frame(Self.hex("c0 00"), opcode: 2, masked: true)
        let reading = try #require(Self.reading(Self.decide(client: client, server: server)))
        #expect(reading.kind == .webSocket(carriesMQTT: true, version: nil))
        #expect(reading.serverStart == tail.count)
        #expect(reading.clientStart == 0)
    }

    /// Zeros at the end of another protocol's message read as empty WebSocket fragments;
    /// those are not evidence.
    @Test func zerosAreNotFrames() {
        let register = Self.hex("65 00 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00")
        #expect(Self.reading(Self.decide(client: register, server: register, final: true)) == nil)
    }

    /// A connection that starts with its SYN must open with a CONNECT or an upgrade.
    @Test func aCleanStartMustOpenWithACONNECTOrAnUpgrade() {
        let decision = Self.decide(client: Self.hex("c0 00") + Self.publishQoS1, server: Self.hex("d0 00 40 02 00 08"),
                                   fromStart: true, final: true)
        #expect(Self.reading(decision) == nil)
        #expect(Self.decide(client: Self.hex("10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00"), server: [], fromStart: true).verdict == .connect)
    }

    /// A 5.0 PUBLISH with no properties reads as 3.1.1 too, its payload then led by a NUL (the
    /// empty property block): a text payload that 5.0 reads whole is evidence for 5.0; a
    /// binary one is not.
    @Test func anEmptyPropertyBlockBeforeTextIsEvidenceFor5() {
        let text = Self.hex("30 0b 00 03 6d 2f 30 00 68 65 6c 6c 6f")      // "m/0", no properties, "hello"
        let withText = ConnectionDetection.mqttChain(text + text, from: 0, version: .v5, direction: .serverToClient)
        #expect(withText.v5Evidence == 2 && !withText.broken)
        let binary = Self.hex("30 0b 00 03 6d 2f 30 00 01 02 03 04 05")
        #expect(ConnectionDetection.mqttChain(binary, from: 0, version: .v5, direction: .serverToClient).v5Evidence == 0)
    }

    /// The rest of an upgrade's head the capture joined inside: no unit starts before its blank line.
    @Test(arguments: [
        ("ocol: mqtt\r\n\r\n", 14), ("\r\n\r\n", 4), ("\r\n", 2), ("x: y\r\nz: w\r\n\r\n", 14),
    ])
    func theRestOfAHeadIsPassedOver(tail: String, end: Int) {
        let bytes = Array(tail.utf8) + [0x82, 0x02, 0x20, 0x00]
        #expect(ConnectionDetection.headTail(bytes) == end)
    }

    @Test func bytesThatAreNoHeadTailStartWhereTheyStart() {
        #expect(ConnectionDetection.headTail([0x82, 0x02, 0x20, 0x00]) == nil)
        #expect(ConnectionDetection.headTail(Array("no blank line here\r\n".utf8) + [0x82, 0x00]) == nil)
        #expect(ConnectionDetection.headTail([0x41, 0x00, 0x0D, 0x0A, 0x0D, 0x0A]) == nil)
    }

    /// A cut response whose text could hold frame-like bytes: the frames are read after the
    /// head, not inside it.
    @Test func framesStartAfterTheRestOfACutHead() throws {
        let tail = Array("cket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n".utf8)
        let connack = Self.frame(Self.hex("20 02 00 00"), opcode: 2, masked: false)
        let suback = Self.frame(Self.hex("90 03 00 01 01"), opcode: 2, masked: false)
        let connect = Self.frame(Self.hex("10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00"), opcode: 2, masked: true)
        let subscribe = Self.frame(Self.hex("82 08 00 01 00 03 6d 2f 23 01"), opcode: 2, masked: true)
        let reading = try #require(Self.reading(Self.decide(client: connect + subscribe, server: tail + connack + suback, final: true)))
        #expect(reading.serverStart == tail.count)
    }

    /// The server's 101 response, its request before the capture began: frames follow.
    @Test func anUpgradeResponseStartsFramesAfterIt() throws {
        let head = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n".utf8)
        let reading = try #require(Self.reading(Self.decide(client: [], server: head + Self.frame(Self.hex("20 02 00 00"), opcode: 2, masked: false))))
        #expect(reading.kind == .webSocket(carriesMQTT: true, version: nil))
        #expect(reading.serverStart == head.count)
    }
}

@Suite("MQTT recovery in the dissector")
struct MQTTRecoveryTests {
    static func events(_ records: [(StreamDirection, [UInt8])], transport: ConnectionDissector.Transport = .mqtt,
                       version: ProtocolVersion? = nil) throws -> [DissectorEvent] {
        var dissector = try ConnectionDissector(transport: transport, redactor: nil, mqttVersion: version)
        return records.flatMap { dissector.feed(ByteBuffer(bytes: $0.1), direction: $0.0) }
    }

    static func lines(_ events: [DissectorEvent]) -> [String] {
        events.map { event in
            switch event.kind {
            case .mqtt(let packet, _, _): "\(packet)" + (event.topicFromAlias.map { " alias \($0)" } ?? "")
            case .error(_, let description): "error \(description)"
            default: "other"
            }
        }
    }

    /// A 5.0 CONNECT with one invalid property (a Will Payload Format Indicator of 144):
    /// an error that cites the Will's section, and every packet after it read as 5.0.
    @Test func oneBadPropertyDoesNotChangeTheVersion() throws {
        let connect = ConnectionDetectionTests.hex("10 1c 00 04 4d 51 54 54 05 06 00 3c 00 00 04 66 69 76 65 02 01 90 00 01 74 00 03 62 79 65")
        let connack = ConnectionDetectionTests.hex("20 06 00 00 03 22 00 0a")
        let publish = ConnectionDetectionTests.hex("32 0c 00 03 6d 2f 30 00 09 02 01 01 68 69")
        let lines = Self.lines(try Self.events([(.clientToServer, connect), (.serverToClient, connack), (.serverToClient, publish)]))
        try #require(lines.count == 3, "\(lines)")
        #expect(lines[0].hasPrefix("error") && lines[0].contains("§3.1.3.2.3"), "\(lines)")
        #expect(lines[1].hasPrefix("CONNACK"), "\(lines)")
        #expect(lines[2] == "PUBLISH QoS 1 id 9 \"m/0\" 2 bytes (+1 properties)", "\(lines)")
    }

    /// Without a CONNECT the version is a guess: a server's 5.0 CONNACK (with properties),
    /// wrong as 3.1.1, switches both directions to 5.0, and the PUBLISHes after it read as 5.0.
    @Test func aPacketOnly5ReadsSwitchesAGuessedVersion() throws {
        let hex = ConnectionDetectionTests.hex
        let connack = hex("20 06 00 00 03 22 00 0a")
        let publish = hex("30 0b 00 03 6d 2f 30 00 68 65 6c 6c 6f")
        let lines = Self.lines(try Self.events([(.serverToClient, connack), (.serverToClient, publish), (.clientToServer, publish)]))
        #expect(lines.count == 3 && lines.allSatisfy { !$0.hasPrefix("error") }, "\(lines)")
        #expect(lines.dropFirst().allSatisfy { $0 == "PUBLISH QoS 0 \"m/0\" 5 bytes" }, "\(lines)")
        // With the version a CONNECT named, the same CONNACK is an error.
        let connect = hex("10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00")
        let named = Self.lines(try Self.events([(.clientToServer, connect), (.serverToClient, connack)]))
        #expect(named.last?.hasPrefix("error") == true, "\(named)")
    }

    /// A version a CONNECT named is not a guess, even for the packets that came in the same
    /// bytes as the CONNECT: a SUBSCRIBE that 3.1.1 rejects (an empty filter) and 5.0 would read
    /// (a property block, then filter "a") is an error, not a 5.0 packet.
    @Test func aVersionTheCONNECTNamedIsNotSwitched() throws {
        let hex = ConnectionDetectionTests.hex
        let connect = hex("10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00")
        let subscribe = hex("82 07 00 01 00 00 01 61 04")
        let lines = Self.lines(try Self.events([(.clientToServer, connect + subscribe)]))
        #expect(lines.count == 2 && lines[0].hasPrefix("CONNECT") && lines[1].hasPrefix("error"), "\(lines)")
    }

    @Test func aReservedFirstByteIsReservedPacketType0() throws {
        let lines = Self.lines(try Self.events([(.clientToServer, [0x00, 0x00])], version: .v5))
        #expect(lines.first?.contains("reserved packet type 0") == true, "\(lines)")
        #expect(lines.first?.contains("in CONNECT") == false)
        #expect(lines.first?.contains("3.1.1") == false)
    }

    /// Topic aliases resolve per direction, are reset by a new CONNECT, and an unknown one warns.
    @Test func topicAliasesResolvePerDirection() throws {
        let hex = ConnectionDetectionTests.hex
        let set = hex("30 0b 00 03 61 2f 62 03 23 00 01 68 69")     // "a/b", alias 1
        let use = hex("30 08 00 00 03 23 00 01 68 69")               // "", alias 1
        let events = try Self.events([(.clientToServer, set), (.clientToServer, use), (.serverToClient, use)], version: .v5)
        let lines = Self.lines(events)
        try #require(lines.count == 3, "\(lines)")
        #expect(lines[0] == "PUBLISH QoS 0 \"a/b\" 2 bytes (+1 properties)")
        #expect(lines[1] == "PUBLISH QoS 0 \"a/b\" 2 bytes (+1 properties) alias 1")
        // The server never set alias 1 in its own direction.
        #expect(lines[2] == "PUBLISH QoS 0 \"\" 2 bytes (+1 properties)")
        #expect(events[2].warnings.contains { $0.contains("Topic Alias 1 was not set") })
        let connect = hex("10 0d 00 04 4d 51 54 54 05 02 00 3c 00 00 00")
        let afterReconnect = Self.lines(try Self.events([(.clientToServer, set), (.clientToServer, connect), (.clientToServer, use)], version: .v5))
        try #require(afterReconnect.count == 3, "\(afterReconnect)")
        #expect(afterReconnect[2] == "PUBLISH QoS 0 \"\" 2 bytes (+1 properties)")
    }
}
