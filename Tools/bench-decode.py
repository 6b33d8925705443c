#!/usr/bin/env python3
"""The decode benchmark (run by `Tools/bench decode`): wmq-decode against tshark on one
large capture, in the same run. Throughput is capture bytes per second of wall time;
peak memory is each child's maximum resident set size.

  Tools/bench-decode.py CAPTURE WMQ_DECODE [RUNS]
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(command, stdout, runs):
    """Best wall time of `runs` runs, and the largest peak RSS (KiB) of the process
    itself, read from wait4 (RUSAGE_CHILDREN would mix in other children)."""
    best = float("inf")
    peak = 0
    for _ in range(runs):
        start = time.perf_counter()
        with open(stdout, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            raise RuntimeError("%s exited %d" % (command[0], code))
        best = min(best, elapsed)
        peak = max(peak, usage.ru_maxrss)
    return best, peak


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def main(capture, wmq, runs):
    size = os.path.getsize(capture)
    lua = "lua_script:" + os.path.join(HERE, "tshark", "mqtt-over-websocket.lua")
    work = tempfile.mkdtemp()
    tshark_fields = ["tshark", "-r", capture, "-X", lua, "-o", "gui.max_tree_depth:5000", "-Y", "mqtt", "-T", "fields",
                     "-E", "occurrence=a", "-e", "frame.number", "-e", "tcp.stream", "-e", "mqtt.msgtype", "-e", "mqtt.topic",
                     "-e", "mqtt.qos", "-e", "mqtt.msgid", "-e", "mqtt.len"]
    cases = [
        ("tshark -T fields (MQTT type, topic, QoS, id, length)", tshark_fields, 1),
        ("wmq-decode --stats", [wmq, capture, "--stats", "--format", "jsonl"], runs),
        ("wmq-decode --format jsonl to a file", [wmq, capture, "--format", "jsonl"], runs),
    ]
    results = {}
    print("decode benchmark · %s (%.1f MB) · best of %d runs (tshark: 1)" % (capture, size / 1e6, runs))
    for name, command, n in cases:
        out = os.path.join(work, "%d.out" % len(results))
        seconds, peak = measure(command, out, n)
        results[name] = (seconds, peak)
        print("  %-55s %7.2f s  %8.1f MB/s  peak RSS %6.1f MB  (%d output lines)"
              % (name, seconds, size / seconds / 1e6, peak / 1024, count_lines(out)))
    tshark_seconds = results[cases[0][0]][0]
    for name, _, _ in cases[1:]:
        print("  %s: %.1f× tshark's throughput" % (name, tshark_seconds / results[name][0]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
