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
import weakref
from typing import Any, AsyncIterator, Awaitable, Callable, List, Optional, Set, Tuple, TypeVar

from . import _native
from ._errors import ClosedError, InvalidInputError, SwarmplexError, SwarmplexTimeoutError
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


class Peer:
    """One connection to a remote peer (p2plex's ``Peer``); every connection gets a new Peer.

    Streams opened on a Peer whose connection is gone reopen on a new connection to the same
    key (see the module's notes). The behaviour is the core's ``swarmplex::plex::Peer``.
    """

    def __init__(self, plex: "Plex", native: "_native.NativePeer") -> None:
        self._plex = plex
        self._n = native
        self._public_key = native.public_key
        self._incoming = native.incoming
        self._announced = asyncio.Event()  # the plex reported it ("connection")

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
        return list(self._n.topics)

    @property
    def connected(self) -> bool:
        """Whether new streams go over this Peer's connection: it is open and not closing."""
        return self._n.connected

    # -- streams ---------------------------------------------------------------------------
    async def create_stream(self, stream_id: str) -> Stream:
        """Open a named stream; the remote takes it with :meth:`receive_stream` (or
        :meth:`next_stream`)."""
        return await self._open(self._n.create_stream, stream_id)

    async def receive_stream(self, stream_id: str) -> Stream:
        """Take the remote's :meth:`create_stream` with this id (waits for it). The stream is
        claimed when this is called, so one that already arrived unclaimed goes to it."""
        return await self._open(self._n.receive_stream, stream_id)

    async def create_shared_stream(self, stream_id: str) -> Stream:
        """Both sides call this with one id and get the two ends of one stream (call both, then
        await: one side's call resolves only once the other side asked too)."""
        return await self._open(self._n.create_shared_stream, stream_id)

    async def _open(self, opener: Callable[[str], Any], stream_id: str) -> Stream:
        name = _check_name(stream_id, "stream id")
        if self._plex.closed:
            raise ClosedError("plex closed")
        return Stream(await opener(name))

    async def next_stream(self) -> Tuple[Stream, str]:
        """The next stream the remote opened that no :meth:`receive_stream` /
        :meth:`create_shared_stream` claimed, as ``(stream, id)``. Raises
        :class:`swarmplex.ClosedError` once the connection is gone."""
        native, stream_id = await self._n.next_stream()
        return Stream(native), stream_id

    async def iter_streams(self) -> AsyncIterator[Tuple[Stream, str]]:
        """``async for stream, id in peer.iter_streams():`` each :meth:`next_stream` until the
        connection is gone."""
        while True:
            try:
                item = await self.next_stream()
            except SwarmplexError:
                if self._n.live:
                    raise
                return
            yield item

    # -- the connection --------------------------------------------------------------------
    def ban(self) -> None:
        """Close the connection and refuse this peer from now on."""
        self._n.ban()

    async def disconnect(self) -> None:
        """Close the connection (every stream on it), stop reconnecting to this key, and
        return once the connection ended."""
        await self._n.disconnect()

    async def wait_disconnected(self) -> None:
        """Return once this Peer's connection has ended (for any reason)."""
        await self._n.disconnected()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closing" if self._n.live else "disconnected"
        return f"<swarmplex.Peer {self._public_key.hex()[:12]} {state}>"


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
        # The core's plex; this Plex announces our key itself in _start (awaited there).
        self._native = _native.NativePlex(self._swarm._native, False)
        self._by_id: "weakref.WeakValueDictionary[int, Peer]" = weakref.WeakValueDictionary()
        self._feed: _Feed[Peer] = _Feed()
        self._callbacks: List[PeerCallback] = []
        self._started = False
        self._closed = False
        # The core's plex saw each swarm event before this handler runs.
        self._swarm.on("connection", self._on_connection)

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
        await self._native.destroy()
        await self._swarm.destroy()
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
        """The currently connected peers (a new set on every call)."""
        return {self._peer_of(n) for n in self._native.peers()}

    # -- peers as events -------------------------------------------------------------------
    def _peer_of(self, native: "_native.NativePeer") -> Peer:
        """The Peer object of a native peer (one per connection)."""
        peer = self._by_id.get(native.id)
        if peer is None:
            peer = self._by_id[native.id] = Peer(self, native)
        return peer

    def _on_connection(self, conn: Connection) -> None:
        native = self._native.peer(conn.remote_public_key)
        if self._closed or native is None:
            return
        peer = self._peer_of(native)
        if peer._announced.is_set():
            return
        peer._announced.set()
        self._feed.start()
        self._feed.put(peer, bool(self._callbacks))
        for cb in list(self._callbacks):
            run_callback(cb, peer)

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
    async def _search(self, search: Awaitable["_native.NativePeer"]) -> Peer:
        """The Peer a native search found, once it was reported (``"connection"``). A timeout
        is also an :class:`asyncio.TimeoutError` (a distinct class before Python 3.11)."""
        try:
            native = await search
        except SwarmplexTimeoutError as e:
            if asyncio.TimeoutError is TimeoutError:
                raise
            raise asyncio.TimeoutError(str(e)) from e
        return await self._found(native)

    async def _found(self, native: "_native.NativePeer") -> Peer:
        """The Peer of a found native peer, once it was reported (``"connection"``)."""
        peer = self._peer_of(native)
        if native.live:
            await peer._announced.wait()
        return peer

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
        return await self._search(self._native.find_by_public_key(key, limit))

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
        if not announce and not lookup:
            raise InvalidInputError("join needs announce, lookup or both")
        await self._start()
        return await self._search(self._native.find_by_topic_and_public_key(t, key, announce, lookup, limit))

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
        return f"<swarmplex.Plex {self.public_key.hex()[:12]} peers={len(self.peers)}>"
