#!/usr/bin/env bash
# make dist: every installable artifact, built so that users need no Rust, written to dist/.
#   scripts/dist.sh [TARGET...]     (default: x86_64-unknown-linux-gnu; `make dist-all` adds
#                                    x86_64-unknown-linux-musl and aarch64-unknown-linux-gnu)
# Per target: the npm platform package (swarmplex-<platform>-0.1.0.tgz), the abi3 wheel
# (cp39-abi3, manylinux_2_28 / musllinux_1_2), the JVM native library staged for the jar. Once:
# the npm root package (swarmplex-0.1.0.tgz), the sdist, the jar (swarmplex-kotlin-0.1.0.jar) and
# a Maven repository holding it and its pom (dist/maven/), and SHA256SUMS.
#
# Linking: cargo-zigbuild (zig from PyPI) links every library against glibc $SWARMPLEX_GLIBC
# (default 2.28) whatever this machine's glibc is; the three cdylibs share one release build.
# Tools: a venv in build/dist-tools with pinned maturin, cargo-zigbuild (brings ziglang),
# auditwheel, abi3audit and twine; `rustup target add` for the targets; Maven Central for the jar.
# Needs cargo, Node/npm, Python 3 with venv, Java 17 and Maven (what `make test` needs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="${DIST:-$ROOT/dist}"
TOOLS="$ROOT/build/dist-tools"
STAGE="$ROOT/build/dist-stage"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/swarmplex-target}"
export SWARMPLEX_GLIBC="${SWARMPLEX_GLIBC:-2.28}"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(x86_64-unknown-linux-gnu)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
HOST=$(rustc -vV | sed -n 's/^host: //p')
case " ${TARGETS[*]} " in *" $HOST "*) ;; *) echo "dist.sh: the targets must include the host, $HOST (the Kotlin is generated from its library)" >&2; exit 2 ;; esac

log() { printf '== %s\n' "$*"; }
since() { echo "$(( $(date +%s) - $1 )) s"; }
t_all=$(date +%s)

# ---------------------------------------------------------------- tools
PINS=(maturin==1.16.0 cargo-zigbuild==0.24.0 ziglang==0.17.1 auditwheel==6.8.2 abi3audit==0.0.26 twine==7.0.0)
if [ ! -f "$TOOLS/.pins" ] || [ "$(cat "$TOOLS/.pins")" != "${PINS[*]}" ]; then
    log "tools venv $TOOLS: ${PINS[*]}"
    rm -rf "$TOOLS"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install --disable-pip-version-check -q "${PINS[@]}"
    echo "${PINS[*]}" >"$TOOLS/.pins"
fi
# The venv's python first: cargo-zigbuild runs zig as `python3 -m ziglang`.
export PATH="$TOOLS/bin:$PATH"
for t in "${TARGETS[@]}"; do
    rustup target list --installed | grep -qxF "$t" || { log "rustup target add $t"; rustup target add "$t"; }
done
# A musl cdylib must link the C runtime dynamically (Rust's musl default is static).
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static"
# The Makefile's CARGO_BUILD_TARGET (the host) must not leak into the per-target builds.
unset CARGO_BUILD_TARGET

rm -rf "$DIST" "$STAGE"
mkdir -p "$DIST" "$STAGE"

# napi-rs's platform names, JNA's resource prefixes, the wheels' platform policies.
npm_platform() {
    case "$1" in
        x86_64-unknown-linux-gnu) echo linux-x64-gnu ;;
        x86_64-unknown-linux-musl) echo linux-x64-musl ;;
        aarch64-unknown-linux-gnu) echo linux-arm64-gnu ;;
        *) echo "dist.sh: no npm platform for $1" >&2; return 1 ;;
    esac
}
jna_prefix() {
    case "$1" in
        x86_64-unknown-linux-*) echo linux-x86-64 ;;
        aarch64-unknown-linux-*) echo linux-aarch64 ;;
    esac
}
wheel_policy() {
    case "$1" in
        *-linux-musl) echo musllinux_1_2 ;;
        *) echo "manylinux_${SWARMPLEX_GLIBC/./_}" ;;
    esac
}
zig_triple() {
    case "$1" in *-linux-gnu) echo "$1.$SWARMPLEX_GLIBC" ;; *) echo "$1" ;; esac
}

