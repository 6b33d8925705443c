public import MockFiles
import MQTTWire

extension Recording {
    /// The mock that can stand in for this recording's server when its client side is driven:
    /// the Works notification service (`works`, serving the recording's own pushes, which no
    /// client caused) when a connection went to the Works path `/wmqtt`; the chat-topic tree's
    /// AI core (`chat`) when a client sent on `chat/send`; a plain broker otherwise.
    public var mockModeToServe: MockMode {
        if connections.contains(where: { $0.path == "/wmqtt" }) { return .works }
        let asksTheAICore = connections.contains { connection in
            connection.messages.contains { message in
                guard message.direction == .clientToServer, case .publish(let publish) = message.packet else { return false }
                return publish.topicName == "chat/send"
            }
        }
        return asksTheAICore ? .chat : .broker
    }
}
