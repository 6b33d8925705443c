#!/usr/bin/env python3
"""Scenarios played against a real mosquitto while tcpdump records loopback.

Usage: scenarios.py NAME WS_PORT TCP_PORT

paho-mqtt drives the ordinary clients. `RawWebSocketClient` speaks WebSocket and MQTT by
hand for what paho cannot do: send the reference Works CONNECT with browser headers, and
split one MQTT packet across two WebSocket messages. Cookies here are obvious fakes.
"""
import base64
import json
import os
import socket
import struct
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

HOST = "127.0.0.1"


def wait_for(predicate, seconds=10.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    raise TimeoutError("scenario step did not complete in time")


def paho_client(client_id, port, transport="websockets", protocol=mqtt.MQTTv311, keepalive=60):
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, transport=transport, protocol=protocol)
    if transport == "websockets":
        client.ws_set_options(path="/mqtt")
    client.received = []
    client.on_message = lambda c, userdata, message: c.received.append(message)
    client.connect(HOST, port, keepalive=keepalive)
    client.loop_start()
    wait_for(client.is_connected)
    return client


def finish(*clients):
    for client in clients:
        client.disconnect()
        client.loop_stop()


def mqtt311(ws_port, tcp_port):
    """MQTT 3.1.1 over WebSocket: QoS 0/1/2 both ways, keep-alive pings, a large message."""
    subscriber = paho_client("wmq-sub-311", ws_port, keepalive=2)
    result, _ = subscriber.subscribe("test/#", qos=2)
    publisher = paho_client("wmq-pub-311", ws_port)
    for qos in (0, 1, 2):
        publisher.publish("test/qos%d" % qos, ("hello at QoS %d" % qos).encode(), qos=qos).wait_for_publish(5)
    big = bytes(range(256)) * 400  # 102,400 bytes: many TCP segments and WebSocket frames
    publisher.publish("test/large", big, qos=1).wait_for_publish(10)
    wait_for(lambda: len(subscriber.received) == 4)
    time.sleep(4.5)  # keep-alive 2 s: PINGREQ/PINGRESP go by
    finish(publisher, subscriber)


def mqtt5(ws_port, tcp_port):
    """MQTT 5 over WebSocket with properties."""
    subscriber = paho_client("wmq-sub-5", ws_port, protocol=mqtt.MQTTv5)
    subscriber.subscribe("v5/#", qos=2)
    publisher = paho_client("wmq-pub-5", ws_port, protocol=mqtt.MQTTv5)
    for qos in (0, 1, 2):
        properties = Properties(PacketTypes.PUBLISH)
        properties.MessageExpiryInterval = 60
        properties.UserProperty = [("trace", "t-%d" % qos)]
        properties.ContentType = "text/plain"
        publisher.publish("v5/qos%d" % qos, ("v5 at QoS %d" % qos).encode(), qos=qos,
                          properties=properties).wait_for_publish(5)
    wait_for(lambda: len(subscriber.received) == 3)
    finish(publisher, subscriber)


