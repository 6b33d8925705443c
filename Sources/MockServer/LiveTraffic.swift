import Broker
import Capture
import Dialects
import Dissector
import Foundation
import MQTTWire
import NIOCore
import NIOHTTP1

/// The page's live view: every MQTT packet the broker receives or sends, described by the
/// records of `wmq-decode` (the `Dissector` module's JSON schema of docs/decode-format.md and
/// its text line, Works payloads annotated by the same `WorksDialect`), streamed to each
/// open page as Server-Sent Events. Nothing is built while no page watches.
extension MockBroker {
    /// A page opened `GET /api/events`: events go to `channel` until it closes. A viewer that
    /// cannot keep up (its socket not writable) misses events, and is told how many.
    func addViewer(_ channel: any Channel) {
        nextViewer += 1
        let id = nextViewer
        viewers[id] = Viewer(channel: channel)
        channel.closeFuture.whenComplete { [weak self] _ in
            Task { await self?.removeViewer(id) }
        }
        // What is connected now, so that the view starts from a known state.
        for (connection, state) in connections.sorted(by: { $0.key < $1.key }) {
            send(CaptureEvent(connection: state.described, direction: nil, frame: trafficFrame, time: Self.epochSeconds(),
                              kind: .opened(protocol: state.transport == .webSocket ? "ws-mqtt" : "mqtt", how: "live")),
                 to: id, connection: connection)
        }
    }

    func removeViewer(_ id: Int) {
        viewers[id] = nil
    }

    /// A packet crossed `connection` (`range`: its place in that direction's stream).
    func show(_ packet: MQTTPacket, on connection: BrokerCore.ConnectionID, direction: FlowDirection, size: Int) {
        guard var state = connections[connection] else { return }
        let start = direction == .clientToServer ? state.receivedBytes : state.sentBytes
        if direction == .clientToServer { state.receivedBytes += size } else { state.sentBytes += size }
        connections[connection] = state
        var annotation: AnnotatedMessage?
        if case .publish(let publish) = packet {
            let candidate = trafficDialect.annotate(publish, redactor: trafficRedactor)
            // Works mode annotates every PUBLISH; a plain broker only those that are Works messages.
            if configuration.mode == .works || ConnectionDissector.worksKinds.contains(candidate.kind) { annotation = candidate }
        }
        let event = DissectorEvent(direction: direction == .clientToServer ? .clientToServer : .serverToClient,
                                   kind: .mqtt(Self.shown(packet, redactor: trafficRedactor), range: start..<(start + size),
                                               annotation: annotation),
                                   warnings: [])
        broadcast(CaptureEvent(connection: state.described, direction: direction, frame: trafficFrame, time: Self.epochSeconds(),
                               kind: .dissected(event)), connection: connection)
    }

    /// A connection opened or closed.
    func showConnection(_ connection: BrokerCore.ConnectionID, opened: Bool, reason: String = "") {
        guard let state = connections[connection] else { return }
        let kind: CaptureEvent.Kind = opened
            ? .opened(protocol: state.transport == .webSocket ? "ws-mqtt" : "mqtt", how: "live")
            : .closed(reason: reason)
        broadcast(CaptureEvent(connection: state.described, direction: nil, frame: trafficFrame, time: Self.epochSeconds(), kind: kind),
                  connection: connection)
    }

    private func broadcast(_ event: CaptureEvent, connection: BrokerCore.ConnectionID) {
        trafficFrame += 1
        for id in viewers.keys { send(event, to: id, connection: connection) }
    }

