"""Cross-language example: a Node peer, a Python peer and the `swarmplex chat` CLI meet on one
topic of a local testnet and greet each other; each must hear both others.

    scripts/netns-run bindings-python/.venv/bin/python examples/cross_language/run.py

Needs the Node addon (bindings-node: npm install), the Python package in that venv, and the CLI
($SWARMPLEX_CLI, default: the debug build). Prints one line per greeting and a closing tally.
"""

import os
import pathlib
import queue
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/swarmplex-target"))
CLI = os.environ.get("SWARMPLEX_CLI", f"{TARGET}/x86_64-unknown-linux-gnu/debug/swarmplex")


def pump(name: str, proc: subprocess.Popen, lines: "queue.Queue[tuple[str, str]]") -> None:
    for raw in proc.stdout:
        lines.put((name, raw.rstrip("\n")))


def main() -> int:
    testnet = subprocess.Popen([CLI, "testnet", "3"], stdout=subprocess.PIPE, text=True)
    first = testnet.stdout.readline().strip()
    assert first.startswith("SWARMPLEX_BOOTSTRAP="), first
    env = dict(os.environ, SWARMPLEX_BOOTSTRAP=first.split("=", 1)[1], TOPIC=f"cross-language-{os.getpid()}")
    peers = {
        "node": ["node", str(HERE / "node_peer.js")],
        "python": [sys.executable, str(HERE / "python_peer.py")],
        "cli": [CLI, "chat", env["TOPIC"], "--no-mdns", "--loopback", "--greet", "hello from cli"],
    }
    procs = {n: subprocess.Popen(c, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for n, c in peers.items()}
    lines: "queue.Queue[tuple[str, str]]" = queue.Queue()
    for n, p in procs.items():
        threading.Thread(target=pump, args=(n, p, lines), daemon=True).start()
    heard = {n: set() for n in procs}  # which languages each peer heard a greeting from
    deadline = time.monotonic() + 60
    try:
        while any(len(h) < 2 for h in heard.values()) and time.monotonic() < deadline:
            try:
                name, line = lines.get(timeout=1)
            except queue.Empty:
                continue
            print(f"{name:>6} | {line}", flush=True)
            for lang in ("node", "python", "cli"):
                if f"] hello from {lang}" in line and lang != name:
                    heard[name].add(lang)
    finally:
        for p in procs.values():
            p.stdin.close()
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        testnet.terminate()
        testnet.wait(timeout=10)
    # A peer passes when it heard both others and exited cleanly once its stdin closed.
    ok = sum(len(h) == 2 and procs[n].returncode == 0 for n, h in heard.items())
    for n, h in heard.items():
        print(f"{n} heard: {', '.join(sorted(h)) or 'nobody'} (exit {procs[n].returncode})")
    print(f"cross-language: {ok} passed, {3 - ok} failed")
    return 0 if ok == 3 else 1


if __name__ == "__main__":
    sys.exit(main())
