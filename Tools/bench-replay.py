#!/usr/bin/env python3
"""The replay benchmark (Tools/bench replay), release builds:

  drive     a recorded publisher (COUNT QoS 1 PUBLISHes of 100 bytes, 50 in flight, each PUBACKed)
            replayed with `wmq-replay drive --asap` against wmq-mock and against mosquitto; the peer,
            in the same run and against the same broker, is paho-mqtt publishing the same messages
            with the same window. Messages/s counts PUBLISHes and PUBACKs.
  captures  every recording in captures/ replayed as CI does (Tools/replay-captures: check, and
            drive against wmq-mock, total wall time, target under 10 s; then as make test does, the
            brokers' recordings also driven against mosquitto)

Usage: bench-replay.py BIN_DIR PYTHON [COUNT]
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("sample", os.path.join(ROOT, "Tools", "make-sample-session.py"))
sample = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sample)
# The mock benchmark's helpers: a free port, waiting for a listener.
spec = importlib.util.spec_from_file_location("bench_mock", os.path.join(ROOT, "Tools", "bench-mock.py"))
bench_mock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_mock)
free_port, wait_port = bench_mock.free_port, bench_mock.wait_port

WINDOW = 50
PAYLOAD = bytes(range(100))


def write_recording(path, count):
    """A publisher's session over WebSocket, as a pcap: COUNT QoS 1 PUBLISHes in windows of 50."""
    request = ("GET /mqtt HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {sample.KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n").encode()
    import base64
    import hashlib
    accept = base64.b64encode(hashlib.sha1((sample.KEY + sample.GUID).encode()).digest()).decode()
    response = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n").encode()
    connect = sample.packet(0x10, sample.mqtt_string("MQTT") + bytes([4, 0x02]) + (60).to_bytes(2, "big") + sample.mqtt_string("bench-pub"))
    records = [(b"C", request), (b"S", response), (b"C", sample.client(connect)), (b"S", sample.ws_frame(bytes([0x20, 2, 0, 0])))]
    sent = 0
    while sent < count:
        batch = min(WINDOW, count - sent)
        ids = [1 + i for i in range(batch)]
        records.append((b"C", b"".join(sample.client(sample.publish("bench/t", PAYLOAD, qos=1, packet_id=i)) for i in ids)))
        records.append((b"S", b"".join(sample.ws_frame(bytes([0x40, 2]) + i.to_bytes(2, "big")) for i in ids)))
        sent += batch
    records.append((b"C", sample.client(bytes([0xE0, 0]))))
    sample.write_pcap(path, sample.session_frames(records))


def drive(binary, recording, url):
    started = time.perf_counter()
    done = subprocess.run([binary, "drive", recording, "--asap", "--url", url, "--format", "json", "--timeout", "30"],
                          capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return None, f"failed ({done.returncode}): {done.stdout[-300:]} {done.stderr[-300:]}"
    report = json.loads(done.stdout.splitlines()[0])
    return (report["seconds"], wall), None


PAHO = r'''
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
port, count = int(sys.argv[1]), int(sys.argv[2])
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho", transport="websockets")
client.ws_set_options(path="/mqtt")
client.max_inflight_messages_set(50)
client.max_queued_messages_set(0)
acked = [0]
client.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
client.connect("127.0.0.1", port, keepalive=60)
client.loop_start()
while not client.is_connected():
    time.sleep(0.001)
payload = bytes(range(100))
started = time.perf_counter()
for _ in range(count):
    client.publish("bench/t", payload, qos=1)
while acked[0] < count:
    time.sleep(0.001)
print(time.perf_counter() - started)
client.disconnect()
client.loop_stop()
'''


def paho(python, port, count):
    done = subprocess.run([python, "-c", PAHO, str(port), str(count)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return None, done.stderr[-300:]
    return float(done.stdout.strip().splitlines()[-1]), None


def main():
    bin_dir, python = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    replay, mock = os.path.join(bin_dir, "wmq-replay"), os.path.join(bin_dir, "wmq-mock")
    with tempfile.TemporaryDirectory() as work:
        recording = os.path.join(work, "publisher.pcap")
        write_recording(recording, count)
        messages = 2 * count
        print(f"drive --asap: a recorded publisher, {count} QoS 1 PUBLISHes of 100 bytes (50 in flight) and their PUBACKs "
              f"= {messages} messages; peer: paho-mqtt publishing the same")
        for name in ("wmq-mock", "mosquitto"):
            port = free_port()
            if name == "wmq-mock":
                server = subprocess.Popen([mock, "--ws", f"127.0.0.1:{port}", "--log-level", "error"],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            else:
                conf = os.path.join(work, "mosquitto.conf")
                tcp = free_port()
                with open(conf, "w") as f:
                    f.write(f"allow_anonymous true\nuser root\nmax_inflight_messages 0\nmax_queued_messages 0\n"
                            f"listener {tcp} 127.0.0.1\nsocket_domain ipv4\nlistener {port} 127.0.0.1\nsocket_domain ipv4\nprotocol websockets\n")
                server = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_port(port)
                runs = []
                for _ in range(3):
                    result, error = drive(replay, recording, f"ws://127.0.0.1:{port}")
                    if error:
                        print(f"  against {name}: {error}")
                        break
                    runs.append(result)
                peer_runs = []
                for _ in range(3):
                    seconds, error = paho(python, port, count)
                    if error:
                        print(f"  paho-mqtt against {name}: failed: {error}")
                        break
                    peer_runs.append(seconds)
                if runs:
                    replayed = sorted(r[0] for r in runs)[len(runs) // 2]
                    wall = sorted(r[1] for r in runs)[len(runs) // 2]
                    line = (f"  against {name:9}: replay {replayed:.3f} s = {messages / replayed:,.0f} messages/s "
                            f"(whole command, with reading the pcap and 0.2 s listening for extras: {wall:.3f} s)")
                    if peer_runs:
                        peer = sorted(peer_runs)[len(peer_runs) // 2]
                        line += f"; paho-mqtt {peer:.3f} s = {messages / peer:,.0f} messages/s; ratio {peer / replayed:.2f}x"
                    print(line)
            finally:
                server.terminate()
                server.wait()
        recordings = len([f for f in os.listdir(os.path.join(ROOT, "captures")) if f.endswith((".pcap", ".pcapng", ".har"))])
        for label, extra in (("check, and drive against wmq-mock", ["--mock-only"]),
                             ("the same, and the brokers' recordings driven against mosquitto too", [])):
            started = time.perf_counter()
            done = subprocess.run([os.path.join(ROOT, "Tools", "replay-captures"), "--bin", bin_dir,
                                   "--reports", os.path.join(work, "reports")] + extra, capture_output=True, text=True)
            total = time.perf_counter() - started
            verdict = "all matched" if done.returncode == 0 else f"FAILED: {done.stderr[-300:]}"
            target = " (target < 10 s)" if extra else ""
            print(f"captures/: {recordings} recordings, {label}: {total:.2f} s wall{target}, {verdict}")

if __name__ == "__main__":
    main()
