"""Bytes over connections: 64 MiB by hash, named and shared streams, messages, cancellation."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

import swarmplex
from swarmplex import Stream

from conftest import pair, within


async def test_64_mib_byte_for_byte(testnet):
    server, client, sc, cc = await pair(testnet, "big")
    try:
        data = os.urandom(64 << 20)
        want = hashlib.sha256(data).hexdigest()
        view = memoryview(data)

        async def send() -> None:
            for off in range(0, len(data), 1 << 20):
                cc.write(view[off : off + (1 << 20)])
                await cc.drain()
            cc.write_eof()
            await cc.flush()

        async def receive() -> str:
            h = hashlib.sha256()
            n = 0
            async for chunk in sc:
                h.update(chunk)
                n += len(chunk)
            assert n == len(data)
            return h.hexdigest()

        _, got = await within(asyncio.gather(send(), receive()), "64 MiB", 120)
        assert got == want
    finally:
        await client.destroy()
        await server.destroy()


async def test_named_streams(testnet):
    server, client, sc, cc = await pair(testnet, "named")
    try:
        names = [f"stream-{i}" for i in range(4)]
        opened = await within(asyncio.gather(*(cc.create_stream(n) for n in names)))
        taken = await within(asyncio.gather(*(sc.receive_stream(n) for n in reversed(names))))
        taken = list(reversed(taken))
        for n, o, t in zip(names, opened, taken):
            assert isinstance(o, Stream) and o.name == n and t.name == n
            assert o.remote_public_key == server.public_key
            o.write(f"to {n}".encode())
            o.write_eof()
            t.write(f"from {n}".encode())
            t.close()
        for n, o, t in zip(names, opened, taken):
            assert await within(t.read()) == f"to {n}".encode()
            assert await within(o.read()) == f"from {n}".encode()
            await within(o.wait_closed())
        # The socket is untouched by the named streams.
        cc.write(b"socket")
        await cc.drain()
        assert await within(sc.readexactly(6)) == b"socket"
    finally:
        await client.destroy()
        await server.destroy()


async def test_stream_event_for_an_unclaimed_stream(testnet):
    server, client, sc, cc = await pair(testnet, "unclaimed")
    try:
        arrived = asyncio.get_running_loop().create_future()
        server.on("stream", lambda k, name, shared: arrived.done() or arrived.set_result((k, name, shared)))
        s = await within(cc.create_stream("late"))
        s.write(b"parked")
        await s.drain()
        assert await within(arrived) == (client.public_key, "late", False)
        t = await within(sc.receive_stream("late"))
        assert await within(t.readexactly(6)) == b"parked"
    finally:
        await client.destroy()
        await server.destroy()


async def test_shared_streams(testnet):
    server, client, sc, cc = await pair(testnet, "shared")
    try:
        # Whichever side asks first, both get the two ends of one stream. (The follower's call
        # resolves only once the leader asked too, so both run concurrently.)
        first = asyncio.ensure_future(cc.create_shared_stream("chat"))
        b = await within(sc.create_shared_stream("chat"))
        a = await within(first)
        a.write(b"ping")
        await a.drain()
        assert await within(b.readexactly(4)) == b"ping"
        b.write(b"pong")
        await b.drain()
        assert await within(a.readexactly(4)) == b"pong"
        x, y = await within(asyncio.gather(sc.create_shared_stream("other"), cc.create_shared_stream("other")))
        x.write(b"!")
        await x.drain()
        assert await within(y.readexactly(1)) == b"!"
    finally:
        await client.destroy()
        await server.destroy()


async def test_topic_messages(testnet):
    server, client, sc, cc = await pair(testnet, "messages")
    try:
        server.join_messages("news")
        got = []
        server.on("message", got.append)
        it = server.messages()
        await within(cc.send_message("ignored", b"nobody joined this topic"))
        await within(cc.send_message("news", b"first"))
        await within(cc.send_message("news", bytearray(b"second")))
        m1 = await within(it.__anext__())
        m2 = await within(it.__anext__())
        assert (m1.topic, m1.data, m1.remote_public_key) == ("news", b"first", client.public_key)
        assert m2.data == b"second"
        assert [m.data for m in got] == [b"first", b"second"]
        server.leave_messages("news")
    finally:
        await client.destroy()
        await server.destroy()


async def test_cancelled_read_leaves_the_connection_usable(testnet):
    server, client, sc, cc = await pair(testnet, "cancel")
    try:
        # A read with nothing to read, cancelled by a timeout (and one cancelled explicitly).
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sc.read(100), 0.2)
        task = asyncio.ensure_future(sc.readexactly(10))
        await asyncio.sleep(0)  # let it start (not synchronisation: it is cancelled either way)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cc.write(b"after")
        await cc.drain()
        assert await within(sc.readexactly(5)) == b"after"

        # A cancelled readexactly keeps what it had already received.
        cc.write(b"12345")
        await cc.drain()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sc.readexactly(10), 0.3)
        cc.write(b"67890")
        await cc.drain()
        assert await within(sc.readexactly(10)) == b"1234567890"

        # Cancelling a pending flush and a pending join round is clean too.
        t = asyncio.ensure_future(client.flush())
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        d = await client.join(swarmplex.topic("cancel-2"), server=False, client=True)
        t = asyncio.ensure_future(d.flushed())
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        sc.write(b"still fine")
        await sc.drain()
        assert await within(cc.readexactly(10)) == b"still fine"
    finally:
        await client.destroy()
        await server.destroy()


async def test_write_errors_surface_in_drain(testnet):
    server, client, sc, cc = await pair(testnet, "write-error")
    try:
        s = await within(cc.create_stream("x"))
        s.write_eof()
        with pytest.raises(swarmplex.ClosedError):
            s.write(b"after the end")
        await client.destroy()
        with pytest.raises(swarmplex.SwarmplexError):
            for _ in range(64):
                cc.write(b"z" * (1 << 20))
                await cc.drain()
            await cc.flush()
    finally:
        await client.destroy()
        await server.destroy()
