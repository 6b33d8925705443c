import Foundation
import MockServer
import Testing
import WorksClient

/// The mock's page in a real browser: headless Chromium (Debian's chromium-headless-shell),
/// driven through the DevTools protocol by Tools/peers/page_check.py.
@Suite("wmq-mock's page in headless Chromium", .serialized, .timeLimit(.minutes(2)))
struct PageTests {
    static var browser: String? {
        ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static var present: Bool { browser != nil && PahoPeer.present }

    @Test(.enabled(if: present || PahoPeer.required))
    func thePageListsClientsInjectsAMessageAndShowsItLive() async throws {
        let browser = try #require(Self.browser, "chromium-headless-shell is not installed (Tools/setup --peers)")
        let broker = MockBroker(configuration: .init(mode: .works), logger: quiet)
        let port = try await broker.listenWebSocket(host: "127.0.0.1", port: 0)
        defer { Task { await broker.stop() } }
        let client = WorksClient(configuration: WorksClientConfiguration(
            webSocket: WebSocketSettings(url: try WebSocketURL("ws://127.0.0.1:\(port)/wmqtt"))), logger: quiet)
        let texts = TextLog()
        Task { for await event in client.events { if case .notification(let n, _) = event { await texts.add(n.text ?? "") } } }
        try await client.connect()
        defer { Task { await client.disconnect() } }
        let clientID = try #require(await broker.connectedClients.first)

        let text = "Hello from the browser \(UInt32.random(in: 1000...9999))"
        let result = try await PahoPeer.script("page_check.py", ["--url", "http://127.0.0.1:\(port)/", "--text", text,
                                                                 "--browser", browser], seconds: 60)
        #expect(result["title"] as? String == "wmq-mock")
        #expect(result["status"] as? String == "live")
        #expect((result["clients"] as? String)?.contains(clientID) == true, "clients: \(result["clients"] ?? "")")
        #expect(result["answer"] as? String == "200 {\"sessions\":1}\n")
        // The live view shows the notification as wmq-decode would: a PUBLISH to the client,
        // annotated as a Works message with its channel, sender and text.
        let lines = try #require(result["lines"] as? [String])
        #expect(lines.contains { $0.contains("PUBLISH") && $0.contains("channel 77") && $0.contains("Browser: \(text)") }, "\(lines)")
        #expect(result["works"] as? Bool == true)
        // The connect hint: the URL on this host, and an MQTT.js snippet for Works mode.
        #expect(result["connectURL"] as? String == "ws://127.0.0.1:\(port)/wmqtt", "\(result["connectURL"] ?? "")")
        let snippet = try #require(result["snippet"] as? String)
        #expect(snippet.contains("mqtt.connect(\"ws://127.0.0.1:\(port)/wmqtt\"") && snippet.contains("protocolVersion: 4")
                && snippet.contains("web-beejs_"), "\(snippet)")
        // The conversation view: the notification by channel, sender and text.
        #expect(result["conversationShown"] as? Bool == true)
        let conversation = try #require(result["conversation"] as? String)
        #expect(conversation.contains("channel 77") && conversation.contains("Browser: \(text)"), "\(conversation)")
        // The retained list shows what the Publish form retained.
        #expect((result["retained"] as? String)?.contains("status/page-check · QoS 1") == true, "\(result["retained"] ?? "")")
        // And the client under test received it.
        #expect(await texts.wait { $0.contains(text) })
    }
}
