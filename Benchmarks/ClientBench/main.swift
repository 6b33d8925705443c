import Foundation
import Logging
import MQTTWire
import NIOCore
import NIOPosix
import WorksClient

// The client benchmark (Tools/bench client): how many Works notifications per second
// WorksClient receives, acknowledges, parses, de-duplicates and annotates, and its memory
// while doing so (resident set size read from /proc/self/statm).
//
//   wmq-bench-client broker URL COUNT QOS   from a broker (Tools/bench-client.py starts
//                                            mosquitto and a paho publisher)
//   wmq-bench-client blast COUNT            from an in-process server that writes
//                                            pre-encoded PUBLISH frames as fast as it can:
//                                            the client's own ceiling and memory over COUNT

func residentMegabytes() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

func notification(_ index: Int) -> String {
    #"{"nType":1,"chNo":\#(1000 + index % 7),"chType":2,"chTitle":"wmq bench","loc-key":"REV_MSG","loc-args0":"Publisher","loc-args1":"message \#(index)","fromUserNo":42,"createTime":\#(1_700_000_000_000 + index),"notification-id":"msg.b.\#(index)","token":"not-a-real-token"}"#
}

/// Counts deliveries; prints memory at checkpoints; returns (seconds, RSS samples).
func receive(_ client: WorksClient, count: Int, started: @escaping @Sendable () -> Void) async -> (Double, [(Int, Double)]) {
    var delivered = 0
    var samples: [(Int, Double)] = []
    var start: ContinuousClock.Instant?
    let step = max(count / 10, 1)
    for await event in client.events {
        switch event {
        case .stateChanged(.connected):
            started()
        case .notification(_, let message):
            if start == nil { start = .now }
            precondition(!message.annotation.summary.isEmpty)
            delivered += 1
            if delivered % step == 0 { samples.append((delivered, residentMegabytes())) }
        default:
            continue
        }
        if delivered >= count { break }
    }
    let elapsed = start.map { ContinuousClock.now - $0 } ?? .zero
    return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, samples)
}

func report(_ label: String, count: Int, seconds: Double, samples: [(Int, Double)]) {
    print(String(format: "%@: %d notifications in %.3f s = %.0f notifications/s", label, count, seconds, Double(count) / seconds))
    print("  resident memory (MB) after: " + samples.map { "\($0.0): \(String(format: "%.1f", $0.1))" }.joined(separator: ", "))
}

let quiet = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
let arguments = CommandLine.arguments.dropFirst()

switch arguments.first {
case "broker":
    let rest = Array(arguments.dropFirst())
    guard rest.count == 3, let count = Int(rest[1]), let qos = Int(rest[2]) else {
        FileHandle.standardError.write(Data("usage: wmq-bench-client broker URL COUNT QOS\n".utf8))
        exit(2)
    }
    var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL(rest[0])))
    configuration.mqtt.subscriptions = [.init(topicFilter: "works/#", qos: QoS(rawValue: UInt8(qos)) ?? .atMostOnce)]
    let client = WorksClient(configuration: configuration, logger: quiet)
    let run = Task { try await client.run() }
    let (seconds, samples) = await receive(client, count: count) {
        // Tools/bench-client.py starts the publisher when it reads this line.
        FileHandle.standardOutput.write(Data("ready\n".utf8))
    }
    report("WorksClient from mosquitto (QoS \(qos))", count: count, seconds: seconds, samples: samples)
    await client.disconnect()
    run.cancel()

case "blast":
    guard let count = arguments.dropFirst().first.flatMap({ Int($0) }) else {
        FileHandle.standardError.write(Data("usage: wmq-bench-client blast COUNT\n".utf8))
        exit(2)
    }
    let server = try await BlastServer(count: count)
    var configuration = WorksClientConfiguration(webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(server.port)/wmqtt")))
    configuration.mqtt.pingInterval = .seconds(3600)
    let client = WorksClient(configuration: configuration, logger: quiet)
    let run = Task { try await client.run() }
    let (seconds, samples) = await receive(client, count: count) {}
    report("WorksClient from an in-process server (QoS 1)", count: count, seconds: seconds, samples: samples)
    await client.disconnect()
    run.cancel()

default:
    FileHandle.standardError.write(Data("usage: wmq-bench-client broker URL COUNT QOS | blast COUNT\n".utf8))
    exit(2)
}
