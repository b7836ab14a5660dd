"""Local testnets: DHT bootstrap nodes on 127.0.0.1 for tests, demos and examples.

>>> async with Testnet(3) as t:
...     async with Swarm(bootstrap=t.bootstrap, listen=LOOPBACK_LISTEN, mdns=False) as swarm:
...         ...
"""

from __future__ import annotations

from typing import List, Optional

from . import _native
from ._errors import ClosedError, InvalidInputError

__all__ = ["Testnet"]


class Testnet:
    """``size`` DHT server nodes on 127.0.0.1 that only know each other.

    Use as ``async with Testnet(3) as t:`` and pass ``t.bootstrap`` to each :class:`Swarm`.
    """

    def __init__(self, size: int = 3, *, network: Optional[str] = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"size must be an int, not {type(size).__name__}")
        if size < 1:
            raise InvalidInputError("a testnet needs at least one node")
        if network is not None and not isinstance(network, str):
            raise TypeError(f"network must be a str, not {type(network).__name__}")
        self._size = size
        self._network = network
        self._native: Optional[_native.NativeTestnet] = None

    async def start(self) -> "Testnet":
        """Start the nodes (done by ``async with``)."""
        if self._native is None:
            self._native = await _native.testnet_start(self._size, self._network)
        return self

    @property
    def bootstrap(self) -> List[str]:
        """The nodes' QUIC and TCP multiaddrs, each ending in ``/p2p/<peer id>``."""
        if self._native is None:
            raise ClosedError("testnet not started (use `async with Testnet(n) as t`)")
        return self._native.bootstrap

    async def destroy(self) -> None:
        """Stop every node."""
        if self._native is not None:
            await self._native.destroy()

    async def __aenter__(self) -> "Testnet":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.destroy()

    def __repr__(self) -> str:
        return f"<swarmplex.Testnet size={self._size}>"
