#!/bin/sh
# Starts or stops a private Docker engine for the agent's integration tests.
#
#   scripts/docker-engine.sh up     start it (or reuse a running one), import the test image,
#                                   print DOCKER_HOST=unix://.../docker.sock
#   scripts/docker-engine.sh down   stop it
#
# Installs nothing: CI installs docker.io and busybox-static first. The daemon leaves the host's
# networking alone (no bridge, no iptables, no ip_forward) and keeps its state, socket and pidfile
# under HB_DOCKER_DIR (default /tmp/hbdock; keep it short: a unix socket path has 108 bytes).
set -eu

DIR=${HB_DOCKER_DIR:-/tmp/hbdock}
SOCK=$DIR/docker.sock
PIDFILE=$DIR/dockerd.pid
IMAGE=hb-test/busybox:latest
# The Debian CLI matches the Debian daemon; another docker on PATH may be a different build.
DOCKER=/usr/bin/docker
READY_TIMEOUT_SECS=30

ping_ok() {
    curl -fsS --max-time 2 --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1
}

running_pid() {
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

import_image() {
    if DOCKER_HOST=unix://$SOCK "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    busybox=$(command -v busybox || true)
    [ -n "$busybox" ] || { echo "docker-engine: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
    root=$DIR/rootfs
    rm -rf "$root"
    mkdir -p "$root/bin" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/etc"
    cp "$busybox" "$root/bin/busybox"
    for applet in sh sleep true false cat echo ls; do
        ln -sf busybox "$root/bin/$applet"
    done
    tar -C "$root" -cf "$DIR/rootfs.tar" .
    DOCKER_HOST=unix://$SOCK "$DOCKER" import -c 'CMD ["/bin/sh"]' "$DIR/rootfs.tar" "$IMAGE" >/dev/null
}

up() {
    for tool in dockerd curl "$DOCKER"; do
        command -v "$tool" >/dev/null 2>&1 || { echo "docker-engine: $tool not found (apt-get install docker.io curl)" >&2; exit 1; }
    done
    mkdir -p "$DIR"
    if running_pid >/dev/null && ping_ok; then
        import_image
        echo "DOCKER_HOST=unix://$SOCK"
        return 0
    fi
    if pid=$(running_pid); then
        echo "docker-engine: dockerd $pid is running but not answering on $SOCK" >&2
        exit 1
    fi
    rm -f "$SOCK" "$PIDFILE"
    # setsid: the daemon must outlive this script and not share its process group.
    setsid dockerd --host "unix://$SOCK" --data-root "$DIR/root" --exec-root "$DIR/exec" \
        --pidfile "$PIDFILE" --iptables=false --ip-forward=false --bridge=none \
        --storage-driver=vfs >"$DIR/dockerd.log" 2>&1 </dev/null &
    waited=0
    until ping_ok; do
        if [ "$waited" -ge $((READY_TIMEOUT_SECS * 4)) ]; then
            echo "docker-engine: dockerd not ready after ${READY_TIMEOUT_SECS}s; last log lines:" >&2
            tail -n 20 "$DIR/dockerd.log" >&2 || true
            exit 1
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
    import_image
    echo "DOCKER_HOST=unix://$SOCK"
}

down() {
    if ! pid=$(running_pid); then
        echo "docker-engine: not running"
        return 0
    fi
    kill -TERM "$pid"
    waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge 120 ]; then
            echo "docker-engine: dockerd $pid did not stop within 30s" >&2
            exit 1
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
    rm -f "$SOCK" "$PIDFILE"
    echo "docker-engine: stopped"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
