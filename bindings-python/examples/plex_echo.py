"""p2plex's API (swarmplex.plex): find a peer by its key, talk over a named stream, and see the
connection close by itself once its last stream ended."""

import asyncio

import swarmplex
from _local import network


async def main() -> None:
    async with network() as opts:
        async with swarmplex.Plex(**opts) as alice, swarmplex.Plex(**opts) as bob:
            await alice.swarm.flush()  # alice's self-announce is out: findable by key

            @alice.on("connection")
            async def serve(peer: swarmplex.Peer) -> None:
                stream = await peer.receive_stream("example")
                data = await stream.read()  # until bob ends his side
                print("alice got:", data.decode())
                stream.write(data.upper())
                stream.write_eof()

            peer = await bob.find_by_public_key(alice.public_key, timeout=30)
            stream = await peer.create_stream("example")
            stream.write(b"hello alice")
            stream.write_eof()
            print("bob got back:", (await stream.read()).decode())
            # Both sides read the other's end and sent their own: the connection closes.
            await asyncio.wait_for(peer.wait_disconnected(), 30)
            print("connection closed once its last stream ended")


asyncio.run(main())
