#!/usr/bin/env python3
"""A Discord gateway client (a bot's socket, docs/protocols.md §4) with websocket-client: HELLO, IDENTIFY,
heartbeats at HELLO's interval with the last sequence number, optionally compress=zlib-stream.
For wmq-mock --discord's tests and Tools/make-captures.

Usage: discord_client.py --port P [--zlib] [--token T] [--until TEXT] [--seconds S] [--no-heartbeat]
Prints every gateway message as a JSON line ({"close": code, "reason"} for a close frame) and
stops when a message's d.content ends with TEXT, when the server closes, or after S seconds
(default 20); then closes with 1000.
"""
import argparse
import json
import sys
import threading
import time
import zlib

import websocket


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--zlib", action="store_true")
    parser.add_argument("--token", default="wmq-test-token")
    parser.add_argument("--until")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--no-heartbeat", action="store_true")
    args = parser.parse_args()

    url = "ws://127.0.0.1:%d/?v=10&encoding=json" % args.port + ("&compress=zlib-stream" if args.zlib else "")
    ws = websocket.create_connection(url, timeout=args.seconds)
    inflater = zlib.decompressobj()
    pending = b""
    sequence = [None]
    lock = threading.Lock()

    def send(obj):
        with lock:
            ws.send(json.dumps(obj))

    def receive():
        nonlocal pending
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return {"close": int.from_bytes(data[:2], "big") if len(data) >= 2 else None, "reason": data[2:].decode(errors="replace")}
            if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                continue
            if args.zlib:
                pending += data
                if not pending.endswith(b"\x00\x00\xff\xff"):
                    continue
                data, pending = inflater.decompress(pending), b""
            return json.loads(data)

    def out(obj):
        print(json.dumps(obj, ensure_ascii=False), flush=True)

    hello = receive()
    out(hello)
    interval = hello.get("d", {}).get("heartbeat_interval", 41250) / 1000
    stop = threading.Event()

    def beat():
        while not stop.wait(interval):
            send({"op": 1, "d": sequence[0]})

    if not args.no_heartbeat:
        threading.Thread(target=beat, daemon=True).start()
    send({"op": 2, "d": {"token": args.token, "intents": 513,
                         "properties": {"os": "linux", "browser": "wmq", "device": "wmq"}}})
    deadline = time.time() + args.seconds
    code = 0
    while time.time() < deadline:
        try:
            message = receive()
        except websocket.WebSocketTimeoutException:
            break
        out(message)
        if "close" in message:
            stop.set()
            return 0
        if message.get("s") is not None:
            sequence[0] = message["s"]
        content = (message.get("d") or {}).get("content") if isinstance(message.get("d"), dict) else None
        if args.until and isinstance(content, str) and content.endswith(args.until):
            break
    else:
        code = 1 if args.until else 0
    stop.set()
    ws.close(status=1000)
    return code


if __name__ == "__main__":
    sys.exit(main())
