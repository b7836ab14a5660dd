"""swarmplex.plex (p2plex's API) and swarmplex.peersockets: named streams both ways (16 at once),
shared streams, auto-close when the last stream ended and reopen, a connection without streams
stays, find by key/topic with timeouts, and peersockets send/broadcast/close/leave."""

from __future__ import annotations

import asyncio
import os
from typing import Any, AsyncIterator, Callable, List, Tuple

import pytest

import swarmplex
from swarmplex import KeyPair, Peer, Peersockets, Plex, Stream

from conftest import make_swarm, within


@pytest.fixture
async def plexes(testnet: swarmplex.Testnet) -> AsyncIterator[Callable[..., Any]]:
    """``await create(**kw)``: a started Plex on the local testnet, closed after the test."""
    made: List[Plex] = []

    async def create(**kw: Any) -> Plex:
        kw.setdefault("listen", swarmplex.LOOPBACK_LISTEN)
        kw.setdefault("mdns", False)
        p = Plex(bootstrap=testnet.bootstrap, **kw)
        made.append(p)
        await p.__aenter__()
        if kw.get("listen_self", True):
            await within(p.swarm.flush(), "self-announce")
        return p

    yield create
    for p in made:
        await p.close()


async def connect(a: Plex, b: Plex) -> Tuple[Peer, Peer]:
    """a finds b by key: (a's Peer for b, b's Peer for a)."""
    a_peer = await within(a.find_by_public_key(b.public_key), "find by key")
    b_peer = await within(b.next_peer(), "b's peer")
    assert a_peer.public_key == b.public_key and b_peer.public_key == a.public_key
    return a_peer, b_peer


async def exchange(stream: Stream, out: bytes) -> bytes:
    """Writes `out` and the end, and reads everything the other side sends until its end."""
    stream.write(out)
    stream.write_eof()
    return await within(stream.read(), f"stream {stream.name!r}")


async def test_sixteen_named_streams_both_ways_then_auto_close(plexes):
    a, b = await plexes(), await plexes()
    a_peer, b_peer = await connect(a, b)
    assert a_peer.incoming is False and b_peer.incoming is True
    assert a.peers == {a_peer} and b.peers == {b_peer}
    assert a_peer.connected and b_peer.connected

    async def one(creator: Peer, receiver: Peer, sid: str, i: int) -> None:
        up, down = os.urandom(100_000 + i * 1000), os.urandom(50_000 + i)
        c, r = await within(asyncio.gather(creator.create_stream(sid), receiver.receive_stream(sid)))
        assert isinstance(c, Stream) and c.name == sid and r.name == sid
        assert c.remote_public_key == creator.public_key and r.remote_public_key == receiver.public_key
        got_c, got_r = await asyncio.gather(exchange(c, up), exchange(r, down))
        assert got_c == down, f"{sid} down"
        assert got_r == up, f"{sid} up"

    jobs = []
    for i in range(8):
        jobs.append(one(a_peer, b_peer, f"a-{i}", i))
        jobs.append(one(b_peer, a_peer, f"b-{i}", i))
    await within(asyncio.gather(*jobs), "16 streams", 60)
    # Every stream ended both ways on both sides: the connection closes by itself.
    await within(a_peer.wait_disconnected(), "a sees b disconnected")
    await within(b_peer.wait_disconnected(), "b sees a disconnected")
    assert not a.peers and not b.peers
    assert not a_peer.connected and not b_peer.connected
    assert not a.swarm.connections and not b.swarm.connections


