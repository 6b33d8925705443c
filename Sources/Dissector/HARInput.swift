import Capture
import Dialects
import FoundationEssentials
public import NIOCore
import NIOWebSocket
import WebSocketWire

/// HAR 1.2 files with Chrome's `_webSocketMessages` (`{type: send|receive, time, opcode,
/// data}`, binary data in base64), decoded like captures: each WebSocket entry becomes a
/// connection whose handshake and frames are rebuilt from the entry and run through the
/// same ``ConnectionDissector``.
///
/// A HAR has no TCP: the client endpoint is `0.0.0.0:N` for the N-th WebSocket entry, the
/// server's is the entry's `serverIPAddress` (or 0.0.0.0) and the URL's port, and an
/// event's `frame` is the message's index in its entry.
public enum HARInput {
    /// Whether `bytes` look like a HAR file (JSON, not a capture).
    public static func looksLikeHAR(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.first { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) } == UInt8(ascii: "{")
    }

    public struct HARError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Every event of every WebSocket entry, in entry order.
    public static func events(from file: ByteBuffer, options: CaptureDissector.Options) throws(HARError) -> [CaptureEvent] {
        let har: JSONValue
        do {
            har = try JSONReader.parse(file)
        } catch {
            throw HARError(description: "HAR: JSON syntax error at byte \(error.offset) of the file: \(error.reason)")
        }
        guard case .array(let entries)? = har["log"]?["entries"] else {
            throw HARError(description: "HAR: no log.entries array")
        }
        var events: [CaptureEvent] = []
        var index = 0
        for entry in entries {
            guard case .array(let messages)? = entry["_webSocketMessages"] else { continue }
            index += 1
            events += decode(entry: entry, messages: messages, index: index, options: options)
        }
        return events
    }

    private static func decode(entry: JSONValue, messages: [JSONValue], index: Int,
                               options: CaptureDissector.Options) -> [CaptureEvent] {
        let url = entry["request"]?["url"]?.stringValue ?? ""
        let (host, port, target) = split(url: url)
        let serverAddress = entry["serverIPAddress"]?.stringValue.flatMap(parseIPv4) ?? .v4(0)
        let firstTime = messages.first.flatMap { seconds($0["time"]) } ?? 0
        let connection = Connection(id: index, client: Endpoint(address: .v4(0), port: UInt16(truncatingIfNeeded: index)),
                                    server: Endpoint(address: serverAddress, port: port), joinedMidstream: false,
                                    firstFrame: 0, firstTime: firstTime)
        var out = [CaptureEvent(connection: connection, direction: nil, frame: 0, time: firstTime,
                                kind: .opened(protocol: "websocket", how: "HAR entry"))]
        guard var dissector = try? ConnectionDissector(transport: .webSocket(expectsHandshake: true), redactor: options.redactor,
                                                       reportsFrames: options.reportsFrames, inflation: options.inflation)
        else { return out }
        dissector.annotates = options.annotates
        dissector.annotatesMessages = options.annotatesMessages
        dissector.reportsMessages = options.reportsMessages
        func run(_ bytes: ByteBuffer, _ direction: FlowDirection, frame: Int, time: Double) {
            for event in dissector.feed(bytes, direction: direction == .clientToServer ? .clientToServer : .serverToClient, time: time) {
                out.append(CaptureEvent(connection: connection, direction: direction, frame: frame, time: time, kind: .dissected(event)))
            }
        }
        run(ByteBuffer(string: head(request: entry["request"], target: target, host: host)), .clientToServer, frame: 0, time: firstTime)
        run(ByteBuffer(string: head(response: entry["response"])), .serverToClient, frame: 0, time: firstTime)
        for (number, message) in messages.enumerated() {
            let direction: FlowDirection = message["type"]?.stringValue == "send" ? .clientToServer : .serverToClient
            let time = seconds(message["time"]) ?? firstTime
            let opcodeNumber = message["opcode"]?.intValue ?? 1
            let text = message["data"]?.stringValue ?? ""
            var payload: ByteBuffer
            if opcodeNumber == 2 {
                guard let data = Data(base64Encoded: text) else {
                    let error = DissectorEvent(direction: direction == .clientToServer ? .clientToServer : .serverToClient,
                                               kind: .error(layer: "HAR", description: "HAR: message \(number + 1) of entry \(index) is not base64"),
                                               warnings: [])
                    out.append(CaptureEvent(connection: connection, direction: direction, frame: number + 1, time: time, kind: .dissected(error)))
                    continue
                }
                payload = ByteBuffer(bytes: data)
            } else {
                payload = ByteBuffer(string: text)
            }
            let opcode = WebSocketOpcode(encodedWebSocketOpcode: UInt8(truncatingIfNeeded: opcodeNumber)) ?? .text
            var frame = ByteBuffer()
            // Clients mask (a zero key leaves the bytes as they are); servers do not.
            WebSocketFrameWriter.write(WebSocketFrame(fin: true, opcode: opcode, data: payload),
                                       maskKey: direction == .clientToServer ? [0, 0, 0, 0] : nil, into: &frame)
            payload = ByteBuffer()
            run(frame, direction, frame: number + 1, time: time)
        }
        out.append(CaptureEvent(connection: connection, direction: nil, frame: messages.count, time: out.last?.time ?? firstTime,
                                kind: .closed(reason: "end of HAR entry")))
        return out
    }

    private static func head(request: JSONValue?, target: String, host: String) -> String {
        var text = "\(request?["method"]?.stringValue ?? "GET") \(target) HTTP/1.1\r\n"
        let headers = request?["headers"]?.arrayValue ?? []
        if !headers.contains(where: { $0["name"]?.stringValue?.lowercased() == "host" }) { text += "Host: \(host)\r\n" }
        for header in headers {
            guard let name = header["name"]?.stringValue, let value = header["value"]?.stringValue, !name.hasPrefix(":") else { continue }
            text += "\(name): \(value)\r\n"
        }
        return text + "\r\n"
    }

    private static func head(response: JSONValue?) -> String {
        let status = response?["status"]?.intValue ?? 101
        var text = "HTTP/1.1 \(status) \(response?["statusText"]?.stringValue ?? "Switching Protocols")\r\n"
        let headers = response?["headers"]?.arrayValue ?? []
        for header in headers {
            guard let name = header["name"]?.stringValue, let value = header["value"]?.stringValue, !name.hasPrefix(":") else { continue }
            text += "\(name): \(value)\r\n"
        }
        return text + "\r\n"
    }

    /// `wss://host:port/path` → host, port (443 or 80 by scheme when absent), path.
    static func split(url: String) -> (host: String, port: UInt16, target: String) {
        let secure = url.hasPrefix("wss:") || url.hasPrefix("https:")
        let rest = url.split(separator: "://", maxSplits: 1).last.map(String.init) ?? url
        let authority = String(rest.prefix { $0 != "/" })
        let target = String(rest.dropFirst(authority.count))
        let parts = authority.split(separator: ":")
        let port = parts.count == 2 ? UInt16(parts[1]) : nil
        return (String(parts.first ?? ""), port ?? (secure ? 443 : 80), target.isEmpty ? "/" : target)
    }

    static func parseIPv4(_ text: String) -> IPAddress? {
        let parts = text.split(separator: ".").compactMap { UInt32($0) }
        guard parts.count == 4, parts.allSatisfy({ $0 < 256 }) else { return nil }
        return .v4(parts.reduce(0) { $0 << 8 | $1 })
    }

    /// A message time: epoch seconds, finite and within a few thousand years; anything
    /// else counts as missing (JSON reads 1e400 as infinity).
    static func seconds(_ value: JSONValue?) -> Double? {
        guard let value, case .number(let text) = value, let time = Double(text), time.isFinite, time.magnitude < 1e11 else {
            return nil
        }
        return time
    }
}
