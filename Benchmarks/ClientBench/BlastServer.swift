import Foundation
import MQTTWire
import NIOCore
import NIOPosix
import WebSocketWire

/// Accepts one WebSocket connection, answers CONNECT, then writes `count` QoS 1 PUBLISH
/// frames of distinct Works notifications, in batches, and reads (ignores) the PUBACKs.
final class BlastServer: Sendable {
    let port: Int
    private let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

    init(count: Int) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child) }
            }
        port = channel.channel.localAddress?.port ?? 0
        let server = channel
        Task {
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    try await connection.executeThenClose { inbound, outbound in
                        var iterator = inbound.makeAsyncIterator()
                        var head = ByteBuffer()
                        var request: HTTPUpgradeRequest?
                        while request == nil, var bytes = try await iterator.next() {
                            head.writeBuffer(&bytes)
                            request = try HTTPHeadParser.parseRequest(&head)
                        }
                        let key = request?.headers.first(name: "Sec-WebSocket-Key") ?? ""
                        try await outbound.write(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(WebSocketHandshake.acceptValue(forKey: key))\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"))
                        _ = try await iterator.next()  // CONNECT (one frame, unread)
                        try await outbound.write(Self.frame(.connack(ConnAckPacket())))
                        let reader = Task { while (try? await iterator.next()) != nil {} }
                        var index = 0
                        while index < count {
                            var batch = ByteBuffer()
                            for _ in 0..<min(500, count - index) {
                                let packet = MQTTPacket.publish(PublishPacket(
                                    qos: .atLeastOnce, topicName: "notification", packetIdentifier: UInt16(index % 65_535 + 1),
                                    payload: ByteBuffer(string: notification(index))))
                                var encoded = try MQTTEncoder().encode(packet)
                                WebSocketFrameWriter.write(.init(fin: true, opcode: .binary, data: encoded), into: &batch)
                                encoded.clear()
                                index += 1
                            }
                            try await outbound.write(batch)
                        }
                        _ = await reader.result
                    }
                }
            }
        }
    }

    static func frame(_ packet: MQTTPacket) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        WebSocketFrameWriter.write(.init(fin: true, opcode: .binary, data: try MQTTEncoder().encode(packet)), into: &buffer)
        return buffer
    }
}
