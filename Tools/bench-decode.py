#!/usr/bin/env python3
"""The decode benchmark (run by `Tools/bench decode`): wmq-decode against tshark on one
large capture, in the same run. Throughput is capture bytes per second of wall time;
peak memory is each child's maximum resident set size. Every command runs RUNS times
(default 3), the commands taking turns, and the best time of each counts: a slow spell of
the machine then falls on all of them alike.

  Tools/bench-decode.py CAPTURE WMQ_DECODE [RUNS]
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(command, stdout):
    """Wall time of one run, and the peak RSS (KiB) of the process itself, read from
    wait4 (RUSAGE_CHILDREN would mix in other children). The previous run's output file is
    removed before the clock starts: truncating it on open freed its page cache inside the
    timed span, which charged up to a fifth of a JSON Lines run (150 MB of output) to the
    next run of the same command, and next to nothing to tshark's small output."""
    if os.path.exists(stdout):
        os.unlink(stdout)
        os.sync()
    start = time.perf_counter()
    with open(stdout, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise RuntimeError("%s exited %d" % (command[0], code))
    return elapsed, usage.ru_maxrss


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
        ("tshark -T fields (MQTT type, topic, QoS, id, length)", tshark_fields),
        ("wmq-decode --stats", [wmq, capture, "--stats", "--format", "jsonl"]),
        ("wmq-decode --format jsonl to a file", [wmq, capture, "--format", "jsonl"]),
    ]
    times = {name: [] for name, _ in cases}
    peaks = {name: 0 for name, _ in cases}
    print("decode benchmark · %s (%.1f MB) · best of %d runs each, taking turns" % (capture, size / 1e6, runs))
    for _ in range(runs):
        for index, (name, command) in enumerate(cases):
            seconds, peak = measure(command, os.path.join(work, "%d.out" % index))
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
    for index, (name, _) in enumerate(cases):
        best = min(times[name])
        spread = " ".join("%.2f" % t for t in sorted(times[name]))
        print("  %-55s %7.2f s  %8.1f MB/s  peak RSS %6.1f MB  (%d output lines; runs %s)"
              % (name, best, size / best / 1e6, peaks[name] / 1024, count_lines(os.path.join(work, "%d.out" % index)), spread))
    tshark_seconds = min(times[cases[0][0]])
    for name, _ in cases[1:]:
        print("  %s: %.1f× tshark's throughput" % (name, tshark_seconds / min(times[name])))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
