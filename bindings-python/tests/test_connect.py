"""Connections: data both ways, dedup, a mesh, join_peer, firewall, leave, destroy."""

from __future__ import annotations

import asyncio
from typing import Dict, List

import swarmplex
from swarmplex import ClosedError, Swarm

from conftest import make_swarm, pair, within


async def test_one_server_one_client_data_both_ways(testnet):
    server, client, sc, cc = await pair(testnet, "basic")
    try:
        assert sc.remote_public_key == client.public_key
        assert cc.remote_public_key == server.public_key
        assert sc.handshake_hash == cc.handshake_hash and len(sc.handshake_hash) == 32
        assert cc.is_initiator != sc.is_initiator or True  # either side may have dialed
        assert client.connections == {cc} and server.connections == {sc}
        assert set(client.peers) == {server.public_key}
        assert swarmplex.topic("basic") in client.peers[server.public_key].topics

        cc.write(b"hello from the client")
        await cc.drain()
        assert await within(sc.readexactly(21)) == b"hello from the client"
        sc.writelines([b"hello ", b"from ", b"the server\n"])
        await sc.drain()
        assert await within(cc.readline()) == b"hello from the server\n"

        # Half-close both ways: each side reads everything, then the end.
        cc.write(b"bye")
        cc.write_eof()
        assert await within(sc.read()) == b"bye"
        assert sc.at_eof()
        sc.write_eof()
        assert await within(cc.read()) == b""
    finally:
        await client.destroy()
        await server.destroy()


async def test_path_and_reachability_on_a_local_network(testnet):
    server, client, sc, cc = await pair(testnet, "path")
    try:
        path = cc.path
        assert not path.relayed and path.relay is None
        assert path.transport in ("quic", "tcp") and path.remote_address.startswith("/ip4/127.0.0.1/")
        # Bootstrap nodes on loopback: a local network, reachable as it is, no relay.
        r = await server.reachability()
        assert isinstance(r, swarmplex.Reachability)
        assert r.state == "public" and not r.symmetric and r.relays == []
        assert any(a.startswith("/ip4/127.0.0.1/") for a in r.external), r.external
    finally:
        await client.destroy()
        await server.destroy()


async def test_client_and_server_mode_dedups_to_one_connection(testnet):
    a, b = make_swarm(testnet), make_swarm(testnet)
    events: Dict[bytes, List[swarmplex.Connection]] = {a.public_key: [], b.public_key: []}
    got = {a.public_key: asyncio.Event(), b.public_key: asyncio.Event()}

    def recorder(s: Swarm):
        def record(c: swarmplex.Connection) -> None:
            events[s.public_key].append(c)
            got[s.public_key].set()
        return record

    try:
        topic = swarmplex.topic("dedup")
        a.on("connection", recorder(a))
        b.on("connection", recorder(b))
        da = await a.join(topic)
        db = await b.join(topic)
        await within(asyncio.gather(da.flushed(), db.flushed()), "both rounds")
        await within(asyncio.gather(got[a.public_key].wait(), got[b.public_key].wait()), "connections")
        assert len(a.connections) == 1 and len(b.connections) == 1
        (ca,), (cb,) = a.connections, b.connections
        assert ca.handshake_hash == cb.handshake_hash
        # One more full round each: still one, and no other connection event was ever seen.
        await da.refresh()
        await db.refresh()
        await within(asyncio.gather(a.flush(), b.flush()), "second round")
        assert a.connections == {ca} and b.connections == {cb}
        assert len(events[a.public_key]) == 1 and len(events[b.public_key]) == 1
        ca.write(b"one")
        await ca.drain()
        assert await within(cb.readexactly(3)) == b"one"
    finally:
        await a.destroy()
        await b.destroy()


async def test_mesh_of_six(testnet):
    swarms = [make_swarm(testnet) for _ in range(6)]
    topic = swarmplex.topic("mesh-6")
    try:
        for s in swarms:
            await s.join(topic)

        async def collect(s: Swarm) -> Dict[bytes, bytes]:
            seen: Dict[bytes, bytes] = {}
            async for c in s.iter_connections():
                assert c.remote_public_key not in seen, "duplicate connection event"
                seen[c.remote_public_key] = c.handshake_hash
                if len(seen) == 5:
                    return seen
            raise AssertionError("swarm ended")

        results = await within(asyncio.gather(*(collect(s) for s in swarms)), "a full mesh", 60)
        keys = [s.public_key for s in swarms]
        for s, seen in zip(swarms, results):
            assert set(seen) == set(keys) - {s.public_key}
        for i, a in enumerate(swarms):
            for j, b in enumerate(swarms):
                if i != j:
                    assert results[i][b.public_key] == results[j][a.public_key]
        assert all(len(s.connections) == 5 for s in swarms)
    finally:
        await asyncio.gather(*(s.destroy() for s in swarms))


