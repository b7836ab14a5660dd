"""p2plex's API on the swarmplex engine: peers by key, many named streams per peer, and
connections that close by themselves once their last stream ended::

    async with Plex(bootstrap=...) as a, Plex(bootstrap=...) as b:
        peer = await a.find_by_public_key(b.public_key, timeout=20)
        stream = await peer.create_stream("example")
        stream.write(b"Hello World!")
        stream.write_eof()
        # b: peer = await b.next_peer(); s = await peer.receive_stream("example")

What differs from the original p2plex (mirrors ``swarmplex/p2plex`` of the npm package):

- Encryption, authentication and multiplexing are the engine's: every peer has exactly one
  connection (deduplicated by the engine, whatever announce/lookup both sides use), and
  streams are the engine's named/shared streams, returned as :class:`swarmplex.Stream`.
- ``find_by_*`` take ``timeout`` (seconds; raises :class:`asyncio.TimeoutError`) and are
  cancelled by cancelling the task.
- Auto-close: a stream counts as ended once both directions ended (we read its end — a read
  returned ``b""`` — and our ``write_eof()``/``close()`` was sent) or it was reset (``abort()``,
  or a read/drain/flush that failed). When the last stream of a connection ended, this side
  stops reconnecting to the peer by key (``leave_peer``) and ends the connection's socket; the
  connection closes once both sides did that, and ``peer.wait_disconnected()`` returns on both
  sides. A connection that never carried a stream is never auto-closed (but it closes when the
  remote ended its socket while no stream is open here). Peers found through a topic that is
  still joined with lookup are reconnected by the swarm (as Hyperswarm does).
- Reopen: every connection gets a new :class:`Peer`. ``create_stream`` / ``receive_stream`` /
  ``create_shared_stream`` on a Peer whose connection is gone (or closing) first waits for the
  old connection to end, then finds the remote again by key (bounded by
  :data:`RECONNECT_TIMEOUT`; both sides get a new Peer through ``next_peer``/``on``) and opens
  the stream on that new connection, where it counts toward that connection's auto-close. The
  remote must still be findable by key (``listen_self``) or reconnect to us itself.
- The connection's socket carries no p2plex data: the Plex reads and discards it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Deque,
    Dict,
    List,
    Optional,
    Set,
    Tuple,
    TypeVar,
    cast,
)

from . import _native
from ._errors import ClosedError, InvalidInputError, SwarmplexError
from ._stream import Connection, Stream, _check_name
from ._swarm import Swarm, _check_bool, _Feed, _FeedIterator, run_callback
from ._types import KeyPair, check_key32

__all__ = ["Plex", "Peer", "RECONNECT_TIMEOUT"]

log = logging.getLogger("swarmplex")

#: How long reopening a stream on a disconnected :class:`Peer` looks for the remote (seconds).
RECONNECT_TIMEOUT = 30.0

T = TypeVar("T")
PeerCallback = Callable[["Peer"], Any]


def _check_timeout(timeout: object) -> Optional[float]:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    if not timeout >= 0:
        raise InvalidInputError(f"timeout must be a non-negative number of seconds, got {timeout}")
    return float(timeout)


class _Tracked:
    """A stream's native handle, watched so that its :class:`Peer` knows when the stream ended:
    its end was read and ours was sent, or it was reset or failed. Everything else passes
    through (the :class:`Stream` wrapping it is the package's ordinary one)."""

    def __init__(self, native: "_native.NativeStream", peer: "Peer") -> None:
        self._n = native
        self._peer = peer
        self._read_end = False
        self._write_end = False
        self._ended = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._n, name)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._peer._stream_ended(self)

    def _side_ended(self, read: bool) -> None:
        if read:
            self._read_end = True
        else:
            self._write_end = True
        if self._read_end and self._write_end:
            self._end()

    async def _io(self, aw: Awaitable[T], at_end: Optional[Callable[[T], bool]] = None) -> T:
        try:
            result = await aw
        except SwarmplexError:
            self._end()  # reset by the remote, or the connection died
            raise
        if at_end is not None and (at_end(result) or self._n.at_eof()):
            self._side_ended(read=True)
        return result

    def read(self, n: int) -> Awaitable[bytes]:
        return self._io(self._n.read(n), lambda d: not d)

    def read_all(self) -> Awaitable[bytes]:
        return self._io(self._n.read_all(), lambda d: True)

    def readexactly(self, n: int) -> Awaitable[bytes]:
        return self._io(self._n.readexactly(n), lambda d: len(d) < n)

    def readuntil(self, sep: bytes, limit: int) -> Awaitable[Tuple[bytes, int]]:
        return self._io(self._n.readuntil(sep, limit), lambda r: r[1] == 1)

    def drain(self) -> Awaitable[None]:
        return self._io(self._n.drain())

    def flush(self) -> Awaitable[None]:
        return self._io(self._n.flush())

    def write_eof(self) -> None:
        first = not self._n.eof_written()
        try:
            self._n.write_eof()
        except SwarmplexError:
            self._end()  # an earlier write failed
            raise
        if first:
            asyncio.ensure_future(self._n.flush()).add_done_callback(self._eof_sent)

    def _eof_sent(self, fut: "asyncio.Future[None]") -> None:
        if fut.cancelled() or fut.exception() is not None:
            self._end()
        else:
            self._side_ended(read=False)

    def reset(self) -> None:
        self._n.reset()
        self._end()


