#!/usr/bin/env python3
"""Fleet benchmarks (issue 12) against a throw-away PostgreSQL 15 cluster on 127.0.0.1.

1. Ingest: `bench-fleet` simulates --hosts agents of --services services, one cycle every
   --interval seconds each, shipping through the agent's own sink, for --seconds. Reports the
   checks per second sustained, how late the hosts fell behind, and the CPU per 1,000 checks of
   the client and of PostgreSQL (all the cluster's processes, from /proc).
2. Catch-up: a real agent (release build) starts with one hour of backlog at --catchup-services
   services (360 cycles, as a 10 s interval writes in an hour; made with `heartbeat gen-db`) and
   ships it; reports the time until the fleet database has all of it.

    cargo build --release -p heartbeat -p hb-bench
    python3 bench/fleet.py

Needs Debian's postgresql (15) and, as root, the postgres user. Nothing is asserted.
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG = "/usr/lib/postgresql/15/bin"
TICK = os.sysconf("SC_CLK_TCK")


def as_owner(args):
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


class Cluster:
    def __init__(self, options="-c max_connections=200"):
        self.dir = tempfile.mkdtemp(prefix="hb-fleet-bench-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        as_owner([f"{PG}/initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256"])
        as_owner([f"{PG}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w",
                  "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} {options}",
                  "start"])
        self.psql("postgres", "CREATE ROLE hb LOGIN PASSWORD 'bench'")
        self.psql("postgres", "CREATE DATABASE fleet OWNER hb")
        self.url = f"postgres://hb:bench@127.0.0.1:{self.port}/fleet?sslmode=disable"

    def psql(self, db, sql):
        out = subprocess.run([f"{PG}/psql", "-h", self.dir, "-p", str(self.port), "-U", "postgres",
                              "-d", db, "-XAtc", sql], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def cpu_seconds(self):
        """User + system CPU of the postmaster and all its children, and of exited ones."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            master = f.readline().strip()
        total = 0.0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ppid = fields[1]
            if pid == master or ppid == master:
                # utime, stime, and (for the postmaster) its reaped children's cutime, cstime
                total += (int(fields[11]) + int(fields[12])) / TICK
                if pid == master:
                    total += (int(fields[13]) + int(fields[14])) / TICK
        return total

    def stop(self):
        as_owner([f"{PG}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


def ingest(args, pg):
    before = pg.cpu_seconds()
    out = subprocess.run([os.path.join(ROOT, "target/release/bench-fleet"), "--url", pg.url,
                          "--hosts", str(args.hosts), "--services", str(args.services),
                          "--interval", str(args.interval), "--seconds", str(args.seconds)],
                         check=True, capture_output=True, text=True)
    pg_cpu = pg.cpu_seconds() - before
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["postgres_cpu_s"] = round(pg_cpu, 2)
    r["postgres_cpu_ms_per_1000_checks"] = round(pg_cpu * 1e6 / r["checks"], 2)
    size = pg.psql("fleet", "SELECT pg_database_size('fleet')")
    r["database_mib"] = round(int(size) / 2**20, 1)
    return r


def catch_up(args, pg):
    work = tempfile.mkdtemp(prefix="hb-fleet-catchup-")
    db = os.path.join(work, "metrics.db")
    heartbeat = os.path.join(ROOT, "target/release/heartbeat")
    # 360 cycles of --catchup-services services: one hour at a 10 s interval.
    subprocess.run([heartbeat, "gen-db", "--path", db, "--days", "1", "--interval", "240",
                    "--services", str(args.catchup_services)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backlog = int(subprocess.run(["sqlite3", db, "SELECT count(*) FROM monitoring_cycles"],
                                 check=True, capture_output=True, text=True).stdout)
    env = {"PATH": os.environ["PATH"], "SQLITE_DB_PATH": db, "LOOP_INTERVAL_SECONDS": "10",
           "SERVICE_URL_probe": "http://127.0.0.1:9/", "PING_URL": "http://127.0.0.1:9/",
           "DOCKER_HOST": "unix://" + os.path.join(work, "none.sock"),
           "FLEET_DATABASE_URL": pg.url, "HOST_NAME": "catch-up", "RUST_LOG": "warn"}
    started = time.monotonic()
    agent = subprocess.Popen([heartbeat, "agent"], env=env, stderr=subprocess.DEVNULL)
    try:
        while True:
            n = pg.psql("fleet", "SELECT count(*) FROM monitoring_cycles WHERE host = 'catch-up'")
            if int(n or 0) >= backlog:
                break
            if time.monotonic() - started > 600:
                raise SystemExit("catch-up did not finish in 10 minutes")
            time.sleep(0.05)
        took = time.monotonic() - started
    finally:
        agent.terminate()
        agent.wait()
        shutil.rmtree(work, ignore_errors=True)
    return {"services": args.catchup_services, "backlog_cycles": backlog,
            "backlog_checks": backlog * args.catchup_services, "catch_up_s": round(took, 2),
            "times_real_time": round(3600 / took)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hosts", type=int, default=100)
    p.add_argument("--services", type=int, default=200)
    p.add_argument("--interval", type=float, default=10)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--catchup-services", type=int, default=200)
    args = p.parse_args()
    pg = Cluster()
    try:
        print(json.dumps({"ingest": ingest(args, pg)}))
        print(json.dumps({"catch_up": catch_up(args, pg)}))
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
