import Capture
import Foundation
import TestSupport
import Testing

/// Runs the built `wmq-decode` as a user would, checking output and exit codes.
@Suite("wmq-decode end to end")
struct DecodeTests {
    static let root = TestEnvironment.root
    static let sample = root.appendingPathComponent("captures/works-sample.pcap").path

    /// The binaries sit beside the test bundle in the build folder.
    static func binary(_ name: String = "wmq-decode") -> String { TestEnvironment.builtBinary(name) }

    struct Run {
        var status: Int32
        var output: String
        var error: String
        var lines: [String] { output.split(separator: "\n").map(String.init) }
    }

    static func run(_ arguments: [String], stdin: Data? = nil, tool: String = "wmq-decode") throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary(tool))
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        if stdin != nil { process.standardInput = input }
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(stdin)
            try input.fileHandleForWriting.close()
        }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                   error: String(decoding: error, as: UTF8.self))
    }

    static func temporary(_ data: Data) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-\(UUID().uuidString).pcap").path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    static func jsonObjects(_ run: Run) throws -> [[String: Any]] {
        try run.lines.map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw CocoaError(.propertyListReadCorrupt)
            }
            return object
        }
    }

    @Test func textOutputOfTheSample() throws {
        let run = try Self.run([Self.sample, "--format", "text", "--redaction-key", "test"])
        #expect(run.status == 0)
        let expected = [
            "c1  192.0.2.10:51234 → 198.51.100.20:80  CONNECT MQTT 3.1.1 client \"web-beejs_0123456789ab\" keep-alive 50s clean user \"dummy\"",
            "c1  198.51.100.20:80 → 192.0.2.10:51234  CONNACK Connection Accepted (0x0)",
            "▸ REV_MSG · channel 300012345 「開発チーム」 (room) · 田中 太郎: 明日のリリース、準備できました👍",
            "c1  192.0.2.10:51234 → 198.51.100.20:80  PUBACK id 1",
            "▸ REV_MSG · channel 300012345 「開発チーム」 (room) · Alice Smith: [sticker line 11537/52002734]",
            "▸ read receipt · channel 300012345 · reader 110002 read up to message 1002",
            "▸ channel message · channel 300099 · Bob: Standup in 5 minutes",
            "⚠ MQTT packet split across WebSocket messages",
            "c1  198.51.100.20:80 → 192.0.2.10:51234  PINGRESP",
            "c1  192.0.2.10:51234 → 198.51.100.20:80  WebSocket close 1000 (normal closure) \"bye\"",
            "c1  192.0.2.10:51234 ⇄ 198.51.100.20:80  closed (FIN)",
        ]
        var position = 0
        for line in expected {
            guard let found = run.lines[position...].firstIndex(where: { $0.hasSuffix(line) }) else {
                Issue.record("missing or out of order: \(line)")
                continue
            }
            position = found + 1
        }
        for secret in ["fake-session-not-real", "fake-token-0001", "fake-neo", "fake-user"] {
            #expect(!run.output.contains(secret))
        }
    }

    /// Piped output defaults to JSON Lines; every MQTT object carries the documented keys.
    @Test func jsonLinesSchema() throws {
        let run = try Self.run([Self.sample])
        #expect(run.status == 0)
        let objects = try Self.jsonObjects(run)
        #expect(objects.allSatisfy { $0["v"] as? Int == 1 })
        let mqtt = objects.filter { $0["event"] as? String == "mqtt" }
        #expect(mqtt.count == 11)
        for object in mqtt {
            for key in ["type", "connection", "direction", "src", "dst", "time", "remainingLength"] {
                #expect(object[key] != nil, "\(key) missing in \(object)")
            }
        }
        let publishes = mqtt.filter { $0["type"] as? String == "PUBLISH" }
        #expect(publishes.map { $0["payloadLength"] as? Int } == [336, 343, 65, 137])
        #expect(publishes.map { $0["qos"] as? Int } == [1, 1, 0, 0])
        #expect(publishes.compactMap { $0["packetId"] as? Int } == [1, 2])
        let works = publishes.compactMap { $0["works"] as? [String: Any] }
        #expect(works.map { $0["kind"] as? String } == ["notification", "notification", "read-receipt", "channel-message"])
        #expect(mqtt.first?["clientId"] as? String == "web-beejs_0123456789ab")
        #expect(mqtt.first?["protocolLevel"] as? Int == 4)
        #expect(mqtt.first?["direction"] as? String == "c2s")
        #expect(mqtt.first?["src"] as? String == "192.0.2.10:51234")
    }

    @Test func jsonArrayAndStats() throws {
        let array = try Self.run([Self.sample, "--format", "json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(array.output.utf8)) as? [[String: Any]]
        #expect(parsed?.count == 17)
        let stats = try Self.run([Self.sample, "--stats", "--format", "jsonl"])
        let object = try Self.jsonObjects(stats).first
        #expect(object?["packets"] as? Int == 11)
        let connection = (object?["connections"] as? [[String: Any]])?.first
        #expect(connection?["qos1Completed"] as? Int == 2)
        #expect(connection?["flowsOpen"] as? Int == 0)
        #expect(connection?["pings"] as? Int == 1)
        let text = try Self.run([Self.sample, "--stats", "--format", "text"])
        #expect(text.output.contains("QoS flows: 2 QoS 1 and 0 QoS 2 completed, 0 open"))
    }

    @Test func filters() throws {
        let acks = try Self.jsonObjects(try Self.run([Self.sample, "--type", "PUBACK,pingreq"]))
        #expect(acks.map { $0["type"] as? String } == ["PUBACK", "PUBACK", "PINGREQ"])
        let topic = try Self.jsonObjects(try Self.run([Self.sample, "--topic", "other/#"]))
        #expect(topic.isEmpty)
        let matched = try Self.jsonObjects(try Self.run([Self.sample, "--topic", "+"]))
        #expect(matched.count == 4)
        let none = try Self.jsonObjects(try Self.run([Self.sample, "--connection", "c2"]))
        #expect(none.isEmpty)
        let early = try Self.jsonObjects(try Self.run([Self.sample, "--to", "0.07"]))
        #expect(early.allSatisfy { ($0["time"] as? Double ?? 0) <= 1_763_776_800.07 })
        #expect(early.count == 4)
    }

    @Test func redaction() throws {
        let one = try Self.run([Self.sample, "-V", "--format", "text", "--redaction-key", "k1"])
        let again = try Self.run([Self.sample, "-V", "--format", "text", "--redaction-key", "k1"])
        let other = try Self.run([Self.sample, "-V", "--format", "text", "--redaction-key", "k2"])
        #expect(one.output == again.output)
        #expect(one.output != other.output)
        #expect(one.output.contains("Cookie: WORKS_USER_ID=‹cookie:"))
        let shown = try Self.run([Self.sample, "-V", "--format", "text", "--no-redact"])
        #expect(shown.output.contains("WORKS_SES=fake-session-not-real"))
        #expect(shown.output.contains("token = fake-token-0001"))
    }

    /// `-V` shows the payload of PUBLISH packets that are not Works messages: text when
    /// it is UTF-8, hex otherwise, cut at 200 bytes.
    @Test func verbosePayloads() throws {
        let capture = Self.root.appendingPathComponent("captures/mqtt311-ws.pcap").path
        let run = try Self.run([capture, "--format", "text", "-V", "--type", "PUBLISH"])
        #expect(run.status == 0)
        #expect(run.output.contains("payload = \"hello at QoS 1\""))
        #expect(run.output.contains("payload = 0x000102030405"))
        #expect(run.output.contains("… (102400 bytes)"))
    }

    @Test func standardInput() throws {
        let run = try Self.run(["-", "--stats", "--format", "text"], stdin: try Data(contentsOf: URL(fileURLWithPath: Self.sample)))
        #expect(run.status == 0)
        #expect(run.output.contains("1 connection(s), 11 MQTT packet(s), 0 error(s)"))
    }

    /// Reading a live pipe (`tcpdump -U -w - | wmq-decode -`): each packet is printed as
    /// soon as its frame is read, not when the input ends.
    @Test func standardInputIsDecodedAsItArrives() throws {
        let sample = try Data(contentsOf: URL(fileURLWithPath: Self.sample))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary())
        process.arguments = ["-", "--format", "jsonl"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // The first 1,126 bytes are frames 1–7: the TCP handshake, the HTTP Upgrade, the
        // CONNECT and the CONNACK.
        input.fileHandleForWriting.write(sample.prefix(1_126))
        var seen = Data()
        let deadline = Date().addingTimeInterval(20)
        let descriptor = output.fileHandleForReading.fileDescriptor
        while !String(decoding: seen, as: UTF8.self).contains("\"CONNECT\"") && Date() < deadline {
            // poll() bounds the wait: a blocking read would hang the test if nothing comes.
            var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&request, 1, 100) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = read(descriptor, &chunk, chunk.count)
            if count <= 0 { break }
            seen += Data(chunk.prefix(count))
        }
        #expect(String(decoding: seen, as: UTF8.self).contains("\"CONNECT\""), "nothing printed before the input ended")
        input.fileHandleForWriting.write(sample.dropFirst(1_126))
        try input.fileHandleForWriting.close()
        seen += output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(String(decoding: seen, as: UTF8.self).split(separator: "\n").count == 17)
    }

    @Test func truncatedCaptureKeepsWhatCameBefore() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.sample))
        let path = try Self.temporary(data.prefix(1500))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Self.run([path, "--format", "text"])
        #expect(run.status == 1)
        #expect(run.output.contains("CONNACK Connection Accepted"))
        #expect(run.output.contains("✗ file: frame 9"))
        #expect(run.output.contains("truncated dump file"))
        #expect(run.error.contains(path))
    }

    @Test func corruptMQTTIsReportedAndDecodingGoesOn() throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: Self.sample))
        let marker = Data([0x32, 0xE0, 0x02, 0x00, 0x0C])  // PUBLISH QoS 1, remaining 352, topic length 12
        let range = try #require(data.range(of: marker))
        data[range.lowerBound] = 0x36  // QoS 3
        let path = try Self.temporary(data)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Self.run([path, "--format", "text"])
        #expect(run.status == 1)
        #expect(run.output.contains("✗ MQTT invalidQoS in PUBLISH at byte 4: PUBLISH with QoS 3 [MQTT-3.3.1-4]"))
        #expect(run.output.contains("Alice Smith: [sticker line 11537/52002734]"))
        // JSON Lines to a pipe (written on the second thread, no statistics kept) exit alike.
        let lines = try Self.run([path, "--format", "jsonl"])
        #expect(lines.status == 1)
        #expect(lines.output.contains(#""event":"error","connection":"c1""#))
        #expect(lines.output.contains(#""sender.name":"Alice Smith""#))
    }

    @Test func unreadableInputIsExit3() throws {
        let notCapture = try Self.run([Self.root.appendingPathComponent("Package.swift").path])
        #expect(notCapture.status == 3)
        #expect(notCapture.error.contains("not a pcap or pcapng file"))
        #expect(try Self.run(["/nonexistent/capture.pcap"]).status == 3)
        // A directory is refused with a message (reading it once trapped in Foundation).
        let directory = try Self.run([FileManager.default.temporaryDirectory.path])
        #expect(directory.status == 3)
        #expect(directory.error.contains("is a directory"), "\(directory.error)")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-\(UUID().uuidString).pcap").path
        let writer = try PcapWriter(path: path, linkType: LinkType(rawValue: 147))
        writer.write([1, 2, 3], time: 0)
        writer.flush()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let unknown = try Self.run([path])
        #expect(unknown.status == 3)
        #expect(unknown.error.contains("unsupported link type 147"))
    }

    @Test func usageErrorsAreExit2() throws {
        #expect(try Self.run([Self.sample, "--assume", "80=ftp"]).status == 2)
        #expect(try Self.run([Self.sample, "--type", "HELLO"]).status == 2)
        #expect(try Self.run([]).status == 2)
        #expect(try Self.run([Self.sample, "--no-such-flag"]).status == 2)
    }

    @Test func helpExplainsExitCodesAndFormats() throws {
        let run = try Self.run(["--help"])
        #expect(run.status == 0)
        #expect(run.output.contains("Exit codes: 0 decoded without errors"))
        #expect(run.output.contains("--assume"))
        #expect(run.output.contains("docs/decode-format.md"))
    }

    /// The committed sample is exactly what the generator writes: it was made by the
    /// project's own script, with pcap, IPv4, TCP, WebSocket and MQTT encoders
    /// independent of ours.
    @Test func sampleIsReproducible() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-sample-\(UUID().uuidString).pcap")
        defer { try? FileManager.default.removeItem(at: out) }
        let process = Process()
        // python3 from PATH; `make deps` installs it. Missing, the run fails (status 127).
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let outNG = out.appendingPathExtension("ng")
        let outHAR = out.appendingPathExtension("har")
        defer {
            try? FileManager.default.removeItem(at: outNG)
            try? FileManager.default.removeItem(at: outHAR)
        }
        process.arguments = ["python3", Self.root.appendingPathComponent("Tools/make-sample-session.py").path, out.path, outNG.path,
                             outHAR.path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(try Data(contentsOf: out) == Data(contentsOf: URL(fileURLWithPath: Self.sample)))
        #expect(try Data(contentsOf: outNG) == Data(contentsOf: URL(fileURLWithPath: Self.sample + "ng")))
        #expect(try Data(contentsOf: outHAR) == Data(contentsOf: Self.root.appendingPathComponent("captures/works-sample.har")))
    }

    static let har = root.appendingPathComponent("captures/works-sample.har").path

    /// The HAR export of the session gives the same MQTT packets and Works annotations
    /// as the capture of it.
    @Test func harDecodesLikeTheCapture() throws {
        func packets(_ path: String) throws -> [String] {
            try Self.jsonObjects(try Self.run([path, "--redaction-key", "k"])).filter { $0["event"] as? String == "mqtt" }.map {
                "\($0["direction"] ?? "") \($0["type"] ?? "") \($0["packetId"] ?? "-") \($0["payloadLength"] ?? "-") "
                    + "\(($0["works"] as? [String: Any])?["summary"] ?? "")"
            }
        }
        let fromHAR = try packets(Self.har)
        #expect(fromHAR.count == 11)
        #expect(fromHAR == (try packets(Self.sample)))
        let text = try Self.run([Self.har, "--format", "text"])
        #expect(text.status == 0)
        #expect(text.output.contains("⚠ MQTT packet split across WebSocket messages"))
    }

    @Test func damagedHAR() throws {
        let broken = try Self.temporary(Data(#"{"log": {"entries": [ {"request": }"#.utf8))
        defer { try? FileManager.default.removeItem(atPath: broken) }
        let run = try Self.run([broken])
        #expect(run.status == 3)
        #expect(run.error.contains("HAR: JSON syntax error at byte 34 of the file"))
        var har = try String(contentsOfFile: Self.har, encoding: .utf8)
        let marker = try #require(har.range(of: #""data": ""#))
        har.insert(contentsOf: "!!", at: marker.upperBound)  // not base64 any more
        let bad = try Self.temporary(Data(har.utf8))
        defer { try? FileManager.default.removeItem(atPath: bad) }
        let badRun = try Self.run([bad, "--format", "text"])
        #expect(badRun.status == 1)
        #expect(badRun.output.contains("✗ HAR: message 1 of entry 1 is not base64"))
        #expect(badRun.output.contains("PINGRESP"))
    }

    /// The pcapng form of the sample decodes to the same events as the pcap.
    @Test func pcapngDecodesLikePcap() throws {
        let pcap = try Self.run([Self.sample, "--redaction-key", "k"])
        let pcapng = try Self.run([Self.sample + "ng", "--redaction-key", "k"])
        #expect(pcapng.status == 0)
        #expect(pcapng.output == pcap.output)
        #expect(pcap.lines.count == 17)
    }
}
