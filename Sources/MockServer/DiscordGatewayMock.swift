public import Dialects
import Foundation
public import LiveWebSocket
import MockAgents
public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOWebSocket
import WorksClient
import WebSocketWire

/// A Discord gateway as a bot's socket meets it (docs/protocols.md §4), with a cc-discord
/// bot in the channel: `ws://HOST:PORT/?v=10&encoding=json[&compress=zlib-stream]`.
///
/// The gateway: HELLO with the heartbeat interval on connect; HEARTBEAT answered by
/// HEARTBEAT_ACK; IDENTIFY answered by READY (close 4004 for a wrong token when one is set,
/// 4005 for a second IDENTIFY); RESUME by RESUMED; anything else before IDENTIFY closes with
/// 4003, an unknown opcode with 4001, a frame that is not JSON with 4002; no heartbeat within
/// 1.5 intervals closes with 4009 (wmq-mock's choice: Discord does not document which code).
/// With `compress=zlib-stream` every server message is a piece of one zlib stream ending in
/// `00 00 FF FF`, in binary frames.
///
/// The conversation: ``say(user:content:)`` posts a user's MESSAGE_CREATE to every identified
/// connection, and the bot answers with a canned reply generated token by token and delivered
/// through cc-discord's ``DeliveryThrottle``: one flush a second at most, 1,900 characters per
/// flush; `append` posts each flush as a MESSAGE_CREATE, `edit` posts a placeholder and edits it
/// (MESSAGE_UPDATE), then re-sends the whole text split at 1,900 characters by line.
public final class DiscordGatewayMock: Sendable {
    public struct Configuration: Sendable {
        public var heartbeatInterval: Duration
        /// IDENTIFY's token must be this one when set.
        public var token: String?
        public var delivery: DeliveryThrottle.Mode
        /// cc-discord's `streamingIntervalMs`.
        public var streamingInterval: Duration
        /// Characters per generated token of the bot's reply, and the pause between tokens.
        public var tokenLength: Int
        public var tokenInterval: Duration
        public var channelID: String

        public init(heartbeatInterval: Duration = .milliseconds(41_250), token: String? = nil, delivery: DeliveryThrottle.Mode = .append,
                    streamingInterval: Duration = .seconds(1), tokenLength: Int = 4, tokenInterval: Duration = .milliseconds(20),
                    channelID: String = "1100000000000000001") {
            self.heartbeatInterval = heartbeatInterval
            self.token = token
            self.delivery = delivery
            self.streamingInterval = streamingInterval
            self.tokenLength = tokenLength
            self.tokenInterval = tokenInterval
            self.channelID = channelID
        }
    }

    public let configuration: Configuration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let state = NIOLockedValueBox(State())

    private struct State {
        var listeners: [any Channel] = []
        var sessions: [ObjectIdentifier: GatewaySession] = [:]
        var nextSnowflake: Int64 = 1_200_000_000_000_000_000
    }

    public init(configuration: Configuration = .init(), logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.logger = logger
        self.group = group
    }

    /// Starts listening on `host`:`port` (0 asks for a free one); returns the port bound.
    /// `access` says which browser pages and host names are served (by default the
    /// endpoint's own page only, by its addresses and localhost).
    public func listen(host: String, port: Int, access: BrowserAccess = .standard) async throws -> Int {
        let channel = try await JSONSocketListener.bind(
            host: host, port: port, group: group, access: access, accepts: { _ in true },
            serve: { frames, channel, head in await self.serve(frames, channel: channel, query: Self.query(of: head.uri)) })
        state.withLockedValue { $0.listeners.append(channel) }
        return channel.localAddress?.port ?? port
    }

    public func stop() async {
        let (listeners, sessions) = state.withLockedValue { ($0.listeners, Array($0.sessions.values)) }
        for channel in listeners { try? await channel.close() }
        for session in sessions { await session.close(code: 1001, reason: "wmq-mock stopping") }
    }

