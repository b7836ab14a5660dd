#!/usr/bin/env bash
# Kotlin (JVM) binding: build the cdylib and uniffi-bindgen, generate the Kotlin, run the JUnit 5
# tests with Maven inside a loopback-only network namespace. Idempotent; run from anywhere.
#
# Downloads (crates, Maven Central) happen before entering the namespace; the tests then run
# offline (`mvn -o`) under scripts/netns-run and only ever talk to a local testnet on 127.0.0.1.
# Environment: KOTLIN_TEST_FILTER (Surefire's -Dtest, e.g. `PlexTest` or `PlexTest#*reset*`),
# SWARMPLEX_SKIP_NAT_TESTS (set: NatTest skips itself).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export CARGO_BUILD_TARGET=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/swarmplex-target}"
LIB_DIR="$CARGO_TARGET_DIR/$CARGO_BUILD_TARGET/debug"
GEN="$HERE/kotlin/src/generated/kotlin"

cd "$ROOT"
# Two separate cargo calls: building both packages in one call would unify uniffi's `cli`
# features into the cdylib's dependency graph (BUILD-NOTES trap 2).
echo "== cargo build -p swarmplex-uniffi"
cargo build -p swarmplex-uniffi
echo "== cargo build -p uniffi-bindgen"
cargo build -p uniffi-bindgen
# NatTest's bootstrap node (`swarmplex bootstrap`): the CLI, beside the library.
echo "== cargo build -p swarmplex-cli"
cargo build -p swarmplex-cli

echo "== uniffi-bindgen generate (Kotlin) -> ${GEN#"$ROOT"/}"
rm -rf "$GEN"
"$LIB_DIR/uniffi-bindgen" generate "$LIB_DIR/libswarmplex_uniffi.so" \
    --language kotlin --out-dir "$GEN" --no-format

cd "$HERE/kotlin"
echo "== mvn: fetch dependencies and compile (online, outside the namespace)"
mvn -q -B test -DskipTests "-Dswarmplex.lib.dir=$LIB_DIR"

echo "== mvn -o test (inside scripts/netns-run: loopback only)"
rm -rf target/surefire-reports
rc=0
filter=()
if [ -n "${KOTLIN_TEST_FILTER:-}" ]; then filter=("-Dtest=$KOTLIN_TEST_FILTER" -Dsurefire.failIfNoSpecifiedTests=false); fi
"$ROOT/scripts/netns-run" mvn -q -B -o test "-Dswarmplex.lib.dir=$LIB_DIR" "${filter[@]}" || rc=$?

echo "== Surefire summary"
if compgen -G "target/surefire-reports/*.txt" >/dev/null; then
    cat target/surefire-reports/*.txt
else
    echo "no Surefire report (the build failed before the tests ran)"
    [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
