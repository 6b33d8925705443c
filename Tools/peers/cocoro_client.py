#!/usr/bin/env python3
"""A CocoroCore chat client (docs/protocols.md §5) with websocket-client: for Tools/make-captures.

Usage: cocoro_client.py --port P [QUERY…]
For each query, sends {"action": "chat", "session_id", "request": {"query", "chat_type": "text"}}
on ws://127.0.0.1:P/ws/chat/wmq-capture and reads the streamed answer to its end; then sends a
malformed request and reads the error. Prints each message as a JSON line.
"""
import argparse
import json
import sys

import websocket


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("queries", nargs="*", default=["今日の天気は？", "What is the weather today?"])
    args = parser.parse_args()
    ws = websocket.create_connection("ws://127.0.0.1:%d/ws/chat/wmq-capture" % args.port, timeout=15)
    for number, query in enumerate(args.queries, start=1):
        ws.send(json.dumps({"action": "chat", "session_id": "session-%d" % number,
                            "request": {"query": query, "chat_type": "text", "request_id": "r-%d" % number}}, ensure_ascii=False))
        while True:
            message = json.loads(ws.recv())
            print(json.dumps(message, ensure_ascii=False), flush=True)
            if message["type"] in ("end", "error"):
                break
    ws.send(json.dumps({"action": "chat", "session_id": "session-bad"}))
    print(ws.recv(), flush=True)
    ws.close(status=1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