async def test_join_peer_reconnects_by_key(testnet):
    server, client, sc, cc = await pair(testnet, "join-peer")
    try:
        topic = swarmplex.topic("join-peer")
        await client.leave(topic)
        await server.leave(topic)
        client.join_peer(server.public_key)
        # The server closes; the client keeps the peer by key and dials it again.
        disconnected = asyncio.get_running_loop().create_future()
        client.on("disconnected", lambda k, e: disconnected.done() or disconnected.set_result((k, e)))
        sc.abort()
        key, err = await within(disconnected, "disconnect")
        assert key == server.public_key and isinstance(err, swarmplex.SwarmplexError)
        again = await within(client.next_connection(), "reconnect by key")
        back = await within(server.next_connection(), "server side of the reconnect")
        assert again.remote_public_key == server.public_key
        assert again.peer_info.explicit
        assert again.handshake_hash == back.handshake_hash != cc.handshake_hash
        again.write(b"again")
        await again.drain()
        assert await within(back.readexactly(5)) == b"again"
        client.leave_peer(server.public_key)
    finally:
        await client.destroy()
        await server.destroy()


async def test_find_peer_by_key(testnet):
    target = make_swarm(testnet, seed=bytes([9]) * 32)
    seeker = make_swarm(testnet)
    try:
        assert target.key_pair == swarmplex.KeyPair.from_seed(bytes([9]) * 32)
        addrs = await within(target.listen())
        assert addrs and all(a.startswith("/ip4/127.0.0.1/") for a in addrs)
        await within(target.flush())
        conn = await within(seeker.find_peer(target.public_key), "find_peer")
        assert conn.remote_public_key == target.public_key
        other = await within(target.next_connection())
        conn.write(b"found you")
        await conn.drain()
        assert await within(other.readexactly(9)) == b"found you"
    finally:
        await seeker.destroy()
        await target.destroy()


async def test_firewall_asked_once_and_rejection_bans(testnet):
    asked: List[bytes] = []

    async def firewall(key: bytes) -> bool:  # a coroutine firewall, run on the loop
        asked.append(key)
        return True  # reject everyone

    server = make_swarm(testnet, firewall=firewall)
    client = make_swarm(testnet)
    try:
        bans = asyncio.Queue()
        server.on("ban", bans.put_nowait)
        topic = swarmplex.topic("fw")
        await within((await server.join(topic, server=True, client=False)).flushed())
        d = await client.join(topic, server=False, client=True)
        assert await within(bans.get(), "ban event") == client.public_key
        # The client tries again: the banned peer is refused before the firewall is asked.
        await within(client.flush())
        await d.refresh()
        await within(client.flush())
        assert asked == [client.public_key]
        assert not server.connections and not client.connections

        # An allowing (plain function) firewall is also asked only once, across reconnects.
        asked2: List[bytes] = []
        server2 = make_swarm(testnet, firewall=lambda k: asked2.append(k) or False)
        try:
            t2 = swarmplex.topic("fw-ok")
            await within((await server2.join(t2, server=True, client=False)).flushed())
            await client.join(t2, server=False, client=True)
            c = await within(server2.next_connection())
            c.abort()
            await within(server2.next_connection(), "the client reconnects")
            assert asked2 == [client.public_key]
        finally:
            await server2.destroy()
    finally:
        await client.destroy()
        await server.destroy()


async def test_after_the_server_leaves_a_new_client_does_not_find_it(testnet):
    # leave() returns once the announce is withdrawn from the DHT nodes that held it.
    server, first, _sc, _cc = await pair(testnet, "left")
    second = make_swarm(testnet)
    third = make_swarm(testnet)
    try:
        topic = swarmplex.topic("left")
        await within(server.leave(topic), "leave")
        await second.join(topic, server=False, client=True)
        await within(second.flush())
        assert second.connections == set(), "the second client found a server that left"
        assert len(first.connections) == 1, "leave keeps existing connections"
        # Discovery.destroy() withdraws too.
        d = await server.join(topic, server=True, client=False)
        await within(d.flushed(), "announce again")
        await within(d.destroy(), "destroy")
        await third.join(topic, server=False, client=True)
        await within(third.flush())
        assert third.connections == set(), "the third client found a server that left"
    finally:
        await asyncio.gather(*(s.destroy() for s in (server, first, second, third)))


