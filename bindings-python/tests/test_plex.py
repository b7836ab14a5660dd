"""Issue 6's behaviours from Python: many named streams at once, find by key with a timeout that
fires, and topic messages broadcast to several peers with leave."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

import swarmplex

from conftest import make_swarm, pair, within


async def test_sixteen_named_streams_both_ways(testnet):
    server, client, sc, cc = await pair(testnet, "sixteen")
    try:

        async def one(i: int) -> None:
            # Even streams are opened by the client, odd ones by the server.
            opener, taker = (cc, sc) if i % 2 == 0 else (sc, cc)
            name = f"s{i}"
            o, t = await within(asyncio.gather(opener.create_stream(name), taker.receive_stream(name)))
            ask, answer = os.urandom(50_000 + i), os.urandom(70_000)
            o.write(ask)
            o.write_eof()
            got = b""
            while chunk := await within(t.read(65536)):
                got += chunk
            assert hashlib.sha256(got).digest() == hashlib.sha256(ask).digest(), name
            t.write(answer)
            t.write_eof()
            back = b""
            while chunk := await within(o.read(65536)):
                back += chunk
            assert back == answer, name

        await within(asyncio.gather(*(one(i) for i in range(16))))
    finally:
        await client.destroy()
        await server.destroy()


async def test_find_peer_times_out_for_a_peer_that_never_listens(testnet, swarms):
    seeker, ghost, target = make_swarm(testnet), make_swarm(testnet), make_swarm(testnet)
    swarms.extend([seeker, ghost, target])
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(seeker.find_peer(ghost.public_key), 1.0)  # ghost never listen()s
    # The cancelled search leaves the swarm usable: a peer that listens is found.
    await within(target.listen())
    await within(target.flush())
    conn = await within(seeker.find_peer(target.public_key))
    assert conn.remote_public_key == target.public_key


async def test_messages_broadcast_to_joined_peers_and_stop_after_leave(testnet, swarms):
    hub, member, outsider = make_swarm(testnet), make_swarm(testnet), make_swarm(testnet)
    swarms.extend([hub, member, outsider])
    topic = swarmplex.topic("broadcast")
    await within((await hub.join(topic, server=True, client=False)).flushed())
    await member.join(topic, server=False, client=True)
    await outsider.join(topic, server=False, client=True)
    peers = [await within(hub.next_connection()) for _ in range(2)]
    member.join_messages("room")
    outsider.join_messages("other")  # joined something else, not "room"
    member_msgs, outsider_msgs = member.messages(), outsider.messages()

    async def broadcast(topic_name: str, data: bytes) -> None:
        await within(asyncio.gather(*(p.send_message(topic_name, data) for p in peers)))

    await broadcast("room", b"hello room")
    m = await within(member_msgs.__anext__())
    assert (m.topic, m.data, m.remote_public_key) == ("room", b"hello room", hub.public_key)
    # The outsider got nothing for "room": the next thing it receives is the "other" message.
    await broadcast("other", b"for the outsider")
    o = await within(outsider_msgs.__anext__())
    assert (o.topic, o.data) == ("other", b"for the outsider")
    # After leave, "room" is no longer delivered to the member either. Messages ride separate
    # streams, so a later "after" marker is the member's next message only because "room" was
    # dropped on arrival (were it delivered, it could come first and fail the check).
    member.leave_messages("room")
    member.join_messages("after")
    await broadcast("room", b"after leave")
    await broadcast("after", b"marker")
    m = await within(member_msgs.__anext__())
    assert (m.topic, m.data) == ("after", b"marker"), m
    # And nothing else follows (a bounded negative check: the dropped "room" message never comes).
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(member_msgs.__anext__(), 0.5)