async def test_unclaimed_streams_and_reopen_after_auto_close(plexes):
    a, b = await plexes(), await plexes()
    a_peer, b_peer = await connect(a, b)

    async def echo(peer: Peer) -> List[str]:
        seen = []
        async for stream, sid in peer.iter_streams():
            seen.append(sid)
            data = await stream.read()
            stream.write(b"echo " + sid.encode() + b": " + data)
            stream.write_eof()
        return seen  # the iteration ends with the connection

    echoer = asyncio.ensure_future(echo(b_peer))
    assert await exchange(await within(a_peer.create_stream("first")), b"x") == b"echo first: x"
    await within(a_peer.wait_disconnected(), "auto-close (a)")
    await within(b_peer.wait_disconnected(), "auto-close (b)")
    assert await within(echoer) == ["first"]

    # A new stream on the old Peer finds b again by key and opens on a new connection, which
    # gets a new Peer on both sides.
    a_new: List[Peer] = []
    a.on("connection", a_new.append)
    stream = await within(a_peer.create_stream("second"))
    (a_peer2,) = a_new  # reported before the find returned
    assert a_peer2 is not a_peer and a_peer2.public_key == b.public_key and a.peers == {a_peer2}
    b_peer2 = await within(b.next_peer(), "b's new peer")
    assert b_peer2 is not b_peer and b_peer2.public_key == a.public_key
    echoer = asyncio.ensure_future(echo(b_peer2))
    assert await exchange(stream, b"y") == b"echo second: y"
    # That stream counted toward the new connection, which closes once it ended too.
    await within(a_peer2.wait_disconnected(), "auto-close of the new connection")
    await within(b_peer2.wait_disconnected(), "auto-close of the new connection (b)")
    assert await within(echoer) == ["second"]


async def test_receive_stream_takes_a_stream_that_arrived_first(plexes):
    a, b = await plexes(), await plexes()
    a_peer, b_peer = await connect(a, b)
    arrived = asyncio.get_running_loop().create_future()
    b.swarm.on("stream", lambda k, name, shared: arrived.done() or arrived.set_result(name))
    s = await within(a_peer.create_stream("early"))
    s.write(b"parked")
    s.write_eof()
    assert await within(arrived) == "early"  # b's plex saw it arrive, nobody asked for it yet
    r = await within(b_peer.receive_stream("early"))
    assert await within(r.read()) == b"parked"
    r.write_eof()
    assert await within(s.read()) == b""
    await within(b_peer.wait_disconnected(), "auto-close")


async def test_a_late_stream_notice_does_not_hold_up_next_stream(plexes):
    a, b = await plexes(), await plexes()
    a_peer, b_peer = await connect(a, b)
    receiving = asyncio.ensure_future(b_peer.receive_stream("x"))
    s = await within(a_peer.create_stream("x"))
    s.write(b"one")
    s.write_eof()
    x = await within(receiving)
    assert await within(x.read()) == b"one"
    # The engine's notice of a stream and a receive's result travel apart, so the notice can be
    # handled after a receive took its stream: replay the notice for "x" that late.
    b.swarm._emit("stream", a.public_key, "x", False)
    y = await within(a_peer.create_stream("y"))
    y.write(b"two")
    y.write_eof()
    got, name = await within(b_peer.next_stream(), "next_stream")
    assert name == "y"
    assert await within(got.read()) == b"two"


async def test_shared_streams(plexes):
    a, b = await plexes(), await plexes()
    a_peer, b_peer = await connect(a, b)
    # Neither side waits for the other's call to finish (the follower's resolves once the leader
    # asked too).
    sa, sb = await within(asyncio.gather(a_peer.create_shared_stream("chat"), b_peer.create_shared_stream("chat")))
    assert sa.name == sb.name == "chat"
    from_b, from_a = await within(asyncio.gather(exchange(sa, b"from a"), exchange(sb, b"from b")))
    assert (from_b, from_a) == (b"from b", b"from a")
    await within(a_peer.wait_disconnected(), "auto-close (a)")
    await within(b_peer.wait_disconnected(), "auto-close (b)")


async def test_a_reset_stream_counts_as_ended(plexes):
    a, b = await plexes(), await plexes()
    a_peer, b_peer = await connect(a, b)
    s, r = await within(asyncio.gather(a_peer.create_stream("doomed"), b_peer.receive_stream("doomed")))
    s.write(b"partial")
    await within(s.drain())
    assert await within(r.readexactly(7)) == b"partial"
    s.abort()  # a's side ended at once; b's read fails, which ends it on b's side too
    with pytest.raises(swarmplex.ResetError):
        await within(r.read())
    await within(a_peer.wait_disconnected(), "auto-close after a reset (a)")
    await within(b_peer.wait_disconnected(), "auto-close after a reset (b)")


