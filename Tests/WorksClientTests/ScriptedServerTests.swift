import Foundation
import Logging
import MQTTWire
import NIOCore
import NIOPosix
import NIOWebSocket
import TestSupport
import Testing
import WebSocketWire
import WorksClient

/// A WebSocket server on 127.0.0.1 that plays a script per connection, for what no real
/// broker does on demand: refuse the upgrade with 401, send a malformed packet, close the
/// WebSocket, never answer PINGREQ. It parses with the project's passive codecs.
final class ScriptedServer: Sendable {
    typealias Script = @Sendable (ScriptedConnection) async throws -> Void
    let port: Int
    private let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
    private let task: Task<Void, Never>

    init(script: @escaping Script) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child) }
            }
        port = channel.channel.localAddress?.port ?? 0
        let server = channel
        task = Task {
            try? await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    var number = 0
                    for try await connection in connections {
                        number += 1
                        let index = number
                        group.addTask {
                            try? await connection.executeThenClose { inbound, outbound in
                                try await script(ScriptedConnection(index: index, inbound: inbound, outbound: outbound))
                            }
                        }
                    }
                }
            }
        }
    }

    func stop() async {
        try? await channel.channel.close()
        task.cancel()
    }
}

/// One connection of a ``ScriptedServer``: the script reads the client's packets and writes frames.
final class ScriptedConnection: @unchecked Sendable {
    /// 1 for the first connection the server accepted.
    let index: Int
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var decoder: WebSocketStreamDecoder
    private var mqtt = MQTTDecoder()
    private var pending: [HTTPUpgradeRequest] = []

    init(index: Int, inbound: NIOAsyncChannelInboundStream<ByteBuffer>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) throws {
        self.index = index
        iterator = inbound.makeAsyncIterator()
        self.outbound = outbound
        decoder = try WebSocketStreamDecoder(direction: .clientToServer)
        decoder.reportsFrames = false
    }

    struct Closed: Error {}

    /// Reads until the client's upgrade request is complete.
    func readRequest() async throws -> HTTPUpgradeRequest {
        while pending.isEmpty {
            guard let bytes = try await iterator.next() else { throw Closed() }
            for event in decoder.feed(bytes) {
                switch event {
                case .request(let request): pending.append(request)
                case .message(let message): mqtt.append(message.data)
                default: break
                }
            }
        }
        return pending.removeFirst()
    }

    /// Answers 101 with the accept value and the subprotocol.
    func accept(_ request: HTTPUpgradeRequest, subprotocol: String = "mqtt") async throws {
        let key = request.headers.first(name: "Sec-WebSocket-Key") ?? ""
        try await write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(WebSocketHandshake.acceptValue(forKey: key))\r\nSec-WebSocket-Protocol: \(subprotocol)\r\n\r\n")
    }

    func write(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    /// The next MQTT packet the client sent.
    func readPacket() async throws -> MQTTPacket {
        while true {
            if let packet = try mqtt.next() { return packet }
            guard let bytes = try await iterator.next() else { throw Closed() }
            for case .message(let message) in decoder.feed(bytes) { mqtt.append(message.data) }
        }
    }

    /// Reads until the client closes; returns the packets it sent meanwhile.
    func drain() async -> [MQTTPacket] {
        var packets: [MQTTPacket] = []
        while let packet = try? await readPacket() { packets.append(packet) }
        return packets
    }

    /// Sends one unmasked binary frame holding `bytes`.
    func send(bytes: [UInt8], opcode: WebSocketOpcode = .binary) async throws {
        var buffer = ByteBuffer()
        WebSocketFrameWriter.write(WebSocketFrame(fin: true, opcode: opcode, data: ByteBuffer(bytes: bytes)), into: &buffer)
        try await outbound.write(buffer)
    }

    func send(_ packet: MQTTPacket) async throws {
        try await send(bytes: Array(try MQTTEncoder().encode(packet).readableBytesView))
    }

    /// Reads CONNECT and accepts it.
    func acceptSession() async throws -> ConnectPacket {
        guard case .connect(let connect) = try await readPacket() else { throw Closed() }
        try await send(.connack(ConnAckPacket()))
        return connect
    }
}

@Suite("WorksClient: the seed client's bugs, proven fixed", .timeLimit(.minutes(1)))
struct SeedBugTests {
    func configuration(port: Int, _ change: (inout WorksClientConfiguration) -> Void = { _ in }) throws -> WorksClientConfiguration {
        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/wmqtt")))
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(100), jitter: 0)
        change(&configuration)
        return configuration
    }

