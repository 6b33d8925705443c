import Broker
import Capture
import Dialects
#if canImport(Glibc)
import Glibc
import LiveWebSocket
#endif
import LiveClock
import Logging
import MockAgents
import MockFiles
import MQTTWire
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import WebSocketWire

// One connection's life in the broker: opened, its frames or bytes decoded into packets, the
// core's actions performed (delayed acknowledgements, fan-out in batches per event loop), closed;
// the ticker that tells the core time passed.
extension MockBroker {
    func open(_ channel: any Channel, transport: Transport, writer: FrameBytesWriter? = nil,
                      accepting: BrokerCore.AcceptedVersions) -> BrokerCore.ConnectionID {
        nextConnection += 1
        connections[nextConnection] = Connection(channel: channel, transport: transport,
                                                 described: Self.describe(nextConnection, channel), frameWriter: writer)
        // Held-back packets go out as soon as the client reads again.
        let id = nextConnection
        channel.pipeline.addHandler(DrainWatcher { [weak self] in Task { await self?.sendParked(id) } }, position: .first)
            .whenFailure { _ in }
        core.connectionOpened(nextConnection, now: clock.now, accepting: accepting)
        if !viewers.isEmpty { showConnection(nextConnection, opened: true) }
        return nextConnection
    }

    func serveWebSocket(_ frames: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, channel: any Channel,
                                writer: FrameBytesWriter, accepting: BrokerCore.AcceptedVersions) async {
        let id = open(channel, transport: .webSocket, writer: writer, accepting: accepting)
        var decoder = MQTTDecoder(configuration: .init(maximumPacketSize: configuration.core.maximumPacketSize))
        do {
            try await frames.executeThenClose { inbound, _ in
                frames: for try await frame in inbound {
                    // Closed by the broker (a DISCONNECT with its reason went out): what the client
                    // still sends is read and dropped until it closes or the drain ends, so that a
                    // reset does not overtake the reason.
                    if connections[id] == nil { continue }
                    switch frame.opcode {
                    case .binary, .continuation:
                        decoder.append(frame.unmaskedData)
                        do {
                            while let packet = try decoder.next() {
                                received(packet, from: id, size: decoder.lastPacketRange.count)
                                if connections[id] == nil { continue frames }
                            }
                        } catch {
                            // Told (5.0: DISCONNECT 0x81/0x82) while the channel is still open.
                            failed(id, error)
                        }
                    case .text:
                        logger.notice("text frame: MQTT travels in binary frames only", metadata: ["connection": "\(id)"])
                        break frames
                    case .ping:
                        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData), promise: nil)
                    case .connectionClose:
                        var echo = ByteBuffer()
                        if let code = frame.unmaskedData.getInteger(at: frame.unmaskedData.readerIndex, as: UInt16.self) { echo.writeInteger(code) }
                        try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: echo)).get()
                        break frames
                    default:
                        continue
                    }
                }
            }
        } catch {
            failed(id, error)
        }
        closed(id)
    }

    func serveTCP(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, accepting: BrokerCore.AcceptedVersions) async {
        let id = open(connection.channel, transport: .tcp, accepting: accepting)
        var decoder = MQTTDecoder(configuration: .init(maximumPacketSize: configuration.core.maximumPacketSize))
        do {
            try await connection.executeThenClose { inbound, _ in
                bytes: for try await bytes in inbound {
                    // Closed by the broker: drained as on WebSocket.
                    if connections[id] == nil { continue }
                    decoder.append(bytes)
                    do {
                        while let packet = try decoder.next() {
                            received(packet, from: id, size: decoder.lastPacketRange.count)
                            if connections[id] == nil { continue bytes }
                        }
                    } catch {
                        failed(id, error)
                    }
                }
            }
        } catch {
            failed(id, error)
        }
        closed(id)
    }

    func received(_ packet: MQTTPacket, from id: BrokerCore.ConnectionID, size: Int) {
        scenarioSaw(packet, on: id)
        if !viewers.isEmpty { show(packet, on: id, direction: .clientToServer, size: size) }
        let actions = core.received(packet, from: id, now: clock.now)
        // Cached for the write path: the core fixes the version with the first CONNECT.
        if case .connect = packet, let version = core.protocolVersion(on: id) { connections[id]?.version = version }
        perform(actions)
        if configuration.mode == .chat, case .publish(let publish) = packet, connections[id] != nil {
            answerAsAICore(publish)
        }
    }

    /// Chat mode: the AI core's answer to a client's publish, each publish at its time.
    func answerAsAICore(_ publish: PublishPacket) {
        let outgoing = chatAgent.received(topic: publish.topicName, payload: publish.payload, now: Self.epochMilliseconds())
        guard !outgoing.isEmpty else { return }
        let start = clock.now
        Task {
            for item in outgoing {
                let wait = item.after - (self.clock.now - start)
                if wait > .zero { await self.clock.sleep(for: wait) }
                self.publish(item.publishPacket)
            }
        }
    }

    /// Chat mode: the core's retained status, once the first listener is up.
    func announceAICore() {
        guard configuration.mode == .chat, !chatAnnounced else { return }
        chatAnnounced = true
        for item in chatAgent.announcements(now: Self.epochMilliseconds()) { publish(item.publishPacket) }
    }

    /// The connection's bytes could not be decoded: an MQTT 5 client is told why (DISCONNECT
    /// 0x81 or 0x95) before the connection closes.
    func failed(_ id: BrokerCore.ConnectionID, _ error: any Error) {
        logger.notice("connection error", metadata: ["connection": "\(id)", "error": "\(error)"])
        guard let error = error as? MQTTWireError else { return }
        perform(core.violation(on: id, code: BrokerCore.reasonCode(for: error), reason: error.reason, now: clock.now))
    }

    func closed(_ id: BrokerCore.ConnectionID) {
        scenarioConnectionEnded(id)
        if !viewers.isEmpty { showConnection(id, opened: false, reason: "connection closed") }
        connections.removeValue(forKey: id)?.channel.close(promise: nil)
        perform(core.connectionClosed(id, now: clock.now))
    }

    /// Carries out the core's actions. `delaysAcknowledgements` is false for acknowledgements
    /// whose delay (a scenario's `delay_acks`, the admin API's fault) has already passed.
    /// - Parameter unparking: the packets are ones held back for a client that was behind, now
    ///   sent in their turn.
    func perform(_ actions: [BrokerCore.Action], delaysAcknowledgements: Bool = true, unparking: Bool = false) {
        // Writes are gathered per event loop and handed over in one task each: a message fanned
        // out to a thousand subscribers costs one hop per loop, not two per subscriber, and a
        // packet equal to the previous one (QoS 0 fan-out) is encoded once.
        var batches: [ObjectIdentifier: (loop: any EventLoop, writes: [Write])] = [:]
        var retainedSent: [BrokerCore.ConnectionID: Int] = [:]
        var heldBack: Set<BrokerCore.ConnectionID> = []
        var lastPacket: MQTTPacket?
        var lastVersion = ProtocolVersion.v3_1_1
        var lastBytes = ByteBuffer()
        var lastFrame: ByteBuffer?
        func dispatch() {
            for (key, batch) in batches {
                let writes = batch.writes
                let flusher = flushers[key] ?? LoopFlusher(loop: batch.loop)
                flushers[key] = flusher
                batch.loop.execute {
                    for write in writes { write.perform() }
                    flusher.flushSoon(writes.lazy.map(\.channel))
                }
            }
            batches = [:]
        }
        for action in actions {
            switch action {
            case .send(let id, let packet):
                if case .connack(let connack) = packet, connack.reasonCode.rawValue == 0, let scenario = configuration.scenario {
                    Task { await self.play(scenario, on: id) }
                }
                if case .connack(let connack) = packet, connack.reasonCode.rawValue == 0, !heldQueue.isEmpty {
                    // After the CONNACK is on its way.
                    Task { self.deliverHeld(to: id) }
                }
                switch packet {
                case .puback, .pubrec, .pubcomp:
                    let delay = delaysAcknowledgements ? max(plays[id]?.acknowledgementDelay ?? .zero, acknowledgementDelay) : .zero
                    if delay > .zero {
                        Task {
                            await self.clock.sleep(for: delay)
                            self.perform([.send(id, packet)], delaysAcknowledgements: false)
                        }
                        continue
                    }
                default:
                    break
                }
                // Fields read in place: a fan-out passes here once per subscriber.
                guard let index = connections.index(forKey: id) else { continue }
                var droppable = false
                if case .publish(let publish) = packet, !unparking {
                    // A client too far behind (its unread bytes past maximumQueuedBytes): retained
                    // messages, and whatever follows them, wait for it to read; a live QoS 0
                    // message is dropped and counted (here, or on the event loop if the client
                    // falls behind meanwhile).
                    // Many retained messages at once (a late `#` subscriber): past the first
                    // hundred in one go they wait their turn too, sent in batches that let the
                    // broker serve other clients between them.
                    if publish.retain {
                        retainedSent[id, default: 0] += 1
                        if retainedSent[id, default: 0] > Self.retainedAtOnce { heldBack.insert(id) }
                    }
                    let behind = !connections.values[index].parked.isEmpty || !connections.values[index].channel.isWritable
                        || (publish.retain && heldBack.contains(id))
                    if behind && (publish.retain || !connections.values[index].parked.isEmpty) {
                        if publish.qos == .atMostOnce && !publish.retain {
                            connections.values[index].dropped.add()
                        } else {
                            connections.values[index].parked.append(packet)
                        }
                        continue
                    }
                    droppable = publish.qos == .atMostOnce && !publish.retain
                }
                let version = connections.values[index].version
                if packet != lastPacket || version != lastVersion {
                    // The core builds valid packets only.
                    guard let bytes = try? MQTTEncoder(version: version).encode(packet) else { continue }
                    lastPacket = packet
                    lastVersion = version
                    lastBytes = bytes
                    lastFrame = nil
                }
                if !viewers.isEmpty { show(packet, on: id, direction: .serverToClient, size: lastBytes.readableBytes) }
                let channel = connections.values[index].channel
                var write = connections.values[index].write(lastBytes, framed: {
                    if let lastFrame { return lastFrame }
                    let framed = Self.binaryFrame(lastBytes)
                    lastFrame = framed
                    return framed
                }())
                if droppable { write.droppedInto = connections.values[index].dropped }
                batches[ObjectIdentifier(channel.eventLoop), default: (channel.eventLoop, [])].writes.append(write)
            case .close(let id, let reason):
                dispatch()  // what was written before the close goes first
                logger.info("closing", metadata: ["connection": "\(id)", "reason": "\(reason)"])
                if !viewers.isEmpty { showConnection(id, opened: false, reason: reason) }
                if let channel = connections.removeValue(forKey: id)?.channel {
                    // What was written goes first, then the write side closes (FIN, not a reset:
                    // the client reads the DISCONNECT even while its own writes still arrive);
                    // the connection closes once the client closes its side, or after a second.
                    channel.flush()
                    channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
                    channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
                }
            }
        }
        dispatch()
        for id in heldBack { Task { self.sendParked(id) } }
    }

    /// Retained messages one call writes to a connection before the rest wait their turn.
    static let retainedAtOnce = 100

    /// Writes bytes as they are, in one binary frame on WebSocket (a scenario's `raw` step).
    func writeRaw(_ bytes: ByteBuffer, to id: BrokerCore.ConnectionID) {
        guard let connection = connections[id] else { return }
        let write = connection.write(bytes, framed: Self.binaryFrame(bytes))
        connection.channel.eventLoop.execute {
            write.perform()
            write.channel.flush()
        }
    }

    func startTicker() {
        guard ticker == nil else { return }
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                guard let clock = self?.clock else { return }
                await clock.sleep(for: .milliseconds(250))
                await self?.tick()
            }
        }
    }

    func tick() {
        perform(core.tick(now: clock.now))
        // Clients behind: held-back packets go out as they read; one that stays too far behind
        // for stuckTimeout is disconnected (5.0: DISCONNECT 0x97, quota exceeded).
        let now = clock.now
        for id in Array(connections.keys) {
            guard let connection = connections[id] else { continue }
            if connection.channel.isWritable {
                connections[id]?.behindSince = nil
                if !connection.parked.isEmpty { sendParked(id) }
            } else if let since = connection.behindSince {
                if now - since >= configuration.stuckTimeout {
                    logger.notice("disconnecting a client that does not read", metadata: [
                        "connection": "\(id)", "client": "\(core.clientID(of: id) ?? "-")",
                        "unread": "over \(configuration.maximumQueuedBytes) bytes", "for": "\(configuration.stuckTimeout)",
                        "dropped": "\(connection.dropped.count)"])
                    perform(core.violation(on: id, code: .quotaExceeded,
                                           reason: "the client read nothing of over \(configuration.maximumQueuedBytes) bytes for \(configuration.stuckTimeout)",
                                           now: now))
                    connections[id]?.parked.removeAll()
                }
            } else {
                connections[id]?.behindSince = now
            }
        }
    }

    /// Sends held-back packets of a client that reads again, about half the unread-bytes limit
    /// at a time; the rest right after while it keeps up, else when its socket is writable again.
    func sendParked(_ id: BrokerCore.ConnectionID) {
        guard let connection = connections[id], connection.channel.isWritable, !connection.parked.isEmpty else { return }
        var budget = max(1, min(configuration.maximumQueuedBytes / 2, 256 << 10))  // small batches: other clients go between them
        var batch: [BrokerCore.Action] = []
        while budget > 0, let packet = connections[id]?.parked.popFirst() {
            if case .publish(let publish) = packet { budget -= publish.payload.readableBytes + publish.topicName.utf8.count + 16 } else { budget -= 16 }
            batch.append(.send(id, packet))
        }
        perform(batch, unparking: true)
        // More to send: again once this batch's writes have run on the event loop, while the
        // client keeps up (a batch that leaves it writable brings no writability event).
        if connections[id]?.parked.isEmpty == false { Task { self.sendParked(id) } }
    }
}

/// Tells the broker when a connection that was behind can take bytes again.
final class DrainWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any
    private let drained: @Sendable () -> Void

    init(drained: @escaping @Sendable () -> Void) { self.drained = drained }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drained() }
        context.fireChannelWritabilityChanged()
    }
}
