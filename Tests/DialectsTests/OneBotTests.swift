import Dialects
import Testing

/// OneBot v11 events, API calls and responses as a person reads them.
@Suite struct OneBotTests {
    let dialect = OneBotDialect()

    func annotate(_ text: String, _ calls: inout [String: String]) throws -> AnnotatedMessage {
        dialect.annotate(try JSONReader.parse(text), calls: &calls)
    }

    @Test func groupAndPrivateMessagesWithSegmentsOrCQCodes() throws {
        var calls: [String: String] = [:]
        let group = try annotate(#"""
            {"time":1700000000,"self_id":10001,"post_type":"message","message_type":"group","sub_type":"normal","message_id":42,
             "group_id":123456,"user_id":12345,"message":[{"type":"at","data":{"qq":"10001"}},{"type":"text","data":{"text":" Hello"}},
             {"type":"face","data":{"id":"14"}}],"raw_message":"[CQ:at,qq=10001] Hello[CQ:face,id=14]","font":0,
             "sender":{"user_id":12345,"nickname":"Alice","card":""}}
            """#, &calls)
        #expect(group.summary == "group 123456 · user 12345 (Alice): @10001 Hello[face:14]")
        #expect(group.kind == "group-message" && group.field("message_id") == "42")
        let cq = try annotate(#"""
            {"time":1,"self_id":10001,"post_type":"message","message_type":"private","user_id":555,
             "message":"see &#91;this&#93;&#44; [CQ:image,file=a.png] &amp; [CQ:reply,id=7]ok"}
            """#, &calls)
        #expect(cq.summary == "private · user 555: see [this], [image a.png] & [reply to 7]ok")
    }

    @Test func callsAndResponsesAreMatchedByEcho() throws {
        var calls: [String: String] = [:]
        let call = try annotate(#"{"action":"send_group_msg","params":{"group_id":123456,"message":"Hi all"},"echo":"e1"}"#, &calls)
        #expect(call.summary == "call send_group_msg · group 123456: Hi all (echo e1)")
        let response = try annotate(#"{"status":"ok","retcode":0,"data":{"message_id":99},"echo":"e1"}"#, &calls)
        #expect(response.summary == "response ok (retcode 0, ok) to send_group_msg · message 99 (echo e1)")
        #expect(calls.isEmpty, "an echo is answered once")
        let stray = try annotate(#"{"status":"failed","retcode":1404,"data":null,"echo":"e9"}"#, &calls)
        #expect(stray.summary == "response failed (retcode 1404, no such action) (echo e9)")
        #expect(stray.warnings == ["no call with this echo was seen"])
    }

    @Test func metaEventsNoticesAndRequests() throws {
        var calls: [String: String] = [:]
        #expect(try annotate(#"{"time":1,"self_id":10001,"post_type":"meta_event","meta_event_type":"lifecycle","sub_type":"connect"}"#, &calls).summary
            == "lifecycle connect (bot 10001)")
        #expect(try annotate(#"{"time":1,"self_id":1,"post_type":"meta_event","meta_event_type":"heartbeat","status":{"online":true,"good":true},"interval":30000}"#,
                             &calls).summary == "heartbeat every 30000 ms (online, good)")
        #expect(try annotate(#"{"time":1,"self_id":1,"post_type":"notice","notice_type":"group_increase","group_id":5,"user_id":6}"#, &calls).summary
            == "notice group_increase · group 5 · user 6")
        #expect(try annotate(#"{"time":1,"self_id":1,"post_type":"request","request_type":"friend","user_id":7,"comment":"add me"}"#, &calls).summary
            == "request friend · user 7: add me")
    }

    @Test func detectionNeedsOneBotsShape() throws {
        #expect(OneBotDialect.recognises(try JSONReader.parse(#"{"post_type":"message","self_id":1}"#)))
        #expect(OneBotDialect.recognises(try JSONReader.parse(#"{"action":"get_status","params":{}}"#)))
        #expect(!OneBotDialect.recognises(try JSONReader.parse(#"{"session_id":"s","type":"text","data":{}}"#)))
        #expect(!OneBotDialect.recognises(try JSONReader.parse(#"{"op":10,"d":{"heartbeat_interval":41250}}"#)))
    }
}
