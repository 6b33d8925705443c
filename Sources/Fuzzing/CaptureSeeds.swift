import Capture
import FoundationEssentials
import MQTTWire
import NIOCore
import NIOWebSocket

/// A pcap or pcapng file image built in memory, so seeds can be damaged at will.
struct CaptureImage {
    enum Format { case pcap, pcapng }

    private(set) var bytes: [UInt8] = []
    let format: Format

    init(format: Format = .pcap, linkType: LinkType, snapLength: UInt32 = 262_144) {
        self.format = format
        switch format {
        case .pcap:
            bytes = le(UInt32(0xA1B2_C3D4)) + le(UInt16(2)) + le(UInt16(4)) + le(UInt32(0)) + le(UInt32(0))
                + le(snapLength) + le(UInt32(bitPattern: linkType.rawValue))
        case .pcapng:
            bytes = le(UInt32(0x0A0D_0D0A)) + le(UInt32(28)) + le(UInt32(0x1A2B_3C4D)) + le(UInt16(1)) + le(UInt16(0))
                + le(UInt64.max) + le(UInt32(28))
            bytes += le(UInt32(1)) + le(UInt32(20)) + le(UInt16(truncatingIfNeeded: linkType.rawValue)) + le(UInt16(0))
                + le(snapLength) + le(UInt32(20))
        }
    }

    mutating func add(_ frame: [UInt8], time: Double) {
        let seconds = UInt32(time)
        let micros = UInt32((time - Double(seconds)) * 1e6)
        switch format {
        case .pcap:
            bytes += le(seconds) + le(micros) + le(UInt32(frame.count)) + le(UInt32(frame.count)) + frame
        case .pcapng:
            let padded = frame + [UInt8](repeating: 0, count: (4 - frame.count % 4) % 4)
            let length = UInt32(32 + padded.count)
            let stamp = UInt64(seconds) * 1_000_000 + UInt64(micros)
            bytes += le(UInt32(6)) + le(length) + le(UInt32(0)) + le(UInt32(stamp >> 32)) + le(UInt32(stamp & 0xFFFF_FFFF))
                + le(UInt32(frame.count)) + le(UInt32(frame.count)) + padded + le(length)
        }
    }

    private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}

/// A TCP conversation turned into frames: handshake, data segments cut as asked, close.
struct Conversation {
    enum Side { case client, server }

    var client = Endpoint(address: .v4(0x0A00_0001), port: 50_000)
    var server = Endpoint(address: .v4(0x0A00_0002), port: 8080)
    var link: SyntheticPacket.Link = .ethernet
    var segmentSize = 1400
    var opens = true
    var closesWithReset = false
    private(set) var frames: [[UInt8]] = []
    private var clientSequence: UInt32 = 1000
    private var serverSequence: UInt32 = 5000

    init(client: Endpoint? = nil, server: Endpoint? = nil, link: SyntheticPacket.Link = .ethernet,
         segmentSize: Int = 1400, opens: Bool = true) {
        if let client { self.client = client }
        if let server { self.server = server }
        self.link = link
        self.segmentSize = segmentSize
        self.opens = opens
        if opens {
            frames.append(segment(.client, flags: .syn, payload: []))
            clientSequence &+= 1
            frames.append(segment(.server, flags: [.syn, .ack], payload: []))
            serverSequence &+= 1
        }
    }

    func segment(_ side: Side, flags: TCPFlags, payload: [UInt8]) -> [UInt8] {
        side == .client
            ? SyntheticPacket.tcp(from: client, to: server, sequence: clientSequence, acknowledgement: serverSequence,
                                  flags: flags, payload: payload, link: link)
            : SyntheticPacket.tcp(from: server, to: client, sequence: serverSequence, acknowledgement: clientSequence,
                                  flags: flags, payload: payload, link: link)
    }

    mutating func send(_ side: Side, _ bytes: [UInt8]) {
        var rest = bytes[...]
        while !rest.isEmpty {
            let piece = Array(rest.prefix(segmentSize))
            rest = rest.dropFirst(piece.count)
            frames.append(segment(side, flags: [.psh, .ack], payload: piece))
            if side == .client { clientSequence &+= UInt32(piece.count) } else { serverSequence &+= UInt32(piece.count) }
        }
    }

