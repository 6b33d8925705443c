#!/usr/bin/env python3
"""The client benchmark (Tools/bench client): notifications per second received from a local
mosquitto over WebSocket by WorksClient and, in the same run, by the peer, a paho-mqtt
subscriber that parses each payload as JSON (its nearest equivalent of annotating); then
WorksClient's own ceiling and its memory over a million messages from an in-process server.

Usage: bench-client.py WMQ_BENCH_CLIENT [COUNT] [BLAST_COUNT]
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(ROOT, ".venv", "bin", "python3")
PUBLISHER = os.path.join(ROOT, "Tools", "peers", "works_publisher.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mosquitto(work):
    tcp, ws = free_port(), free_port()
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"allow_anonymous true\nuser root\nmax_queued_messages 0\nmax_inflight_messages 0\n"
                f"listener {tcp} 127.0.0.1\nsocket_domain ipv4\n"
                f"listener {ws} 127.0.0.1\nsocket_domain ipv4\nprotocol websockets\n")
    process = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", ws), 0.2).close()
            return process, ws
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("mosquitto did not start")


def publish(port, count, qos):
    subprocess.run([PYTHON, PUBLISHER, "--port", str(port), "--qos", str(qos), "--count", str(count), "--prefix", "bench"],
                   check=True)


def paho_subscriber(port, count, qos):
    code = f"""
import json, sys, time, threading
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
count = {count}
state = {{"n": 0, "start": None}}
done = threading.Event()
def on_message(c, u, m):
    if state["start"] is None: state["start"] = time.perf_counter()
    json.loads(m.payload)
    state["n"] += 1
    if state["n"] >= count: done.set()
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho", transport="websockets")
c.ws_set_options(path="/mqtt")
c.on_message = on_message
c.connect("127.0.0.1", {port}, keepalive=60)
c.loop_start()
time.sleep(0.3)
c.subscribe("works/#", qos={qos})
time.sleep(0.3)
print("ready", flush=True)
done.wait(600)
print(f"{{state['n']}} {{time.perf_counter() - state['start']:.3f}}", flush=True)
c.disconnect()
"""
    return subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE, text=True)


def main():
    bench = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    blast = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    with tempfile.TemporaryDirectory() as work:
        broker, port = start_mosquitto(work)
        try:
            results = {}
            for qos in (0, 1):
                ours = subprocess.Popen([bench, "broker", f"ws://127.0.0.1:{port}/mqtt", str(count), str(qos)],
                                        stdout=subprocess.PIPE, text=True)
                assert ours.stdout.readline().strip() == "ready"
                time.sleep(0.2)
                publish(port, count, qos)
                report = ours.communicate(timeout=600)[0]
                print(report, end="")
                ours_rate = float(report.split(" = ")[1].split()[0])

                peer = paho_subscriber(port, count, qos)
                assert peer.stdout.readline().strip() == "ready"
                publish(port, count, qos)
                n, seconds = peer.communicate(timeout=600)[0].split()
                peer_rate = int(n) / float(seconds)
                print(f"paho-mqtt subscriber + json.loads from mosquitto (QoS {qos}): {n} notifications in {seconds} s = {peer_rate:.0f} notifications/s")
                print(f"  ratio WorksClient / paho-mqtt: {ours_rate / peer_rate:.2f}x")
        finally:
            broker.terminate()
            broker.wait(5)
    print(subprocess.run([bench, "blast", str(blast)], stdout=subprocess.PIPE, text=True, check=True).stdout, end="")


if __name__ == "__main__":
    main()
