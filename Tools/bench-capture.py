#!/usr/bin/env python3
"""The live capture benchmark (Tools/bench capture), release build, root (CAP_NET_RAW):

A loopback TCP stream is sent at a paced rate (default 1,200 Mbit/s) for SECONDS (default 5),
captured by wmq-capture into a pcap file and, in the same run, by tcpdump (the peer) with the
same kernel buffer and filter. Reported per tool: the rate on the wire, packets and bytes
written, the capture's own throughput, and the kernel's drop count (the target: none at
>= 1 Gbit/s). Then the same unpaced (as fast as Python sends) to find where drops begin.

Usage: bench-capture.py WMQ_CAPTURE [SECONDS] [MBIT]
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUFFER_MB = 32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blast(port, seconds, mbit):
    """Sends for `seconds` at `mbit` Mbit/s (None: as fast as possible); returns bytes sent and time."""
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen(1)
    received = [0]

    def sink():
        connection, _ = server.accept()
        while True:
            data = connection.recv(1 << 20)
            if not data:
                break
            received[0] += len(data)
    thread = threading.Thread(target=sink)
    thread.start()
    client = socket.create_connection(("127.0.0.1", port))
    chunk = bytes(256 * 1024)
    sent = 0
    started = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            break
        if mbit is not None:
            due = sent * 8 / (mbit * 1e6)
            if due > elapsed:
                time.sleep(min(due - elapsed, 0.01))
                continue
        client.sendall(chunk)
        sent += len(chunk)
    client.close()
    thread.join()
    server.close()
    return sent, time.perf_counter() - started


def capture(tool, binary, port, path):
    if tool == "wmq-capture":
        process = subprocess.Popen([binary, "live", "-i", "lo", "--port", str(port), "-w", path, "--buffer", str(BUFFER_MB)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = "capturing on"
    else:
        process = subprocess.Popen(["tcpdump", "-i", "lo", "-B", str(BUFFER_MB * 1024), "-s", "0", "-w", path, f"tcp port {port}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = "listening on"
    lines = []
    while True:
        line = process.stderr.readline()
        if not line:
            raise SystemExit(f"{tool} did not start: {''.join(lines)}")
        lines.append(line)
        if ready in line:
            break
    time.sleep(0.3)
    return process


def stop(tool, process):
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    process.wait()
    if tool == "wmq-capture":
        match = re.search(r"(\d+) packets? \((\d+) bytes\).*kernel dropped (\d+)", rest)
        return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else (None, None, None)
    packets = re.search(r"(\d+) packets? captured", rest)
    dropped = re.search(r"(\d+) packets? dropped by kernel", rest)
    return (int(packets.group(1)) if packets else None, None, int(dropped.group(1)) if dropped else None)


def main():
    binary = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    mbit = float(sys.argv[3]) if len(sys.argv) > 3 else 1200.0
    rounds = 3
    with tempfile.TemporaryDirectory(dir=os.environ.get("WMQ_BENCH_DIR")) as work:
        for label, rate in ((f"paced at {mbit:,.0f} Mbit/s", mbit), ("unpaced", None)):
            print(f"{label}, {seconds:g} s, loopback TCP, kernel buffer {BUFFER_MB} MB, snap length 262144, "
                  f"{rounds} rounds in alternating order (the page cache favours whoever writes first), medians:")
            results = {"wmq-capture": [], "tcpdump": []}
            for round in range(rounds):
                order = ("wmq-capture", "tcpdump") if round % 2 == 0 else ("tcpdump", "wmq-capture")
                for tool in order:
                    port = free_port()
                    path = os.path.join(work, f"{tool}.pcap")
                    process = capture(tool, binary, port, path)
                    sent, took = blast(port, seconds, rate)
                    time.sleep(0.5)
                    packets, _, dropped = stop(tool, process)
                    size = os.path.getsize(path)
                    os.unlink(path)
                    results[tool].append((sent * 8 / took / 1e6, size * 8 / took / 1e6, packets, dropped))
            def median(values):
                values = sorted(values)
                return values[len(values) // 2]
            for tool, runs in results.items():
                print(f"  {tool:11}: sent {median(r[0] for r in runs):,.0f} Mbit/s; written {median(r[1] for r in runs):,.0f} Mbit/s "
                      f"(runs: {', '.join(f'{r[1]:,.0f}' for r in runs)}); kernel drops per run: {', '.join(str(r[3]) for r in runs)}")
            ours, theirs = median(r[1] for r in results["wmq-capture"]), median(r[1] for r in results["tcpdump"])
            print(f"  ratio wmq-capture / tcpdump (written): {ours / theirs:.2f}x")

if __name__ == "__main__":
    main()
