#!/usr/bin/env python3
"""Receiver benchmark: `heartbeat receiver` (release build) on 127.0.0.1 with a fleet of agents.

1. Fleet: N agents (default 1,000), each heartbeating every INTERVAL seconds (default 10) at its
   own offset, a new connection per heartbeat (a real agent's keep-alive connection has closed
   by then: the server's idle timeout is 5 s). Client-side latency p50/p99, the receiver's CPU
   share and RSS, and every agent `up` in GET /api/agents at the end.
2. Read side with the fleet stored: the median of GET /api/agents and GET /metrics.
3. Fixed rates: `bench-heartbeats` (hb-bench) sends an open-loop load at each rate over 32
   keep-alive connections: latency p50/p99 from each send, and how far the sends fell behind
   their schedule (the receiver sustains a rate when that stays near zero).
4. Throughput: wrk on POST /api/heartbeat (keys rotated over the fleet, keep-alive) at several
   connection counts: the most heartbeats/s, with p50/p99 latency at saturation.
The load generators run on the same 2 cores as the receiver, so every figure is a floor for
what the receiver alone sustains.

    cargo build --release -p heartbeat -p hb-bench
    python3 bench/receiver.py [--bin target/release/heartbeat] [--agents 1000] [--interval 10]
                              [--rounds 6] [--rates 1000,2500,5000,7500] [--rate-seconds 15]
                              [--wrk-seconds 15] [--connections 8,32,64]

Needs python3 and wrk (apt-get install -y wrk). Everything stays on 127.0.0.1; the state file
goes to a temporary directory.
"""

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVICES = 10


def key(i):
    return f"bench-key-{i:05d}-0123456789abcdef"


def body():
    services = {f"svc{j:02d}": {"status": "healthy"} for j in range(SERVICES)}
    return json.dumps({"services": services}).encode()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":")
                out[name] = int(value.split()[0])
    return out


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


