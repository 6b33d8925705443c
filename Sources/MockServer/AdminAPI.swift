import MockFiles
import Dialects
import Foundation
import MQTTWire
import NIOCore
import NIOHTTP1

/// An admin API request, as the HTTP handler hands it to the broker actor.
struct AdminRequest: Sendable {
    var method: String
    var path: String
    var headers: HTTPHeaders
    /// nil when the body was over 1 MiB.
    var body: ByteBuffer?
}

struct AdminResponse: Sendable {
    var status: Int
    var contentType: String
    var body: ByteBuffer
    /// Headers besides the usual ones (`Sec-WebSocket-Version` on a 426).
    var headers: [(String, String)] = []

    init(status: Int, text: String) {
        self.status = status
        contentType = "text/plain; charset=utf-8"
        body = ByteBuffer(string: text)
    }

    init(status: Int, json: JSONValue) {
        self.status = status
        contentType = "application/json"
        var bytes: [UInt8] = []
        json.write(to: &bytes)
        bytes.append(0x0A)
        body = ByteBuffer(bytes: bytes)
    }

    /// A file of the page, with its own content type.
    init(status: Int, file: (contentType: String, body: ByteBuffer)) {
        self.status = status
        contentType = file.contentType
        body = file.body
    }

    static func error(_ status: Int, _ message: String) -> AdminResponse {
        AdminResponse(status: status, json: .object([JSONMember(key: "error", value: .string(message))]))
    }
}

/// The admin API (docs in `openAPIDocument`): list clients, inject a Works notification, publish
/// raw, kick a client. Bound with the WebSocket listener; a token is asked for when configured.
extension MockBroker {
    func handle(_ request: AdminRequest) -> AdminResponse {
        if request.method == "OPTIONS" { return AdminResponse(status: 204, text: "") }  // CORS preflight
        if let token = configuration.adminToken, request.headers.first(name: "Authorization") != "Bearer \(token)" {
            return .error(401, "the admin API wants Authorization: Bearer <token>")
        }
        guard let body = request.body else { return .error(413, "the request body is over 1 MiB") }
        let parts = request.path.split(separator: "/").map(String.init)  // ["api", …]
        switch (request.method, parts.dropFirst().first ?? "", parts.count) {
        case ("GET", "openapi.json", 2):
            return AdminResponse(status: 200, json: (try? JSONReader.parse(Self.openAPIDocument)) ?? .null)
        case ("GET", "clients", 2):
            return AdminResponse(status: 200, json: .object([JSONMember(key: "clients", value: .array(clientList()))]))
        case ("DELETE", "clients", 3):
            return kick(parts[2]) ? AdminResponse(status: 204, text: "") : .error(404, "no connected client \(parts[2])")
        case ("POST", "notify", 2):
            return notify(body)
        case ("POST", "publish", 2):
            return publishRaw(body)
        case ("GET", "faults", 2):
            return AdminResponse(status: 200, json: faultsJSON())
        case ("GET", "info", 2):
            return AdminResponse(status: 200, json: infoJSON())
        case ("GET", "retained", 2):
            return AdminResponse(status: 200, json: .object([JSONMember(key: "retained", value: .array(retainedList()))]))
        case ("POST", "faults", 2):
            return setFaults(body)
        default:
            return .error(404, "no such endpoint: \(request.method) \(request.path) (see GET /api/openapi.json)")
        }
    }

    /// Connected clients, then the sessions kept for clients that are away (persistent
    /// sessions, MQTT 5 session expiry), each with its subscriptions and pending messages.
    private func clientList() -> [JSONValue] {
        let connected = connectedClients
        let stored = core.storedSessions.sorted()
        return (connected.map { ($0, true) } + stored.map { ($0, false) }).map { id, isConnected in
            let subscriptions = (subscriptions(of: id) ?? [:]).sorted { $0.key < $1.key }
                .map { JSONMember(key: $0.key, value: .number(String($0.value.rawValue))) }
            let pending = pending(of: id)
            return .object([
                JSONMember(key: "id", value: .string(id)),
                JSONMember(key: "connected", value: .bool(isConnected)),
                JSONMember(key: "protocolLevel", value: .number(String(core.version(of: id)?.rawValue ?? 4))),
                JSONMember(key: "subscriptions", value: .object(subscriptions)),
                JSONMember(key: "inflight", value: .number(String(pending?.inflight ?? 0))),
                JSONMember(key: "queued", value: .number(String(pending?.queued ?? 0))),
                // QoS 0 messages dropped while the client was too far behind, and messages held
                // back until it reads (this connection's).
                JSONMember(key: "dropped", value: .number(String(core.connection(of: id).flatMap { connections[$0]?.dropped.count } ?? 0))),
                JSONMember(key: "heldBack", value: .number(String(core.connection(of: id).flatMap { connections[$0]?.parked.count } ?? 0))),
            ])
        }
    }

