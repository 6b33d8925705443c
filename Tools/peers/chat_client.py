#!/usr/bin/env python3
"""A frontend of the chat seed's chat-topic tree (docs/protocols.md §3), with paho-mqtt over WebSocket: what the Vue client
does against rumqttd, for wmq-mock --mode chat's tests and Tools/make-captures.

Usage: chat_client.py --port P [--path /] SCENARIO
  chat      subscribes to chat/#, system/# and connection/#, creates a session, sends a chat
            message and waits for the streamed reply to finish, sends system parameters and a
            malformed message; prints every message received as JSON Lines
            ({"topic", "retain", "payload"}), then {"done": true}
  v5        connects with MQTT 5 and prints {"connack": reason code} or {"refused": …}
  oversize  publishes a payload of --size bytes on chat/send and prints {"disconnected": bool}
  idle      opens the WebSocket (subprotocol mqtt) and sends nothing; prints {"closedAfter": seconds}
"""
import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def connect(args, protocol=mqtt.MQTTv311, client_id="chat-frontend"):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, transport="websockets", protocol=protocol)
    c.ws_set_options(path=args.path)
    c.connected = threading.Event()
    c.disconnected = threading.Event()
    c.connack = None

    def on_connect(c, u, flags, reason, properties):
        c.connack = reason.value
        c.connected.set()

    def on_disconnect(c, u, flags, reason, properties):
        c.disconnected.set()

    c.on_connect = on_connect
    c.on_disconnect = on_disconnect
    c.connect("127.0.0.1", args.port, keepalive=30)
    c.loop_start()
    return c


def out(obj):
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def chat(args):
    c = connect(args)
    if not c.connected.wait(5) or c.connack != 0:
        out({"error": "not connected", "connack": c.connack})
        return 1
    finished = threading.Event()
    received = []

    def on_message(c, u, m):
        try:
            payload = json.loads(m.payload.decode())
        except ValueError:
            payload = m.payload.decode(errors="replace")
        received.append(m.topic)
        out({"topic": m.topic, "retain": bool(m.retain), "payload": payload})
        if m.topic == "chat/status" and isinstance(payload, dict) and payload.get("status") == "completed":
            finished.set()

    c.on_message = on_message
    for topic in ("chat/#", "system/#", "connection/#"):
        c.subscribe(topic, qos=1)
    time.sleep(0.2)
    c.publish("chat/session/create", json.dumps({"sessionId": "s-1"}), qos=1)
    c.publish("chat/send", json.dumps({"id": "m-1", "sessionId": "s-1", "content": args.text,
                                       "timestamp": int(time.time() * 1000)}, ensure_ascii=False), qos=1)
    ok = finished.wait(20)
    c.publish("system/send", json.dumps({"id": "p-1", "temperature": 0.7}), qos=1)
    c.publish("chat/send", "not json", qos=1)
    deadline = time.time() + 5
    while time.time() < deadline and not ("system/status" in received and "chat/error" in received):
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    out({"done": ok})
    return 0 if ok else 1


def v5(args):
    c = connect(args, protocol=mqtt.MQTTv5, client_id="chat-v5")
    c.connected.wait(3)
    c.disconnected.wait(3)
    out({"connack": c.connack, "disconnected": c.disconnected.is_set()})
    c.loop_stop()
    return 0


def oversize(args):
    c = connect(args, client_id="chat-big")
    if not c.connected.wait(5):
        out({"error": "not connected"})
        return 1
    c.publish("chat/send", b"x" * args.size, qos=0)
    out({"disconnected": c.disconnected.wait(2)})
    c.loop_stop()
    return 0


def idle(args):
    import websocket
    ws = websocket.create_connection("ws://127.0.0.1:%d%s" % (args.port, args.path), subprotocols=["mqtt"], timeout=30)
    start = time.time()
    try:
        while ws.recv_data(control_frame=True)[0] != websocket.ABNF.OPCODE_CLOSE:
            pass
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        pass
    out({"closedAfter": round(time.time() - start, 3)})
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--text", default="Hello, AI!")
    parser.add_argument("--size", type=int, default=30000)
    parser.add_argument("scenario", choices=["chat", "v5", "oversize", "idle"])
    args = parser.parse_args()
    return {"chat": chat, "v5": v5, "oversize": oversize, "idle": idle}[args.scenario](args)


if __name__ == "__main__":
    sys.exit(main())
