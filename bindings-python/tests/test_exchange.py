"""Peer exchange from Python: A knows only B and reaches C through B — relayed when C accepts
nothing, direct when it does — the websocket transport, unaccept, plus network isolation and
bad input. All on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import os
from contextlib import AsyncExitStack

import pytest

import swarmplex
from swarmplex import Exchange

from conftest import within


async def both_ways(x: swarmplex.Connection, y: swarmplex.Connection, n: int) -> None:
    for a, b in ((x, y), (y, x)):
        data = os.urandom(n)
        a.write(data)
        got = b""
        while len(got) < n:
            got += await within(b.read(65536), "bytes")
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


async def peer_from(node: Exchange, key: bytes) -> swarmplex.Connection:
    """The node's connection to ``key``: already open, or the next one to it (earlier
    connections still queued for ``next_peer``, such as the one to B, are skipped)."""
    while True:
        found = next((p for p in node.peers if p.remote_public_key == key), None)
        if found is not None:
            return found
        conn = await within(node.next_peer(), "the connection from the peer")
        if conn.remote_public_key == key:
            return conn


async def nodes(stack: AsyncExitStack, n: int, network: str = "py-net") -> list:
    return [await stack.enter_async_context(Exchange(network)) for _ in range(n)]


async def test_a_reaches_c_through_b_relayed_when_c_accepts_nothing():
    async with AsyncExitStack() as stack:
        a, b, c = await nodes(stack, 3)
        tcp = await b.accept("tcp", host="127.0.0.1")
        quic = await b.accept("quic", host="127.0.0.1")
        assert tcp.host == "127.0.0.1" and tcp.port > 0 and quic.multiaddr.endswith("/quic-v1")
        ab = await within(a.connect("tcp", "127.0.0.1", port=tcp.port), "A connects to B")
        assert ab.transport == "tcp" and ab.remote_public_key == b.public_key
        cb = await within(c.connect("quic", "127.0.0.1", port=quic.port), "C connects to B")
        assert cb.transport == "quic"

        ac = await within(a.get_new_peer(), "A gets C through B")
        assert ac.remote_public_key == c.public_key
        assert ac.transport == "relay", ac.remote_address
        ca = await peer_from(c, a.public_key)
        assert ca.remote_public_key == a.public_key and ca.transport == "relay"
        assert ca.handshake_hash == ac.handshake_hash
        await both_ways(ac, ca, 256 * 1024)

        with pytest.raises(swarmplex.ConnectError):
            await within(a.get_new_peer(ab), "B has nothing new to offer")


async def test_an_introduced_peer_that_accepts_is_reached_directly():
    async with AsyncExitStack() as stack:
        a, b, c = await nodes(stack, 3)
        port = (await b.accept("tcp", host="127.0.0.1")).port
        await a.accept("tcp", host="127.0.0.1")
        await c.accept("quic", host="127.0.0.1")
        await within(a.connect("tcp", "127.0.0.1", port=port))
        await within(c.connect("tcp", "127.0.0.1", port=port))
        ac = await within(a.get_new_peer(b.public_key), "A gets C")
        assert ac.remote_public_key == c.public_key and ac.transport != "relay"
        ca = await peer_from(c, a.public_key)
        await both_ways(ac, ca, 1 << 20)


async def test_networks_are_isolated_and_bad_input_is_rejected():
    async with AsyncExitStack() as stack:
        (one,) = await nodes(stack, 1, "network one")
        (two,) = await nodes(stack, 1, "network two")
        port = (await one.accept("tcp", host="127.0.0.1")).port
        with pytest.raises(swarmplex.ConnectError, match="not in this network"):
            await within(two.connect("tcp", "127.0.0.1", port=port))
        assert one.peers == []
        with pytest.raises(swarmplex.ConnectError, match="not connected to any peers"):
            await within(two.get_new_peer())

        with pytest.raises(ValueError, match="'tcp', 'quic' or 'websocket'"):
            await one.accept("webrtc")
        with pytest.raises(ValueError):
            await one.accept("tcp", port=70000)
        with pytest.raises(TypeError):
            await one.accept("tcp", port="80")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await one.connect("tcp", "not a host!", port=1)
        with pytest.raises(ValueError):
            await one.get_new_peer(b"\x01" * 31)
        with pytest.raises(TypeError):
            Exchange(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            Exchange("")


async def test_websocket_carries_bytes_both_ways():
    async with AsyncExitStack() as stack:
        a, b = await nodes(stack, 2)
        ws = await b.accept("websocket", host="127.0.0.1")
        assert ws.transport == "websocket" and ws.host == "127.0.0.1" and ws.port > 0
        assert ws.multiaddr == f"/ip4/127.0.0.1/tcp/{ws.port}/ws"
        ab = await within(a.connect("websocket", "127.0.0.1", port=ws.port), "A connects to B by websocket")
        assert ab.transport == "websocket" and ab.remote_public_key == b.public_key
        ba = await peer_from(b, a.public_key)
        assert ba.transport == "websocket"
        assert ba.handshake_hash == ab.handshake_hash
        await both_ways(ab, ba, 256 * 1024)


async def test_unaccept_closes_that_transports_listeners_and_keeps_connections():
    async with AsyncExitStack() as stack:
        a, b, c = await nodes(stack, 3)
        ws = await b.accept("websocket", host="127.0.0.1")
        tcp1 = await b.accept("tcp", host="127.0.0.1")
        tcp2 = await b.accept("tcp", host="127.0.0.1")
        quic = await b.accept("quic", host="127.0.0.1")
        ab = await within(a.connect("websocket", "127.0.0.1", port=ws.port), "A connects to B")
        ba = await peer_from(b, a.public_key)

        await within(b.unaccept("websocket"), "unaccept websocket")
        with pytest.raises(swarmplex.ConnectError):
            await within(c.connect("websocket", "127.0.0.1", port=ws.port), "C's refused connect")
        assert not ab.closed and not ba.closed
        await both_ways(ab, ba, 256 * 1024)

        # Every listener of the transport closes; the other transports still accept.
        await within(b.unaccept("tcp"), "unaccept tcp")
        for port in (tcp1.port, tcp2.port):
            with pytest.raises(swarmplex.ConnectError):
                await within(c.connect("tcp", "127.0.0.1", port=port), "C's refused connect")
        cb = await within(c.connect("quic", "127.0.0.1", port=quic.port), "C connects to B by quic")
        assert cb.transport == "quic" and cb.remote_public_key == b.public_key
        assert (await peer_from(b, c.public_key)).transport == "quic"

        for transport in ("websocket", "tcp"):  # already closed
            with pytest.raises(swarmplex.InvalidInputError, match="not accepting"):
                await b.unaccept(transport)
        with pytest.raises(ValueError, match="not accepting"):
            await a.unaccept("quic")  # A never accepted
        with pytest.raises(ValueError, match="unsupported transport"):
            await b.unaccept("webrtc")
        with pytest.raises(TypeError):
            await b.unaccept(5)  # type: ignore[arg-type]
        await both_ways(ab, ba, 1024)


async def test_relaying_is_bounded_and_a_cut_circuit_ends_with_relay_limit():
    async with AsyncExitStack() as stack:
        a, b, c = await nodes(stack, 3)
        port = (await b.accept("tcp", host="127.0.0.1")).port
        await within(a.connect("tcp", "127.0.0.1", port=port), "A connects to B")
        await within(c.connect("tcp", "127.0.0.1", port=port), "C connects to B")
        ac = await within(a.get_new_peer(), "A reaches C through B")
        assert ac.transport == "relay"
        ca = await peer_from(c, a.public_key)
        # 4 MiB cannot cross a relay that carries 1 MiB per circuit (the default bound): the
        # reader must see an error, never a clean end.
        ac.write(b"\x07" * (4 << 20))
        got = 0
        with pytest.raises(swarmplex.SwarmplexError):
            while True:
                chunk = await within(ca.read(65536), "the circuit to give out")
                if not chunk:
                    pytest.fail(f"read {got} bytes and then a clean end: bytes were lost silently")
                got += len(chunk)
        assert got < 4 << 20
        # The reader's side, whose inbound half the relay cut mid-frame, learns why. (The
        # writer's side may instead see its control stream end cleanly: "closed".)
        reason = await within(ca.wait_closed_reason(), "the session's end")
        assert isinstance(reason, swarmplex.RelayLimitError) and reason.kind == "relay_limit", repr(reason)
        assert isinstance(await within(ac.wait_closed_reason()), (swarmplex.RelayLimitError, swarmplex.ClosedError))
