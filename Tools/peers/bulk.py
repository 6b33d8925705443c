#!/usr/bin/env python3
"""Pushes Works-like notifications through mosquitto over WebSocket until about MB
megabytes have crossed the wire, for the decode benchmark's large capture. With --generic,
generic JSON chat messages instead (rooms, users, text, attachments; 80 B to 150 KB), as other
chat systems send them: not Works notifications.

Usage: bulk.py WS_PORT MB [--generic]
"""
import json
import random
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HOST = "127.0.0.1"


def client(client_id, port):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, transport="websockets")
    c.ws_set_options(path="/mqtt")
    c.received = 0
    c.on_message = lambda c, userdata, message: setattr(c, "received", c.received + 1)
    c.connect(HOST, port, keepalive=30)
    c.loop_start()
    deadline = time.time() + 10
    while not c.is_connected() and time.time() < deadline:
        time.sleep(0.01)
    return c


WORDS = ("hello team the release is ready please review ship it later today tomorrow meeting notes "
         "デプロイ 完了 しました 確認 お願いします 👍 🎉 café naïve").split()


def generic_message(index, rng):
    """A generic chat message: mostly short, some long, a few very long (pasted logs, data URLs)."""
    roll = rng.random()
    words = 8 if roll < 0.8 else (400 if roll < 0.995 else 20000)
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, words)))
    message = {"id": "m-%08d" % index, "room": "room-%d" % (index % 37), "user": {"id": index % 211, "name": "user %d" % (index % 211)},
               "sentAt": "2026-11-20T10:%02d:%02d.%03dZ" % (index // 60000 % 60, index // 1000 % 60, index % 1000),
               "text": text, "mentions": [index % 211] if index % 7 == 0 else [], "edited": index % 11 == 0}
    if index % 13 == 0:
        message["attachments"] = [{"type": "image", "url": "https://cdn.example/%d.png" % index, "size": rng.randint(1000, 90000)}]
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def main(port, megabytes, generic=False):
    subscriber = client("wmq-bench-sub", port)
    subscriber.subscribe("chat/#" if generic else "notification/#", qos=1)
    publisher = client("wmq-bench-pub", port)
    time.sleep(0.2)
    target = megabytes * 1_000_000 // 2  # every message crosses the wire twice
    sent = 0
    index = 0
    rng = random.Random(8)
    while sent < target:
        if generic:
            payload = generic_message(index, rng)
            info = publisher.publish("chat/%s/messages" % ("room-%d" % (index % 37)), payload, qos=index % 2)
            sent += len(payload) + 40
            index += 1
            if index % 2000 == 0:
                info.wait_for_publish(10)
            continue
        payload = json.dumps({
            "nType": 1 if index % 5 else 18, "chNo": 300000000 + index % 977, "chType": 2, "chTitle": "開発チーム",
            "loc-key": "REV_MSG", "loc-args0": "田中 太郎", "loc-args1": "明日のリリースの件 #%d" % index,
            "fromUserNo": 110001, "createTime": 1763776800123 + index, "notification-id": "msg.300012345.%d" % index,
            "badge": 1, "token": "fake-token-%d" % index,
        }, ensure_ascii=False, separators=(",", ":")).encode()
        info = publisher.publish("notification/%d" % (index % 16), payload, qos=index % 2)
        sent += len(payload) + 40
        index += 1
        if index % 2000 == 0:
            info.wait_for_publish(10)
    # Wait for deliveries until they stop coming (mosquitto may drop QoS 0 under load).
    last, quiet = -1, 0
    while subscriber.received < index and quiet < 20:
        quiet = quiet + 1 if subscriber.received == last else 0
        last = subscriber.received
        time.sleep(0.1)
    for c in (publisher, subscriber):
        c.disconnect()
        c.loop_stop()
    print("bulk: %d messages, %d delivered" % (index, subscriber.received), file=sys.stderr)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), "--generic" in sys.argv[3:])
