-- Hands WebSocket payloads of connections that negotiated the subprotocol "mqtt" to
-- Wireshark's MQTT dissector (it does not do so by itself).
DissectorTable.get("ws.protocol"):add("mqtt", Dissector.get("mqtt"))
