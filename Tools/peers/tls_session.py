#!/usr/bin/env python3
"""A paho-mqtt session over wss:// that writes its TLS key log (NSS format, Python's
ssl keylog_filename): the client subscribes to `notification`, publishes one Works
notification (a fake one) at QoS 1 to it, receives it and disconnects. For wmq-decode
--keylog tests.

Usage: tls_session.py PORT CAFILE KEYLOG {1.2|1.3} [OPENSSL-CIPHERS]
"""
import json
import ssl
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

port, cafile, keylog, version = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=cafile)
context.keylog_filename = keylog
if version == "1.2":
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    if len(sys.argv) > 5:
        context.set_ciphers(sys.argv[5])
else:
    context.minimum_version = ssl.TLSVersion.TLSv1_3
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="wmq-tls", transport="websockets")
client.ws_set_options(path="/mqtt")
client.tls_set_context(context)
received = []
client.on_message = lambda c, userdata, message: received.append(message)
client.connect("127.0.0.1", port, keepalive=30)
client.loop_start()
deadline = time.time() + 10
while not client.is_connected() and time.time() < deadline:
    time.sleep(0.01)
client.subscribe("notification", qos=1)
time.sleep(0.2)
notification = {"nType": 1, "chNo": 300012345, "chType": 2, "chTitle": "TLS room", "loc-key": "REV_MSG",
                "loc-args0": "Alice", "loc-args1": "hello over TLS " + version, "fromUserNo": 110001,
                "notification-id": "msg.300012345.1", "token": "fake-token-tls"}
client.publish("notification", json.dumps(notification).encode(), qos=1).wait_for_publish(5)
while not received and time.time() < deadline:
    time.sleep(0.01)
client.disconnect()
client.loop_stop()
sys.exit(0 if received else 1)
