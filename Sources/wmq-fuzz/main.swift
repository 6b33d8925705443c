import ArgumentParser
import CFuzzerDriver
import CommandLineSupport
import Foundation
import Fuzzing

@main
struct Fuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wmq-fuzz",
        abstract: "Fuzz targets for every wmq parser: seed corpora, libFuzzer runs, replays.",
        discussion: """
            Each target's harness is a plain function of the Fuzzing module; its corpus is
            corpora/<target>/ (minimised crashers in corpora/<target>/regressions/) and its
            libFuzzer dictionary corpora/<target>.dict. Tools/fuzz builds this tool with
            libFuzzer and AddressSanitizer and runs it; the normal build can list, generate
            and replay, which is what the tests do with every committed corpus file.

            Exit codes: 0 success; 1 an input broke an oracle (replay) or two implementations
            disagree (diff); 2 usage error; 3 unreadable input.
            """,
        subcommands: [List.self, Generate.self, Replay.self, Run.self, Rates.self, Diff.self])

    static func main() {
        // libFuzzer's -jobs/-fork children are started with the flags alone; the target
        // they fuzz comes from the environment `run` set up.
        if let name = ProcessInfo.processInfo.environment[Run.targetVariable], let target = FuzzTarget.named(name) {
            Foundation.exit(Run.drive(target, arguments: CommandLine.arguments))
        }
        mainWithToolExitCodes()
    }
}

func harness(named name: String) throws -> FuzzTarget {
    guard let target = FuzzTarget.named(name) else {
        throw ValidationError("unknown target \"\(name)\"; targets: \(FuzzTarget.all.map(\.name).joined(separator: ", "))")
    }
    return target
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The targets, with their maximum input length and what they exercise.")

    @Flag(help: "Only the names, one a line (for scripts).")
    var names = false

    @Option(help: "Only the targets of one fuzz build: codecs (run where only the codec modules carry coverage counters) or all.")
    var build: String?

    func validate() throws {
        if let build, FuzzTarget.Build(rawValue: build) == nil {
            throw ValidationError("--build takes codecs or all, not \(build)")
        }
    }

    func run() {
        for target in FuzzTarget.all where build.map({ $0 == target.build.rawValue }) ?? true {
            print(names ? target.name : "\(target.name.padding(toLength: 14, withPad: " ", startingAt: 0)) "
                  + "max_len \(String(target.maximumInputLength).padding(toLength: 6, withPad: " ", startingAt: 0)) \(target.summary)")
        }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen",
        abstract: "Writes the structure-aware seeds into corpora/<target>/ and the dictionaries into corpora/<target>.dict.",
        discussion: """
            Seeds are named seed-<hash of their bytes>, so running gen again adds nothing that is
            already there and removes nothing the fuzzer found. Small captures and HAR files from
            --captures are added to the capture and har corpora.
            """)

    @Option(help: "The corpora directory.")
    var output = "corpora"

    @Option(help: "Directory of captures to add to the capture and har seeds (files up to the target's max_len).")
    var captures = "captures"

    @Argument(help: "Targets to generate (default: all).")
    var targets: [String] = []

    func validate() throws {
        // The corpora folder is made if missing, its parent must exist: a mistyped path should
        // not grow a tree of folders somewhere unnoticed.
        let parent = URL(fileURLWithPath: output).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--output \(output): the folder \(parent) does not exist (create it first)")
        }
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ValidationError("--output \(output) is a file, not a folder")
        }
    }

    func run() throws {
        let chosen = try targets.isEmpty ? FuzzTarget.all : targets.map(harness(named:))
        let files = (try? FileManager.default.contentsOfDirectory(atPath: captures)) ?? []
        if !FileManager.default.fileExists(atPath: output) {
            print("wmq-fuzz gen: creating \(output)")
        }
        for target in chosen {
            var seeds = CorpusGenerator.seeds(for: target.name)
            for file in files.sorted() {
                let isHAR = file.hasSuffix(".har")
                let isCapture = file.hasSuffix(".pcap") || file.hasSuffix(".pcapng")
                guard (target.name == "har" && isHAR) || (target.name == "capture" && isCapture),
                      let data = FileManager.default.contents(atPath: "\(captures)/\(file)"),
                      data.count <= target.maximumInputLength else { continue }
                seeds.append(Array(data))
            }
            let directory = "\(output)/\(target.name)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var written = 0
            for seed in seeds {
                let path = "\(directory)/seed-\(fnv1a(seed))"
                if FileManager.default.fileExists(atPath: path) { continue }
                try Data(seed.prefix(target.maximumInputLength)).write(to: URL(fileURLWithPath: path))
                written += 1
            }
            let dictionary = CorpusGenerator.dictionary(for: target.name)
            if !dictionary.isEmpty {
                try (dictionary.joined(separator: "\n") + "\n").write(toFile: "\(output)/\(target.name).dict",
                                                                      atomically: true, encoding: .utf8)
            }
            print("\(target.name): \(seeds.count) seeds, \(written) new, \(dictionary.count) dictionary entries")
        }
    }

    /// A 64-bit FNV-1a hash, as a file name that depends on the bytes only.
    func fnv1a(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs files (or every file under directories) through a target's harness, without a fuzzer.",
        discussion: """
            Reproduces a crash or an oracle violation: the violation is printed and the exit code is 1.

            With --rounds N the inputs run N times over and the runs per second are printed: the \
            harness's own cost on fixed inputs, without libFuzzer's mutations (whose inputs differ \
            from one fuzz run to the next). Example, in the fuzz build: \
            wmq-fuzz replay deflate corpora/deflate --rounds 200
            """)

    @Argument(help: "The target.")
    var target: String

    @Argument(help: "Input files or directories.")
    var inputs: [String]

    @Option(help: "How many times to run the inputs; with more than one, the runs per second are printed.")
    var rounds = 1

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
    }

    func run() throws {
        let harness = try harness(named: target)
        var loaded: [(path: String, bytes: [UInt8])] = []
        for path in try files(inputs) {
            do {
                loaded.append((path, try readFile(path)))
            } catch {
                throw unreadableInput("wmq-fuzz", error.reason)
            }
        }
        var failures = 0
        for (path, bytes) in loaded {
            do {
                try harness.run(bytes)
            } catch {
                failures += 1
                print("\(path): \(error)")
            }
        }
        print("\(harness.name): \(loaded.count) inputs, \(failures) oracle violations")
        if rounds > 1 {
            // The first round above warmed caches and allocator; these are timed alone.
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 1..<rounds {
                for (_, bytes) in loaded { try? harness.run(bytes) }
            }
            let seconds = (clock.now - start) / .seconds(1)
            let runs = (rounds - 1) * loaded.count
            print("\(harness.name): \(runs) runs in \(String(format: "%.2f", seconds)) s, "
                + "\(Int(Double(runs) / max(seconds, 1e-9))) runs/s")
        }
        if failures > 0 { throw ExitCode(ToolExit.foundErrors) }
    }
}

