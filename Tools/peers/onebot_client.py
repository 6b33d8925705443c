#!/usr/bin/env python3
"""Seed 001's OneBot client, as its README describes it, with websocket-client: for
Tools/make-captures (the OneBot session of the dialect captures).

Usage: onebot_client.py --port P [--token T] [--bot-id N] [--wait-event S]
Connects to ws://127.0.0.1:P/ws/, sends the lifecycle connect event at once, a heartbeat, a
private and a group text message (segment arrays, message_format "array"), a group message as a
CQ-code string, API calls (send_group_msg, get_login_info, an unknown action) with their echo,
then waits up to S seconds for an event pushed by the server; prints each message received as a
JSON line and closes with 1000.
"""
import argparse
import json
import sys
import time

import websocket


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token")
    parser.add_argument("--bot-id", type=int, default=12345)
    parser.add_argument("--wait-event", type=float, default=5)
    args = parser.parse_args()
    header = ["Authorization: Bearer %s" % args.token] if args.token else []
    ws = websocket.create_connection("ws://127.0.0.1:%d/ws/" % args.port, header=header, timeout=10)
    now = int(time.time())
    me = args.bot_id

    def send(obj):
        ws.send(json.dumps(obj, ensure_ascii=False))

    def text_message(message_type, text, **ids):
        message = {"time": now, "self_id": me, "post_type": "message", "message_type": message_type, "user_id": me,
                   "message_id": int(time.time() * 1000)}
        message.update(ids)
        message.update({"raw_message": text, "message": [{"type": "text", "data": {"text": text}}], "message_format": "array"})
        return message

    send({"time": now, "self_id": me, "post_type": "meta_event", "meta_event_type": "lifecycle", "sub_type": "connect"})
    send({"time": now, "self_id": me, "post_type": "meta_event", "meta_event_type": "heartbeat",
          "status": {"online": True, "good": True}, "interval": 30000})
    send(text_message("private", "Hello!", target_id=67890))
    send(text_message("group", "Hello, everyone!", group_id=123456))
    cq = text_message("group", "[CQ:at,qq=10001] 天気&amp;ニュース[CQ:face,id=14]", group_id=123456)
    cq["message"] = cq["raw_message"]
    send(cq)
    send({"action": "send_group_msg", "params": {"group_id": 123456, "message": [{"type": "text", "data": {"text": "Hi from the API"}}]},
          "echo": "call-1"})
    send({"action": "get_login_info", "params": {}, "echo": "call-2"})
    send({"action": "set_group_kick", "params": {"group_id": 123456, "user_id": 1}, "echo": "call-3"})
    answers = 0
    deadline = time.time() + args.wait_event
    event_seen = False
    while time.time() < deadline and not (answers >= 3 and event_seen):
        ws.settimeout(max(0.1, deadline - time.time()))
        try:
            message = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            break
        print(json.dumps(message, ensure_ascii=False), flush=True)
        if "echo" in message:
            answers += 1
        if message.get("post_type") == "message":
            event_seen = True
    ws.close(status=1000)
    return 0 if answers >= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