async def test_leave_keeps_connections(testnet):
    server, client, sc, cc = await pair(testnet, "leave")
    try:
        topic = swarmplex.topic("leave")
        await client.leave(topic)
        await server.leave(topic)
        await within(client.flush())
        await within(server.flush())
        assert await client.topics() == []
        assert client.connections == {cc} and not cc.closed
        cc.write(b"still here")
        await cc.drain()
        assert await within(sc.readexactly(10)) == b"still here"
    finally:
        await client.destroy()
        await server.destroy()


async def test_destroy_closes_the_remote_side(testnet):
    server, client, sc, cc = await pair(testnet, "destroy")
    try:
        gone = asyncio.get_running_loop().create_future()
        server.on("disconnected", lambda k, e: gone.done() or gone.set_result(k))
        pending_read = asyncio.ensure_future(sc.read(100))
        await client.destroy()
        assert client.destroyed and not client.connections
        # Well under the 5 s silence limit: the remote was told, not timed out.
        await within(sc.wait_closed(), "remote close", timeout=3)
        assert await within(gone, timeout=3) == client.public_key
        reason = await sc.wait_closed_reason()
        # The goodbye races the transport teardown: the core reports Closed or Reset.
        assert isinstance(reason, (ClosedError, swarmplex.ResetError)), reason
        try:
            r = await within(pending_read, timeout=3)
            assert r == b""
        except swarmplex.SwarmplexError:
            pass  # a read pending at the close fails: that is the expected outcome
        assert not server.connections
        # Iterators of a destroyed swarm end.
        assert [c async for c in client.iter_connections()] == []
    finally:
        await server.destroy()


async def test_suspend_and_resume(testnet):
    server, client, sc, cc = await pair(testnet, "suspend")
    try:
        await client.suspend()
        await within(cc.wait_closed())
        await within(sc.wait_closed())
        await client.resume()
        again = await within(client.next_connection(), "reconnect after resume")
        assert again.remote_public_key == server.public_key
    finally:
        await client.destroy()
        await server.destroy()


async def test_max_peers_caps_connections_and_flush_resolves(testnet, swarms):
    topic = swarmplex.topic("max-peers")
    for _ in range(3):
        server = make_swarm(testnet)
        swarms.append(server)
        d = await server.join(topic, server=True, client=False)
        await within(d.flushed(), "announce")
    client = make_swarm(testnet, max_peers=1)
    swarms.append(client)
    await client.join(topic, server=False, client=True)
    await within(client.next_connection(), "the first connection")
    await within(client.flush(), "flush with max_peers=1")
    assert len(client.connections) == 1, "three servers announced, max_peers is 1"


async def test_connecting_goes_up_and_down_through_update(testnet, swarms):
    topic = swarmplex.topic("updates")
    server, client = make_swarm(testnet), make_swarm(testnet)
    swarms.extend([server, client])
    d = await server.join(topic, server=True, client=False)
    await within(d.flushed(), "announce")
    assert client.connecting == 0
    seen: List[int] = []
    connected = asyncio.get_running_loop().create_future()

    def on_update(connecting: int, connections: int) -> None:
        seen.append(connecting)
        if connections == 1 and not connected.done():
            connected.set_result(None)

    client.on("update", on_update)
    await client.join(topic, server=False, client=True)
    await within(connected, "an update with one connection")
    assert 1 in seen, f"connecting reached 1: {seen}"
    assert seen[-1] == 0 and client.connecting == 0, seen


async def test_a_connected_peer_found_under_a_second_topic_emits_topic(testnet, swarms):
    t1, t2 = swarmplex.topic("topic-event-1"), swarmplex.topic("topic-event-2")
    server, client = make_swarm(testnet), make_swarm(testnet)
    swarms.extend([server, client])
    for t in (t1, t2):
        d = await server.join(t, server=True, client=False)
        await within(d.flushed(), "announce")
    told = asyncio.get_running_loop().create_future()
    client.on("topic", lambda key, topic: told.done() or told.set_result((key, topic)))
    await client.join(t1, server=False, client=True)
    conn = await within(client.next_connection(), "the connection under the first topic")
    assert conn.peer_info.topics == [t1]
    await client.join(t2, server=False, client=True)
    assert await within(told, "the topic event") == (server.public_key, t2)
    await within(client.flush())
    assert sorted(conn.peer_info.topics) == sorted([t1, t2])
    assert client.connections == {conn}, "one connection for both topics"
