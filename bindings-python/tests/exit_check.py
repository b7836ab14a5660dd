"""Used by test_process.py: uses the package, then exits in one of three ways.

- destroy: everything destroyed before `asyncio.run` returns;
- leave-running: swarms, connections and the testnet left alive (the atexit hook cleans up);
- pending-io: as above, with reads pending and writes queued when the loop closes;
- sigint: prints "ready" with a read pending, and waits for the parent's SIGINT (Ctrl-C).
Prints "ok" (or "interrupted") at the end; the parent checks the exit code (0, never SIGABRT).
"""

import asyncio
import sys

import swarmplex


async def main(mode: str) -> None:
    t = swarmplex.Testnet(3)
    await t.start()
    opts = dict(bootstrap=t.bootstrap, listen=swarmplex.LOOPBACK_LISTEN, mdns=False)
    a = swarmplex.Swarm(firewall=lambda key: False, **opts)
    b = swarmplex.Swarm(**opts)
    topic = swarmplex.topic("exit-check")
    await (await a.join(topic, server=True, client=False)).flushed()
    await b.join(topic, server=False, client=True)
    cb = await asyncio.wait_for(b.next_connection(), 30)
    ca = await asyncio.wait_for(a.next_connection(), 30)
    cb.write(b"x" * 100_000)
    await cb.drain()
    await asyncio.wait_for(ca.readexactly(100_000), 30)
    if mode == "pending-io":
        for _ in range(8):
            ca.write(b"y" * (1 << 20))  # queued, never drained
        asyncio.ensure_future(cb.read(10))  # the loop closes with these pending
        asyncio.ensure_future(ca.read(10))
        asyncio.ensure_future(b.flush())
    if mode == "sigint":
        print("ready", flush=True)
        await ca.read(10)  # pending until Ctrl-C cancels it
        return
    if mode == "destroy":
        await a.destroy()
        await b.destroy()
        await t.destroy()
    print("ok")


try:
    asyncio.run(main(sys.argv[1]))
except KeyboardInterrupt:
    print("interrupted")
