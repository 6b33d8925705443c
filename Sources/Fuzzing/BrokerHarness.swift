import Broker
import MQTTWire
import NIOCore

/// The broker's session state machine (`BrokerCore`, the core of `wmq-mock`) driven by a
/// program the fuzzer writes: connections open and close, bytes arrive on them (decoded by the
/// MQTT decoder the mock uses, so any packet can come, valid or not), time passes, the server
/// publishes, pushes and kicks. Oracles: nothing is ever sent to a connection that is not
/// open; every packet the broker sends is accepted by the encoder and decodes back equal;
/// no session holds more messages in flight or queued than configured.
enum BrokerHarness {
    static let configuration = BrokerCore.Configuration(
        maximumInflight: 3, maximumQueued: 5, maximumClientIDLength: 16, maximumPayloadSize: 256, answersPing: true,
        redeliveryInterval: .seconds(1), connectionTimeout: .seconds(2), topicAliasMaximum: 4, dynamicFilters: true)

    static let topics = ["a", "a/b", "chat/room", "$SYS/x", "notification"]

    static let broker = FuzzTarget(
        name: "broker", summary: "wmq-mock's broker state machine driven by connections, bytes, time and server actions",
        maximumInputLength: 4096
    ) { input throws(OracleViolation) in
        var program = InputCursor(input)
        var core = BrokerCore(configuration: configuration)
        let start = ContinuousClock.now
        var now = start
        var open: [Int: (decoder: MQTTDecoder, version: ProtocolVersion)] = [:]
        var steps = 0

        func check(_ actions: [BrokerCore.Action]) throws(OracleViolation) {
            for action in actions {
                switch action {
                case .send(let connection, let packet):
                    guard let state = open[connection] else {
                        throw OracleViolation(target: "broker", oracle: "sends go to open connections",
                                              detail: "\(packet.type) to closed connection \(connection)")
                    }
                    let bytes: ByteBuffer
                    do {
                        bytes = try MQTTEncoder(version: state.version).encode(packet)
                    } catch {
                        throw OracleViolation(target: "broker", oracle: "the broker sends packets its encoder accepts",
                                              detail: "\(packet) in \(state.version): \(error)")
                    }
                    guard let back = try? MQTTDecoder.decodePacket(bytes, version: state.version), back == packet else {
                        throw OracleViolation(target: "broker", oracle: "what the broker sends decodes back equal",
                                              detail: "\(packet) in \(state.version)")
                    }
                case .close(let connection, _):
                    open[connection] = nil
                }
            }
            for client in core.connectedClients {
                guard let pending = core.pending(of: client) else { continue }
                if pending.inflight > configuration.maximumInflight || pending.queued > configuration.maximumQueued {
                    throw OracleViolation(target: "broker", oracle: "in-flight and queued messages stay within their limits",
                                          detail: "\(client): \(pending)")
                }
            }
        }

        while program.index < input.count && steps < 512 {
            steps += 1
            let operation = program.byte()
            let connection = Int(program.byte() % 4) + 1
            switch operation % 7 {
            case 0:  // a connection opens
                guard open[connection] == nil else { continue }
                let accepting: BrokerCore.AcceptedVersions = [.any, .version3, .version5][Int(program.byte() % 3)]
                open[connection] = (MQTTDecoder(configuration: .init(maximumPacketSize: configuration.maximumPacketSize)), .v3_1_1)
                core.connectionOpened(connection, now: now, accepting: accepting)
            case 1, 2:  // bytes arrive on it
                guard var state = open[connection] else { continue }
                let length = Int(program.byte())
                var chunk: [UInt8] = []
                for _ in 0..<length where program.index < input.count { chunk.append(program.byte()) }
                state.decoder.append(contentsOf: chunk)
                open[connection] = state
                while open[connection] != nil {
                    guard var current = open[connection] else { break }
                    let packet: MQTTPacket?
                    do throws(MQTTWireError) {
                        packet = try current.decoder.next()
                    } catch {
                        // As the mock does: tell a 5.0 client why, then the connection is gone.
                        let actions = core.violation(on: connection, code: BrokerCore.reasonCode(for: error), reason: error.reason, now: now)
                        try check(actions)
                        open[connection] = nil
                        try check(core.connectionClosed(connection, now: now))
                        break
                    }
                    guard let packet else { break }
                    let actions = core.received(packet, from: connection, now: now)
                    // As the mock does: the version the core fixed with the first CONNECT.
                    if let version = core.protocolVersion(on: connection) { current.version = version }
                    open[connection] = current
                    try check(actions)
                }
            case 3:  // the connection is lost or closed by the client
                guard open[connection] != nil else { continue }
                open[connection] = nil
                try check(core.connectionClosed(connection, now: now))
            case 4:  // time passes
                now += .milliseconds(Int64(program.byte()) * 50)
                try check(core.tick(now: now))
            case 5:  // the server publishes
                let flags = program.byte()
                let topic = topics[Int(flags % UInt8(topics.count))]
                let qos = QoS(rawValue: (flags >> 3) % 3) ?? .atMostOnce
                let payload = ByteBuffer(bytes: [UInt8](repeating: flags, count: Int(program.byte() % 32)))
                let publish = PublishPacket(qos: qos, retain: flags & 0x80 != 0, topicName: topic, payload: payload)
                try check(core.publish(publish, now: now))
            default:  // the admin API pushes to, or kicks, a connected client
                let clients = core.connectedClients.sorted()
                guard !clients.isEmpty else { continue }
                let choice = program.byte()
                let client = clients[Int(choice) % clients.count]
                if choice & 0x80 != 0 {
                    try check(core.kick(client, now: now))
                } else {
                    let push = PublishPacket(qos: .atLeastOnce, topicName: "notification", payload: ByteBuffer(string: "{}"))
                    try check(core.push(push, to: client, now: now))
                }
            }
        }
    }

