#!/usr/bin/env python3
"""NAT traversal figures for BENCHMARKS.md: `make bench-nat` (root, iproute2, nftables).

For each pair of NAT kinds, RUNS times: builds the scripts/nat-lab namespaces, starts
`swarmplex bootstrap --network` on the "internet", then two `swarmplex pipe TOPIC` processes (one
behind each NAT) at the same moment, and records the time from their start to the "connected"
line each prints, and the path it got (direct or relayed). Then, once, the throughput of a
relayed session through the bootstrap node (symmetric x symmetric, MIB MiB one way).
Prints a markdown table. Everything stays inside namespaces it creates.

Usage: scripts/nat-bench.py [RUNS] [MIB]     (defaults: 10 runs, 64 MiB)
"""

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "scripts" / "nat-lab"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "swarmplex-target"))
TRIPLE = os.environ.get("CARGO_BUILD_TARGET", "x86_64-unknown-linux-gnu")
CLI = Path(os.environ.get("SWARMPLEX_CLI", TARGET / TRIPLE / "release" / "swarmplex"))
PAIRS = [("pp", "pp"), ("sym", "pp"), ("pp", "sym"), ("sym", "sym")]


def bootstrap(prefix: str) -> "tuple[subprocess.Popen, dict]":
    boot = subprocess.Popen(
        ["ip", "netns", "exec", f"{prefix}-inet", str(CLI), "bootstrap", "--network", "natbench"],
        stdout=subprocess.PIPE, text=True,
    )
    via = {}
    assert boot.stdout is not None
    for line in boot.stdout:
        for ip in ("11.0.1.1", "11.0.2.1"):
            if line.startswith(f"/ip4/{ip}/udp/") and "/quic-v1/" in line:
                via[ip] = line.strip()
        if len(via) == 2:
            return boot, via
    raise RuntimeError("bootstrap printed no addresses")


def pipe(prefix: str, ns: str, via: str, topic: str, stdin) -> subprocess.Popen:
    cmd = ["ip", "netns", "exec", f"{prefix}-{ns}", str(CLI), "pipe", topic, "--no-mdns",
           "--network", "natbench", "--bootstrap", via, "--timeout", "120"]
    return subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False)


def connected_at(p: subprocess.Popen, start: float, out: dict, key: str) -> None:
    assert p.stderr is not None
    for raw in p.stderr:
        line = raw.decode(errors="replace")
        if "connected to" in line:
            out[key] = (time.monotonic() - start, "relay" if " over relay " in line else "direct")
            return


def one_run(n1: str, n2: str, i: int) -> "tuple[float, str]":
    prefix = f"sxb{os.getpid()}{i}"
    subprocess.run([str(LAB), "up", prefix, n1, n2], check=True)
    procs = []
    try:
        boot, via = bootstrap(prefix)
        procs.append(boot)
        topic = f"bench {n1} {n2} {i}"
        start = time.monotonic()
        a = pipe(prefix, "a", via["11.0.1.1"], topic, subprocess.DEVNULL)
        c = pipe(prefix, "c", via["11.0.2.1"], topic, subprocess.DEVNULL)
        procs += [a, c]
        got: dict = {}
        threads = [threading.Thread(target=connected_at, args=(p, start, got, k)) for p, k in ((a, "a"), (c, "c"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=130)
        if len(got) < 2:
            return float("nan"), "none"
        return max(got["a"][0], got["c"][0]), got["c"][1]
    finally:
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run([str(LAB), "down", prefix], check=False)


def relayed_throughput(mib: int) -> float:
    prefix = f"sxb{os.getpid()}t"
    subprocess.run([str(LAB), "up", prefix, "sym", "sym"], check=True)
    procs = []
    try:
        boot, via = bootstrap(prefix)
        procs.append(boot)
        a = pipe(prefix, "a", via["11.0.1.1"], "bench throughput", subprocess.PIPE)
        c = pipe(prefix, "c", via["11.0.2.1"], "bench throughput", subprocess.DEVNULL)
        procs += [a, c]
        got: dict = {}
        start = time.monotonic()
        waiter = threading.Thread(target=connected_at, args=(a, start, got, "a"))
        waiter.start()
        waiter.join(timeout=130)
        assert a.stdin is not None and c.stdout is not None
        block = os.urandom(1 << 20)
        t0 = time.monotonic()
        feeder = threading.Thread(target=lambda: ([a.stdin.write(block) for _ in range(mib)], a.stdin.close()))
        feeder.start()
        total = 0
        while True:
            chunk = c.stdout.read(1 << 16)
            if not chunk:
                break
            total += len(chunk)
        elapsed = time.monotonic() - t0
        feeder.join()
        assert total == mib << 20, f"got {total} bytes"
        return mib / elapsed
    finally:
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run([str(LAB), "down", prefix], check=False)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    print(f"| server NAT x client NAT | runs | join → connection, median (min–max) | ended direct |")
    print(f"|---|---|---|---|")
    for n1, n2 in PAIRS:
        results = [one_run(n1, n2, i) for i in range(runs)]
        times = [t for t, _ in results if t == t]
        direct = sum(1 for _, path in results if path == "direct")
        spread = f"{statistics.median(times):.1f} s ({min(times):.1f}–{max(times):.1f})" if times else "never"
        print(f"| {n1} x {n2} | {runs} | {spread} | {direct}/{runs} |", flush=True)
    print()
    print(f"relayed throughput (sym x sym, {mib} MiB one way through the bootstrap node): {relayed_throughput(mib):.1f} MiB/s")


if __name__ == "__main__":
    main()