    mutating func close() {
        frames.append(segment(.client, flags: closesWithReset ? [.rst] : [.fin, .ack], payload: []))
        if !closesWithReset { frames.append(segment(.server, flags: [.fin, .ack], payload: [])) }
    }

    func image(_ format: CaptureImage.Format = .pcap) -> [UInt8] {
        var image = CaptureImage(format: format, linkType: link.linkType)
        for (index, frame) in frames.enumerated() { image.add(frame, time: 1_763_776_800 + Double(index) * 0.001) }
        return image.bytes
    }
}

enum CaptureSeeds {
    /// The client's and the server's bytes of a short Works session over WebSocket.
    static func webSocketSession() -> (client: [[UInt8]], server: [[UInt8]]) {
        let mask = WebSocketSeeds.mask
        let publish = MQTTSeeds.encode(.publish(PublishPacket(
            qos: .atLeastOnce, topicName: "notification", packetIdentifier: 1,
            payload: ByteBuffer(string: WorksSeeds.payloads()[0]))), .v3_1_1)
        let sticker = MQTTSeeds.encode(.publish(PublishPacket(
            topicName: "notification", payload: ByteBuffer(string: WorksSeeds.payloads()[14]))), .v3_1_1)
        let client: [[UInt8]] = [
            Array(WebSocketSeeds.request.utf8),
            WebSocketSeeds.frame(.binary, MQTTSeeds.worksConnect, mask: mask),
            WebSocketSeeds.frame(.binary, [0x40, 0x02, 0x00, 0x01], mask: mask),
            WebSocketSeeds.frame(.binary, [0xC0, 0x00], mask: mask),
            WebSocketSeeds.frame(.connectionClose, [0x03, 0xE8], mask: mask),
        ]
        let server: [[UInt8]] = [
            Array(WebSocketSeeds.response.utf8),
            WebSocketSeeds.frame(.binary, [0x20, 0x02, 0x00, 0x00]),
            WebSocketSeeds.frame(.binary, Array(publish.prefix(40))) + WebSocketSeeds.frame(.binary, Array(publish.dropFirst(40))),
            WebSocketSeeds.frame(.binary, sticker + [0xD0, 0x00]),
            WebSocketSeeds.frame(.connectionClose, [0x03, 0xE8]),
        ]
        return (client, server)
    }

    static func conversation(link: SyntheticPacket.Link = .ethernet, ipv6: Bool = false, segmentSize: Int = 1400,
                             opens: Bool = true, client: [[UInt8]], server: [[UInt8]], port: UInt16 = 8080) -> Conversation {
        let addresses: (IPAddress, IPAddress) = ipv6 ? (.v6(high: 0xFD00_0000_0000_0000, low: 1), .v6(high: 0xFD00_0000_0000_0000, low: 2))
            : (.v4(0x0A00_0001), .v4(0x0A00_0002))
        var conversation = Conversation(client: Endpoint(address: addresses.0, port: 50_000),
                                        server: Endpoint(address: addresses.1, port: port),
                                        link: link, segmentSize: segmentSize, opens: opens)
        for index in 0..<max(client.count, server.count) {
            if index < client.count { conversation.send(.client, client[index]) }
            if index < server.count { conversation.send(.server, server[index]) }
        }
        conversation.close()
        return conversation
    }

