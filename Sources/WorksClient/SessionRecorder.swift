import Capture
public import Dialects
import Foundation
import MQTTWire
import NIOConcurrencyHelpers
public import NIOCore
import NIOHTTP1
import NIOWebSocket
import WebSocketWire

/// Records everything a client sent and received (after TLS) into a pcap file with
/// synthetic IPv4/TCP headers and consistent sequence numbers, which `wmq-decode` and
/// Wireshark read back as WebSocket and MQTT (docs/capture.md).
///
/// With a ``Redactor`` (the default), secrets are replaced by their keyed pseudonyms before
/// they reach the file: `Cookie`, `Set-Cookie` and `Authorization` header values, the MQTT
/// CONNECT password, and `token`-like fields of JSON payloads. The file is created mode 0600.
///
/// Why not swift-nio-extras' `NIOWritePCAPHandler`, which also writes synthetic TCP: it
/// records bytes as they are, and a recording must not carry the cookies that log a user in.
public final class SessionRecorder: ByteTap, @unchecked Sendable {
    private struct Connection {
        var client: Endpoint
        var server: Endpoint
        var clientSequence: UInt32 = 1_000
        var serverSequence: UInt32 = 5_000
        var sent: RedactingStream?
        var received: RedactingStream?
    }

    private let lock = NIOLock()
    private let writer: PcapWriter
    private let redactor: Redactor?
    /// The connections being recorded: 0 is the recorder's own (it is a tap itself), others
    /// belong to taps made by ``connectionTap()`` (a proxy's concurrent connections).
    private var connections: [Int: Connection] = [:]
    private var connectionCount = 0
    private var tapCount = 0
    /// Bytes that could not be checked for secrets and were therefore left out of the file.
    public private(set) var withheldBytes = 0

