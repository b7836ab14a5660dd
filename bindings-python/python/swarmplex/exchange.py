"""Peer exchange (the ``peer-exchange`` API): connect to a known peer by address, then ask
connected peers for more peers of the same network. The asked peer relays the connection
(circuit relay v2) when the new peer cannot be reached directly, and both ends try to punch
through NAT (DCUtR)::

    async with Exchange("my-network") as b, Exchange("my-network") as a, Exchange("my-network") as c:
        addr = await b.accept("tcp", host="127.0.0.1")
        await a.connect("tcp", "127.0.0.1", port=addr.port)
        await c.connect("tcp", "127.0.0.1", port=addr.port)
        peer = await a.get_new_peer()          # c, through b
        peer.write(b"hello"); await peer.drain()

Transports: ``"tcp"``, ``"quic"`` and ``"websocket"`` (plain ``ws`` over TCP, encrypted by
Noise like TCP). ``await b.unaccept("tcp")`` closes the listeners ``accept`` opened on a
transport; connections already made stay.

Peers are :class:`swarmplex.Connection` objects (asyncio-stream-like) with ``transport``
(``"tcp"``, ``"quic"``, ``"websocket"`` or ``"relay"``) and ``remote_address``. Only nodes with
the same network id connect to each other; every node relays within bounds (16 circuits, 4 per
peer, 1 MiB and 2 min each, 30 new circuits per peer per minute).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import List, Optional, Union

from ._errors import InvalidInputError
from ._stream import Connection
from ._swarm import Swarm
from ._types import KeyPair

TRANSPORTS = ("tcp", "quic", "websocket")


@dataclass(frozen=True)
class Address:
    """Where :meth:`Exchange.accept` listens (``multiaddr``: the bound address, e.g.
    ``/ip4/127.0.0.1/tcp/4001/ws`` for websocket)."""

    transport: str
    host: str
    port: int
    multiaddr: str


def _check_transport(transport: object) -> str:
    if not isinstance(transport, str):
        raise TypeError(f"transport must be a str, not {type(transport).__name__}")
    if transport not in TRANSPORTS:
        raise ValueError(f"unsupported transport {transport!r}: use 'tcp', 'quic' or 'websocket'")
    return transport


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0..65535, got {port}")
    return port


def _check_host(host: object) -> str:
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    return host


class Exchange:
    """A node of the peer-exchange network ``network_id`` (any non-empty string).

    :param seed: / :param key_pair: the identity (random by default).
    :param max_peers: cap on connections.
    :param firewall: as for :class:`swarmplex.Swarm`.
    """

    def __init__(
        self,
        network_id: str,
        *,
        seed: Optional[bytes] = None,
        key_pair: Optional[KeyPair] = None,
        max_peers: Optional[int] = None,
        firewall: object = None,
    ) -> None:
        if not isinstance(network_id, str):
            raise TypeError(f"network_id must be a str, not {type(network_id).__name__}")
        if not network_id:
            raise ValueError("network_id must not be empty")
        self.id = network_id
        self.swarm = Swarm(seed=seed, key_pair=key_pair, max_peers=max_peers, firewall=firewall, exchange=network_id)  # type: ignore[arg-type]
        #: What ``accept`` bound and ``unaccept`` has not closed yet.
        self._accepted: List[Address] = []

    async def __aenter__(self) -> "Exchange":
        self.swarm._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def public_key(self) -> bytes:
        """This node's public key."""
        return self.swarm.public_key

    @property
    def peers(self) -> List[Connection]:
        """The open connections."""
        return [c for c in self.swarm.connections if not c.closed]

    async def accept(self, transport: str, *, port: int = 0, host: str = "0.0.0.0") -> Address:
        """Accept connections on ``transport`` (``"tcp"``, ``"quic"`` or ``"websocket"``) at
        ``host``:``port`` (0: any free port); the bound :class:`Address`."""
        t = _check_transport(transport)
        self.swarm._start()
        bound = await self.swarm._native.listen_on(t, _check_host(host), _check_port(port))
        # /ip4/H/tcp/P, /ip4/H/udp/P/quic-v1, /ip4/H/tcp/P/ws (ip6 alike): host and port are
        # always the 2nd and 4th parts.
        parts = bound.split("/")
        addr = Address(transport=t, host=parts[2], port=int(parts[4]), multiaddr=bound)
        self._accepted.append(addr)
        return addr

    async def unaccept(self, transport: str) -> None:
        """Stop accepting connections on ``transport``: closes every listener :meth:`accept`
        opened on it and resolves once their sockets are closed. Connections already made
        stay. Raises :class:`swarmplex.InvalidInputError` (a :class:`ValueError`) when nothing
        accepts on ``transport``."""
        t = _check_transport(transport)
        mine = [a for a in self._accepted if a.transport == t]
        if not mine:
            raise InvalidInputError(f"not accepting on {t!r}: call accept({t!r}) first")
        # Forgotten before awaiting, so a concurrent unaccept does not close them twice.
        self._accepted = [a for a in self._accepted if a.transport != t]
        results = await asyncio.gather(
            *(self.swarm._native.stop_listening(a.multiaddr) for a in mine), return_exceptions=True
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def connect(self, transport: str, host: str, *, port: int) -> Connection:
        """Connect to a known peer; resolves with the connection once it is up."""
        t = _check_transport(transport)
        self.swarm._start()
        native = await self.swarm._native.connect(t, _check_host(host), _check_port(port))
        return self.swarm._wrap(native)

    async def get_new_peer(self, via: Union[Connection, bytes, None] = None) -> Connection:
        """Ask ``via`` (a connected peer, or its key; a random one when ``None``) for another
        peer and connect to it. Raises :class:`swarmplex.ConnectError` when there is no peer
        to ask or nothing to offer."""
        key: Optional[bytes]
        if isinstance(via, Connection):
            key = via.remote_public_key
        elif via is None or isinstance(via, (bytes, bytearray, memoryview)):
            key = bytes(via) if via is not None else None
        else:
            raise TypeError(f"via must be a Connection or bytes, not {type(via).__name__}")
        self.swarm._start()
        return self.swarm._wrap(await self.swarm._native.get_new_peer(key))

    async def next_peer(self) -> Connection:
        """The next new connection, incoming or outgoing."""
        return await self.swarm.next_connection()

    async def close(self) -> None:
        """Close every connection and stop."""
        await self.swarm.destroy()
