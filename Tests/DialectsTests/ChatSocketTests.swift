import Dialects
import MQTTWire
import NIOCore
import Testing

/// CocoroCore's chat socket and the Discord gateway, through the per-connection annotator.
@Suite struct ChatSocketTests {
    func annotate(_ texts: [String], redactor: Redactor? = nil) throws -> [AnnotatedMessage?] {
        var annotator = JSONChatAnnotator(redactor: redactor)
        return try texts.map { annotator.annotate(try JSONReader.parse($0)) }
    }

    @Test func aStreamedCocoroAnswerIsReassembled() throws {
        let out = try annotate([
            #"{"action":"chat","session_id":"s1","request":{"query":"天気は？","chat_type":"text","images":[]}}"#,
            #"{"session_id":"s1","type":"status","data":"2"}"#,
            #"{"session_id":"s1","type":"text","data":{"content":"今日は晴れです。","is_incremental":true}}"#,
            #"{"session_id":"s1","type":"text","data":{"content":"明日は雨でしょう。","is_incremental":true}}"#,
            #"{"session_id":"s1","type":"time","data":{"total_time":1.8,"speed_improvement":1.2}}"#,
            #"{"session_id":"s1","type":"end","data":{"total_tokens":42,"final_text":"今日は晴れです。明日は雨でしょう。"}}"#,
        ])
        #expect(out.map { $0?.summary } == [
            "chat request (text) · session s1: 天気は？", "generation started · session s1",
            "chunk 1 · session s1: 今日は晴れです。", "chunk 2 · session s1: 明日は雨でしょう。", "took 1.8 s · session s1",
            "answer in 2 chunks, 42 tokens · session s1: 今日は晴れです。明日は雨でしょう。",
        ])
        #expect(out.last??.warnings == [])
        // Chunks that do not add up to the final text are pointed out.
        let lost = try annotate([#"{"session_id":"s2","type":"text","data":{"content":"part","is_incremental":true}}"#,
                                 #"{"session_id":"s2","type":"end","data":{"total_tokens":3,"final_text":"part and more"}}"#])
        #expect(lost.last??.warnings == ["the streamed chunks do not add up to final_text"])
        #expect(try annotate([#"{"session_id":"s3","type":"error","data":{"message":"boom","code":"PROCESSING_ERROR"}}"#]).first??.summary
            == "error PROCESSING_ERROR · session s3: boom")
    }

    @Test func discordGatewayFramesAreNamedAndTheTokenNeverShown() throws {
        let redactor = Redactor(key: Array("k".utf8))
        let out = try annotate([
            #"{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}"#,
            #"{"op":2,"d":{"token":"MTIz.secret.token","intents":513,"properties":{"os":"linux"}}}"#,
            #"{"op":0,"d":{"channel_id":"99","content":"hi bot","author":{"username":"alice"}},"s":3,"t":"MESSAGE_CREATE"}"#,
            #"{"op":1,"d":3}"#, #"{"op":11,"d":null}"#, #"{"op":9,"d":false}"#,
        ], redactor: redactor)
        #expect(out.map { $0?.summary } == [
            "HELLO (heartbeat every 41250 ms)", "IDENTIFY (token \(redactor.pseudonym("MTIz.secret.token", kind: "token")), intents 513)",
            "MESSAGE_CREATE #3 · channel 99 · alice: hi bot", "HEARTBEAT (last sequence 3)", "HEARTBEAT_ACK", "INVALID_SESSION (not resumable)",
        ])
        #expect(out.allSatisfy { $0?.summary.contains("secret") == false })
    }

    @Test func discordHeartbeatsAreTimedAndAcknowledgementsGiveTheLatency() throws {
        var annotator = JSONChatAnnotator(redactor: nil)
        func at(_ time: Double, _ text: String) throws -> AnnotatedMessage? { annotator.annotate(try JSONReader.parse(text), time: time) }
        #expect(!annotator.isDiscord && annotator.closeCodeName(4004) == nil)
        _ = try at(100.0, #"{"op":10,"d":{"heartbeat_interval":2000},"s":null,"t":null}"#)
        #expect(annotator.isDiscord && annotator.closeCodeName(4004) == "Discord: authentication failed")
        #expect(annotator.closeCodeName(1000) == nil, "standard codes are WebSocket's")
        #expect(try at(101.0, #"{"op":1,"d":null}"#)?.summary == "HEARTBEAT (last sequence none)")
        let ack = try #require(try at(101.042, #"{"op":11,"d":null}"#))
        #expect(ack.summary == "HEARTBEAT_ACK (latency 42 ms)" && ack.fields.contains(AnnotatedField("latency_ms", "42")))
        let second = try #require(try at(103.0, #"{"op":1,"d":4}"#))
        #expect(second.summary == "HEARTBEAT (last sequence 4), 2.0 s after the previous" && second.warnings.isEmpty)
        // No ACK for that one: the next heartbeat, late as well, says so.
        let third = try #require(try at(106.5, #"{"op":1,"d":4}"#))
        #expect(third.warnings.count == 2, "\(third.warnings)")
        #expect(third.warnings.contains { $0.contains("never acknowledged") } && third.warnings.contains { $0.hasPrefix("late: 3.5 s") })
        #expect(try at(106.6, #"{"op":11,"d":null}"#)?.summary == "HEARTBEAT_ACK (latency 100 ms)")
        #expect(try at(106.7, #"{"op":11,"d":null}"#)?.warnings == ["an acknowledgement with no heartbeat waiting for one"])
    }

    @Test func otherJSONIsLeftAlone() throws {
        #expect(try annotate([#"{"hello":"world"}"#, #"{"op":"x","d":1}"#, #"{"op":1,"d":2,"extra":true}"#]).allSatisfy { $0 == nil })
    }
}

