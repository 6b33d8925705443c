import Broker
import Capture
import Dialects
import Logging
import MockFiles
import MQTTWire
import LiveWebSocket
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import WebSocketWire

/// Answers the HTTP requests that were not upgraded: the admin API (`/api/…`, handled by the
/// broker actor), 401 for the Works endpoint without the right cookies, 400 for a WebSocket
/// request without an MQTT subprotocol, 404 elsewhere.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let configuration: MockBroker.Configuration
    private weak var broker: MockBroker?
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(configuration: MockBroker.Configuration, broker: MockBroker) {
        self.configuration = configuration
        self.broker = broker
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            tooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > 1 << 20 { tooLarge = true } else { body.writeBuffer(&chunk) }
        case .end:
            guard let head else { return }
            self.head = nil
            let parts = head.uri.split(separator: "?", maxSplits: 1)
            let path = parts.first.map(String.init) ?? head.uri
            // A page of another origin, or a request for a foreign host name (DNS rebinding), is
            // refused before anything is read or done: a text/plain POST or a WebSocket handshake
            // reaches the server whatever CORS says.
            let corsOrigin: String?
            switch configuration.access.check(head) {
            case .refused(let status, let reason):
                writeResponse(AdminResponse(status: Int(status.code), text: reason), version: head.version, keepAlive: false,
                              on: context.channel)
                return
            case .allowed(let origin):
                corsOrigin = origin
            }
            // A WebSocket handshake that was not upgraded because it is malformed, or offers no
            // MQTT subprotocol, is told why (RFC 6455 §4.2.2), never served the page.
            if let refusal = WebSocketHandshakeCheck.refusal(for: head, subprotocols: MockBroker.subprotocols) {
                var response = AdminResponse(status: Int(refusal.status.code), text: refusal.reason)
                response.headers = refusal.headers
                writeResponse(response, version: head.version, keepAlive: false, corsOrigin: corsOrigin, on: context.channel)
                return
            }
            if head.method == .GET, let file = MockBroker.pageFiles[path] {
                writeResponse(AdminResponse(status: 200, file: file), version: head.version, keepAlive: head.isKeepAlive,
                              corsOrigin: corsOrigin, on: context.channel)
                return
            }
            if head.method == .GET && path == "/api/events", let broker {
                // The live view: a Server-Sent Events stream that stays open. EventSource cannot
                // send headers, so the token may come as ?token= too.
                let query = parts.count > 1 ? String(parts[1]) : ""
                let offered = head.headers.first(name: "Authorization") ?? query.split(separator: "&")
                    .first { $0.hasPrefix("token=") }.map { "Bearer " + ($0.dropFirst(6).removingPercentEncoding ?? "") }
                if let token = configuration.adminToken, offered != "Bearer \(token)" {
                    writeResponse(.error(401, "the live view wants the admin token"), version: head.version, keepAlive: false,
                                  corsOrigin: corsOrigin, on: context.channel)
                    return
                }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "text/event-stream")
                headers.add(name: "Cache-Control", value: "no-cache")
                if let corsOrigin { headers.add(contentsOf: corsHeaders(corsOrigin)) }
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
                let channel = context.channel
                Task { await broker.addViewer(channel) }
                return
            }
            if path.hasPrefix("/api/") || head.method == .OPTIONS, let broker {
                let request = AdminRequest(method: head.method.rawValue, path: path, headers: head.headers, body: tooLarge ? nil : body)
                let channel = context.channel
                let version = head.version
                let keepAlive = head.isKeepAlive
                Task { [broker] in
                    let response = await broker.handle(request)
                    writeResponse(response, version: version, keepAlive: keepAlive, corsOrigin: corsOrigin, on: channel)
                }
                return
            }
            let response: AdminResponse
            if configuration.mode == .works && path == configuration.path && !MockBroker.cookiesAccepted(head.headers, configuration: configuration) {
                response = AdminResponse(status: 401, text: "the Cookie header does not hold the configured cookies\n")
            } else if head.headers.contains(name: "Upgrade") {
                response = AdminResponse(status: 400, text: "offer Sec-WebSocket-Protocol: mqtt\n")
            } else {
                let host = head.headers.first(name: "Host") ?? "127.0.0.1"
                let endpoint = configuration.mode == .works ? configuration.path : "/mqtt"
                response = AdminResponse(status: 404, text: """
                    wmq-mock: this is an MQTT-over-WebSocket endpoint: connect ws://\(host)\(endpoint) with the WebSocket \
                    subprotocol mqtt. The page is at http://\(host)/ and the admin API under /api/ (GET /api/openapi.json).

                    """)
            }
            writeResponse(response, version: head.version, keepAlive: false, corsOrigin: corsOrigin, on: context.channel)
        }
    }
}

/// CORS for a page of another origin that ``BrowserAccess`` allows (`--allow-origin`): that
/// origin by name, never `*`.
func corsHeaders(_ origin: String) -> [(String, String)] {
    [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
     ("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"),
     ("Access-Control-Allow-Headers", "Content-Type, Authorization")]
}

func writeResponse(_ response: AdminResponse, version: HTTPVersion, keepAlive: Bool, corsOrigin: String? = nil, on channel: any Channel) {
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: response.contentType)
    headers.add(name: "Content-Length", value: "\(response.body.readableBytes)")
    if let corsOrigin { headers.add(contentsOf: corsHeaders(corsOrigin)) }
    if !keepAlive { headers.add(name: "Connection", value: "close") }
    headers.add(contentsOf: response.headers)
    let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
    channel.write(HTTPServerResponsePart.head(head), promise: nil)
    channel.write(HTTPServerResponsePart.body(.byteBuffer(response.body)), promise: nil)
    let done = channel.writeAndFlush(HTTPServerResponsePart.end(nil))
    if !keepAlive { done.whenComplete { _ in channel.close(promise: nil) } }
}
