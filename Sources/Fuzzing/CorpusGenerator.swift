import Capture
import CompressNIO
import Dialects
import MQTTWire
import NIOCore
import NIOWebSocket
import WebSocketWire

/// Structure-aware seeds for every target: valid inputs that reach every branch of a
/// parser, and the boundary and damaged cases a random mutator rarely builds. The same
/// seeds on every run (fixed random seeds), so regenerating a corpus changes nothing.
public enum CorpusGenerator {
    /// The seeds of a target, by name; empty for an unknown name.
    public static func seeds(for target: String) -> [[UInt8]] {
        switch target {
        case "mqtt311": MQTTSeeds.stream(version: .v3_1_1)
        case "mqtt5": MQTTSeeds.stream(version: .v5)
        case "mqtt-chunked": MQTTSeeds.chunked()
        case "websocket": WebSocketSeeds.frames()
        case "http-upgrade": WebSocketSeeds.heads()
        case "deflate": WebSocketSeeds.deflate()
        case "capture": CaptureSeeds.captures()
        case "works": WorksSeeds.payloads().map { Array($0.utf8) }
        case "har": CaptureSeeds.hars()
        case "mock-config": MockFilesHarness.configSeeds.map { Array($0.utf8) }
        case "scenario": MockFilesHarness.scenarioSeeds.map { Array($0.utf8) }
        case "broker": BrokerHarness.seeds()
        case "dialects": DialectsHarness.seeds.map { Array($0.utf8) }
        default: []
        }
    }

    /// libFuzzer dictionary lines (`name="value"` with libFuzzer's escapes) for a target.
    public static func dictionary(for target: String) -> [String] {
        let tokens: [(String, [UInt8])]
        switch target {
        case "mqtt311", "mqtt5", "mqtt-chunked", "broker": tokens = Dictionaries.mqtt
        case "websocket": tokens = Dictionaries.webSocket + Dictionaries.http
        case "http-upgrade": tokens = Dictionaries.http
        case "deflate": tokens = Dictionaries.deflate
        case "capture": tokens = Dictionaries.capture + Dictionaries.http + Dictionaries.webSocket + Dictionaries.mqtt
        case "works", "har": tokens = Dictionaries.json + (target == "har" ? Dictionaries.har : [])
        case "mock-config": tokens = Dictionaries.toml
        case "scenario": tokens = Dictionaries.json + Dictionaries.scenario
        case "dialects": tokens = Dictionaries.json + Dictionaries.dialects
        default: tokens = []
        }
        return tokens.map { name, bytes in "\(name)=\"\(escaped(bytes))\"" }
    }

    /// libFuzzer's dictionary escapes: printable ASCII as is, `\\`, `\"` and `\xNN`.
    static func escaped(_ bytes: [UInt8]) -> String {
        var out = ""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"): out += "\\\\"
            case UInt8(ascii: "\""): out += "\\\""
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16).uppercased()
            }
        }
        return out
    }
}

// MARK: - MQTT

enum MQTTSeeds {
    static func encode(_ packet: MQTTPacket, _ version: ProtocolVersion) -> [UInt8] {
        guard let buffer = try? MQTTEncoder(version: version).encode(packet) else { return [] }
        return Array(buffer.readableBytesView)
    }

    /// The reference Works CONNECT (docs/protocols.md §1).
    static let worksConnect: [UInt8] = [0x10, 0x29, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x04, 0x82, 0x00, 0x32, 0x00, 0x16]
        + Array("web-beejs_0123456789ab".utf8) + [0x00, 0x05] + Array("dummy".utf8)

