"""Chat on a topic: alice and bob join as client and server, share one connection, and trade lines.

`swarmplex chat TOPIC` is the interactive version of the same thing.
"""

import asyncio

import swarmplex
from _local import network


async def main() -> None:
    async with network() as opts:
        async with swarmplex.Swarm(**opts) as alice, swarmplex.Swarm(**opts) as bob:
            room = swarmplex.topic("chat example room")
            await alice.join(room)  # server and client: whoever finds whom, one connection results
            await bob.join(room)
            to_bob, to_alice = await asyncio.gather(alice.next_connection(), bob.next_connection())
            print("one connection:", to_bob.handshake_hash == to_alice.handshake_hash)

            to_bob.write(b"hi bob!\n")
            await to_bob.drain()
            print("bob reads:", (await to_alice.readline()).decode().strip())
            to_alice.write(b"hello alice!\n")
            await to_alice.drain()
            print("alice reads:", (await to_bob.readline()).decode().strip())


if __name__ == "__main__":
    asyncio.run(main())
