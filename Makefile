# swarmplex build and test entry points. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
HOST_TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')
# One target triple for cargo, napi and maturin alike, so they share build artifacts
# (napi always passes --target; without this every binding rebuilds all of libp2p).
export CARGO_BUILD_TARGET ?= $(HOST_TRIPLE)
export CARGO_TARGET_DIR ?= $(HOME)/.cache/swarmplex-target
NETNS := scripts/netns-run
BIN := $(CARGO_TARGET_DIR)/$(CARGO_BUILD_TARGET)/debug

.PHONY: build demo test test-parity test-rust test-node test-hyperswarm test-python test-kotlin test-swift test-cross bench bench-nat bench-scale dist dist-all test-dist test-dist-all
build:
	cargo build -p swarmplex -p swarmplex-cli -p swarmplex-examples

# A local testnet, two peers that find each other by topic, a message and a 64 MiB transfer.
demo: build
	$(NETNS) $(BIN)/swarmplex demo

# Every test, inside a loopback-only network namespace (each language's script enters it after
# its installs, which need the package registries).
test: test-parity test-rust test-node test-hyperswarm test-python test-kotlin test-swift test-cross test-dist

# docs/PARITY.md names a test for every API in every language: each named test must exist.
test-parity:
	python3 scripts/parity-check.py

test-rust: build
	$(NETNS) cargo test -p swarmplex -p swarmplex-cli -p swarmplex-examples

# The npm package: npm install + napi build + node:test.
test-node:
	bash bindings-node/scripts/test.sh

# Hyperswarm 4.17's own test suite against the npm package (after test-node built the addon); the
# tests it may fail are listed, with reasons, in the script and in bindings-node/README.md.
test-hyperswarm:
	bash bindings-node/scripts/hyperswarm-suite.sh

# The Python package: venv + maturin develop + pytest.
test-python:
	bash bindings-python/scripts/test.sh

# The Kotlin binding: uniffi cdylib + generated Kotlin + Maven/JUnit on the JVM.
test-kotlin:
	bash bindings-swift-kotlin/scripts/test.sh

# The Swift binding: SwiftPM + XCTest with Swift 6.0 from a Debian trixie chroot (built on first
# run in ~/.cache/swarmplex-swift-chroot, ≈ 2.6 GB, ≈ 2–3 min).
test-swift:
	bash bindings-swift-kotlin/scripts/test-swift.sh

# A Node peer, a Python peer and the CLI on one topic; then Node and Python peersockets talking
# (needs the two packages built above).
test-cross: build
	$(NETNS) bindings-python/.venv/bin/python examples/cross_language/run.py
	$(NETNS) bindings-python/.venv/bin/python examples/cross_language/peersockets.py

# Installable packages, prebuilt so that users need no Rust (scripts/dist.sh): in dist/, the npm
# root package and platform package(s), the abi3 wheel(s) and the sdist, the jar and a Maven
# repository holding it (dist/maven). Linked with zig against glibc 2.28. `make dist-all` adds
# Linux x64 musl and Linux arm64 (built and checked here, not run: no musl Node or arm64 machine).
DIST_TARGETS ?= x86_64-unknown-linux-gnu
DIST_ALL_TARGETS := x86_64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-gnu
dist:
	bash scripts/dist.sh $(DIST_TARGETS)
dist-all: DIST_TARGETS = $(DIST_ALL_TARGETS)
dist-all: dist

# The packages as a user gets them: fresh folders, no cargo on PATH, npm install / pip install /
# a Maven project, the README's examples (in netns-run), and a Debian bullseye chroot (glibc 2.31).
test-dist: dist
	bash scripts/test-dist.sh
test-dist-all: DIST_TARGETS = $(DIST_ALL_TARGETS)
test-dist-all: test-dist

bench:
	cargo build --release -p swarmplex-cli
	$(NETNS) $(CARGO_TARGET_DIR)/$(CARGO_BUILD_TARGET)/release/swarmplex bench

# NAT traversal: join -> connection time and path per NAT pair, relayed throughput (root; namespaces
# from scripts/nat-lab; nothing leaves them). Arguments: RUNS (default 10), MIB (default 64).
bench-nat:
	cargo build --release -p swarmplex-cli
	python3 scripts/nat-bench.py $(RUNS) $(MIB)

# Busy topics: N swarms join one topic at once, swarmplex and Hyperswarm in the same run (Node,
# release addon; bindings-node/bench/scale.js). Arguments: SIZES (default 20,50,100).
bench-scale:
	cd bindings-node && npm run build:release && node bench/scale.js --sizes $(or $(SIZES),20,50,100)