    /// A user's message in the channel, then the bot's streamed answer, on every identified
    /// connection. Returns how many connections it went to.
    @discardableResult
    public func say(user: String, content: String) async -> Int {
        let sessions = state.withLockedValue { Array($0.sessions.values) }
        var count = 0
        for session in sessions where await session.identified {
            count += 1
            let id = snowflake()
            await session.dispatch("MESSAGE_CREATE", message(id: id, author: user, bot: false, content: content))
            Task { await self.answer(content, to: id, on: session) }
        }
        return count
    }

    /// The bot's reply, generated token by token and delivered through cc-discord's throttle.
    private func answer(_ question: String, to questionID: String, on session: GatewaySession) async {
        let start = ContinuousClock.now
        func seconds() -> Double { (ContinuousClock.now - start) / .seconds(1) }
        var throttle = DeliveryThrottle(mode: configuration.delivery, interval: configuration.streamingInterval / .seconds(1))
        var placeholder: String?
        if configuration.delivery == .edit {
            let id = snowflake()
            placeholder = id
            await session.dispatch("MESSAGE_CREATE", message(id: id, author: "wmq-bot", bot: true, content: "…", replyTo: questionID))
        }
        func deliver(_ deliveries: [DeliveryThrottle.Delivery]) async {
            for delivery in deliveries {
                switch delivery {
                case .post(let text):
                    await session.dispatch("MESSAGE_CREATE", message(id: snowflake(), author: "wmq-bot", bot: true, content: text, replyTo: questionID))
                case .edit(let text):
                    await session.dispatch("MESSAGE_UPDATE", message(id: placeholder ?? snowflake(), author: "wmq-bot", bot: true, content: text,
                                                                     replyTo: questionID))
                }
            }
        }
        for token in CannedReply.tokens(of: CannedReply.reply(to: question), length: configuration.tokenLength) {
            throttle.receive(token, at: seconds())
            await deliver(throttle.tick(at: seconds()))
            try? await Task.sleep(for: configuration.tokenInterval)
        }
        while let due = throttle.due, !throttle.pending.isEmpty, due - seconds() < 0.001 {
            await deliver(throttle.tick(at: seconds()))
        }
        await deliver(throttle.complete())
    }

    private func message(id: String, author: String, bot: Bool, content: String, replyTo: String? = nil) -> JSONValue {
        var members: [JSONMember] = [
            JSONMember(key: "id", value: .string(id)), JSONMember(key: "channel_id", value: .string(configuration.channelID)),
            JSONMember(key: "author", value: .members(["id": .string(bot ? "1000" : "2000"), "username": .string(author), "bot": .bool(bot)])),
            JSONMember(key: "content", value: .string(content)),
            JSONMember(key: "timestamp", value: .string(ISO8601DateFormatter().string(from: Date()))),
        ]
        if let replyTo {
            members.append(JSONMember(key: "message_reference", value: .members(["message_id": .string(replyTo)])))
        }
        return .object(members)
    }

    private func snowflake() -> String {
        state.withLockedValue { state in
            state.nextSnowflake += 1
            return String(state.nextSnowflake)
        }
    }

    static func query(of uri: String) -> [String: String] {
        guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
        var out: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            out[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return out
    }

    private func serve(_ frames: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, channel: any Channel, query: [String: String]) async {
        let session = GatewaySession(channel: channel, zlibStream: query["compress"] == "zlib-stream", configuration: configuration,
                                     sessionID: snowflake())
        let key = ObjectIdentifier(channel)
        state.withLockedValue { $0.sessions[key] = session }
        defer { state.withLockedValue { _ = $0.sessions.removeValue(forKey: key) } }
        if let encoding = query["encoding"], encoding != "json" {
            await session.close(code: 4002, reason: "wmq-mock speaks encoding=json only")
            return
        }
        await session.hello()
        let watchdog = Task { await session.watchHeartbeats() }
        defer { watchdog.cancel() }
        var messages = WebSocketFrameMessages()
        try? await frames.executeThenClose { inbound, _ in
            for try await frame in inbound {
                switch frame.opcode {
                case .text, .binary, .continuation:
                    guard let message = messages.add(frame) else { continue }
                    if await !session.received(message) { return }
                case .ping:
                    channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData), promise: nil)
                case .connectionClose:
                    return
                default:
                    continue
                }
            }
        }
        logger.debug("Discord gateway connection ended")
    }
}

