"""The asyncio Swarm: join topics, find peers, get connections."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generic,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    Union,
)

from . import _native
from ._errors import ClosedError, InvalidInputError, error_from_kind
from ._stream import Connection
from ._types import KeyPair, Message, PeerInfo, Reachability, check_key32

__all__ = ["Swarm", "Discovery", "EVENTS", "LOOPBACK_LISTEN"]

log = logging.getLogger("swarmplex")

#: Event names accepted by :meth:`Swarm.on`.
EVENTS = ("connection", "disconnected", "update", "ban", "topic", "stream", "message", "reachability")

#: Listen addresses for QUIC and TCP on 127.0.0.1 (random ports): pass as ``listen=`` for local
#: tests and demos.
LOOPBACK_LISTEN: List[str] = ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"]

FirewallResult = Union[bool, Awaitable[bool]]
Firewall = Callable[[bytes], FirewallResult]

T = TypeVar("T")
_END = object()


def _run_firewall(fn: Firewall, key: bytes, reply: Callable[[bool], None]) -> None:
    """Runs the user's firewall on the event loop and hands its verdict to the engine.

    A firewall that raises rejects the peer (and the exception is logged).
    """
    def verdict_of(task: "asyncio.Future[Any]") -> None:
        if task.cancelled():
            reply(True)
            return
        exc = task.exception()
        if exc is not None:
            log.error("firewall raised; rejecting the peer", exc_info=exc)
            reply(True)
        else:
            reply(bool(task.result()))

    try:
        result = fn(key)
        if inspect.isawaitable(result):
            asyncio.ensure_future(result).add_done_callback(verdict_of)
        else:
            reply(bool(result))
    except Exception:
        log.exception("firewall raised; rejecting the peer")
        reply(True)


_callback_tasks: Set["asyncio.Future[Any]"] = set()


def run_callback(cb: Callable[..., Any], *args: Any, what: str = "callback") -> None:
    """Calls an application callback; a coroutine function's coroutine runs as a task (kept
    referenced until done). What it raises is logged as "``what`` raised" (the ``swarmplex``
    logger), never propagated to the caller."""

    def done(task: "asyncio.Future[Any]") -> None:
        _callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s raised", what, exc_info=task.exception())

    try:
        r = cb(*args)
        if inspect.isawaitable(r):
            task = asyncio.ensure_future(r)
            _callback_tasks.add(task)
            task.add_done_callback(done)
    except Exception:
        log.exception("%s raised", what)


class _Feed(Generic[T]):
    """Items for async iterators; kept only while someone may read them."""

    def __init__(self) -> None:
        self.queue: "Optional[asyncio.Queue[Any]]" = None
        self.readers = 0
        self.closed = False

    def start(self) -> None:
        if self.queue is None:
            self.queue = asyncio.Queue()

    def put(self, item: T, has_listeners: bool) -> None:
        # Buffered when an iterator is active, or when nobody listens at all (so an iterator
        # started a moment later still sees it).
        if self.queue is not None and (self.readers > 0 or not has_listeners):
            self.queue.put_nowait(item)

    def close(self) -> None:
        self.closed = True
        if self.queue is not None:
            self.queue.put_nowait(_END)

    async def get(self) -> T:
        assert self.queue is not None
        item = await self.queue.get()
        if item is _END:
            self.queue.put_nowait(_END)  # for the other readers
            raise ClosedError("swarm destroyed")
        result: T = item
        return result

    def iterate(self) -> "_FeedIterator[T]":
        return _FeedIterator(self)


class _FeedIterator(Generic[T]):
    """An async iterator over a feed; counts as a reader from creation until it ends."""

    def __init__(self, feed: _Feed[T]) -> None:
        self._feed: Optional[_Feed[T]] = feed
        feed.readers += 1

    def __aiter__(self) -> "_FeedIterator[T]":
        return self

    async def __anext__(self) -> T:
        if self._feed is None:
            raise StopAsyncIteration
        try:
            return await self._feed.get()
        except ClosedError:
            self.aclose_now()
            raise StopAsyncIteration from None

    def aclose_now(self) -> None:
        """Stop iterating (connections are no longer buffered for this iterator)."""
        if self._feed is not None:
            self._feed.readers -= 1
            self._feed = None

    async def aclose(self) -> None:
        """Stop iterating."""
        self.aclose_now()

    def __del__(self) -> None:
        self.aclose_now()


def _check_bool(v: object, what: str) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"{what} must be a bool, not {type(v).__name__}")
    return v


def _check_str_list(v: object, what: str) -> Optional[List[str]]:
    if v is None:
        return None
    if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
        raise TypeError(f"{what} must be a list of str, not {type(v).__name__}")
    for a in v:
        if not isinstance(a, str):
            raise TypeError(f"{what} must be a list of str, found {type(a).__name__}")
    return list(v)


class Discovery:
    """A joined topic (Hyperswarm's ``PeerDiscovery``), returned by :meth:`Swarm.join`."""

    __slots__ = ("_d", "_swarm")

    def __init__(self, native: "_native.NativeDiscovery", swarm: "Swarm") -> None:
        self._d = native
        self._swarm = swarm

    @property
    def topic(self) -> bytes:
        """The 32-byte topic."""
        return self._d.topic

    async def flushed(self) -> None:
        """Wait until this topic's current round is done: announced (server) and/or looked up,
        with every peer found connected or given up (client)."""
        await self._d.flushed()

    async def refresh(self, *, server: Optional[bool] = None, client: Optional[bool] = None) -> None:
        """Start a new announce/lookup round now, optionally switching server/client mode."""
        if server is not None:
            _check_bool(server, "server")
        if client is not None:
            _check_bool(client, "client")
        self._d.refresh(server, client)

    async def destroy(self) -> None:
        """Leave the topic (existing connections stay open); returns once the announce is
        withdrawn from the DHT, so peers that look the topic up afterwards do not find us."""
        await self._d.destroy()

    def __repr__(self) -> str:
        return f"<swarmplex.Discovery topic={self.topic.hex()[:12]}>"


class Swarm:
    """A peer-to-peer swarm: joins topics, connects to peers, and reports connections.

    Use it as ``async with Swarm(bootstrap=[...]) as swarm:``; leaving the block destroys it
    (every remote sees its connection close at once).

    :param seed: 32 bytes to derive the identity from (deterministic key pair).
    :param key_pair: the identity (a :class:`KeyPair`); random when neither is given.
    :param bootstrap: DHT bootstrap multiaddrs (each ending in ``/p2p/<peer id>``). ``None``:
        ``$SWARMPLEX_BOOTSTRAP``, else the public network's nodes. ``[]``: none.
    :param network: a private network name (its own DHT protocol); ``None`` is the public DHT.
    :param max_peers: cap on connections plus dials in progress.
    :param firewall: ``firewall(remote_public_key) -> bool`` (or a coroutine function), asked
        once per peer before a connection is accepted; return ``True`` to **reject** (the peer
        is then banned). It runs on the event loop.
    :param mdns: LAN discovery by multicast DNS (on by default, as in the core; pass
        ``mdns=False`` for tests and anything that must stay off the LAN).
    :param listen: listen multiaddrs; default QUIC and TCP on every interface (see
        :data:`LOOPBACK_LISTEN`).
    :param exchange: make this a peer-exchange node of that network id (use
        :class:`swarmplex.Exchange`, which sets it).
    """

    def __init__(
        self,
        *,
        seed: Optional[bytes] = None,
        key_pair: Optional[KeyPair] = None,
        bootstrap: Optional[Sequence[str]] = None,
        network: Optional[str] = None,
        max_peers: Optional[int] = None,
        firewall: Optional[Firewall] = None,
        mdns: bool = True,
        listen: Optional[Sequence[str]] = None,
        exchange: Optional[str] = None,
    ) -> None:
        if seed is not None:
            seed = check_key32(seed, "seed")
        if key_pair is not None and not isinstance(key_pair, KeyPair):
            raise TypeError(f"key_pair must be a swarmplex.KeyPair, not {type(key_pair).__name__}")
        if seed is not None and key_pair is not None:
            raise InvalidInputError("give key_pair or seed, not both")
        if network is not None and not isinstance(network, str):
            raise TypeError(f"network must be a str, not {type(network).__name__}")
        if max_peers is not None:
            if isinstance(max_peers, bool) or not isinstance(max_peers, int):
                raise TypeError(f"max_peers must be an int, not {type(max_peers).__name__}")
            if max_peers < 1:
                raise InvalidInputError("max_peers must be at least 1")
        if firewall is not None and not callable(firewall):
            raise TypeError("firewall must be callable")
        _check_bool(mdns, "mdns")
        try:
            loop: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._native = _native.NativeSwarm(
            seed=seed,
            secret_key=key_pair.secret_key if key_pair is not None else None,
            bootstrap=_check_str_list(bootstrap, "bootstrap"),
            network=network,
            max_peers=max_peers,
            firewall=firewall,
            event_loop=loop,
            mdns=mdns,
            listen=_check_str_list(listen, "listen"),
            exchange=exchange,
        )
        self._key_pair = KeyPair(self._native.public_key, self._native.secret_key)
        self._listeners: Dict[str, List[Callable[..., Any]]] = {e: [] for e in EVENTS}
        self._conns: Dict[bytes, Connection] = {}
        self._incoming: _Feed[Connection] = _Feed()
        self._messages: _Feed[Message] = _Feed()
        self._pump: Optional["asyncio.Task[None]"] = None
        self._destroyed = False

    # -- lifecycle -----------------------------------------------------------------------------
    def _start(self) -> None:
        if self._pump is not None or self._destroyed:
            return
        loop = asyncio.get_running_loop()
        self._native.set_event_loop(loop)
        self._incoming.start()
        self._messages.start()
        self._pump = loop.create_task(self._run_events())

    async def __aenter__(self) -> "Swarm":
        self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.destroy()

    async def destroy(self) -> None:
        """Close every connection (remotes see it within milliseconds) and stop the swarm."""
        if self._destroyed:
            return
        self._destroyed = True
        await self._native.destroy()
        pump = self._pump
        if pump is not None and not pump.done():
            try:
                await asyncio.wait_for(asyncio.shield(pump), 5)
            except asyncio.TimeoutError:
                pump.cancel()
        self._incoming.close()
        self._messages.close()

    @property
    def destroyed(self) -> bool:
        """Whether :meth:`destroy` was called."""
        return self._destroyed

    # -- identity and state --------------------------------------------------------------------
    @property
    def key_pair(self) -> KeyPair:
        """This swarm's key pair."""
        return self._key_pair

    @property
    def public_key(self) -> bytes:
        """This swarm's 32-byte public key."""
        return self._key_pair.public_key

    @property
    def connections(self) -> Set[Connection]:
        """The open connections (one per remote peer)."""
        return {c for c in self._conns.values() if not c.closed}

    @property
    def peers(self) -> Dict[bytes, PeerInfo]:
        """Remote public key → :class:`PeerInfo` for every open connection."""
        return {k: c.peer_info for k, c in self._conns.items() if not c.closed}

    @property
    def connecting(self) -> int:
        """Dials in progress."""
        return self._native.connecting

    # -- discovery -----------------------------------------------------------------------------
    async def join(self, topic: bytes, *, server: bool = True, client: bool = True) -> Discovery:
        """Join a 32-byte topic: as a server announce ourselves, as a client look up servers and
        connect to each. Returns at once; ``await discovery.flushed()`` waits for the round."""
        t = check_key32(topic, "topic")
        _check_bool(server, "server")
        _check_bool(client, "client")
        if not server and not client:
            raise InvalidInputError("join needs server, client or both")
        self._start()
        return Discovery(self._native.join(t, server, client), self)

    async def leave(self, topic: bytes) -> None:
        """Stop announcing and looking up ``topic``; existing connections stay open. Returns once
        the announce is withdrawn from the DHT, so peers that look the topic up afterwards do not
        find us."""
        await self._native.leave(check_key32(topic, "topic"))

    async def flush(self) -> None:
        """Wait until every joined topic finished its current round."""
        self._start()
        await self._native.flush()

    def join_peer(self, public_key: bytes) -> None:
        """Keep a connection to this peer (reconnecting with backoff) until :meth:`leave_peer`."""
        self._native.join_peer(check_key32(public_key, "public_key"))

    def leave_peer(self, public_key: bytes) -> None:
        """Stop reconnecting to this peer; an open connection stays."""
        self._native.leave_peer(check_key32(public_key, "public_key"))

    async def listen(self) -> List[str]:
        """Announce this peer under its own key (so others find it with :meth:`find_peer` /
        :meth:`join_peer`); returns the listen addresses."""
        self._start()
        return await self._native.listen()

    async def reachability(self) -> Reachability:
        """Whether others can dial us, the addresses we advertise and the relays we hold. A
        ``"reachability"`` event (``state, symmetric``) tells when it changes."""
        state, symmetric, external, relays = await self._native.reachability()
        return Reachability(state, symmetric, list(external), list(relays))

    async def listen_addresses(self) -> List[str]:
        """The listen multiaddrs (waits for the first)."""
        return await self._native.listen_addrs()

    async def find_peer(self, public_key: bytes) -> Connection:
        """Find a peer that called :meth:`listen` and connect to it (kept like :meth:`join_peer`).
        Bound it with a timeout."""
        k = check_key32(public_key, "public_key")
        self._start()
        return self._wrap(await self._native.find_peer(k))

    async def topics(self) -> List[Tuple[bytes, bool, bool]]:
        """Every joined topic as ``(topic, server, client)``."""
        return await self._native.topics()

    def ban(self, public_key: bytes) -> None:
        """Close this peer's connection and refuse it from now on."""
        self._native.ban(check_key32(public_key, "public_key"))

    async def suspend(self) -> None:
        """Close every connection and pause discovery until :meth:`resume`."""
        self._native.suspend()

    async def resume(self) -> None:
        """Restart discovery after :meth:`suspend`."""
        self._native.resume()

    # -- messages ------------------------------------------------------------------------------
    def join_messages(self, topic: str) -> None:
        """Receive topic messages sent to ``topic`` (see :meth:`Connection.send_message`)."""
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, not {type(topic).__name__}")
        self._native.join_messages(topic)

    def leave_messages(self, topic: str) -> None:
        """Stop receiving topic messages for ``topic``."""
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, not {type(topic).__name__}")
        self._native.leave_messages(topic)

    def messages(self) -> "_FeedIterator[Message]":
        """``async for msg in swarm.messages():`` every topic message received (joined topics)."""
        self._start()
        return self._messages.iterate()

    # -- connections as events -----------------------------------------------------------------
    def iter_connections(self) -> "_FeedIterator[Connection]":
        """``async for conn in swarm.iter_connections():`` each new connection, in or out.

        Ends when the swarm is destroyed. Connections that arrived while nobody iterated and no
        ``"connection"`` callback was registered are delivered first.
        """
        self._start()
        return self._incoming.iterate()

    async def next_connection(self) -> Connection:
        """The next new connection (see :meth:`iter_connections`)."""
        self._start()
        self._incoming.readers += 1
        try:
            return await self._incoming.get()
        finally:
            self._incoming.readers -= 1

    def on(self, event: str, callback: Optional[Callable[..., Any]] = None) -> Any:
        """Register ``callback`` for ``event`` (coroutine functions allowed). Usable as a
        decorator: ``@swarm.on("connection")``.

        Events and arguments: ``connection(conn)``, ``disconnected(remote_public_key, error)``,
        ``update(connecting, connections)``, ``ban(remote_public_key)``,
        ``topic(remote_public_key, topic)``, ``stream(remote_public_key, name, shared)``,
        ``message(msg)``, ``reachability(state, symmetric)``.
        """
        if event not in self._listeners:
            raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
        if callback is None:
            def deco(cb: Callable[..., Any]) -> Callable[..., Any]:
                self.on(event, cb)
                return cb

            return deco
        if not callable(callback):
            raise TypeError("callback must be callable")
        self._listeners[event].append(callback)
        try:
            self._start()
        except RuntimeError:
            pass  # no running loop yet: starts with `async with` or the first async call
        return callback

    def off(self, event: str, callback: Callable[..., Any]) -> None:
        """Remove a callback registered with :meth:`on`."""
        if event not in self._listeners:
            raise ValueError(f"unknown event {event!r}")
        try:
            self._listeners[event].remove(callback)
        except ValueError:
            pass

    def _emit(self, event: str, *args: Any) -> None:
        for cb in list(self._listeners[event]):
            run_callback(cb, *args, what=f"{event} callback")

    def _wrap(self, native: "_native.NativeConnection") -> Connection:
        known = self._conns.get(native.remote_public_key)
        if known is not None and known.handshake_hash == native.handshake_hash:
            return known
        conn = Connection(native)
        self._conns[conn.remote_public_key] = conn
        return conn

    async def _run_events(self) -> None:
        try:
            while True:
                ev = await self._native.next_event()
                if ev is None:
                    return
                try:
                    self._dispatch(ev)
                except Exception:
                    log.exception("dispatching %s event", ev[0])
        finally:
            self._incoming.close()
            self._messages.close()

    def _dispatch(self, ev: Tuple[Any, ...]) -> None:
        kind = ev[0]
        if kind == "connection":
            conn = self._wrap(ev[1])
            self._incoming.put(conn, bool(self._listeners["connection"]))
            self._emit("connection", conn)
        elif kind == "disconnected":
            _, remote, code, message = ev
            known = self._conns.get(remote)
            if known is not None and known.closed:
                del self._conns[remote]
            self._emit("disconnected", remote, error_from_kind(code, message))
        elif kind == "message":
            msg = Message(ev[1], ev[2], ev[3])
            self._messages.put(msg, bool(self._listeners["message"]))
            self._emit("message", msg)
        else:
            self._emit(kind, *ev[1:])

    def __repr__(self) -> str:
        return f"<swarmplex.Swarm {self.public_key.hex()[:12]} connections={len(self.connections)}>"
