#!/usr/bin/env python3
"""Fleet dashboard benchmark (issue 13): one run against a throw-away PostgreSQL 15 cluster on
127.0.0.1 and, side by side, the single-host dashboard on SQLite.

1. A 30-day, 20-service, 10 s database is made with the real writer (`heartbeat gen-db`); the
   single-host dashboard serves it. Its history ends --ends-in seconds after the start (default
   40 minutes), so that when the measurements begin, after the load, the newest minutes still
   hold cycles (a newest cycle a little in the future changes no read).
2. A real agent migrates an empty fleet database. The SQLite database's rows are loaded into it
   as host-000 as retention keeps them (rollups: minute blocks for 2 days, six-minute, hour and
   day blocks for the whole 30 days; raw cycles and checks for the newest --raw-days days, see
   below), then copied server-side to host-001 ... host-099.
3. Both dashboards (release build) answer sequential requests (keep-alive): every range of
   `/api/live` for one host, `/api/hosts`; then `wrk` with 8 connections on `/api/live?range=live`
   of each; then their resident memory.

Raw rows: the default `RETENTION_DAYS` keeps 30 days of them, 5 million check rows a host, half
a billion for 100 hosts (over 60 GB); the fleet database here holds --raw-days (default 1) of
them per host. Every read of the dashboard finds its raw rows through (host, time) indexes, so
their number beyond what a range reads changes little; the rollups are there in full.

    cargo build --release -p heartbeat
    python3 bench/fleet_dashboard.py

Needs Debian's postgresql (15), wrk, and as root the postgres user. Nothing is asserted.
"""
import argparse
import csv
import http.client
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import PG, Cluster  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEARTBEAT = os.path.join(ROOT, "target/release/heartbeat")
RANGES = ["live", "1h", "3h", "6h", "12h", "24h", "7d", "30d", "90d", "1y"]