    @Test func handshakeCarriesTheWebClientsHeadersAndCookies() async throws {
        let seen = Mailbox<HTTPUpgradeRequest>()
        let server = try await ScriptedServer { connection in
            let request = try await connection.readRequest()
            await seen.put(request)
            try await connection.accept(request)
            _ = try await connection.acceptSession()
            _ = await connection.drain()
        }
        defer { Task { await server.stop() } }
        let client = WorksClient(configuration: try configuration(port: server.port) {
            $0.webSocket.cookies = WorksCookies(header: "WORKS_SES=secret; NEO_SES=other")
        }, logger: .quiet)
        try await client.connect()
        let request = try #require(await seen.take())
        #expect(request.target == "/wmqtt")
        #expect(request.headers.first(name: "Origin") == "https://talk.worksmobile.com")
        #expect(request.headers.first(name: "Sec-WebSocket-Protocol") == "mqtt")
        #expect(request.headers.first(name: "Cookie") == "WORKS_SES=secret; NEO_SES=other")
        #expect(request.headers.first(name: "User-Agent")?.hasPrefix("Mozilla/5.0") == true)
        // A GET without a body has no framing headers (RFC 7230 §3.3.2: SHOULD NOT). Python's
        // websockets (amqtt's WebSocket listener) refuses an upgrade with Content-Length: 0.
        #expect(request.headers.first(name: "Content-Length") == nil)
        #expect(request.headers.first(name: "Transfer-Encoding") == nil)
        await client.disconnect()
    }

    @Test(arguments: [401, 403])
    func upgradeRefusalIsAnAuthenticationErrorAndRunStops(status: Int) async throws {
        let connections = Counter()
        let server = try await ScriptedServer { connection in
            await connections.increment()
            _ = try await connection.readRequest()
            try await connection.write("HTTP/1.1 \(status) Nope\r\nContent-Length: 0\r\n\r\n")
        }
        defer { Task { await server.stop() } }
        let client = WorksClient(configuration: try configuration(port: server.port), logger: .quiet)
        await #expect(throws: WorksClientError(.authentication, "")) { try await client.run() }
        #expect(await connections.value == 1, "an authentication error must not be retried")
    }

    @Test func refusedConnAckIsAnAuthenticationError() async throws {
        let server = try await ScriptedServer { connection in
            try await connection.accept(try await connection.readRequest())
            _ = try await connection.readPacket()
            try await connection.send(.connack(ConnAckPacket(reasonCode: ReasonCode(5))))
            _ = await connection.drain()
        }
        defer { Task { await server.stop() } }
        let client = WorksClient(configuration: try configuration(port: server.port), logger: .quiet)
        await #expect(throws: WorksClientError(.authentication, "")) { try await client.run() }
    }

    // Seed bug: "a server close never ends the keep-alive loop (no reconnect)".
    @Test func serverCloseLeadsToAReconnect() async throws {
        let server = try await ScriptedServer { connection in
            try await connection.accept(try await connection.readRequest())
            _ = try await connection.acceptSession()
            if connection.index == 1 {
                try await connection.send(bytes: [0x03, 0xE9], opcode: .connectionClose)  // 1001 going away
            }
            _ = await connection.drain()
        }
        defer { Task { await server.stop() } }
        let client = WorksClient(configuration: try configuration(port: server.port), logger: .quiet)
        let log = EventLog(client)
        let run = Task { try await client.run() }
        #expect(await log.wait(seconds: 10) { $0.connections >= 2 })
        #expect(await log.errors.contains { $0.reason.contains("1001") })
        await client.disconnect()
        _ = try? await run.value
    }

