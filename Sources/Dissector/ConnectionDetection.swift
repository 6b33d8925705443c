import ByteStream
import MQTTWire
import NIOCore
import WebSocketWire

/// What a connection carries, decided from its first bytes (docs/decoding.md, "Detection").
///
/// A connection is labelled only on strong evidence: an HTTP Upgrade to WebSocket, an MQTT
/// CONNECT at the start of the client's stream, or, for a connection the capture joined
/// midstream, several consecutive units (WebSocket frames or MQTT packets) that parse, chain
/// exactly to the end of the bytes seen, and are plausible for the side that sent them, in
/// both directions. Common other protocols are recognised by their first bytes and named, so
/// that they are reported as ignored, with the reason, rather than decoded into errors.
struct ConnectionDetection {
    /// The first bytes of one direction, from the first byte the capture holds.
    struct Side {
        var bytes: [UInt8]
        /// Whether they start the direction's stream (its SYN was seen and nothing was lost
        /// before them): then units must start at their first byte.
        var fromStart: Bool
    }

    /// What the capture already taught about the connection's server port, or what
    /// `--assume` says of it.
    enum Hint: Sendable, Hashable {
        case webSocket(ProtocolVersion?)
        case mqtt(ProtocolVersion?)
    }

    /// A reading of the bytes as units of one protocol.
    struct Reading: Equatable {
        enum Kind: Equatable {
            /// WebSocket frames; `carriesMQTT` from their payloads (nil when no data frame was seen).
            case webSocket(carriesMQTT: Bool?, version: ProtocolVersion?)
            case mqtt(ProtocolVersion)
        }

        var kind: Kind
        /// Where units start in each direction's bytes; nil for a direction with none seen.
        var clientStart: Int?
        var serverStart: Int?
        /// Complete units that parsed, both directions together.
        var units: Int
        var v5Evidence = 0
        /// Bytes passed over before the first unit, both directions together.
        var skipped: Int
        /// A direction's bytes end inside a unit.
        var endsInsideUnit = false
    }

    enum Verdict: Equatable {
        /// Not yet: more bytes may tell.
        case undecided
        /// An HTTP Upgrade to WebSocket from the client.
        case handshake
        /// An MQTT CONNECT opens the client's stream.
        case connect
        /// Units found by their shapes (a capture that joined the connection late).
        case units(Reading)
        /// Another protocol, or nothing recognisable: the reason says which.
        case other(String)
    }

    /// Client and server as the connection tracker guessed them may be the wrong way round
    /// when the capture missed the SYN: the evidence then says so.
    struct Decision: Equatable {
        var verdict: Verdict
        var rolesSwapped = false
    }

    var client: Side
    var server: Side
    /// The connection has ended (or the capture has): decide on what was shown.
    var final: Bool
    /// The bytes held have reached the detection budget: decide on them.
    var budgetReached: Bool
    var hint: Hint?
    /// Whether client and server are a guess (no SYN seen), so that evidence may swap them.
    var rolesGuessed: Bool

    /// Units that must chain before a connection without a beginning is labelled on their
    /// shapes alone (fewer will do when the capture taught what the server port carries).
    static let unitsNeeded = 3
    /// How far into a direction joined midstream the first unit may start.
    static let maximumSkip = 1 << 20

    func decide() -> Decision {
        let asGiven = decide(client: client, server: server)
        if rolesGuessed, needsSwap(asGiven) {
            let swapped = decide(client: server, server: client)
            if swapped.verdict != .undecided { return Decision(verdict: swapped.verdict, rolesSwapped: true) }
        }
        return asGiven
    }

    /// Whether the evidence read as given points the other way: a request or CONNECT from
    /// the supposed server.
    private func needsSwap(_ decision: Decision) -> Bool {
        if Self.httpRequestLine(server.bytes) != nil && Self.httpRequestLine(client.bytes) == nil { return true }
        if client.bytes.starts(with: Array("HTTP/1.".utf8)) && !server.bytes.starts(with: Array("HTTP/1.".utf8)) { return true }
        if Self.startsWithConnect(server.bytes) && !Self.startsWithConnect(client.bytes) { return true }
        // A protocol recognised by its signature keeps the roles its ports gave.
        for bytes in [client.bytes, server.bytes] where Self.tlsRecord(bytes) != nil { return false }
        if Self.signedProtocol(client: client.bytes, server: server.bytes) != nil
            || Self.framedProtocol(client: client.bytes, server: server.bytes) != nil { return false }
        switch decision.verdict {
        case .undecided where !final && !budgetReached:
            // Looked at when something is decided: the readings both ways cost a scan each.
            return false
        case .other, .undecided:
            // Units that only a client sends, from the server's side (masked frames, PINGREQ…).
            let forward = Self.bestReading(client: client, server: server, hint: hint, final: final)
            let backward = Self.bestReading(client: server, server: client, hint: hint, final: final)
            if let backward, backward.units > (forward?.units ?? 0) { return true }
            return false
        default:
            return false
        }
    }

