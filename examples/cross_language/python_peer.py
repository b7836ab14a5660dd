"""A Python peer for the cross-language example: greets every peer it meets on $TOPIC and prints
the lines it receives as "[key] line". Exits when its stdin closes."""

import asyncio
import os
import sys

import swarmplex


async def main() -> None:
    bootstrap = os.environ["SWARMPLEX_BOOTSTRAP"].split(",")
    async with swarmplex.Swarm(bootstrap=bootstrap, listen=swarmplex.LOOPBACK_LISTEN, mdns=False) as swarm:
        me = swarm.key_pair.public_key.hex()[:8]

        async def talk(conn: swarmplex.Connection) -> None:
            who = conn.remote_public_key.hex()[:8]
            conn.write(f"hello from python {me}\n".encode())
            await conn.drain()
            try:
                while line := await conn.readline():
                    print(f"[{who}] {line.decode().rstrip()}", flush=True)
            except swarmplex.SwarmplexError:
                pass  # a peer leaving is fine here

        swarm.on("connection", talk)
        await swarm.join(swarmplex.topic(os.environ["TOPIC"]))
        print(f"* python peer {me} joined", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


asyncio.run(main())