class Peer:
    """One connection to a remote peer (p2plex's ``Peer``); every connection gets a new Peer.

    Streams opened on a Peer whose connection is gone reopen on a new connection to the same
    key (see the module's notes).
    """

    def __init__(self, plex: "Plex", conn: Connection) -> None:
        self._plex = plex
        self._conn = conn
        self._public_key = conn.remote_public_key
        self._incoming = not conn.is_initiator
        self._topics: List[bytes] = list(conn.peer_info.topics)
        self._live = True  # the connection is open
        self._closing = False  # we ended the socket (auto-close) or disconnect() runs
        self._remote_ended = False  # the remote ended the socket (it is closing)
        self._carried = False  # a stream was opened on this connection
        self._streams: Set[_Tracked] = set()
        self._opening = 0  # stream opens under way
        self._parked: Deque[Tuple[str, bool]] = deque()  # inbound streams nobody asked for yet
        self._news = asyncio.Event()
        self._gone = asyncio.Event()

    # -- what the peer is ------------------------------------------------------------------
    @property
    def public_key(self) -> bytes:
        """The remote's 32-byte public key."""
        return self._public_key

    @property
    def incoming(self) -> bool:
        """Whether the remote dialed the connection (``False`` when we did)."""
        return self._incoming

    @property
    def topics(self) -> List[bytes]:
        """Topics this peer was discovered under (may be empty for incoming connections)."""
        return list(self._topics)

    @property
    def connected(self) -> bool:
        """Whether new streams go over this Peer's connection: it is open and not closing."""
        return self._live and not self._closing and not self._remote_ended

    def _add_topic(self, topic: bytes) -> None:
        if topic not in self._topics:
            self._topics.append(topic)

    # -- streams ---------------------------------------------------------------------------
    async def create_stream(self, stream_id: str) -> Stream:
        """Open a named stream; the remote takes it with :meth:`receive_stream` (or
        :meth:`next_stream`)."""
        return await self._open("create", _check_name(stream_id, "stream id"))

    async def receive_stream(self, stream_id: str) -> Stream:
        """Take the remote's :meth:`create_stream` with this id (waits for it)."""
        return await self._open("receive", _check_name(stream_id, "stream id"))

    async def create_shared_stream(self, stream_id: str) -> Stream:
        """Both sides call this with one id and get the two ends of one stream (call both, then
        await: one side's call resolves only once the other side asked too)."""
        return await self._open("shared", _check_name(stream_id, "stream id"))

    async def next_stream(self) -> Tuple[Stream, str]:
        """The next stream the remote opened that no :meth:`receive_stream` /
        :meth:`create_shared_stream` was waiting for, as ``(stream, id)``. Raises
        :class:`swarmplex.ClosedError` once the connection is gone."""
        while True:
            while not self._parked:
                if not self._live:
                    raise ClosedError("peer disconnected")
                self._news.clear()
                await self._news.wait()
            stream_id, shared = self._parked.popleft()
            # Taken without waiting: a receive may have taken it since its event (then skip it).
            stream = self._conn.take_parked_stream(stream_id, shared)
            if stream is not None:
                return self._track(stream), stream_id

    async def iter_streams(self) -> AsyncIterator[Tuple[Stream, str]]:
        """``async for stream, id in peer.iter_streams():`` each :meth:`next_stream` until the
        connection is gone."""
        while True:
            try:
                item = await self.next_stream()
            except SwarmplexError:
                if self._live:
                    raise
                return
            yield item

    # The Peer whose connection carries a new stream: this one while its connection is open and
    # not closing; otherwise the current Peer of this key, found again once the old connection
    # ended.
    async def _carrier(self) -> "Peer":
        while True:
            if self._plex.closed:
                raise ClosedError("plex closed")
            if self.connected:
                return self
            if self._live:
                await self._gone.wait()
                continue
            current = self._plex._by_key.get(self._public_key)
            if current is not None and current is not self:
                return await current._carrier()
            await self._plex.find_by_public_key(self._public_key, timeout=RECONNECT_TIMEOUT)

    async def _open(self, kind: str, stream_id: str) -> Stream:
        carrier = await self._carrier()
        if kind != "create":
            try:  # the remote's stream is already parked: this call takes it
                carrier._parked.remove((stream_id, kind == "shared"))
            except ValueError:
                pass
        return await carrier._open_here(kind, stream_id)

    async def _open_here(self, kind: str, stream_id: str) -> Stream:
        conn = self._conn
        opener = {"create": conn.create_stream, "receive": conn.receive_stream, "shared": conn.create_shared_stream}[kind]
        self._opening += 1
        opened = False
        try:
            stream = await opener(stream_id)
            opened = True
        finally:
            self._opening -= 1
            if not opened:
                self._check_idle()
        return self._track(stream)

    def _track(self, stream: Stream) -> Stream:
        """``stream``, counted toward this connection's auto-close."""
        tracked = _Tracked(stream._s, self)
        self._streams.add(tracked)
        self._carried = True
        return Stream(cast("_native.NativeStream", tracked))

    def _on_stream(self, stream_id: str, shared: bool) -> None:
        # Queued even while a receive of this id is under way: it takes one parked stream, and
        # there may be more; next_stream skips the notices whose stream a receive took.
        self._parked.append((stream_id, shared))
        self._news.set()

    # -- auto-close ------------------------------------------------------------------------
    def _idle(self) -> bool:
        return not self._streams and not self._opening

    def _stream_ended(self, tracked: _Tracked) -> None:
        self._streams.discard(tracked)
        self._check_idle()

    def _check_idle(self) -> None:
        if not self._live or not self._carried or not self._idle() or self._plex.closed:
            return
        if not self._closing:
            # The last stream ended: stop reconnecting, end the socket (see the module's notes).
            self._closing = True
            try:
                self._plex.swarm.leave_peer(self._public_key)
            except SwarmplexError:
                pass
            try:
                self._conn.write_eof()
            except SwarmplexError:
                pass  # the socket failed: the connection is ending anyway
        if self._remote_ended:
            self._conn.close()

    async def _watch(self) -> None:
        """Reads the socket to its end (the remote is closing), then waits for the close."""
        conn = self._conn
        try:
            while await conn.read(1 << 16):
                pass
            self._remote_ended = True
            if self._idle():
                self._closing = True
                conn.close()
        except SwarmplexError:
            pass
        await conn.wait_closed()
        self._on_disconnection()

    def _on_disconnection(self) -> None:
        if not self._live:
            return
        self._live = False
        self._closing = False
        self._parked.clear()
        self._plex.peers.discard(self)
        self._gone.set()
        self._news.set()

    # -- the connection --------------------------------------------------------------------
    def ban(self) -> None:
        """Close the connection and refuse this peer from now on."""
        self._plex.swarm.ban(self._public_key)

    async def disconnect(self) -> None:
        """Close the connection (every stream on it), stop reconnecting to this key, and
        return once the connection ended."""
        try:
            self._plex.swarm.leave_peer(self._public_key)
        except SwarmplexError:
            pass
        if not self._live:
            return
        self._closing = True
        self._conn.close()
        await self._gone.wait()

    async def wait_disconnected(self) -> None:
        """Return once this Peer's connection has ended (for any reason)."""
        await self._gone.wait()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closing" if self._live else "disconnected"
        return f"<swarmplex.Peer {self._public_key.hex()[:12]} {state} streams={len(self._streams)}>"


