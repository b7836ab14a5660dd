"""Send a file over a named stream and check it by hash, next to a topic message."""

import asyncio
import hashlib
import os

import swarmplex
from _local import network


async def main() -> None:
    payload = os.urandom(8 << 20)  # stands in for a file's bytes
    async with network() as opts:
        async with swarmplex.Swarm(**opts) as sender, swarmplex.Swarm(**opts) as receiver:
            topic = swarmplex.topic("file-transfer-example")
            await (await receiver.join(topic, server=True, client=False)).flushed()
            receiver.join_messages("files")
            await sender.join(topic, server=False, client=True)
            conn = await sender.next_connection()
            rconn = await receiver.next_connection()

            await conn.send_message("files", b"report.bin")  # announce the name
            msg = await receiver.messages().__anext__()

            async def send() -> None:
                async with await conn.create_stream("file") as s:
                    s.write(payload)
                    await s.drain()

            async def receive() -> bytes:
                s = await rconn.receive_stream("file")
                return await s.read()  # until the sender's end

            _, got = await asyncio.gather(send(), receive())
            ok = hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
            print(f"received {msg.data.decode()}: {len(got)} bytes, hash ok: {ok}")
            assert ok


asyncio.run(main())