    private func decide(client: Side, server: Side) -> Decision {
        // Encrypted: nothing inside can be read without the key log.
        if let record = Self.tlsRecord(client.bytes) ?? Self.tlsRecord(server.bytes) {
            return Decision(verdict: .other("TLS (\(record)), encrypted: give its key log with --keylog, or capture the plain side with wmq-capture proxy"))
        }
        // A beginning that says what follows.
        if let line = Self.httpRequestLine(client.bytes) {
            return Decision(verdict: httpVerdict(client.bytes, requestLine: line))
        }
        if Self.startsWithConnect(client.bytes) && (client.fromStart || Self.connectParses(client.bytes)) {
            return Decision(verdict: .connect)
        }
        // The server's 101 response, its request before the capture began: frames follow it.
        if let verdict = upgradeResponseVerdict(client: client, server: server) {
            return Decision(verdict: verdict)
        }
        if let name = Self.signedProtocol(client: client.bytes, server: server.bytes) {
            return Decision(verdict: .other(name))
        }
        // Units by their shapes.
        if let reading = Self.bestReading(client: client, server: server, hint: hint, final: final),
           Self.isConvincing(reading, client: client, server: server, hint: hint, final: final) {
            return Decision(verdict: .units(reading))
        }
        if let name = Self.framedProtocol(client: client.bytes, server: server.bytes) {
            return Decision(verdict: .other(name))
        }
        guard final || budgetReached else { return Decision(verdict: .undecided) }
        return Decision(verdict: .other(Self.unrecognised(client: client.bytes, server: server.bytes)))
    }

    // MARK: HTTP

    private func httpVerdict(_ bytes: [UInt8], requestLine: String) -> Verdict {
        guard let headEnd = Self.headEnd(bytes) else {
            return final || budgetReached ? .other("HTTP (\(requestLine), the head cut short)") : .undecided
        }
        let head = String(decoding: bytes[..<headEnd], as: UTF8.self).lowercased()
        let upgradesToWebSocket = requestLine.hasPrefix("GET ") && head.split(separator: "\r\n").contains { line in
            line.hasPrefix("upgrade:") && line.contains("websocket")
        }
        if upgradesToWebSocket { return .handshake }
        return .other("HTTP (\(requestLine)) without a WebSocket upgrade")
    }

    /// A connection whose captured bytes begin with the server's `101 Switching Protocols`
    /// to WebSocket: frames follow the head in both directions.
    private func upgradeResponseVerdict(client: Side, server: Side) -> Verdict? {
        let bytes = server.bytes
        guard bytes.starts(with: Array("HTTP/1.1 101".utf8)) || bytes.starts(with: Array("HTTP/1.0 101".utf8)) else { return nil }
        guard let headEnd = Self.headEnd(bytes) else { return final || budgetReached ? .other("HTTP (101 response cut short)") : .undecided }
        let lines = String(decoding: bytes[..<headEnd], as: UTF8.self).lowercased().split(separator: "\r\n")
        guard lines.contains(where: { $0.hasPrefix("upgrade:") && $0.contains("websocket") }) else { return nil }
        var carriesMQTT: Bool?
        if let line = lines.first(where: { $0.hasPrefix("sec-websocket-protocol:") }) {
            let chosen = line.dropFirst("sec-websocket-protocol:".count).trimmingCharacters(in: .whitespaces)
            carriesMQTT = ConnectionDissector.mqttSubprotocols.contains(chosen)
        }
        let rest = Array(bytes[headEnd...])
        let serverChain = Self.bestChain(rest, fromStart: true) { Self.webSocketChain(rest, from: $0, direction: .serverToClient) }
        let clientChain = Self.bestChain(client.bytes, fromStart: false) {
            Self.webSocketChain(client.bytes, from: $0, direction: .clientToServer)
        }
        if carriesMQTT == nil {
            let mqtt = (serverChain?.mqttPayloads ?? 0) + (clientChain?.mqttPayloads ?? 0)
            let other = (serverChain?.textPayloads ?? 0) + (clientChain?.textPayloads ?? 0)
            carriesMQTT = mqtt + other == 0 ? nil : mqtt > other
        }
        let version: ProtocolVersion? = (serverChain?.v5Evidence ?? 0) + (clientChain?.v5Evidence ?? 0) > 0 ? .v5 : nil
        return .units(Reading(kind: .webSocket(carriesMQTT: carriesMQTT, version: version),
                              clientStart: clientChain.map { Self.firstMessageFrame(client.bytes, from: $0.start, direction: .clientToServer) },
                              serverStart: headEnd + (serverChain.map { Self.firstMessageFrame(rest, from: $0.start, direction: .serverToClient) } ?? 0),
                              units: Self.unitsNeeded, skipped: 0))
    }

