import Dialects
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

/// CocoroCore's chat socket (docs/protocols.md §5): `ws://HOST:PORT/ws/chat/{client_id}`.
/// A `{"action": "chat", "session_id", "request": {"query", …}}` is answered by a canned reply
/// streamed as the real server streams it: `status` "2" (generation started), `text` pieces cut
/// by ``SentenceBuffer`` (80 characters, then up to the last sentence end; a forced flush 2 s
/// after the last send, polled every 0.1 s; the rest before `end`), `time`, then `end` with the
/// whole text. A malformed request gets `error` with code `PROCESSING_ERROR`.
public final class CocoroMock: Sendable {
    public struct Configuration: Sendable {
        /// Characters per generated token, and the pause between tokens.
        public var tokenLength: Int
        public var tokenInterval: Duration

        public init(tokenLength: Int = 4, tokenInterval: Duration = .milliseconds(20)) {
            self.tokenLength = tokenLength
            self.tokenInterval = tokenInterval
        }
    }

    public let configuration: Configuration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let listeners = NIOLockedValueBox<[any Channel]>([])

    public init(configuration: Configuration = .init(), logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.logger = logger
        self.group = group
    }

    /// The reply the mock gives to `query`: Japanese for a Japanese question, English otherwise.
    public static func reply(to query: String) -> String { CannedReply.reply(to: query) }

    /// Starts listening on `host`:`port` (0 asks for a free one); returns the port bound.
    /// `access` says which browser pages and host names are served (by default the
    /// endpoint's own page only, by its addresses and localhost).
    public func listen(host: String, port: Int, access: BrowserAccess = .standard) async throws -> Int {
        let channel = try await JSONSocketListener.bind(
            host: host, port: port, group: group, maximumFrameSize: 16 << 20, access: access,
            accepts: { head in
                let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
                return path.hasPrefix("/ws/chat/") && path.count > "/ws/chat/".count
            },
            serve: { frames, channel, _ in await self.serve(frames, channel: channel) })
        listeners.withLockedValue { $0.append(channel) }
        return channel.localAddress?.port ?? port
    }

    public func stop() async {
        for channel in listeners.withLockedValue({ $0 }) { try? await channel.close() }
    }

    private func serve(_ frames: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, channel: any Channel) async {
        try? await frames.executeThenClose { inbound, _ in
            for try await frame in inbound {
                guard frame.opcode == .text || frame.opcode == .binary else {
                    if frame.opcode == .connectionClose { break }
                    continue
                }
                let json = try? JSONReader.parse(frame.unmaskedData)
                let session = json?["session_id"]?.stringValue ?? ""
                guard let json, json["action"]?.stringValue == "chat", let query = json["request"]?["query"]?.stringValue else {
                    send(["session_id": .string(session), "type": .string("error"),
                          "data": .object([JSONMember(key: "message", value: .string("a chat request is {\"action\": \"chat\", \"session_id\", \"request\": {\"query\"}}")),
                                           JSONMember(key: "code", value: .string("PROCESSING_ERROR"))])], on: channel)
                    continue
                }
                await stream(Self.reply(to: query), session: session, on: channel)
            }
        }
    }

    /// The reply token by token through the sentence buffer, as the server streams.
    private func stream(_ reply: String, session: String, on channel: any Channel) async {
        let start = ContinuousClock.now
        func seconds() -> Double { (ContinuousClock.now - start) / .seconds(1) }
        send(["session_id": .string(session), "type": .string("status"), "data": .string("2")], on: channel)
        var buffer = SentenceBuffer(start: 0)
        func text(_ content: String) {
            send(["session_id": .string(session), "type": .string("text"),
                  "data": .object([JSONMember(key: "content", value: .string(content)), JSONMember(key: "is_incremental", value: .bool(true))])],
                 on: channel)
        }
        let tokens = CannedReply.tokens(of: reply, length: configuration.tokenLength)
        for token in tokens {
            if let out = buffer.poll(at: seconds()) { text(out) }
            if let out = buffer.append(token, at: seconds()) { text(out) }
            try? await Task.sleep(for: configuration.tokenInterval)
        }
        if let out = buffer.finish() { text(out) }
        let total = String(format: "%.3f", seconds())
        send(["session_id": .string(session), "type": .string("time"),
              "data": .object([JSONMember(key: "total_time", value: .number(total)), JSONMember(key: "speed_improvement", value: .number("1.0"))])],
             on: channel)
        send(["session_id": .string(session), "type": .string("end"),
              "data": .object([JSONMember(key: "total_tokens", value: .integer(tokens.count)), JSONMember(key: "final_text", value: .string(reply))])],
             on: channel)
        logger.debug("CocoroCore reply streamed", metadata: ["session": "\(session)", "tokens": "\(tokens.count)"])
    }

    private func send(_ members: KeyValuePairs<String, JSONValue>, on channel: any Channel) {
        let text = JSONValue.object(members.map { JSONMember(key: $0.key, value: $0.value) }).description
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)), promise: nil)
    }
}
