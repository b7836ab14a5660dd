#!/usr/bin/env bash
# Swift binding: build the cdylib and uniffi-bindgen on this Debian 12 host, generate the Swift,
# then build the SwiftPM package in ../swift and run its XCTest tests with Swift 6.0 from Debian
# trixie (`swiftlang`), which runs in a chroot because Debian 12 has no Swift compiler.
# Idempotent; run from anywhere; needs root (apt-get, debootstrap, chroot, mount namespaces).
#
# The chroot lives outside the repo, in ${SWARMPLEX_SWIFT_CHROOT:-~/.cache/swarmplex-swift-chroot}
# (≈ 3 GB, made on the first run; a run interrupted half-way is resumed or redone, because the
# marker file .swarmplex-swift-ready is written only once swiftlang is installed and runs).
# Every mount (/proc, /dev, the Swift package, the library dir) is made inside a private mount
# namespace (`unshare --mount`): nothing stays mounted once the script ends, however it ends, and
# a trap unmounts them in that namespace as well.
#
# Downloads (crates, debootstrap, apt) come first; `swift build` needs no network (the package has
# no dependencies) and runs before the namespace; `swift test` runs inside scripts/netns-run
# (loopback only): the tests only ever talk to a local testnet on 127.0.0.1 with mDNS off, or to
# namespaces they create (NatTests: scripts/nat-lab, with the CLI as its bootstrap node).
#
# Environment: SWARMPLEX_SWIFT_CHROOT (chroot dir), SWARMPLEX_DEBIAN_MIRROR (debootstrap/apt
# mirror, default http://deb.debian.org/debian), CARGO_TARGET_DIR, SWIFT_TEST_TIMEOUT (seconds,
# default 900), SWIFT_TEST_FILTER (passed to `swift test --filter`), SWIFT_TEST_SKIP (passed to
# `swift test --skip`), SWARMPLEX_SKIP_NAT_TESTS (set: NatTests are not run).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export CARGO_BUILD_TARGET=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/swarmplex-target}"
# Absolute (it is bind-mounted into the chroot); a relative one is taken from the repo root, as cargo does below.
case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$ROOT/$CARGO_TARGET_DIR" ;; esac
LIB_DIR="$CARGO_TARGET_DIR/$CARGO_BUILD_TARGET/debug"
CHROOT="${SWARMPLEX_SWIFT_CHROOT:-$HOME/.cache/swarmplex-swift-chroot}"
CHROOT="${CHROOT%/}"
MIRROR="${SWARMPLEX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=trixie
READY="$CHROOT/.swarmplex-swift-ready"
# What the chroot gets besides minbase (libc6-dev is only a Recommends of swiftlang, but swiftc
# needs its crt files and headers to link anything; iproute2, nftables and procps run
# scripts/nat-lab for NatTests). Changing this list re-runs the apt step.
CHROOT_PACKAGES="swiftlang libc6-dev iproute2 nftables procps"
PKG="$HERE/swift"
FFI_DIR="$PKG/Sources/swarmplex_uniffiFFI"   # generated header + module.modulemap (gitignored)
GEN_DIR="$PKG/Sources/Swarmplex/Generated"   # generated swarmplex_uniffi.swift (gitignored)

log() { printf '== %s\n' "$*"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }

if [ "$(id -u)" != 0 ]; then
    echo "test-swift.sh needs root (debootstrap, chroot, mount namespaces)" >&2
    exit 1