async def test_a_connection_that_never_carried_a_stream_stays(plexes):
    a, b, c = await plexes(), await plexes(), await plexes()
    ab, ba = await connect(a, b)
    ac, ca = await connect(a, c)
    s, r = await within(asyncio.gather(ab.create_stream("only"), ba.receive_stream("only")))
    assert await within(asyncio.gather(exchange(s, b"1"), exchange(r, b"2"))) == [b"2", b"1"]
    await within(ab.wait_disconnected(), "a-b auto-close")
    await within(ba.wait_disconnected(), "a-b auto-close (b)")
    # a-c carried nothing: still open (a bounded negative check), same Peers on both sides.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ac.wait_disconnected(), 1.0)
    assert ac.connected and ca.connected and a.peers == {ac} and c.peers == {ca}
    # It still carries streams, and once it did, it auto-closes like the others.
    s, r = await within(asyncio.gather(ca.create_stream("late"), ac.receive_stream("late")))
    assert await within(asyncio.gather(exchange(s, b"3"), exchange(r, b"4"))) == [b"4", b"3"]
    await within(ac.wait_disconnected(), "a-c auto-close")
    await within(ca.wait_disconnected(), "a-c auto-close (c)")


async def test_find_by_public_key_timeout_and_cancel(plexes):
    a = await plexes()
    nobody = KeyPair.generate().public_key
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(asyncio.TimeoutError):
        await a.find_by_public_key(nobody, timeout=0.3)
    assert loop.time() - t0 < 5
    # Task cancellation (here by wait_for) cancels the search too.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(a.find_by_public_key(nobody), 0.3)
    task = asyncio.ensure_future(a.find_by_public_key(nobody))
    await asyncio.sleep(0)  # let it start (not synchronisation: it is cancelled either way)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # find by topic: the timeout fires and the topic is left again.
    topic = swarmplex.topic("nobody-here")
    with pytest.raises(asyncio.TimeoutError):
        await a.find_by_topic_and_public_key(topic, nobody, timeout=0.2)
    assert topic not in [t for t, _, _ in await a.swarm.topics()]
    # Bad input.
    with pytest.raises(ValueError):
        await a.find_by_public_key(bytes(3))
    with pytest.raises(TypeError):
        await a.find_by_public_key("not bytes")
    with pytest.raises(ValueError):
        await a.find_by_public_key(a.public_key)  # ourselves
    with pytest.raises(swarmplex.InvalidInputError):
        await a.find_by_public_key(bytes([2]) * 32)  # 32 bytes, not an Ed25519 point
    with pytest.raises(ValueError):
        await a.find_by_public_key(nobody, timeout=-1)
    with pytest.raises(TypeError):
        await a.find_by_public_key(nobody, timeout="1")
    # The plex lives on: a peer that listens is found.
    b = await plexes()
    peer = await within(a.find_by_public_key(b.public_key, timeout=20))
    assert peer.public_key == b.public_key and peer in a.peers


async def test_find_by_topic_and_public_key(plexes):
    a, b = await plexes(listen_self=False), await plexes(listen_self=False)
    topic = swarmplex.topic("plex-find-by-topic")
    pa, pb = await within(asyncio.gather(
        a.find_by_topic_and_public_key(topic, b.public_key, announce=True, lookup=False, timeout=20),
        b.find_by_topic_and_public_key(topic, a.public_key, timeout=20),
    ))
    assert pa.public_key == b.public_key and pb.public_key == a.public_key
    assert topic in pb.topics  # b found a as a client of the topic
    assert a.peers == {pa} and b.peers == {pb}
    # Already connected: resolves at once with the same Peer.
    assert await within(b.find_by_topic_and_public_key(topic, a.public_key, timeout=1)) is pb
    x, y = await within(asyncio.gather(pa.create_shared_stream("s"), pb.create_shared_stream("s")))
    assert await within(asyncio.gather(exchange(x, b"A"), exchange(y, b"B"))) == [b"B", b"A"]


