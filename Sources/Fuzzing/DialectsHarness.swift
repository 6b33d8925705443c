import Dialects
import MockAgents
import MQTTWire
import NIOCore

/// The other chat protocols' decoders and delivery rules (issue 9): JSON chat messages through
/// the per-connection annotator (OneBot v11, CocoroCore, Discord) and the chat-topic tree, and
/// the streamed-reply rules driven by the input. Oracles: an annotation always has a summary;
/// `SentenceBuffer` and `DeliveryThrottle` lose and invent no text (what they send, joined, is
/// what came in), never send an empty piece, and keep each throttled piece within 1,900 characters.
enum DialectsHarness {
    static let dialects = FuzzTarget(
        name: "dialects",
        summary: "OneBot v11, CocoroCore and Discord JSON, the MQTT chat-topic tree, and the streamed-reply rules",
        maximumInputLength: 16_384
    ) { input throws(OracleViolation) in
        // Lines of JSON: one connection's messages, then each line again as a chat-tree payload.
        var annotator = JSONChatAnnotator(redactor: WorksHarness.redactor)
        var agent = ChatTopicAgent(configuration: .init(tokenLength: 3, tokenInterval: .milliseconds(10)))
        var replies = ChatReplies()
        let lines = input.split(separator: 0x0A, omittingEmptySubsequences: true)
        for (index, line) in lines.prefix(64).enumerated() {
            let buffer = ByteBuffer(bytes: line)
            // Times a line apart, some running backwards (a capture's clock is not to be trusted).
            let time = Double(index) * (line.count % 3 == 0 ? -0.7 : 1.3)
            if let json = try? JSONReader.parse(buffer), let annotation = annotator.annotate(json, time: time), annotation.summary.isEmpty {
                throw OracleViolation(target: "dialects", oracle: "an annotation has a summary", detail: annotation.kind)
            }
            let packet = PublishPacket(qos: .atMostOnce, topicName: "chat/receive", payload: buffer)
            var chat = ChatTopicDialect().annotate(packet, redactor: nil)
            replies.follow(packet, annotation: &chat)
            if chat.summary.isEmpty { throw OracleViolation(target: "dialects", oracle: "an annotation has a summary", detail: "chat") }
            try chatCore(&agent, line: buffer, topic: Self.agentTopics[(index + line.count) % Self.agentTopics.count])
        }
        try streamedRules(input)
    }

    static let agentTopics = ["chat/send", "chat/session/create", "chat/session/delete", "chat/session/list", "system/send", "chat/receive"]

    /// The chat mode's AI core on a client's payload: every publish it makes is a JSON object on a
    /// topic of the tree, in time order; a reply's pieces add up to its whole text.
    static func chatCore(_ agent: inout ChatTopicAgent, line: ByteBuffer, topic: String) throws(OracleViolation) {
        let out = agent.received(topic: topic, payload: line, now: 1_700_000_000_000)
        var last = Duration.zero
        var pieces = ""
        for item in out {
            guard item.payload.members != nil, ChatTopicDialect.recognises(topic: item.topic), item.after >= last else {
                throw OracleViolation(target: "dialects", oracle: "the chat core publishes objects on the tree, in order", detail: item.topic)
            }
            last = item.after
            guard item.topic == "chat/receive" else { continue }
            if item.payload["done"] == .bool(false) { pieces += item.payload["content"]?.stringValue ?? "" }
            if item.payload["done"] == .bool(true), item.payload["content"]?.stringValue != pieces {
                throw OracleViolation(target: "dialects", oracle: "a streamed reply's pieces add up to its text", detail: "\(pieces.count) characters")
            }
        }
    }

    /// The input's text cut into chunks at its 0x01 bytes, each chunk coming 0.3 s after the last.
    static func streamedRules(_ input: [UInt8]) throws(OracleViolation) {
        let text = String(decoding: input, as: UTF8.self)
        let chunks = text.split(separator: "\u{01}", omittingEmptySubsequences: true).map(String.init)
        let all = chunks.joined()
        var buffer = SentenceBuffer(start: 0)
        var sent: [String] = []
        for (index, chunk) in chunks.enumerated() {
            let time = Double(index) * 0.3
            if let out = buffer.poll(at: time) { sent.append(out) }
            if let out = buffer.append(chunk, at: time) { sent.append(out) }
        }
        if let out = buffer.finish() { sent.append(out) }
        guard sent.joined() == all, !sent.contains(where: \.isEmpty) else {
            throw OracleViolation(target: "dialects", oracle: "the sentence buffer sends exactly what came in",
                                  detail: "\(all.unicodeScalars.count) characters in, \(sent.joined().unicodeScalars.count) out in \(sent.count) pieces")
        }
        for mode in [DeliveryThrottle.Mode.append, .edit] {
            var throttle = DeliveryThrottle(mode: mode)
            var deliveries: [DeliveryThrottle.Delivery] = []
            for (index, chunk) in chunks.enumerated() {
                let time = Double(index) * 0.3
                deliveries += throttle.tick(at: time)
                throttle.receive(chunk, at: time)
            }
            deliveries += throttle.complete()
            var posted = ""
            var lastEdit = ""
            for delivery in deliveries {
                let piece: String
                switch delivery {
                case .post(let text): piece = text; posted += text
                case .edit(let text): piece = text; lastEdit = text
                }
                guard !piece.isEmpty, piece.unicodeScalars.count <= DeliveryThrottle.cap else {
                    throw OracleViolation(target: "dialects", oracle: "a delivery holds 1 to 1,900 characters",
                                          detail: "\(mode): \(piece.unicodeScalars.count)")
                }
            }
            let delivered = mode == .append ? posted : lastEdit + posted
            guard delivered == all else {
                throw OracleViolation(target: "dialects", oracle: "the throttle delivers exactly what came in",
                                      detail: "\(mode): \(all.unicodeScalars.count) characters in, \(delivered.unicodeScalars.count) delivered")
            }
        }
    }

