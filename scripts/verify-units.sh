#!/usr/bin/env bash
# Checks the systemd units with `systemd-analyze verify`. The units name the installed path
# /usr/local/bin/heartbeat; the copies checked here point at a built binary instead.
#   scripts/verify-units.sh [BINARY]   (default: target/debug/heartbeat)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/debug/heartbeat}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in deploy/systemd/*.service; do
    sed "s#/usr/local/bin/heartbeat#$bin#" "$unit" > "$tmp/$(basename "$unit")"
done
out=$(systemd-analyze verify "$tmp"/*.service 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then echo "$out" >&2; exit 1; fi
echo "systemd units verified: $(ls deploy/systemd)"