/// Regular files under the given paths, recursively, sorted.
func files(_ paths: [String]) throws -> [String] {
    var out: [String] = []
    for path in paths {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            // Unreadable input, as --help says: exit 3, not a usage error.
            throw unreadableInput("wmq-fuzz", "\(path): no such file or folder")
        }
        if !isDirectory.boolValue {
            out.append(path)
            continue
        }
        let enumerator = FileManager.default.enumerator(atPath: path)
        while let relative = enumerator?.nextObject() as? String {
            let full = "\(path)/\(relative)"
            var isSubdirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &isSubdirectory), !isSubdirectory.boolValue {
                out.append(full)
            }
        }
    }
    return out.sorted()
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs libFuzzer on a target (in a build made by Tools/fuzz); the arguments after the target go to libFuzzer.",
        discussion: "Example: wmq-fuzz run mqtt311 -max_total_time=60 .build-fuzz/corpus/mqtt311 corpora/mqtt311")

    @Argument(help: "The target.")
    var target: String

    @Argument(parsing: .captureForPassthrough, help: "libFuzzer flags and corpus directories.")
    var libFuzzerArguments: [String] = []

    func run() throws {
        let harness = try harness(named: target)
        guard wmq_fuzz_driver_available() != 0 else {
            StandardError.write("wmq-fuzz: this build has no libFuzzer; build and run with Tools/fuzz \(target)\n")
            throw ExitCode(ToolExit.usage)
        }
        var arguments = [CommandLine.arguments[0]] + libFuzzerArguments
        if !libFuzzerArguments.contains(where: { $0.hasPrefix("-max_len=") }) {
            arguments.append("-max_len=\(harness.maximumInputLength)")
        }
        setenv(Self.targetVariable, harness.name, 1)
        throw ExitCode(Self.drive(harness, arguments: arguments))
    }

    static let targetVariable = "WMQ_FUZZ_TARGET"

    /// Hands `arguments` (program name first) to libFuzzer's driver, fuzzing `target`.
    static func drive(_ target: FuzzTarget, arguments: [String]) -> Int32 {
        RunningTarget.current = target
        var pointers: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var count = Int32(arguments.count)
        return pointers.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var base = buffer.baseAddress
            return wmq_fuzz_run_driver(&count, &base) { data, size in
                let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
                do {
                    try RunningTarget.current?.run(input)
                } catch {
                    // A broken oracle is a finding: crash so that libFuzzer keeps the input.
                    StandardError.write("wmq-fuzz: oracle violated: \(error)\n")
                    abort()
                }
                return 0
            }
        }
    }
}