    static let httpMethods = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"]

    /// The request line an HTTP/1.x request opens with ("GET / HTTP/1.1"), shortened.
    static func httpRequestLine(_ bytes: [UInt8]) -> String? {
        guard let method = httpMethods.first(where: { bytes.starts(with: Array(($0 + " ").utf8)) }) else { return nil }
        let lineEnd = bytes.prefix(4096).firstIndex(of: UInt8(ascii: "\r")) ?? min(bytes.count, 4096)
        let line = String(decoding: bytes[..<lineEnd], as: UTF8.self)
        // The line may still be arriving; once whole it ends with the version.
        if lineEnd < bytes.count, !line.hasSuffix(" HTTP/1.1"), !line.hasSuffix(" HTTP/1.0") { return nil }
        guard line.count > method.count + 1 else { return nil }
        let shown = line.replacingOccurrences(of: " HTTP/1.1", with: "").replacingOccurrences(of: " HTTP/1.0", with: "")
        return shown.count > 80 ? String(shown.prefix(77)) + "…" : shown
    }

    static func headEnd(_ bytes: [UInt8]) -> Int? {
        let end: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && Array(bytes[index..<index + 4]) == end {
            return index + 4
        }
        return nil
    }

    // MARK: Other protocols by their first bytes

    /// The TLS record a connection opens with (a handshake, or application data when the
    /// capture joined it late): content type 20–23, version 3.x, a length up to 2^14 + 2048.
    static func tlsRecord(_ bytes: [UInt8]) -> String? {
        guard bytes.count >= 5, (20...23).contains(bytes[0]), bytes[1] == 3, bytes[2] <= 4 else { return nil }
        let length = Int(bytes[3]) << 8 | Int(bytes[4])
        guard length > 0, length <= 18_432 else { return nil }
        switch bytes[0] {
        case 22: return "handshake record"
        case 23: return "application data"
        case 21: return "alert"
        default: return "change cipher spec"
        }
    }

    /// Protocols recognised by a signature in the first bytes of either direction: magic
    /// numbers, versions and fixed exchanges that MQTT or WebSocket bytes never start with.
    static func signedProtocol(client: [UInt8], server: [UInt8]) -> String? {
        for bytes in [client, server] {
            if bytes.starts(with: Array("SSH-".utf8)) {
                let banner = String(decoding: bytes.prefix(while: { $0 != 13 && $0 != 10 }).prefix(40), as: UTF8.self)
                return "SSH (\(banner))"
            }
            if bytes.starts(with: Array("PRI * HTTP/2.0\r\n".utf8)) { return "HTTP/2 (connection preface)" }
            if bytes.starts(with: Array("HTTP/1.".utf8)) {
                let line = String(decoding: bytes.prefix(while: { $0 != 13 && $0 != 10 }).prefix(60), as: UTF8.self)
                return "HTTP (response \(line))"
            }
            if isSMB(bytes) { return "SMB" }
        }
        if isPostgresStartup(client) { return "PostgreSQL (startup message)" }
        if isMySQLGreeting(server) { return "MySQL (server greeting)" }
        return socks(client: client, server: server)
    }

    /// Length-prefixed protocols recognised by units that chain exactly over the bytes,
    /// checked after the WebSocket and MQTT readings, whose own chains are stricter.
    static func framedProtocol(client: [UInt8], server: [UInt8]) -> String? {
        for bytes in [client, server] {
            if chainsExactly(bytes, unit: modbusUnit) { return "Modbus/TCP" }
            if chainsExactly(bytes, unit: etherNetIPUnit) { return "EtherNet/IP (encapsulation)" }
            if chainsExactly(bytes, unit: dnsUnit) { return "DNS over TCP" }
        }
        return nil
    }

    /// NetBIOS session service (TCP 139/445): a session message whose payload is SMB1 or
    /// SMB2/3, or a session request.
    static func isSMB(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 8, bytes[0] == 0 else { return false }
        let magic = Array(bytes[5..<8])
        return (bytes[4] == 0xFF || bytes[4] == 0xFE) && magic == Array("SMB".utf8)
    }

