#!/usr/bin/env python3
"""The mock server benchmark (Tools/bench mock): wmq-mock against mosquitto's websockets
listener, the same load generator (wmq-bench-mock) against each, in the same run.

  latency   a 100 KB and a 1 MB message (1,000,000 bytes) to an idle WebSocket subscriber
  fanout    SUBSCRIBERS WebSocket subscribers (default 1000) each receiving COUNT QoS 0 messages
            (default 1000), three runs, the median reported
  idle      CONNECTIONS idle MQTT-over-WebSocket sessions (default 10000): the broker's resident memory
  abuse     over MQTT/TCP: the broker's memory while 200 MB of QoS 0 messages go to a subscriber
            that never reads (then after it is gone); other clients' publish round trips while a
            late subscriber takes 100,000 retained messages; publish latency to one subscriber
            while another client holds HELD subscriptions (default 1,000,000)

Usage: bench-mock.py WMQ_MOCK WMQ_BENCH_MOCK [SUBSCRIBERS] [COUNT] [CONNECTIONS] [HELD]
"""
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
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
    return process, ws, tcp


def start_mock(binary, held):
    port, tcp = free_port(), free_port()
    process = subprocess.Popen([binary, "--ws", f"127.0.0.1:{port}", "--tcp", f"127.0.0.1:{tcp}", "--log-level", "error",
                                "--max-subscriptions", str(max(held, 10_000))],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    wait_port(tcp)
    return process, port, tcp


# Raw MQTT 3.1.1 over TCP for the abuse phases: a client that holds many subscriptions, or one
# that never reads, is what the load generator does not model.

def mqtt_string(text):
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def mqtt_packet(first, body):
    length, out = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([first]) + bytes(out) + body


def read_packet(sock):
    def exactly(count):
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data
    first = exactly(1)[0]
    length, shift = 0, 0
    while True:
        byte = exactly(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, exactly(length)


def mqtt_client(port, client_id, receive_buffer=None):
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(mqtt_packet(0x10, mqtt_string("MQTT") + bytes([4, 2, 0, 60]) + mqtt_string(client_id)))
    if read_packet(sock)[0] != 0x20:
        raise SystemExit(f"{client_id}: no CONNACK")
    return sock


def subscribe(sock, filters, identifier=1):
    body = identifier.to_bytes(2, "big") + b"".join(mqtt_string(f) + b"\x00" for f in filters)
    sock.sendall(mqtt_packet(0x82, body))


def abuse(port, pid, held):
    """Publish latency while one client holds `held` subscriptions; memory under a stuck subscriber."""
    # First (while the broker's memory is not yet grown by the other phase): a subscriber that
    # never reads, with a small receive window.
    stuck = mqtt_client(port, "stuck", receive_buffer=4096)
    subscribe(stuck, ["#"])
    read_packet(stuck)
    publisher = mqtt_client(port, "load-pub")
    before = rss_mb(pid)
    payload = b"x" * (1 << 20)
    for _ in range(200):
        publisher.sendall(mqtt_packet(0x30, mqtt_string("load/x") + payload))
    time.sleep(1)
    during = rss_mb(pid)
    stuck.close()
    publisher.close()
    time.sleep(2)
    after = rss_mb(pid)
    memory = (f"200 MB of QoS 0 to a subscriber that never reads: resident {before:.0f} MB before, {during:.0f} MB during, "
              f"{after:.0f} MB after it left")
    holder = mqtt_client(port, "holder")
    started = time.time()
    batch, sent = 1000, 0
    for start in range(0, held, batch):
        subscribe(holder, [f"held/{i}/+" for i in range(start, min(held, start + batch))], identifier=start // batch % 65535 + 1)
        sent += 1
        if sent % 50 == 0:
            for _ in range(50):
                read_packet(holder)
    for _ in range(sent % 50):
        read_packet(holder)
    subscribed = time.time() - started
    subscriber = mqtt_client(port, "probe-sub")
    subscribe(subscriber, ["probe/#"])
    read_packet(subscriber)
    publisher = mqtt_client(port, "probe-pub")
    times = []
    for index in range(200):
        sent_at = time.perf_counter()
        publisher.sendall(mqtt_packet(0x30, mqtt_string("probe/x") + b"%d" % index))
        read_packet(subscriber)
        times.append((time.perf_counter() - sent_at) * 1000)
    times.sort()
    latency = (f"{held:,} subscriptions held by one client (subscribed in {subscribed:.1f} s, resident {rss_mb(pid):.0f} MB): "
               f"publish latency to another client median {times[100]:.3f} ms, p99 {times[197]:.3f} ms")
    for sock in (holder, subscriber, publisher):
        sock.close()
    # Last (its retained messages stay in the broker):
    # a late '#' subscriber to 100,000 retained messages, while another client's publishes are timed.
    retainer = mqtt_client(port, "retainer")
    for i in range(100_000):
        retainer.sendall(mqtt_packet(0x31, mqtt_string(f"r/{i}") + b"x" * 100))
    time.sleep(2)
    probe_sub = mqtt_client(port, "stall-sub")
    subscribe(probe_sub, ["stall/#"])
    read_packet(probe_sub)
    probe_pub = mqtt_client(port, "stall-pub")
    late = mqtt_client(port, "late")
    round_trips, stop = [], threading.Event()

    def probing():
        while not stop.is_set():
            sent_at = time.perf_counter()
            probe_pub.sendall(mqtt_packet(0x30, mqtt_string("stall/x") + b"1"))
            read_packet(probe_sub)
            round_trips.append((time.perf_counter() - sent_at) * 1000)
            time.sleep(0.002)
    prober = threading.Thread(target=probing)
    prober.start()
    time.sleep(0.5)
    started = time.perf_counter()
    subscribe(late, ["r/#"])
    got = 0
    while got < 100_000:
        if read_packet(late)[0] & 0xF0 == 0x30:
            got += 1
    took = time.perf_counter() - started
    time.sleep(0.3)
    stop.set()
    prober.join()
    round_trips.sort()
    stall = (f"a late subscriber to 100,000 retained messages got them in {took:.2f} s; another client's publish round trips "
             f"meanwhile: median {round_trips[len(round_trips) // 2]:.2f} ms, max {round_trips[-1]:.1f} ms")
    for sock in (retainer, probe_sub, probe_pub, late):
        sock.close()
    return latency, memory + "\n  " + stall


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
    held = int(sys.argv[6]) if len(sys.argv) > 6 else 1_000_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, start in (("wmq-mock", lambda: start_mock(mock_binary, held)), ("mosquitto", lambda: start_mosquitto(work))):
            broker, port, tcp = start()
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
                try:
                    latency, memory = abuse(tcp, broker.pid, held)
                except (OSError, ConnectionError, SystemExit) as error:
                    latency, memory = f"abuse: failed ({error})", ""
                rows.append((name, small, large, fanout, line, before, during, latency, memory))
            finally:
                broker.terminate()
                try:
                    broker.wait(10)
                except subprocess.TimeoutExpired:
                    broker.kill()
    for name, small, large, fanout, line, before, during, latency, memory in rows:
        print(f"{name}:\n  {small}\n  {large}\n  {fanout}\n  {line or 'idle: not all connected'}: resident memory {during:.1f} MB (before {before:.1f} MB)")
        print(f"  {latency}\n  {memory}")
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
