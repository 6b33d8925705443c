import Foundation
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

    @Test func usageErrorsAndMissingFuzzer() throws {
        let unknown = try Self.fuzz(["replay", "nope", "."])
        #expect(unknown.status == 2)
        #expect(unknown.error.contains("unknown target \"nope\""))
        let missing = try Self.fuzz(["replay", "works", "/nonexistent/input"])
        #expect(missing.status == 2)
        // The normal build has no libFuzzer: run says how to get one.
        let run = try Self.fuzz(["run", "works", "-runs=1"])
        #expect(run.status == 2)
        #expect(run.error.contains("Tools/fuzz works"))
    }
}