    static func stream(version: ProtocolVersion) -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        var generator = PacketGenerator(seed: version == .v5 ? 5 : 4, version: version)
        // Every packet type, several times (each with a random subset of its properties).
        for type in PacketGenerator.types(for: version) {
            for _ in 0..<6 { seeds.append(encode(generator.packet(type), version)) }
        }
        // Short sessions: several packets back to back.
        for _ in 0..<12 {
            let types = PacketGenerator.types(for: version)
            seeds.append((0..<Int.random(in: 2...6, using: &generator.rng)).flatMap { _ in
                encode(generator.packet(types[Int.random(in: 0..<types.count, using: &generator.rng)]), version)
            })
        }
        if version != .v5 { seeds.append(worksConnect + [0x20, 0x02, 0x00, 0x00, 0xC0, 0x00, 0xD0, 0x00]) }
        seeds += boundaryLengths(version)
        seeds += badFlags(version)
        seeds += badStrings(version)
        return seeds
    }

    /// PUBLISH packets whose remaining length sits on each side of the variable-length
    /// integer's steps (127/128, 16383/16384), and fixed headers alone announcing the
    /// larger steps (2097151/2097152, the maximum 268435455) and one past the maximum.
    static func boundaryLengths(_ version: ProtocolVersion) -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        let overhead = 2 + 1 + (version == .v5 ? 1 : 0)  // topic length + "t" + empty properties
        for remaining in [127, 128, 16_383, 16_384] {
            let payload = ByteBuffer(repeating: 0x61, count: remaining - overhead)
            seeds.append(encode(.publish(PublishPacket(topicName: "t", payload: payload)), version))
        }
        let headers: [[UInt8]] = [
            [0x30, 0xFF, 0xFF, 0x7F], [0x30, 0x80, 0x80, 0x80, 0x01],  // 2097151, 2097152
            [0x30, 0xFF, 0xFF, 0xFF, 0x7F],  // 268435455
            [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],  // a fifth continuation byte
            [0x30, 0x80, 0x00, 0x00, 0x00],  // a non-minimal zero
            [0x30, 0x80, 0x01] + [0x00, 0x01, 0x74] + [UInt8](repeating: 0x62, count: 125),  // 128 in two bytes
        ]
        seeds += headers.map { $0 + [0x00, 0x01, 0x74] }
        return seeds
    }

    /// Valid packets with their fixed-header flags or reserved bits made invalid.
    static func badFlags(_ version: ProtocolVersion) -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        var generator = PacketGenerator(seed: 77, version: version)
        for type in PacketGenerator.types(for: version) {
            let packet = encode(generator.packet(type), version)
            guard !packet.isEmpty else { continue }
            for flags: UInt8 in [0x0, 0x2, 0xF, 0x6] where flags != packet[0] & 0x0F {
                seeds.append([packet[0] & 0xF0 | flags] + packet.dropFirst())
            }
        }
        // CONNECT: reserved flag bit, password without user name (3.1.1), will QoS 3,
        // will flags without will, unknown protocol level, wrong protocol name.
        let connect = encode(.connect(ConnectPacket(protocolVersion: version, cleanStart: true, keepAlive: 30,
                                                    clientIdentifier: "c", will: nil, username: "u", password: nil,
                                                    properties: [])), version)
        let flagsIndex = 9
        if connect.count > flagsIndex {
            for flags: UInt8 in [0x83, 0x42, 0x9E, 0x38, 0x20, 0x01] {
                var bad = connect
                bad[flagsIndex] = flags
                seeds.append(bad)
            }
            var level = connect
            level[8] = 9
            seeds.append(level)
            var name = connect
            name[4] = 0x4E
            seeds.append(name)
        }
        // PUBLISH QoS 3, QoS 0 with DUP, packet identifier 0, topic with wildcards.
        seeds += [[0x36, 0x05, 0x00, 0x01, 0x74, 0x00, 0x01], [0x38, 0x03, 0x00, 0x01, 0x74],
                  [0x32, 0x05, 0x00, 0x01, 0x74, 0x00, 0x00], [0x30, 0x05, 0x00, 0x03, 0x61, 0x2F, 0x23]]
        // SUBSCRIBE with no subscriptions, options with reserved bits, a bad filter.
        seeds += [[0x82, 0x02, 0x00, 0x01], [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0xC3],
                  [0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 0x61, 0x23, 0x62, 0x00]]
        return seeds
    }

    /// Topics and client ids with overlong, surrogate, truncated and NUL encodings, and a
    /// long valid one.
    static func badStrings(_ version: ProtocolVersion) -> [[UInt8]] {
        let strings: [[UInt8]] = [
            [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE3, 0x81], [0x61, 0x00, 0x62], [0xF4, 0x90, 0x80, 0x80],
            [0xEF, 0xBF, 0xBF], [0xFF], [0xE2, 0x82, 0xAC, 0x80], Array(String(repeating: "通知/", count: 400).utf8),
        ]
        var seeds: [[UInt8]] = []
        for string in strings {
            let length = [UInt8(string.count >> 8), UInt8(string.count & 0xFF)]
            let topicPart = length + string + (version == .v5 ? [0x00] : []) + [0x7B, 0x7D]
            var publish: [UInt8] = [0x30]
            var remaining = topicPart.count
            repeat {
                var byte = UInt8(remaining & 0x7F)
                remaining >>= 7
                if remaining > 0 { byte |= 0x80 }
                publish.append(byte)
            } while remaining > 0
            seeds.append(publish + topicPart)
        }
        return seeds
    }

    /// Control bytes (flags: version, scan first; chunk seed) before MQTT streams.
    static func chunked() -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        let v311 = stream(version: .v3_1_1)
        for (index, stream) in (v311 + stream(version: .v5)).enumerated() where index % 3 == 0 {
            let version: UInt8 = index < v311.count ? 0 : 1
            seeds.append([version | UInt8(index % 2) << 2, UInt8(truncatingIfNeeded: index)] + stream)
        }
        // A v3.1 session, and a stream that starts in the middle of a packet.
        let v31 = encode(.connect(ConnectPacket(protocolVersion: .v3_1, cleanStart: true, keepAlive: 10,
                                                clientIdentifier: "legacy", will: nil, username: nil, password: nil,
                                                properties: [])), .v3_1)
        seeds.append([0x02, 0x07] + v31 + [0x20, 0x02, 0x00, 0x00])
        seeds.append([0x04, 0x01] + Array(worksConnect.dropFirst(7)) + worksConnect + [0xC0, 0x00])
        return seeds
    }
}

