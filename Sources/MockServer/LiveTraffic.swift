import Broker
import Capture
import Dialects
import Dissector
import Foundation
import MQTTWire
import NIOCore
import NIOHTTP1

/// The page's live view: every MQTT packet the broker receives or sends, described by the
/// records of `wmq-decode` (the `Dissector` module's JSON schema of docs/decode-format.md and
/// its text line, Works payloads annotated by the same `WorksDialect`), streamed to each
/// open page as Server-Sent Events. Nothing is built while no page watches.
extension MockBroker {
    /// A page opened `GET /api/events`: events go to `channel` until it closes. A viewer that
    /// cannot keep up (its socket not writable) misses events, and is told how many.
    func addViewer(_ channel: any Channel) {
        nextViewer += 1
        let id = nextViewer
        viewers[id] = Viewer(channel: channel)
        channel.closeFuture.whenComplete { [weak self] _ in
            Task { await self?.removeViewer(id) }
        }
        // What is connected now, so that the view starts from a known state.
        for (connection, state) in connections.sorted(by: { $0.key < $1.key }) {
            deliver(CaptureEvent(connection: state.described, direction: nil, frame: trafficFrame, time: Self.epochSeconds(),
                                 kind: .opened(protocol: state.transport == .webSocket ? "ws-mqtt" : "mqtt", how: "live")),
                    connection: connection, to: [id])
        }
    }

    func removeViewer(_ id: Int) {
        viewers[id] = nil
    }

    /// A packet crossed `connection` (`range`: its place in that direction's stream).
    func show(_ packet: MQTTPacket, on connection: BrokerCore.ConnectionID, direction: FlowDirection, size: Int) {
        guard var state = connections[connection] else { return }
        let start = direction == .clientToServer ? state.receivedBytes : state.sentBytes
        if direction == .clientToServer { state.receivedBytes += size } else { state.sentBytes += size }
        connections[connection] = state
        var annotation: AnnotatedMessage?
        if case .publish(let publish) = packet {
            let candidate = trafficDialect.annotate(publish, redactor: trafficRedactor)
            // Works mode annotates every PUBLISH; a plain broker only those that are Works messages.
            if configuration.mode == .works || ConnectionDissector.worksKinds.contains(candidate.kind) { annotation = candidate }
        }
        let event = DissectorEvent(direction: direction == .clientToServer ? .clientToServer : .serverToClient,
                                   kind: .mqtt(Self.shown(packet, redactor: trafficRedactor), range: start..<(start + size),
                                               annotation: annotation),
                                   warnings: [])
        broadcast(CaptureEvent(connection: state.described, direction: direction, frame: trafficFrame, time: Self.epochSeconds(),
                               kind: .dissected(event)), connection: connection)
    }

    /// A connection opened or closed.
    func showConnection(_ connection: BrokerCore.ConnectionID, opened: Bool, reason: String = "") {
        guard let state = connections[connection] else { return }
        let kind: CaptureEvent.Kind = opened
            ? .opened(protocol: state.transport == .webSocket ? "ws-mqtt" : "mqtt", how: "live")
            : .closed(reason: reason)
        broadcast(CaptureEvent(connection: state.described, direction: nil, frame: trafficFrame, time: Self.epochSeconds(), kind: kind),
                  connection: connection)
    }

    /// Sends one event to every viewer. The record (JSON, text line) is built once for all of
    /// them — with a hundred pages open it was built a hundred times per packet; only a viewer
    /// that missed events gets a record of its own, with the count.
    private func broadcast(_ event: CaptureEvent, connection: BrokerCore.ConnectionID) {
        trafficFrame += 1
        guard !viewers.isEmpty else { return }
        deliver(event, connection: connection, to: Array(viewers.keys))
    }

    private func deliver(_ event: CaptureEvent, connection: BrokerCore.ConnectionID, to ids: [Int]) {
        var members: [JSONMember]?
        var shared: ByteBuffer?
        for id in ids {
            guard var viewer = viewers[id] else { continue }
            guard viewer.channel.isWritable else {
                viewer.missed += 1
                viewers[id] = viewer
                continue
            }
            if members == nil {
                var record: [JSONMember] = []
                if case .object(let fields) = DecodeRecord.json(event) { record = fields }
                record.append(JSONMember(key: "session", value: core.clientID(of: connection).map { JSONValue.string($0) } ?? .null))
                record.append(JSONMember(key: "line", value: .string(TextRecord.lines(event, startTime: trafficStart, verbose: false).joined(separator: "\n"))))
                members = record
            }
            let bytes: ByteBuffer
            if viewer.missed > 0 {
                bytes = Self.serverSentEvent(members! + [JSONMember(key: "missed", value: .number(String(viewer.missed)))])
                viewer.missed = 0
                viewers[id] = viewer
            } else {
                if shared == nil { shared = Self.serverSentEvent(members!) }
                bytes = shared!
            }
            viewer.channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(bytes)), promise: nil)
        }
    }

    /// `data: {…}` and the blank line that ends a Server-Sent Event.
    static func serverSentEvent(_ members: [JSONMember]) -> ByteBuffer {
        var bytes = Array("data: ".utf8)
        JSONValue.object(members).write(to: &bytes)
        bytes += Array("\n\n".utf8)
        return ByteBuffer(bytes: bytes)
    }

    /// The packet as the page shows it: the CONNECT password replaced by a pseudonym.
    static func shown(_ packet: MQTTPacket, redactor: Redactor) -> MQTTPacket {
        guard case .connect(var connect) = packet, let password = connect.password else { return packet }
        connect.password = ByteBuffer(string: redactor.pseudonym(password.readableBytesView, kind: "password"))
        return .connect(connect)
    }

    static func epochSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    struct Viewer {
        let channel: any Channel
        var missed = 0
    }

    /// The page: connected clients, the live view, forms that inject messages. Its HTML, CSS
    /// and JavaScript are files of their own (Page/, a SwiftPM resource), read once.
    static let pageFiles: [String: (contentType: String, body: ByteBuffer)] = {
        var files: [String: (String, ByteBuffer)] = [:]
        for (name, type) in [("index.html", "text/html; charset=utf-8"), ("page.css", "text/css; charset=utf-8"),
                             ("page.js", "text/javascript; charset=utf-8")] {
            let url = Bundle.module.url(forResource: "Page", withExtension: nil)?.appendingPathComponent(name)
            let text = url.flatMap { try? String(contentsOf: $0, encoding: .utf8) }
                ?? "wmq-mock: the page's file \(name) is missing: keep the wmq_MockServer.resources folder beside the binary\n"
            files["/" + (name == "index.html" ? "" : name)] = (text.hasPrefix("wmq-mock:") ? "text/plain; charset=utf-8" : type, ByteBuffer(string: text))
        }
        return files
    }()
}

extension MockBroker {
    /// A connection as `wmq-decode` describes a captured one, from its socket's addresses.
    static func describe(_ id: BrokerCore.ConnectionID, _ channel: any Channel) -> Capture.Connection {
        Capture.Connection(id: id, client: Endpoint(channel.remoteAddress, fallbackPort: 40_000),
                           server: Endpoint(channel.localAddress, fallbackPort: 8885), joinedMidstream: false,
                           firstFrame: 0, firstTime: epochSeconds())
    }
}
