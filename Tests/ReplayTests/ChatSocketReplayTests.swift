import Capture
import Dialects
import Foundation
@testable import Replay
import Recordings
import Testing

/// The JSON chat sockets' replay, without sockets: which server messages are answers, and how
/// recorded and replayed messages compare under each dialect's rules.
@Suite struct ChatSocketReplayTests {
    func recorded(_ texts: [String]) -> [RecordedChatMessage] {
        texts.enumerated().map { RecordedChatMessage(direction: .serverToClient, time: Double($0.offset), text: $0.element) }
    }

    @Test func answersAreWhatTheClientCauses() throws {
        func answer(_ text: String, _ dialect: String?) throws -> Bool { ChatSocketReplay.isAnswer(try JSONReader.parse(text), dialect: dialect) }
        #expect(try answer(#"{"status":"ok","retcode":0,"data":null,"echo":"1"}"#, "onebot"))
        #expect(try !answer(#"{"post_type":"message","message_type":"group","group_id":1,"user_id":2,"message":"hi"}"#, "onebot"))
        #expect(try answer(#"{"op":10,"d":{"heartbeat_interval":1000}}"#, "discord"))
        #expect(try answer(#"{"op":11,"d":null}"#, "discord"))
        #expect(try answer(#"{"op":0,"d":{},"s":1,"t":"READY"}"#, "discord"))
        #expect(try !answer(#"{"op":0,"d":{},"s":2,"t":"MESSAGE_CREATE"}"#, "discord"))
        #expect(try answer(#"{"session_id":"s","type":"text","data":{}}"#, "cocoro"))
        #expect(ChatSocketReplay.isAnswer(nil, dialect: "onebot"), "what is not JSON is waited for")
    }

    @Test func eachDialectsVaryingMembersAreIgnoredAndTheRestCompared() {
        let recorded = recorded([
            #"{"status":"ok","retcode":0,"data":{"message_id":7},"echo":"call-1"}"#,
            #"{"status":"ok","retcode":0,"data":{"user_id":10001,"nickname":"wmq-mock"},"echo":"call-2"}"#,
        ])
        let same = ChatSocketReplay.compare(recorded: recorded, replayed: [
            #"{"status":"ok","retcode":0,"data":{"message_id":912},"echo":"call-1"}"#,
            #"{"status":"ok","retcode":0,"data":{"user_id":10001,"nickname":"wmq-mock"},"echo":"call-2"}"#,
        ], dialect: "onebot", rules: MatchRules())
        #expect(same.allSatisfy { $0.reason == nil } && same.count == 2)
        let changed = ChatSocketReplay.compare(recorded: recorded, replayed: [
            #"{"status":"ok","retcode":0,"data":{"message_id":1},"echo":"call-1"}"#,
            #"{"status":"ok","retcode":0,"data":{"user_id":10001,"nickname":"other"},"echo":"call-2"}"#,
        ], dialect: "onebot", rules: MatchRules())
        #expect(changed.map(\.reason) == [nil, #"$.data.nickname is "other", the recording's "wmq-mock""#])
        // The message id is only ignored for OneBot: elsewhere it counts.
        let elsewhere = ChatSocketReplay.compare(recorded: recorded, replayed: [
            #"{"status":"ok","retcode":0,"data":{"message_id":912},"echo":"call-1"}"#,
            #"{"status":"ok","retcode":0,"data":{"user_id":10001,"nickname":"wmq-mock"},"echo":"call-2"}"#,
        ], dialect: nil, rules: MatchRules())
        #expect(elsewhere.first?.reason == "$.data.message_id is 912, the recording's 7")
    }

    @Test func missingAnswersCountExtraMessagesCountUnsolicitedOnesDoNot() {
        let recorded = recorded([
            #"{"op":10,"d":{"heartbeat_interval":1000},"s":null,"t":null}"#,
            #"{"op":0,"d":{"session_id":"a"},"s":1,"t":"READY"}"#,
            #"{"op":0,"d":{"id":"5","content":"hi bot"},"s":2,"t":"MESSAGE_CREATE"}"#,
            #"{"op":11,"d":null,"s":null,"t":null}"#,
        ])
        let rows = ChatSocketReplay.compare(recorded: recorded, replayed: [
            #"{"op":10,"d":{"heartbeat_interval":1000},"s":null,"t":null}"#,
            #"{"op":0,"d":{"session_id":"b"},"s":1,"t":"READY"}"#,
            #"{"op":9,"d":false,"s":null,"t":null}"#,
        ], dialect: "discord", rules: MatchRules())
        #expect(rows.count == 5)
        #expect(rows.filter(\.unsolicited).count == 1 && rows.first(where: \.unsolicited)?.recorded?.text.contains("MESSAGE_CREATE") == true)
        #expect(rows.compactMap(\.reason).sorted() == ["missing", "not in the recording"])
        let report = ChatSocketReplay.Report(socket: RecordedChatSocket(id: 2, client: "c", server: "s", dialect: "discord", messages: recorded),
                                             rows: rows, notes: [], sent: 1, received: 3, seconds: 0.1)
        #expect(!report.matched)
        let text = ChatSocketReplay.text([report], recording: "x.pcap", pace: .asap, display: nil)
        #expect(text.contains("MISMATCH") && text.contains("HEARTBEAT_ACK") && text.contains("→ missing"), "\(text)")
    }
}