// MARK: - WebSocket, HTTP, deflate

enum WebSocketSeeds {
    static func frame(_ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false,
                      mask: WebSocketMaskingKey? = nil) -> [UInt8] {
        var buffer = ByteBuffer()
        WebSocketFrameWriter.write(WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, data: ByteBuffer(bytes: payload)),
                                   maskKey: mask, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    static let mask = WebSocketMaskingKey([0x37, 0xFA, 0x21, 0x3D])

    static let request = """
        GET /wmqtt HTTP/1.1\r
        Host: jp1-web-noti.worksmobile.com\r
        Upgrade: websocket\r
        Connection: Upgrade\r
        Origin: https://talk.worksmobile.com\r
        User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r
        Cookie: WORKS_USER_ID=fuzz; WORKS_SES=not-a-secret\r
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
        Sec-WebSocket-Version: 13\r
        Sec-WebSocket-Protocol: mqtt\r
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r
        \r

        """
    static let response = """
        HTTP/1.1 101 Switching Protocols\r
        Upgrade: websocket\r
        Connection: Upgrade\r
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r
        Sec-WebSocket-Protocol: mqtt\r
        \r

        """

    /// One direction's bytes: MQTT packets in binary frames, split and joined every way.
    static func streams(masked: Bool) -> [[UInt8]] {
        let key = masked ? mask : nil
        let connect = MQTTSeeds.worksConnect
        let publish = MQTTSeeds.encode(.publish(PublishPacket(qos: .atLeastOnce, topicName: "notification", packetIdentifier: 7,
                                                              payload: ByteBuffer(string: WorksSeeds.payloads()[0]))), .v3_1_1)
        let long = [UInt8](repeating: 0x42, count: 300)
        return [
            frame(.binary, connect, mask: key),
            frame(.binary, connect + [0xC0, 0x00] + [0xE0, 0x00], mask: key),
            frame(.binary, Array(publish.prefix(10)), mask: key) + frame(.binary, Array(publish.dropFirst(10)), mask: key),
            frame(.binary, Array(publish.prefix(20)), fin: false, mask: key) + frame(.ping, [1, 2], mask: key)
                + frame(.continuation, Array(publish.dropFirst(20)), mask: key),
            frame(.text, Array("text frame ✓".utf8), mask: key),
            frame(.text, [0x61, 0xE3, 0x81], fin: false, mask: key) + frame(.continuation, [0x82], mask: key),
            frame(.text, [0xC0, 0xAF], mask: key),
            frame(.binary, long, mask: key),  // 16-bit length
            frame(.binary, [UInt8](repeating: 0x43, count: 70_000).prefix(3_000).map { $0 }, mask: key),
            frame(.connectionClose, [0x03, 0xE8] + Array("bye".utf8), mask: key),
            frame(.connectionClose, [0x03, 0xED], mask: key), frame(.connectionClose, [0x03], mask: key), frame(.connectionClose, [], mask: key),
            frame(.pong, [], mask: key),
            frame(.ping, [UInt8](repeating: 0, count: 126), mask: key),  // control frame too long
            frame(.ping, [], fin: false, mask: key),  // fragmented control frame
            frame(.continuation, [1, 2, 3], mask: key),  // continuation without a start
            frame(WebSocketOpcode(encodedWebSocketOpcode: 0x3) ?? .binary, [1], mask: key),  // reserved opcode
            [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1],  // 64-bit length with the top bit set
            [0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5],  // non-minimal 64-bit length
            [0x82, 0x7E, 0, 5, 1, 2, 3, 4, 5],  // non-minimal 16-bit length
            [0xF2, 0x01, 0x00],  // all reserved bits
        ]
    }

    /// Messages compressed by zlib as a permessage-deflate sender does.
    static func compressed(_ text: String) -> [UInt8] {
        Array(deflated(ByteBuffer(string: text)).readableBytesView)
    }

    static func deflated(_ input: ByteBuffer) -> ByteBuffer {
        var input = input
        guard let compressor = try? ZlibCompressor(algorithm: .deflate) else { return ByteBuffer() }
        var compressed = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input) + 16)
        guard (try? compressor.deflate(from: &input, to: &compressed, flush: .sync)) != nil,
              compressed.readableBytes >= 4 else { return ByteBuffer() }
        compressed.moveWriterIndex(to: compressed.writerIndex - 4)
        return compressed
    }

    static func frames() -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        for (masked, direction) in [(true, UInt8(0)), (false, 1), (false, 0), (true, 1)] {
            for (index, stream) in streams(masked: masked).enumerated() {
                seeds.append([direction, UInt8(index)] + stream)
            }
        }
        // With the HTTP head first, and with permessage-deflate.
        let head = Array(request.utf8)
        seeds.append([0x02, 3] + head + frame(.binary, MQTTSeeds.worksConnect, mask: mask))
        seeds.append([0x03, 4] + Array(response.utf8) + frame(.binary, [0x20, 0x02, 0x00, 0x00]))
        seeds.append([0x03, 5] + Array("HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope!".utf8))
        let text = WorksSeeds.payloads()[0]
        for flags: UInt8 in [0x04, 0x0C, 0x05, 0x0D] {
            let key = flags & 1 == 0 ? mask : nil
            seeds.append([flags, 9] + frame(.text, compressed(text), rsv1: true, mask: key)
                          + frame(.text, compressed(text), rsv1: true, mask: key))
            seeds.append([flags, 10] + frame(.binary, Array(compressed(text).prefix(30)), fin: false, rsv1: true, mask: key)
                          + frame(.continuation, Array(compressed(text).dropFirst(30)), mask: key))
        }
        // Joined midstream: the scan for a frame boundary starts in the middle of a frame.
        seeds.append([0x10, 11] + Array(frame(.binary, MQTTSeeds.worksConnect, mask: mask).dropFirst(5))
                      + frame(.binary, [0xC0, 0x00], mask: mask) + frame(.binary, [0xC0, 0x00], mask: mask))
        seeds.append([0x11, 12, 0xAA, 0xBB] + frame(.binary, [0xD0, 0x00]) + frame(.binary, [0xD0, 0x00]))
        return seeds
    }

    /// Control bytes for http-upgrade: where the response starts (2 bytes), where the
    /// request is cut (2 bytes); then request and response heads.
    static func heads() -> [[UInt8]] {
        let requests: [String] = [
            request,
            "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:1883\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqttv3.1, mqtt\r\n\r\n",
            "\r\n\r\nGET / HTTP/1.0\r\n\r\n",
            "GET / HTTP/1.1\r\nX-Folded: a\r\n  b\r\n\r\n",
            "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
            "GET  HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\nHost: a\n\n",
            "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            "GET / HTTP/1.1\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8; client_no_context_takeover, x-webkit-deflate-frame\r\n\r\n",
            "GET /\u{FF}\u{00} HTTP/1.1\r\nHost: \u{E9}\r\n\r\n",
        ]
        let responses: [String] = [
            response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\nSec-WebSocket-Protocol: other\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=15\r\n\r\n",
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 403 Forbidden\r\n\r\n",
            "HTTP/1.1 101\r\n\r\n",
            "HTTP/1.1 99999 Odd\r\n\r\n",
            "ICY 200 OK\r\n\r\n",
        ]
        var seeds: [[UInt8]] = []
        for (index, requestText) in requests.enumerated() {
            let requestBytes = Array(requestText.utf8)
            let responseBytes = Array(responses[index % responses.count].utf8)
            let split = requestBytes.count
            for cut in [split / 2, split, 7] {
                seeds.append([UInt8(split >> 8), UInt8(split & 0xFF), UInt8(cut >> 8), UInt8(cut & 0xFF)]
                             + requestBytes + responseBytes)
            }
        }
        for (index, responseText) in responses.enumerated() {
            let requestBytes = Array(request.utf8)
            seeds.append([UInt8(requestBytes.count >> 8), UInt8(requestBytes.count & 0xFF), 0, UInt8(index * 9)]
                         + requestBytes + Array(responseText.utf8))
        }
        return seeds
    }

    /// Control byte (no context takeover), then length-prefixed compressed messages.
    static func deflate() -> [[UInt8]] {
        let texts = WorksSeeds.payloads().prefix(6) + ["", "a", String(repeating: "通知", count: 60), "Hello"]
        var seeds: [[UInt8]] = []
        for noTakeover: UInt8 in [0, 1] {
            // Messages compressed one after the other with one zlib stream (context
            // takeover), or each on its own.
            var sequence: [UInt8] = [noTakeover]
            let shared = try? ZlibCompressor(algorithm: .deflate)
            for text in texts {
                var message: [UInt8]
                if noTakeover == 0, let shared {
                    var input = ByteBuffer(string: text)
                    var out = ByteBufferAllocator().buffer(capacity: shared.maxSize(from: input) + 16)
                    _ = try? shared.deflate(from: &input, to: &out, flush: .sync)
                    message = Array(out.readableBytesView.dropLast(4))
                } else {
                    message = compressed(text)
                }
                guard message.count < 256 else { continue }
                sequence += [UInt8(message.count)] + message
                seeds.append([noTakeover, UInt8(message.count)] + message)
            }
            seeds.append(sequence)
        }
        // Stored block, empty stored block, bad block type, truncated stream, garbage, a bomb.
        let bomb = compressed(String(repeating: "A", count: 200_000))
        seeds += [[1, 6, 0x01, 0x01, 0x00, 0xFE, 0xFF, 0x41], [1, 5, 0x00, 0x00, 0x00, 0xFF, 0xFF], [1, 2, 0x07, 0x00],
                  [1, 3, 0xF2, 0x48, 0xCD], [1, 4, 0xFF, 0xFF, 0xFF, 0xFF], [1, UInt8(min(255, bomb.count))] + bomb.prefix(255)]
        return seeds
    }
}