    static let seeds: [String] = [
        #"{"time":1,"self_id":10001,"post_type":"message","message_type":"group","group_id":123456,"user_id":12345,"message":"hi [CQ:at,qq=1] &#91;x&#93;","sender":{"nickname":"A"}}"#,
        #"{"time":1,"self_id":10001,"post_type":"message","message_type":"private","user_id":5,"message":[{"type":"text","data":{"text":"yo"}},{"type":"face","data":{"id":"14"}}]}"#,
        #"{"time":1,"self_id":1,"post_type":"meta_event","meta_event_type":"heartbeat","status":{"online":true,"good":true},"interval":30000}"# + "\n"
            + #"{"action":"send_msg","params":{"message_type":"group","group_id":1,"message":"x"},"echo":"e"}"# + "\n"
            + #"{"status":"ok","retcode":0,"data":{"message_id":3},"echo":"e"}"#,
        #"{"action":"chat","session_id":"s","request":{"query":"天気は？","chat_type":"text"}}"# + "\n"
            + #"{"session_id":"s","type":"text","data":{"content":"晴れです。","is_incremental":true}}"# + "\n"
            + #"{"session_id":"s","type":"end","data":{"total_tokens":4,"final_text":"晴れです。"}}"#,
        #"{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}"# + "\n" + #"{"op":2,"d":{"token":"t","intents":1}}"# + "\n"
            + #"{"op":0,"d":{"channel_id":"1","content":"c","author":{"username":"u"}},"s":1,"t":"MESSAGE_CREATE"}"#,
        #"{"session_id":"s-1","id":"m-1","status":"sent","content":"Hello, AI!","timestamp":1700000000}"#,
        "Hello there. How are you?\u{01}I am fine.\u{01}" + String(repeating: "word ", count: 30) + "end.\u{01}続きです。そして終わり？",
        String(repeating: "x", count: 2500) + "\u{01}\n" + String(repeating: "y\n", count: 400),
        #"{"time":1,"self_id":1,"post_type":"notice","notice_type":"group_increase","group_id":5,"user_id":6}"# + "\n"
            + #"{"time":1,"self_id":1,"post_type":"request","request_type":"friend","user_id":7,"comment":"add me"}"#,
        #"{"session_id":"s","type":"error","data":{"message":"boom","code":"PROCESSING_ERROR"}}"# + "\n"
            + #"{"session_id":"s","type":"status","data":"0"}"# + "\n" + #"{"op":9,"d":false}"# + "\n" + #"{"op":1,"d":null}"#,
        "短い。\u{01}" + String(repeating: "長い文章です", count: 20) + "\u{01}？\u{01}" + String(repeating: "z", count: 1899) + "\n" + "tail",
        // Discord heartbeats and acknowledgements in and out of order (timed), and the chat core's requests.
        #"{"op":10,"d":{"heartbeat_interval":1000},"s":null,"t":null}"# + "\n" + #"{"op":1,"d":1}"# + "\n" + #"{"op":11,"d":null}"# + "\n"
            + #"{"op":11,"d":null}"# + "\n" + #"{"op":1,"d":2}"# + "\n" + #"{"op":1,"d":3}"# + "\n" + #"{"op":11,"d":null}"#,
        #"{"id":"m-1","sessionId":"s-1","content":"Hello, AI!"}"# + "\n" + #"{"sessionId":"s-2"}"# + "\n" + #"{"sessionId":"s-2"}"# + "\n"
            + #"{}"# + "\n" + #"{"id":"p","temperature":0.7}"# + "\n" + #"{"message":"今日の天気は？","session_id":"x"}"#,
        "[1,2]\n\"text\"\nnot json\n{\"content\": 5}\n{\"text\": \"\"}",
    ]
}
