import Broker
import MockFiles
import Dialects
import Logging
import MQTTWire
import NIOCore
import NIOWebSocket

/// How one play of a scenario against one client went.
public struct ScenarioResult: Sendable {
    public var clientID: String
    /// One line per failed step: `line 4: expect PUBACK: nothing within 5.0 seconds`.
    public var failures: [String]
    public var passed: Bool { failures.isEmpty }
}

/// Per-connection state of a scenario being played.
struct ScenarioPlay {
    /// Packets from the client not yet consumed by an `expect` (bounded).
    var received: [MQTTPacket] = []
    var waiter: (expectation: Scenario.Expectation, continuation: CheckedContinuation<MQTTPacket?, Never>)?
    /// Which `expect` the waiter belongs to, so that a late timer cannot end a later one.
    var waiterNumber = 0
    var acknowledgementDelay: Duration = .zero
}

extension MockBroker {
    /// Plays the configured scenario against the client on `connection`, step by step.
    func play(_ scenario: Scenario, on connection: BrokerCore.ConnectionID) async {
        guard let clientID = core.clientID(of: connection) else { return }
        plays[connection] = ScenarioPlay()
        var failures: [String] = []
        logger.info("scenario started", metadata: ["client": "\(clientID)", "steps": "\(scenario.steps.count)"])
        steps: for (line, step) in scenario.steps {
            guard connections[connection] != nil else {
                failures.append("line \(line): the client was gone before this step")
                break
            }
            switch step {
            case .notify(let request):
                do {
                    _ = push(payload: try notificationBuilder(request), to: clientID)
                } catch {
                    failures.append("line \(line): \(error)")
                }
            case .readReceipt(let channel, let reader, let serial):
                _ = push(payload: NotificationBuilder.readReceipt(channel: channel, reader: reader, messageSerial: serial), to: clientID)
            case .publish(let topic, let payload, let qos):
                perform(core.push(PublishPacket(qos: qos, topicName: topic, payload: payload), to: clientID, now: clock.now))
            case .wait(let duration):
                try? await Task.sleep(for: duration)
            case .expect(let expectation, let timeout):
                if await expect(expectation, on: connection, timeout: timeout) == nil {
                    failures.append("line \(line): expect \(expectation): nothing within \(timeout)")
                } else {
                    logger.info("scenario expectation met", metadata: ["client": "\(clientID)", "line": "\(line)"])
                }
            case .delayAcknowledgements(let delay):
                plays[connection]?.acknowledgementDelay = delay
            case .raw(let bytes):
                writeRaw(ByteBuffer(bytes: bytes), to: connection)
            case .drop:
                connections[connection]?.channel.close(mode: .all, promise: nil)
                break steps
            case .close(let code):
                if let open = connections[connection], open.transport == .webSocket {
                    var data = ByteBuffer()
                    data.writeInteger(code)
                    open.channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data), promise: nil)
                }
                connections[connection]?.channel.close(promise: nil)
                break steps
            }
        }
        plays[connection] = nil
        let result = ScenarioResult(clientID: clientID, failures: failures)
        if result.passed {
            logger.notice("scenario passed", metadata: ["client": "\(clientID)"])
        } else {
            logger.error("scenario failed", metadata: ["client": "\(clientID)", "failures": "\(failures.joined(separator: "; "))"])
        }
        scenarioResultsContinuation.yield(result)
    }

    /// The next packet from the client matching `expectation`; earlier ones that do not match are passed over.
    private func expect(_ expectation: Scenario.Expectation, on connection: BrokerCore.ConnectionID, timeout: Duration) async -> MQTTPacket? {
        if let index = plays[connection]?.received.firstIndex(where: expectation.matches) {
            let packet = plays[connection]?.received[index]
            plays[connection]?.received.removeFirst(index + 1)
            return packet
        }
        plays[connection]?.received.removeAll()
        plays[connection]?.waiterNumber += 1
        let number = plays[connection]?.waiterNumber ?? 0
        let timer = Task { [weak self] in
            guard (try? await Task.sleep(for: timeout)) != nil else { return }  // cancelled: the packet came
            await self?.expectationTimedOut(connection, number: number)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            plays[connection]?.waiter = (expectation, continuation)
        }
    }

    private func expectationTimedOut(_ connection: BrokerCore.ConnectionID, number: Int) {
        guard plays[connection]?.waiterNumber == number, let waiter = plays[connection]?.waiter else { return }
        plays[connection]?.waiter = nil
        waiter.continuation.resume(returning: nil)
    }

    /// Called for every packet from a client that is playing a scenario.
    func scenarioSaw(_ packet: MQTTPacket, on connection: BrokerCore.ConnectionID) {
        guard plays[connection] != nil else { return }
        if let waiter = plays[connection]?.waiter, waiter.expectation.matches(packet) {
            plays[connection]?.waiter = nil
            waiter.continuation.resume(returning: packet)
            return
        }
        plays[connection]?.received.append(packet)
        if (plays[connection]?.received.count ?? 0) > 1000 { plays[connection]?.received.removeFirst() }
    }

    /// The connection ended: a pending `expect` fails now rather than at its timeout.
    func scenarioConnectionEnded(_ connection: BrokerCore.ConnectionID) {
        guard let waiter = plays[connection]?.waiter else { return }
        plays[connection]?.waiter = nil
        waiter.continuation.resume(returning: nil)
    }
}