async def test_join_leave_disconnect_ban_and_identity(plexes):
    seed = bytes([7]) * 32
    a, b = await plexes(), await plexes(seed=seed)
    assert b.public_key == KeyPair.from_seed(seed).public_key == b.key_pair.public_key
    kp = KeyPair.generate()
    c = await plexes(key_pair=kp, listen_self=False)
    assert c.key_pair == kp and c.swarm.public_key == kp.public_key

    b_peers: "asyncio.Queue[Peer]" = asyncio.Queue()
    b.on("connection", b_peers.put_nowait)  # (b's next_peer() gets nothing now)
    topic = swarmplex.topic("plex-join")
    await within(b.join(topic, announce=True, lookup=False), "announce")
    await within(a.join(topic), "lookup")  # returns after the lookup round
    peer = await within(a.next_peer())
    assert peer.public_key == b.public_key and peer.incoming is False and topic in peer.topics
    b_peer = await within(b_peers.get())
    assert b_peer.incoming is True and b_peer.public_key == a.public_key
    await within(a.leave(topic))
    await within(peer.disconnect(), "disconnect")
    assert peer not in a.peers and not peer.connected
    await within(b_peer.wait_disconnected(), "b sees the disconnect")

    # ban() closes the connection; both sides see it.
    a2 = await within(a.find_by_public_key(b.public_key))
    b2 = await within(b_peers.get())
    assert a2 is not peer and b2.public_key == a.public_key
    a2.ban()
    await within(a2.wait_disconnected(), "ban")
    await within(b2.wait_disconnected(), "banned (b)")


async def test_bad_input(plexes, testnet):
    with pytest.raises(TypeError):
        Plex(bootstrap=testnet.bootstrap, mdns=False, listen_self="yes")
    with pytest.raises(ValueError):
        Plex(bootstrap=testnet.bootstrap, mdns=False, seed=bytes(31))
    with pytest.raises(TypeError):
        Plex(bootstrap=testnet.bootstrap, mdns=False, no_such_option=1)
    a, b = await plexes(), await plexes()
    with pytest.raises(ValueError):
        a.on("nope", lambda p: None)
    with pytest.raises(TypeError):
        a.on("connection", 3)
    with pytest.raises(ValueError):
        await a.join(bytes(31))
    with pytest.raises(ValueError):
        await a.join(swarmplex.topic("x"), announce=False, lookup=False)
    with pytest.raises(TypeError):
        await a.join(swarmplex.topic("x"), announce="no")
    with pytest.raises(TypeError):
        await a.find_by_topic_and_public_key(swarmplex.topic("x"), b.public_key, lookup=1)
    a_peer, _ = await connect(a, b)
    with pytest.raises(TypeError):
        await a_peer.create_stream(42)
    with pytest.raises(ValueError):
        await a_peer.receive_stream("x" * 2000)
    with pytest.raises(TypeError):
        await a_peer.create_shared_stream(b"bytes")
    assert a_peer.connected  # bad input opened nothing
    await a.close()
    with pytest.raises(swarmplex.ClosedError):
        await a.find_by_public_key(b.public_key)
    with pytest.raises(swarmplex.ClosedError):
        await a_peer.create_stream("after close")