def copy_in(pg, table, columns, rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    n = 0
    for r in rows:
        w.writerow(r)
        n += 1
    subprocess.run([f"{PG}/psql", "-h", pg.dir, "-p", str(pg.port), "-U", "postgres", "-d",
                    "fleet", "-X", "-v", "ON_ERROR_STOP=1", "-c",
                    f"\\copy {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"],
                   input=buf.getvalue(), text=True, check=True, stdout=subprocess.DEVNULL)
    return n


def bytea(b):
    return "\\x" + (b or b"").hex()


def migrate(pg, work):
    """A real agent applies the fleet schema; its own rows are removed afterwards."""
    env = {"PATH": os.environ["PATH"], "SQLITE_DB_PATH": os.path.join(work, "seed.db"),
           "LOOP_INTERVAL_SECONDS": "1", "SERVICE_URL_probe": "http://127.0.0.1:9/",
           "PING_URL": "http://127.0.0.1:9/", "DOCKER_HOST": "unix://" + work + "/none.sock",
           "FLEET_DATABASE_URL": pg.url, "HOST_NAME": "seed", "RUST_LOG": "warn"}
    agent = subprocess.Popen([HEARTBEAT, "agent"], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if pg.psql("fleet", "SELECT count(*) FROM hosts WHERE name = 'seed'") == "1":
                    break
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.1)
    finally:
        agent.terminate()
        agent.wait()
    for t in ["service_checks", "rollup_services", "rollup_cycles", "alerts",
              "monitoring_cycles", "hosts"]:
        col = "name" if t == "hosts" else "host"
        pg.psql("fleet", f"DELETE FROM {t} WHERE {col} = 'seed'")


def load(pg, db, hosts, raw_days):
    import sqlite3
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    newest = src.execute("SELECT max(ts_ms) FROM monitoring_cycles").fetchone()[0]
    oldest = src.execute("SELECT min(ts_ms) FROM monitoring_cycles").fetchone()[0]
    raw_from = newest - raw_days * 86_400_000
    minute_from = newest // 1000 - 2 * 86_400
    h = "host-000"
    pg.psql("fleet", "INSERT INTO hosts (name, first_seen_ms, last_seen_ms, interval_seconds, "
                     f"version, shipped_ms, rollups_from_ms) VALUES ('{h}', {oldest}, {newest}, "
                     f"10, 'bench', {newest}, 0)")
    counts = {}
    counts["monitoring_cycles"] = copy_in(
        pg, "monitoring_cycles",
        ["id", "host", "seq", "timestamp_lima", "ts_ms", "cpu_percent", "ram_percent",
         "ram_used_mb", "disk_percent", "uptime_seconds", "container_count", "internet_status",
         "ping_ms", "worker_status", "cycle_duration_ms"],
        ((r[0], h, r[1], *r[2:]) for r in src.execute(
            "SELECT id, rowid, timestamp_lima, ts_ms, cpu_percent, ram_percent, ram_used_mb, "
            "disk_percent, uptime_seconds, container_count, internet_status, ping_ms, "
            "worker_status, cycle_duration_ms FROM monitoring_cycles WHERE ts_ms >= ?",
            (raw_from,))))
    counts["service_checks"] = copy_in(
        pg, "service_checks",
        ["host", "cycle_id", "service_name", "service_url", "status", "status_code",
         "latency_ms", "error_message"],
        ((h, *r) for r in src.execute(
            "SELECT s.cycle_id, s.service_name, s.service_url, s.status, s.status_code, "
            "s.latency_ms, s.error_message FROM service_checks s JOIN monitoring_cycles c "
            "ON c.id = s.cycle_id WHERE c.ts_ms >= ? ORDER BY s.id", (raw_from,))))
    keep = "(tier_s != 60 OR start_s >= ?)"
    counts["rollup_cycles"] = copy_in(
        pg, "rollup_cycles",
        ["host", "tier_s", "start_s", "n", "cpu_sum", "ram_sum", "disk_sum", "dur_n", "dur_sum",
         "dur_min", "dur_max", "ping_n", "ping_sum", "ping_min", "ping_max", "inet_up",
         "workers"],
        ((h, *r[:-1], bytea(r[-1])) for r in src.execute(
            "SELECT tier_s, start_s, n, cpu_sum, ram_sum, disk_sum, dur_n, dur_sum, dur_min, "
            f"dur_max, ping_n, ping_sum, ping_min, ping_max, inet_up, workers FROM rollup_cycles "
            f"WHERE {keep}", (minute_from,))))
    counts["rollup_services"] = copy_in(
        pg, "rollup_services",
        ["host", "tier_s", "start_s", "service_name", "n", "healthy", "error", "timeout", "down",
         "unknown", "lat_n", "lat_sum", "lat_min", "lat_max", "hist"],
        ((h, *r[:-1], bytea(r[-1])) for r in src.execute(
            "SELECT tier_s, start_s, service_name, n, healthy, error, timeout, down, unknown, "
            f"lat_n, lat_sum, lat_min, lat_max, hist FROM rollup_services WHERE {keep}",
            (minute_from,))))
    # The fleet's own totals per cycle block (the overview's sparkline), as the agents fold them.
    pg.psql("fleet", "UPDATE rollup_cycles c SET checks = s.n, healthy_checks = s.healthy FROM "
                     "(SELECT tier_s, start_s, sum(n) AS n, sum(healthy) AS healthy FROM "
                     f"rollup_services WHERE host = '{h}' GROUP BY 1, 2) s WHERE c.host = '{h}' "
                     "AND c.tier_s = s.tier_s AND c.start_s = s.start_s")
    # The other hosts: the same rows under their names (cycle ids made unique).
    g = f"generate_series(1, {hosts - 1}) g"
    name = "format('host-%s', lpad(g::text, 3, '0'))"
    pg.psql("fleet", f"INSERT INTO hosts (name, first_seen_ms, last_seen_ms, interval_seconds, "
                     f"version, shipped_ms, rollups_from_ms) SELECT {name}, first_seen_ms, "
                     f"last_seen_ms, interval_seconds, version, shipped_ms, rollups_from_ms "
                     f"FROM hosts, {g} WHERE name = '{h}'")
    pg.psql("fleet", f"INSERT INTO monitoring_cycles SELECT id || '.' || g, {name}, seq, "
                     "timestamp_lima, ts_ms, cpu_percent, ram_percent, ram_used_mb, disk_percent, "
                     "uptime_seconds, container_count, internet_status, ping_ms, worker_status, "
                     f"cycle_duration_ms FROM monitoring_cycles, {g} WHERE host = '{h}'")
    pg.psql("fleet", "INSERT INTO service_checks (host, cycle_id, service_name, service_url, "
                     f"status, status_code, latency_ms, error_message) SELECT {name}, "
                     "cycle_id || '.' || g, service_name, service_url, status, status_code, "
                     f"latency_ms, error_message FROM service_checks, {g} WHERE host = '{h}' "
                     "ORDER BY g, id")
    for t in ["rollup_cycles", "rollup_services"]:
        cols = pg.psql("fleet", "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) "
                                f"FROM information_schema.columns WHERE table_name = '{t}' "
                                "AND column_name != 'host'")
        pg.psql("fleet", f"INSERT INTO {t} (host, {cols}) SELECT {name}, {cols} FROM {t}, {g} "
                         f"WHERE host = '{h}'")
    pg.psql("fleet", "VACUUM ANALYZE")
    total = {t: int(pg.psql("fleet", f"SELECT count(*) FROM {t}")) for t in counts}
    return {"per_host": counts, "total": total,
            "database_mib": round(int(pg.psql("fleet", "SELECT pg_database_size('fleet')"))
                                  / 2**20)}


def dashboard(env_extra, log):
    """Starts a dashboard logging to the file `log`; its process and address."""
    env = {"PATH": os.environ["PATH"], "RUST_LOG": "info", "LOG_FORMAT": "json",
           "TZ": "UTC", **env_extra}
    with open(log, "w") as out:
        p = subprocess.Popen([HEARTBEAT, "dashboard", "--bind", "127.0.0.1:0"], env=env,
                             stderr=out)
    for _ in range(300):
        with open(log) as f:
            for line in f:
                m = re.search(r'"addr":"([^"]+)"', line)
                if m and "dashboard listening" in line:
                    return p, m.group(1)
        if p.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"dashboard did not start: {open(log).read()}")