    private func send(_ event: CaptureEvent, to id: Int, connection: BrokerCore.ConnectionID) {
        guard var viewer = viewers[id] else { return }
        guard viewer.channel.isWritable else {
            viewer.missed += 1
            viewers[id] = viewer
            return
        }
        var members: [JSONMember] = []
        if case .object(let record) = DecodeRecord.json(event) { members = record }
        members.append(JSONMember(key: "session", value: core.clientID(of: connection).map { JSONValue.string($0) } ?? .null))
        members.append(JSONMember(key: "line", value: .string(TextRecord.lines(event, startTime: trafficStart, verbose: false).joined(separator: "\n"))))
        if viewer.missed > 0 {
            members.append(JSONMember(key: "missed", value: .number(String(viewer.missed))))
            viewer.missed = 0
            viewers[id] = viewer
        }
        var bytes = Array("data: ".utf8)
        JSONValue.object(members).write(to: &bytes)
        bytes += Array("\n\n".utf8)
        viewer.channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: bytes))), promise: nil)
    }

    /// The packet as the page shows it: the CONNECT password replaced by a pseudonym.
    static func shown(_ packet: MQTTPacket, redactor: Redactor) -> MQTTPacket {
        guard case .connect(var connect) = packet, let password = connect.password else { return packet }
        connect.password = ByteBuffer(string: redactor.pseudonym(password.readableBytesView, kind: "password"))
        return .connect(connect)
    }

    static func epochSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    struct Viewer {
        let channel: any Channel
        var missed = 0
    }

    /// The page: connected clients, the live view, forms that inject messages.
    static let page = ByteBuffer(string: pageHTML)
}

extension MockBroker {
    /// A connection as `wmq-decode` describes a captured one, from its socket's addresses.
    static func describe(_ id: BrokerCore.ConnectionID, _ channel: any Channel) -> Capture.Connection {
        Capture.Connection(id: id, client: Endpoint(channel.remoteAddress, fallbackPort: 40_000),
                           server: Endpoint(channel.localAddress, fallbackPort: 8885), joinedMidstream: false,
                           firstFrame: 0, firstTime: epochSeconds())
    }
}

