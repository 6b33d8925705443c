import Dialects
import Foundation
public import Logging
import MockFiles
import MQTTWire
import NIOCore

/// Lines typed into wmq-mock (its standard input), each a JSON object sent to the endpoint its
/// shape names: a OneBot event (`{"post_type": …}` or `{"user": 12345, "text": …}`) with the
/// OneBot mock; a Discord channel message (`{"user": "alice", "content": …}`) with the Discord
/// mock; a publish (`{"topic", "payload", "retain"}`) to the broker; else, in Works mode, a
/// notification. Each outcome is logged for the person typing, and returned for tests.
public struct InputRouter {
    public enum Outcome: Sendable, Equatable {
        case oneBotEvent(connections: Int)
        case discordMessage(connections: Int)
        case published(topic: String)
        case notification(sessions: Int)
        /// Nobody was connected: kept for the next client (Works mode).
        case notificationHeld(held: Int)
        /// Not taken, with why.
        case refused(String)
    }

    let broker: MockBroker
    let works: Bool
    let oneBot: OneBotMock?
    let discord: DiscordGatewayMock?
    let logger: Logger
    private var builder = NotificationBuilder()

    public init(broker: MockBroker, works: Bool, oneBot: OneBotMock?, discord: DiscordGatewayMock?, logger: Logger) {
        self.broker = broker
        self.works = works
        self.oneBot = oneBot
        self.discord = discord
        self.logger = logger
    }

    @discardableResult
    public mutating func route(_ text: String) async -> Outcome {
        guard let json = try? JSONReader.parse(text), json.members != nil else {
            logger.warning("not a JSON object: \(text)")
            return .refused("not a JSON object")
        }
        if let oneBot, json["post_type"] != nil || (json["user"]?.intValue != nil && json["text"] != nil) {
            let event = json["post_type"] != nil ? json
                : oneBot.messageEvent(group: json["group"]?.intValue, user: json["user"]?.intValue ?? 0,
                                      text: json["text"]?.stringValue ?? "", nickname: json["nickname"]?.stringValue ?? "wmq-mock")
            let count = oneBot.push(event)
            logger.info("OneBot event pushed", metadata: ["connections": "\(count)"])
            return .oneBotEvent(connections: count)
        }
        if let discord, let user = json["user"]?.stringValue, let content = json["content"]?.stringValue {
            let count = await discord.say(user: user, content: content)
            logger.info("Discord message posted", metadata: ["connections": "\(count)"])
            return .discordMessage(connections: count)
        }
        if let topic = json["topic"]?.stringValue, let payload = json["payload"] {
            let body = payload.stringValue ?? payload.description
            await broker.publish(PublishPacket(qos: .atLeastOnce, retain: json["retain"]?.boolValue ?? false, topicName: topic,
                                               payload: ByteBuffer(string: body)))
            logger.info("published", metadata: ["topic": "\(topic)"])
            return .published(topic: topic)
        }
        guard works else {
            let usage = "a line of standard input is a OneBot event, a Discord message {\"user\", \"content\"} or a publish {\"topic\", \"payload\"}"
            logger.warning("\(usage): \(text)")
            return .refused(usage)
        }
        do {
            let payload = try builder.payload(from: json, now: Int64(Date().timeIntervalSince1970 * 1000))
            let count = await broker.pushToAll(payload: payload)
            if count == 0 {
                let held = await broker.heldNotifications
                logger.notice("no client is connected: the notification is kept for the next that connects", metadata: ["held": "\(held)"])
                return .notificationHeld(held: held)
            }
            logger.info("notification pushed", metadata: ["sessions": "\(count)"])
            return .notification(sessions: count)
        } catch {
            logger.warning("not a notification: \(error)")
            return .refused("not a notification: \(error)")
        }
    }
}