// MARK: - Works payloads

enum WorksSeeds {
    static func payloads() -> [String] {
        var payloads: [String] = []
        let types = NotificationType.names.keys.sorted() + [0, 999]
        for (index, type) in types.enumerated() {
            let channelType = ChannelType.names.keys.sorted()[index % ChannelType.names.count]
            let locKey = LocKey.names.keys.sorted()[index % LocKey.names.count]
            var extras = ""
            if type == 18 || type == 15 {
                let sticker = StickerType.names.keys.sorted()[index % StickerType.names.count]
                extras = #","extras":"{\"stkType\":\"\#(sticker)\",\"pkgId\":\"11537\",\"stkId\":\"52002734\",\"stkOpt\":\"A\"}""#
            }
            payloads.append("""
                {"nType":\(type),"chNo":\(300_000_000 + index),"chType":\(channelType),"chTitle":"開発チーム","loc-key":"\(locKey)",\
                "loc-args0":"田中 太郎","loc-args1":"明日のリリースの件 #\(index)","fromUserNo":110001,"createTime":1763776800123,\
                "notification-id":"msg.300012345.\(index)","messageNo":\(index),"badge":\(index % 4),"token":"fuzz-token"\(extras)}
                """)
        }
        for command in ControlCommand.names.keys.sorted() {
            payloads.append(#"{"command":\#(command),"chNo":555,"readerId":110002,"msgSn":77}"#)
        }
        for status in [0, 1, 3, 138, 139, 140, 511, 4096] {
            payloads.append(#"{"command":101,"userNo":110001,"status":\#(status),"msgStatusType":"\#(status)"}"#)
        }
        payloads += [
            #"{"msgTypeCode":1,"chNo":42,"msg":"hi all","writerInfo":{"name":"Bob"},"ctime":0,"mbrCnt":5,"msgTid":"t-1"}"#,
            #"{"nType":18,"chNo":1,"loc-args0":"A","extras":"{not json"}"#,
            #"{"nType":"1","chNo":"12","createTime":-1,"badge":1e400}"#,
            #"{"nType":1,"nType":2,"chNo":18446744073709551616}"#,
            #"{"a":"\ud800","b":"\u0000\n\t\"\\\/","c":[true,false,null,-0.5e-3]}"#,
            String(repeating: "[", count: 130) + String(repeating: "]", count: 130),
            #"{"nType":1,"loc-args1":"\#(String(repeating: "長文", count: 500))"}"#,
            "{\"nType\":1,\"chTitle\":\"\u{7F}\u{1F600}\"}", "{\"nType\":", "[]", "null", "\"text\"", "",
        ]
        return payloads
    }
}

// MARK: - Dictionaries

enum Dictionaries {
    static let toml: [(String, [UInt8])] = [
        "[ws.1]", "[[", "]]", "listen = ", "\"127.0.0.1:8885\"", "next_connection_delay_ms", "connection_timeout_ms",
        "max_client_id_len", "max_payload_size", "max_inflight_count", "dynamic_filters", "[ws.1.connections]", "[v4.1]",
        "[v5.1]", "[wmq]", "mode", "cookies", "redelivery_s", "admin", "admin_token", "mqtt5_on_websocket", "true", "false",
        "\"\"\"", "'''", "0x", "0o", "0b", "inf", "nan", "1e10", "\\u00e9", "{", "}", "=", ".", "#",
    ].enumerated().map { ("toml_\($0.offset)", Array($0.element.utf8)) }

    static let dialects: [(String, [UInt8])] = [
        "post_type", "self_id", "message_type", "meta_event_type", "group_id", "user_id", "action", "params", "echo", "retcode",
        "session_id", "is_incremental", "final_text", "heartbeat_interval", "[CQ:", "&#91;", "&#93;", "&#44;", "&amp;",
        "\u{01}", "。", "？", "．",
    ].enumerated().map { ("dialects_\($0.offset)", Array($0.element.utf8)) }

    static let scenario: [(String, [UInt8])] = [
        "notify", "read", "publish", "wait", "expect", "delay_acks", "raw", "drop", "close", "timeout", "channel", "sender",
        "sticker", "topic", "payload", "qos", "contains", "type", "PUBACK", "upTo", "reader",
    ].map { ("scenario_\($0.lowercased())", Array("\"\($0)\"".utf8)) }
    static let mqtt: [(String, [UInt8])] = [
        ("mqtt", Array("\u{0}\u{4}MQTT".utf8)), ("mqisdp", Array("\u{0}\u{6}MQIsdp".utf8)),
        ("level4", [0x04]), ("level5", [0x05]), ("connect_works", [0x10, 0x29]), ("connack", [0x20, 0x02]),
        ("puback", [0x40, 0x02]), ("pubrec", [0x50, 0x02]), ("pubrel", [0x62, 0x02]), ("pubcomp", [0x70, 0x02]),
        ("subscribe", [0x82]), ("unsubscribe", [0xA2]), ("pingreq", [0xC0, 0x00]), ("pingresp", [0xD0, 0x00]),
        ("disconnect", [0xE0, 0x00]), ("auth", [0xF0]), ("publish_qos1", [0x32]), ("publish_qos2", [0x34]),
        ("len_128", [0x80, 0x01]), ("len_16384", [0x80, 0x80, 0x01]), ("len_max", [0xFF, 0xFF, 0xFF, 0x7F]),
        ("topic_notification", Array("\u{0}\u{C}notification".utf8)), ("wildcard", Array("/#".utf8)), ("plus", Array("+/".utf8)),
    ] + (1...0x2A).map { ("property_\($0)", [UInt8($0)]) } + [("user_property", [0x26, 0x00, 0x01, 0x6B, 0x00, 0x01, 0x76])]

    static let webSocket: [(String, [UInt8])] = [
        ("binary_fin", [0x82]), ("text_fin", [0x81]), ("continuation", [0x00]), ("continuation_fin", [0x80]),
        ("close", [0x88]), ("ping", [0x89]), ("pong", [0x8A]), ("compressed_text", [0xC1]), ("len16", [0x7E]),
        ("len64", [0x7F]), ("masked", [0x80]), ("mask_key", [0x37, 0xFA, 0x21, 0x3D]), ("close_1000", [0x03, 0xE8]),
        ("close_1005", [0x03, 0xED]),
    ]

    static let http: [(String, [UInt8])] = [
        "GET ", " HTTP/1.1\r\n", "HTTP/1.1 101 Switching Protocols\r\n", "HTTP/1.1 401 Unauthorized\r\n",
        "Upgrade: websocket\r\n", "Connection: Upgrade\r\n", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", "Sec-WebSocket-Protocol: mqtt\r\n",
        "Sec-WebSocket-Extensions: permessage-deflate", "; client_max_window_bits", "; server_no_context_takeover",
        "Sec-WebSocket-Version: 13\r\n", "Cookie: WORKS_SES=", "Authorization: Bearer ", "\r\n\r\n", "/wmqtt",
    ].enumerated().map { ("http_\($0.offset)", Array($0.element.utf8)) }

    static let deflate: [(String, [UInt8])] = [
        ("sync_tail", [0x00, 0x00, 0xFF, 0xFF]), ("stored", [0x01]), ("fixed", [0x02]), ("dynamic", [0x04]),
        ("empty_stored", [0x00, 0x00, 0x00, 0xFF, 0xFF]),
    ]

    static let capture: [(String, [UInt8])] = [
        ("pcap_magic", [0xD4, 0xC3, 0xB2, 0xA1]), ("pcap_magic_ns", [0x4D, 0x3C, 0xB2, 0xA1]),
        ("pcap_magic_be", [0xA1, 0xB2, 0xC3, 0xD4]), ("pcapng_shb", [0x0A, 0x0D, 0x0D, 0x0A]),
        ("pcapng_bom", [0x4D, 0x3C, 0x2B, 0x1A]), ("pcapng_idb", [0x01, 0x00, 0x00, 0x00]),
        ("pcapng_epb", [0x06, 0x00, 0x00, 0x00]), ("ethertype_ipv4", [0x08, 0x00]), ("ethertype_ipv6", [0x86, 0xDD]),
        ("ethertype_vlan", [0x81, 0x00]), ("ipv4_header", [0x45, 0x00]), ("ipv6_header", [0x60, 0x00, 0x00, 0x00]),
        ("tcp_syn", [0x02]), ("tcp_fin_ack", [0x11]), ("tcp_rst", [0x04]), ("tcp_psh_ack", [0x18]),
        ("port_1883", [0x07, 0x5B]), ("port_443", [0x01, 0xBB]), ("tls_record", [0x16, 0x03, 0x01]),
    ]

    static let json: [(String, [UInt8])] = [
        "\"nType\":", "\"chNo\":", "\"chType\":", "\"chTitle\":", "\"loc-key\":\"REV_MSG\"", "\"loc-args0\":",
        "\"loc-args1\":", "\"fromUserNo\":", "\"createTime\":", "\"notification-id\":", "\"extras\":", "\"stkType\":",
        "\"command\":93004", "\"readerId\":", "\"msgSn\":", "\"token\":", "\"status\":", "\"msgTypeCode\":",
        "\"writerInfo\":", "\\u", "\\ud83d\\ude00", "true", "false", "null", "1e999", "-0",
    ].enumerated().map { ("json_\($0.offset)", Array($0.element.utf8)) }

    static let har: [(String, [UInt8])] = [
        "{\"log\":{\"entries\":[", "\"_webSocketMessages\":[", "\"type\":\"send\"", "\"type\":\"receive\"",
        "\"opcode\":2", "\"opcode\":1", "\"data\":\"", "\"time\":", "\"request\":{\"url\":\"wss://", "\"headers\":[",
    ].enumerated().map { ("har_\($0.offset)", Array($0.element.utf8)) }
}