    /// Programs that reach the interesting states: a 3.1.1 and a 5.0 client connecting,
    /// subscribing, publishing at every QoS, acknowledging, going away and coming back.
    static func seeds() -> [[UInt8]] {
        func packet(_ packet: MQTTPacket, _ version: ProtocolVersion) -> [UInt8] {
            guard let bytes = try? MQTTEncoder(version: version).encode(packet) else { return [] }
            return Array(bytes.readableBytesView)
        }
        func send(_ connection: UInt8, _ bytes: [UInt8]) -> [UInt8] { [1, connection, UInt8(min(bytes.count, 255))] + bytes.prefix(255) }
        var seeds: [[UInt8]] = []
        for version in [ProtocolVersion.v3_1_1, .v5] {
            let properties: MQTTProperties = version == .v5 ? [.sessionExpiryInterval(30), .receiveMaximum(2)] : []
            var program: [UInt8] = [0, 0, 0, 0, 1, 0]  // connections 1 and 2 open
            program += send(0, packet(.connect(ConnectPacket(protocolVersion: version, cleanStart: false, clientIdentifier: "sub",
                                                             will: .init(topic: "a", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce),
                                                             properties: properties)), version))
            program += send(0, packet(.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [
                .init(topicFilter: "a/#", qos: .exactlyOnce), .init(topicFilter: "+/b", qos: .atLeastOnce, noLocal: version == .v5)])), version))
            program += send(1, packet(.connect(ConnectPacket(protocolVersion: version, clientIdentifier: "pub")), version))
            for qos in QoS.allCases {
                var publish = PublishPacket(qos: qos, retain: qos == .atLeastOnce, topicName: "a/b",
                                            packetIdentifier: qos == .atMostOnce ? nil : UInt16(qos.rawValue) + 10,
                                            payload: ByteBuffer(string: "m\(qos.rawValue)"))
                if version == .v5 { publish.properties = [.topicAlias(1), .messageExpiryInterval(5)] }
                program += send(1, packet(.publish(publish), version))
            }
            program += send(1, packet(.pubrel(.init(packetIdentifier: 12)), version))
            program += send(0, packet(.puback(.init(packetIdentifier: 1)), version))
            program += send(0, packet(.pubrec(.init(packetIdentifier: 2)), version))
            program += [4, 0, 30, 5, 0, 0x89, 8, 6, 0, 1]  // time, a server publish, a push
            program += [3, 0, 4, 0, 40, 0, 0, 0]  // connection 1 lost, time, reopened
            program += send(0, packet(.connect(ConnectPacket(protocolVersion: version, cleanStart: false, clientIdentifier: "sub",
                                                             properties: properties)), version))
            program += send(0, packet(.pingreq, version)) + send(0, packet(.disconnect(DisconnectPacket()), version))
            seeds.append(program)
        }
        return seeds
    }
}
