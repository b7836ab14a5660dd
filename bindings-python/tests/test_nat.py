"""Two Python peers behind two NATs meet by topic through one bootstrap node, with nothing else
configured: namespaces from scripts/nat-lab, the bootstrap node is the CLI's
`swarmplex bootstrap --network`, each peer a `nat_peer.py` process in its namespace. Bytes are
compared by SHA-256 both ways. Needs root, iproute2 and nftables (SWARMPLEX_SKIP_NAT_TESTS=1
skips)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_process import cli_path

HERE = Path(__file__).parent
LAB = HERE.parent.parent / "scripts" / "nat-lab"
PEER = HERE / "nat_peer.py"

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SWARMPLEX_SKIP_NAT_TESTS")) or os.geteuid() != 0 or not shutil.which("nft"),
    reason="needs root and nftables (or SWARMPLEX_SKIP_NAT_TESTS is set)",
)


def pattern(n: int, seed: int) -> bytes:
    return bytes(((i + seed) * 2654435761 >> 13) & 0xFF for i in range(n))


def run_pair(nat1: str, nat2: str) -> tuple[dict, dict]:
    prefix = f"sxy{os.getpid()}{nat1}{nat2}"
    subprocess.run([str(LAB), "up", prefix, nat1, nat2], check=True)
    procs = []
    try:
        boot = subprocess.Popen(
            ["ip", "netns", "exec", f"{prefix}-inet", str(cli_path()), "bootstrap", "--network", "natlab"],
            stdout=subprocess.PIPE, text=True,
        )
        procs.append(boot)
        via = {}
        assert boot.stdout is not None
        for line in boot.stdout:
            for ip in ("11.0.1.1", "11.0.2.1"):
                if line.startswith(f"/ip4/{ip}/udp/") and "/quic-v1/" in line:
                    via[ip] = line.strip()
            if len(via) == 2:
                break
        topic = f"python across {nat1} x {nat2}"
        sizes = {"server": (1 << 20, 1), "client": (512 << 10, 2)}

        def peer(ns: str, role: str, ip: str) -> subprocess.Popen:
            n, seed = sizes[role]
            cmd = ["ip", "netns", "exec", f"{prefix}-{ns}", sys.executable, str(PEER), role, via[ip], topic, str(n), str(seed)]
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(p)
            return p

        a, c = peer("a", "server", "11.0.1.1"), peer("c", "client", "11.0.2.1")
        results = []
        for p in (a, c):
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line, f"peer exited without a result (code {p.wait(timeout=10)})"
            results.append(json.loads(line))
        for p in (a, c):
            assert p.stdin is not None
            p.stdin.write("done\n")
            p.stdin.flush()
            assert p.wait(timeout=30) == 0
        ra, rc = results
        assert ra["handshake_hash"] == rc["handshake_hash"]
        assert rc["got_sha256"] == hashlib.sha256(pattern(*sizes["server"])).hexdigest(), rc
        assert ra["got_sha256"] == hashlib.sha256(pattern(*sizes["client"])).hexdigest(), ra
        # The NATed server advertised a relay circuit, never its private address.
        assert ra["reachability"] == "private" and ra["relays"] >= 1, ra
        assert ra["reachability_events"] and set(ra["reachability_events"]) == {"private"}, ra
        assert any("/p2p-circuit" in e for e in ra["external"]), ra
        assert not any("/192.168." in e for e in ra["external"]), ra
        return ra, rc
    finally:
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run([str(LAB), "down", prefix], check=False)


def test_python_peers_behind_port_preserving_nats_meet_by_topic_directly():
    a, c = run_pair("pp", "pp")
    assert a["transport"] == "quic" and a["remote_address"].startswith("/ip4/11.0.2.2/"), a
    assert c["transport"] == "quic" and c["remote_address"].startswith("/ip4/11.0.1.2/"), c


def test_python_peers_behind_symmetric_nats_meet_by_topic_through_the_relay():
    a, c = run_pair("sym", "sym")
    assert a["transport"] == "relay" and c["transport"] == "relay", (a, c)
    assert a["relay"] and a["relay"] == c["relay"], "both through the bootstrap node"