    /// What a client needs to connect, for the page's hint: the mode, the endpoint's path, the
    /// subprotocol, and the names (never the values) of the cookies the endpoint wants.
    private func infoJSON() -> JSONValue {
        let works = configuration.mode == .works
        return .object([
            JSONMember(key: "mode", value: .string(configuration.mode.rawValue)),
            JSONMember(key: "path", value: .string(works ? configuration.path : "/mqtt")),
            JSONMember(key: "anyPath", value: .bool(!works)),
            JSONMember(key: "subprotocol", value: .string("mqtt")),
            JSONMember(key: "protocolLevel", value: .integer(works ? 4 : 5)),
            JSONMember(key: "cookies", value: .array((works ? configuration.requiredCookies?.keys.sorted() ?? [] : []).map { .string($0) })),
        ])
    }

    /// The retained messages: topic, QoS, size and the start of the payload.
    private func retainedList() -> [JSONValue] {
        core.retainedMessages(now: clock.now).map { publish in
            let preview = String(decoding: publish.payload.readableBytesView.prefix(120), as: UTF8.self)
            return .object([
                JSONMember(key: "topic", value: .string(publish.topicName)),
                JSONMember(key: "qos", value: .integer(Int64(publish.qos.rawValue))),
                JSONMember(key: "payloadLength", value: .integer(Int64(publish.payload.readableBytes))),
                JSONMember(key: "preview", value: .string(preview)),
            ])
        }
    }

    /// Faults frontend developers turn on to see how their client copes.
    private func setFaults(_ body: ByteBuffer) -> AdminResponse {
        let usage = "faults takes {\"answerPing\": bool, \"refuseConnections\": bool, \"ackDelay\": seconds}, any of them"
        guard let request = try? JSONReader.parse(body), let members = request.members else { return .error(400, usage) }
        var answersPing = core.configuration.answersPing
        var refuses = core.configuration.refusesConnections
        var delay = acknowledgementDelay
        for member in members {
            switch (member.key, member.value) {
            case ("answerPing", .bool(let value)): answersPing = value
            case ("refuseConnections", .bool(let value)): refuses = value
            case ("ackDelay", .number(let text)):
                guard let seconds = Double(text), seconds >= 0, seconds <= 3600 else { return .error(400, "ackDelay is 0 to 3600 seconds") }
                delay = .milliseconds(Int64(seconds * 1000))
            default:
                return .error(400, usage)
            }
        }
        core.configuration.answersPing = answersPing
        core.configuration.refusesConnections = refuses
        acknowledgementDelay = delay
        logger.notice("faults", metadata: ["answerPing": "\(answersPing)", "refuseConnections": "\(refuses)", "ackDelay": "\(delay)"])
        return AdminResponse(status: 200, json: faultsJSON())
    }

    private func faultsJSON() -> JSONValue {
        .object([
            JSONMember(key: "answerPing", value: .bool(core.configuration.answersPing)),
            JSONMember(key: "refuseConnections", value: .bool(core.configuration.refusesConnections)),
            JSONMember(key: "ackDelay", value: .number(String(acknowledgementDelay / .seconds(1)))),
        ])
    }

    private func notify(_ body: ByteBuffer) -> AdminResponse {
        do {
            let request = try JSONReader.parse(body)
            let payload = try notificationBuilder(request)
            let topic = request["topic"]?.stringValue ?? "notification"
            let sessions: Int
            if let client = request["client"] {
                guard let id = client.stringValue else { return .error(400, "\"client\" is a client id in quotes, not \(client)") }
                guard push(topic: topic, payload: payload, to: id) else {
                    let connected = connectedClients
                    return .error(404, "no client \"\(id)\" is connected" + (connected.isEmpty ? "" : "; connected: \(connected.joined(separator: ", "))"))
                }
                sessions = 1
            } else {
                sessions = pushToAll(topic: topic, payload: payload)
            }
            var members = [JSONMember(key: "sessions", value: .number(String(sessions)))]
            // Nobody was connected: kept for the next client (Works mode).
            if sessions == 0 { members.append(JSONMember(key: "held", value: .integer(heldQueue.count))) }
            return AdminResponse(status: 200, json: .object(members))
        } catch let error as NotificationBuilder.Refusal {
            return .error(400, error.description)
        } catch {
            return .error(400, "\(error)")
        }
    }

    private func publishRaw(_ body: ByteBuffer) -> AdminResponse {
        guard let request = try? JSONReader.parse(body), let topic = request["topic"]?.stringValue, !topic.isEmpty,
              !topic.contains("+"), !topic.contains("#")
        else { return .error(400, "publish takes {\"topic\": \"a/b\", \"payload\": \"text\" or JSON, \"qos\": 0-2, \"retain\": false}") }
        guard let qos = QoS(rawValue: UInt8(clamping: request["qos"]?.intValue ?? 0)), (request["qos"]?.intValue ?? 0) <= 2 else {
            return .error(400, "qos is 0, 1 or 2")
        }
        let payload: ByteBuffer
        switch request["payload"] {
        case .string(let text)?: payload = ByteBuffer(string: text)
        case let value?:
            var bytes: [UInt8] = []
            value.write(to: &bytes)
            payload = ByteBuffer(bytes: bytes)
        case nil: payload = ByteBuffer()
        }
        publish(PublishPacket(qos: qos, retain: request["retain"]?.boolValue ?? false, topicName: topic, payload: payload))
        return AdminResponse(status: 200, json: .object([JSONMember(key: "ok", value: .bool(true))]))
    }