fi
case "$CHROOT" in
    "" | / | "$HOME" | "$ROOT" | "$ROOT"/*) echo "refusing SWARMPLEX_SWIFT_CHROOT=$CHROOT" >&2; exit 1 ;;
esac

# Mount points at or below $1 in this (the host's) mount namespace.
mounts_under() { awk -v p="$1" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo; }

# Runs "$@" in the chroot, in a private mount namespace holding /proc, /dev, the Swift package, the
# library dir and the repo's scripts/ (both read-only), each at its host path. `--loopback`: also
# in a loopback-only network namespace (scripts/netns-run). The environment is reset (no host PATH
# or CARGO_*) but for SWARMPLEX_CLI, the CLI in the library dir (NatTests' bootstrap node).
# shellcheck disable=SC2016  # the inner script is single-quoted on purpose
ENTER='
C=$1 PKG=$2 LIB=$3 SCRIPTS=$4; shift 4
cleanup() {
    for m in "$C$SCRIPTS" "$C$LIB" "$C$PKG" "$C/dev" "$C/proc" "$C"; do
        if mountpoint -q "$m"; then umount --recursive --lazy "$m" || true; fi
    done
}
trap cleanup EXIT
# Make the chroot root a mount point of its own: ip netns (NatTests) turns / into a slave mount.
mount --bind "$C" "$C"
mount --bind /proc "$C/proc"
mount --rbind /dev "$C/dev"
mkdir -p "$C$PKG" "$C$LIB"
mount --bind "$PKG" "$C$PKG"
mount --bind "$LIB" "$C$LIB"
mount -o remount,bind,ro "$C$LIB"
mkdir -p "$C$SCRIPTS"
mount --bind "$SCRIPTS" "$C$SCRIPTS"
mount -o remount,bind,ro "$C$SCRIPTS"
chroot "$C" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" SWARMPLEX_CLI="$LIB/swarmplex" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive "$@"
'
in_chroot() {
    local netns=()
    if [ "$1" = --loopback ]; then netns=("$ROOT/scripts/netns-run"); shift; fi
    "${netns[@]}" unshare --mount --propagation private -- \
        bash -euo pipefail -c "$ENTER" enter-chroot "$CHROOT" "$PKG" "$LIB_DIR" "$ROOT/scripts" "$@"
}

# ---------------------------------------------------------------- host side: cdylib + bindings
cd "$ROOT"
# Two separate cargo calls: building both packages in one call would unify uniffi's `cli`
# features into the cdylib's dependency graph (BUILD-NOTES trap 2).
log "cargo build -p swarmplex-uniffi"
cargo build -p swarmplex-uniffi
log "cargo build -p uniffi-bindgen"
cargo build -p uniffi-bindgen
log "cargo build -p swarmplex-cli (NatTests' bootstrap node)"
cargo build -p swarmplex-cli

log "uniffi-bindgen generate (Swift) -> ${PKG#"$ROOT"/}/Sources"
TMP_GEN="$(mktemp -d)"
trap 'rm -rf "$TMP_GEN"' EXIT
"$LIB_DIR/uniffi-bindgen" generate "$LIB_DIR/libswarmplex_uniffi.so" \
    --language swift --out-dir "$TMP_GEN" --no-format
mkdir -p "$FFI_DIR" "$GEN_DIR"
# Copy only what changed, so that an unchanged binding does not recompile the Swift module.
install_if_changed() { cmp -s "$1" "$2" || cp "$1" "$2"; }
install_if_changed "$TMP_GEN/swarmplex_uniffi.swift" "$GEN_DIR/swarmplex_uniffi.swift"
install_if_changed "$TMP_GEN/swarmplex_uniffiFFI.h" "$FFI_DIR/swarmplex_uniffiFFI.h"
# SwiftPM's system-library targets want the module map under the name module.modulemap.
install_if_changed "$TMP_GEN/swarmplex_uniffiFFI.modulemap" "$FFI_DIR/module.modulemap"

# ---------------------------------------------------------------- the trixie chroot with Swift
# install_host_tools COMMAND:PACKAGE...: apt-get installs the packages whose command is missing.
install_host_tools() {
    local missing=() tool
    for tool in "$@"; do
        command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "apt-get install ${missing[*]} (host)"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}
# scripts/netns-run needs `ip`; the mounts need `mount`/`unshare` (util-linux).
install_host_tools ip:iproute2 mount:mount unshare:util-linux mountpoint:util-linux

if ! grep -qxF "packages: $CHROOT_PACKAGES" "$READY" 2>/dev/null; then
    t0=$EPOCHREALTIME
    if [ -n "$(mounts_under "$CHROOT")$(mounts_under "$CHROOT.partial")" ]; then
        echo "refusing to touch $CHROOT: something is mounted below it:" >&2
        mounts_under "$CHROOT" >&2
        mounts_under "$CHROOT.partial" >&2
        exit 1
    fi
    if [ ! -d "$CHROOT" ]; then
        install_host_tools debootstrap:debootstrap
        # Bootstrap into .partial and rename when complete: an interrupted debootstrap is redone.
        rm -rf "$CHROOT.partial"
        mkdir -p "$(dirname "$CHROOT")"
        log "debootstrap --variant=minbase $SUITE $CHROOT ($MIRROR)"
        debootstrap --variant=minbase "$SUITE" "$CHROOT.partial" "$MIRROR"
        mv "$CHROOT.partial" "$CHROOT"
        log "debootstrap done in $(since "$t0")"
    fi
    t1=$EPOCHREALTIME
    # apt in the chroot resolves names with the host's resolver configuration.
    # (rm first: never write through a symlink that the chroot might have there)
    if [ -e /etc/resolv.conf ]; then
        rm -f "$CHROOT/etc/resolv.conf"
        cp -L /etc/resolv.conf "$CHROOT/etc/resolv.conf"
    fi
    rm -f "$READY"
    log "apt-get install $CHROOT_PACKAGES (in the chroot)"
    # `dpkg --configure -a` finishes an install that was interrupted in a previous run.
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    in_chroot sh -c "dpkg --configure -a && apt-get update -q &&
        apt-get install -y -q --no-install-recommends $CHROOT_PACKAGES && apt-get clean"
    version="$(in_chroot swift --version 2>&1)"
    echo "$version"
    printf 'packages: %s\n%s\n' "$CHROOT_PACKAGES" "$version" >"$READY"
    log "$CHROOT_PACKAGES installed in $(since "$t1"); chroot ready in $(since "$t0"), $(du -sh "$CHROOT" | cut -f1)"
fi

# ---------------------------------------------------------------- swift build, swift test
t2=$EPOCHREALTIME
log "swift build --build-tests (in the chroot, outside the network namespace)"
in_chroot swift build --package-path "$PKG" --build-tests \
    -Xlinker -L"$LIB_DIR" -Xlinker -rpath -Xlinker "$LIB_DIR"
log "swift build done in $(since "$t2")"

t3=$EPOCHREALTIME
log "swift test (in the chroot, inside scripts/netns-run: loopback only)"
filter=()
if [ -n "${SWIFT_TEST_FILTER:-}" ]; then filter=(--filter "$SWIFT_TEST_FILTER"); fi
if [ -n "${SWARMPLEX_SKIP_NAT_TESTS:-}" ]; then filter+=(--skip NatTests); fi
if [ -n "${SWIFT_TEST_SKIP:-}" ]; then filter+=(--skip "$SWIFT_TEST_SKIP"); fi
OUT="$TMP_GEN/swift-test.log"
rc=0
in_chroot --loopback timeout --kill-after=10 "${SWIFT_TEST_TIMEOUT:-900}" \
    swift test --package-path "$PKG" --skip-build --disable-swift-testing "${filter[@]}" 2>&1 | tee "$OUT" || rc=$?
log "swift test done in $(since "$t3")"

if [ -n "$(mounts_under "$CHROOT")" ]; then
    echo "BUG: mounts left below $CHROOT" >&2
    rc=1
fi

log "XCTest summary"
passed=$(grep -c "^Test Case .* passed (" "$OUT" || true)
failed=$(grep -c "^Test Case .* failed (" "$OUT" || true)
skipped=$(grep -c "^Test Case .* skipped (" "$OUT" || true)
started=$(grep -c "^Test Case .* started at" "$OUT" || true)
grep -E "^Test Suite 'All tests'|^[[:space:]]*Executed [0-9]+ tests?" "$OUT" | tail -2 || true
echo "passed: $passed, failed: $failed, skipped: $skipped"
# A run cut short (SWIFT_TEST_TIMEOUT, a crash) may lose its last lines, the unfinished test's
# "started" line among them: only XCTest's final suite line proves that every test ran.
if ! grep -qE "^Test Suite '(All tests|Selected tests)' (passed|failed) at" "$OUT"; then
    echo "the test run did not finish (timed out after ${SWIFT_TEST_TIMEOUT:-900} s, or the process died)" >&2
    rc=1
fi
if [ "$started" -ne $((passed + failed + skipped)) ]; then
    echo "$started tests started but only $((passed + failed + skipped)) finished: the test process died" >&2
    rc=1
fi
if [ "$rc" -eq 0 ] && { [ "$passed" -eq 0 ] || [ "$failed" -ne 0 ] || [ "$skipped" -ne 0 ]; }; then
    echo "no test may fail or be skipped, and at least one must run" >&2
    rc=1
fi
exit "$rc"