    // Seed bug: "a packet error escapes unhandled".
    @Test func malformedPacketIsReportedAndTheClientReconnects() async throws {
        let server = try await ScriptedServer { connection in
            try await connection.accept(try await connection.readRequest())
            _ = try await connection.acceptSession()
            if connection.index == 1 {
                try await connection.send(bytes: [0x36, 0x02, 0x00, 0x01])  // PUBLISH with QoS 3
            } else {
                try await connection.send(.publish(PublishPacket(qos: .atLeastOnce, topicName: "n", packetIdentifier: 1,
                                                                 payload: ByteBuffer(string: #"{"nType":1,"loc-args0":"A","loc-args1":"after"}"#))))
            }
            _ = await connection.drain()
        }
        defer { Task { await server.stop() } }
        let client = WorksClient(configuration: try configuration(port: server.port), logger: .quiet)
        let log = EventLog(client)
        let run = Task { try await client.run() }
        #expect(await log.wait(seconds: 10) { $0.texts == ["after"] })
        let errors = await log.errors
        #expect(errors.first?.code == .packet, "\(errors)")
        await client.disconnect()
        _ = try? await run.value
    }

    // Seed bug: "no PINGRESP timeout".
    @Test func requiredPingrespMissingReconnectsOptionalStays() async throws {
        for policy in MQTTClientSession.PingResponsePolicy.allCases {
            let server = try await ScriptedServer { connection in
                try await connection.accept(try await connection.readRequest())
                _ = try await connection.acceptSession()
                _ = await connection.drain()  // never answers PINGREQ
            }
            let client = WorksClient(configuration: try configuration(port: server.port) {
                $0.mqtt.pingInterval = .milliseconds(100)
                $0.mqtt.pingTimeout = .milliseconds(200)
                $0.mqtt.pingResponse = policy
            }, logger: .quiet)
            let log = EventLog(client)
            let run = Task { try await client.run() }
            // Required: a reconnect comes. Optional: a second PINGREQ on the same connection, which
            // follows the first one's missed timeout. Waited for by condition, up to 10 s on a busy
            // machine, not for a fixed time.
            switch policy {
            case .required: _ = await log.wait(seconds: 10) { $0.connections >= 2 }
            case .optional: _ = await log.wait(seconds: 10) { log in log.sent.count { $0 == .pingreq } >= 2 }
            }
            let pings = await log.sent.count { $0 == .pingreq }
            #expect(pings >= (policy == .required ? 1 : 2))
            switch policy {
            case .required:
                #expect(await log.connections >= 2)
                #expect(await log.errors.contains { $0.reason.contains("PINGRESP") })
            case .optional:
                #expect(await log.connections == 1)
                #expect(await log.errors.isEmpty)
            }
            await client.disconnect()
            _ = try? await run.value
            await server.stop()
        }
    }

    @Test func callbacksSeeTheSameEventsInTheSeedsStyle() async throws {
        let server = try await ScriptedServer { connection in
            try await connection.accept(try await connection.readRequest())
            _ = try await connection.acceptSession()
            try await connection.send(.publish(PublishPacket(topicName: "n", payload: ByteBuffer(string: #"{"nType":18,"loc-args0":"B","extras":"{\"stkType\":\"line\",\"pkgId\":\"1\",\"stkId\":\"2\"}","notification-id":"s1"}"#))))
            try await connection.send(bytes: [0x03, 0xE8], opcode: .connectionClose)
            _ = await connection.drain()
        }
        defer { Task { await server.stop() } }
        let seen = Mailbox<[String]>()
        let record = Recorded()
        let client = WorksClient(configuration: try configuration(port: server.port), logger: .quiet)
        await client.onConnect { present in Task { await record.add("connect \(present)") } }
        await client.onMessage { message in Task { await record.add("message \(message.annotation.kind) \(message.annotation.summary)") } }
        await client.onDisconnect { reason in Task { await record.add("disconnect \(reason)") } }
        await client.onError { error in Task { await record.add("error \(error.code)") } }
        let run = Task { try await client.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, await !record.lines.contains(where: { $0.hasPrefix("disconnect") }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        await seen.put(await record.lines)
        await client.disconnect()
        _ = try? await run.value
        let lines = try #require(await seen.take())
        #expect(lines.first == "connect false")
        #expect(lines.contains { $0.hasPrefix("message notification") && $0.contains("sticker") }, "\(lines)")
        #expect(lines.contains("error connection"))
        #expect(lines.contains { $0.hasPrefix("disconnect the server closed the WebSocket with code 1000") }, "\(lines)")
    }

    @Test func qos2FromTheServerGetsPubrecNotPuback() async throws {
        let answers = Mailbox<[MQTTPacket]>()
        let server = try await ScriptedServer { connection in
            try await connection.accept(try await connection.readRequest())
            _ = try await connection.acceptSession()
            try await connection.send(.publish(PublishPacket(qos: .exactlyOnce, topicName: "n", packetIdentifier: 9, payload: ByteBuffer(string: "{}"))))
            let first = try await connection.readPacket()
            try await connection.send(.pubrel(.init(packetIdentifier: 9)))
            let second = try await connection.readPacket()
            await answers.put([first, second])
            _ = await connection.drain()
        }
        defer { Task { await server.stop() } }
        let client = WorksClient(configuration: try configuration(port: server.port), logger: .quiet)
        try await client.connect()
        let packets = try #require(await answers.take())
        #expect(packets == [.pubrec(.init(packetIdentifier: 9)), .pubcomp(.init(packetIdentifier: 9))])
        await client.disconnect()
    }
}

actor Recorded {
    private(set) var lines: [String] = []
    func add(_ line: String) { lines.append(line) }
}

actor Counter {
    private(set) var value = 0
    func increment() { value += 1 }
}

/// One value handed from a server script to the test, waited for with a deadline.
actor Mailbox<Value: Sendable> {
    private var value: Value?
    func put(_ value: Value) { self.value = value }
    func take(seconds: Double = 10) async -> Value? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while value == nil && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return value
    }
}

/// An HTTP CONNECT proxy on 127.0.0.1 that records the targets it was asked for and relays bytes.
final class ConnectProxy: Sendable {
    let port: Int
    let targets = Mailbox<String>()
    private let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

    init() async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child) }
            }
        port = channel.channel.localAddress?.port ?? 0
        let server = channel
        let targets = self.targets
        Task {
            try? await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { try? await Self.relay(connection, targets: targets) }
                    }
                }
            }
        }
    }

    private static func relay(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, targets: Mailbox<String>) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var head = ByteBuffer()
            while head.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) == nil {
                guard var bytes = try await iterator.next() else { return }
                head.writeBuffer(&bytes)
            }
            let text = head.readString(length: head.readableBytes) ?? ""
            let end = text.range(of: "\r\n\r\n")!
            let line = text[..<end.lowerBound].split(separator: "\r\n").first ?? ""
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0] == "CONNECT", let colon = parts[1].lastIndex(of: ":"),
                  let port = Int(parts[1][parts[1].index(after: colon)...]) else {
                try await outbound.write(ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\n\r\n"))
                return
            }
            await targets.put(String(parts[1]))
            let upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: String(parts[1][..<colon]), port: port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            try await outbound.write(ByteBuffer(string: "HTTP/1.1 200 Connection Established\r\n\r\n"))
            let rest = String(text[end.upperBound...])
            try await upstream.executeThenClose { upInbound, upOutbound in
                if !rest.isEmpty { try await upOutbound.write(ByteBuffer(string: rest)) }
                let down = Task { for try await bytes in upInbound { try await outbound.write(bytes) } }
                defer { down.cancel() }
                while let bytes = try await iterator.next() { try await upOutbound.write(bytes) }
            }
        }
    }

    func stop() async {
        try? await channel.channel.close()
    }
}

