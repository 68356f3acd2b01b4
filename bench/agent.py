#!/usr/bin/env python3
"""Agent benchmark: N local targets answering after a fixed delay, the release agent checking them.

Reports, per N: median/p95 cycle duration, CPU time per cycle, peak RSS, and measured-minus-true
latency (median, p95). Usage (from the repository root, after a release build):

    cargo build --release -p heartbeat -p hb-bench
    python3 bench/agent.py --counts 10,100,1000 --cycles 10

Nothing here asserts a bound: the figures go into docs/BENCHMARKS.md by hand.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def run_one(args, count, workdir):
    targets = subprocess.Popen(
        [args.targets_bin, "--count", str(count), "--delay-ms", str(args.delay_ms),
         "--threads", str(args.target_threads)],
        stdout=subprocess.PIPE, text=True)
    env_lines = []
    for line in targets.stdout:
        if line.strip() == "READY":
            break
        env_lines.append(line.strip())
    first_url = env_lines[0].split("=", 1)[1]
    env_file = os.path.join(workdir, f"bench-{count}.env")
    with open(env_file, "w") as f:
        f.write("\n".join(env_lines) + "\n")
    db = os.path.join(workdir, f"bench-{count}.db")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LOOP_INTERVAL_SECONDS": str(args.interval),
        "SERVICE_TIMEOUT_SECONDS": "2",
        "PING_URL": first_url,
        "SQLITE_DB_PATH": db,
        "DOCKER_HOST": "unix://" + os.path.join(workdir, "no-docker.sock"),
        "RUST_LOG": "warn",
    }
    for pair in args.env:
        key, _, value = pair.partition("=")
        env[key] = value
    agent = subprocess.Popen([args.agent_bin, "--env-file", env_file, "agent", "--json"],
                             stdout=subprocess.PIPE, env=env, text=True)
    durations, deltas, cpu_marks = [], [], []
    seen = 0
    try:
        for line in agent.stdout:
            cycle = json.loads(line)
            seen += 1
            if seen <= args.warmup:
                if seen == args.warmup:
                    cpu_marks.append(cpu_seconds(agent.pid))
                    # Forget the warm-up's hold times.
                    urllib.request.urlopen(first_url.rsplit("/", 1)[0] + "/__held", timeout=10).read()
                continue
            durations.append(cycle["cycle_duration_ms"])
            for s in cycle["services"]:
                if s["status"] == "healthy" and s["latency_ms"] is not None:
                    deltas.append(s["latency_ms"] - args.delay_ms)
            unhealthy = sum(1 for s in cycle["services"] if s["status"] != "healthy")
            if unhealthy:
                print(f"  warning: {unhealthy} unhealthy services in a cycle", file=sys.stderr)
            if seen >= args.warmup + args.cycles:
                break
        # CPU is sampled at the end of the last measured cycle: one interval per cycle.
        cpu_marks.append(cpu_seconds(agent.pid))
        rss = peak_rss_mib(agent.pid)
        agent.terminate()
        agent.wait(timeout=20)
        base = first_url.rsplit("/", 1)[0]
        with urllib.request.urlopen(base + "/__held", timeout=10) as resp:
            held_ms = [us / 1000 for us in json.load(resp)]
    finally:
        agent.terminate()
        agent.wait(timeout=20)
        targets.terminate()
        targets.wait(timeout=10)
    cpu_per_cycle_ms = (cpu_marks[-1] - cpu_marks[0]) * 1000 / max(1, len(durations))
    return {
        "n": count,
        "cycle_median_ms": statistics.median(durations),
        "cycle_p95_ms": pct(durations, 0.95),
        "cpu_per_cycle_ms": cpu_per_cycle_ms,
        "peak_rss_mib": rss,
        "latency_delta_median_ms": statistics.median(deltas) if deltas else float("nan"),
        "latency_delta_p95_ms": pct(deltas, 0.95),
        "held_median_ms": statistics.median(held_ms) if held_ms else float("nan"),
        "checks": len(deltas),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--counts", default="10,100,200,1000")
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--delay-ms", type=int, default=20)
    p.add_argument("--interval", default="1")
    p.add_argument("--target-threads", type=int, default=1)
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="extra environment for the agent (e.g. TOKIO_WORKER_THREADS=1)")
    p.add_argument("--agent-bin", default=os.path.join(ROOT, "target/release/heartbeat"))
    p.add_argument("--targets-bin", default=os.path.join(ROOT, "target/release/bench-targets"))
    args = p.parse_args()
    workdir = tempfile.mkdtemp(prefix="hb-bench-")
    try:
        print("| N | cycle median (ms) | cycle p95 (ms) | CPU per cycle (ms) | peak RSS (MiB) "
              "| measured − 20 ms, median (ms) | measured − 20 ms, p95 (ms) | target's real hold, median (ms) "
              "| measured − real hold, median (ms) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for count in [int(c) for c in args.counts.split(",")]:
            r = run_one(args, count, workdir)
            print(f"| {r['n']} | {r['cycle_median_ms']:.0f} | {r['cycle_p95_ms']:.0f} "
                  f"| {r['cpu_per_cycle_ms']:.2f} | {r['peak_rss_mib']:.1f} "
                  f"| {r['latency_delta_median_ms']:+.3f} | {r['latency_delta_p95_ms']:+.3f} "
                  f"| {r['held_median_ms']:.3f} "
                  f"| {r['latency_delta_median_ms'] + args.delay_ms - r['held_median_ms']:+.3f} |",
                  flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
