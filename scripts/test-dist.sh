#!/usr/bin/env bash
# make test-dist: checks the packages in dist/ (made by scripts/dist.sh) as a user would.
# Every check runs in a fresh temporary folder with a PATH that has no cargo or rustc, and a HOME
# of its own. Installs (npm, pip, Maven, debootstrap/apt) happen outside any namespace; everything
# that starts a swarm runs inside scripts/netns-run (loopback only) on a local testnet.
#   Node:   the tarballs' contents; `npm install` of the root + platform tarballs, then the
#           README's Node example; the root tarball alone fails at require() naming the package.
#   Python: auditwheel's tag, the sdist's contents; fresh venvs of CPython 3.9 and 3.13 with
#           `pip install --no-index --only-binary=:all: --find-links dist swarmplex`, then the
#           README's Python example; a package without its extension fails with a clear message.
#   JVM:    the jar holds linux-x86-64/libswarmplex_uniffi.so; a fresh Maven project depending on
#           io.swarmplex:swarmplex-kotlin (from dist/maven) compiles examples/kotlin/Echo.kt and
#           runs it with no jna.library.path: the echo comes back and JNA says it loaded the
#           library from the jar.
#   glibc:  every native library's newest GLIBC_ symbol is <= the floor; the Node and Python
#           examples run again in a Debian bullseye chroot (glibc 2.31, Python 3.9.2), cached in
#           ${SWARMPLEX_BULLSEYE_CHROOT:-~/.cache/swarmplex-bullseye-chroot}.
# Ends with "N passed, N failed"; exits non-zero when any check failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="${DIST:-$ROOT/dist}"
NETNS="$ROOT/scripts/netns-run"
GLIBC_FLOOR="${SWARMPLEX_GLIBC:-2.28}"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
CHROOT="${SWARMPLEX_BULLSEYE_CHROOT:-$HOME/.cache/swarmplex-bullseye-chroot}"
CHROOT="${CHROOT%/}"
MIRROR="${SWARMPLEX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TIMEOUT=180

[ -f "$DIST/swarmplex-$VERSION.tgz" ] || { echo "test-dist.sh: no $DIST/swarmplex-$VERSION.tgz: run make dist first" >&2; exit 1; }
WORK="$(mktemp -d /tmp/swarmplex-test-dist.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home"

passed=0 failed=0
log() { printf '== %s\n' "$*"; }
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
# check NAME CMD...: runs CMD, counts it, shows its output when it fails.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        ok "$name"
        printf '%s\n' "$out" | grep -v -e '^$' -e '^npm notice' | tail -4 | cut -c1-200 | sed 's/^/    /' || true
    else
        bad "$name"
        printf '%s\n' "$out" | tail -30 | sed 's/^/    /'
    fi
}

# A user's environment: no cargo or rustc on PATH, a HOME of its own, nothing else inherited.
USER_PATH=$(printf '%s' "$PATH" | tr ':' '\n' | while read -r d; do
    [ -n "$d" ] && [ ! -e "$d/cargo" ] && [ ! -e "$d/rustc" ] && printf '%s\n' "$d"; done | paste -sd:)
as_user() { env -i HOME="$WORK/home" PATH="$USER_PATH" LANG=C.UTF-8 npm_config_update_notifier=false "$@"; }
if as_user sh -c 'command -v cargo || command -v rustc'; then
    echo "test-dist.sh: cargo or rustc still on the user PATH" >&2
    exit 1
fi

