#!/usr/bin/env bash
# Builds the Python binding in bindings-python/.venv and runs its pytest suite.
#
#   bindings-python/scripts/test.sh [pytest args...]
#
# Setup (venv, pinned dev tools, `maturin develop`, the swarmplex CLI for the cross-language
# test) runs with the network; the tests then run inside a loopback-only network namespace
# (scripts/netns-run): the script re-executes itself there unless SWARMPLEX_IN_NETNS=1.
# Idempotent. Exits non-zero on any failure, including "no tests collected" (pytest's 5).
set -euo pipefail

PKG=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$PKG/.." && pwd)
VENV="$PKG/.venv"
PY="$VENV/bin/python"

# Build trap 1 and 3 (see BUILD-NOTES.md): one target triple and one interpreter for every
# cargo/maturin call, so builds share artifacts and pyo3's build script does not rerun.
export CARGO_BUILD_TARGET="${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/swarmplex-target}"
export PYO3_PYTHON="$PY"
export SWARMPLEX_CLI="$CARGO_TARGET_DIR/$CARGO_BUILD_TARGET/debug/swarmplex"

setup() {
    if [ ! -x "$PY" ]; then
        echo "==> creating $VENV"
        python3 -m venv "$VENV"
    fi
    echo "==> dev requirements"
    "$PY" -m pip install --disable-pip-version-check -q -r "$PKG/requirements-dev.txt"
    echo "==> maturin develop"
    (cd "$PKG" && VIRTUAL_ENV="$VENV" "$VENV/bin/maturin" develop --quiet)
    echo "==> swarmplex CLI (cross-language test)"
    (cd "$ROOT" && cargo build --quiet -p swarmplex-cli)
}

if [ "${SWARMPLEX_IN_NETNS:-}" != 1 ]; then
    setup
    exec "$ROOT/scripts/netns-run" "$0" --tests-only "$@"
fi

if [ "${1:-}" = "--tests-only" ]; then
    shift
else
    export CARGO_NET_OFFLINE=true  # started inside the namespace: no network for the setup
    setup
fi

echo "==> pytest (loopback-only network namespace)"
cd "$PKG"
set +e
"$PY" -m pytest -q -p no:cacheprovider -o console_output_style=classic "$@" tests
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
