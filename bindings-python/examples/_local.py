"""Shared by the examples: a local testnet unless SWARMPLEX_BOOTSTRAP names a network."""

import contextlib
import os
from typing import Any, AsyncIterator, Dict

import swarmplex


@contextlib.asynccontextmanager
async def network() -> AsyncIterator[Dict[str, Any]]:
    """Yields Swarm keyword arguments: a local 3-node testnet on 127.0.0.1 (mDNS off) by default."""
    if os.environ.get("SWARMPLEX_BOOTSTRAP"):
        yield {}
        return
    async with swarmplex.Testnet(3) as t:
        yield dict(bootstrap=t.bootstrap, listen=swarmplex.LOOPBACK_LISTEN, mdns=False)
