"""swarmplex: find peers by topic or key; one encrypted connection per peer, many streams over it.

An asyncio binding of the swarmplex Rust engine::

    import asyncio, swarmplex

    async def main():
        async with swarmplex.Testnet(3) as t:
            local = dict(bootstrap=t.bootstrap, listen=swarmplex.LOOPBACK_LISTEN, mdns=False)
            async with swarmplex.Swarm(**local) as a, swarmplex.Swarm(**local) as b:
                topic = swarmplex.topic("hello")
                await (await a.join(topic, server=True, client=False)).flushed()
                await b.join(topic, server=False, client=True)
                conn = await b.next_connection()
                conn.write(b"hi")
                await conn.drain()

    asyncio.run(main())

The APIs of p2plex, peersockets and peer-exchange on the same engine: :mod:`swarmplex.plex`
(:class:`Plex`, :class:`Peer`), :mod:`swarmplex.peersockets` (:class:`Peersockets`) and
:mod:`swarmplex.exchange` (:class:`Exchange`).

Engine logs go to the ``swarmplex`` logger; ``SWARMPLEX_LOG`` (env-filter syntax, e.g.
``debug``) chooses what the engine records (default ``warn,swarmplex=debug``).
"""

from __future__ import annotations

import atexit as _atexit

try:
    from . import _native
except ImportError as _err:  # a source tree or a copied package without the compiled extension
    import platform as _platform
    import sys as _sys

    raise ImportError(
        "swarmplex: the compiled extension swarmplex._native is missing or failed to load "
        f"({_err}). Wheels exist for CPython >= 3.9 on Linux x86_64 (manylinux_2_28, glibc >= 2.28)"
        f"; this is {_platform.python_implementation()} {_sys.version.split()[0]} on "
        f"{_sys.platform} {_platform.machine()}. Install a wheel (pip install swarmplex), or build "
        "from source with Rust (pip install swarmplex --no-binary swarmplex, or maturin develop "
        "in bindings-python/)."
    ) from _err
from ._errors import (
    ClosedError,
    ConnectError,
    DuplicateError,
    FirewalledError,
    InternalError,
    InvalidInputError,
    RelayLimitError,
    ResetError,
    SwarmplexError,
    SwarmplexTimeoutError,
)
from ._stream import Connection, Stream
from ._swarm import EVENTS, LOOPBACK_LISTEN, Discovery, Swarm
from .exchange import Exchange
from .peersockets import Peersockets, TopicHandle
from .plex import Peer, Plex
from ._types import KeyPair, Message, Path, PeerInfo, Reachability, topic
from .testnet import Testnet

__all__ = [
    "Swarm",
    "Exchange",
    "Plex",
    "Peer",
    "Peersockets",
    "TopicHandle",
    "Discovery",
    "Connection",
    "Stream",
    "Testnet",
    "KeyPair",
    "PeerInfo",
    "Path",
    "Reachability",
    "Message",
    "topic",
    "EVENTS",
    "LOOPBACK_LISTEN",
    "SwarmplexError",
    "InvalidInputError",
    "ConnectError",
    "ClosedError",
    "SwarmplexTimeoutError",
    "FirewalledError",
    "DuplicateError",
    "ResetError",
    "RelayLimitError",
    "InternalError",
]

# At interpreter exit: destroy live swarms and testnets, then close the gate through which Rust
# threads reach Python, so no engine thread touches the interpreter while it finalizes.
_atexit.register(_native._shutdown)
