import Foundation
import Logging
import MQTTWire
import NIOCore
import NIOPosix
import WorksClient

// The load generator of Tools/bench mock, run against any MQTT-over-WebSocket broker:
//
//   wmq-bench-mock latency URL BYTES [ROUNDS]   time from PUBLISH to delivery of a BYTES-byte
//                                               message to an idle subscriber (median of ROUNDS)
//   wmq-bench-mock fanout URL SUBSCRIBERS COUNT messages/s delivered to SUBSCRIBERS WebSocket
//                                               subscribers of COUNT QoS 0 messages
//   wmq-bench-mock idle URL CONNECTIONS SECONDS opens CONNECTIONS MQTT sessions, holds them
//                                               SECONDS (the script reads the broker's memory)
//
// Latency and idle clients are WorksClients; the fan-out subscribers are bare readers (WorksClient's
// WebSocket transport and the MQTT decoder, no session logic) so that the generator does not use up
// the machine the broker runs on. Subscriptions are QoS 0 to bench/#.

let quiet = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })

func configuration(_ url: String, id: String, subscribe: Bool) throws -> WorksClientConfiguration {
    var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL(url), maximumFrameSize: 64 << 20))
    configuration.mqtt.clientIdentifier = id
    configuration.mqtt.username = nil
    configuration.mqtt.maximumPacketSize = 64 << 20
    configuration.mqtt.keepAlive = .seconds(600)
    configuration.mqtt.pingInterval = .seconds(3600)
    if subscribe { configuration.mqtt.subscriptions = [.init(topicFilter: "bench/#", qos: .atMostOnce)] }
    configuration.reconnect.maximumAttempts = 1
    return configuration
}

/// Deliveries to every subscriber together: one counter, so that waiting for the total reads
/// one number instead of taking a thousand locks a millisecond on the machine being measured.
final class Deliveries: @unchecked Sendable {
    let lock = NSLock()
    var count = 0
    var lastArrival: ContinuousClock.Instant?

    func record() {
        let now = ContinuousClock.now
        lock.withLock {
            count += 1
            lastArrival = now
        }
    }

    var total: Int { lock.withLock { count } }
    var last: ContinuousClock.Instant? { lock.withLock { lastArrival } }
}

/// A connected subscriber whose deliveries are counted.
final class Subscriber: Sendable {
    let client: WorksClient
    let deliveries: Deliveries

    init(_ url: String, id: String, deliveries: Deliveries = Deliveries()) throws {
        client = WorksClient(configuration: try configuration(url, id: id, subscribe: true), logger: quiet)
        self.deliveries = deliveries
        Task { [client, deliveries] in
            for await event in client.events {
                switch event {
                case .notification, .otherMessage, .readReceipt, .channelMessage: deliveries.record()
                default: continue
                }
            }
        }
    }

    func connect() async throws {
        try await client.connect()
    }

    var delivered: Int { deliveries.total }
}

/// A fan-out subscriber that only reads: WorksClient's WebSocket transport and the MQTT decoder,
/// no session logic, no events, so that the generator spends little of the machine the broker
/// under test runs on (both brokers are measured with it).
final class Reader: Sendable {
    let transport: WebSocketTransport

    static func connect(_ url: String, id: String, deliveries: Deliveries, subscribed: Deliveries) async throws -> Reader {
        let transport = try await WebSocketTransport.connect(WebSocketSettings(url: try WebSocketURL(url), maximumFrameSize: 64 << 20),
                                                             group: MultiThreadedEventLoopGroup.singleton, tap: nil)
        transport.send([.connect(ConnectPacket(keepAlive: 600, clientIdentifier: id)),
                        .subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: "bench/#", qos: .atMostOnce)]))])
        Task {
            try? await transport.frames.executeThenClose { inbound, _ in
                var decoder = MQTTDecoder()
                for try await frame in inbound where frame.opcode == .binary || frame.opcode == .continuation {
                    decoder.append(frame.unmaskedData)
                    while let packet = try decoder.next() {
                        switch packet {
                        case .publish: deliveries.record()
                        case .suback: subscribed.record()
                        default: break
                        }
                    }
                }
            }
        }
        return Reader(transport: transport)
    }

    private init(transport: WebSocketTransport) { self.transport = transport }
}

