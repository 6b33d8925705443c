public import Dialects
import Foundation
public import Logging
public import NIOCore
public import NIOPosix
import NIOWebSocket
import WebSocketWire
public import WorksClient

/// A OneBot v11 client with the features of the OneBot seed's `WebSocketClient` (docs/protocols.md §2):
/// it connects to `ws://127.0.0.1:8000/ws/`, sends the lifecycle `connect` event at once (the
/// seed's server closes a connection that has not within 1 s), a heartbeat every 30 s, and
/// reconnects every 5 s after a lost connection, forever or up to a number of attempts. Callbacks
/// see every message, the connection and its loss, and errors; ``sendText(_:type:targetID:groupID:)``
/// sends the seed's text message.
///
/// It also speaks to OneBot SDKs in the role of an implementation on a reverse WebSocket:
/// `X-Self-ID` and `X-Client-Role: Universal` go with the upgrade, `Authorization: Bearer`
/// with a token, and the SDK's API calls (`send_msg`, …) are answered with their `echo`.
public actor OneBotClient {
    public struct Configuration: Sendable {
        public var url: WebSocketURL
        /// The bot's id: `self_id` of every event, `X-Self-ID` of the upgrade.
        public var botID: Int64
        /// The pause before each new attempt after a lost or failed connection.
        public var reconnectInterval: Duration
        /// Attempts after a loss before ``run()`` returns; 0 tries forever (the seed's default).
        public var maximumReconnectAttempts: Int
        public var heartbeatInterval: Duration
        /// Sent as `Authorization: Bearer`; a secret, never logged.
        public var accessToken: String?
        /// `X-Client-Role` (reverse WebSocket); nil leaves the reverse-WebSocket headers out.
        public var clientRole: String?
        /// Whether API calls from the server are answered (`ok`, with a message id for `send_*`).
        public var answersCalls: Bool
        public var tls: TLSSettings
        public var connectTimeout: Duration

        public init(url: WebSocketURL, botID: Int64 = 12345, reconnectInterval: Duration = .seconds(5),
                    maximumReconnectAttempts: Int = 0, heartbeatInterval: Duration = .seconds(30), accessToken: String? = nil,
                    clientRole: String? = "Universal", answersCalls: Bool = true, tls: TLSSettings = TLSSettings(),
                    connectTimeout: Duration = .seconds(10)) {
            self.url = url
            self.botID = botID
            self.reconnectInterval = reconnectInterval
            self.maximumReconnectAttempts = max(0, maximumReconnectAttempts)
            self.heartbeatInterval = heartbeatInterval
            self.accessToken = accessToken
            self.clientRole = clientRole
            self.answersCalls = answersCalls
            self.tls = tls
            self.connectTimeout = connectTimeout
        }

        /// The seed's endpoint.
        public static let defaultURL = "ws://127.0.0.1:8000/ws/"
    }

    public typealias MessageCallback = @Sendable (JSONValue) async -> Void
    public typealias ConnectCallback = @Sendable () async -> Void
    public typealias DisconnectCallback = @Sendable (WorksClientError) async -> Void
    public typealias ErrorCallback = @Sendable (WorksClientError) async -> Void

    public let configuration: Configuration
    private let logger: Logger
    private let group: any EventLoopGroup
    /// Sees every byte of every connection (the live view, a recorder).
    private let tap: (any ByteTap)?
    private var transport: WebSocketTransport?
    private var stopping = false
    private var messageCallback: MessageCallback?
    private var connectCallback: ConnectCallback?
    private var disconnectCallback: DisconnectCallback?
    private var errorCallback: ErrorCallback?
    private var lastMessageID: Int64 = 0
    /// Connections made so far (for tests and logs).
    public private(set) var connections = 0

    /// Pseudonyms for secrets in log lines, under a key of this process.
    static let logRedactor = Redactor.random()

    public init(configuration: Configuration, logger: Logger = Logger(label: "wmq.onebot"), tap: (any ByteTap)? = nil,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.logger = logger
        self.tap = tap
        self.group = group
    }

    // MARK: Callbacks (the seed's on_message, on_connect, on_disconnect, on_error)

    public func onMessage(_ callback: @escaping MessageCallback) { messageCallback = callback }
    public func onConnect(_ callback: @escaping ConnectCallback) { connectCallback = callback }
    public func onDisconnect(_ callback: @escaping DisconnectCallback) { disconnectCallback = callback }
    public func onError(_ callback: @escaping ErrorCallback) { errorCallback = callback }

    public var isConnected: Bool { transport != nil }

    // MARK: Running

    /// Connects, serves the connection, and reconnects after each loss every
    /// `reconnectInterval` until ``disconnect()`` or the attempts are used up. Returns the error
    /// that ended it (nil after ``disconnect()``).
    @discardableResult
    public func run() async -> WorksClientError? {
        stopping = false
        // The seed's fixed interval: a backoff whose delay never grows, without jitter.
        var backoff = ReconnectBackoff(policy: ReconnectPolicy(
            initialDelay: configuration.reconnectInterval, maximumDelay: configuration.reconnectInterval, jitter: 0,
            resetAfter: .zero, maximumAttempts: configuration.maximumReconnectAttempts))
        var generator = SystemRandomNumberGenerator()
        while !stopping && !Task.isCancelled {
            var connectedFor: Duration?
            var ending: WorksClientError
            do {
                let started = ContinuousClock.now
                try await connect()
                ending = await serve()
                connectedFor = ContinuousClock.now - started
            } catch {
                ending = error
                await errorCallback?(error)
            }
            if stopping { return nil }
            guard ending.isRetryable, let delay = backoff.nextDelay(connectedFor: connectedFor, using: &generator) else {
                logger.warning("OneBot client gave up", metadata: ["reason": "\(ending.reason)", "attempts": "\(backoff.attempts)"])
                return ending
            }
            logger.info("reconnecting", metadata: ["in": "\(delay)", "attempt": "\(backoff.attempts)"])
            try? await Task.sleep(for: delay)
        }
        return nil
    }

    /// Closes the connection (1000) and ends ``run()``.
    public func disconnect() async {
        stopping = true
        if let transport {
            self.transport = nil
            await transport.close()
        }
    }

    /// Sends a message as one text frame.
    public func sendMessage(_ message: JSONValue) async throws(WorksClientError) {
        guard let transport else { throw WorksClientError(.connection, "not connected") }
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: message.description))
        do {
            try await transport.channel.writeAndFlush(frame).get()
        } catch {
            throw WorksClientError(.connection, "cannot send: \(error)")
        }
    }

    /// The seed's `send_text(text, message_type, target_id, group_id)`: a private message to
    /// `targetID` or a group message to `groupID`. Returns the message's id.
    @discardableResult
    public func sendText(_ text: String, type: OneBotMessages.MessageType = .private, targetID: Int64? = nil,
                         groupID: Int64? = nil) async throws(WorksClientError) -> Int64 {
        switch type {
        case .private where targetID == nil: throw WorksClientError(.message, "a private message needs a target id")
        case .group where groupID == nil: throw WorksClientError(.message, "a group message needs a group id")
        default: break
        }
        let id = nextMessageID()
        try await sendMessage(OneBotMessages.textMessage(selfID: configuration.botID, time: Self.now(), messageID: id, type: type,
                                                         text: text, targetID: type == .private ? targetID : nil,
                                                         groupID: type == .group ? groupID : nil))
        return id
    }

    /// The seed's `create_connect_event()`.
    public func connectEvent() -> JSONValue { OneBotMessages.connectEvent(selfID: configuration.botID, time: Self.now()) }

    /// The seed's `create_heartbeat_event()`.
    public func heartbeatEvent() -> JSONValue {
        OneBotMessages.heartbeatEvent(selfID: configuration.botID, time: Self.now(),
                                      interval: Int64(configuration.heartbeatInterval / .milliseconds(1)))
    }

    // MARK: One connection

    private func connect() async throws(WorksClientError) {
        var headers: [(name: String, value: String)] = []
        if let role = configuration.clientRole {
            headers += [("X-Self-ID", String(configuration.botID)), ("X-Client-Role", role)]
        }
        if let token = configuration.accessToken { headers.append(("Authorization", "Bearer \(token)")) }
        let settings = WebSocketSettings(url: configuration.url, origin: nil, userAgent: "wmq-onebot", subprotocol: nil,
                                         extraHeaders: headers, tls: configuration.tls, connectTimeout: configuration.connectTimeout)
        // The URL may carry ?access_token=: logged as a pseudonym.
        logger.info("connecting", metadata: ["url": "\(Self.logRedactor.redact(target: "\(configuration.url)"))"])
        let transport = try await WebSocketTransport.connect(settings, group: group, tap: tap)
        self.transport = transport
        connections += 1
        // The lifecycle event first: the seed's server closes a connection without it after 1 s.
        do {
            try await sendMessage(connectEvent())
        } catch {
            self.transport = nil
            await transport.close()
            throw error
        }
        logger.info("connected", metadata: ["bot": "\(configuration.botID)"])
        await connectCallback?()
    }

    /// Reads the connection until it ends, sending heartbeats meanwhile.
    private func serve() async -> WorksClientError {
        guard let transport else { return WorksClientError(.connection, "not connected") }
        let heartbeat = Task { [weak self, interval = configuration.heartbeatInterval] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard !Task.isCancelled, let self else { return }
                try? await self.sendMessage(await self.heartbeatEvent())
            }
        }
        defer { heartbeat.cancel() }
        var ending = WorksClientError(.connection, "the server closed the connection")
        var messages = WebSocketFrameMessages()
        do {
            try await transport.frames.executeThenClose { inbound, _ in
                frames: for try await frame in inbound {
                    switch frame.opcode {
                    case .text, .binary, .continuation:
                        guard let message = messages.add(frame) else { continue }
                        await received(message)
                    case .ping:
                        transport.channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData), promise: nil)
                    case .connectionClose:
                        var data = frame.unmaskedData
                        let code = data.readInteger(as: UInt16.self)
                        let reason = data.readString(length: data.readableBytes) ?? ""
                        ending = WorksClientError(.connection, "the server closed the connection" + (code.map { " (\($0)\(reason.isEmpty ? "" : " \(reason)"))" } ?? ""))
                        break frames
                    default:
                        continue
                    }
                }
            }
        } catch {
            ending = WorksClientError(.connection, "\(error)")
        }
        if self.transport === transport {
            self.transport = nil
            await transport.close()
        }
        if stopping { ending = WorksClientError(.connection, "closed by the client", isRetryable: false) }
        logger.info("disconnected", metadata: ["reason": "\(ending.reason)"])
        await disconnectCallback?(ending)
        return ending
    }

    private func received(_ bytes: ByteBuffer) async {
        let json: JSONValue
        do {
            json = try JSONReader.parse(bytes)
        } catch {
            await errorCallback?(WorksClientError(.message, "a message that is not JSON: \(error)"))
            return
        }
        if configuration.answersCalls, OneBotMessages.isCall(json) {
            try? await sendMessage(answer(json))
        }
        await messageCallback?(json)
    }

    /// The implementation's answer to an API call.
    private func answer(_ call: JSONValue) -> JSONValue {
        switch call["action"]?.stringValue ?? "" {
        case "send_private_msg", "send_group_msg", "send_msg":
            return OneBotMessages.response(to: call, status: "ok", retcode: 0, data: .members(["message_id": .integer(nextMessageID())]))
        case "get_login_info":
            return OneBotMessages.response(to: call, status: "ok", retcode: 0,
                                           data: .members(["user_id": .integer(configuration.botID), "nickname": .string("wmq")]))
        case "get_status":
            return OneBotMessages.response(to: call, status: "ok", retcode: 0, data: .members(["online": .bool(true), "good": .bool(true)]))
        default:
            return OneBotMessages.response(to: call, status: "failed", retcode: 1404, data: .null)
        }
    }

    /// Message ids from the clock in milliseconds, as the seed's client makes them, never repeated.
    private func nextMessageID() -> Int64 {
        lastMessageID = max(lastMessageID + 1, Int64(Date().timeIntervalSince1970 * 1000))
        return lastMessageID
    }

    private static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }
}
