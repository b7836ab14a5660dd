"""Two peers meet on a topic and say hello both ways."""

import asyncio

import swarmplex
from _local import network


async def main() -> None:
    async with network() as opts:
        async with swarmplex.Swarm(**opts) as server, swarmplex.Swarm(**opts) as client:
            topic = swarmplex.topic("hello-example")
            discovery = await server.join(topic, server=True, client=False)
            await discovery.flushed()  # announced: clients can find us now

            @server.on("connection")
            async def greet(conn: swarmplex.Connection) -> None:
                conn.write(b"hello from the server\n")
                await conn.drain()

            await client.join(topic, server=False, client=True)
            async for conn in client.iter_connections():
                print("client got:", (await conn.readline()).decode().strip())
                conn.write(b"hello back\n")
                await conn.drain()
                break
            (sconn,) = server.connections
            print("server got:", (await sconn.readline()).decode().strip())


asyncio.run(main())
