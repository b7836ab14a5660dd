"""Find a peer by its public key (no topic) and use it as an echo server."""

import asyncio

import swarmplex
from _local import network


async def main() -> None:
    async with network() as opts:
        async with swarmplex.Swarm(**opts) as echo, swarmplex.Swarm(**opts) as user:
            await echo.listen()  # announce under our own key
            await echo.flush()

            @echo.on("connection")
            async def serve(conn: swarmplex.Connection) -> None:
                async for chunk in conn:  # until the remote ends its side
                    conn.write(chunk)
                    await conn.drain()
                conn.write_eof()

            conn = await asyncio.wait_for(user.find_peer(echo.public_key), 30)
            conn.write(b"echo me")
            conn.write_eof()
            print("echoed:", (await conn.read()).decode())


asyncio.run(main())
