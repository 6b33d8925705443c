// The client side of the WebSocket conformance run (Tools/autobahn --client): an echo client
// on WorksClient's transport, the one every live client of wmq uses (WorksClient, OneBotClient,
// wmq-replay drive and check, the capture proxy's upstream), with its protocol guard. The
// Autobahn TestSuite's fuzzing server plays each case against it; the client sends every
// message back as it came.
//
//   wmq-autobahn-client ws://127.0.0.1:PORT [AGENT]
import Foundation
import LiveWebSocket
import NIOCore
import NIOPosix
import NIOWebSocket
import WorksClient

@main
enum AutobahnClient {
    static func main() async {
        let arguments = CommandLine.arguments.dropFirst()
        guard let base = arguments.first else {
            FileHandle.standardError.write(Data("usage: wmq-autobahn-client ws://HOST:PORT [AGENT]\n".utf8))
            exit(2)
        }
        let agent = arguments.dropFirst().first ?? "wmq-client"
        let group = MultiThreadedEventLoopGroup.singleton
        do {
            let count = Int(try await firstText(base + "/getCaseCount", group: group)) ?? 0
            for number in 1...max(count, 1) where count > 0 {
                await echo(base + "/runCase?case=\(number)&agent=\(agent)", group: group)
            }
            _ = try? await firstText(base + "/updateReports?agent=\(agent)", group: group)
            print("wmq-autobahn-client: \(count) cases played")
        } catch {
            FileHandle.standardError.write(Data("wmq-autobahn-client: \(error)\n".utf8))
            exit(1)
        }
    }

    static func connect(_ url: String, group: any EventLoopGroup) async throws -> WebSocketTransport {
        // No subprotocol and no browser looks: the suite's server offers none.
        var settings = WebSocketSettings(url: try WebSocketURL(url))
        settings.subprotocol = nil
        settings.origin = nil
        // The suite's largest messages are 16 MiB, some in one frame (9.1.6, 9.3.9).
        settings.maximumFrameSize = 16 << 20
        return try await WebSocketTransport.connect(settings, group: group, tap: nil,
                                                    guarding: .init(role: .client, assemblesMessages: true))
    }

    /// The first text message of a connection (the case count), then the connection's end.
    static func firstText(_ url: String, group: any EventLoopGroup) async throws -> String {
        let transport = try await connect(url, group: group)
        var text = ""
        try await transport.frames.executeThenClose { inbound, _ in
            for try await frame in inbound {
                if frame.opcode == .text { text = String(buffer: frame.unmaskedData) }
                if frame.opcode == .connectionClose { break }
            }
        }
        return text
    }

    /// One case: every message back as it came, until the connection ends.
    static func echo(_ url: String, group: any EventLoopGroup) async {
        guard let transport = try? await connect(url, group: group) else { return }
        try? await transport.frames.executeThenClose { inbound, outbound in
            for try await frame in inbound {
                switch frame.opcode {
                case .text, .binary:
                    try await outbound.write(WebSocketFrame(fin: true, opcode: frame.opcode, maskKey: .random(), data: frame.unmaskedData))
                case .connectionClose:
                    return  // answered by the guard
                default:
                    continue
                }
            }
        }
    }
}
