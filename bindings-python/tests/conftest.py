"""Shared fixtures: a local testnet per test, swarms on loopback, and a time bound on every test.

Network rule: every swarm here uses a local testnet as bootstrap, listens on 127.0.0.1 and has
mDNS off; `scripts/test.sh` also runs the suite in a loopback-only network namespace.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from typing import Any, AsyncIterator, Awaitable, Callable, List, Tuple, TypeVar

import pytest

import swarmplex
from swarmplex import Connection, Swarm, Testnet

#: Upper bound for any single test.
TEST_TIMEOUT = float(os.environ.get("SWARMPLEX_TEST_TIMEOUT", "90"))
#: Upper bound for one wait inside a test.
WAIT = 30.0

T = TypeVar("T")


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Bounds every async test with `TEST_TIMEOUT` (a hang fails instead of blocking the run)."""
    for item in items:
        fn = getattr(item, "obj", None)
        if inspect.iscoroutinefunction(fn) and not getattr(fn, "_bounded", False):

            @functools.wraps(fn)
            async def bounded(*args: Any, __fn: Callable[..., Awaitable[Any]] = fn, **kwargs: Any) -> Any:
                return await asyncio.wait_for(__fn(*args, **kwargs), TEST_TIMEOUT)

            bounded._bounded = True  # type: ignore[attr-defined]
            item.obj = bounded  # type: ignore[attr-defined]


async def within(aw: Awaitable[T], what: str = "", timeout: float = WAIT) -> T:
    """Awaits `aw`, failing the test after `timeout` seconds."""
    try:
        return await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what or aw}")


@pytest.fixture
async def testnet() -> AsyncIterator[Testnet]:
    async with Testnet(3) as t:
        yield t


def make_swarm(t: Testnet, **kw: Any) -> Swarm:
    """A swarm on loopback that bootstraps from the local testnet (mDNS off)."""
    kw.setdefault("listen", swarmplex.LOOPBACK_LISTEN)
    kw.setdefault("mdns", False)
    return Swarm(bootstrap=t.bootstrap, **kw)


async def pair(t: Testnet, name: str, **server_kw: Any) -> Tuple[Swarm, Swarm, Connection, Connection]:
    """A server and a client on topic `name`, connected: (server, client, server_conn, client_conn)."""
    server = make_swarm(t, **server_kw)
    client = make_swarm(t)
    topic = swarmplex.topic(name)
    d = await server.join(topic, server=True, client=False)
    await within(d.flushed(), "announce")
    await client.join(topic, server=False, client=True)
    cc = await within(client.next_connection(), "client connection")
    sc = await within(server.next_connection(), "server connection")
    return server, client, sc, cc


@pytest.fixture
async def swarms() -> AsyncIterator[List[Swarm]]:
    """Collects swarms made in a test and destroys them afterwards."""
    made: List[Swarm] = []
    yield made
    for s in made:
        await s.destroy()
