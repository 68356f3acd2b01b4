#!/usr/bin/env bash
# The project's one test command. On a fresh Debian 12 machine (as root) it installs what the
# tests need, starts a private Docker engine, and runs every check:
#   1. cargo fmt --check, cargo machete (unused dependencies) and cargo clippy -D warnings
#   2. cargo test (unit, integration and end-to-end tests of the binary; real servers on
#      127.0.0.1, real SQLite files, the real Docker engine, a throw-away PostgreSQL 15 cluster)
#   3. the Cloudflare Worker receiver's suite (the receiver contract against both the Rust
#      binary and the Worker in Miniflare, and a real agent against the Worker)
#   4. the dashboard page and the mock's controller page in headless Chromium
#   5. the runtime image and the dev compose stack on the real engine, and the systemd units
# Safe to re-run: installed packages and a running engine are reused.
#
#   scripts/test.sh                 everything
#   scripts/test.sh --quick         steps 1 and 2 only
#   scripts/test.sh -- ARGS         extra arguments for `cargo test` (e.g. a test name filter)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s (%ss)\n' "$*" "$SECONDS" >&2; }

quick=0
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --) shift; args=("$@"); break ;;
        *) echo "usage: scripts/test.sh [--quick] [-- cargo-test-args]" >&2; exit 2 ;;
    esac
done

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
command -v curl >/dev/null || need_apt+=(curl)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
# The fleet tests make a throw-away cluster with initdb/pg_ctl; the system cluster is not used.
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql)
if [ $quick = 0 ]; then
    [ -x /usr/bin/chromium ] || need_apt+=(chromium)
    command -v docker-compose >/dev/null || need_apt+=(docker-compose)
    command -v systemd-analyze >/dev/null || need_apt+=(systemd)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
    log "installing the Python prometheus_client parser (checks /metrics)"
    python3 -m pip install -q prometheus_client \
        || echo "warning: prometheus_client not installed; under CI=true the /metrics parser test fails" >&2
fi

log "npm ci (the page's pinned libraries, embedded by the build)"
npm ci --ignore-scripts --no-audit --no-fund --prefix web >/dev/null

log "starting a private Docker engine"
eval "$(scripts/docker-engine.sh up)"
export DOCKER_HOST
export HB_TEST_DOCKER_HOST="$DOCKER_HOST"
trap 'scripts/docker-engine.sh down >/dev/null 2>&1 || true' EXIT

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo machete (no unused dependencies)"
command -v cargo-machete >/dev/null || cargo install -q --locked cargo-machete --version 0.9.2
cargo machete
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
# DOCKER_HOST is for the scripts below: the tests use HB_TEST_DOCKER_HOST explicitly.
env -u DOCKER_HOST CI=true cargo test --workspace --locked "${args[@]}"
if [ $quick = 1 ]; then log "quick checks passed"; exit 0; fi

log "the Cloudflare Worker receiver (contract suite against both receivers, in Miniflare)"
# cargo test built target/debug/heartbeat, which the suite runs.
CI=true deploy/cloudflare-worker/test.sh
log "the pages in headless Chromium"
scripts/web-e2e.sh
log "systemd units"
scripts/verify-units.sh
log "the image and the dev compose stack"
scripts/compose-e2e.sh
log "all tests passed"
