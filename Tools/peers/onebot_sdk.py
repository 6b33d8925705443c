#!/usr/bin/env python3
"""A bot written with aiocqhttp (a OneBot v11 SDK from PyPI), serving reverse WebSocket
connections of OneBot implementations on ws://127.0.0.1:PORT/ws/ — the peer of wmq's OneBot
client in its tests and of Tools/make-captures.

Usage: onebot_sdk.py --port P [--token T]
Prints one JSON line per thing that happened: {"ready": port} once listening, {"connect": self_id},
{"heartbeat": interval}, {"message": {...event}} and, after answering each message with
"echo: <text>" through the send_msg API call, {"sent": <the implementation's answer>} or
{"failed": "..."}.
"""
import argparse
import asyncio
import json
import logging
import sys

from aiocqhttp import CQHttp, Event


def out(obj):
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token")
    args = parser.parse_args()
    logging.getLogger("hypercorn").setLevel(logging.WARNING)
    bot = CQHttp(access_token=args.token, api_timeout_sec=10)

    @bot.on_meta_event("lifecycle.connect")
    async def connected(event: Event):
        out({"connect": event.self_id})

    @bot.on_meta_event("heartbeat")
    async def heartbeat(event: Event):
        out({"heartbeat": event.get("interval")})

    @bot.on_message
    async def message(event: Event):
        out({"message": dict(event)})
        try:
            result = await bot.send(event, "echo: " + event.raw_message)
            out({"sent": result})
        except Exception as error:  # the test reads what went wrong
            out({"failed": repr(error)})

    @bot.server_app.before_serving
    async def ready():
        out({"ready": args.port})

    bot.run(host="127.0.0.1", port=args.port, use_reloader=False)


if __name__ == "__main__":
    sys.exit(main())
