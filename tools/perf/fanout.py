#!/usr/bin/python3
"""Fan-out against 1 -> 1, in one run: `mbx bench --mode fanout` (one publisher, N
subscribers, every copy counted) alternated with `mbx bench --mode throughput`, medians
of the rounds, and their ratio (goal of docs/performance.md: at least 0.5 with 4
subscribers). Prints figures only; asserts nothing.

Usage: tools/perf/fanout.py [BUILD_DIR] [--subscribers N] [--rounds R] [--count C]
BUILD_DIR defaults to build-rel (tools/perf/run.sh builds it).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default=os.path.join(top, "build-rel"))
ap.add_argument("--subscribers", type=int, default=4)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--count", type=int, default=200000)
args = ap.parse_args()

mbx = os.path.join(args.build, "tools", "mbx")
mailboxd = os.path.join(args.build, "broker", "mailboxd")
runtime = tempfile.mkdtemp(prefix="mbx-fanout-")
env = dict(os.environ, MBX_RUNTIME_DIR=runtime)
ns = f"fanout-{os.getpid()}"
broker = subprocess.Popen([mailboxd, "-N", ns], env=env, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):  # the broker's endpoint, before the first benchmark
        if subprocess.run([mbx, "list", "-N", ns], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.05)

    def bench(*extra):
        r = subprocess.run([mbx, "bench", "-N", ns, "--json", *extra], env=env,
                           capture_output=True, text=True, timeout=300, check=True)
        return json.loads(r.stdout)["msgs_per_s"]

    one, fan = [], []
    for _ in range(args.rounds):
        one.append(bench("--mode", "throughput", "-c", str(2 * args.count)))
        fan.append(bench("--mode", "fanout", "--subscribers", str(args.subscribers),
                         "-c", str(args.count)))
    m1, mf = statistics.median(one), statistics.median(fan)
    print(f"1 -> 1 throughput:            {m1 / 1e6:6.2f} M msgs/s  (runs: "
          + ", ".join(f"{x / 1e6:.2f}" for x in one) + ")")
    print(f"fanout to {args.subscribers} subscribers:       {mf / 1e6:6.2f} M msgs/s delivered  "
          "(runs: " + ", ".join(f"{x / 1e6:.2f}" for x in fan) + ")")
    print(f"ratio fanout / 1 -> 1:        {mf / m1:6.2f}  (goal: at least 0.5)")
finally:
    broker.send_signal(signal.SIGTERM)
    broker.wait(timeout=10)
    shutil.rmtree(runtime, ignore_errors=True)
