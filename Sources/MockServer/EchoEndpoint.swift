public import LiveWebSocket
public import Logging
public import NIOCore
import NIOConcurrencyHelpers
public import NIOPosix
import NIOWebSocket

/// An RFC 6455 echo endpoint (`wmq-mock --echo HOST:PORT`, any path, no subprotocol needed):
/// every message comes back as it came, text as text and binary as binary. It is there for
/// the conformance run: the Autobahn TestSuite's echo cases (1.*, 5.*, 6.*, 9.*) test the live
/// transport every endpoint shares, its ``WebSocketProtocolGuard`` included, which the MQTT and
/// JSON endpoints cannot show since they do not echo.
public final class EchoEndpoint: Sendable {
    private let group: any EventLoopGroup
    private let logger: Logger
    private let listeners = NIOLockedValueBox<[any Channel]>([])
    /// The largest message echoed (the suite's largest is 16 MiB).
    public static let maximumMessageSize = 16 << 20

    public init(logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.logger = logger
        self.group = group
    }

    /// Starts listening on `host`:`port` (0 asks for a free one); returns the port bound.
    /// `access` says which browser pages and host names are served (by default the
    /// endpoint's own page only, by its addresses and localhost).
    public func listen(host: String, port: Int, access: BrowserAccess = .standard) async throws -> Int {
        let channel = try await JSONSocketListener.bind(
            host: host, port: port, group: group, maximumFrameSize: Self.maximumMessageSize,
            guarding: .init(assemblesMessages: true, maximumMessageSize: Self.maximumMessageSize), access: access,
            accepts: { _ in true },
            serve: { frames, _, _ in await Self.echo(frames) })
        listeners.withLockedValue { $0.append(channel) }
        return channel.localAddress?.port ?? port
    }

    private static func echo(_ frames: JSONSocketListener.Frames) async {
        try? await frames.executeThenClose { inbound, outbound in
            for try await frame in inbound {
                switch frame.opcode {
                case .text, .binary:
                    try await outbound.write(WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData))
                case .connectionClose:
                    return  // answered by the guard, which ends the connection
                default:
                    continue
                }
            }
        }
    }

    public func stop() async {
        for channel in listeners.withLockedValue({ $0 }) { try? await channel.close() }
    }
}