    /// PostgreSQL's first message: a length, then protocol 3.0 or an SSL, GSS or cancel request code.
    static func isPostgresStartup(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 8 else { return false }
        let length = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
        let code = UInt32(bytes[4]) << 24 | UInt32(bytes[5]) << 16 | UInt32(bytes[6]) << 8 | UInt32(bytes[7])
        guard length >= 8, length <= 10_000 else { return false }
        return code == 0x0003_0000 || code == 0x04D2_162F || code == 0x04D2_1630 || (code == 0x04D2_162E && length == 16)
    }

    /// MySQL's server greeting: a 3-byte little-endian length, sequence 0, protocol 10, a
    /// version string ended by NUL.
    static func isMySQLGreeting(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 8, bytes[3] == 0, bytes[4] == 10 else { return false }
        let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        guard length >= 20, length <= 1024 else { return false }
        let version = bytes[5...].prefix(64)
        guard let nul = version.firstIndex(of: 0), nul > 5 else { return false }
        return bytes[5..<nul].allSatisfy { (0x20...0x7E).contains($0) }
    }

    /// SOCKS 4 or 5, whose first exchange is fixed (a proxy; what it carries later, often
    /// TLS, is not decoded).
    static func socks(client: [UInt8], server: [UInt8]) -> String? {
        if client.count >= 3, client[0] == 5, (1...16).contains(Int(client[1])), client.count >= 2 + Int(client[1]),
           client[2..<(2 + Int(client[1]))].allSatisfy({ $0 <= 0x09 || (0x80...0xFE).contains($0) }),
           server.count >= 2, server[0] == 5, server[1] <= 0x09 || server[1] == 0xFF {
            return "SOCKS5 (proxy handshake)"
        }
        if client.count >= 9, client[0] == 4, client[1] == 1 || client[1] == 2,
           server.count >= 8, server[0] == 0, (0x5A...0x5D).contains(server[1]) {
            return "SOCKS4 (proxy handshake)"
        }
        return nil
    }

    /// A unit rule for ``chainsExactly(_:unit:)``: the unit's total length at `index`, or nil
    /// when the bytes there cannot start one.
    typealias UnitRule = ([UInt8], Int) -> Int?

    /// Whether the bytes are whole units of a length-prefixed protocol, one after another to
    /// the last byte (the last may be cut short).
    static func chainsExactly(_ bytes: [UInt8], unit: UnitRule) -> Bool {
        var index = 0
        var whole = 0
        while index < bytes.count {
            guard let total = unit(bytes, index) else { return false }
            index += total
            if index <= bytes.count { whole += 1 }
        }
        return whole > 0
    }

    /// Modbus/TCP: transaction id, protocol 0, a length of unit id plus PDU, a function code.
    static func modbusUnit(_ bytes: [UInt8], _ index: Int) -> Int? {
        guard index + 8 <= bytes.count, bytes[index + 2] == 0, bytes[index + 3] == 0 else { return nil }
        let length = Int(bytes[index + 4]) << 8 | Int(bytes[index + 5])
        let function = bytes[index + 7] & 0x7F
        guard (2...254).contains(length), (1...0x2B).contains(function) else { return nil }
        return 6 + length
    }

    /// EtherNet/IP encapsulation: a known command, a little-endian length, options zero.
    static func etherNetIPUnit(_ bytes: [UInt8], _ index: Int) -> Int? {
        guard index + 24 <= bytes.count else { return nil }
        let command = Int(bytes[index]) | Int(bytes[index + 1]) << 8
        guard [0x0001, 0x0004, 0x0063, 0x0064, 0x0065, 0x0066, 0x006F, 0x0070, 0x0072, 0x0073].contains(command)
        else { return nil }
        let length = Int(bytes[index + 2]) | Int(bytes[index + 3]) << 8
        guard bytes[(index + 20)..<(index + 24)].allSatisfy({ $0 == 0 }) else { return nil }
        return 24 + length
    }

    /// DNS over TCP (RFC 1035 §4.2.2): a two-byte length, then a message whose header counts are sane.
    static func dnsUnit(_ bytes: [UInt8], _ index: Int) -> Int? {
        guard index + 14 <= bytes.count else { return nil }
        let length = Int(bytes[index]) << 8 | Int(bytes[index + 1])
        guard length >= 12, length <= 65_535 else { return nil }
        let header = index + 2
        let opcode = (bytes[header + 2] >> 3) & 0x0F
        let questions = Int(bytes[header + 4]) << 8 | Int(bytes[header + 5])
        let answers = Int(bytes[header + 6]) << 8 | Int(bytes[header + 7])
        let authorities = Int(bytes[header + 8]) << 8 | Int(bytes[header + 9])
        let additional = Int(bytes[header + 10]) << 8 | Int(bytes[header + 11])
        guard opcode <= 6, opcode != 3, (1...4).contains(questions), answers <= 512, authorities <= 64, additional <= 64
        else { return nil }
        // A query asks; only an answer has answers.
        if bytes[header + 2] & 0x80 == 0 && answers > 0 { return nil }
        return 2 + length
    }

