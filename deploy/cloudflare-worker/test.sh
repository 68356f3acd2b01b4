#!/usr/bin/env bash
# The Worker's test suite: installs wrangler and miniflare (workerd) from package-lock.json, then
# runs test/*.test.js with Node's test runner. The contract suite runs against both receivers,
# the Rust binary (`heartbeat receiver`) and this Worker in Miniflare, so the binary must be
# built first (cargo build -p heartbeat); test/agent.test.js also runs a real `heartbeat agent`.
# Everything runs offline on 127.0.0.1: no Cloudflare account.
#
#   deploy/cloudflare-worker/test.sh            (HEARTBEAT_BIN=path overrides target/debug/heartbeat)
#
# Needs node >= 20.3 with npm, and the sqlite3 command. Without them, or without the binary, the
# suites that need them are skipped, except under CI=true, where a missing prerequisite fails.
set -euo pipefail
cd "$(dirname "$0")"

fail_or_skip() {
    if [ "${CI:-}" = true ]; then
        echo "cloudflare-worker: $* (CI=true: failing instead of skipping)" >&2
        exit 1
    fi
    echo "cloudflare-worker: $*; skipping the Worker's tests" >&2
    exit 0
}

command -v node >/dev/null && command -v npm >/dev/null || fail_or_skip "node and npm are not installed"
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 3) ? 0 : 1)' \
    || fail_or_skip "node $(node --version) is older than 20.3 (wrangler's minimum)"

# The packages ship their platform binaries (workerd, esbuild) as optional dependencies: no
# install script needs to run.
npm ci --ignore-scripts --no-audit --no-fund >/dev/null
exec node --test --test-concurrency=1 test/*.test.js
