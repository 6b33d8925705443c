import ArgumentParser
import Dialects
import Dissector
import Foundation
import MQTTWire
import NIOCore
import NIOWebSocket
import WebSocketWire

@main
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wmq-demo",
        abstract: "Decode a recorded Works MQTT-over-WebSocket session into annotated messages.",
        discussion: """
            Reads a .wmqs byte-stream recording (both directions of one connection, see
            captures/README.md) and prints every HTTP handshake, MQTT packet and WebSocket
            control frame, with Works notifications annotated: channel, sender, text or sticker.
            Cookies, tokens and passwords are replaced by keyed pseudonyms unless --no-redact.

            Exit codes: 0 decoded cleanly; 1 decoded, with protocol errors reported;
            2 usage error; 3 the file cannot be read or is not a recording.
            """)

    @Argument(help: "The recording to decode.")
    var file: String = "captures/works-sample.wmqs"

    @Flag(name: .customShort("V"), help: "Show every field of each Works message and every WebSocket frame.")
    var verbose = false

    @Flag(help: "Show cookies, tokens and passwords as recorded.")
    var noRedact = false

    @Option(help: "Key for the redaction pseudonyms (the same key gives the same pseudonyms across runs). Default: random per run.")
    var redactionKey: String?

    mutating func run() throws {
        let data: [UInt8]
        do {
            data = try Array(Data(contentsOf: URL(fileURLWithPath: file)))
        } catch {
            printError("wmq-demo: cannot read \(file): \(error.localizedDescription)")
            throw ExitCode(3)
        }
        let recording: ByteStreamRecording
        do {
            recording = try ByteStreamRecording(ByteBuffer(bytes: data))
        } catch {
            printError("wmq-demo: \(file): \(error)")
            throw ExitCode(3)
        }
        let redactor: Redactor? = noRedact ? nil : redactionKey.map { Redactor(key: Array($0.utf8)) } ?? .random()
        var dissector = try ConnectionDissector(redactor: redactor, reportsFrames: verbose)
        print("wmq demo · \(file) · \(recording.records.count) records, \(data.count) bytes · secrets \(noRedact ? "shown" : "redacted")\n")

        var packets = 0
        var publishes = 0
        var errors = 0
        for record in recording.records {
            for event in dissector.feed(record.bytes, direction: record.direction) {
                let arrow = event.direction == .clientToServer ? "C→S" : "S→C"
                switch event.kind {
                case .request(let request):
                    print("\(arrow)  HTTP  \(request.method.rawValue) \(request.target) HTTP/\(request.version.major).\(request.version.minor)")
                    for (name, value) in request.headers { print("            \(name): \(value)") }
                case .response(let response, let problems):
                    let verdict = problems.isEmpty ? "handshake ok" : "handshake problems: \(problems.count)"
                    print("\(arrow)  HTTP  \(response.status.code) \(response.reasonPhrase) · subprotocol \(response.subprotocol ?? "none") · \(verdict)")
                    for problem in problems { print("            ! \(problem)") }
                    errors += problems.count
                case .frame(let frame):
                    let mask = frame.maskKey.map { " mask \($0.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())" } ?? ""
                    print("\(arrow)  WS    frame @\(frame.offset) \(Self.name(of: frame.frame.opcode)) fin=\(frame.frame.fin ? 1 : 0) \(frame.frame.length) bytes\(mask)")
                case .mqtt(let packet, _, let annotation):
                    packets += 1
                    print("\(arrow)  MQTT  \(packet)")
                    for warning in event.warnings { print("            ⚠ \(warning)") }
                    if let annotation {
                        publishes += 1
                        print("            ▸ \(annotation.summary)")
                        for warning in annotation.warnings { print("            ⚠ \(warning)") }
                        if verbose {
                            for field in annotation.fields { print("              \(field.name) = \(field.value)") }
                        }
                    }
                case .webSocketMessage(let message):
                    print("\(arrow)  WS    message \(message.data.readableBytes) bytes (not MQTT)")
                case .resynchronized(let layer, let skipped):
                    print("\(arrow)  \(layer.padding(4))  resynchronized after \(skipped) bytes")
                case .webSocketControl(let control):
                    print("\(arrow)  WS    \(Self.describe(control))")
                case .error(let layer, let description):
                    errors += 1
                    print("\(arrow)  \(layer.padding(4))  ✗ \(description)")
                }
            }
        }
        if let truncation = recording.truncation {
            errors += 1
            print("      FILE  ✗ \(truncation)")
        }
        print("\n\(packets) MQTT packets, \(publishes) annotated PUBLISH, \(errors) error(s)")
        if errors > 0 { throw ExitCode(1) }
    }

    static func name(of opcode: WebSocketOpcode) -> String {
        switch opcode {
        case .continuation: "continuation"
        case .text: "text"
        case .binary: "binary"
        case .connectionClose: "close"
        case .ping: "ping"
        case .pong: "pong"
        default: "opcode \(opcode)"
        }
    }

    static func describe(_ control: WebSocketEvent) -> String {
        switch control {
        case .ping(let data, _): return "ping \(data.readableBytes) bytes"
        case .pong(let data, _): return "pong \(data.readableBytes) bytes"
        case .close(let close, _):
            guard let code = close.code else { return "close (no code)" }
            return "close \(code)" + (close.reason.isEmpty ? "" : " \"\(close.reason)\"")
        case .message(let message): return "message \(message.data.readableBytes) bytes"
        }
    }

    func printError(_ text: String) {
        var standardError = StandardError()
        print(text, to: &standardError)
    }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
