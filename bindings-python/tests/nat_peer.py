"""Used by test_nat.py: one peer behind a NAT, run in its network namespace.

Joins TOPIC (as server or client) on the private network "natlab" with BOOTSTRAP as its only
configuration, sends N pseudo-random bytes and its end, reads the remote's bytes to the end,
prints one JSON line (transport, remote address, SHA-256 of what it got, reachability), then
waits for a line on stdin before it destroys the swarm (so neither side closes while the
other's bytes are in flight).
"""

import asyncio
import hashlib
import json
import sys

import swarmplex


def pattern(n: int, seed: int) -> bytes:
    return bytes(((i + seed) * 2654435761 >> 13) & 0xFF for i in range(n))


async def main(role: str, bootstrap: str, topic: str, n: int, seed: int) -> None:
    async with swarmplex.Swarm(bootstrap=[bootstrap], network="natlab", mdns=False) as swarm:
        events: list = []
        private = asyncio.Event()

        def on_reachability(state: str, symmetric: bool) -> None:
            events.append(state)
            if state == "private":
                private.set()

        swarm.on("reachability", on_reachability)
        await swarm.join(swarmplex.topic(topic), server=role == "server", client=role == "client")
        conn = await asyncio.wait_for(swarm.next_connection(), 90)
        conn.write(pattern(n, seed))
        await conn.drain()
        conn.write_eof()
        got = await asyncio.wait_for(conn.read(), 90)
        # A server behind a NAT may still be "unknown" (holding a relay) when the session comes;
        # it learns it is "private" from AutoNAT soon after: wait for that event.
        if role == "server":
            await asyncio.wait_for(private.wait(), 60)
        r = await swarm.reachability()
        print(json.dumps({
            "transport": conn.transport,
            "remote_address": conn.remote_address,
            "relay": conn.path.relay.hex() if conn.path.relay else None,
            "handshake_hash": conn.handshake_hash.hex(),
            "got_sha256": hashlib.sha256(got).hexdigest(),
            "got_len": len(got),
            "reachability": r.state,
            "reachability_events": events,
            "relays": len(r.relays),
            "external": r.external,
        }), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
