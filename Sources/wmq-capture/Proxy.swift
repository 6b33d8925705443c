import ArgumentParser
import Capture
import CaptureProxy
import CommandLineSupport
import Dialects
import Dissector
import Foundation
import LiveWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import WebSocketWire
import WorksClient

struct Proxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A recording WebSocket proxy: clients connect to it, it connects upstream (wss:// too) and records both ways.",
        discussion: reflowHelp("""
            Point a browser, an app or a test client at ws://HOST:PORT (the --listen address) instead
            of the service. For each connection the proxy opens its own connection to --upstream
            (TLS for wss://, through --http-proxy when given), with the client's Cookie,
            Authorization, Origin and User-Agent headers and the first subprotocol it offered,
            accepts the client with the subprotocol the service chose (or refuses it with 502 and
            the reason), then forwards every frame both ways unchanged (client frames are masked
            anew, as the protocol asks). The upstream path is --upstream's, or the client's when
            --upstream has none.

            Everything that crossed the upstream connection, after TLS, goes into the -w pcap file
            with synthetic IPv4/TCP headers (one TCP stream per connection): wmq-decode, wmq-replay
            and Wireshark read it. Cookies, Authorization values, CONNECT passwords and token fields
            are written as keyed pseudonyms unless --no-redact. --decode prints every MQTT packet as
            wmq-decode does. Ctrl-C stops: connections are closed and the file is flushed.

            The proxy connects to the service on behalf of whoever reaches it and records what passes,
            so a browser page of another origin than its own or the Works web client's gets 403: let
            the web app you are recording in with --allow-origin ORIGIN (the page's origin, such as
            http://localhost:5173, or its port alone). Requests must name the proxy
            by an IP address or localhost (--allow-host NAME adds a name).
            """))

    @Option(help: "Where clients connect, HOST:PORT (port 0 picks a free one; the address is printed).")
    var listen: String = "127.0.0.1:8886"

    @Option(help: "The service: wss://HOST[:PORT]/PATH or ws://….")
    var upstream: String

    @Option(name: .short, help: "The pcap file to record into.")
    var write: String?

    @Option(name: .customLong("http-proxy"), help: "Reach the upstream through this HTTP proxy (http://[user:password@]host:port).")
    var httpProxy: String?

    @Option(name: .customLong("ca-file"), help: "Trust this CA (PEM) for the upstream's certificate.")
    var caFile: String?

    @Flag(help: "Accept any upstream certificate (tests only).")
    var insecure = false

    @Flag(help: "Print every MQTT packet as it passes, as wmq-decode does.")
    var decode = false

    @Option(help: "With --decode: text (default) or jsonl.")
    var format: Live.Format = .text

    @Flag(help: "Record and show cookies, passwords and tokens as they are.")
    var noRedact = false

    @Option(name: .customLong("redact"), help: ArgumentHelp("Also treat this JSON member, query parameter or header as a secret (repeatable; any case). Names like token, secret, password, api_key, auth, cookie, sig are secrets already.", valueName: "name"))
    var redact: [String] = []

    @OptionGroup(title: "Browser pages") var browser: BrowserAccessOptions

    func validate() throws {
        if write == nil && !decode { throw ValidationError("give -w FILE, --decode, or both") }
        guard let colon = listen.lastIndex(of: ":"), Int(listen[listen.index(after: colon)...]) != nil else {
            throw ValidationError("--listen \(listen): give HOST:PORT")
        }
        do { _ = try WebSocketURL(upstream) } catch { throw ValidationError("--upstream: \(error.reason)") }
    }

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else { return }
        let host = String(listen[..<colon])
        var settings: WebSocketSettings
        do {
            settings = WebSocketSettings(url: try WebSocketURL(upstream), origin: nil, userAgent: nil)
            settings.tls = TLSSettings(caFile: caFile, insecure: insecure)
            if let httpProxy { settings.proxy = try HTTPProxy(url: httpProxy) }
        } catch {
            throw ValidationError(error.reason)
        }
        let access = try browser.access().reporting { text in FileHandle.standardError.write(Data("wmq-capture: \(text)\n".utf8)) }
        let redactor = noRedact ? nil : Redactor.random(names: SecretNames(adding: redact))
        var recorder: SessionRecorder?
        if let write {
            do {
                recorder = try SessionRecorder(path: write, redactor: redactor)
            } catch {
                throw unreadableInput("wmq-capture", error.reason)
            }
        }
        let printer = decode ? LivePrinter(format: format, redactor: redactor) : nil
        var show: (@Sendable (CaptureEvent) -> Void)?
        if let printer {
            show = { (event: CaptureEvent) in printer.show(event) }
        }
        let proxy = RecordingProxy(base: settings, recorder: recorder, redactor: redactor, access: access, showEvent: show)
        let bound: Int
        do {
            bound = try await proxy.start(host: host, port: port)
        } catch {
            throw unreadableInput("wmq-capture", "cannot listen on \(listen): \(error)")
        }
        FileHandle.standardOutput.write(Data("listening ws://\(host):\(bound) → \(settings.url)\n".utf8))
        let signals = TerminationSignals()
        for await _ in signals.stream { break }
        signals.cancel()
        await proxy.stop()
        recorder?.flush()
        var summary = "wmq-capture: \(proxy.connectionCount) connection\(proxy.connectionCount == 1 ? "" : "s") proxied"
        if let write { summary += ", recorded in \(write)" }
        if let recorder, recorder.withheldBytes > 0 { summary += "; \(recorder.withheldBytes) bytes could not be checked for secrets and were left out" }
        StandardError.write(summary + "\n")
    }
}
