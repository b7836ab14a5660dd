"""One-stream throughput: the Python binding vs the Rust core, in the same run.

    python bench/throughput.py [--mib N] [--runs R] [--cli PATH]

Runs inside a loopback-only network namespace (re-executes itself through scripts/netns-run).
Python: a local testnet, two swarms on 127.0.0.1, 1 MiB writes with `drain()` on the client's
socket and 1 MiB reads on the server's, timed from the first write to the end marker, exactly
what `swarmplex bench` measures in Rust. Rust: `swarmplex bench --json --connects 1
--round-trips 1 --mib N` of the CLI given (build profile should match the extension's).
Alternates Rust and Python runs and reports the medians and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


async def python_run(mib: int) -> float:
    import swarmplex

    async with swarmplex.Testnet(3) as t:
        opts = dict(bootstrap=t.bootstrap, listen=swarmplex.LOOPBACK_LISTEN, mdns=False)
        async with swarmplex.Swarm(**opts) as server, swarmplex.Swarm(**opts) as client:
            topic = swarmplex.topic("bench-stream")
            await (await server.join(topic, server=True, client=False)).flushed()
            await client.join(topic, server=False, client=True)
            cc, sc = await asyncio.gather(client.next_connection(), server.next_connection())
            block = bytes([7]) * (1 << 20)

            async def send() -> None:
                for _ in range(mib):
                    cc.write(block)
                    await cc.drain()
                cc.write_eof()
                await cc.flush()

            start = time.perf_counter()
            writer = asyncio.ensure_future(send())
            n = 0
            while True:
                chunk = await sc.read(1 << 20)
                if not chunk:
                    break
                n += len(chunk)
            await writer
            elapsed = time.perf_counter() - start
            assert n == mib << 20, n
            return mib / elapsed


def rust_run(cli: str, mib: int) -> float:
    out = subprocess.run(
        [cli, "bench", "--json", "--connects", "1", "--round-trips", "1", "--mib", str(mib)],
        check=True, stdout=subprocess.PIPE,
    ).stdout
    return float(json.loads(out.decode().strip().splitlines()[-1])["throughput_mib_s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib", type=int, default=512)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--profile", default="release", choices=["release", "debug"],
                   help="which CLI build to compare against (default release)")
    p.add_argument("--cli", help="path of the swarmplex CLI (default: $CARGO_TARGET_DIR/<triple>/<profile>/swarmplex)")
    a = p.parse_args()
    if os.environ.get("SWARMPLEX_IN_NETNS") != "1":
        os.execv(str(ROOT / "scripts/netns-run"), [str(ROOT / "scripts/netns-run"), sys.executable, *sys.argv])
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/swarmplex-target"))
    triple = os.environ.get("CARGO_BUILD_TARGET", "x86_64-unknown-linux-gnu")
    cli = a.cli or str(Path(target) / triple / a.profile / "swarmplex")

    rust, py = [], []
    for i in range(a.runs):
        rust.append(rust_run(cli, a.mib))
        py.append(asyncio.run(python_run(a.mib)))
        print(f"run {i + 1}: rust {rust[-1]:.1f} MiB/s, python {py[-1]:.1f} MiB/s", flush=True)
    r, q = statistics.median(rust), statistics.median(py)
    print(json.dumps({
        "mib": a.mib, "runs": a.runs, "cli": cli,
        "rust_mib_s": round(r, 1), "python_mib_s": round(q, 1), "ratio": round(q / r, 3),
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