    static func captures() -> [[UInt8]] {
        let session = webSocketSession()
        var seeds: [[UInt8]] = []
        let links: [SyntheticPacket.Link] = [.ethernet, .ethernetVLAN([100]), .ethernetVLAN([100, 200]), .linuxSLL,
                                             .linuxSLL2, .null, .raw]
        for link in links {
            seeds.append(conversation(link: link, client: session.client, server: session.server).image())
        }
        let whole = conversation(client: session.client, server: session.server)
        seeds.append(whole.image(.pcapng))
        seeds.append(conversation(ipv6: true, client: session.client, server: session.server).image())
        seeds.append(conversation(segmentSize: 7, client: session.client, server: session.server).image())
        // Joined midstream: no SYN and no HTTP head.
        seeds.append(conversation(opens: false, client: Array(session.client.dropFirst()),
                                  server: Array(session.server.dropFirst())).image())
        // Plain MQTT over TCP, recognised by its CONNECT.
        seeds.append(conversation(client: [MQTTSeeds.worksConnect, [0xC0, 0x00], [0xE0, 0x00]],
                                  server: [[0x20, 0x02, 0x00, 0x00], [0xD0, 0x00]], port: 1883).image())
        // A refused upgrade, and a TLS connection (not decoded, reported).
        seeds.append(conversation(client: [Array(WebSocketSeeds.request.utf8)],
                                  server: [Array("HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n\r\nno!".utf8)]).image())
        seeds.append(conversation(client: [[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]],
                                  server: [[0x16, 0x03, 0x03, 0x00, 0x02, 0x02, 0x00]], port: 443).image())
        // Out of order, retransmitted and overlapping segments; a reset; a port reused.
        var frames = conversation(segmentSize: 50, client: session.client, server: session.server).frames
        if frames.count > 8 {
            frames.swapAt(4, 6)
            frames.insert(frames[5], at: 7)
        }
        seeds.append(image(frames, link: .ethernet))
        var reset = conversation(client: session.client, server: session.server)
        reset.closesWithReset = true
        reset.close()
        seeds.append(image(reset.frames + conversation(client: session.client, server: session.server).frames, link: .ethernet))
        seeds.append(fragmented())
        seeds += damaged(whole.image())
        return seeds
    }

    static func image(_ frames: [[UInt8]], link: SyntheticPacket.Link) -> [UInt8] {
        var image = CaptureImage(linkType: link.linkType)
        for (index, frame) in frames.enumerated() { image.add(frame, time: 1_763_776_800 + Double(index) * 0.001) }
        return image.bytes
    }

    /// A WebSocket session whose upgrade request travels in two IPv4 fragments, second first.
    static func fragmented() -> [UInt8] {
        let client = Endpoint(address: .v4(0x0A00_0001), port: 50_001)
        let server = Endpoint(address: .v4(0x0A00_0002), port: 8080)
        let segment = SyntheticPacket.tcpSegment(from: client, to: server, sequence: 1, acknowledgement: 0,
                                                 flags: [.psh, .ack], payload: Array(WebSocketSeeds.request.utf8))
        let first = SyntheticPacket.ipv4(source: 0x0A00_0001, destination: 0x0A00_0002, payload: Array(segment.prefix(64)),
                                         identification: 9, fragmentOffset: 0, moreFragments: true)
        let second = SyntheticPacket.ipv4(source: 0x0A00_0001, destination: 0x0A00_0002, payload: Array(segment.dropFirst(64)),
                                          identification: 9, fragmentOffset: 64, moreFragments: false)
        return image([SyntheticPacket.frame(second, link: .ethernet, isIPv6: false),
                      SyntheticPacket.frame(first, link: .ethernet, isIPv6: false)], link: .ethernet)
    }

