#!/usr/bin/env bash
# The project's one test command. On a fresh Debian 12 machine (as root) it installs what the
# tests need, starts a private Docker engine, runs the formatting and lint gates and every test,
# then stops the engine. Safe to re-run: installed packages and a running engine are reused.
#
#   scripts/test.sh            everything
#   scripts/test.sh -- ARGS    extra arguments for `cargo test` (e.g. a test name filter)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

log() { printf '\n== %s\n' "$*" >&2; }

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically' || need_apt+=(busybox-static)
command -v curl >/dev/null || need_apt+=(curl)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v file >/dev/null || need_apt+=(file)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
    log "installing the Python prometheus_client parser (used to check /metrics)"
    python3 -m pip install -q prometheus_client || echo "warning: prometheus_client not installed; the /metrics parser test will skip" >&2
fi

log "starting a private Docker engine"
eval "$(scripts/docker-engine.sh up)"
export HB_TEST_DOCKER_HOST="$DOCKER_HOST"
unset DOCKER_HOST
trap 'scripts/docker-engine.sh down >/dev/null 2>&1 || true' EXIT

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
args=()
if [ "${1:-}" = "--" ]; then shift; args=("$@"); fi
CI=true cargo test --workspace --locked "${args[@]}"
log "all tests passed"
