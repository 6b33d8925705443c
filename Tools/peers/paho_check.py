#!/usr/bin/env python3
"""Runs one MQTT 3.1.1 scenario with paho-mqtt clients over WebSocket against a broker and prints
what happened as JSON, for the mock server's tests.

Usage: paho_check.py --port P [--path /mqtt] SCENARIO
  pubsub     a subscriber (t/#, QoS 2) receives QoS 0, 1 and 2 messages from a publisher
  retained   a retained message reaches a later subscriber, with the retain flag
  will       a client whose connection dies has its will published
  keepalive  a client that stops pinging is disconnected by the broker (1.5 x keep-alive)
"""
import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def client(name, args, **kwargs):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, transport="websockets", protocol=mqtt.MQTTv311, **kwargs)
    c.ws_set_options(path=args.path)
    c.received = []
    c.disconnected = threading.Event()
    c.on_message = lambda c, u, m: c.received.append([m.topic, m.payload.decode(), m.qos, bool(m.retain)])
    c.on_disconnect = lambda c, u, f, rc, p: c.disconnected.set()
    return c


def start(c, args, keepalive=30):
    c.connect("127.0.0.1", args.port, keepalive=keepalive)
    c.loop_start()
    deadline = time.time() + 5
    while not c.is_connected() and time.time() < deadline:
        time.sleep(0.01)
    if not c.is_connected():
        raise SystemExit(json.dumps({"error": "could not connect"}))


def wait_for(condition, seconds=5):
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.01)
    return condition()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/mqtt")
    parser.add_argument("scenario", choices=["pubsub", "retained", "will", "keepalive"])
    args = parser.parse_args()
    result = {}
    if args.scenario == "pubsub":
        sub, pub = client("sub", args), client("pub", args)
        start(sub, args)
        sub.subscribe("t/#", qos=2)
        time.sleep(0.2)
        start(pub, args)
        for qos in (0, 1, 2):
            pub.publish(f"t/{qos}", f"qos {qos}", qos=qos).wait_for_publish(5)
        wait_for(lambda: len(sub.received) >= 3)
        result["received"] = sub.received
    elif args.scenario == "retained":
        pub = client("pub", args)
        start(pub, args)
        pub.publish("r/a", "kept", qos=1, retain=True).wait_for_publish(5)
        pub.disconnect()
        sub = client("sub", args)
        start(sub, args)
        sub.subscribe("r/#", qos=1)
        wait_for(lambda: len(sub.received) >= 1)
        result["received"] = sub.received
    elif args.scenario == "will":
        sub = client("sub", args)
        start(sub, args)
        sub.subscribe("w/#", qos=1)
        time.sleep(0.2)
        dying = client("dying", args)
        dying.will_set("w/dying", "gone", qos=1)
        start(dying, args)
        dying.loop_stop()
        dying.socket().close()  # no DISCONNECT: the connection is lost
        wait_for(lambda: len(sub.received) >= 1)
        result["received"] = sub.received
    elif args.scenario == "keepalive":
        sleepy = client("sleepy", args)
        started = time.time()  # before CONNECT, the last packet the broker will see
        start(sleepy, args, keepalive=1)
        sleepy.loop_stop()  # no more PINGREQ
        # The broker closes the socket; paho notices when it reads again.
        sock = sleepy.socket()
        sock = getattr(sock, "_socket", sock)  # under paho's WebSocket wrapper
        sock.settimeout(5)
        result["closed"] = False
        try:
            while time.time() - started < 5:
                if sock.recv(4096) == b"":  # anything else (a late PINGRESP) is read past
                    result["closed"] = True
                    break
        except OSError:
            result["closed"] = True
        result["after"] = round(time.time() - started, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