# The code block after the README's `<!-- test-dist: LANG -->` marker.
readme_example() {
    awk -v m="<!-- test-dist: $1 -->" '$0 == m { f = 1; next }
        f == 1 && /^```/ { f = 2; next } f == 2 && /^```/ { exit } f == 2 { print }' "$ROOT/README.md"
}
# expect_output WANT CMD...: CMD's stdout has a line equal to WANT (CMD brings its own timeout).
expect_output() {
    local want=$1 out
    shift
    out=$("$@") || { echo "exit $?: $out"; return 1; }
    printf '%s\n' "$out"
    grep -qxF -- "$want" <<<"$out" || { echo "expected a line: $want"; return 1; }
}
# glibc_floor FILE: its newest GLIBC_x.y symbol version is at most $GLIBC_FLOOR.
glibc_floor() {
    local v
    # readelf reads every architecture's ELF (objdump -T only the host's): the same symbol versions.
    v=$(readelf -W --dyn-syms "$1" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1) || return 1
    echo "$1: $v"
    [ -n "$v" ] || return 1
    [ "$(printf '%s\n%s\n' "${v#GLIBC_}" "$GLIBC_FLOOR" | sort -V | tail -1)" = "$GLIBC_FLOOR" ]
}

# elf_is FILE PLATFORM: a shared object for that CPU, needing that libc's loader/library.
elf_is() {
    local h d machine libc
    h=$(readelf -h "$1") && d=$(readelf -d "$1") || return 1
    machine=$(sed -n 's/^ *Machine: *//p' <<<"$h")
    libc=$(grep -o 'Shared library: \[[^]]*\]' <<<"$d" | grep -E 'libc\.|musl' | paste -sd' ')
    echo "$machine; $libc"
    grep -q 'DYN (Shared object file)' <<<"$h" || return 1
    case "$2" in
        *-x64-*) [ "$machine" = "Advanced Micro Devices X86-64" ] ;;
        *-arm64-*) [ "$machine" = AArch64 ] ;;
        *) false ;;
    esac || return 1
    case "$2" in
        *-gnu) grep -q 'libc.so.6' <<<"$libc" ;;
        *-musl) grep -qF '[libc.so]' <<<"$libc" ;;
    esac
}

readme_example node >"$WORK/example.js"
readme_example python >"$WORK/example.py"
[ -s "$WORK/example.js" ] && [ -s "$WORK/example.py" ] || { echo "test-dist.sh: README examples not found" >&2; exit 1; }
NODE_WANT="b received: hello from a"
PY_WANT="b'hi'"

# ---------------------------------------------------------------- Node
log "npm"
ROOT_TGZ="$DIST/swarmplex-$VERSION.tgz"
PLAT_TGZ="$DIST/swarmplex-linux-x64-gnu-$VERSION.tgz"
node_root_contents() {
    local files pkg
    files=$(tar tzf "$ROOT_TGZ")
    echo "$files"
    ! grep -E '\.node$|/src/|Cargo\.toml|build\.rs|/scripts/' <<<"$files" || return 1
    grep -qx 'package/index.js' <<<"$files" && grep -qx 'package/lib/native.js' <<<"$files" || return 1
    pkg=$(tar xzf "$ROOT_TGZ" -O package/package.json)
    node -e '
        const p = JSON.parse(process.argv[1])
        if (p.scripts) throw new Error("scripts in the packed package.json: " + JSON.stringify(p.scripts))
        if (p.optionalDependencies?.["swarmplex-linux-x64-gnu"] !== p.version) throw new Error("optionalDependencies: " + JSON.stringify(p.optionalDependencies))
    ' "$pkg"
}
check "root tarball: JS and typings only, no install script, optional platform dependencies" node_root_contents
node_platform_contents() {
    local tgz=$1 plat=$2 files
    files=$(tar tzf "$tgz" | sort | paste -sd' ')
    echo "$files"
    [ "$files" = "package/README.md package/package.json package/swarmplex.$plat.node" ] || return 1
    mkdir -p "$WORK/plat-$plat" && tar xzf "$tgz" -C "$WORK/plat-$plat"
    node -e '
        const [p, root] = [require(process.argv[1]), require(process.argv[2])]
        if (p.version !== root.version || JSON.stringify(p.engines) !== JSON.stringify(root.engines)) throw new Error("version/engines differ from the root package")
        console.log(p.name, p.os, p.cpu, p.libc || "")
    ' "$WORK/plat-$plat/package/package.json" "$ROOT/bindings-node/package.json"
}
for tgz in "$DIST"/swarmplex-linux-*-"$VERSION".tgz; do
    plat=$(basename "$tgz" "-$VERSION.tgz"); plat=${plat#swarmplex-}
    check "$plat tarball: package.json, README, swarmplex.$plat.node" node_platform_contents "$tgz" "$plat"
    check "$plat addon: an ELF shared object for $plat" elf_is "$WORK/plat-$plat/package/swarmplex.$plat.node" "$plat"
    # Only glibc builds have a glibc floor.
    case "$plat" in *-gnu) check "$plat addon: glibc floor <= $GLIBC_FLOOR" glibc_floor "$WORK/plat-$plat/package/swarmplex.$plat.node" ;; esac
done

mkdir -p "$WORK/node-app" "$WORK/node-root-only"
cp "$WORK/example.js" "$WORK/node-app/"
# --offline: nothing comes from the registry (the other platforms' optional packages are skipped).
check "npm install --offline root + linux-x64-gnu tarballs (no cargo on PATH)" \
    as_user sh -c "cd '$WORK/node-app' && npm install --offline --no-audit --no-fund '$ROOT_TGZ' '$PLAT_TGZ'"
