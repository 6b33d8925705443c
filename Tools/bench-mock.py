#!/usr/bin/env python3
"""The mock server benchmark (Tools/bench mock): wmq-mock against mosquitto's websockets
listener, the same load generator (wmq-bench-mock) against each, in the same run.

  latency   a 100 KB and a 1 MB message (1,000,000 bytes) to an idle WebSocket subscriber
  fanout    SUBSCRIBERS WebSocket subscribers (default 1000) each receiving COUNT QoS 0 messages
            (default 1000), three runs, the median reported
  idle      CONNECTIONS idle MQTT-over-WebSocket sessions (default 10000): the broker's resident memory

Usage: bench-mock.py WMQ_MOCK WMQ_BENCH_MOCK [SUBSCRIBERS] [COUNT] [CONNECTIONS]
"""
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_mosquitto(work):
    tcp, ws = free_port(), free_port()
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"allow_anonymous true\nuser root\nmax_queued_messages 0\nmessage_size_limit 0\n"
                f"listener {tcp} 127.0.0.1\nsocket_domain ipv4\nlistener {ws} 127.0.0.1\nsocket_domain ipv4\nprotocol websockets\n")
    process = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(ws)
    return process, ws


def start_mock(binary):
    port = free_port()
    process = subprocess.Popen([binary, "--ws", f"127.0.0.1:{port}", "--log-level", "error"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return process, port


def run(generator, *args, timeout=600):
    try:
        done = subprocess.run([generator, *map(str, args)], capture_output=True, text=True, timeout=timeout)
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else f"failed: {done.stderr.strip()[-200:]}"
    except subprocess.TimeoutExpired:
        return f"no result within {timeout} s"


RATE = r"= ([\d.]+) messages/s"


def number(text, pattern):
    match = re.search(pattern, text)
    return float(match.group(1)) if match else None


def main():
    mock_binary, generator = sys.argv[1], sys.argv[2]
    subscribers = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    connections = int(sys.argv[5]) if len(sys.argv) > 5 else 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, start in (("wmq-mock", lambda: start_mock(mock_binary)), ("mosquitto", lambda: start_mosquitto(work))):
            broker, port = start()
            url = f"ws://127.0.0.1:{port}/mqtt"
            try:
                small = run(generator, "latency", url, 102_400, 5, timeout=120)
                large = run(generator, "latency", url, 1_000_000, 3, timeout=300)
                runs = [run(generator, "fanout", url, subscribers, count, timeout=600) for _ in range(3)]
                # The median run by messages/s (a failed run counts as 0).
                rates = [number(line, RATE) or 0 for line in runs]
                order = sorted(range(3), key=lambda i: rates[i])
                fanout = runs[order[1]] + "  (median of 3: " + ", ".join(f"{rate:.0f}" for rate in sorted(rates)) + ")"
                before = rss_mb(broker.pid)
                idle = subprocess.Popen([generator, "idle", url, str(connections), "30"], stdout=subprocess.PIPE, text=True)
                line = idle.stdout.readline().strip()
                time.sleep(2)
                during = rss_mb(broker.pid)
                idle.kill()
                idle.wait()
                rows.append((name, small, large, fanout, line, before, during))
            finally:
                broker.terminate()
                try:
                    broker.wait(10)
                except subprocess.TimeoutExpired:
                    broker.kill()
    for name, small, large, fanout, line, before, during in rows:
        print(f"{name}:\n  {small}\n  {large}\n  {fanout}\n  {line or 'idle: not all connected'}: resident memory {during:.1f} MB (before {before:.1f} MB)")
    if len(rows) == 2:
        mock, mosquitto = rows
        def ratio(a, b, better_low=True):
            if a is None or b is None or a == 0 or b == 0:
                return "n/a"
            return f"{(b / a if better_low else a / b):.1f}x"
        print("ratios (wmq-mock vs mosquitto):")
        print("  100 KB latency:", ratio(number(mock[1], r"median ([\d.]+) ms"), number(mosquitto[1], r"median ([\d.]+) ms")), "faster")
        print("  1 MB latency:  ", ratio(number(mock[2], r"median ([\d.]+) ms"), number(mosquitto[2], r"median ([\d.]+) ms")), "faster")
        print("  fan-out:       ", ratio(number(mock[3], r"= ([\d.]+) messages/s"), number(mosquitto[3], r"= ([\d.]+) messages/s"), better_low=False), "the messages/s")


if __name__ == "__main__":
    main()