/// One gateway connection: its sequence numbers, identification, heartbeats and zlib stream.
private actor GatewaySession {
    let channel: any Channel
    let configuration: DiscordGatewayMock.Configuration
    let sessionID: String
    private let compressor: ZlibStreamWriter?
    private(set) var identified = false
    private var sequence: Int64 = 0
    private var lastHeartbeat = ContinuousClock.now
    private var closed = false

    init(channel: any Channel, zlibStream: Bool, configuration: DiscordGatewayMock.Configuration, sessionID: String) {
        self.channel = channel
        self.configuration = configuration
        self.sessionID = sessionID
        compressor = zlibStream ? try? ZlibStreamWriter() : nil
    }

    func hello() {
        send(op: 10, d: .members(["heartbeat_interval": .integer(Int64(configuration.heartbeatInterval / .milliseconds(1)))]))
    }

    func dispatch(_ event: String, _ data: JSONValue) {
        sequence += 1
        send(op: 0, d: data, s: sequence, t: event)
    }

    /// Handles a client message; false once the connection is closed.
    func received(_ bytes: ByteBuffer) async -> Bool {
        guard let json = try? JSONReader.parse(bytes), case .number? = json["op"], let op = json["op"]?.intValue else {
            await close(code: 4002, reason: "Error while decoding payload.")
            return false
        }
        let d = json["d"] ?? .null
        switch op {
        case 1:
            lastHeartbeat = .now
            send(op: 11, d: .null)
        case 2:
            if identified {
                await close(code: 4005, reason: "Already authenticated.")
                return false
            }
            if let token = configuration.token, d["token"]?.stringValue != token {
                await close(code: 4004, reason: "Authentication failed.")
                return false
            }
            identified = true
            dispatch("READY", .members([
                "v": .integer(10), "user": .members(["id": .string("1000"), "username": .string("wmq-bot"), "bot": .bool(true)]),
                "session_id": .string(sessionID), "resume_gateway_url": .string("ws://\(channel.localAddress?.ipAddress ?? "127.0.0.1"):\(channel.localAddress?.port ?? 0)"),
                "guilds": .array([]),
            ]))
        case 6:
            identified = true
            dispatch("RESUMED", .null)
        case 3, 4, 8:
            guard identified else {
                await close(code: 4003, reason: "Not authenticated.")
                return false
            }
        default:
            await close(code: 4001, reason: "Unknown opcode.")
            return false
        }
        return true
    }

    /// Closes with 4009 when no heartbeat came within 1.5 intervals.
    func watchHeartbeats() async {
        let allowed = configuration.heartbeatInterval * 1.5
        while !Task.isCancelled && !closed {
            try? await Task.sleep(for: min(configuration.heartbeatInterval / 4, .milliseconds(250)))
            if ContinuousClock.now - lastHeartbeat > allowed {
                await close(code: 4009, reason: "Session timed out.")
                return
            }
        }
    }

    func close(code: UInt16, reason: String) async {
        guard !closed else { return }
        closed = true
        var data = channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.writeInteger(code)
        data.writeString(reason)
        try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).get()
        try? await channel.close()
    }

    private func send(op: Int, d: JSONValue, s: Int64? = nil, t: String? = nil) {
        guard !closed else { return }
        let frame = JSONValue.object([
            JSONMember(key: "op", value: .integer(op)), JSONMember(key: "d", value: d),
            JSONMember(key: "s", value: s.map { .integer($0) } ?? .null), JSONMember(key: "t", value: t.map { .string($0) } ?? .null),
        ])
        let text = ByteBuffer(string: frame.description)
        guard let compressor else {
            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: text), promise: nil)
            return
        }
        // One zlib stream for the connection; each message a piece ending with a sync flush (00 00 FF FF).
        guard let compressed = try? compressor.write(text) else { return }
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, data: compressed), promise: nil)
    }
}