check "the addon comes from node_modules/swarmplex-linux-x64-gnu" as_user sh -c "cd '$WORK/node-app' &&
    node -e \"require('swarmplex'); require('swarmplex/p2plex'); require('swarmplex/peersockets');
      if (!Object.keys(require.cache).some((f) => f.endsWith('/node_modules/swarmplex-linux-x64-gnu/swarmplex.linux-x64-gnu.node'))) process.exit(1)\""
check "README Node example (netns-run): '$NODE_WANT'" expect_output "$NODE_WANT" \
    "$NETNS" env -i HOME="$WORK/home" PATH="$USER_PATH" sh -c "cd '$WORK/node-app' && exec timeout $TIMEOUT node example.js"
node_root_only_fails() {
    local out rc=0
    as_user sh -c "cd '$WORK/node-root-only' && npm install --offline --no-audit --no-fund '$ROOT_TGZ'" >/dev/null || return 1
    out=$(as_user sh -c "cd '$WORK/node-root-only' && node -e \"require('swarmplex')\"" 2>&1) || rc=$?
    echo "exit $rc: $(grep -m1 '^Error: swarmplex:' <<<"$out" | cut -c1-160)"
    # An exception (exit 1) that names the package to install, not a crash (signal: exit > 128).
    [ "$rc" = 1 ] && grep -q "the package swarmplex-linux-x64-gnu, is not installed" <<<"$out" &&
        grep -q "npm install swarmplex-linux-x64-gnu@$VERSION" <<<"$out"
}
check "root tarball alone: require() fails naming swarmplex-linux-x64-gnu" node_root_only_fails

# ---------------------------------------------------------------- Python
log "Python"
WHEEL="$DIST/swarmplex-$VERSION-cp39-abi3-manylinux_${GLIBC_FLOOR/./_}_x86_64.whl"
TOOLS="$ROOT/build/dist-tools/bin"
check "wheel $(basename "$WHEEL") exists" test -f "$WHEEL"
# Every wheel (make dist-all adds musllinux_1_2_x86_64 and manylinux_2_28_aarch64): auditwheel
# agrees with the platform tag in its name, and its extension is built for that platform.
for whl in "$DIST"/swarmplex-"$VERSION"-cp39-abi3-*.whl; do
    tag=$(basename "$whl" .whl); tag=${tag##*-cp39-abi3-}
    # (auditwheel judges musllinux wheels only on a musl host: see scripts/dist.sh.)
    case "$tag" in manylinux_*)
        check "auditwheel: $(basename "$whl") consistent with $tag" \
            sh -c "'$TOOLS/auditwheel' show '$whl' | tr -s ' \n' ' ' | tee /dev/stderr | grep -q 'consistent with the following platform tag: \"$tag\"'" ;;
    esac
    mkdir -p "$WORK/wheel-$tag"
    (cd "$WORK/wheel-$tag" && python3 -m zipfile -e "$whl" .) || true
    case "$tag" in
        musllinux_*_x86_64) plat=linux-x64-musl ;; manylinux_*_x86_64) plat=linux-x64-gnu ;; *_aarch64) plat=linux-arm64-gnu ;; *) plat=unknown ;;
    esac
    check "wheel $tag: extension is an ELF shared object for $plat" elf_is "$WORK/wheel-$tag/swarmplex/_native.abi3.so" "$plat"
    case "$tag" in manylinux_*)
        check "wheel $tag: glibc floor <= $GLIBC_FLOOR" glibc_floor "$WORK/wheel-$tag/swarmplex/_native.abi3.so" ;;
    esac
done
SDIST="$DIST/swarmplex-$VERSION.tar.gz"
check "sdist holds the workspace (Cargo.lock, core/, bindings-python/)" sh -c "tar tzf '$SDIST' | tee '$WORK/sdist.txt' >/dev/null &&
    grep -q '^swarmplex-$VERSION/Cargo.lock\$' '$WORK/sdist.txt' && grep -q '^swarmplex-$VERSION/core/src/lib.rs\$' '$WORK/sdist.txt' &&
    grep -q '^swarmplex-$VERSION/pyproject.toml\$' '$WORK/sdist.txt'"

