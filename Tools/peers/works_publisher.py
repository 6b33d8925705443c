#!/usr/bin/env python3
"""Publishes Works notifications with paho-mqtt, for the client's tests and benchmark.

Usage: works_publisher.py --port P [--transport websockets|tcp] [--qos 0|1|2] [--count N]
                          [--topic T] [--start K] [--prefix ID] [--rate-report]

Each message is a Works text notification (nType 1, REV_MSG) whose notification-id is
"msg.<prefix>.<index>" and whose text is "message <index>", so the receiver can check that
every index arrived exactly once. Exits 0 once every publish was acknowledged by the broker.
"""
import argparse
import json
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def payload(prefix, index):
    return json.dumps({
        "nType": 1, "chNo": 1000 + index % 7, "chType": 2, "chTitle": "wmq tests",
        "loc-key": "REV_MSG", "loc-args0": "Publisher", "loc-args1": f"message {index}",
        "fromUserNo": 42, "createTime": 1700000000000 + index, "notification-id": f"msg.{prefix}.{index}",
        "token": "not-a-real-token",
    }, separators=(",", ":"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", default="websockets", choices=["websockets", "tcp"])
    parser.add_argument("--qos", type=int, default=1, choices=[0, 1, 2])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--topic", default="works/notification")
    parser.add_argument("--prefix", default="p")
    args = parser.parse_args()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"publisher-{args.prefix}", transport=args.transport)
    if args.transport == "websockets":
        client.ws_set_options(path="/mqtt")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", args.port, keepalive=30)
    client.loop_start()
    started = time.time()
    deadline = started + 600
    # In windows of 1000, so that paho's own queue never overflows on long runs.
    for window in range(args.start, args.start + args.count, 1000):
        infos = [client.publish(args.topic, payload(args.prefix, i), qos=args.qos)
                 for i in range(window, min(window + 1000, args.start + args.count))]
        for info in infos:
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                print(f"publish refused by paho: {mqtt.error_string(info.rc)}", file=sys.stderr)
                return 1
            info.wait_for_publish(timeout=max(deadline - time.time(), 0.1))
            if not info.is_published():
                print(f"publish {info.mid} not acknowledged within 600 s", file=sys.stderr)
                return 1
    elapsed = time.time() - started
    client.disconnect()
    client.loop_stop()
    print(f"published {args.count} at QoS {args.qos} in {elapsed:.3f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