    public init(path: String, redactor: Redactor?) throws(WorksClientError) {
        // Created 0600 before libpcap opens it: an unredacted recording holds secrets.
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw WorksClientError(.config, "cannot create \(path): \(String(cString: strerror(errno)))") }
        // An existing file keeps its mode through O_CREAT: made 0600 whether new or overwritten.
        _ = fchmod(descriptor, 0o600)
        close(descriptor)
        do {
            writer = try PcapWriter(path: path, linkType: .ethernet)
        } catch {
            throw WorksClientError(.config, "cannot record to \(path): \(error)")
        }
        self.redactor = redactor
    }

    public func connectionOpened(local: SocketAddress?, remote: SocketAddress?) { opened(0, local: local, remote: remote) }
    public func bytes(_ buffer: ByteBuffer, direction: ByteDirection) { bytes(0, buffer, direction: direction) }
    public func connectionClosed() { closed(0) }

    /// A tap of its own for one more connection recorded into the same file, alongside others.
    public func connectionTap() -> any ByteTap {
        let id = lock.withLock {
            tapCount += 1
            return tapCount
        }
        return ConnectionTap(recorder: self, id: id)
    }

    private struct ConnectionTap: ByteTap {
        let recorder: SessionRecorder
        let id: Int
        func connectionOpened(local: SocketAddress?, remote: SocketAddress?) { recorder.opened(id, local: local, remote: remote) }
        func bytes(_ buffer: ByteBuffer, direction: ByteDirection) { recorder.bytes(id, buffer, direction: direction) }
        func connectionClosed() { recorder.closed(id) }
    }

    private func opened(_ id: Int, local: SocketAddress?, remote: SocketAddress?) {
        lock.withLock {
            connectionCount += 1
            // Each connection gets its own client port, so a reconnect is a new TCP stream.
            let client = Endpoint(local, fallbackPort: UInt16(40_000 + connectionCount % 20_000))
            let server = Endpoint(remote, fallbackPort: 443)
            var state = Connection(client: client, server: server)
            if let redactor {
                state.sent = RedactingStream(redactor: redactor, fromClient: true)
                state.received = RedactingStream(redactor: redactor, fromClient: false)
            }
            connections[id] = state
            let now = Date().timeIntervalSince1970
            write(SyntheticPacket.tcp(from: client, to: server, sequence: state.clientSequence - 1, flags: .syn), now)
            write(SyntheticPacket.tcp(from: server, to: client, sequence: state.serverSequence - 1,
                                      acknowledgement: state.clientSequence, flags: [.syn, .ack]), now)
            write(SyntheticPacket.tcp(from: client, to: server, sequence: state.clientSequence,
                                      acknowledgement: state.serverSequence, flags: .ack), now)
        }
    }

    private func bytes(_ id: Int, _ buffer: ByteBuffer, direction: ByteDirection) {
        lock.withLock {
            guard var state = connections[id] else { return }
            var bytes = Array(buffer.readableBytesView)
            switch direction {
            case .sent:
                if var stream = state.sent {
                    bytes = stream.feed(buffer)
                    state.sent = stream
                }
            case .received:
                if var stream = state.received {
                    bytes = stream.feed(buffer)
                    state.received = stream
                }
            }
            let before = (connections[id]?.sent?.withheld ?? 0) + (connections[id]?.received?.withheld ?? 0)
            withheldBytes += (state.sent?.withheld ?? 0) + (state.received?.withheld ?? 0) - before
            let now = Date().timeIntervalSince1970
            // Segments of at most 60 KiB, so that every record fits an IPv4 packet.
            while !bytes.isEmpty {
                let chunk = Array(bytes.prefix(60_000))
                bytes.removeFirst(chunk.count)
                switch direction {
                case .sent:
                    write(SyntheticPacket.tcp(from: state.client, to: state.server, sequence: state.clientSequence,
                                              acknowledgement: state.serverSequence, flags: [.psh, .ack], payload: chunk), now)
                    state.clientSequence &+= UInt32(chunk.count)
                case .received:
                    write(SyntheticPacket.tcp(from: state.server, to: state.client, sequence: state.serverSequence,
                                              acknowledgement: state.clientSequence, flags: [.psh, .ack], payload: chunk), now)
                    state.serverSequence &+= UInt32(chunk.count)
                }
            }
            connections[id] = state
        }
    }

    private func closed(_ id: Int) {
        lock.withLock {
            guard let state = connections[id] else { return }
            let now = Date().timeIntervalSince1970
            write(SyntheticPacket.tcp(from: state.client, to: state.server, sequence: state.clientSequence,
                                      acknowledgement: state.serverSequence, flags: [.fin, .ack]), now)
            write(SyntheticPacket.tcp(from: state.server, to: state.client, sequence: state.serverSequence,
                                      acknowledgement: state.clientSequence &+ 1, flags: [.fin, .ack]), now)
            connections[id] = nil
            writer.flush()
        }
    }

    /// Writes buffered records to the file.
    public func flush() {
        lock.withLock { writer.flush() }
    }

    private func write(_ frame: [UInt8], _ time: Double) {
        writer.write(frame, time: time)
    }

}

/// One direction of a connection, rewritten so that no secret reaches a file: the HTTP head
/// line by line, then WebSocket frame by frame. A frame holding exactly one MQTT packet is
/// re-encoded when redaction changed it; other frames pass unchanged. Bytes that cannot be
/// parsed (so cannot be checked) are withheld and counted.
struct RedactingStream {
    private let redactor: Redactor
    private let fromClient: Bool
    private var head = ByteBuffer()
    private var headDone = false
    private var parser = WebSocketFrameParser(configuration: .init(maximumFrameSize: 1 << 30, direction: .unknown))
    private var raw = ByteBuffer()
    private var rawOffset = 0
    private(set) var withheld = 0
    private var broken = false

    init(redactor: Redactor, fromClient: Bool) {
        self.redactor = redactor
        self.fromClient = fromClient
    }

