import ArgumentParser
import Capture
import CommandLineSupport
import Dialects
import Dissector
import Foundation

@main
struct CaptureTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wmq-capture",
        abstract: "Capture live MQTT-over-WebSocket traffic into files Wireshark opens.",
        discussion: reflowHelp("""
            live captures on a network interface with libpcap and writes pcap files (libpcap's own
            format, as tcpdump writes them), optionally rotated, optionally decoded live as
            wmq-decode prints them. proxy is a recording WebSocket proxy for wss:// services:
            clients connect to it in plain ws://, it connects upstream with TLS and records what
            crossed, decrypted, into a pcap file.

            Exit codes: 0 captured; 2 usage error; 3 the capture cannot start (no permission — it
            needs CAP_NET_RAW —, no such interface, a bad filter, a file that cannot be written).
            """),
        subcommands: [Live.self, Proxy.self])

    static func main() async { await runWithToolExitCodes() }
}

struct Live: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture on an interface into a pcap file (or a ring of them), optionally decoded live.",
        discussion: reflowHelp("""
            Packets are filtered in the kernel: --port P (repeatable) keeps TCP traffic on those
            ports, --filter takes any BPF expression (tcpdump's syntax); both together must both
            match. The file is created 0600 (it holds what crossed the wire) and is flushed and
            closed on Ctrl-C or SIGTERM, after which the counts are printed: packets written,
            packets the kernel dropped because the capture fell behind (raise --buffer), packets
            the interface dropped.

            Ring buffer: -C MB starts a new file once the current one holds MB megabytes, -G S
            every S seconds; the files are then named with a sequence number before the extension
            (trace.pcap → trace-0001.pcap, trace-0002.pcap, …) and -W N keeps only the newest N.

            --decode prints every MQTT packet as it passes, exactly as wmq-decode prints a capture
            (text, or --format jsonl), Works messages annotated, secrets as pseudonyms unless
            --no-redact. Packets are then handed over as they come instead of in blocks.

            Capturing needs CAP_NET_RAW: run as root, or give the binary the capability once with
            `sudo setcap cap_net_raw,cap_net_admin+eip wmq-capture`.
            """))

    @Option(name: .short, help: "The interface (lo, eth0, any).")
    var interface: String

    @Option(name: .short, help: "The pcap file to write.")
    var write: String?

    @Option(name: .customLong("port"), help: "Keep TCP traffic on this port; repeatable.")
    var ports: [Int] = []

    @Option(help: "A BPF filter expression (tcpdump's syntax).")
    var filter: String?

    @Option(help: "Bytes kept of each packet (default 262144, all).")
    var snaplen: Int32 = 262_144

    @Option(help: "The kernel capture buffer in MB (default 32).")
    var buffer: Int = 32

    @Option(name: .customShort("C"), help: "Ring buffer: a new file after this many MB.")
    var fileSize: Int?

    @Option(name: .customShort("G"), help: "Ring buffer: a new file every this many seconds.")
    var rotateSeconds: Double?

    @Option(name: .customShort("W"), help: "Ring buffer: keep only the newest N files.")
    var files: Int?

    @Flag(help: "Print every MQTT packet as it passes, as wmq-decode does.")
    var decode = false

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, jsonl }

    @Option(help: "With --decode: text (default) or jsonl.")
    var format: Format = .text

    @Flag(help: "With --decode: show cookies, tokens and passwords as captured.")
    var noRedact = false

    @Option(name: .customLong("redact"), help: ArgumentHelp("With --decode: also treat this JSON member, query parameter or header as a secret (repeatable; any case). Names like token, secret, password, api_key, auth, cookie, sig are secrets already.", valueName: "name"))
    var redact: [String] = []

    @Flag(help: "Capture in promiscuous mode (other hosts' traffic on a shared segment).")
    var promiscuous = false

    @Option(help: "Stop after this many packets.")
    var count: Int?

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    func validate() throws {
        if write == nil && !decode { throw ValidationError("give -w FILE, --decode, or both") }
        for port in ports where !(1...65535).contains(port) { throw ValidationError("--port \(port): not a TCP port") }
        if let fileSize, fileSize <= 0 { throw ValidationError("-C takes a positive number of MB") }
        if let rotateSeconds, !(rotateSeconds > 0) { throw ValidationError("-G takes a positive number of seconds") }
        if let files, files <= 0 { throw ValidationError("-W takes a positive number of files") }
        if files != nil && fileSize == nil && rotateSeconds == nil { throw ValidationError("-W needs -C or -G") }
        if (fileSize != nil || rotateSeconds != nil) && write == nil { throw ValidationError("-C and -G need -w FILE") }
        if snaplen < 0 || buffer <= 0 { throw ValidationError("--snaplen and --buffer take positive numbers") }
        if let count, count <= 0 { throw ValidationError("--count takes a positive number") }
        if let duration, !(duration > 0) { throw ValidationError("--duration takes a positive number of seconds") }
    }

    /// The kernel filter: the ports, and the expression.
    var bpf: String? {
        let portFilter = ports.isEmpty ? nil : "(" + ports.map { "tcp port \($0)" }.joined(separator: " or ") + ")"
        switch (portFilter, filter) {
        case (let p?, let f?): return "\(p) and (\(f))"
        case (let p?, nil): return p
        case (nil, let f?): return f
        case (nil, nil): return nil
        }
    }

    func run() throws {
        var settings = LiveCapture.Settings(interface: interface)
        settings.snapLength = snaplen
        settings.bufferSize = Int32(clamping: buffer << 20)
        settings.filter = bpf
        settings.promiscuous = promiscuous
        settings.immediate = decode
        let capture: LiveCapture
        var output: CaptureFiles?
        do {
            capture = try LiveCapture(settings)
            if let write {
                output = try CaptureFiles(capture: capture, path: write, rotation: .init(
                    bytes: (fileSize ?? 0) << 20, seconds: rotateSeconds ?? 0, files: files ?? 0))
            }
        } catch {
            throw unreadableInput("wmq-capture", error.description)
        }
        let signals = TerminationSignals()
        defer { signals.cancel() }
        let stopper = capture.stopper
        let watcher = Task.detached {
            for await _ in signals.stream {
                stopper.stop()
                break
            }
        }
        defer { watcher.cancel() }
        StandardError.write("wmq-capture: capturing on \(interface)\(bpf.map { ", filter \($0)" } ?? "")"
                            + (write.map { " into \($0)" } ?? "") + "; Ctrl-C stops\n")

        let printer = decode ? LivePrinter(format: format, redactor: noRedact ? nil : .random(names: SecretNames(adding: redact))) : nil
        let started = Date()
        var packets = 0
        var failure: LiveCapture.Failure?
        reading: while true {
            let read: LiveCapture.Read
            do {
                read = try capture.next()
            } catch {
                failure = error
                break
            }
            switch read {
            case .packet(let header, let bytes):
                packets += 1
                do {
                    try output?.write(header, bytes, time: LiveCapture.time(header))
                } catch {
                    failure = error
                    break reading
                }
                if let printer {
                    printer.show(capture.frame(header, bytes))
                    output?.flush()
                }
                if let count, packets >= count { break reading }
            case .idle:
                output?.flush()
            case .stopped:
                break reading
            }
            if let duration, Date().timeIntervalSince(started) >= duration { break }
        }
        printer?.finish()
        output?.close()
        var summary = "wmq-capture: \(packets) packet\(packets == 1 ? "" : "s")"
        if let output {
            summary += " (\(output.bytes) bytes) written to \(output.files.count == 1 ? output.files[0] : "\(output.files.count) files, \(output.files.first ?? "") … \(output.files.last ?? "")")"
        }
        if let stats = capture.statistics {
            summary += "; the kernel dropped \(stats.dropped), the interface \(stats.interfaceDropped)"
            if stats.dropped > 0 { summary += " (the capture fell behind: raise --buffer, or narrow the filter)" }
        }
        StandardError.write(summary + "\n")
        if let failure { throw unreadableInput("wmq-capture", failure.description) }
    }
}

