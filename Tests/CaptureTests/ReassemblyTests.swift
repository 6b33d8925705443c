import Capture
import NIOCore
import Testing

@Suite("TCP reassembly")
struct ReassemblyTests {
    let handshake = [
        segment(client, server, seq: 999, [.syn]),
        segment(server, client, seq: 4999, [.syn, .ack]),
    ]

    @Test func inOrderWithHandshakeAndFIN() {
        let lines = track(handshake + [
            segment(client, server, seq: 1000, [.ack, .psh], "GET"),
            segment(server, client, seq: 5000, [.ack, .psh], "OK"),
            segment(client, server, seq: 1003, [.ack, .fin]),
            segment(server, client, seq: 5002, [.ack, .fin]),
            segment(client, server, seq: 1004, [.ack]),
        ])
        #expect(lines == ["open 1 10.0.0.1:51000→10.0.0.2:443", "1 c2s \"GET\"", "1 s2c \"OK\"", "close 1 FIN"])
    }

    @Test func outOfOrderRetransmittedAndOverlapping() {
        let lines = track(handshake + [
            segment(client, server, seq: 1004, [.ack], "efgh"),  // early
            segment(client, server, seq: 1000, [.ack], "abcd"),  // fills the hole
            segment(client, server, seq: 1000, [.ack], "abcd"),  // retransmission
            segment(client, server, seq: 1006, [.ack], "XXij"),  // overlaps: the first copy wins
        ])
        #expect(lines == ["open 1 10.0.0.1:51000→10.0.0.2:443", "1 c2s \"abcd\"", "1 c2s \"efgh\"", "1 c2s \"ij\"",
                          "close 1 end of capture"])
    }

    @Test func holeThatNeverFillsIsAGap() {
        let lines = track(handshake + [
            segment(client, server, seq: 1000, [.ack], "ab"),
            segment(client, server, seq: 1005, [.ack], "fg"),
        ])
        #expect(lines == ["open 1 10.0.0.1:51000→10.0.0.2:443", "1 c2s \"ab\"", "1 c2s gap 3", "1 c2s \"fg\"",
                          "close 1 end of capture"])
    }

    @Test func pendingLimitGivesTheHoleUp() {
        var tracker = ConnectionTracker(limits: .init(maximumPendingBytes: 4))
        tracker.serverPorts = []
        let lines = track(handshake + [
            segment(client, server, seq: 1002, [.ack], "cd"),
            segment(client, server, seq: 1004, [.ack], "ef"),
            segment(client, server, seq: 1006, [.ack], "gh"),  // 6 bytes waiting > 4
            segment(client, server, seq: 1000, [.ack], "ab"),  // too late: already given up
        ], tracker: tracker)
        #expect(lines == ["open 1 10.0.0.1:51000→10.0.0.2:443", "1 c2s gap 2", "1 c2s \"cd\"", "1 c2s \"ef\"", "1 c2s \"gh\"",
                          "close 1 end of capture"])
    }

    @Test func captureStartingMidConnection() {
        // No SYN: the side on the lower port is taken as the server.
        let lines = track([
            segment(server, client, seq: 77_000, [.ack], "late"),
            segment(client, server, seq: 12, [.ack], "hi"),
        ])
        #expect(lines == ["open 1 10.0.0.1:51000→10.0.0.2:443 midstream", "1 s2c \"late\"", "1 c2s \"hi\"", "close 1 end of capture"])
    }

    @Test func assumedServerPortDecidesRolesMidstream() {
        let a = Endpoint(address: .v4(1), port: 8080)
        let b = Endpoint(address: .v4(2), port: 9000)
        let lines = track([segment(a, b, seq: 1, [.ack], "x")], tracker: ConnectionTracker(serverPorts: [9000]))
        #expect(lines.first == "open 1 0.0.0.1:8080→0.0.0.2:9000 midstream")
    }

    @Test func resetClosesAndPortReuseStartsANewConnection() {
        let lines = track(handshake + [
            segment(client, server, seq: 1000, [.ack], "one"),
            segment(server, client, seq: 5000, [.rst]),
            segment(client, server, seq: 1003, [.ack], "ignored after RST"),
            segment(client, server, seq: 88_000, [.syn]),
            segment(client, server, seq: 88_001, [.ack], "two"),
        ])
        #expect(lines == ["open 1 10.0.0.1:51000→10.0.0.2:443", "1 c2s \"one\"", "close 1 RST",
                          "open 2 10.0.0.1:51000→10.0.0.2:443", "2 c2s \"two\"", "close 2 end of capture"])
    }

    @Test func newSYNOnAnOpenConnectionIsPortReuse() {
        let lines = track(handshake + [
            segment(client, server, seq: 1000, [.ack], "one"),
            segment(client, server, seq: 999, [.syn]),  // SYN retransmission: same connection
            segment(client, server, seq: 50_000, [.syn]),
            segment(client, server, seq: 50_001, [.ack], "two"),
        ])
        #expect(lines == ["open 1 10.0.0.1:51000→10.0.0.2:443", "1 c2s \"one\"", "close 1 port reused",
                          "open 2 10.0.0.1:51000→10.0.0.2:443", "2 c2s \"two\"", "close 2 end of capture"])
    }

    @Test func sequenceNumbersWrapAround() {
        let lines = track([
            segment(client, server, seq: UInt32.max - 1, [.syn]),
            segment(client, server, seq: UInt32.max, [.ack], "ab"),
            segment(client, server, seq: 1, [.ack], "cd"),
        ])
        #expect(lines.dropFirst().prefix(2) == ["1 c2s \"ab\"", "1 c2s \"cd\""])
    }

    @Test func connectionLimitEvictsTheLeastRecent() {
        var segments: [TCPSegment] = []
        for index in 0..<5 {
            let c = Endpoint(address: .v4(100 + UInt32(index)), port: 40_000)
            segments.append(segment(c, server, seq: 1, [.syn], frame: index))
            segments.append(segment(c, server, seq: 2, [.ack], "d\(index)", frame: index))
        }
        var tracker = ConnectionTracker(limits: .init(maximumConnections: 2))
        var evicted = 0
        var opened = 0
        for item in segments {
            for event in tracker.process(item) {
                if case .closed(_, .evicted, _, _) = event { evicted += 1 }
                if case .opened = event { opened += 1 }
            }
            #expect(tracker.openConnectionCount <= 2)
        }
        #expect(opened == 5)
        #expect(evicted == 3)
    }
}