# CPython X.Y: pyenv's (the project's machines have it), else pythonX.Y on PATH.
find_python() {
    local p
    for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python"$1"; do
        [ -x "$p" ] && { echo "$p"; return; }
    done
    command -v "python$1" || true
}
for pyv in 3.9 3.13; do
    py=$(find_python "$pyv")
    if [ -z "$py" ]; then bad "CPython $pyv: not found (pyenv install $pyv)"; continue; fi
    venv="$WORK/venv-$pyv"
    check "CPython $pyv: fresh venv, pip install --no-index --only-binary=:all: --find-links dist swarmplex" \
        as_user sh -c "'$py' -m venv '$venv' && '$venv/bin/pip' install -q --disable-pip-version-check --no-index --only-binary=:all: --find-links '$DIST' swarmplex"
    check "CPython $pyv: README Python example (netns-run): $PY_WANT" expect_output "$PY_WANT" \
        "$NETNS" env -i HOME="$WORK/home" PATH="$venv/bin:$USER_PATH" sh -c "cd '$WORK' && exec timeout $TIMEOUT python example.py"
done
py_missing_extension() {
    local venv="$WORK/venv-3.13" out rc=0
    rm -f "$venv"/lib/python3.13/site-packages/swarmplex/_native*.so
    out=$(as_user "$venv/bin/python" -c 'import swarmplex' 2>&1) || rc=$?
    echo "exit $rc: $(tail -1 <<<"$out")"
    [ "$rc" = 1 ] && grep -q "ImportError: swarmplex: the compiled extension swarmplex._native is missing" <<<"$out"
}
check "a swarmplex package without its extension: ImportError that says what to install" py_missing_extension