private let pageHTML = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wmq-mock</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; display: grid; grid-template-columns: 22rem 1fr; height: 100vh; }
  aside { border-right: 1px solid #ccc; padding: 0.8rem; overflow: auto; background: #f7f7f7; }
  main { display: flex; flex-direction: column; min-width: 0; }
  h1 { font-size: 1.1rem; margin: 0 0 0.6rem; } h2 { font-size: 0.95rem; margin: 1rem 0 0.4rem; }
  label { display: block; margin: 0.3rem 0; } input, textarea, select { width: 100%; box-sizing: border-box; font: inherit; }
  button { margin-top: 0.4rem; font: inherit; }
  #clients li { font-family: ui-monospace, monospace; font-size: 12px; }
  #traffic { flex: 1; overflow: auto; margin: 0; padding: 0.5rem; font: 12px/1.35 ui-monospace, monospace; white-space: pre; }
  #traffic .s2c { color: #0b5394; } #traffic .c2s { color: #38761d; } #traffic .works { font-weight: bold; }
  #traffic .meta { color: #888; }
  header { padding: 0.5rem; border-bottom: 1px solid #ccc; display: flex; gap: 1rem; align-items: center; }
  #status { color: #888; }
  #connect-url { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
  #snippet { font: 11px/1.35 ui-monospace, monospace; background: #fff; border: 1px solid #ddd; padding: 0.4rem; overflow: auto; white-space: pre; }
  #retained li, #conversation li { font-size: 12px; }
  #conversation { max-height: 30vh; overflow: auto; margin: 0; padding: 0.4rem 0.8rem; border-bottom: 1px solid #ccc; }
  #conversation h3 { font-size: 0.85rem; margin: 0.4rem 0 0.2rem; }
  #conversation ul { margin: 0; padding-left: 1rem; }
  .sender { font-weight: bold; }
</style>
</head>
<body>
<aside>
  <h1>wmq-mock</h1>
  <h2>Connect a client</h2>
  <p>URL <span id="connect-url">…</span><br>subprotocol <code id="connect-subprotocol">mqtt</code>
     <span id="connect-cookies"></span></p>
  <pre id="snippet"></pre>
  <button id="copy" type="button">Copy the MQTT.js snippet</button>
  <label>Admin token (only when the mock asks for one) <input id="token" type="password" autocomplete="off"></label>
  <h2>Connected clients</h2>
  <ul id="clients"><li>none</li></ul>
  <h2>Send a Works notification</h2>
  <form id="notify">
    <label>Channel <input name="channel" value="42" inputmode="numeric"></label>
    <label>Sender <input name="sender" value="Alice"></label>
    <label>Text <input name="text" value="Hello from the mock"></label>
    <label>or sticker (package/id) <input name="sticker" placeholder="11537/52002734"></label>
    <label>To client (empty: every session) <input name="client"></label>
    <button type="submit">Send</button>
  </form>
  <h2>Publish</h2>
  <form id="publish">
    <label>Topic <input name="topic" value="chat/room1"></label>
    <label>Payload <textarea name="payload" rows="3">{"text": "hi"}</textarea></label>
    <label>QoS <select name="qos"><option>0</option><option selected>1</option><option>2</option></select></label>
    <label><input type="checkbox" name="retain" style="width:auto"> retain</label>
    <button type="submit">Publish</button>
  </form>
  <p id="result"></p>
  <h2>Retained messages</h2>
  <ul id="retained"><li>none</li></ul>
</aside>
<main>
  <section id="conversation-view" hidden>
    <header><strong>Conversation</strong> <span class="meta">the Works notifications sent, by channel</span></header>
    <div id="conversation"><p>none yet</p></div>
  </section>
  <header><strong>Live traffic</strong> <span id="status">connecting…</span> <button id="clear" type="button">Clear</button></header>
  <pre id="traffic"></pre>
</main>
<script>
"use strict";
const token = document.getElementById("token");
token.value = localStorage.getItem("wmq-mock-token") || "";
token.addEventListener("change", () => { localStorage.setItem("wmq-mock-token", token.value); connect(); refresh(); });
function headers() {
  const h = {"Content-Type": "application/json"};
  if (token.value) h["Authorization"] = "Bearer " + token.value;
  return h;
}
const traffic = document.getElementById("traffic");
function append(text, className) {
  const line = document.createElement("div");
  line.textContent = text;
  if (className) line.className = className;
  const atBottom = traffic.scrollTop + traffic.clientHeight >= traffic.scrollHeight - 4;
  traffic.appendChild(line);
  while (traffic.childNodes.length > 5000) traffic.removeChild(traffic.firstChild);
  if (atBottom) traffic.scrollTop = traffic.scrollHeight;
}
let source;
function connect() {
  if (source) source.close();
  const query = token.value ? "?token=" + encodeURIComponent(token.value) : "";
  source = new EventSource("/api/events" + query);
  source.onopen = () => { document.getElementById("status").textContent = "live"; };
  source.onerror = () => { document.getElementById("status").textContent = "disconnected, retrying…"; };
  source.onmessage = (message) => {
    const record = JSON.parse(message.data);
    if (record.missed) append("… " + record.missed + " events missed (the page fell behind)", "meta");
    const classes = [record.direction || "meta"];
    if (record.works) classes.push("works");
    append(record.line, classes.join(" "));
    if (record.type === "PUBLISH" && record.direction === "s2c" && record.works && record.works.kind === "notification") {
      converse(record.works.fields || {});
    }
    if (record.event === "connection" || record.event === "closed" || record.type === "CONNECT") refresh();
    if (record.type === "PUBLISH" && record.retain) refreshRetained();
  };
}
// The conversation view: each notification once (it goes to every session), by channel.
const seen = new Set();
const channels = new Map();
function converse(fields) {
  const id = fields["notification.id"] || JSON.stringify(fields);
  if (seen.has(id)) return;
  seen.add(id);
  const channel = fields["channel.number"] || "?";
  const title = fields["channel.title"] ? " 「" + fields["channel.title"] + "」" : "";
  if (!channels.has(channel)) channels.set(channel, {title: title, items: []});
  const said = fields["sticker"] ? "sticker " + fields["sticker"] : (fields["text"] || "");
  channels.get(channel).items.push({sender: fields["sender.name"] || "?", said: said});
  const view = document.getElementById("conversation");
  view.replaceChildren();
  for (const [number, entry] of channels) {
    const heading = document.createElement("h3");
    heading.textContent = "channel " + number + entry.title;
    const list = document.createElement("ul");
    for (const item of entry.items) {
      const line = document.createElement("li");
      const who = document.createElement("span");
      who.className = "sender";
      who.textContent = item.sender;
      line.append(who, ": " + item.said);
      list.appendChild(line);
    }
    view.append(heading, list);
  }
}
// How to connect: the URL on this very host, the subprotocol, and an MQTT.js snippet for the
// mode and the cookies the endpoint wants (their names only; a browser sends its own cookies).
async function describe() {
  try {
    const response = await fetch("/api/info", {headers: headers()});
    const info = await response.json();
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + info.path;
    document.getElementById("connect-url").textContent = url + (info.anyPath ? " (any path)" : "");
    document.getElementById("connect-subprotocol").textContent = info.subprotocol;
    const cookies = info.cookies || [];
    document.getElementById("connect-cookies").textContent = cookies.length ? " · cookies " + cookies.join(", ") : "";
    const works = info.mode === "works";
    const lines = [
      "// npm install mqtt",
      'import mqtt from "mqtt";',
      "const client = mqtt.connect(" + JSON.stringify(url) + ", {",
      "  protocolVersion: " + (works ? 4 : 5) + ",  // MQTT " + (works ? "3.1.1, as the Works web client" : "5.0; 4 for 3.1.1"),
    ];
    if (works) lines.push('  clientId: "web-beejs_" + Math.random().toString(16).slice(2, 14),');
    if (cookies.length) {
      lines.push("  // Node.js sends these; in a browser on this host, the page's own cookies go.");
      lines.push("  wsOptions: { headers: { Cookie: " + JSON.stringify(cookies.map((name) => name + "=…").join("; ")) + " } },");
    }
    lines.push("});");
    lines.push('client.on("connect", () => client.subscribe(' + JSON.stringify(works ? "notification/#" : "#") + ", {qos: 1}));");
    lines.push('client.on("message", (topic, payload) => console.log(topic, payload.toString()));');
    document.getElementById("snippet").textContent = lines.join("\n");
    document.getElementById("conversation-view").hidden = !works;
  } catch (error) { document.getElementById("connect-url").textContent = "cannot ask the mock (" + error + ")"; }
}
document.getElementById("copy").addEventListener("click", () => {
  navigator.clipboard && navigator.clipboard.writeText(document.getElementById("snippet").textContent);
});
// A list filled from the admin API: one item a record, "none" when empty.
async function fill(id, path, key, describe, failure) {
  const list = document.getElementById(id);
  try {
    const response = await fetch(path, {headers: headers()});
    const body = await response.json();
    list.replaceChildren();
    for (const record of body[key] || []) {
      const item = document.createElement("li");
      item.textContent = describe(record);
      list.appendChild(item);
    }
    if (!list.childNodes.length) list.innerHTML = "<li>none</li>";
  } catch (error) { list.innerHTML = "<li>" + failure + "</li>"; }
}
function refreshRetained() {
  return fill("retained", "/api/retained", "retained",
    (message) => message.topic + " · QoS " + message.qos + " · " + message.payloadLength + " bytes · " + message.preview,
    "cannot list retained messages");
}
function refresh() {
  return fill("clients", "/api/clients", "clients", (client) => {
    const filters = Object.keys(client.subscriptions).join(", ") || "no subscription";
    const away = client.connected === false ? " (away, session kept)" : "";
    return client.id + away + " · MQTT " + (client.protocolLevel === 5 ? "5" : "3.1.1") + " · " + filters
      + " · in flight " + client.inflight + ", queued " + client.queued;
  }, "cannot list clients");
}
async function post(path, body) {
  const result = document.getElementById("result");
  const response = await fetch(path, {method: "POST", headers: headers(), body: JSON.stringify(body)});
  const text = await response.text();
  result.textContent = response.status + " " + text;
}
document.getElementById("notify").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {channel: Number(form.get("channel")), sender: form.get("sender")};
  const sticker = form.get("sticker").trim();
  if (sticker) { const [pkg, id] = sticker.split("/"); body.sticker = {type: "line", package: pkg, id: id || ""}; }
  else body.text = form.get("text");
  if (form.get("client").trim()) body.client = form.get("client").trim();
  post("/api/notify", body);
});
document.getElementById("publish").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  let payload = form.get("payload");
  try { payload = JSON.parse(payload); } catch (error) { /* sent as text */ }
  post("/api/publish", {topic: form.get("topic"), payload: payload, qos: Number(form.get("qos")), retain: form.get("retain") === "on"});
});
document.getElementById("clear").addEventListener("click", () => traffic.replaceChildren());
connect();
refresh();
describe();
refreshRetained();
setInterval(() => { refresh(); refreshRetained(); }, 5000);
</script>
</body>
</html>
"""#
