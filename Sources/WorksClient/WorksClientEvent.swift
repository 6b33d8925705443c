public import Dialects
public import MQTTWire

/// A PUBLISH the client received, with its Works reading.
public struct ReceivedMessage: Sendable {
    public var publish: PublishPacket
    /// The payload routed by docs/protocols.md §1, or nil when it is not JSON.
    public var payload: WorksPayload?
    /// The one-line summary and fields `wmq-decode` shows, secrets redacted.
    public var annotation: AnnotatedMessage
}

/// Everything the client reports, in order, on ``WorksClient/events``.
public enum WorksClientEvent: Sendable {
    case stateChanged(WorksClient.ConnectionState)
    /// A notification (`nType` present).
    case notification(WorksNotification, ReceivedMessage)
    case readReceipt(ReadReceipt, ReceivedMessage)
    case channelMessage(ChannelMessage, ReceivedMessage)
    /// A PUBLISH that is none of the above: other JSON, or not JSON at all.
    case otherMessage(ReceivedMessage)
    /// A notification dropped because its `notification-id` came within the de-duplication window.
    case duplicate(notificationID: String)
    /// Every MQTT packet, both ways.
    case packet(MQTTPacket, ByteDirection)
    /// Something odd that does not end the connection.
    case warning(String)
    /// An error that ended a connection (run() may reconnect) or the run.
    case error(WorksClientError)
}

/// Turns delivered PUBLISH packets into events: Works routing, annotation and
/// de-duplication on `notification-id`. Pure; the client owns one.
public struct WorksInbox: Sendable {
    public var deduplicator: NotificationDeduplicator
    private let dialect = WorksDialect()
    private let redactor: Redactor?

    public init(deduplicationWindow: Duration, redactor: Redactor?) {
        deduplicator = NotificationDeduplicator(window: deduplicationWindow)
        self.redactor = redactor
    }

    public mutating func receive(_ publish: PublishPacket, now: ContinuousClock.Instant) -> WorksClientEvent {
        let payload = try? WorksPayload.parse(publish.payload)
        if case .notification(let notification)? = payload, let id = notification.notificationID,
           deduplicator.isDuplicate(id, now: now) {
            return .duplicate(notificationID: id)
        }
        var annotation: AnnotatedMessage
        if let payload {
            annotation = dialect.annotate(payload, redactor: redactor)
            annotation.fields.insert(AnnotatedField("topic", publish.topicName), at: 0)
        } else {
            annotation = dialect.annotate(publish, redactor: redactor)
        }
        let message = ReceivedMessage(publish: publish, payload: payload, annotation: annotation)
        switch payload {
        case .notification(let notification)?: return .notification(notification, message)
        case .readReceipt(let receipt)?: return .readReceipt(receipt, message)
        case .channelMessage(let channelMessage)?: return .channelMessage(channelMessage, message)
        case .other?, nil: return .otherMessage(message)
        }
    }
}
