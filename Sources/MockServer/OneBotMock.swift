public import Dialects
import Foundation
public import LiveWebSocket
public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOWebSocket
import WorksClient
import WebSocketWire

/// A OneBot v11 WebSocket endpoint as the seed's server runs it (docs/protocols.md §2):
/// `ws://HOST:PORT/ws/` (any path), `Authorization: Bearer TOKEN` (or `?access_token=`) checked
/// when a token is set (401 otherwise), a connection that has not sent its lifecycle `connect`
/// event within 1 s closed (1008), API calls answered (`send_private_msg`, `send_group_msg`,
/// `send_msg` with a new message id; `get_login_info`; `get_status`; others `failed`, retcode
/// 1404), each answer with the call's `echo`; events pushed to every connection with ``push(_:)``.
public final class OneBotMock: Sendable {
    public struct Configuration: Sendable {
        public var token: String?
        public var selfID: Int64
        public var lifecycleTimeout: Duration

        public init(token: String? = nil, selfID: Int64 = 10001, lifecycleTimeout: Duration = .seconds(1)) {
            self.token = token
            self.selfID = selfID
            self.lifecycleTimeout = lifecycleTimeout
        }
    }

    public let configuration: Configuration
    /// Every JSON message a connection sent, in order (the newest 10,000 kept while nobody reads).
    public let received: AsyncStream<JSONValue>
    private let receivedContinuation: AsyncStream<JSONValue>.Continuation
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var listeners: [any Channel] = []
        var connections: [ObjectIdentifier: any Channel] = [:]
        var nextMessageID: Int64 = 1
    }

    public init(configuration: Configuration = .init(), logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.logger = logger
        self.group = group
        (received, receivedContinuation) = AsyncStream.makeStream(of: JSONValue.self, bufferingPolicy: .bufferingNewest(10_000))
    }

    /// Listens; returns the bound port.
    /// Starts listening on `host`:`port` (0 asks for a free one); returns the port bound.
    /// `access` says which browser pages and host names are served (by default the
    /// endpoint's own page only, by its addresses and localhost).
    public func listen(host: String, port: Int, access: BrowserAccess = .standard) async throws -> Int {
        let token = configuration.token
        let channel = try await JSONSocketListener.bind(
            host: host, port: port, group: group, access: access, accepts: { Self.authorized($0, token: token) },
            refusal: { access in PlainHTTPAnswer(status: .unauthorized, access: access) { "OneBot: Authorization: Bearer <token> (or ?access_token=) is required\n" } },
            serve: { frames, channel, _ in await self.serve(frames, channel: channel) })
        state.withLockedValue { $0.listeners.append(channel) }
        return channel.localAddress?.port ?? port
    }

    /// Whether the upgrade request carries the token (header or query), when one is set.
    static func authorized(_ head: HTTPRequestHead, token: String?) -> Bool {
        guard let token else { return true }
        if head.headers["Authorization"].contains("Bearer \(token)") { return true }
        let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        return query.split(separator: "&").contains { $0 == "access_token=\(token)" }
    }

    /// Sends an event to every connection (`time` and `self_id` filled in when missing).
    @discardableResult
    public func push(_ event: JSONValue) -> Int {
        var members = event.members ?? []
        if !members.contains(where: { $0.key == "time" }) {
            members.insert(JSONMember(key: "time", value: .number(String(Int(Date().timeIntervalSince1970)))), at: 0)
        }
        if !members.contains(where: { $0.key == "self_id" }) {
            members.insert(JSONMember(key: "self_id", value: .number(String(configuration.selfID))), at: 1)
        }
        let text = JSONValue.object(members).description
        let channels = state.withLockedValue { Array($0.connections.values) }
        for channel in channels { Self.send(text, on: channel) }
        return channels.count
    }

    /// A group or private message event from a shorthand: `{"group": 123, "user": 456, "text": "hi"}`.
    public func messageEvent(group: Int64?, user: Int64, text: String, nickname: String = "wmq-mock") -> JSONValue {
        OneBotMessages.messageEvent(messageID: nextMessageID(), group: group, user: user, text: text, nickname: nickname)
    }

    private func nextMessageID() -> Int64 {
        state.withLockedValue { state -> Int64 in
            defer { state.nextMessageID += 1 }
            return state.nextMessageID
        }
    }

    /// Closes every connection (1001, going away) and keeps listening: what a restarting server does.
    public func closeConnections() async {
        for channel in state.withLockedValue({ Array($0.connections.values) }) {
            var data = channel.allocator.buffer(capacity: 2)
            data.write(webSocketErrorCode: .goingAway)
            try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).get()
            try? await channel.close()
        }
    }

    public func stop() async {
        receivedContinuation.finish()
        let (listeners, connections) = state.withLockedValue { ($0.listeners, Array($0.connections.values)) }
        for channel in listeners + connections { try? await channel.close() }
    }

    private func serve(_ frames: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, channel: any Channel) async {
        let key = ObjectIdentifier(channel)
        state.withLockedValue { $0.connections[key] = channel }
        defer { state.withLockedValue { _ = $0.connections.removeValue(forKey: key) } }
        let announced = NIOLockedValueBox(false)
        // The seed's rule: the lifecycle connect event within the timeout, or the connection is closed.
        let timeout = channel.eventLoop.scheduleTask(in: TimeAmount(configuration.lifecycleTimeout)) { [logger] in
            guard !announced.withLockedValue({ $0 }) else { return }
            logger.info("OneBot connection closed: no lifecycle connect event within the timeout")
            var data = channel.allocator.buffer(capacity: 2)
            data.write(webSocketErrorCode: .policyViolation)
            data.writeString("no lifecycle connect event")
            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).whenComplete { _ in channel.close(promise: nil) }
        }
        defer { timeout.cancel() }
        var messages = WebSocketFrameMessages()
        try? await frames.executeThenClose { inbound, _ in
            for try await frame in inbound {
                switch frame.opcode {
                case .text, .continuation, .binary:
                    guard let message = messages.add(frame), let json = try? JSONReader.parse(message) else { continue }
                    receivedContinuation.yield(json)
                    if json["post_type"]?.stringValue == "meta_event", json["meta_event_type"]?.stringValue == "lifecycle",
                       json["sub_type"]?.stringValue == "connect" {
                        announced.withLockedValue { $0 = true }
                    }
                    if let answer = answer(json) { Self.send(answer.description, on: channel) }
                case .ping:
                    channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData), promise: nil)
                case .connectionClose:
                    break
                default:
                    continue
                }
            }
        }
    }

    /// The answer to an API call, or nil for anything else.
    func answer(_ json: JSONValue) -> JSONValue? {
        guard let action = json["action"]?.stringValue else { return nil }
        func response(_ status: String, _ retcode: Int, _ data: JSONValue) -> JSONValue {
            OneBotMessages.response(to: json, status: status, retcode: retcode, data: data)
        }
        switch action {
        case "send_private_msg", "send_group_msg", "send_msg":
            guard json["params"]?["message"] != nil else { return response("failed", 1400, .null) }
            return response("ok", 0, .members(["message_id": .integer(nextMessageID())]))
        case "get_login_info":
            return response("ok", 0, .object([JSONMember(key: "user_id", value: .number(String(configuration.selfID))),
                                              JSONMember(key: "nickname", value: .string("wmq-mock"))]))
        case "get_status":
            return response("ok", 0, .object([JSONMember(key: "online", value: .bool(true)), JSONMember(key: "good", value: .bool(true))]))
        default:
            return response("failed", 1404, .null)
        }
    }

    static func send(_ text: String, on channel: any Channel) {
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)), promise: nil)
    }
}
