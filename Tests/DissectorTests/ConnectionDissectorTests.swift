import Capture
import Dialects
import Dissector
import Foundation
import MQTTWire
import NIOCore
import NIOWebSocket
import Testing
import WebSocketWire

@Suite("Connection dissector")
struct ConnectionDissectorTests {
    static func packets(_ records: [(StreamDirection, ByteBuffer)], chunk: Int) throws -> [String] {
        var dissector = try ConnectionDissector(redactor: Redactor(key: [1]))
        var out: [String] = []
        for (direction, record) in records {
            var bytes = record
            while bytes.readableBytes > 0 {
                let piece = bytes.readSlice(length: min(chunk, bytes.readableBytes)) ?? ByteBuffer()
                for event in dissector.feed(piece, direction: direction) {
                    switch event.kind {
                    case .mqtt(let packet, _, let annotation): out.append("\(packet) \(annotation?.summary ?? "")")
                    case .error(let layer, let description): out.append("\(layer) \(description)")
                    default: continue
                    }
                }
            }
        }
        return out
    }

    /// TCP may cut the stream anywhere: the result does not depend on where.
    @Test func resultDoesNotDependOnSegmentation() throws {
        let records = try SampleCapture.streams()
        let whole = try Self.packets(records, chunk: .max)
        #expect(whole.count == 11)
        #expect(try Self.packets(records, chunk: 1) == whole)
        #expect(try Self.packets(records, chunk: 7) == whole)
    }

    /// A copy of a dissector is a value: its decoders' state (here, half a packet in each
    /// direction) goes on separately from the original's, whichever is fed first.
    @Test func aCopyDecodesOnItsOwn() throws {
        let records = try SampleCapture.streams()
        let whole = try Self.packets(records, chunk: .max)
        var original = try ConnectionDissector(redactor: Redactor(key: [1]))
        var seen: [String] = []
        func feed(_ dissector: inout ConnectionDissector, _ bytes: ByteBuffer, _ direction: StreamDirection) -> [String] {
            dissector.feed(bytes, direction: direction).compactMap { event in
                if case .mqtt(let packet, _, let annotation) = event.kind { return "\(packet) \(annotation?.summary ?? "")" }
                return nil
            }
        }
        // Every record cut in two: the copy is made between the halves, its half fed first.
        for (direction, record) in records {
            let half = record.readableBytes / 2
            let first = record.getSlice(at: record.readerIndex, length: half) ?? ByteBuffer()
            let second = record.getSlice(at: record.readerIndex + half, length: record.readableBytes - half) ?? ByteBuffer()
            seen += feed(&original, first, direction)
            var copy = original
            let fromCopy = feed(&copy, second, direction)
            let fromOriginal = feed(&original, second, direction)
            #expect(fromCopy == fromOriginal)
            seen += fromOriginal
            // The copy went on past this record; the original was not moved by it.
            _ = feed(&copy, ByteBuffer(bytes: [0x82, 0x7E]), direction)
        }
        #expect(seen == whole)
    }

    static func serverStream(_ frames: [(WebSocketFrame, WebSocketMaskingKey?)]) -> ByteBuffer {
        var out = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Protocol: mqtt\r\n\r\n")
        for (frame, key) in frames { WebSocketFrameWriter.write(frame, maskKey: key, into: &out) }
        return out
    }

