import Capture
import Dialects
import Foundation
import MQTTWire
import NIOCore
import NIOWebSocket
import Testing
import WebSocketWire
@testable import WorksClient

@Suite struct RecorderTests {
    let redactor = Redactor(key: Array("test".utf8))

    func frame(_ packet: MQTTPacket, masked: Bool) throws -> [UInt8] {
        var out = ByteBuffer()
        WebSocketFrameWriter.write(WebSocketFrame(fin: true, opcode: .binary, data: try MQTTEncoder().encode(packet)),
                                   maskKey: masked ? WebSocketMaskingKey([1, 2, 3, 4]) : nil, into: &out)
        return Array(out.readableBytesView)
    }

    /// Feeds `bytes` in pieces of `step` and returns what the stream lets through.
    func rewrite(_ bytes: [UInt8], step: Int, fromClient: Bool) -> [UInt8] {
        var stream = RedactingStream(redactor: redactor, fromClient: fromClient)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let piece = Array(bytes[index..<min(index + step, bytes.count)])
            out += stream.feed(ByteBuffer(bytes: piece))
            index += step
        }
        return out
    }

    @Test(arguments: [1, 7, 4096])
    func secretsNeverPassWhateverTheChunking(step: Int) throws {
        let head = "GET /wmqtt HTTP/1.1\r\nHost: x\r\nCookie: WORKS_SES=cookie-secret; NEO_SES=two\r\nAuthorization: Bearer bearer-secret\r\n\r\n"
        let connect = MQTTPacket.connect(ConnectPacket(protocolVersion: .v3_1_1, cleanStart: true, keepAlive: 50,
                                                       clientIdentifier: "c", username: "u", password: ByteBuffer(string: "password-secret")))
        let ping = MQTTPacket.pingreq
        let client = Array(head.utf8) + (try frame(connect, masked: true)) + (try frame(ping, masked: true))
        let out = rewrite(client, step: step, fromClient: true)
        let text = String(decoding: out, as: UTF8.self)
        for secret in ["cookie-secret", "bearer-secret", "password-secret"] {
            #expect(!text.contains(secret))
        }
        #expect(text.hasPrefix("GET /wmqtt HTTP/1.1\r\nHost: x\r\nCookie: WORKS_SES="))
        // What was written still parses: the head, a CONNECT whose password is the pseudonym, the PINGREQ.
        var decoder = try WebSocketStreamDecoder(direction: .clientToServer)
        var packets: [MQTTPacket] = []
        for case .message(let message) in decoder.feed(ByteBuffer(bytes: out)) {
            packets.append(try MQTTDecoder.decodePacket(message.data))
        }
        guard packets.count == 2, case .connect(let redacted) = packets[0] else { Issue.record("\(packets)"); return }
        #expect(redacted.password == redactor.redact(connect: ConnectPacket(protocolVersion: .v3_1_1, cleanStart: true, keepAlive: 50, clientIdentifier: "c", password: ByteBuffer(string: "password-secret"))).password)
        #expect(packets[1] == .pingreq)
    }

    @Test func tokensInServerPayloadsAreReplacedAndTheRestIsKept() throws {
        let publish = MQTTPacket.publish(PublishPacket(qos: .atLeastOnce, topicName: "n", packetIdentifier: 3,
                                                       payload: ByteBuffer(string: #"{"nType":1,"loc-args1":"hello","token":"token-secret"}"#)))
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
        let out = rewrite(Array(head.utf8) + (try frame(publish, masked: false)), step: 5, fromClient: false)
        let text = String(decoding: out, as: UTF8.self)
        #expect(!text.contains("token-secret"))
        #expect(text.contains("hello"))
    }

    /// The JSON chat protocols: a OneBot access_token in the request line, a Discord IDENTIFY token in a text frame.
    @Test(arguments: [1, 9, 4096])
    func chatProtocolSecretsNeverPassWhateverTheChunking(step: Int) throws {
        let head = "GET /ws/?v=1&access_token=query-secret HTTP/1.1\r\nHost: x\r\n\r\n"
        var identify = ByteBuffer()
        WebSocketFrameWriter.write(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: #"{"op":2,"d":{"token":"identify-secret","intents":513}}"#)),
                                   maskKey: WebSocketMaskingKey([9, 8, 7, 6]), into: &identify)
        let out = rewrite(Array(head.utf8) + Array(identify.readableBytesView), step: step, fromClient: true)
        let text = String(decoding: out, as: UTF8.self)
        #expect(!text.contains("query-secret") && text.hasPrefix("GET /ws/?v=1&access_token=‹token:"), "\(text)")
        var decoder = try WebSocketStreamDecoder(direction: .clientToServer)
        let messages = decoder.feed(ByteBuffer(bytes: out)).compactMap { event -> String? in
            if case .message(let message) = event { return message.text }
            return nil
        }
        #expect(messages.count == 1 && messages.first?.contains("identify-secret") == false && messages.first?.contains("\"intents\":513") == true,
                "\(messages)")
    }

    @Test func unparseableBytesAreWithheldNotPassed() {
        var stream = RedactingStream(redactor: redactor, fromClient: false)
        let out = stream.feed(ByteBuffer(bytes: Array("HTTP/1.1 101 OK\r\n\r\n".utf8) + [0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))
        #expect(String(decoding: out, as: UTF8.self) == "HTTP/1.1 101 OK\r\n\r\n")
        #expect(stream.withheld == 10)
    }

    @Test func logFileRotatesBySize() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-log-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("works_mqtt.log").path
        let file = try RotatingLogFile(path: path, maximumBytes: 1024, backups: 2)
        for index in 0..<100 { file.write("line \(index) " + String(repeating: "x", count: 40) + "\n") }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["works_mqtt.log", "works_mqtt.log.1", "works_mqtt.log.2"])
        for name in names {
            let size = (try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(name).path)[.size] as? Int) ?? 0
            #expect(size <= 1024)
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("line 99 "))
    }
}