class RawWebSocketClient:
    """A WebSocket client by hand (RFC 6455 client side, masked frames) carrying MQTT."""

    def __init__(self, port, headers):
        self.sock = socket.create_connection((HOST, port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        request = "GET /mqtt HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" % (HOST, port)
        request += "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n" % key
        for name, value in headers:
            request += "%s: %s\r\n" % (name, value)
        self.sock.sendall((request + "\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(4096)
        if not response.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("upgrade refused: %r" % response[:80])
        self.buffer = response.split(b"\r\n\r\n", 1)[1]
        self.mqtt = b""

    def send_frame(self, payload, opcode=0x2, fin=True):
        mask = os.urandom(4)
        header = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read_frame(self):
        while True:
            if len(self.buffer) >= 2:
                n = self.buffer[1] & 0x7F
                at = 2
                if n == 126:
                    n, at = struct.unpack(">H", self.buffer[2:4])[0], 4
                elif n == 127:
                    n, at = struct.unpack(">Q", self.buffer[2:10])[0], 10
                if len(self.buffer) >= at + n:
                    opcode, payload = self.buffer[0] & 0x0F, self.buffer[at:at + n]
                    self.buffer = self.buffer[at + n:]
                    return opcode, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buffer += chunk

    def read_packet(self):
        """The next MQTT packet from the server, however the frames cut it."""
        while True:
            if len(self.mqtt) >= 2:
                remaining, multiplier, at = 0, 1, 1
                while at < len(self.mqtt):
                    byte = self.mqtt[at]
                    remaining += (byte & 0x7F) * multiplier
                    multiplier *= 128
                    at += 1
                    if not byte & 0x80:
                        break
                if len(self.mqtt) >= at + remaining:
                    packet, self.mqtt = self.mqtt[:at + remaining], self.mqtt[at + remaining:]
                    return packet
            opcode, payload = self.read_frame()
            if opcode in (0x1, 0x2, 0x0):
                self.mqtt += payload

    def close(self):
        self.send_frame(struct.pack(">H", 1000), opcode=0x8)
        try:
            self.read_frame()
        except (EOFError, OSError):
            pass
        self.sock.close()


def string(text):
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def packet(first, body):
    remaining, out = len(body), bytearray()
    while True:
        byte, remaining = remaining % 128, remaining // 128
        out.append(byte | (0x80 if remaining else 0))
        if not remaining:
            break
    return bytes([first]) + bytes(out) + body


def split(ws_port, tcp_port):
    """One MQTT PUBLISH split across two WebSocket messages, and two packets in one message."""
    client = RawWebSocketClient(ws_port, [("Origin", "http://localhost")])
    client.send_frame(packet(0x10, string("MQTT") + bytes([4, 0x02]) + struct.pack(">H", 30) + string("wmq-split")))
    assert client.read_packet()[0] == 0x20
    client.send_frame(packet(0x82, struct.pack(">H", 1) + string("split/#") + bytes([1])))
    assert client.read_packet()[0] == 0x90
    publish = packet(0x32, string("split/one") + struct.pack(">H", 7) + b"this PUBLISH spans two WebSocket messages")
    client.send_frame(publish[:11])
    time.sleep(0.05)
    client.send_frame(publish[11:])
    acks = []
    while len(acks) < 2:  # our PUBACK for packet 7 and the delivery to our own subscription
        received = client.read_packet()
        acks.append(received[0] & 0xF0)
        if received[0] & 0xF0 == 0x30 and received[0] & 0x06:
            topic_length = struct.unpack(">H", received[2:4])[0]
            client.send_frame(packet(0x40, received[4 + topic_length:6 + topic_length]))
    # Two packets in one message: PINGREQ and a QoS 0 PUBLISH.
    client.send_frame(bytes([0xC0, 0x00]) + packet(0x30, string("split/two") + b"two in one"))
    time.sleep(0.2)
    client.send_frame(bytes([0xE0, 0x00]))
    client.close()


def works(ws_port, tcp_port):
    """A Works-like session: the reference Works CONNECT over WebSocket with browser
    headers and (fake) cookies, Works notification payloads published over plain TCP by
    paho and delivered at QoS 1, each acknowledged."""
    headers = [
        ("Origin", "https://talk.worksmobile.com"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) wmq-make-captures"),
        ("Cookie", "WORKS_USER_ID=fake-user; WORKS_SES=fake-session-not-real; NEO_SES=fake-neo; WORKS_RE_LOC=jp1"),
    ]
    client = RawWebSocketClient(ws_port, headers)
    client_id = "web-beejs_" + "0123456789ab"
    client.send_frame(packet(0x10, string("MQTT") + bytes([4, 0x82]) + struct.pack(">H", 50) + string(client_id) + string("dummy")))
    assert client.read_packet()[0] == 0x20
    # mosquitto delivers only to subscribers; the Works service pushes without one.
    client.send_frame(packet(0x82, struct.pack(">H", 1) + string("notification") + bytes([1])))
    assert client.read_packet()[0] == 0x90

    publisher = paho_client("wmq-works-pusher", tcp_port, transport="tcp")
    sticker_extras = json.dumps({"stkType": "line", "pkgId": "11537", "stkId": "52002734", "stkOpt": ""})
    payloads = [
        {"nType": 1, "chNo": 300012345, "chType": 2, "chTitle": "開発チーム", "loc-key": "REV_MSG", "loc-args0": "田中 太郎",
         "loc-args1": "明日のリリース、準備できました👍", "fromUserNo": 110001, "createTime": 1763776800123,
         "notification-id": "msg.300012345.1001", "messageNo": 1001, "token": "fake-token-0001"},
        {"nType": 18, "chNo": 300012345, "chType": 2, "chTitle": "開発チーム", "loc-key": "REV_MSG", "loc-args0": "Alice Smith",
         "extras": sticker_extras, "fromUserNo": 110002, "notification-id": "msg.300012345.1002", "token": "fake-token-0002"},
        {"command": 93004, "chNo": 300012345, "readerId": 110002, "msgSn": 1002},
    ]
    for payload in payloads:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        publisher.publish("notification", body, qos=1).wait_for_publish(5)
        delivered = client.read_packet()
        assert delivered[0] & 0xF6 == 0x32, delivered[:4]
        remaining_at = 2 if delivered[1] < 0x80 else 3
        topic_length = struct.unpack(">H", delivered[remaining_at:remaining_at + 2])[0]
        packet_id = delivered[remaining_at + 2 + topic_length:remaining_at + 4 + topic_length]
        client.send_frame(packet(0x40, packet_id))
    client.send_frame(bytes([0xC0, 0x00]))
    assert client.read_packet()[0] == 0xD0
    client.send_frame(bytes([0xE0, 0x00]))
    client.close()
    finish(publisher)


def echo(ws_port, tcp_port):
    """MQTT 3.1.1 over WebSocket: a client's own QoS 0/1/2 messages come back to it. Brokers
    may acknowledge a publication before or after they deliver it (mosquitto acknowledges
    first), so a replay against another broker sees both orders."""
    client = paho_client("wmq-echo-311", ws_port)
    client.subscribe("echo/#", qos=2)
    time.sleep(0.2)
    for qos in (0, 1, 2):
        client.publish("echo/qos%d" % qos, ("echo at QoS %d" % qos).encode(), qos=qos).wait_for_publish(5)
        wait_for(lambda: len(client.received) == qos + 1)
    client.unsubscribe("echo/#")
    time.sleep(0.2)
    finish(client)


def echo5(ws_port, tcp_port):
    """MQTT 5 over WebSocket: the same echo with a topic alias set, then used by an empty topic."""
    client = paho_client("wmq-echo-5", ws_port, protocol=mqtt.MQTTv5)
    client.subscribe("echo5/#", qos=2)
    time.sleep(0.2)
    for index, qos in enumerate((0, 1, 2, 1)):
        properties = Properties(PacketTypes.PUBLISH)
        properties.TopicAlias = 1
        topic = "echo5/aliased" if index == 0 else ""
        client.publish(topic, ("alias %d at QoS %d" % (index, qos)).encode(), qos=qos,
                       properties=properties).wait_for_publish(5)
        wait_for(lambda: len(client.received) == index + 1)
    client.unsubscribe("echo5/#")
    time.sleep(0.2)
    finish(client)


def matrix_session(ws_port, protocol, suffix, alias):
    """Two subscribers and a publisher on connections of their own: a retained message, a will,
    QoS 0/1/2 from the publisher, a QoS 1 message from a subscriber (it gets its own back),
    topic aliases in 5.0. Every message is awaited before the next step, so any correct broker
    answers the same packets (their order across flows is its own)."""
    publisher = paho_client("wmq-mx-pub" + suffix, ws_port, protocol=protocol)
    publisher.publish("mx/retained", b"kept for later subscribers", qos=1, retain=True).wait_for_publish(5)
    first = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="wmq-mx-sub1" + suffix, transport="websockets", protocol=protocol)
    first.ws_set_options(path="/mqtt")
    first.will_set("mx/will", b"sub1 is gone", qos=1, retain=False)
    first.received = []
    first.on_message = lambda c, userdata, message: c.received.append(message)
    first.connect(HOST, ws_port, keepalive=60)
    first.loop_start()
    wait_for(first.is_connected)
    first.subscribe("mx/#", qos=2)
    wait_for(lambda: len(first.received) == 1)  # the retained message
    second = paho_client("wmq-mx-sub2" + suffix, ws_port, protocol=protocol)
    second.subscribe("mx/+/b", qos=1)
    time.sleep(0.2)
    for qos in (0, 1, 2):
        properties = None
        topic = "mx/a/b"
        if alias:
            properties = Properties(PacketTypes.PUBLISH)
            properties.TopicAlias = 1
            topic = "mx/a/b" if qos == 0 else ""
        publisher.publish(topic, ("to both at QoS %d" % qos).encode(), qos=qos, properties=properties).wait_for_publish(5)
        wait_for(lambda: len(first.received) == 2 + qos and len(second.received) == 1 + qos)
    publisher.publish("mx/c", b"to the first only", qos=2).wait_for_publish(5)
    wait_for(lambda: len(first.received) == 5)
    first.publish("mx/back", b"from a subscriber", qos=1).wait_for_publish(5)
    wait_for(lambda: len(first.received) == 6)
    publisher.publish("mx/retained", b"", qos=1, retain=True).wait_for_publish(5)  # cleared
    wait_for(lambda: len(first.received) == 7)
    finish(second, first, publisher)


def matrix(ws_port, tcp_port):
    """The cross-implementation session in MQTT 3.1.1 (docs/replay.md)."""
    matrix_session(ws_port, mqtt.MQTTv311, "", alias=False)


def matrix5(ws_port, tcp_port):
    """The cross-implementation session in MQTT 5.0, the publisher using a topic alias."""
    matrix_session(ws_port, mqtt.MQTTv5, "-5", alias=True)


SCENARIOS = {"matrix-ws": matrix, "matrix5-ws": matrix5, "mqtt311-ws": mqtt311, "mqtt5-ws": mqtt5, "split-ws": split, "works-ws": works,
             "echo-ws": echo, "echo5-ws": echo5}

if __name__ == "__main__":
    name, ws_port, tcp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    SCENARIOS[name](ws_port, tcp_port)