@Suite("WorksClient through an HTTP proxy", .timeLimit(.minutes(1)))
struct ProxyTests {
    @Test func tunnelsThroughConnectWithCredentials() async throws {
        let server = try await ScriptedServer { connection in
            try await connection.accept(try await connection.readRequest())
            _ = try await connection.acceptSession()
            try await connection.send(.publish(PublishPacket(topicName: "n", payload: ByteBuffer(string: #"{"nType":1,"loc-args0":"A","loc-args1":"via proxy"}"#))))
            _ = await connection.drain()
        }
        defer { Task { await server.stop() } }
        let proxy = try await ConnectProxy()
        defer { Task { await proxy.stop() } }
        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(server.port)/wmqtt")))
        configuration.webSocket.proxy = try HTTPProxy(url: "http://user:pa%20ss@127.0.0.1:\(proxy.port)")
        #expect(configuration.webSocket.proxy?.authorization == "Basic " + Data("user:pa ss".utf8).base64EncodedString())
        let client = WorksClient(configuration: configuration, logger: .quiet)
        let log = EventLog(client)
        try await client.connect()
        #expect(await proxy.targets.take() == "127.0.0.1:\(server.port)")
        #expect(await log.wait(seconds: 10) { $0.texts == ["via proxy"] })
        await client.disconnect()
    }

    @Test func refusedConnectionIsARetryableConnectionError() async throws {
        let configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(try LoopbackPorts.free())/wmqtt")))
        let client = WorksClient(configuration: configuration, logger: .quiet)
        do {
            try await client.connect()
            Issue.record("connected to nothing")
        } catch {
            #expect(error.code == .connection && error.isRetryable)
        }
    }

    @Test func unreachableProxyIsAConnectionError() async throws {
        var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:9/wmqtt")))
        configuration.webSocket.proxy = HTTPProxy(host: "127.0.0.1", port: try LoopbackPorts.free())
        let client = WorksClient(configuration: configuration, logger: .quiet)
        await #expect(throws: WorksClientError(.connection, "")) { try await client.connect() }
    }
}
