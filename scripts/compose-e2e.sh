#!/usr/bin/env bash
# Deployment end to end with the real Docker engine (DOCKER_HOST must point at it, see
# scripts/docker-engine.sh): builds the runtime image from a release binary built on this
# machine, runs docker-compose.dev.yml with Debian's docker-compose, and checks that
#  - the agent container checks a mock service and a docker: container (the mock's own),
#  - the dashboard container serves /api/live from the read-only volume,
#  - the agent survives a restart of the dashboard, and the dashboard one of the agent.
# Prints the image size. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DOCKER_HOST:?set DOCKER_HOST (eval \"\$(scripts/docker-engine.sh up)\")}"
docker=/usr/bin/docker
project=hbci
work=.ci/work
mkdir -p "$work"

log() { printf '\n== compose-e2e: %s\n' "$*" >&2; }

log "release build"
cargo build --release --locked -p heartbeat
log "image"
scripts/image-rootfs.sh target/release/heartbeat "$work/rootfs"
DOCKER_BUILDKIT=1 $docker build -q --build-arg ROOTFS=prebuilt -t heartbeat:latest . >/dev/null
size=$($docker image inspect heartbeat:latest --format '{{.Size}}')
echo "image heartbeat:latest: $size bytes ($((size / 1024 / 1024)) MiB)" | tee "$work/image-size.txt"

socket=${DOCKER_HOST#unix://}
export DOCKER_SOCKET=$socket
export DOCKER_GID=$(stat -c %g "$socket")
cp .env.dev.example .env.dev.ci
# docker-compose reads env_file paths from the compose file: point it at the CI copy.
sed 's/env_file: .env.dev$/env_file: .env.dev.ci/' docker-compose.dev.yml > .compose.dev.ci.yml
compose() { docker-compose -p "$project" -f .compose.dev.ci.yml "$@"; }
cleanup() {
    compose logs --no-color > "$work/compose.log" 2>&1 || true
    compose down -v -t 2 >/dev/null 2>&1 || true
    rm -f .compose.dev.ci.yml .env.dev.ci
}
trap cleanup EXIT

log "docker-compose up"
compose up -d

get() { curl -fsS --max-time 5 "$1"; }
wait_until() { # description, seconds, command...
    local what=$1 secs=$2; shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $end ]; then echo "timed out: $what" >&2; compose ps >&2; compose logs --tail=30 >&2; return 1; fi
        sleep 1
    done
}
live_has() { # service status
    get "http://127.0.0.1:8098/api/live?range=live" | python3 -c '
import json, sys
live = json.load(sys.stdin)
want = dict(zip(sys.argv[1::2], sys.argv[2::2]))
got = {s["name"]: s["status"] for s in live["services"]}
sys.exit(0 if all(got.get(k) == v for k, v in want.items()) else 1)' "$@"
}
cycles() { get "http://127.0.0.1:8098/metrics" | awk '/^heartbeat_last_cycle_age_seconds/ {print $2}'; }

log "the agent checks a mock service and the mock's container; the dashboard serves it"
wait_until "mock service and docker: container healthy in /api/live" 90 \
    live_has mock_healthy healthy mock_container healthy mock_error500 error
get "http://127.0.0.1:8098/api/live?range=live" | python3 -c '
import json, sys
live = json.load(sys.stdin)
print("services:", {s["name"]: s["status"] for s in live["services"]}, "containers:", live["system"]["containers"])'


log "restart the dashboard: the agent keeps writing"
before=$(get "http://127.0.0.1:8098/api/live?range=live" | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_updated"])')
compose restart -t 2 dashboard
wait_until "the dashboard back" 60 get "http://127.0.0.1:8098/health"
newer() { [ "$(get "http://127.0.0.1:8098/api/live?range=live" | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_updated"])')" != "$before" ]; }
wait_until "a newer cycle after the dashboard restart" 30 newer

log "restart the agent: the dashboard keeps serving, then sees new cycles"
before=$(get "http://127.0.0.1:8098/api/live?range=live" | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_updated"])')
compose stop -t 10 agent
get "http://127.0.0.1:8098/api/live?range=1h" >/dev/null
echo "dashboard serves history with the agent stopped"
compose start agent
wait_until "a newer cycle after the agent restart" 60 newer

log "the read-only volume: the dashboard cannot write"
compose exec -T dashboard /usr/local/bin/heartbeat healthcheck --url http://127.0.0.1:8000/health
mounts=$($docker inspect heartbeat-dashboard-dev --format '{{range .Mounts}}{{.Destination}}:{{.RW}} {{end}}')
echo "dashboard mounts: $mounts"
case "$mounts" in *"/data:false"*) ;; *) echo "the dashboard's /data is not read-only" >&2; exit 1;; esac

log "the fleet's central host: docker-compose.fleet.yml is valid with its example settings"
# (Not started here: its postgres:15 image needs a registry. The roles it creates are the ones
# the fleet tests make with deploy/fleet/initdb/heartbeat-roles.psql.)
docker-compose --env-file .env.fleet.example -f docker-compose.fleet.yml config -q

log "ok ($(cat "$work/image-size.txt"))"
