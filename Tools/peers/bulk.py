#!/usr/bin/env python3
"""Pushes Works-like notifications through mosquitto over WebSocket until about MB
megabytes have crossed the wire, for the decode benchmark's large capture.

Usage: bulk.py WS_PORT MB
"""
import json
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


def main(port, megabytes):
    subscriber = client("wmq-bench-sub", port)
    subscriber.subscribe("notification/#", qos=1)
    publisher = client("wmq-bench-pub", port)
    time.sleep(0.2)
    target = megabytes * 1_000_000 // 2  # every message crosses the wire twice
    sent = 0
    index = 0
    while sent < target:
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
    main(int(sys.argv[1]), int(sys.argv[2]))