/// Connects every client, 64 at a time.
func connectAll(_ clients: [WorksClient]) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        var next = 0
        while next < min(64, clients.count) {
            let client = clients[next]
            group.addTask { try await client.connect() }
            next += 1
        }
        while try await group.next() != nil {
            guard next < clients.count else { continue }
            let client = clients[next]
            group.addTask { try await client.connect() }
            next += 1
        }
    }
}

func seconds(_ duration: Duration) -> Double {
    duration / .seconds(1)
}

func waitUntil(_ limit: Duration, _ condition: @Sendable () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}

@main
enum Bench {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.count >= 3 else {
            FileHandle.standardError.write(Data("usage: wmq-bench-mock latency URL BYTES [ROUNDS] | fanout URL SUBSCRIBERS COUNT | idle URL CONNECTIONS SECONDS\n".utf8))
            exit(2)
        }
        let url = arguments[1]

        switch arguments[0] {
        case "latency":
            guard let bytes = Int(arguments[2]) else { exit(2) }
            let rounds = arguments.count > 3 ? Int(arguments[3]) ?? 5 : 5
            let subscriber = try Subscriber(url, id: "bench-subscriber")
            try await subscriber.connect()
            try await Task.sleep(for: .milliseconds(300))
            let publisher = WorksClient(configuration: try configuration(url, id: "bench-publisher", subscribe: false), logger: quiet)
            try await publisher.connect()
            var samples: [Double] = []
            for round in 0..<rounds {
                let before = subscriber.delivered
                let payload = ByteBuffer(repeating: UInt8(ascii: "a") + UInt8(round % 26), count: bytes)
                let start = ContinuousClock.now
                try await publisher.publish(topic: "bench/latency", payload: payload, qos: .atMostOnce)
                guard await waitUntil(.seconds(120), { subscriber.delivered > before }) else {
                    print("latency: no delivery within 120 s"); exit(1)
                }
                samples.append(seconds((subscriber.deliveries.last ?? .now) - start) * 1000)
                try await Task.sleep(for: .milliseconds(200))  // idle again
            }
            samples.sort()
            print(String(format: "latency %d bytes: median %.1f ms (min %.1f, max %.1f, %d rounds)", bytes, samples[samples.count / 2], samples[0], samples[samples.count - 1], rounds))
            await publisher.disconnect()
            await subscriber.client.disconnect()

        case "fanout":
            guard arguments.count >= 4, let subscriberCount = Int(arguments[2]), let count = Int(arguments[3]) else { exit(2) }
            let deliveries = Deliveries()
            let subscribed = Deliveries()
            var readers: [Reader] = []
            for index in 0..<subscriberCount {
                readers.append(try await Reader.connect(url, id: "bench-fanout-\(index)", deliveries: deliveries, subscribed: subscribed))
            }
            guard await waitUntil(.seconds(60), { subscribed.total >= subscriberCount }) else {
                print("fanout: only \(subscribed.total) of \(subscriberCount) subscribers got their SUBACK"); exit(1)
            }
            let publisher = WorksClient(configuration: try configuration(url, id: "bench-fanout-publisher", subscribe: false), logger: quiet)
            try await publisher.connect()
            let payload = ByteBuffer(string: String(repeating: "x", count: 200))
            let start = ContinuousClock.now
            for _ in 0..<count {
                try await publisher.publish(topic: "bench/fanout", payload: payload, qos: .atMostOnce)
            }
            let expected = subscriberCount * count
            let complete = await waitUntil(.seconds(300)) { deliveries.total >= expected }
            let last = deliveries.last ?? .now
            let delivered = deliveries.total
            let elapsed = seconds(last - start)
            print(String(format: "fanout %d subscribers × %d messages: %d of %d delivered in %.2f s = %.0f messages/s%@", subscriberCount, count, delivered, expected, elapsed, Double(delivered) / elapsed, complete ? "" : " (incomplete)"))
            await publisher.disconnect()
            for reader in readers { await reader.transport.close() }

        case "idle":
            guard arguments.count >= 4, let connections = Int(arguments[2]), let hold = Double(arguments[3]) else { exit(2) }
            let clients = try (0..<connections).map {
                WorksClient(configuration: try configuration(url, id: "bench-idle-\($0)", subscribe: false), logger: quiet)
            }
            try await connectAll(clients)
            print("idle \(connections) connected")
            try await Task.sleep(for: .milliseconds(Int(hold * 1000)))
            for client in clients { await client.disconnect() }

        default:
            exit(2)
        }
    }
}
