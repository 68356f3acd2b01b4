#!/usr/bin/env bash
# End-to-end test of the dashboard page in Debian's headless Chromium: installs the page's npm
# dependencies from the lockfile, builds the debug binary, seeds a database with
# `heartbeat gen-db`, then runs web/tests/e2e.mjs (which starts and stops `heartbeat dashboard`
# itself), web/tests/page-e2e.mjs (the operator's views: stale data, 20 services, the demo with
# a service flipped down on its mock), web/tests/mock-e2e.mjs (the `heartbeat mock`
# controller page, which starts and stops `heartbeat mock`) and web/tests/fleet-e2e.mjs (the
# fleet overview: a throw-away PostgreSQL cluster, three agents, one dashboard; skipped when
# PostgreSQL 15 is not installed, a failure under CI). Screenshots go to screenshots/ (not committed).
#
#   scripts/web-e2e.sh
#
# Needs: node + npm, the Debian packages chromium and sqlite3 (installed here when missing and
# running as root), and postgresql for the fleet part (scripts/test.sh installs it). Never downloads a browser: playwright-core only drives /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

log() { printf '\n== %s\n' "$*" >&2; }

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "web-e2e: missing Debian packages: ${need_apt[*]} (apt-get install -y ${need_apt[*]})" >&2
        exit 1
    fi
    log "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

log "npm ci (alpinejs, chart.js, playwright-core from web/package-lock.json)"
npm ci --ignore-scripts --no-audit --no-fund --prefix web >/dev/null

log "cargo build -p heartbeat"
cargo build -p heartbeat --locked
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/heartbeat"

work="$(mktemp -d "${TMPDIR:-/tmp}/hb-web-e2e.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "seeding $work/metrics.db (one day, 5 services, 10 s cycles)"
"$bin" gen-db --path "$work/metrics.db" --days 1 --services 5 --interval 10 >&2

log "node web/tests/e2e.mjs"
HB_BIN="$bin" HB_DB="$work/metrics.db" HB_SCREENSHOTS="$root/screenshots" node web/tests/e2e.mjs

log "node web/tests/page-e2e.mjs (stale data, 20 services over 30 days, the demo)"
HB_BIN="$bin" HB_SCREENSHOTS="$root/screenshots" node web/tests/page-e2e.mjs

log "node web/tests/mock-e2e.mjs"
HB_BIN="$bin" HB_SCREENSHOTS="$root/screenshots" node web/tests/mock-e2e.mjs

if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
    log "node web/tests/fleet-e2e.mjs (PostgreSQL, three agents, the fleet overview)"
    HB_BIN="$bin" HB_SCREENSHOTS="$root/screenshots" node web/tests/fleet-e2e.mjs
elif [ -n "${CI:-}" ] && [ "${CI}" != 0 ] && [ "${CI}" != false ]; then
    echo "web-e2e: /usr/lib/postgresql/15/bin/initdb missing under CI (apt-get install postgresql)" >&2
    exit 1
else
    log "SKIPPED web/tests/fleet-e2e.mjs: /usr/lib/postgresql/15/bin/initdb missing (apt-get install postgresql)"
fi
