"""Input checks, error types, panics, logging, key pairs."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

import swarmplex
from swarmplex import InvalidInputError, KeyPair, Swarm, SwarmplexError, _native

from conftest import make_swarm, pair, within


def test_error_hierarchy():
    assert issubclass(InvalidInputError, SwarmplexError) and issubclass(InvalidInputError, ValueError)
    assert issubclass(swarmplex.SwarmplexTimeoutError, TimeoutError)
    assert issubclass(swarmplex.ResetError, ConnectionResetError)
    for cls in (swarmplex.ConnectError, swarmplex.ClosedError, swarmplex.FirewalledError,
                swarmplex.DuplicateError, swarmplex.InternalError):
        assert issubclass(cls, SwarmplexError) and cls.kind


def test_key_pairs():
    kp = KeyPair.from_seed(bytes([4]) * 32)
    # libsodium's crypto_sign_seed_keypair vector, as in the core's tests.
    assert kp.public_key.hex() == "ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c"
    assert kp.secret_key[:32] == bytes([4]) * 32 and kp.secret_key[32:] == kp.public_key
    assert KeyPair.from_secret_key(kp.secret_key) == kp
    assert KeyPair.generate() != KeyPair.generate()
    with pytest.raises(ValueError):
        KeyPair.from_seed(bytes(31))
    with pytest.raises(TypeError):
        KeyPair.from_seed("0" * 32)
    with pytest.raises(ValueError):
        KeyPair.from_secret_key(bytes(63))


def test_topic_helper():
    import hashlib
    assert swarmplex.topic("hello") == hashlib.sha256(b"hello").digest()
    with pytest.raises(TypeError):
        swarmplex.topic(42)


async def test_bad_input_raises_type_and_value_errors(testnet):
    with pytest.raises(ValueError):
        Swarm(seed=bytes(31), bootstrap=testnet.bootstrap)
    with pytest.raises(TypeError):
        Swarm(seed="x" * 32, bootstrap=testnet.bootstrap)
    with pytest.raises(TypeError):
        Swarm(key_pair=b"not a key pair", bootstrap=testnet.bootstrap)
    with pytest.raises(ValueError):
        Swarm(seed=bytes(32), key_pair=KeyPair.generate(), bootstrap=testnet.bootstrap)
    with pytest.raises(TypeError):
        Swarm(bootstrap=testnet.bootstrap[0])  # a str, not a list
    with pytest.raises(ValueError):
        Swarm(bootstrap=testnet.bootstrap, max_peers=0)
    with pytest.raises(TypeError):
        Swarm(bootstrap=testnet.bootstrap, max_peers=1.5)
    with pytest.raises(TypeError):
        Swarm(bootstrap=testnet.bootstrap, firewall=True)
    with pytest.raises(TypeError):
        Swarm(bootstrap=testnet.bootstrap, mdns="yes")
    # Checked by the engine, still a ValueError:
    with pytest.raises(InvalidInputError):
        Swarm(bootstrap=["not a multiaddr"], listen=swarmplex.LOOPBACK_LISTEN, mdns=False)
    with pytest.raises(InvalidInputError):
        Swarm(bootstrap=testnet.bootstrap, network="bad/name", mdns=False)

    async with make_swarm(testnet) as s:
        with pytest.raises(ValueError) as e:
            await s.join(bytes(31))
        assert isinstance(e.value, InvalidInputError)
        with pytest.raises(ValueError):
            await s.join(bytes(33))
        with pytest.raises(TypeError):
            await s.join("a topic name, not 32 bytes")
        with pytest.raises(TypeError):
            await s.join(bytes(32), server="yes")
        with pytest.raises(ValueError):
            await s.join(bytes(32), server=False, client=False)
        with pytest.raises(ValueError):
            s.join_peer(bytes(31))
        with pytest.raises(TypeError):
            s.ban(None)
        with pytest.raises(ValueError):
            s.on("no-such-event", print)
        with pytest.raises(TypeError):
            s.join_messages(b"bytes")
        assert s.connections == set()


async def test_bad_input_on_connections(testnet):
    server, client, sc, cc = await pair(testnet, "bad-input")
    try:
        with pytest.raises(TypeError):
            cc.write("text is not bytes")
        with pytest.raises(TypeError):
            await cc.read("10")
        with pytest.raises(ValueError):
            await cc.readexactly(-1)
        with pytest.raises(ValueError):
            await cc.create_stream("x" * 1025)
        with pytest.raises(TypeError):
            await cc.create_stream(b"name")
        with pytest.raises(TypeError):
            await cc.send_message("topic", "text")
        with pytest.raises(ValueError):
            await cc.readuntil(b"")
        # Still usable.
        cc.write(b"ok")
        await cc.drain()
        assert await within(sc.readexactly(2)) == b"ok"
    finally:
        await client.destroy()
        await server.destroy()


async def test_panics_never_crash_the_interpreter():
    with pytest.raises(BaseException) as e:
        _native._panic_for_test(False)
    assert "test panic" in str(e.value)
    with pytest.raises(swarmplex.InternalError) as e2:
        await _native._panic_for_test(True)
    assert "test panic" in str(e2.value)


async def test_engine_logs_reach_python_logging(testnet):
    seen = threading.Event()
    records = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)
            if "session active" in record.getMessage():
                seen.set()

    logger = logging.getLogger("swarmplex")
    handler = Catch(level=logging.DEBUG)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        server, client, sc, cc = await pair(testnet, "logs")
        try:
            assert await within(asyncio.get_running_loop().run_in_executor(None, seen.wait, 20))
            rec = next(r for r in records if "session active" in r.getMessage())
            assert rec.name.startswith("swarmplex.") and rec.levelno == logging.DEBUG
        finally:
            await client.destroy()
            await server.destroy()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


async def test_on_accepts_coroutine_callbacks_and_decorators(testnet):
    server = make_swarm(testnet)
    client = make_swarm(testnet)
    got = asyncio.Queue()
    try:
        @server.on("connection")
        async def greet(conn: swarmplex.Connection) -> None:
            conn.write(b"welcome")
            await conn.drain()
            await got.put(conn)

        t = swarmplex.topic("callbacks")
        await within((await server.join(t, server=True, client=False)).flushed())
        await client.join(t, server=False, client=True)
        async for conn in client.iter_connections():
            assert await within(conn.readexactly(7)) == b"welcome"
            break
        sconn = await within(got.get())
        assert sconn.remote_public_key == client.public_key
        server.off("connection", greet)
    finally:
        await client.destroy()
        await server.destroy()