    /// The reason given for a connection nothing recognised.
    static func unrecognised(client: [UInt8], server: [UInt8]) -> String {
        let bytes = client.isEmpty ? server : client
        if bytes.isEmpty { return "no data" }
        let head = bytes.prefix(48)
        let printable = head.filter { (0x20...0x7E).contains($0) || $0 == 9 || $0 == 10 || $0 == 13 }.count
        if head.count >= 4, printable == head.count {
            let line = String(decoding: bytes.prefix(while: { $0 != 13 && $0 != 10 }).prefix(40), as: UTF8.self)
            return "a text protocol (first line \"\(line)\"), neither WebSocket nor MQTT; --assume PORT=ws-mqtt|mqtt forces it"
        }
        return "neither WebSocket nor MQTT (first bytes \(Hex.string(bytes.prefix(8)))); --assume PORT=ws-mqtt|mqtt forces it"
    }

    // MARK: MQTT

    static func startsWithConnect(_ bytes: [UInt8]) -> Bool {
        guard bytes.first == 0x10, bytes.count >= 8 else { return false }
        var index = 1
        while index < min(bytes.count, 5), bytes[index] & 0x80 != 0 { index += 1 }
        let nameStart = index + 1
        guard nameStart + 6 <= bytes.count else { return false }
        let name = Array(bytes[nameStart..<min(bytes.count, nameStart + 8)])
        return name.starts(with: [0x00, 0x04] + Array("MQTT".utf8)) || name.starts(with: [0x00, 0x06] + Array("MQIsdp".utf8))
    }

    /// For a direction that may not start at its stream's start: the CONNECT must be whole
    /// and read as one (its header and name alone could be a payload's). A CONNECT is read by
    /// its own protocol level, whatever version the decoder is given.
    static func connectParses(_ bytes: [UInt8]) -> Bool {
        guard case .valid(let total) = bytes.withUnsafeBytes({ PacketBoundaryScan.header(in: $0, at: 0, version: .v3_1_1) }),
              total <= bytes.count else { return false }
        return (try? MQTTDecoder.decodePacket(ByteBuffer(bytes: bytes[0..<total]), version: .v3_1_1)) != nil
    }

    /// Packet types each side sends.
    static func sends(_ type: PacketType, from direction: StreamDirection) -> Bool {
        if direction == .unknown { return true }
        return switch type {
        case .connect, .subscribe, .unsubscribe, .pingreq: direction == .clientToServer
        case .connack, .suback, .unsuback, .pingresp: direction == .serverToClient
        default: true
        }
    }

    /// A run of units from one start.
    struct Chain {
        var start: Int
        var units = 0
        /// The bytes end inside a unit whose header was plausible.
        var endsInsideUnit = false
        /// A unit did not parse or did not follow: the run stops short of the bytes' end.
        var broken = false
        /// Data frames whose payloads are MQTT packets, and those that are not.
        var mqttPayloads = 0
        var textPayloads = 0
        /// Units that only MQTT 5.0 reads so: packets that parse only as 5.0, or PUBLISHes with
        /// properties (which 3.1.1 would read as payload).
        var v5Evidence = 0
    }

    /// Walks units from `start`: `header` gives each unit's length, `accept` checks it (whole, or
    /// the one the bytes end inside) and notes what it saw; false breaks the run there.
    static func walk(_ bytes: [UInt8], from start: Int, header: (UnsafeRawBufferPointer, Int) -> BoundaryScan.Header,
                     accept: (_ index: Int, _ total: Int, _ whole: Bool, _ chain: inout Chain) -> Bool) -> Chain {
        var chain = Chain(start: start)
        var index = start
        while index < bytes.count {
            switch bytes.withUnsafeBytes({ header($0, index) }) {
            case .invalid:
                chain.broken = true
                return chain
            case .incomplete:
                chain.endsInsideUnit = true
                return chain
            case .valid(let total):
                let whole = index + total <= bytes.count
                guard accept(index, total, whole, &chain) else {
                    chain.broken = true
                    return chain
                }
                guard whole else {
                    chain.endsInsideUnit = true
                    return chain
                }
                chain.units += 1
                index += total
            }
        }
        return chain
    }

