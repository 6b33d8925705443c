#!/usr/bin/env python3
"""Runs one MQTT scenario with paho-mqtt clients over WebSocket against a broker and prints what
happened as JSON, for the mock server's tests.

Usage: paho_check.py --port P [--path /mqtt] [--protocol 4|5] SCENARIO
  pubsub     a subscriber (t/#, QoS 2) receives QoS 0, 1 and 2 messages from a publisher
  retained   a retained message reaches a later subscriber, with the retain flag
  will       a client whose connection dies has its will published
  keepalive  a client that stops pinging is disconnected by the broker (1.5 x keep-alive)
  v5         MQTT 5 only: CONNACK properties, user properties, topic aliases, no-local and
             subscription identifiers, message expiry, a session resumed within its expiry
             interval, a delayed will, reason codes
"""
import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions


def client(name, args, **kwargs):
    protocol = mqtt.MQTTv5 if args.protocol == 5 else mqtt.MQTTv311
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, transport="websockets", protocol=protocol, **kwargs)
    c.ws_set_options(path=args.path)
    c.received = []
    c.messages = []
    c.connack = None
    c.disconnected = threading.Event()
    c.disconnect_reason = None

    def on_message(c, u, m):
        c.received.append([m.topic, m.payload.decode(), m.qos, bool(m.retain)])
        c.messages.append(m)

    def on_connect(c, u, flags, reason, properties):
        c.connack = {"sessionPresent": bool(flags.session_present), "reason": reason.value,
                     "properties": properties.json() if properties is not None else {}}

    def on_disconnect(c, u, flags, reason, properties):
        c.disconnect_reason = reason.value
        c.disconnected.set()

    c.on_message = on_message
    c.on_connect = on_connect
    c.on_disconnect = on_disconnect
    return c


def start(c, args, keepalive=30, **kwargs):
    if args.protocol == 5:
        kwargs.setdefault("clean_start", True)
    c.connect("127.0.0.1", args.port, keepalive=keepalive, **kwargs)
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
    parser.add_argument("--protocol", type=int, choices=[4, 5], default=4)
    parser.add_argument("scenario", choices=["pubsub", "retained", "will", "keepalive", "v5"])
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
    elif args.scenario == "v5":
        args.protocol = 5
        result = version5(args)
    print(json.dumps(result))


def properties(packet_type, **values):
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    return p


def version5(args):
    result = {}
    sub = client("sub5", args)
    start(sub, args)
    result["connack"] = sub.connack
    sub.subscribe("t/#", options=SubscribeOptions(qos=1, noLocal=True),
                  properties=properties(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=42))
    time.sleep(0.2)
    pub = client("pub5", args)
    start(pub, args)
    # A topic alias set with the first message and used alone by the second.
    pub.publish("t/alias", "one", qos=1, properties=properties(
        PacketTypes.PUBLISH, TopicAlias=1, UserProperty=[("trace", "abc")], MessageExpiryInterval=30)).wait_for_publish(5)
    pub.publish("", "two", qos=2, properties=properties(PacketTypes.PUBLISH, TopicAlias=1)).wait_for_publish(5)
    sub.publish("t/self", "not back to me", qos=1).wait_for_publish(5)  # no local
    wait_for(lambda: len(sub.messages) >= 2)
    time.sleep(0.2)
    result["received"] = [{
        "topic": m.topic, "payload": m.payload.decode(), "qos": m.qos,
        "user": [list(pair) for pair in getattr(m.properties, "UserProperty", [])],
        "subscriptionIdentifier": getattr(m.properties, "SubscriptionIdentifier", None),
        "expiry": getattr(m.properties, "MessageExpiryInterval", None),
    } for m in sub.messages]
    # A session that outlives its connection for 60 s, resumed with what queued meanwhile.
    keeper = client("keeper5", args)
    start(keeper, args, clean_start=False, properties=properties(PacketTypes.CONNECT, SessionExpiryInterval=60))
    keeper.subscribe("k/#", qos=1)
    time.sleep(0.2)
    keeper.disconnect()
    keeper.loop_stop()
    pub.publish("k/queued", "while away", qos=1).wait_for_publish(5)
    keeper = client("keeper5", args)
    start(keeper, args, clean_start=False, properties=properties(PacketTypes.CONNECT, SessionExpiryInterval=60))
    wait_for(lambda: len(keeper.received) >= 1)
    result["resumed"] = {"sessionPresent": keeper.connack["sessionPresent"], "received": keeper.received}
    keeper.disconnect()
    # A will delayed by 1 s.
    sub.subscribe("w/#", qos=1)
    time.sleep(0.2)
    dying = client("dying5", args)
    dying.will_set("w/dying", "gone", qos=1, properties=properties(PacketTypes.WILLMESSAGE, WillDelayInterval=1))
    start(dying, args, properties=properties(PacketTypes.CONNECT, SessionExpiryInterval=10))
    dying.loop_stop()
    lost = time.time()
    dying.socket().close()
    wait_for(lambda: any(m.topic == "w/dying" for m in sub.messages), seconds=5)
    will = [m for m in sub.messages if m.topic == "w/dying"]
    result["will"] = {"received": len(will), "after": round(time.time() - lost, 2)}
    # A topic alias the broker never allowed: DISCONNECT 0x94.
    rogue = client("rogue5", args)
    start(rogue, args)
    rogue.publish("x", "y", properties=properties(PacketTypes.PUBLISH, TopicAlias=60000))
    rogue.disconnected.wait(5)
    result["rogue"] = rogue.disconnect_reason
    return result


if __name__ == "__main__":
    sys.exit(main())
