#!/usr/bin/env bash
# Dashboard benchmark: generates 30 days of 10-second cycles for 20 services with the real
# writer (heartbeat gen-db), serves them with the release binary, and measures the median time
# of each range, `live` throughput with 8 concurrent clients (wrk) and the server's RSS.
#
#   bench/dashboard.sh            # builds, generates (once), measures
#   DB=/path/x.db bench/dashboard.sh
#   DB=/tmp/old.db bench/dashboard.sh   # after bench/legacy_db.py /tmp/old.db: the older tool's format
#
# Needs: curl, python3, wrk (apt-get install -y wrk). Everything stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET_DIR/release/heartbeat}
WORK=${WORK:-/tmp/hb-dashboard-bench}
DB=${DB:-$WORK/bench.db}
DAYS=${DAYS:-30}
SERVICES=${SERVICES:-20}
INTERVAL=${INTERVAL:-10}
RUNS=${RUNS:-20}
PORT=${PORT:-18765}
mkdir -p "$WORK"

if [ -z "${SKIP_BUILD:-}" ]; then
  CARGO_TARGET_DIR=$TARGET_DIR cargo build --release -p heartbeat
fi
if [ ! -f "$DB" ]; then
  echo "generating $DAYS days x $SERVICES services every ${INTERVAL}s into $DB"
  /usr/bin/time -f "gen-db: %e s wall, %M KiB max RSS" \
    "$BIN" gen-db --path "$DB" --days "$DAYS" --services "$SERVICES" --interval "$INTERVAL"
fi
rows=$(python3 -c "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); print(c.execute('select count(*) from service_checks').fetchone()[0])" "$DB")
echo "database: $(du -h "$DB" | cut -f1) ($rows check rows)"

SQLITE_DB_PATH=$DB RUST_LOG=warn "$BIN" dashboard --bind "127.0.0.1:$PORT" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 0.1
done

echo
echo "| range | first ms | median ms | min ms | max ms |"
echo "|---|---|---|---|---|"
for range in ${RANGES:-live 1h 3h 6h 12h 24h 7d 30d 90d 1y}; do
  times=()
  # The first request also warms the page cache (and the reader's closed buckets on a database
  # read from raw rows only): reported apart.
  first=$(curl -fs -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/api/live?range=$range")
  for _ in $(seq 1 "$RUNS"); do
    times+=("$(curl -fs -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/api/live?range=$range")")
  done
  python3 - "$range" "$first" "${times[@]}" <<'PY'
import statistics, sys
r, first, xs = sys.argv[1], float(sys.argv[2]) * 1000, [float(x) * 1000 for x in sys.argv[3:]]
print(f"| {r} | {first:.2f} | {statistics.median(xs):.2f} | {min(xs):.2f} | {max(xs):.2f} |")
PY
done

echo
echo "live, 8 connections, 8 threads, 10 s:"
wrk -t8 -c8 -d10s "http://127.0.0.1:$PORT/api/live?range=live" | grep -E "Requests/sec|Latency|requests in"
echo "30d, 8 connections, 8 threads, 10 s:"
wrk -t8 -c8 -d10s "http://127.0.0.1:$PORT/api/live?range=30d" | grep -E "Requests/sec|Latency|requests in"
echo
echo "server RSS after the runs: $(grep VmRSS /proc/$PID/status | awk '{print $2, $3}') (peak $(grep VmHWM /proc/$PID/status | awk '{print $2, $3}'))"
