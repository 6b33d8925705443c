import Foundation
import TestSupport
import Testing

/// `wmq-fuzz` as a parser maintainer runs it in a normal build: list, gen, replay, and
/// `run`, which needs the fuzz build.
@Suite("wmq-fuzz end to end")
struct FuzzToolTests {
    static func fuzz(_ arguments: [String]) throws -> DecodeTests.Run {
        try DecodeTests.run(arguments, tool: "wmq-fuzz")
    }

    @Test func listNamesEveryTarget() throws {
        let run = try Self.fuzz(["list", "--names"])
        #expect(run.status == 0)
        #expect(run.lines == ["mqtt311", "mqtt5", "mqtt-chunked", "websocket", "http-upgrade", "deflate", "capture", "works", "har",
                              "mock-config", "scenario", "broker", "dialects"])
    }

    /// Tools/fuzz rate's arithmetic through the tool: a ratio, and the median of lines on stdin.
    @Test func ratesAreComputedByTheTool() throws {
        #expect(try Self.fuzz(["rates", "--ours", "150", "--theirs", "100"]).output == "1.500\n")
        let median = try DecodeTests.run(["rates"], stdin: Data("1.2\n0.8\n1.0\n".utf8), tool: "wmq-fuzz")
        #expect(median.status == 0 && median.output == "1.00 3\n", "\(median.output) \(median.error)")
        #expect(try DecodeTests.run(["rates"], stdin: Data("fast\n".utf8), tool: "wmq-fuzz").status == 2)
        #expect(try Self.fuzz(["rates", "--ours", "1"]).status == 2)
    }

    /// Each fuzz build's targets (Tools/fuzz asks): the codecs' build holds the targets whose
    /// harness uses only ByteStream, MQTTWire and WebSocketWire; the other build the rest.
    @Test func eachBuildListsItsTargets() throws {
        let codecs = try Self.fuzz(["list", "--names", "--build", "codecs"])
        let rest = try Self.fuzz(["list", "--names", "--build", "all"])
        #expect(codecs.lines == ["mqtt311", "mqtt5", "mqtt-chunked", "websocket", "http-upgrade", "deflate"])
        #expect(Set(codecs.lines + rest.lines).count == 13 && Set(codecs.lines).isDisjoint(with: rest.lines))
        #expect(try Self.fuzz(["list", "--build", "everything"]).status == 2)
    }

    /// gen writes seeds and a dictionary; a second gen adds nothing; replay runs them all.
    @Test func genThenReplay() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wmq-corpora-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try Self.fuzz(["gen", "--output", directory, "--captures", DecodeTests.root.appendingPathComponent("captures").path,
                                   "mqtt5", "har"])
        #expect(first.status == 0, "\(first.error)")
        let seeds = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/mqtt5")
        #expect(seeds.count > 100)
        #expect(FileManager.default.fileExists(atPath: "\(directory)/mqtt5.dict"))
        // The bundled HAR joins the har seeds, byte for byte.
        let sample = try Data(contentsOf: DecodeTests.root.appendingPathComponent("captures/works-sample.har"))
        let har = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/har")
        #expect(try har.contains { try Data(contentsOf: URL(fileURLWithPath: "\(directory)/har/\($0)")) == sample })
        let entries = try String(contentsOfFile: "\(directory)/har.dict", encoding: .utf8).split(separator: "\n").count
        #expect(first.lines.contains("har: \(har.count) seeds, \(har.count) new, \(entries) dictionary entries"), "\(first.output)")
        let second = try Self.fuzz(["gen", "--output", directory, "mqtt5"])
        #expect(second.output.contains(" 0 new"), "\(second.output)")
        let replay = try Self.fuzz(["replay", "mqtt5", "\(directory)/mqtt5"])
        #expect(replay.status == 0)
        #expect(replay.lines.last == "mqtt5: \(seeds.count) inputs, 0 oracle violations")
    }

    /// --rounds runs the inputs again and prints how many runs a second the harness made.
    @Test func replayRounds() throws {
        let corpus = DecodeTests.root.appendingPathComponent("corpora/deflate").path
        let inputs = try files(under: corpus)
        let replay = try Self.fuzz(["replay", "deflate", corpus, "--rounds", "3"])
        #expect(replay.status == 0, "\(replay.error)")
        #expect(replay.lines.first == "deflate: \(inputs) inputs, 0 oracle violations")
        let timed = try #require(replay.lines.last)
        // The two rounds after the first are timed.
        #expect(timed.hasPrefix("deflate: \(2 * inputs) runs in "), "\(timed)")
        let rate = timed.split(separator: " ").dropLast().last.flatMap { Int($0) }
        #expect((rate ?? 0) > 0, "\(timed)")
        let none = try Self.fuzz(["replay", "deflate", corpus, "--rounds", "0"])
        #expect(none.status == 2)
        #expect(none.error.contains("--rounds must be at least 1"))
    }

    private func files(under path: String) throws -> Int {
        let enumerator = FileManager.default.enumerator(atPath: path)
        var count = 0
        while let relative = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(path)/\(relative)", isDirectory: &isDirectory), !isDirectory.boolValue {
                count += 1
            }
        }
        return count
    }

    @Test func usageErrorsAndMissingFuzzer() throws {
        let unknown = try Self.fuzz(["replay", "nope", "."])
        #expect(unknown.status == 2)
        #expect(unknown.error.contains("unknown target \"nope\""))
        // An input that is not there is unreadable input: 3, as --help says.
        let missing = try Self.fuzz(["replay", "works", "/nonexistent/input"])
        #expect(missing.status == 3)
        #expect(missing.error.contains("/nonexistent/input: no such file or folder"), "\(missing.error)")
        // gen does not grow a tree under a mistyped path.
        let nowhere = try Self.fuzz(["gen", "--output", "/no/such/dir/corpora"])
        #expect(nowhere.status == 2)
        #expect(nowhere.error.contains("the folder /no/such/dir does not exist"), "\(nowhere.error)")
        #expect(!FileManager.default.fileExists(atPath: "/no/such/dir"))
        // The normal build has no libFuzzer: run says how to get one.
        let run = try Self.fuzz(["run", "works", "-runs=1"])
        #expect(run.status == 2)
        #expect(run.error.contains("Tools/fuzz works"))
    }
}

/// `wmq-bench --help` prints help, and does not start the minutes-long codec benchmark.
@Suite("wmq-bench command line")
struct BenchCommandLineTests {
    @Test func helpIsHelp() throws {
        let started = Date()
        let help = try DecodeTests.run(["--help"], tool: "wmq-bench")
        #expect(help.status == 0)
        #expect(help.output.contains("Usage:") && help.output.contains("wmq-bench pipeline CAPTURE"))
        #expect(Date().timeIntervalSince(started) < 10)
        let wrong = try DecodeTests.run(["--fast"], tool: "wmq-bench")
        #expect(wrong.status == 2)
        #expect(wrong.error.contains("unknown arguments --fast"))
    }
}