    static func mqttChain(_ bytes: [UInt8], from start: Int, version: ProtocolVersion, direction: StreamDirection) -> Chain {
        walk(bytes, from: start, header: { PacketBoundaryScan.header(in: $0, at: $1, version: version) }) { index, total, whole, chain in
            guard whole else { return true }
            guard let packet = try? MQTTDecoder.decodePacket(ByteBuffer(bytes: bytes[index..<(index + total)]), version: version),
                  sends(packet.type, from: direction) else { return false }
            if version == .v5, case .publish(let publish) = packet {
                // Properties are 5.0's own. So is an empty property block before a text payload:
                // read as 3.1.1, every such payload would start with a NUL (the block's length),
                // which text does not.
                if !publish.properties.isEmpty || startsWithText(publish.payload) { chain.v5Evidence += 1 }
            }
            return true
        }
    }

    static func webSocketChain(_ bytes: [UInt8], from start: Int, direction: StreamDirection) -> Chain {
        // Inside a fragmented message: a continuation must come next, and no new data frame.
        var inMessage: Bool?
        return walk(bytes, from: start, header: { FrameBoundaryScan.header(in: $0, at: $1, direction: direction, allowsRSV1: true) }) {
            index, total, whole, chain in
            let first = bytes[index]
            let opcode = first & 0x0F
            let fin = first & 0x80 != 0
            // An empty fragment that ends nothing carries nothing: zeros in other protocols'
            // bytes read so, real senders do not send it.
            if opcode < 8 && !fin && total == 2 { return false }
            if opcode == 0 {
                // An orphan continuation is wrong, but the first frame seen may continue a message begun before.
                if inMessage == false { return false }
                inMessage = !fin
            } else if opcode == 1 || opcode == 2 {
                if inMessage == true { return false }
                inMessage = !fin
            }
            if whole && opcode == 8 && !closePayloadValid(bytes, frameAt: index, total: total) { return false }
            if opcode == 1 || opcode == 2 { classifyPayload(bytes, frameAt: index, total: total, chain: &chain) }
            return true
        }
    }

    /// The payload of the frame at `index`, unmasked, up to `limit` bytes.
    static func framePayload(_ bytes: [UInt8], frameAt index: Int, total: Int, limit: Int) -> [UInt8] {
        let second = bytes[index + 1]
        let masked = second & 0x80 != 0
        var headerLength = 2
        switch second & 0x7F {
        case 126: headerLength += 2
        case 127: headerLength += 8
        default: break
        }
        let keyStart = index + headerLength
        if masked { headerLength += 4 }
        let start = index + headerLength
        let end = min(index + total, bytes.count, start + limit)
        guard start < end, keyStart + 4 <= bytes.count || !masked else { return [] }
        var payload = Array(bytes[start..<end])
        if masked {
            for offset in payload.indices { payload[offset] ^= bytes[keyStart + offset % 4] }
        }
        return payload
    }

    /// Counts a data frame's payload as MQTT (whole packets that parse, one after another)
    /// or as something else (text, or binary of another kind: zlib, JSON…).
    private static func classifyPayload(_ bytes: [UInt8], frameAt index: Int, total: Int, chain: inout Chain) {
        let opcode = bytes[index] & 0x0F
        // Compressed (RSV1) payloads cannot be read here.
        guard bytes[index] & 0x40 == 0 else { return }
        let payload = framePayload(bytes, frameAt: index, total: total, limit: 4096)
        guard !payload.isEmpty else { return }
        if opcode == 1 {
            chain.textPayloads += 1
            return
        }
        let v3 = mqttChain(payload, from: 0, version: .v3_1_1, direction: .unknown)
        let v5 = mqttChain(payload, from: 0, version: .v5, direction: .unknown)
        let readsAsV3 = !v3.broken && (v3.units > 0 || v3.endsInsideUnit)
        let readsAsV5 = !v5.broken && (v5.units > 0 || v5.endsInsideUnit)
        if readsAsV3 || readsAsV5 { chain.mqttPayloads += 1 } else { chain.textPayloads += 1 }
        if readsAsV5 && (!readsAsV3 || v5.v5Evidence > 0) { chain.v5Evidence += 1 }
    }

    /// A payload that begins with at least four bytes of printable UTF-8 text (JSON, words).
    static func startsWithText(_ payload: ByteBuffer) -> Bool {
        let head = Array(payload.readableBytesView.prefix(32))
        guard head.count >= 4, isText(head) else { return false }
        return String(validating: head.prefix { $0 < 0x80 }, as: UTF8.self) != nil
    }