# ---------------------------------------------------------------- native builds, per target
node_addons=()
for t in "${TARGETS[@]}"; do
    out="$CARGO_TARGET_DIR/$t/release"
    t0=$(date +%s)
    # One cargo call per crate (BUILD-NOTES trap 2: building them together would unify features
    # differently from the wheel's build). `-C strip=symbols` applies to the final library only.
    log "$t: npm addon (cargo zigbuild -p swarmplex-node)"
    nice -n 10 cargo-zigbuild rustc -q --release --target "$(zig_triple "$t")" -p swarmplex-node --lib -- -C strip=symbols
    plat=$(npm_platform "$t")
    cp "$out/libswarmplex_node.so" "$STAGE/swarmplex.$plat.node"
    node_addons+=("$plat=$STAGE/swarmplex.$plat.node")

    log "$t: wheel (maturin, $(wheel_policy "$t"))"
    PATH="$ROOT/scripts/zig-cargo:$PATH" nice -n 10 maturin build --release --strip \
        --target "$t" --compatibility "$(wheel_policy "$t")" \
        -m "$ROOT/bindings-python/Cargo.toml" -i "$TOOLS/bin/python" -o "$DIST"

    # The jar holds glibc builds only: JNA's resource prefix (linux-x86-64/) has no libc in it.
    case "$t" in *-musl) log "$t: built in $(since "$t0")"; continue ;; esac
    log "$t: JVM library (cargo zigbuild -p swarmplex-uniffi)"
    # zig's linker strips the symbol table, where uniffi-bindgen looks for the bindings' metadata:
    # the host's library keeps it (strip=none) for the Kotlin generation below, and is stripped
    # after that; the others are stripped by zig.
    strip_flag=()
    [ "$t" != "$HOST" ] || strip_flag=(-- -C strip=none)
    nice -n 10 cargo-zigbuild rustc -q --release --target "$(zig_triple "$t")" -p swarmplex-uniffi --lib --crate-type cdylib "${strip_flag[@]}"
    mkdir -p "$STAGE/jvm/$(jna_prefix "$t")"
    cp "$out/libswarmplex_uniffi.so" "$STAGE/jvm/$(jna_prefix "$t")/"
    log "$t: built in $(since "$t0")"
done

# ---------------------------------------------------------------- npm
log "npm packages"
(cd "$ROOT/bindings-node" && node scripts/pack.js --out "$DIST" "${node_addons[@]}")

# ---------------------------------------------------------------- Python
log "sdist"
maturin sdist -m "$ROOT/bindings-python/Cargo.toml" -o "$DIST"
log "wheel checks (auditwheel, abi3audit, twine)"
for whl in "$DIST"/*.whl; do
    # auditwheel judges musllinux wheels only on a musl host (here its lddtree resolves the
    # extension's libc.so to glibc's linker script); maturin checked that tag when it built it.
    case "$whl" in *manylinux*) auditwheel show "$whl" ;; esac
    abi3audit --strict --summary "$whl"
done
twine check --strict "$DIST"/*.whl "$DIST"/*.tar.gz

# ---------------------------------------------------------------- JVM
log "jar (uniffi-bindgen generates the Kotlin from the library it ships with)"
KOTLIN="$ROOT/bindings-swift-kotlin/kotlin"
# The host's uniffi-bindgen (a debug build, shared with `make test-kotlin`) reads the metadata
# of the host target's library.
(cd "$ROOT" && cargo build -q --target "$HOST" -p uniffi-bindgen)
rm -rf "$KOTLIN/src/generated/kotlin"
host_lib="$STAGE/jvm/$(jna_prefix "$HOST")/libswarmplex_uniffi.so"
"$CARGO_TARGET_DIR/$HOST/debug/uniffi-bindgen" generate "$host_lib" \
    --language kotlin --out-dir "$KOTLIN/src/generated/kotlin" --no-format
strip --strip-all "$host_lib"
# clean: target/classes keeps resources from earlier runs (another target set's libraries).
(cd "$KOTLIN" && mvn -q -B clean package -Dmaven.test.skip=true "-Dswarmplex.native.dir=$STAGE/jvm")
cp "$KOTLIN/target/swarmplex-kotlin-$VERSION.jar" "$DIST/"
# A Maven repository (file layout) with the jar and its pom: what a consumer's <repository> names.
(cd "$KOTLIN" && mvn -q -B deploy:deploy-file -Dfile="$DIST/swarmplex-kotlin-$VERSION.jar" \
    -DpomFile=pom.xml -Durl="file://$DIST/maven" -DrepositoryId=dist)

(cd "$DIST" && sha256sum -- *.tgz *.whl *.tar.gz *.jar >SHA256SUMS)
log "dist/ (in $(since "$t_all")):"
(cd "$DIST" && ls -l -- *.tgz *.whl *.tar.gz *.jar)