    static let openAPIDocument = #"""
    {"openapi": "3.0.3",
     "info": {"title": "wmq-mock admin API", "version": "1"},
     "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
       "schemas": {"Faults": {"type": "object", "properties": {"answerPing": {"type": "boolean"},
         "refuseConnections": {"type": "boolean"}, "ackDelay": {"type": "number", "minimum": 0, "maximum": 3600}}}}},
     "security": [{}, {"token": []}],
     "paths": {
      "/api/clients": {"get": {"summary": "Connected MQTT clients and the sessions kept for clients that are away, with their subscriptions and pending messages",
        "responses": {"200": {"description": "The clients", "content": {"application/json": {"schema": {"type": "object",
          "properties": {"clients": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "string"}, "connected": {"type": "boolean", "description": "false for a session kept while its client is away"},
            "protocolLevel": {"type": "integer", "enum": [3, 4, 5]},
            "subscriptions": {"type": "object", "additionalProperties": {"type": "integer"}},
            "inflight": {"type": "integer"}, "queued": {"type": "integer"},
            "dropped": {"type": "integer", "description": "QoS 0 messages dropped because the client read too slowly (over max_queued_bytes unread)"},
            "heldBack": {"type": "integer", "description": "Messages held back until the client reads (retained messages, and what followed them)"}}}}}}}}}}}},
      "/api/clients/{id}": {"delete": {"summary": "Disconnect a client (its will is published)",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"204": {"description": "Disconnected"}, "404": {"description": "No such client"}}}},
      "/api/notify": {"post": {"summary": "Push a Works notification to every session, or to one",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
          "channel": {"type": "integer"}, "sender": {"type": "string"}, "text": {"type": "string"},
          "sticker": {"type": "object", "properties": {"type": {"type": "string"}, "package": {"type": "string"}, "id": {"type": "string"}}},
          "client": {"type": "string"}, "topic": {"type": "string"}}}}}},
        "responses": {"200": {"description": "How many sessions it went to; with none connected, how many notifications are held for the next client", "content": {"application/json": {"schema": {"type": "object",
          "properties": {"sessions": {"type": "integer"}, "held": {"type": "integer"}}}}}}, "400": {"description": "Not a notification"},
          "404": {"description": "No such client connected"}}}},
      "/api/publish": {"post": {"summary": "Publish as the broker, to every matching subscription",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["topic"], "properties": {
          "topic": {"type": "string"}, "payload": {}, "qos": {"type": "integer", "minimum": 0, "maximum": 2}, "retain": {"type": "boolean"}}}}}},
        "responses": {"200": {"description": "Published"}, "400": {"description": "Bad request"}}}},
      "/api/info": {"get": {"summary": "What a client needs to connect: mode, path, subprotocol, the names of the cookies the endpoint wants",
        "responses": {"200": {"description": "The endpoint", "content": {"application/json": {"schema": {"type": "object", "properties": {
          "mode": {"type": "string"}, "path": {"type": "string"}, "anyPath": {"type": "boolean"}, "subprotocol": {"type": "string"},
          "protocolLevel": {"type": "integer"}, "cookies": {"type": "array", "items": {"type": "string"}}}}}}}}}},
      "/api/retained": {"get": {"summary": "The retained messages",
        "responses": {"200": {"description": "By topic", "content": {"application/json": {"schema": {"type": "object", "properties": {
          "retained": {"type": "array", "items": {"type": "object", "properties": {"topic": {"type": "string"}, "qos": {"type": "integer"},
            "payloadLength": {"type": "integer"}, "preview": {"type": "string"}}}}}}}}}}}},
      "/api/faults": {"get": {"summary": "The faults turned on",
        "responses": {"200": {"description": "The faults", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Faults"}}}}}},
        "post": {"summary": "Turn faults on or off: never answer PINGREQ, refuse every CONNECT (server unavailable), delay PUBACK/PUBREC/PUBCOMP",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Faults"}}}},
        "responses": {"200": {"description": "The faults now", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Faults"}}}},
          "400": {"description": "Bad request"}}}},
      "/api/events": {"get": {"summary": "The live view: every MQTT packet and connection event as Server-Sent Events, each a wmq-decode JSON record (docs/decode-format.md) with its text line and the session's client id",
        "parameters": [{"name": "token", "in": "query", "required": false, "schema": {"type": "string"}, "description": "The admin token, for clients that cannot send headers (EventSource)"}],
        "responses": {"200": {"description": "The stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}}}}}
     }}
    """#
}
