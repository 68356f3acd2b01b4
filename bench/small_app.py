#!/usr/bin/env python3
"""Checks that do not disturb what they measure: ~20 services on one small app server.

The target is built to queue like a small app server (gunicorn's sync workers, a Raspberry Pi
with a few processes): one port, a fixed pool of --workers threads, each serving one request at
a time and closing the connection; requests beyond the pool wait in the accept queue. Every
path holds --work-ms, except /s0, which holds --slow-ms. The true latency of a service is its
hold; what the agent records beyond it is network, runtime, and the queue its own burst made.

For each agent configuration it runs the release agent for --cycles cycles (after --warmup) and
reports recorded minus true latency, p50 and p95, for the slow service and for all services, and
the median cycle. Usage (from the repository root, after a release build):

    cargo build --release -p heartbeat
    python3 bench/small_app.py --runs 3

Nothing here asserts a bound: the figures go into docs/BENCHMARKS.md by hand.
"""
import argparse
import json
import os
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIGS = [
    ("every check at once (before: no per-target limit)", {"CHECKS_PER_TARGET": "0"}),
    ("four at a time (CHECK_CONCURRENCY=4, the older tool's way)",
     {"CHECKS_PER_TARGET": "0", "CHECK_CONCURRENCY": "4"}),
    ("CHECKS_PER_TARGET=6", {"CHECKS_PER_TARGET": "6"}),
    ("CHECKS_PER_TARGET=4 (after: the default)", {}),
    ("CHECKS_PER_TARGET=2", {"CHECKS_PER_TARGET": "2"}),
]


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class SmallApp:
    """One listening socket, a fixed pool of workers, one request per connection."""

    def __init__(self, workers, work_ms, slow_ms):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.work_s, self.slow_s = work_ms / 1000, slow_ms / 1000
        self.conns = queue.Queue()
        threading.Thread(target=self.accept, daemon=True).start()
        for _ in range(workers):
            threading.Thread(target=self.work, daemon=True).start()

    def accept(self):
        while True:
            conn, _ = self.sock.accept()
            self.conns.put(conn)

    def work(self):
        while True:
            conn = self.conns.get()
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                path = data.split(b" ", 2)[1] if data.count(b" ") >= 2 else b"/"
                time.sleep(self.slow_s if path == b"/s0" else self.work_s)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            finally:
                conn.close()


def run(args, app, env_extra, workdir):
    env_file = os.path.join(workdir, "small.env")
    with open(env_file, "w") as f:
        for i in range(args.services):
            f.write(f"SERVICE_URL_s{i}=http://127.0.0.1:{app.port}/s{i}\n")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LOOP_INTERVAL_SECONDS": str(args.interval),
        "SERVICE_TIMEOUT_SECONDS": "5",
        "PING_URL": f"http://127.0.0.1:{app.port}/ping",
        "SQLITE_DB_PATH": os.path.join(workdir, f"small-{time.monotonic_ns()}.db"),
        "DOCKER_HOST": "unix://" + os.path.join(workdir, "no-docker.sock"),
        "RUST_LOG": "warn",
        **env_extra,
    }
    agent = subprocess.Popen([args.agent_bin, "--env-file", env_file, "agent", "--json"],
                             stdout=subprocess.PIPE, env=env, text=True)
    slow, every, cycles, seen = [], [], [], 0
    try:
        for line in agent.stdout:
            seen += 1
            if seen <= args.warmup:
                continue
            cycle = json.loads(line)
            cycles.append(cycle["cycle_duration_ms"])
            for s in cycle["services"]:
                if s["status"] != "healthy" or s["latency_ms"] is None:
                    print(f"  warning: {s['name']} {s['status']}", file=sys.stderr)
                    continue
                hold = args.slow_ms if s["name"] == "s0" else args.work_ms
                delta = s["latency_ms"] - hold
                every.append(delta)
                if s["name"] == "s0":
                    slow.append(delta)
            if seen >= args.warmup + args.cycles:
                break
    finally:
        agent.terminate()
        agent.wait(timeout=20)
    return slow, every, cycles


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=20)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--work-ms", type=float, default=2.0)
    p.add_argument("--slow-ms", type=float, default=50.0)
    p.add_argument("--cycles", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--interval", default="1")
    p.add_argument("--agent-bin", default=os.path.join(ROOT, "target/release/heartbeat"))
    args = p.parse_args()
    workdir = tempfile.mkdtemp(prefix="hb-small-")
    app = SmallApp(args.workers, args.work_ms, args.slow_ms)
    print(f"{args.services} services on one server with {args.workers} workers; /s0 holds "
          f"{args.slow_ms:g} ms, the others {args.work_ms:g} ms; {args.cycles} cycles per run")
    print("| agent | run | slow service: recorded − true, p50 / p95 (ms) "
          "| all services: p50 / p95 (ms) | cycle median (ms) |")
    print("|---|---:|---:|---:|---:|")
    try:
        for label, env_extra in CONFIGS:
            for r in range(1, args.runs + 1):
                slow, every, cycles = run(args, app, env_extra, workdir)
                print(f"| {label} | {r} | {statistics.median(slow):+.1f} / {pct(slow, 0.95):+.1f} "
                      f"| {statistics.median(every):+.1f} / {pct(every, 0.95):+.1f} "
                      f"| {statistics.median(cycles):.0f} |", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