async def one_heartbeat(port, i, payload, latencies, codes):
    request = (
        f"POST /api/heartbeat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key(i)}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    status = await reader.readline()
    await reader.read()
    latencies.append((time.perf_counter() - started) * 1000)
    codes[status.split()[1].decode()] = codes.get(status.split()[1].decode(), 0) + 1
    writer.close()


async def agent(port, i, interval, rounds, payload, latencies, codes):
    await asyncio.sleep(random.uniform(0, interval))
    start = time.monotonic()
    for r in range(rounds):
        await one_heartbeat(port, i, payload, latencies, codes)
        next_at = start + (r + 1) * interval
        await asyncio.sleep(max(0, next_at - time.monotonic()))


async def fleet(port, agents, interval, rounds):
    latencies, codes = [], {}
    payload = body()
    await asyncio.gather(
        *(agent(port, i, interval, rounds, payload, latencies, codes) for i in range(agents))
    )
    return latencies, codes


def get(port, path):
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        data = r.read()
    return (time.perf_counter() - started) * 1000, data


WRK_LUA = """
local n = {agents}
local i = 0
local body = [[{body}]]
request = function()
  i = (i % n)
  local k = string.format("bench-key-%05d-0123456789abcdef", i)
  i = i + 1
  return wrk.format("POST", "/api/heartbeat",
    {{["Authorization"] = "Bearer " .. k, ["Content-Type"] = "application/json"}}, body)
end
"""


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(port, connections, seconds, script):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script,
         f"http://127.0.0.1:{port}/api/heartbeat"],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": to_ms(lat.get("50", "nan")),
        "p99_ms": to_ms(lat.get("99", "nan")),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "none",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/heartbeat")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--load", default="target/release/bench-heartbeats")
    ap.add_argument("--rates", default="1000,2500,5000,7500")
    ap.add_argument("--rate-seconds", type=int, default=15)
    ap.add_argument("--wrk-seconds", type=int, default=15)
    ap.add_argument("--connections", default="8,32,64")
    ap.add_argument("--port", type=int, default=18200)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install -y wrk)")

    work = tempfile.mkdtemp(prefix="hb-receiver-bench-")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "RUST_LOG": "warn",
        "RECEIVER_BIND": f"127.0.0.1:{args.port}",
        "RECEIVER_DB_PATH": os.path.join(work, "receiver.db"),
        "RECEIVER_GRACE_SECONDS": str(max(60, args.interval * 6)),
        "MALLOC_ARENA_MAX": "2",
    }
    for i in range(args.agents):
        env[f"RECEIVER_AGENT_a{i:05d}"] = key(i)
    proc = subprocess.Popen([args.bin, "receiver"], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                get(args.port, "/health")
                break
            except OSError:
                time.sleep(0.1)
        print(f"receiver pid {proc.pid}, {args.agents} agents, state in {work}")
        print(f"at start: {rss_kib(proc.pid)}")

        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        latencies, codes = asyncio.run(fleet(args.port, args.agents, args.interval, args.rounds))
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        rate = len(latencies) / (t1 - t0)
        _, data = get(args.port, "/api/agents")
        states = {}
        for a in json.loads(data)["agents"]:
            states[a["state"]] = states.get(a["state"], 0) + 1
        print(f"\n## fleet: {args.agents} agents every {args.interval:g} s, {args.rounds} rounds")
        print(f"heartbeats: {len(latencies)} in {t1 - t0:.1f} s ({rate:.1f}/s), answers {codes}")
        print(f"latency (new connection each): p50 {pct(latencies, 50):.2f} ms, "
              f"p99 {pct(latencies, 99):.2f} ms, max {max(latencies):.2f} ms")
        print(f"receiver CPU: {100 * (cpu1 - cpu0) / (t1 - t0):.2f} % of one core")
        print(f"RSS: {rss_kib(proc.pid)}")
        print(f"agents by state: {states}")

        reads = {}
        for path in ["/api/agents", "/metrics"]:
            times = [get(args.port, path)[0] for _ in range(20)]
            size = len(get(args.port, path)[1])
            reads[path] = (statistics.median(times), size)
        print("\n## read side with the fleet stored (median of 20)")
        for path, (ms, size) in reads.items():
            print(f"{path}: {ms:.2f} ms ({size:,} bytes)")

        print(f"\n## fixed rates: bench-heartbeats, 32 keep-alive connections, {args.rate_seconds} s each")
        print("| target/s | reached/s | p50 ms | p90 ms | p99 ms | max ms | sends late p99 ms | answers | receiver CPU |")
        print("|---|---|---|---|---|---|---|---|---|")
        for rate in [int(x) for x in args.rates.split(",") if x]:
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            out = subprocess.run(
                [args.load, "--addr", f"127.0.0.1:{args.port}", "--rate", str(rate),
                 "--seconds", str(args.rate_seconds), "--agents", str(args.agents)],
                capture_output=True, text=True, check=True,
            ).stdout
            cpu = 100 * (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            r = json.loads(out)
            print(f"| {rate:,} | {r['rate']:,.0f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                  f"{r['p99_ms']:.2f} | {r['max_ms']:.2f} | {r['late_p99_ms']:.2f} | "
                  f"{r['codes']} | {cpu:.0f} % |")

        script = os.path.join(work, "wrk.lua")
        with open(script, "w") as f:
            f.write(WRK_LUA.format(agents=args.agents, body=body().decode()))
        print(f"\n## throughput: wrk -t1, keep-alive, {args.wrk_seconds} s per run")
        print("| connections | heartbeats/s | p50 ms | p99 ms | non-2xx | socket errors | receiver CPU |")
        print("|---|---|---|---|---|---|---|")
        for c in [int(x) for x in args.connections.split(",")]:
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            r = run_wrk(args.port, c, args.wrk_seconds, script)
            cpu = 100 * (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            print(f"| {c} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                  f"{r['non2xx']} | {r['socket_errors']} | {cpu:.0f} % |")
        print(f"\nRSS after: {rss_kib(proc.pid)}")
        db = env["RECEIVER_DB_PATH"]
        sizes = {p: os.path.getsize(p) for p in [db, db + "-wal"] if os.path.exists(p)}
        print(f"state file: {sizes}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
