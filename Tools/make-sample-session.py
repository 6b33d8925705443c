#!/usr/bin/env python3
"""Writes captures/works-sample.pcap: a Works MQTT-over-WebSocket session as TCP segments
over IPv4 and Ethernet, with the TCP handshake and FINs, in the pcap format Wireshark and
tshark open; the same frames as pcapng; and the session's WebSocket messages as a HAR
file like Chrome DevTools exports.

The MQTT and WebSocket encodings here are written independently of the Swift codecs on
purpose: the demo and the end-to-end tests then check our decoders against a second
implementation, not against themselves. All cookies and tokens are obvious fakes.

Each record below is one TCP segment; segment boundaries cut WebSocket frames and MQTT
packets the way real TCP does.
"""
import base64
import hashlib
import json
import struct
import sys

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
CLIENT_ID = "web-beejs_0123456789ab"


def remaining_length(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def mqtt_string(text):
    data = text.encode("utf-8")
    return struct.pack(">H", len(data)) + data


def packet(first_byte, body):
    return bytes([first_byte]) + remaining_length(len(body)) + body


def connect():
    body = mqtt_string("MQTT") + bytes([4, 0x82]) + struct.pack(">H", 50)
    body += mqtt_string(CLIENT_ID) + mqtt_string("dummy")
    return packet(0x10, body)


def publish(topic, payload, qos=1, packet_id=1):
    body = mqtt_string(topic)
    if qos:
        body += struct.pack(">H", packet_id)
    return packet(0x30 | (qos << 1), body + payload)


def ws_frame(payload, opcode=0x2, fin=True, mask=None):
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    mask_bit = 0x80 if mask else 0
    if n < 126:
        header = bytes([first, mask_bit | n])
    elif n < 65536:
        header = bytes([first, mask_bit | 126]) + struct.pack(">H", n)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


def client(payload, opcode=0x2, fin=True, key=b"\x37\xfa\x21\x3d"):
    return ws_frame(payload, opcode, fin, key)


def notification(**fields):
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


CLIENT = (bytes([192, 0, 2, 10]), 51234)
SERVER = (bytes([198, 51, 100, 20]), 80)
START = 1763776800.0


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(">%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_frame(src, dst, seq, ack, flags, payload, ident):
    header = struct.pack(">HHIIBBHHH", src[1], dst[1], seq, ack, 0x50, flags, 65535, 0, 0)
    pseudo = src[0] + dst[0] + struct.pack(">BBH", 0, 6, len(header) + len(payload))
    tcp_sum = checksum(pseudo + header + payload)
    header = header[:16] + struct.pack(">H", tcp_sum) + header[18:]
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(header) + len(payload), ident, 0x4000, 64, 6, 0, src[0], dst[0])
    ip = ip[:10] + struct.pack(">H", checksum(ip)) + ip[12:]
    ethernet = bytes([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00])
    return ethernet + ip + header + payload


def session_frames(records):
    """The session as Ethernet frames with their times: one TCP segment per record."""
    SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
    seq = {b"C": 1000, b"S": 5000}
    frames = []
    frames.append((CLIENT, SERVER, 999, 0, SYN, b""))
    frames.append((SERVER, CLIENT, 4999, 1000, SYN | ACK, b""))
    frames.append((CLIENT, SERVER, 1000, 5000, ACK, b""))
    for direction, data in records:
        src, dst = (CLIENT, SERVER) if direction == b"C" else (SERVER, CLIENT)
        other = b"S" if direction == b"C" else b"C"
        frames.append((src, dst, seq[direction], seq[other], PSH | ACK, data))
        seq[direction] += len(data)
    frames.append((CLIENT, SERVER, seq[b"C"], seq[b"S"], FIN | ACK, b""))
    frames.append((SERVER, CLIENT, seq[b"S"], seq[b"C"] + 1, FIN | ACK, b""))
    frames.append((CLIENT, SERVER, seq[b"C"] + 1, seq[b"S"] + 1, ACK, b""))
    return [(index * 12345, tcp_frame(src, dst, s, a, flags, payload, index + 1))
            for index, (src, dst, s, a, flags, payload) in enumerate(frames)]


def write_pcap(path, frames):
    """pcap: microsecond timestamps, Ethernet."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for micros, frame in frames:
            out.write(struct.pack("<IIII", int(START) + micros // 1000000, micros % 1000000, len(frame), len(frame)))
            out.write(frame)


def pcapng_block(kind, body):
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def write_pcapng(path, frames):
    """pcapng: a section header, one Ethernet interface (microseconds), enhanced packet blocks."""
    with open(path, "wb") as out:
        out.write(pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        out.write(pcapng_block(0x00000001, struct.pack("<HHI", 1, 0, 262144)))
        for micros, frame in frames:
            stamp = int(START) * 1000000 + micros
            out.write(pcapng_block(0x00000006, struct.pack("<IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF, len(frame), len(frame)) + frame))


def write_har(path, request, response, messages):
    """A HAR 1.2 file as Chrome DevTools writes it: one WebSocket entry with its
    _webSocketMessages (binary messages in base64)."""
    def headers(head):
        lines = head.decode().split("\r\n")[1:]
        return [{"name": line.split(": ", 1)[0], "value": line.split(": ", 1)[1]} for line in lines if ": " in line]
    entry = {
        "startedDateTime": "2025-11-22T02:00:00.000Z", "time": 0,
        "request": {"method": "GET", "url": "wss://jp1-web-noti.worksmobile.com/wmqtt", "httpVersion": "HTTP/1.1",
                    "headers": headers(request), "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 101, "statusText": "Switching Protocols", "httpVersion": "HTTP/1.1",
                     "headers": headers(response), "cookies": [], "content": {"size": 0, "mimeType": "x-unknown"},
                     "redirectURL": "", "headersSize": -1, "bodySize": 0},
        "cache": {}, "timings": {"send": 0, "wait": 0, "receive": 0},
        "serverIPAddress": "198.51.100.20", "_resourceType": "websocket",
        "_webSocketMessages": [
            {"type": kind, "time": START + 0.01 * (index + 1), "opcode": 2, "data": base64.b64encode(data).decode()}
            for index, (kind, data) in enumerate(messages)
        ],
    }
    har = {"log": {"version": "1.2", "creator": {"name": "wmq make-sample-session", "version": "1"},
                   "pages": [], "entries": [entry]}}
    with open(path, "w", encoding="utf-8") as out:
        json.dump(har, out, ensure_ascii=False, indent=1)
        out.write("\n")


def main(pcap_path, pcapng_path=None, har_path=None):
    request = (
        "GET /wmqtt HTTP/1.1\r\n"
        "Host: jp1-web-noti.worksmobile.com\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: mqtt\r\n"
        "Origin: https://talk.worksmobile.com\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) wmq-sample\r\n"
        "Cookie: WORKS_USER_ID=fake-user; WORKS_SES=fake-session-not-real; NEO_SES=fake-neo; WORKS_RE_LOC=jp1\r\n"
        "\r\n"
    ).encode()
    accept = base64.b64encode(hashlib.sha1((KEY + GUID).encode()).digest()).decode()
    response = (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n"
        "Sec-WebSocket-Protocol: mqtt\r\n"
        "\r\n"
    ).encode()

    text = notification(**{
        "nType": 1, "chNo": 300012345, "chType": 2, "chTitle": "開発チーム", "loc-key": "REV_MSG",
        "loc-args0": "田中 太郎", "loc-args1": "明日のリリース、準備できました👍", "fromUserNo": 110001,
        "createTime": 1763776800123, "notification-id": "msg.300012345.1001", "messageNo": 1001,
        "badge": 1, "token": "fake-token-0001", "sType": 0, "ocn": 1,
    })
    sticker_extras = json.dumps({"stkType": "line", "pkgId": "11537", "stkId": "52002734", "stkOpt": ""})
    sticker = notification(**{
        "nType": 18, "chNo": 300012345, "chType": 2, "chTitle": "開発チーム", "loc-key": "REV_MSG",
        "loc-args0": "Alice Smith", "extras": sticker_extras, "fromUserNo": 110002,
        "createTime": 1763776805456, "notification-id": "msg.300012345.1002", "messageNo": 1002,
        "token": "fake-token-0002",
    })
    receipt = notification(command=93004, chNo=300012345, readerId=110002, msgSn=1002)
    message = notification(msgTypeCode=1, chNo=300099, msg="Standup in 5 minutes", writerInfo={"name": "Bob"},
                           ctime=1763776810000, mbrCnt=4, msgTid="t-77")

    publish_text = publish("notification", text, qos=1, packet_id=1)
    publish_sticker = publish("notification", sticker, qos=1, packet_id=2)
    publish_receipt = publish("notification", receipt, qos=0)
    publish_message = publish("notification", message, qos=0)
    text_frame = ws_frame(publish_text)
    cut = len(text_frame) // 2
    split_at = len(publish_message) // 3

    records = [
        (b"C", request),
        (b"S", response),
        (b"C", client(connect())),
        (b"S", ws_frame(bytes([0x20, 0x02, 0x00, 0x00]))),  # CONNACK accepted
        # The text notification's frame arrives in two TCP segments.
        (b"S", text_frame[:cut]),
        (b"S", text_frame[cut:]),
        (b"C", client(bytes([0x40, 0x02, 0x00, 0x01]))),  # PUBACK 1
        # Two MQTT packets in one WebSocket message: the sticker and a read receipt.
        (b"S", ws_frame(publish_sticker + publish_receipt)),
        (b"C", client(bytes([0x40, 0x02, 0x00, 0x02]), key=b"\x01\x02\x03\x04")),  # PUBACK 2
        # One MQTT packet split across two WebSocket messages.
        (b"S", ws_frame(publish_message[:split_at]) + ws_frame(publish_message[split_at:])),
        (b"C", client(bytes([0xC0, 0x00]), key=b"\xaa\xbb\xcc\xdd")),  # PINGREQ
        (b"S", ws_frame(bytes([0xD0, 0x00]))),  # PINGRESP
        (b"C", client(bytes([0xE0, 0x00]), key=b"\x10\x20\x30\x40")),  # DISCONNECT
        (b"C", client(struct.pack(">H", 1000) + "bye".encode(), opcode=0x8, key=b"\x0f\x0e\x0d\x0c")),
        (b"S", ws_frame(struct.pack(">H", 1000), opcode=0x8)),
    ]
    frames = session_frames(records)
    write_pcap(pcap_path, frames)
    if pcapng_path:
        write_pcapng(pcapng_path, frames)
    if har_path:
        write_har(har_path, request, response, [
            ("send", connect()), ("receive", bytes([0x20, 0x02, 0x00, 0x00])), ("receive", publish_text),
            ("send", bytes([0x40, 0x02, 0x00, 0x01])), ("receive", publish_sticker + publish_receipt),
            ("send", bytes([0x40, 0x02, 0x00, 0x02])), ("receive", publish_message[:split_at]),
            ("receive", publish_message[split_at:]), ("send", bytes([0xC0, 0x00])), ("receive", bytes([0xD0, 0x00])),
            ("send", bytes([0xE0, 0x00])),
        ])


if __name__ == "__main__":
    # make-sample-session.py [PCAP [PCAPNG [HAR]]]
    if len(sys.argv) > 1:
        main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None, sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        main("captures/works-sample.pcap", "captures/works-sample.pcapng", "captures/works-sample.har")