class Plex:
    """A p2plex instance: a :class:`swarmplex.Swarm` whose connections are :class:`Peer` objects
    with named streams, closed once their last stream ended (see the module's notes).

    Use it as ``async with Plex(...) as plex:``; leaving the block closes it.

    :param key_pair: / :param seed: the identity (random by default).
    :param listen_self: announce ourselves under our own key so that others find us with
        :meth:`find_by_public_key` (default ``True``).
    :param swarm_opts: passed to :class:`swarmplex.Swarm` (``bootstrap``, ``listen``, ``mdns``,
        ``firewall``, ...).
    """

    def __init__(
        self,
        *,
        key_pair: Optional[KeyPair] = None,
        seed: Optional[bytes] = None,
        listen_self: bool = True,
        **swarm_opts: Any,
    ) -> None:
        self._listen_self = _check_bool(listen_self, "listen_self")
        self._swarm = Swarm(key_pair=key_pair, seed=seed, **swarm_opts)
        self._peers: Set[Peer] = set()
        self._by_key: Dict[bytes, Peer] = {}  # remote key -> the Peer of its latest connection
        self._waiters: Dict[bytes, Set["asyncio.Future[Peer]"]] = {}
        self._feed: _Feed[Peer] = _Feed()
        self._callbacks: List[PeerCallback] = []
        self._tasks: Set["asyncio.Task[None]"] = set()
        self._started = False
        self._closed = False
        self._swarm.on("connection", self._on_connection)
        self._swarm.on("stream", self._on_stream)
        self._swarm.on("topic", self._on_topic)

    # -- lifecycle -------------------------------------------------------------------------
    async def _start(self) -> None:
        if self._closed:
            raise ClosedError("plex closed")
        if self._started:
            return
        self._started = True
        self._swarm._start()
        self._feed.start()
        if self._listen_self:
            await self._swarm.listen()

    async def __aenter__(self) -> "Plex":
        await self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect from every peer, leave the network and stop (p2plex's ``destroy``).
        Pending finds raise :class:`swarmplex.ClosedError`."""
        if self._closed:
            return
        self._closed = True
        for waiters in self._waiters.values():
            for w in waiters:
                if not w.done():
                    w.set_exception(ClosedError("plex closed"))
        self._waiters.clear()
        await self._swarm.destroy()
        for peer in list(self._peers):
            peer._on_disconnection()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._feed.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # -- identity and state ----------------------------------------------------------------
    @property
    def swarm(self) -> Swarm:
        """The underlying :class:`swarmplex.Swarm` (its connection sockets belong to the Plex)."""
        return self._swarm

    @property
    def key_pair(self) -> KeyPair:
        """This peer's key pair (keep it for a persistent identity)."""
        return self._swarm.key_pair

    @property
    def public_key(self) -> bytes:
        """This peer's 32-byte public key: others find us by it."""
        return self._swarm.public_key

    @property
    def peers(self) -> Set[Peer]:
        """The currently connected peers (a live set: copy it to iterate while awaiting)."""
        return self._peers

    # -- peers as events -------------------------------------------------------------------
    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("plex task failed", exc_info=task.exception())

    def _on_connection(self, conn: Connection) -> None:
        if self._closed:
            return
        peer = Peer(self, conn)
        self._by_key[peer.public_key] = peer
        self._peers.add(peer)
        self._spawn(peer._watch())
        for w in self._waiters.pop(peer.public_key, ()):
            if not w.done():
                w.set_result(peer)
        self._feed.start()
        self._feed.put(peer, bool(self._callbacks))
        for cb in list(self._callbacks):
            run_callback(cb, peer)

    def _on_stream(self, remote: bytes, stream_id: str, shared: bool) -> None:
        peer = self._by_key.get(remote)
        if peer is not None and peer._live:
            peer._on_stream(stream_id, shared)

    def _on_topic(self, remote: bytes, topic: bytes) -> None:
        peer = self._by_key.get(remote)
        if peer is not None:
            peer._add_topic(topic)

    def on(self, event: str, callback: Optional[PeerCallback] = None) -> Any:
        """Register ``callback(peer)`` for ``"connection"``: every new :class:`Peer`, incoming or
        outgoing (coroutine functions allowed). Usable as a decorator:
        ``@plex.on("connection")``."""
        if event != "connection":
            raise ValueError(f"unknown event {event!r}; expected 'connection'")
        if callback is None:

            def deco(cb: PeerCallback) -> PeerCallback:
                self.on(event, cb)
                return cb

            return deco
        if not callable(callback):
            raise TypeError("callback must be callable")
        self._callbacks.append(callback)
        return callback

    def off(self, event: str, callback: PeerCallback) -> None:
        """Remove a callback registered with :meth:`on`."""
        if event != "connection":
            raise ValueError(f"unknown event {event!r}; expected 'connection'")
        try:
            self._callbacks.remove(callback)
        except ValueError:
            pass

    def iter_peers(self) -> "_FeedIterator[Peer]":
        """``async for peer in plex.iter_peers():`` each new :class:`Peer`, in or out. Ends when
        the plex is closed. Peers that arrived while nobody iterated and no ``"connection"``
        callback was registered are delivered first."""
        self._swarm._start()
        self._feed.start()
        return self._feed.iterate()

    async def next_peer(self) -> Peer:
        """The next new :class:`Peer` (see :meth:`iter_peers`)."""
        await self._start()
        self._feed.readers += 1
        try:
            return await self._feed.get()
        finally:
            self._feed.readers -= 1

    # -- finding peers ---------------------------------------------------------------------
    async def _wait_peer(self, key: bytes, timeout: Optional[float], give_up: Callable[[], Awaitable[None]]) -> Peer:
        """The Peer for ``key`` once it is connected; ``give_up()`` runs when the last waiter for
        ``key`` times out or is cancelled."""
        peer = self._by_key.get(key)
        if peer is not None and peer.connected:
            return peer
        fut: "asyncio.Future[Peer]" = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, set()).add(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except BaseException:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    del self._waiters[key]
            if not waiters and not self._closed:
                await give_up()
            raise

    async def find_by_public_key(self, public_key: bytes, *, timeout: Optional[float] = None) -> Peer:
        """Find the peer with this key (it must ``listen_self``) and connect to it; returns its
        :class:`Peer` (the current one if already connected).

        :param timeout: seconds; raises :class:`asyncio.TimeoutError` when it passes. Cancelling
            the calling task cancels the search too.
        """
        key = check_key32(public_key, "public_key")
        limit = _check_timeout(timeout)
        if key == self.public_key:
            raise InvalidInputError("cannot find yourself")
        await self._start()
        peer = self._by_key.get(key)
        if peer is not None and peer.connected:
            return peer
        self._swarm.join_peer(key)  # raises InvalidInputError for a key that is not a valid point

        async def give_up() -> None:
            try:
                self._swarm.leave_peer(key)
            except SwarmplexError:
                pass

        return await self._wait_peer(key, limit, give_up)

    async def find_by_topic_and_public_key(
        self,
        topic: bytes,
        public_key: bytes,
        *,
        announce: bool = False,
        lookup: bool = True,
        timeout: Optional[float] = None,
    ) -> Peer:
        """Join the 32-byte ``topic`` (see :meth:`join`) and return the :class:`Peer` with
        ``public_key`` once connected to it. A timeout or cancellation leaves the topic again
        unless it was joined before.

        :param timeout: seconds; raises :class:`asyncio.TimeoutError` when it passes.
        """
        t = check_key32(topic, "topic")
        key = check_key32(public_key, "public_key")
        _check_bool(announce, "announce")
        _check_bool(lookup, "lookup")
        limit = _check_timeout(timeout)
        await self._start()
        peer = self._by_key.get(key)
        if peer is not None and peer.connected:
            return peer
        was_joined = any(joined == t for joined, _, _ in await self._swarm.topics())
        await self._swarm.join(t, server=announce, client=lookup)

        async def give_up() -> None:
            if not was_joined:
                await self._swarm.leave(t)

        return await self._wait_peer(key, limit, give_up)

    async def join(self, topic: bytes, *, announce: bool = False, lookup: bool = True) -> None:
        """Announce (``announce``) and/or look up (``lookup``) the 32-byte ``topic``; returns once
        the first full round is done (peers found arrive as :class:`Peer` objects). To go on
        without waiting, run it as a task."""
        t = check_key32(topic, "topic")
        _check_bool(announce, "announce")
        _check_bool(lookup, "lookup")
        await self._start()
        d = await self._swarm.join(t, server=announce, client=lookup)
        await d.flushed()

    async def leave(self, topic: bytes) -> None:
        """Stop announcing and looking up ``topic`` (connections stay)."""
        await self._swarm.leave(check_key32(topic, "topic"))

    def __repr__(self) -> str:
        return f"<swarmplex.Plex {self.public_key.hex()[:12]} peers={len(self._peers)}>"
