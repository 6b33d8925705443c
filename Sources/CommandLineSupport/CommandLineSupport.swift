public import ArgumentParser
public import ByteStream
import Foundation
import Synchronization

/// The exit codes every wmq tool documents.
public enum ToolExit {
    /// Decoded (or done) without errors.
    public static let success: Int32 = 0
    /// Decoded, with protocol or capture errors reported.
    public static let foundErrors: Int32 = 1
    /// The command line was wrong.
    public static let usage: Int32 = 2
    /// The input could not be read.
    public static let unreadableInput: Int32 = 3
    /// Nothing was done: every item was skipped (wmq-replay: no connection could be replayed).
    public static let nothingDone: Int32 = 4
    /// Stopped by Ctrl-C or SIGTERM after writing what was done (128 + SIGINT, as shells report it).
    public static let interrupted: Int32 = 130
}

extension ParsableCommand {
    /// Parses and runs the command; usage errors exit with 2 (ArgumentParser would use 64).
    public static func mainWithToolExitCodes() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exitWithToolCode(for: error)
        }
    }
}

extension AsyncParsableCommand {
    /// The async twin of ``ParsableCommand/mainWithToolExitCodes()``.
    public static func runWithToolExitCodes() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exitWithToolCode(for: error)
        }
    }
}

extension ParsableCommand {
    /// Prints the error as ArgumentParser would and exits with the documented code.
    static func exitWithToolCode(for error: any Error) -> Never {
        if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
        let code = exitCode(for: error)
        if code == .success {
            print(fullMessage(for: error))
            Foundation.exit(0)
        }
        StandardError.write(fullMessage(for: error) + "\n")
        Foundation.exit(code == .validationFailure ? ToolExit.usage : code.rawValue)
    }
}

/// Says on standard error why `tool`'s input cannot be used; throw what it returns to exit with
/// ``ToolExit/unreadableInput``.
public func unreadableInput(_ tool: String, _ message: String) -> ExitCode {
    StandardError.write("\(tool): \(message)\n")
    return ExitCode(ToolExit.unreadableInput)
}

public enum StandardError {
    public static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    public static var isTerminal: Bool { isatty(2) == 1 }
}

/// Standard output, buffered: one write per 64 KiB or more instead of one per line.
public final class OutputBuffer {
    private var buffer = ByteWriter(capacity: 1 << 17)
    private static let flushSize = 1 << 16

    public init() {}

    deinit {
        flush()
    }

    public static var isTerminal: Bool { isatty(1) == 1 }

    public func line(_ text: String) {
        buffer.append(contentsOf: text)
        buffer.append(0x0A)
        if buffer.count >= Self.flushSize { flush() }
    }

    /// Appends a line that the caller writes straight into the buffer, as UTF-8.
    public func line(_ write: (inout ByteWriter) -> Void) {
        write(&buffer)
        buffer.append(0x0A)
        if buffer.count >= Self.flushSize { flush() }
    }

    /// Appends bytes that are already whole lines: a large block goes out as it is, after
    /// what the buffer holds, instead of being copied into it.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count >= Self.flushSize {
            flush()
            Self.writeOut(bytes)
            return
        }
        buffer.append(bytes)
        if buffer.count >= Self.flushSize { flush() }
    }

    public func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { Self.writeOut($0) }
        buffer.removeAll()
    }

    private static func writeOut(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let written = Foundation.write(1, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            if written < 0, errno == EINTR { continue }
            if written <= 0 { break }
            offset += written
        }
    }
}

/// Joins the hard-wrapped lines of each paragraph of a `--help` discussion, so that
/// ArgumentParser wraps them to the terminal instead of breaking each source line again;
/// lines indented by two spaces (examples, lists) stay as they are.
public func reflowHelp(_ text: String) -> String {
    text.components(separatedBy: "\n\n").map { paragraph in
        var lines: [String] = []
        for line in paragraph.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("  ") || lines.isEmpty || lines[lines.count - 1].hasPrefix("  ") {
                lines.append(line)
            } else {
                lines[lines.count - 1] += " " + line
            }
        }
        return lines.joined(separator: "\n")
    }.joined(separator: "\n\n")
}

/// SIGINT (Ctrl-C) and SIGTERM as an async stream, so that a long-running tool can stop
/// cleanly (send its goodbyes, flush its files) instead of being killed mid-write.
public final class TerminationSignals: @unchecked Sendable {  // the sources are only touched in init and cancel
    public let stream: AsyncStream<Void>
    private let sources: [any DispatchSourceSignal]

    public init() {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
        self.stream = stream
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield() }
            source.resume()
            return source
        }
    }

    public func cancel() {
        for source in sources { source.cancel() }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM as a flag for a tool that works through a file in a loop:
/// the loop asks ``isRequested`` and ends where it is, and the tool then writes what it has
/// (closes a JSON array, prints the statistics so far) instead of being killed mid-output.
public final class Interruption {
    /// Set from the signal sources' queue, read by the loop.
    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    private let flag: Flag
    private let sources: [any DispatchSourceSignal]

    /// Starts listening: from now on SIGINT and SIGTERM set the flag instead of ending the process.
    public init() {
        let flag = Flag()
        self.flag = flag
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { flag.value.store(true, ordering: .relaxed) }
            source.resume()
            return source
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }

    public var isRequested: Bool { flag.value.load(ordering: .relaxed) }
}

/// The lines of standard input, trimmed, blank ones left out. Read on a thread of its own:
/// readLine blocks.
public func standardInputLines() -> AsyncStream<String> {
    AsyncStream { continuation in
        Thread.detachNewThread {
            while let line = readLine() {
                let text = line.trimmingCharacters(in: .whitespaces)
                if !text.isEmpty { continuation.yield(text) }
            }
            continuation.finish()
        }
    }
}

/// `--color auto|always|never`: colour on a terminal, as people expect, none when piped.
public enum ColourChoice: String, ExpressibleByArgument, CaseIterable, Sendable {
    case auto, always, never

    /// Whether standard output gets colours: `always`, or `auto` on a terminal unless
    /// NO_COLOR is set (no-color.org) or TERM is dumb.
    public var isOn: Bool {
        switch self {
        case .always: return true
        case .never: return false
        case .auto:
            let environment = ProcessInfo.processInfo.environment
            if let noColour = environment["NO_COLOR"], !noColour.isEmpty { return false }
            if environment["TERM"] == "dumb" { return false }
            return isatty(STDOUT_FILENO) == 1
        }
    }
}

/// A progress line on standard error for long files, when standard error is a terminal: the
/// same bar in every tool that reads a large capture (wmq-decode, wmq-replay, wmq-mock --serve).
public final class Progress {
    private let total: Int
    private let enabled: Bool
    private var lastShown = ContinuousClock.now
    private var shown = false

    public init(path: String) {
        total = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
        enabled = StandardError.isTerminal && path != "-" && total > 8 << 20
    }

    /// `offset` is only asked for when the bar is shown: it costs libpcap an lseek.
    public func update(_ offset: @autoclosure () -> Int) {
        guard enabled, ContinuousClock.now - lastShown > .milliseconds(200) else { return }
        let offset = offset()
        lastShown = .now
        shown = true
        let percent = min(100, offset * 100 / max(1, total))
        let bar = String(repeating: "█", count: percent / 5) + String(repeating: "░", count: 20 - percent / 5)
        StandardError.write("\r\(bar) \(percent)%  \(offset >> 20) of \(total >> 20) MiB")
    }

    public func done() {
        if shown { StandardError.write("\r\u{1B}[K") }
    }
}