# ---------------------------------------------------------------- JVM
log "JVM"
JAR="$DIST/swarmplex-kotlin-$VERSION.jar"
check "jar holds linux-x86-64/libswarmplex_uniffi.so" sh -c "unzip -l '$JAR' | grep -q ' linux-x86-64/libswarmplex_uniffi.so\$'"
mkdir -p "$WORK/jar"
(cd "$WORK/jar" && unzip -q "$JAR" 'linux-*/*')
# The jar's libraries are those of this dist's glibc targets (as its npm platform packages), no more.
jar_matches_targets() {
    local want have
    want=$(for t in "$DIST"/swarmplex-linux-*-gnu-"$VERSION".tgz; do
        case "$t" in *-x64-gnu-*) echo linux-x86-64 ;; *-arm64-gnu-*) echo linux-aarch64 ;; esac; done | sort | paste -sd' ')
    have=$(unzip -Z1 "$JAR" | grep '^linux-.*\.so$' | cut -d/ -f1 | sort | paste -sd' ')
    echo "jar: $have; npm gnu packages: $want"
    [ -n "$have" ] && [ "$have" = "$want" ]
}
check "jar: one library per built glibc target" jar_matches_targets
for so in "$WORK"/jar/linux-*/*.so; do
    prefix=$(basename "$(dirname "$so")")
    case "$prefix" in linux-x86-64) plat=linux-x64-gnu ;; linux-aarch64) plat=linux-arm64-gnu ;; *) plat=unknown ;; esac
    check "jar library $prefix: an ELF shared object for $plat" elf_is "$so" "$plat"
    check "jar library $prefix: glibc floor <= $GLIBC_FLOOR" glibc_floor "$so"
done
APP="$WORK/jvm-app"
mkdir -p "$APP/src/main/kotlin"
cp "$ROOT/examples/kotlin/Echo.kt" "$APP/src/main/kotlin/"
KOTLIN_VERSION=$(sed -n 's:.*<kotlin.version>\(.*\)</kotlin.version>.*:\1:p' "$ROOT/bindings-swift-kotlin/kotlin/pom.xml")
cat >"$APP/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>echo</artifactId>
  <version>1</version>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <kotlin.compiler.jvmTarget>17</kotlin.compiler.jvmTarget>
  </properties>
  <repositories>
    <repository><id>swarmplex</id><url>file://$DIST/maven</url></repository>
  </repositories>
  <dependencies>
    <dependency>
      <groupId>io.swarmplex</groupId>
      <artifactId>swarmplex-kotlin</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <sourceDirectory>src/main/kotlin</sourceDirectory>
    <plugins>
      <plugin>
        <groupId>org.jetbrains.kotlin</groupId>
        <artifactId>kotlin-maven-plugin</artifactId>
        <version>$KOTLIN_VERSION</version>
        <executions><execution><id>compile</id><goals><goal>compile</goal></goals></execution></executions>
      </plugin>
    </plugins>
  </build>
</project>
EOF
# Maven caches a release version forever: drop an earlier run's copy so this one is dist/'s.
rm -rf "$HOME/.m2/repository/io/swarmplex/swarmplex-kotlin/$VERSION"
check "Maven project depending on io.swarmplex:swarmplex-kotlin:$VERSION compiles Echo.kt" \
    sh -c "cd '$APP' && mvn -q -B package dependency:build-classpath -Dmdep.outputFile=cp.txt"
jvm_echo() {
    local out
    out=$("$NETNS" env -i HOME="$WORK/home" PATH="$USER_PATH" \
        timeout --kill-after=10 "$TIMEOUT" java -Djna.debug_load=true -cp "$APP/target/classes:$(cat "$APP/cp.txt")" \
        io.swarmplex.examples.EchoKt hello from the jar 2>&1) || { echo "$out"; return 1; }
    grep -E '^echoed:|Found library resource' <<<"$out"
    grep -qxF 'echoed: hello from the jar' <<<"$out" &&
        grep -q "Found library resource at jar:file:.*swarmplex-kotlin-$VERSION.jar!/linux-x86-64/libswarmplex_uniffi.so" <<<"$out"
}
check "Echo.kt (netns-run, no jna.library.path): echo comes back; JNA loaded the library from the jar" jvm_echo

# ---------------------------------------------------------------- Debian bullseye (glibc 2.31)
log "Debian bullseye chroot ($CHROOT)"
READY="$CHROOT/.swarmplex-bullseye-ready"
CHROOT_PACKAGES="python3-venv libstdc++6"
# Runs "$@" in the chroot, in a private mount namespace with /proc, /dev, $WORK, $DIST and the
# host's node binary mounted. `--loopback`: also in a loopback-only network namespace.
in_bullseye() {
    local netns=()
    if [ "$1" = --loopback ]; then netns=("$NETNS"); shift; fi
    "${netns[@]}" unshare --mount --propagation private -- bash -euo pipefail -c '
        C=$1 W=$2 D=$3 N=$4; shift 4
        mount --bind /proc "$C/proc"
        mount --rbind /dev "$C/dev"
        mkdir -p "$C$W" "$C$D"; touch "$C/usr/local/bin/node"
        mount --bind "$W" "$C$W"; mount --bind "$D" "$C$D"; mount --bind "$N" "$C/usr/local/bin/node"
        exec chroot "$C" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
    ' in-bullseye "$CHROOT" "$WORK" "$DIST" "$(readlink -f "$(command -v node)")" "$@"
}
if ! grep -qxF "packages: $CHROOT_PACKAGES" "$READY" 2>/dev/null; then
    t0=$(date +%s)
    command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
    if [ ! -d "$CHROOT" ]; then
        rm -rf "$CHROOT.partial"
        mkdir -p "$(dirname "$CHROOT")"
        log "debootstrap --variant=minbase bullseye"
        debootstrap --variant=minbase bullseye "$CHROOT.partial" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
            { tail -20 "$WORK/debootstrap.log"; exit 1; }
        mv "$CHROOT.partial" "$CHROOT"
    fi
    rm -f "$CHROOT/etc/resolv.conf"
    cp -L /etc/resolv.conf "$CHROOT/etc/resolv.conf"
    in_bullseye sh -c "dpkg --configure -a && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $CHROOT_PACKAGES && apt-get clean" >"$WORK/apt.log" 2>&1 ||
        { tail -20 "$WORK/apt.log"; exit 1; }
    echo "packages: $CHROOT_PACKAGES" >"$READY"
    log "bullseye chroot ready in $(( $(date +%s) - t0 )) s"
fi
bullseye_glibc() { in_bullseye ldd --version | head -1 | tee /dev/stderr | grep -q ' 2\.31$'; }
check "bullseye: glibc 2.31" bullseye_glibc
check "bullseye: README Node example with the installed tarballs (netns-run): '$NODE_WANT'" expect_output "$NODE_WANT" \
    in_bullseye --loopback sh -c "cd '$WORK/node-app' && exec timeout $TIMEOUT node example.js"
# The venv lives in $WORK (fresh each run), not in the cached chroot.
check "bullseye: CPython 3.9 venv, pip install --no-index --only-binary=:all: --find-links dist swarmplex" \
    in_bullseye sh -c "python3 -m venv '$WORK/venv-bullseye' && '$WORK/venv-bullseye/bin/pip' install -q --disable-pip-version-check --no-index --only-binary=:all: --find-links '$DIST' swarmplex"
check "bullseye: README Python example (netns-run): $PY_WANT" expect_output "$PY_WANT" \
    in_bullseye --loopback sh -c "cd '$WORK' && exec timeout $TIMEOUT '$WORK/venv-bullseye/bin/python' example.py"

echo "test-dist: $passed passed, $failed failed"
[ "$failed" = 0 ]
