#!/usr/bin/env python3
"""Writes a database in the older tool's format, as the older tool's Python agent would have:
the SPEC's two tables and indexes created by Python's sqlite3, WAL, ISO-8601 timestamps with a
-05:00 offset (America/Lima, its default), no `ts_ms`, no rollups, no alerts table.

    bench/legacy_db.py PATH [--days 30] [--services 20] [--interval 10]

The content is deterministic (a fixed seed): healthy most of the time, a few errors, timeouts and
downs, latencies of 5 to 200 ms. For benchmarks of the dashboard on a database it has never
upgraded."""
import argparse
import datetime as dt
import os
import random
import sqlite3
import sys
import uuid

SCHEMA = """
CREATE TABLE monitoring_cycles (
    id TEXT PRIMARY KEY,
    timestamp_lima TEXT NOT NULL,
    cpu_percent REAL NOT NULL,
    ram_percent REAL NOT NULL,
    ram_used_mb REAL NOT NULL,
    disk_percent REAL NOT NULL,
    uptime_seconds REAL,
    container_count INTEGER NOT NULL,
    internet_status BOOLEAN NOT NULL,
    ping_ms REAL,
    worker_status INTEGER,
    cycle_duration_ms INTEGER
);
CREATE TABLE service_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cycle_id TEXT NOT NULL REFERENCES monitoring_cycles(id),
    service_name TEXT NOT NULL,
    service_url TEXT,
    status TEXT NOT NULL,
    status_code INTEGER,
    latency_ms REAL,
    error_message TEXT
);
CREATE INDEX idx_cycles_timestamp ON monitoring_cycles(timestamp_lima);
CREATE INDEX idx_cycles_timestamp_id ON monitoring_cycles(timestamp_lima, id);
CREATE INDEX idx_checks_service ON service_checks(service_name);
CREATE INDEX idx_checks_cycle ON service_checks(cycle_id);
CREATE INDEX idx_checks_cycle_service_latency ON service_checks(cycle_id, service_name, latency_ms);
"""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("path")
    p.add_argument("--days", type=float, default=30)
    p.add_argument("--services", type=int, default=20)
    p.add_argument("--interval", type=int, default=10)
    a = p.parse_args()
    if os.path.exists(a.path):
        sys.exit(f"{a.path} exists")
    rng = random.Random(1)
    lima = dt.timezone(dt.timedelta(hours=-5))
    now = dt.datetime.now(tz=lima)
    end = int(now.timestamp()) // a.interval * a.interval
    count = int(a.days * 86400) // a.interval
    names = [f"svc-{i:02}" for i in range(a.services)]
    con = sqlite3.connect(a.path)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(SCHEMA)
    cycles, checks = [], []
    for n in range(count):
        t = end - (count - 1 - n) * a.interval
        ts = dt.datetime.fromtimestamp(t + rng.random() * 0.2, tz=lima).isoformat()
        cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        worker = rng.choices([200, 220, 221, 500, None], [95, 2, 1, 1, 1])[0]
        cycles.append((cid, ts, rng.uniform(2, 60), rng.uniform(30, 70), 2048.0,
                       rng.uniform(10, 20), 3600.0 + t % 86400, 7, worker is not None,
                       rng.uniform(5, 30), worker, rng.randint(20, 400)))
        for i, name in enumerate(names):
            status = rng.choices(["healthy", "error", "timeout", "down"], [96, 2, 1, 1])[0]
            code = {"healthy": 200, "error": 500}.get(status)
            latency = rng.uniform(5, 200) if status in ("healthy", "error") else None
            error = None if status == "healthy" else f"HTTP {code}" if code else status.title()
            checks.append((cid, name, f"http://10.0.0.{i + 1}:8080/health", status, code,
                           latency, error))
        if len(cycles) >= 5000:
            flush(con, cycles, checks)
    flush(con, cycles, checks)
    con.close()
    print(f"{a.path}: {count} cycles, {count * a.services} checks")


def flush(con, cycles, checks):
    with con:
        con.executemany("INSERT INTO monitoring_cycles VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", cycles)
        con.executemany("INSERT INTO service_checks (cycle_id, service_name, service_url, status,"
                        " status_code, latency_ms, error_message) VALUES (?,?,?,?,?,?,?)", checks)
    cycles.clear()
    checks.clear()


if __name__ == "__main__":
    main()