    static func isText(_ bytes: [UInt8]) -> Bool {
        bytes.allSatisfy { $0 >= 0x20 || $0 == 9 || $0 == 10 || $0 == 13 }
    }

    /// A Close frame's body is empty or a code RFC 6455 allows on the wire (§7.4), then a reason.
    static func closePayloadValid(_ bytes: [UInt8], frameAt index: Int, total: Int) -> Bool {
        let payload = framePayload(bytes, frameAt: index, total: total, limit: 125)
        if payload.isEmpty { return true }
        guard payload.count >= 2 else { return false }
        let code = Int(payload[0]) << 8 | Int(payload[1])
        return (1000...1003).contains(code) || (1007...1014).contains(code) || (3000...4999).contains(code)
    }

    /// Where the first frame that begins a message lies, from `start`: continuation frames
    /// first seen continue a message the capture did not see, and are passed over.
    static func firstMessageFrame(_ bytes: [UInt8], from start: Int, direction: StreamDirection) -> Int {
        var index = start
        while index + 2 <= bytes.count, bytes[index] & 0x0F == 0 {
            let header = bytes.withUnsafeBytes { FrameBoundaryScan.header(in: $0, at: index, direction: direction, allowsRSV1: true) }
            guard case .valid(let total) = header, index + total <= bytes.count else { break }
            index += total
        }
        return index
    }

    /// The run that explains the most of one direction: from its first byte when it starts the
    /// stream, else from the first offset whose run reaches the bytes' end unbroken.
    static func bestChain(_ bytes: [UInt8], fromStart: Bool, make: (Int) -> Chain) -> Chain? {
        if bytes.count < 2 { return nil }
        if fromStart {
            let chain = make(0)
            return chain.broken ? nil : chain
        }
        // The run must explain at least as many bytes as it passes over: a short run at the
        // end of another protocol's bytes is chance.
        // A capture that joined inside a large message passes over its rest: then several
        // whole units must follow.
        // The rest of an HTTP head the capture joined inside (the upgrade's request or
        // response) ends with its blank line: no unit starts before it.
        let from = headTail(bytes) ?? 0
        guard from < bytes.count - 1 else { return nil }
        for start in from..<min(bytes.count - 1, from + maximumSkip) {
            let chain = make(start)
            guard !chain.broken, chain.units > 0 || (chain.endsInsideUnit && start == from) else { continue }
            let endsExactly = !chain.endsInsideUnit && chain.units >= 2
            let passedOver = start - from
            if start == from || bytes.count - start >= passedOver || chain.units >= unitsNeeded || endsExactly { return chain }
        }
        return nil
    }

    /// Where the bytes after the rest of an HTTP head start: the first bytes are header text
    /// (printable, lines ended by CR LF) up to a blank line, or the head's last CR LF alone.
    /// Nil when the bytes do not start so.
    static func headTail(_ bytes: [UInt8]) -> Int? {
        let window = bytes.prefix(8192)
        var index = 0
        while index + 3 < window.count {
            let byte = window[index]
            if byte == 0x0D && window[index + 1] == 0x0A {
                if window[index + 2] == 0x0D && window[index + 3] == 0x0A { return index + 4 }
                index += 2
                continue
            }
            guard byte >= 0x20 && byte < 0x7F || byte == 0x09 else { break }
            index += 1
        }
        // Cut just before the blank line's last CR LF.
        if bytes.count > 2, bytes[0] == 0x0D, bytes[1] == 0x0A, !(0x20...0x7E).contains(bytes[2]) { return 2 }
        return nil
    }

    /// Where the first unit of `kind` starts in the first bytes of a direction that had sent
    /// nothing when the connection was decided; nil when no run of units explains them.
    static func firstUnit(in bytes: [UInt8], kind: Reading.Kind, direction: StreamDirection) -> Int? {
        switch kind {
        case .webSocket:
            let chain = bestChain(bytes, fromStart: false) { webSocketChain(bytes, from: $0, direction: direction) }
            return chain.map { firstMessageFrame(bytes, from: $0.start, direction: direction) }
        case .mqtt(let version):
            return bestChain(bytes, fromStart: false) { mqttChain(bytes, from: $0, version: version, direction: direction) }?.start
        }
    }

