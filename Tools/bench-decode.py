#!/usr/bin/env python3
"""The decode benchmark (run by `Tools/bench decode`): wmq-decode against tshark on each
capture, in the same run. Throughput is capture bytes per second of wall time; peak memory
is each child's maximum resident set size. Every command runs RUNS times (default 3), the
commands taking turns, and the best time of each counts: a slow spell of the machine then
falls on all of them alike. The targets (docs/decoding.md): JSON Lines at least 10× tshark's
throughput and --stats at least 30× on every capture of traffic, peak memory at most 64 MB;
on a capture of many connections (named many-connections*, one packet each), under 10 s and
256 MB, tshark's time shown beside.

  Tools/bench-decode.py WMQ_DECODE [--runs N] CAPTURE...
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


TARGETS = {"wmq-decode --stats": 30.0, "wmq-decode --format jsonl to a file": 10.0}
PEAK_MB = 64.0


def bench(capture, wmq, runs):
    """Prints one capture's figures; returns the targets it missed."""
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
    missed = []
    if os.path.basename(capture).startswith("many-connections"):
        for name, _ in cases[1:]:
            seconds, peak = min(times[name]), peaks[name] / 1024
            met = seconds < 10 and peak < 256
            print("  %s: %.2f s and %.0f MB for the connections (target under 10 s and 256 MB; tshark %.2f s): %s"
                  % (name, seconds, peak, tshark_seconds, "met" if met else "NOT MET"))
            if not met:
                missed.append("%s on %s" % (name, os.path.basename(capture)))
        return missed
    for name, _ in cases[1:]:
        ratio = tshark_seconds / min(times[name])
        peak = peaks[name] / 1024
        met = ratio >= TARGETS[name] and peak <= PEAK_MB
        print("  %s: %.1f× tshark's throughput (target %.0f×, peak %.0f MB of %.0f): %s"
              % (name, ratio, TARGETS[name], peak, PEAK_MB, "met" if met else "NOT MET"))
        if not met:
            missed.append("%s on %s" % (name, os.path.basename(capture)))
    return missed


def main(arguments):
    if len(arguments) < 2 or arguments[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if arguments and arguments[0] in ("-h", "--help") else 2
    wmq = arguments.pop(0)
    runs = 3
    if "--runs" in arguments:
        at = arguments.index("--runs")
        runs = int(arguments[at + 1])
        del arguments[at:at + 2]
    missed = []
    for capture in arguments:
        missed += bench(capture, wmq, runs)
    print("targets: %s" % ("all met" if not missed else "not met: " + "; ".join(missed)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