/// The live view: frames (or a proxy's events) through wmq-decode's own pipeline and printer.
final class LivePrinter: @unchecked Sendable {  // `lock` guards the printer's state
    private let lock = NSLock()
    private var decoder = PacketDecoder()
    private var dissector: CaptureDissector
    private let format: Live.Format
    private let showsSecrets: Bool
    private let output = OutputBuffer()
    private var startTime: Double?
    private var last = (frame: 0, time: 0.0)

    /// - Parameter redactor: secrets shown as its pseudonyms; nil shows them as they are.
    init(format: Live.Format, redactor: Redactor?) {
        self.format = format
        showsSecrets = redactor == nil
        dissector = CaptureDissector(options: CaptureDissector.Options(redactor: redactor))
    }

    /// An event of a live connection (the proxy's view), from any thread.
    func show(_ event: CaptureEvent) {
        lock.withLock {
            if startTime == nil { startTime = event.time }
            emit([event])
            output.flush()
        }
    }

    func show(_ frame: CapturedFrame) {
        if startTime == nil { startTime = frame.time }
        last = (frame.number, frame.time)
        do {
            guard let segment = try decoder.segment(from: frame) else { return }
            emit(dissector.process(segment))
        } catch {
            if format == .text { output.line("\(TextRecord.pad("frame \(error.frame.map(String.init) ?? "-")", 11))  ✗ \(error)") }
        }
        output.flush()
    }

    func finish() {
        emit(dissector.finish(frame: last.frame, time: last.time))
        output.flush()
    }

    private func emit(_ events: [CaptureEvent]) {
        for event in events {
            switch format {
            case .text:
                for line in TextRecord.lines(event, startTime: startTime ?? event.time, verbose: false) { output.line(line) }
            case .jsonl:
                output.line { DecodeRecord.json(event, showsSecrets: showsSecrets).write(to: &$0) }
            }
        }
    }
}