@Suite("Many connections")
struct ManyConnectionsTests {
    /// 30,000 short connections one after another, with room for 100 open ones: every
    /// one is opened and closed by its FINs, none is evicted, late segments of closed
    /// connections are ignored, and the tracker keeps no state for closed connections.
    @Test func shortConnectionsDoNotAccumulate() {
        var tracker = ConnectionTracker(limits: .init(maximumConnections: 100))
        var opened = 0
        var closedByFIN = 0
        var evicted = 0
        for index in 0..<30_000 {
            let c = Endpoint(address: .v4(0x0A00_0000 | UInt32(index >> 8)), port: UInt16(30_000 + index & 0xFF))
            let segments = [
                segment(c, server, seq: 1, [.syn]), segment(server, c, seq: 9, [.syn, .ack]),
                segment(c, server, seq: 2, [.ack], "x"), segment(c, server, seq: 3, [.ack, .fin]),
                segment(server, c, seq: 10, [.ack, .fin]), segment(c, server, seq: 4, [.ack]),
                segment(c, server, seq: 2, [.ack], "x"),  // a late retransmission
            ]
            for item in segments {
                for event in tracker.process(item) {
                    switch event {
                    case .opened: opened += 1
                    case .closed(_, .fin, _, _): closedByFIN += 1
                    case .closed(_, .evicted, _, _): evicted += 1
                    default: break
                    }
                }
            }
        }
        #expect(opened == 30_000)
        #expect(closedByFIN == 30_000)
        #expect(evicted == 0)
        #expect(tracker.openConnectionCount == 0)
    }
}

@Suite("Memory budget")
struct MemoryBudgetTests {
    /// 200 connections, each with a hole and 20 KB waiting behind it: with a 1 MB budget
    /// for all of them, the bytes waiting never pass it, the holes given up are reported
    /// as gaps, and every byte sent after a hole is still delivered.
    @Test func pendingBytesAcrossConnectionsAreBounded() {
        var tracker = ConnectionTracker(limits: .init(maximumPendingBytes: 1 << 20, maximumTotalPendingBytes: 1 << 20))
        var gaps = 0
        var delivered = 0
        let chunk = String(repeating: "z", count: 1_000)
        for index in 0..<200 {
            let c = Endpoint(address: .v4(0x0B00_0000 + UInt32(index)), port: 40_000)
            for event in tracker.process(segment(c, server, seq: 1, [.syn])) { _ = event }
            // Bytes 0..<100 are lost; 20 segments follow the hole.
            for piece in 0..<20 {
                for event in tracker.process(segment(c, server, seq: 102 + UInt32(piece * 1_000), [.ack], chunk)) {
                    switch event {
                    case .gap: gaps += 1
                    case .data(_, _, let bytes, _, _): delivered += bytes.readableBytes
                    default: break
                    }
                }
                #expect(tracker.pendingByteCount <= (1 << 20) + 1_000)
            }
        }
        for event in tracker.finish(frame: 0, time: 0) {
            switch event {
            case .gap: gaps += 1
            case .data(_, _, let bytes, _, _): delivered += bytes.readableBytes
            default: break
            }
        }
        #expect(gaps == 200)
        #expect(delivered == 200 * 20 * 1_000)
        #expect(tracker.pendingByteCount == 0)
    }
}