@Suite struct ChatTopicTests {
    func publish(_ topic: String, _ payload: String) -> PublishPacket {
        PublishPacket(qos: .atLeastOnce, topicName: topic, packetIdentifier: 1, payload: ByteBuffer(string: payload))
    }

    @Test func theChatTreeIsAnnotatedByTopic() {
        let dialect = ChatTopicDialect()
        let send = dialect.annotate(publish("chat/send", #"{"id":"m-1","session_id":"s-9","content":"Hello, AI!","timestamp":1700000000}"#), redactor: nil)
        #expect(send.summary == "chat/send · session s-9 · id m-1: Hello, AI!")
        #expect(send.kind == "chat-send" && send.field("timestamp") == "1700000000")
        let status = dialect.annotate(publish("chat/status", #"{"messageId":"m-1","status":"delivered"}"#), redactor: nil)
        #expect(status.summary == "chat/status · id m-1 · delivered")
        let raw = dialect.annotate(publish("connection/ai-core", "online"), redactor: nil)
        #expect(raw.summary == "connection/ai-core: online" && raw.warnings == ["the payload is not JSON"])
        #expect(ChatTopicDialect.recognises(topic: "chat/session/list") && !ChatTopicDialect.recognises(topic: "chat/other"))
        #expect(dialect.detect(DetectionEvidence(mqttPackets: [.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: "chat/receive")]))])) == .likely)
    }

    @Test func aStreamedReplyIsNumberedAndReassembled() {
        let dialect = ChatTopicDialect()
        var replies = ChatReplies()
        func follow(_ payload: String) -> AnnotatedMessage {
            let packet = publish("chat/receive", payload)
            var annotation = dialect.annotate(packet, redactor: nil)
            replies.follow(packet, annotation: &annotation)
            return annotation
        }
        let first = follow(#"{"id":"r","sessionId":"s","content":"Hel","done":false}"#)
        let second = follow(#"{"id":"r","sessionId":"s","content":"lo.","done":false}"#)
        #expect(first.field("piece") == "1" && second.field("piece") == "2")
        let whole = follow(#"{"id":"r","sessionId":"s","content":"Hello.","done":true}"#)
        #expect(whole.summary == "reply in 2 pieces · chat/receive · session s · id r: Hello." && whole.warnings.isEmpty)
        // A reply whose pieces went missing says so; a final message with no pieces is left as it is.
        _ = follow(#"{"id":"q","content":"Hel","done":false}"#)
        #expect(follow(#"{"id":"q","content":"Hello.","done":true}"#).warnings == ["the streamed pieces do not add up to the final content"])
        #expect(follow(#"{"id":"z","content":"alone","done":true}"#).summary == "chat/receive · id z: alone")
    }
}