async def test_peersockets_send_broadcast_close_leave(testnet, swarms):
    a, b, c = make_swarm(testnet), make_swarm(testnet), make_swarm(testnet)
    swarms.extend([a, b, c])
    topic = swarmplex.topic("peersockets")
    await within((await b.join(topic, server=True, client=False)).flushed())
    await within((await c.join(topic, server=True, client=False)).flushed())
    await a.join(topic, server=False, client=True)
    found = {(await within(a.next_connection())).remote_public_key for _ in range(2)}
    assert found == {b.public_key, c.public_key}
    A, B, C = a.public_key, b.public_key, c.public_key

    # c never joins "chat": record every message its swarm delivers (there must be none for it).
    c_raw: List[str] = []
    c_probe_raw = asyncio.get_running_loop().create_future()

    def on_raw(m: Any) -> None:
        c_raw.append(m.topic)
        if m.topic == "peersockets/probe" and not c_probe_raw.done():
            c_probe_raw.set_result(None)

    c.on("message", on_raw)

    def inbox() -> "Tuple[asyncio.Queue[Tuple[bytes, bytes]], Callable[[bytes, bytes], None]]":
        q: "asyncio.Queue[Tuple[bytes, bytes]]" = asyncio.Queue()
        return q, lambda k, m: q.put_nowait((k, m))

    sa, sb, sc = Peersockets(a), Peersockets(b), Peersockets(c)
    b_chat, on_b_chat = inbox()
    b_probe, on_b_probe = inbox()
    c_probe, on_c_probe = inbox()
    closed: List[str] = []
    hb = sb.join("chat", onmessage=on_b_chat, onclose=lambda: closed.append("chat"))
    sb.join("probe", onmessage=on_b_probe)
    sc.join("probe", onmessage=on_c_probe)
    ha, pa = sa.join("chat"), sa.join("probe")
    assert sb.topics == {"chat", "probe"}

    # send: a str (sent as UTF-8) and bytes.
    await within(ha.send(B, "hello b"))
    assert await within(b_chat.get()) == (A, b"hello b")
    await within(ha.send(B, bytes([0, 1, 2, 255])))
    assert await within(b_chat.get()) == (A, bytes([0, 1, 2, 255]))

    # To c, which did not join "chat": the send succeeds, c delivers nothing.
    await within(ha.send(C, "not for you"))
    # broadcast: sent to both connected peers; only b joined, so only b delivers it.
    assert await within(ha.broadcast(b"to all")) == 2
    assert await within(b_chat.get()) == (A, b"to all")
    await within(pa.send(C, "probe c"))
    assert await within(c_probe.get()) == (A, b"probe c")
    await within(c_probe_raw)  # the swarm's own event and the handle's are told apart
    assert c_raw == ["peersockets/probe"]

    # leave: onclose runs, and b no longer delivers "chat".
    sb.leave("chat")
    assert closed == ["chat"] and hb.closed and sb.topics == {"probe"}
    await within(ha.send(B, "after leave"))
    await within(pa.send(B, "probe b"))
    assert await within(b_probe.get()) == (A, b"probe b")
    assert b_chat.empty()

    # close: that handle stops, the topic's other handles go on.
    h1, on_h1 = inbox()
    h2, on_h2 = inbox()
    k1 = sb.join("again", onmessage=on_h1)
    sb.join("again", onmessage=on_h2)
    k1.close()
    assert k1.closed
    await within(sa.join("again").send(B, "x"))
    assert await within(h2.get()) == (A, b"x")
    assert h1.empty()
    with pytest.raises(swarmplex.ClosedError):
        await k1.send(A, "closed handle")

    # leave() with no name leaves everything.
    sb.leave()
    assert sb.topics == set()

    # Errors: not connected, bad input.
    with pytest.raises(swarmplex.ClosedError):
        await ha.send(KeyPair.generate().public_key, "x")
    with pytest.raises(TypeError):
        Peersockets("not a swarm")
    with pytest.raises(ValueError):
        sa.join("")
    with pytest.raises(ValueError):
        sa.join("x" * 2000)
    with pytest.raises(TypeError):
        sa.join(42)
    with pytest.raises(TypeError):
        sa.join("t", onmessage="not callable")
    with pytest.raises(TypeError):
        await ha.send(B, 42)
    with pytest.raises(ValueError):
        await ha.send(bytes(3), "x")
    with pytest.raises(TypeError):
        await ha.broadcast(None)


async def test_peersockets_over_a_plex(plexes):
    a, b = await plexes(), await plexes()
    a_peer, _ = await connect(a, b)
    got = asyncio.get_running_loop().create_future()

    async def onmessage(remote_key: bytes, msg: bytes) -> None:  # coroutine callbacks work too
        got.set_result((remote_key, msg))

    Peersockets(b.swarm).join("room", onmessage=onmessage)
    await within(Peersockets(a.swarm).join("room").send(a_peer.public_key, "hi"))
    assert await within(got) == (a.public_key, b"hi")
    assert a_peer.connected  # messages are not streams: no auto-close