    mutating func feed(_ bytes: ByteBuffer) -> [UInt8] {
        var out: [UInt8] = []
        var rest = bytes
        if !headDone {
            head.writeImmutableBuffer(rest)
            rest = ByteBuffer()
            guard let end = head.readableBytesView.firstRange(of: [13, 10, 13, 10]) else {
                if head.readableBytes > 65_536 { broken = true; headDone = true; withheld += head.readableBytes; head.clear() }
                return []
            }
            let length = end.upperBound - head.readerIndex
            let text = head.readString(length: length) ?? ""
            out += Array(redactHead(text).utf8)
            rest = head
            headDone = true
        }
        guard !broken else {
            withheld += rest.readableBytes
            return out
        }
        raw.writeImmutableBuffer(rest)
        parser.append(rest)
        while true {
            let parsed: ParsedFrame?
            do {
                parsed = try parser.next()
            } catch {
                broken = true
                withheld += raw.readableBytes
                raw.clear()
                return out
            }
            guard let parsed else { break }
            let length = parsed.endOffset - rawOffset
            guard let original = raw.readSlice(length: length) else { break }
            rawOffset = parsed.endOffset
            out += rewrite(parsed) ?? Array(original.readableBytesView)
        }
        return out
    }

    private func redactHead(_ text: String) -> String {
        text.components(separatedBy: "\r\n").enumerated().map { index, line in
            // The request line: secret query parameters (OneBot's ?access_token=).
            if index == 0, fromClient {
                let parts = line.split(separator: " ", maxSplits: 2)
                guard parts.count == 3 else { return line }
                return "\(parts[0]) \(redactor.redact(target: String(parts[1]))) \(parts[2])"
            }
            guard let colon = line.firstIndex(of: ":") else { return line }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            guard ["cookie", "set-cookie", "authorization", "proxy-authorization"].contains(name.lowercased())
                    || redactor.names.contains(name) else { return line }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            var headers = HTTPHeaders()
            headers.add(name: name, value: value)
            return "\(name): \(redactor.redact(headers: headers).first(name: name) ?? "")"
        }.joined(separator: "\r\n")
    }

    /// The frame re-encoded with its secrets replaced, or nil when it holds none: MQTT packets in
    /// binary frames, and the JSON of text frames (the chat protocols: Discord's IDENTIFY token).
    private func rewrite(_ parsed: ParsedFrame) -> [UInt8]? {
        if parsed.opcode == .text, parsed.fin {
            guard let json = try? JSONReader.parse(parsed.data) else { return nil }
            let clean = redactor.redact(json: json)
            guard clean != json else { return nil }
            var frame = parsed.frame
            frame.data = ByteBuffer(string: clean.description)
            var out = ByteBuffer()
            WebSocketFrameWriter.write(frame, maskKey: parsed.maskKey, into: &out)
            return Array(out.readableBytesView)
        }
        guard parsed.opcode == .binary, parsed.fin,
              let packet = try? MQTTDecoder.decodePacket(parsed.data)
        else { return nil }
        let redacted: MQTTPacket
        switch packet {
        case .connect(let connect) where connect.password != nil:
            redacted = .connect(redactor.redact(connect: connect))
        case .publish(var publish):
            guard let json = try? JSONReader.parse(publish.payload) else { return nil }
            let clean = redactor.redact(json: json)
            guard clean != json else { return nil }
            var bytes: [UInt8] = []
            clean.write(to: &bytes)
            publish.payload = ByteBuffer(bytes: bytes)
            redacted = .publish(publish)
        default:
            return nil
        }
        guard let payload = try? MQTTEncoder().encode(redacted) else { return nil }
        var frame = parsed.frame
        frame.data = payload
        var out = ByteBuffer()
        WebSocketFrameWriter.write(frame, maskKey: parsed.maskKey, into: &out)
        return Array(out.readableBytesView)
    }
}