    @Test func framingAnomaliesAreWarnings() throws {
        var dissector = try ConnectionDissector(redactor: nil)
        let pingresp = ByteBuffer(bytes: [0xD0, 0x00])
        // A text frame must hold UTF-8: this PUBLISH does (U+0000 is valid UTF-8).
        let publish = ByteBuffer(bytes: [0x30, 0x04, 0x00, 0x01, 0x74, 0x78])
        let events = dissector.feed(Self.serverStream([
            (WebSocketFrame(fin: true, opcode: .text, data: publish), nil),
            (WebSocketFrame(fin: true, opcode: .binary, data: pingresp), [1, 2, 3, 4]),
        ]), direction: .serverToClient)
        let warnings = events.compactMap { event -> [String]? in
            if case .mqtt = event.kind { return event.warnings }
            return nil
        }
        #expect(warnings == [
            ["MQTT in a text frame (MQTT over WebSocket uses binary frames)"],
            ["WebSocket: masked server frame"],
        ])
    }

    /// Several packets in one message, one packet over two messages, and a broken
    /// packet between good ones.
    @Test func packetsAndMessagesDoNotHaveToAlign() throws {
        var dissector = try ConnectionDissector(redactor: nil)
        let encoder = MQTTEncoder()
        var packets = ByteBuffer()
        try encoder.encode(.pingresp, into: &packets)
        try encoder.encode(.puback(PublishResponsePacket(packetIdentifier: 9)), into: &packets)
        packets.writeBytes([0x40, 0x02, 0x00, 0x00])  // PUBACK id 0: [MQTT-2.3.1-1]
        try encoder.encode(.publish(PublishPacket(topicName: "t", payload: ByteBuffer(string: "{}"))), into: &packets)
        let first = packets.getSlice(at: 0, length: 12) ?? ByteBuffer()
        let second = packets.getSlice(at: 12, length: packets.readableBytes - 12) ?? ByteBuffer()
        let events = dissector.feed(Self.serverStream([
            (WebSocketFrame(fin: true, opcode: .binary, data: first), nil),
            (WebSocketFrame(fin: true, opcode: .binary, data: second), nil),
        ]), direction: .serverToClient)
        let lines: [String] = events.compactMap { event in
            switch event.kind {
            case .mqtt(let packet, _, _): return "\(packet)" + (event.warnings.isEmpty ? "" : " ⚠ \(event.warnings.joined())")
            case .error(let layer, let description): return "\(layer): \(description.prefix(50))"
            default: return nil
            }
        }
        #expect(lines == [
            "PINGRESP",
            "PUBACK id 9",
            "MQTT: MQTT invalidPacketIdentifier in PUBACK at byte 8: ",
            "PUBLISH QoS 0 \"t\" 2 bytes ⚠ MQTT packet split across WebSocket messages",
        ])
    }

    @Test func permessageDeflateNegotiatedInTheHandshake() throws {
        var dissector = try ConnectionDissector(redactor: nil)
        var wire = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Protocol: mqtt\r\n"
            + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n")
        // "Hello" is not MQTT, but a PINGRESP compressed by zlib is: C0 → D0 00.
        wire.writeBytes([0xC2, 0x04, 0xBA, 0xC0, 0x00, 0x00])
        let events = dissector.feed(wire, direction: .serverToClient)
        let decoded = events.contains { if case .mqtt(.pingresp, _, _) = $0.kind { return true } else { return false } }
        let errors = events.compactMap { if case .error(_, let description) = $0.kind { return description } else { return nil } }
        #expect(errors == [])
        #expect(decoded)
    }

    /// A WebSocket connection whose subprotocol is not MQTT's: its messages are
    /// reported as they are, not forced through the MQTT decoder.
    @Test func otherSubprotocolsAreNotDecodedAsMQTT() throws {
        var dissector = try ConnectionDissector(redactor: nil)
        var wire = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Protocol: wamp\r\n\r\n")
        WebSocketFrameWriter.write(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "{\"post_type\":\"meta_event\"}")),
                                   into: &wire)
        let kinds = dissector.feed(wire, direction: .serverToClient).map { event -> String in
            switch event.kind {
            case .webSocketMessage(let message, _): return "message \(message.text ?? "")"
            case .response: return "response"
            default: return "other"
            }
        }
        #expect(kinds == ["response", "message {\"post_type\":\"meta_event\"}"])
        #expect(dissector.carriesMQTT == false)
    }

    /// Plain MQTT over TCP, with bytes lost in the middle: the gap is left behind and
    /// decoding resumes at the next packet boundary.
    @Test func mqttOverTCPResynchronizesAfterLostBytes() throws {
        var dissector = try ConnectionDissector(transport: .mqtt, redactor: nil)
        let encoder = MQTTEncoder()
        var before = ByteBuffer()
        try encoder.encode(.publish(PublishPacket(qos: .atLeastOnce, topicName: "a", packetIdentifier: 1,
                                                  payload: ByteBuffer(string: "0123456789"))), into: &before)
        var after = ByteBuffer()
        try encoder.encode(.puback(PublishResponsePacket(packetIdentifier: 2)), into: &after)
        try encoder.encode(.pingresp, into: &after)
        // Only the tail of a PUBLISH arrives after the loss.
        var tail = ByteBuffer(bytes: Array(before.readableBytesView.suffix(6)))
        tail.writeImmutableBuffer(after)
        dissector.lost(11, direction: .serverToClient)
        let lines = dissector.feed(tail, direction: .serverToClient).map { event -> String in
            switch event.kind {
            case .resynchronized(let layer, let skipped): return "\(layer) resync \(skipped)"
            case .mqtt(let packet, _, _): return "\(packet)"
            default: return "other"
            }
        }
        #expect(lines == ["MQTT resync 6", "PUBACK id 2", "PINGRESP"])
    }

    /// WebSocket with a capture gap: frames are found again after it.
    @Test func webSocketResynchronizesAfterLostBytes() throws {
        var dissector = try ConnectionDissector(transport: .webSocket(expectsHandshake: false), redactor: nil)
        var frames = ByteBuffer()
        for identifier in 1...3 as ClosedRange<UInt16> {
            var packet = ByteBuffer()
            try MQTTEncoder().encode(.puback(PublishResponsePacket(packetIdentifier: identifier)), into: &packet)
            WebSocketFrameWriter.write(WebSocketFrame(fin: true, opcode: .binary, data: packet), into: &frames)
        }
        dissector.lost(nil, direction: .serverToClient)
        // Start inside the first frame (3 bytes in).
        let events = dissector.feed(frames.getSlice(at: 3, length: frames.readableBytes - 3) ?? ByteBuffer(), direction: .serverToClient)
        let lines = events.map { event -> String in
            switch event.kind {
            case .resynchronized(let layer, let skipped): return "\(layer) resync \(skipped)"
            case .mqtt(let packet, _, _): return "\(packet)"
            default: return "other"
            }
        }
        #expect(lines == ["WebSocket resync 3", "PUBACK id 2", "PUBACK id 3"])
    }
}