    /// The reading of both directions as WebSocket and as MQTT (3.1.1 and 5.0) that holds
    /// in every direction with bytes and explains the most.
    static func bestReading(client: Side, server: Side, hint: Hint?, final: Bool) -> Reading? {
        var candidates: [Reading] = []
        func consider(_ kind: Reading.Kind, _ make: (Side, StreamDirection, Int) -> Chain) {
            let clientChain = bestChain(client.bytes, fromStart: client.fromStart) { make(client, .clientToServer, $0) }
            let serverChain = bestChain(server.bytes, fromStart: server.fromStart) { make(server, .serverToClient, $0) }
            // Plausible in both directions: a direction with bytes must have a run.
            if client.bytes.count >= 2 && clientChain == nil { return }
            if server.bytes.count >= 2 && serverChain == nil { return }
            guard clientChain != nil || serverChain != nil else { return }
            var kind = kind
            if case .webSocket = kind {
                let mqtt = (clientChain?.mqttPayloads ?? 0) + (serverChain?.mqttPayloads ?? 0)
                let other = (clientChain?.textPayloads ?? 0) + (serverChain?.textPayloads ?? 0)
                let v5 = (clientChain?.v5Evidence ?? 0) + (serverChain?.v5Evidence ?? 0)
                var version: ProtocolVersion? = v5 > 0 ? .v5 : nil
                if v5 == 0, case .webSocket(let hinted)? = hint { version = hinted }
                kind = .webSocket(carriesMQTT: mqtt + other == 0 ? nil : mqtt > other, version: version)
            }
            var clientStart = clientChain?.start
            var serverStart = serverChain?.start
            if case .webSocket = kind {
                clientStart = clientStart.map { firstMessageFrame(client.bytes, from: $0, direction: .clientToServer) }
                serverStart = serverStart.map { firstMessageFrame(server.bytes, from: $0, direction: .serverToClient) }
            }
            let evidence = (clientChain?.v5Evidence ?? 0) + (serverChain?.v5Evidence ?? 0)
            candidates.append(Reading(kind: kind, clientStart: clientStart, serverStart: serverStart,
                                      units: (clientChain?.units ?? 0) + (serverChain?.units ?? 0),
                                      v5Evidence: evidence,
                                      skipped: (clientChain?.start ?? 0) + (serverChain?.start ?? 0),
                                      endsInsideUnit: clientChain?.endsInsideUnit == true || serverChain?.endsInsideUnit == true))
        }
        consider(.webSocket(carriesMQTT: nil, version: nil)) { side, direction, start in
            webSocketChain(side.bytes, from: start, direction: direction)
        }
        for version in [ProtocolVersion.v3_1_1, .v5] {
            consider(.mqtt(version)) { side, direction, start in mqttChain(side.bytes, from: start, version: version, direction: direction) }
        }
        // Fewer bytes passed over first (the reading the bytes chain under), then more units,
        // then what the capture taught about the port, then 3.1.1 before 5.0.
        func rank(_ reading: Reading) -> (Int, Int, Int) {
            var hinted = 0
            switch (reading.kind, hint) {
            case (.webSocket, .webSocket?): hinted = 1
            case (.mqtt(let version), .mqtt(let hinted5)?): hinted = hinted5 == nil || hinted5 == version ? 1 : 0
            default: break
            }
            let v5 = reading.kind == .mqtt(.v5) ? reading.v5Evidence : 0
            return (-reading.skipped, reading.units, hinted * 1000 + v5)
        }
        // A reading that is evidence enough beats one that is not, whatever it passed over.
        let convincing = candidates.filter { isConvincing($0, client: client, server: server, hint: hint, final: final) }
        return (convincing.isEmpty ? candidates : convincing).enumerated().max { a, b in
            let (ra, rb) = (rank(a.element), rank(b.element))
            if ra != rb { return ra < rb }
            return a.offset > b.offset
        }?.element
    }

    /// Whether a reading is evidence enough to label the connection.
    static func isConvincing(_ reading: Reading, client: Side, server: Side, hint: Hint?, final: Bool) -> Bool {
        let hinted: Bool
        switch (reading.kind, hint) {
        case (.webSocket, .webSocket?): hinted = true
        case (.mqtt(let version), .mqtt(let hintedVersion)?): hinted = hintedVersion == nil || hintedVersion == version
        default: hinted = false
        }
        if hinted && reading.units >= 1 { return true }
        // A client that opens its stream with anything but a CONNECT or an HTTP Upgrade is not one.
        if client.fromStart && client.bytes.count >= 2 { return false }
        if reading.units >= unitsNeeded { return true }
        // A short connection that ended: one unit each way, nothing passed over, nothing left over.
        if final, reading.units == 2, reading.skipped == 0, !reading.endsInsideUnit,
           reading.clientStart != nil, reading.serverStart != nil {
            return true
        }
        return false
    }
}
