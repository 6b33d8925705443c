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
      + " · in flight " + client.inflight + ", queued " + client.queued
      + (client.heldBack ? ", held back " + client.heldBack + " (reads slowly)" : "")
      + (client.dropped ? ", dropped " + client.dropped + " QoS 0 (read too slowly)" : "");
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
