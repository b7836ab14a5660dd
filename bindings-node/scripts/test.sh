#!/usr/bin/env bash
# Builds the Node binding from source and runs its tests inside a loopback-only network namespace.
#   bash bindings-node/scripts/test.sh            (from anywhere; needs Node 20+, npm, cargo)
# Phase 1 (outside the namespace, needs the npm registry): npm ci (or npm install --no-save when
# the lock file is refused), then the addon build. Phase 2 re-execs under scripts/netns-run and
# runs node's test runner. Idempotent; exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$here"

# One target triple and one target dir for cargo and napi alike (BUILD-NOTES trap 1).
export CARGO_BUILD_TARGET="${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/swarmplex-target}"

install_deps() {
  if [ "${SWARMPLEX_IN_NETNS:-}" = 1 ]; then
    # No registry in here: use what phase 1 (or an earlier run) installed.
    if [ ! -d node_modules/@napi-rs/cli ]; then
      echo "test.sh: node_modules missing and no network inside the namespace; run this script outside it first" >&2
      exit 1
    fi
    return
  fi
  echo "== npm install (bindings-node)"
  # Dev dependencies only (the package has no install script); the addon is built next.
  if ! npm ci --no-audit --no-fund; then
    echo "test.sh: npm ci refused the lock file; falling back to npm install --no-save" >&2
    npm install --no-save --no-audit --no-fund
  fi
}

# The CLI's `bootstrap` command runs the bootstrap node of the NAT tests (test/nat.test.js).
export SWARMPLEX_CLI="$CARGO_TARGET_DIR/$CARGO_BUILD_TARGET/debug/swarmplex"

if [ "${SWARMPLEX_TEST_PHASE:-}" != test ]; then
  install_deps
  echo "== build the addon (debug)"
  node scripts/build.js
  echo "== build the CLI (NAT tests)"
  cargo build -q -p swarmplex-cli
  if [ "${SWARMPLEX_IN_NETNS:-}" != 1 ]; then
    export SWARMPLEX_TEST_PHASE=test
    exec "$repo/scripts/netns-run" bash "$here/scripts/test.sh"
  fi
fi

echo "== node tests (loopback-only network namespace)"
# Tests use local testnets only; make sure nothing falls back to the public bootstrap.
export SWARMPLEX_BOOTSTRAP="${SWARMPLEX_BOOTSTRAP:-none}"
node --test --test-concurrency=1 --test-timeout=180000 test/*.test.js