def timed(addr, path, runs):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port))
    times = []
    for i in range(runs + 3):
        t = time.perf_counter()
        conn.request("GET", path)
        res = conn.getresponse()
        res.read()
        if res.status != 200:
            raise SystemExit(f"{path}: HTTP {res.status}")
        if i >= 3:  # the first ones warm caches and connections
            times.append((time.perf_counter() - t) * 1000)
    conn.close()
    times.sort()
    return {"median_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(len(times) * 0.95) - 1], 2)}


def wrk(addr, path):
    out = subprocess.run(["wrk", "-t2", "-c8", "-d10s", f"http://{addr}{path}"],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return round(rps)


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        s = f.read()
    get = lambda k: int(re.search(rf"{k}:\s+(\d+)", s).group(1)) // 1024  # noqa: E731
    return {"rss_mib": get("VmRSS"), "peak_rss_mib": get("VmHWM")}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hosts", type=int, default=100)
    p.add_argument("--services", type=int, default=20)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--raw-days", type=int, default=1)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--ends-in", type=int, default=2400,
                   help="seconds after the start that the generated history ends")
    p.add_argument("--db", help="an existing gen-db database to use")
    p.add_argument("--url", help="a fleet database loaded by an earlier run (with --db): "
                                 "measure only")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="hb-fleet-dash-bench-")
    db = args.db or os.path.join(work, "single.db")
    if not args.db:
        t = time.monotonic()
        # Ending in the future: loading takes minutes, and the `live` range must still find
        # the raw rows of its five minutes when it is measured.
        subprocess.run([HEARTBEAT, "gen-db", "--path", db, "--days", str(args.days),
                        "--services", str(args.services), "--interval", "10",
                        "--ends-in", str(args.ends_in)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(json.dumps({"gen_db_s": round(time.monotonic() - t, 1)}), flush=True)
    pg = None
    url = args.url
    if not url:
        pg = Cluster("-c max_connections=50 -c fsync=off -c synchronous_commit=off "
                     "-c full_page_writes=off -c max_wal_size=8GB -c shared_buffers=256MB")
        url = pg.url
    fleet = single = None
    try:
        if pg:
            migrate(pg, work)
            t = time.monotonic()
            loaded = load(pg, db, args.hosts, args.raw_days)
            loaded["load_s"] = round(time.monotonic() - t, 1)
            print(json.dumps({"loaded": loaded}), flush=True)
        fleet, fleet_addr = dashboard({"FLEET_DATABASE_URL": url}, os.path.join(work, "fleet.log"))
        single, single_addr = dashboard({"SQLITE_DB_PATH": db}, os.path.join(work, "single.log"))
        host = f"host-{args.hosts // 2:03d}"
        result = {"hosts": timed(fleet_addr, "/api/hosts", args.runs)}
        for r in RANGES:
            result[f"live_{r}"] = {
                "fleet": timed(fleet_addr, f"/api/live?range={r}&host={host}", args.runs),
                "single": timed(single_addr, f"/api/live?range={r}", args.runs)}
        print(json.dumps({"latency": result}), flush=True)
        rps = {"fleet": wrk(fleet_addr, f"/api/live?range=live&host={host}"),
               "single": wrk(single_addr, "/api/live?range=live")}
        rps["fleet_30d"] = wrk(fleet_addr, f"/api/live?range=30d&host={host}")
        rps["single_30d"] = wrk(single_addr, "/api/live?range=30d")
        rps["fleet_hosts"] = wrk(fleet_addr, "/api/hosts")
        print(json.dumps({"requests_per_s_8_clients": rps}), flush=True)
        print(json.dumps({"memory": {"fleet": rss(fleet.pid), "single": rss(single.pid)}}),
              flush=True)
    finally:
        for d in (fleet, single):
            if d:
                d.terminate()
                d.wait()
        if pg:
            pg.stop()
        if not args.db:
            os.remove(db)


if __name__ == "__main__":
    main()