@Suite("Refused upgrades")
struct RefusedUpgradeTests {
    /// A 401 at the upgrade (Works' answer to a missing or stale cookie): the handshake
    /// problem is reported once, and the HTTP body that follows is not taken for frames.
    @Test func bodyAfterARefusalIsNotFrames() throws {
        var dissector = try ConnectionDissector(redactor: nil)
        let request = ByteBuffer(string: "GET /wmqtt HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
        let response = ByteBuffer(string: "HTTP/1.1 401 Unauthorized\r\nContent-Length: 27\r\n\r\n{\"error\":\"cookie expired\"}\n")
        var kinds = dissector.feed(request, direction: .clientToServer).map { "\($0.kind)".prefix(8) }
        let answer = dissector.feed(response, direction: .serverToClient)
        kinds += answer.map { "\($0.kind)".prefix(8) }
        kinds += dissector.feed(ByteBuffer(bytes: [0x82, 0x02, 0xC0, 0x00]), direction: .clientToServer).map { "\($0.kind)".prefix(8) }
        #expect(kinds == ["request(", "response"])
        guard case .response(_, let problems) = answer.first?.kind else {
            Issue.record("no response")
            return
        }
        #expect(problems.map(\.reason) == ["server refused the upgrade: 401 Unauthorized"])
    }
}

@Suite struct ChatTreeDissectionTests {
    @Test func aChatTopicPublishIsAnnotatedByTheChatDialectNotWorks() throws {
        var dissector = try ConnectionDissector(transport: .mqtt, redactor: nil)
        let encoder = MQTTEncoder()
        var bytes = try encoder.encode(.connect(ConnectPacket(clientIdentifier: "frontend")))
        var publish = try encoder.encode(.publish(PublishPacket(qos: .atMostOnce, topicName: "chat/receive",
                                                                payload: ByteBuffer(string: #"{"session_id":"s1","content":"Hi there"}"#))))
        bytes.writeBuffer(&publish)
        let annotations = dissector.feed(bytes, direction: .clientToServer).compactMap { event -> AnnotatedMessage? in
            if case .mqtt(_, _, let annotation) = event.kind { annotation } else { nil }
        }
        #expect(annotations.map(\.dialect) == ["chat"])
        #expect(annotations.first?.summary == "chat/receive · session s1: Hi there")
        // In JSON Lines the annotation sits under its dialect's name.
        let record = DecodeRecord.json(CaptureEvent(connection: Connection(id: 1, client: Endpoint(address: .v4(0), port: 1), server: Endpoint(address: .v4(0), port: 2),
                                                                           joinedMidstream: false, firstFrame: 1, firstTime: 0),
                                                    direction: .clientToServer, frame: 1, time: 0,
                                                    kind: .dissected(DissectorEvent(direction: .clientToServer,
                                                                                    kind: .mqtt(.pingreq, range: 0..<2, annotation: annotations.first), warnings: []))))
        #expect(record["chat"]?["summary"]?.stringValue == "chat/receive · session s1: Hi there")
    }
}