/// The harness libFuzzer's C callback calls (a C function pointer cannot capture it).
enum RunningTarget {
    nonisolated(unsafe) static var current: FuzzTarget?
}

/// The arithmetic of `Tools/fuzz rate`, here where tests reach it.
struct Rates: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rates",
        abstract: "Tools/fuzz rate's figures: the ratio of two rates, or the median of ratios read one a line from standard input.")

    @Option(help: "This build's rate (with --theirs: prints ours / theirs, 0 when theirs is 0).")
    var ours: Double?

    @Option(help: "The other build's rate.")
    var theirs: Double?

    func validate() throws {
        if (ours == nil) != (theirs == nil) { throw ValidationError("give --ours and --theirs together, or neither (median of standard input)") }
    }

    func run() throws {
        if let ours, let theirs {
            print(String(format: "%.3f", RateStatistics.ratio(ours: ours, theirs: theirs)))
            return
        }
        var values: [Double] = []
        while let line = readLine() {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { continue }
            guard let value = Double(text) else { throw ValidationError("not a number: \(text)") }
            values.append(value)
        }
        guard let median = RateStatistics.median(values) else { throw ValidationError("no numbers on standard input") }
        print(String(format: "%.2f %d", median, values.count))
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compares a parser with an independent implementation of the same format on the committed corpus and generated inputs.",
        discussion: """
            websocket: the frame parser against NIOWebSocket's WebSocketFrameDecoder, in process. \
            The frames both find must be the same, field by field, and a frame one refuses the other \
            must refuse too, unless the difference is a known one, listed with its reason in \
            corpora/websocket.oracle. Prints how many inputs agreed, differed as known, \
            and disagreed (each disagreement with its input file or generated input in hex).
            """)

    @Argument(help: "The target (websocket).")
    var target: String

    @Option(help: "Generated inputs besides the committed corpus.")
    var generated = 10_000

    @Option(help: "The seed of the generated inputs.")
    var seed: UInt64 = 1

    func validate() throws {
        guard target == "websocket" else { throw ValidationError("diff has an oracle for websocket only so far") }
        guard generated >= 0 else { throw ValidationError("--generated must be 0 or more") }
    }

    func run() throws {
        // The committed corpus (regressions included), read as replay reads it; run from the repository's root.
        let paths = try files(["corpora/websocket"])
        let known: Set<String>
        var inputs: [(String, [UInt8])] = []
        do throws(FileReadError) {
            known = Set(FrameOracle.knownDifferences(try readTextFile("corpora/websocket.oracle")).keys)
            for path in paths { inputs.append((path, try readFile(path))) }
        } catch {
            throw unreadableInput("wmq-fuzz", "\(error.reason) (run from the repository's root)")
        }
        let corpus = inputs.count
        inputs += FrameOracle.generated(count: generated, seed: seed).map { ("generated " + $0.map { String(format: "%02x", $0) }.joined(), $0) }
        var counts: [String: Int] = [:]
        var disagreements: [String] = []
        for (name, input) in inputs {
            switch FrameOracle.compare(input, known: known) {
            case .agree: counts["agree", default: 0] += 1
            case .known(let code): counts["known \(code)", default: 0] += 1
            case .notCompared: counts["not compared", default: 0] += 1
            case .disagree(let why):
                counts["disagree", default: 0] += 1
                if disagreements.count < 20 { disagreements.append("\(name.prefix(120)): \(why)") }
            }
        }
        print("websocket against NIOWebSocket's WebSocketFrameDecoder: \(corpus) corpus and \(generated) generated inputs")
        for (key, value) in counts.sorted(by: { $0.key < $1.key }) { print("  \(key): \(value)") }
        for line in disagreements { print("  DISAGREE \(line)") }
        if counts["disagree", default: 0] > 0 { throw ExitCode(ToolExit.foundErrors) }
    }
}