    /// Damaged file headers and records.
    static func damaged(_ good: [UInt8]) -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        func patched(_ index: Int, _ bytes: [UInt8]) -> [UInt8] {
            var copy = good
            for (offset, byte) in bytes.enumerated() where index + offset < copy.count { copy[index + offset] = byte }
            return copy
        }
        seeds.append(patched(0, [0x00, 0x11, 0x22, 0x33]))  // wrong magic
        seeds.append(Array(good.prefix(10)))  // truncated file header
        seeds.append(Array(good.prefix(24 + 10)))  // truncated record header
        seeds.append(Array(good.prefix(good.count - 5)))  // truncated record data
        seeds.append(patched(20, [0xE7, 0x03, 0x00, 0x00]))  // unknown link type 999
        seeds.append(patched(16, [0x00, 0x00, 0x00, 0x00]))  // snap length 0
        seeds.append(patched(24 + 8, [0xF0, 0xFF, 0xFF, 0xFF]))  // absurd captured length
        seeds.append(patched(24 + 8, [0xFF, 0xFF, 0x00, 0x00]))  // captured length past the snap length
        seeds.append(patched(0, [0x4D, 0x3C, 0xB2, 0xA1]))  // nanosecond magic
        seeds.append(patched(0, [0xA1, 0xB2, 0xC3, 0xD4]))  // swapped byte order
        seeds.append(patched(4, [0x03, 0x00]))  // version 3
        // Where our classic-pcap reader and libpcap could part (the capture target compares them):
        // records longer than the snap length (libpcap keeps its first bytes), and such a file
        // cut inside a record's kept part and inside the part passed over; a negative snap
        // length; raw IP's link type 101; an original length below the captured length.
        let shortSnap = patched(16, [40, 0x00, 0x00, 0x00])
        seeds.append(shortSnap)
        seeds.append(Array(shortSnap.prefix(24 + 16 + 20)))
        seeds.append(Array(shortSnap.prefix(shortSnap.count - 5)))
        seeds.append(patched(16, [0xFF, 0xFF, 0xFF, 0xFF]))
        seeds.append(patched(20, [101, 0x00, 0x00, 0x00]))
        seeds.append(patched(24 + 12, [0x00, 0x00, 0x00, 0x00]))
        // An IPv4 header claiming more than the frame holds, and a TCP header offset past it.
        seeds.append(patched(24 + 16 + 14 + 2, [0xFF, 0xFF]))
        seeds.append(patched(24 + 16 + 14 + 20 + 12, [0xF0]))
        var pcapng = CaptureImage(format: .pcapng, linkType: .ethernet)
        pcapng.add([0x00], time: 0)
        var badBlock = pcapng.bytes
        badBlock[badBlock.count - 4] = 0xFF  // trailing block length disagrees
        seeds.append(badBlock)
        seeds.append(Array(pcapng.bytes.prefix(30)))
        return seeds
    }

    /// HAR files: a Works session in `_webSocketMessages`, and damaged variants.
    static func hars() -> [[UInt8]] {
        let session = webSocketSession()
        func messages(_ list: [(String, Int, String)]) -> String {
            list.enumerated().map { index, message in
                #"{"type":"\#(message.0)","time":\#(1_763_776_800 + index),"opcode":\#(message.1),"data":"\#(message.2)"}"#
            }.joined(separator: ",")
        }
        func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
        let packets: [(String, Int, String)] = [
            ("send", 2, base64(MQTTSeeds.worksConnect)), ("receive", 2, base64([0x20, 0x02, 0x00, 0x00])),
            ("receive", 2, base64(MQTTSeeds.encode(.publish(PublishPacket(
                qos: .atLeastOnce, topicName: "notification", packetIdentifier: 1,
                payload: ByteBuffer(string: WorksSeeds.payloads()[1]))), .v3_1_1))),
            ("send", 2, base64([0x40, 0x02, 0x00, 0x01])), ("send", 1, "text message"),
        ]
        func har(_ messageList: String, url: String = "wss://jp1-web-noti.worksmobile.com/wmqtt", status: String = "101",
                 protocolHeader: String = #"{"name":"Sec-WebSocket-Protocol","value":"mqtt"}"#) -> [UInt8] {
            Array("""
                {"log":{"version":"1.2","entries":[{"startedDateTime":"2025-11-22T02:00:00.000Z","time":0,\
                "request":{"method":"GET","url":"\(url)","headers":[\(protocolHeader),\
                {"name":"Cookie","value":"WORKS_SES=fuzz"}]},"response":{"status":\(status),"headers":[\(protocolHeader)]},\
                "_resourceType":"websocket","_webSocketMessages":[\(messageList)]}]}}
                """.utf8)
        }
        _ = session
        return [
            har(messages(packets)),
            har(messages(packets), protocolHeader: #"{"name":"X","value":"y"}"#),
            har(messages([("send", 2, "!!not base64!!"), ("receive", 2, base64([0x30, 0xFF]))])),
            har(messages([("sideways", 9, base64([0xC0, 0x00]))])),
            har(#"{"type":"send"},{"time":"x","opcode":"2","data":7},[],null"#),
            har(messages(packets), url: "ws://127.0.0.1:1/mqtt", status: "\"101\""),
            har(""),
            Array(#"{"log":{"entries":[]}}"#.utf8), Array(#"{"log":{"entries":[{"request":{}}]}}"#.utf8),
            Array(#"{"log":{"entries":{}}}"#.utf8), Array(#"{"log":"#.utf8), Array("[1,2,3]".utf8),
        ]
    }
}
