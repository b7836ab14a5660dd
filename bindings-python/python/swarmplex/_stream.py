"""Connections and streams with the asyncio stream API (``read``/``write``/``drain``/...)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, AsyncIterator, Iterable, Optional, Union

from . import _native
from ._errors import InvalidInputError, SwarmplexError, error_from_kind
from ._types import Path, PeerInfo

if TYPE_CHECKING:  # pragma: no cover
    from ._native import NativeConnection, NativeStream

__all__ = ["Connection", "Stream", "BytesLike"]

BytesLike = Union[bytes, bytearray, memoryview]

#: Longest stream name or message topic, in UTF-8 bytes.
MAX_NAME: int = _native.MAX_NAME
#: Default ``limit`` of :meth:`Connection.readuntil` / :meth:`Connection.readline`.
DEFAULT_LIMIT = 1 << 20


def _as_bytes(data: object, what: str = "data") -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, bytearray or memoryview, not {type(data).__name__}")


def _check_name(name: object, what: str = "name") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    if len(name.encode()) > MAX_NAME:
        raise InvalidInputError(f"{what} longer than {MAX_NAME} bytes")
    return name


def _check_count(n: object, what: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be an int, not {type(n).__name__}")
    return n


class _ByteStream:
    """The reader and writer halves of one byte stream (shared by Connection and Stream)."""

    __slots__ = ("_s", "__weakref__")

    def __init__(self, native: "NativeStream") -> None:
        self._s = native

    # -- reading -------------------------------------------------------------------------------
    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (at least one, waiting for it); ``b""`` at the end.

        With ``n < 0`` (the default), read until the remote ends the stream. Cancelling a
        pending read loses no data: the next read returns it.
        """
        n = _check_count(n)
        if n == 0:
            return b""
        if n < 0:
            return await self._s.read_all()
        return await self._s.read(n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises :class:`asyncio.IncompleteReadError` if the stream ends first (its ``partial``
        holds what was read). Cancelling it keeps the bytes already received for the next read.
        """
        n = _check_count(n)
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if n == 0:
            return b""
        data = await self._s.readexactly(n)
        if len(data) < n:
            raise asyncio.IncompleteReadError(data, n)
        return data

    async def readuntil(self, separator: bytes = b"\n", *, limit: int = DEFAULT_LIMIT) -> bytes:
        """Read up to and including ``separator``.

        Raises :class:`asyncio.IncompleteReadError` at the end of the stream and
        :class:`asyncio.LimitOverrunError` when more than ``limit`` bytes arrive without it.
        """
        sep = _as_bytes(separator, "separator")
        if not sep:
            raise ValueError("separator should be at least one-byte string")
        data, status = await self._s.readuntil(sep, _check_count(limit, "limit"))
        if status == 1:
            raise asyncio.IncompleteReadError(data, None)
        if status == 2:
            raise asyncio.LimitOverrunError("separator not found within the limit", limit)
        return data

    async def readline(self) -> bytes:
        """Read one line (ending in ``b"\\n"``), or the rest of the stream at its end."""
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            return e.partial

    def at_eof(self) -> bool:
        """Whether the remote ended the stream and every byte was read."""
        return self._s.at_eof()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._s.read(1 << 20)
            if not chunk:
                return
            yield chunk

    # -- writing -------------------------------------------------------------------------------
    def write(self, data: BytesLike) -> None:
        """Queue ``data`` for sending (never blocks); follow with ``await drain()``."""
        self._s.write(_as_bytes(data))

    def writelines(self, data: Iterable[BytesLike]) -> None:
        """Queue each buffer of ``data`` for sending."""
        for d in data:
            self.write(d)

    async def drain(self) -> None:
        """Wait until the send queue is small again (backpressure); raises the first write error."""
        if self._s.need_drain():
            await self._s.drain()

    async def flush(self) -> None:
        """Wait until everything queued (including the end) was handed to the transport."""
        await self._s.flush()

    def write_eof(self) -> None:
        """End our side after the queued data: the remote reads everything, then ``b""``."""
        self._s.write_eof()

    def can_write_eof(self) -> bool:
        """Always ``True``: streams support half-close."""
        return True

    @property
    def write_buffer_size(self) -> int:
        """Bytes queued but not yet accepted by the transport."""
        return self._s.pending


class Stream(_ByteStream):
    """A named or shared stream over a connection (see :meth:`Connection.create_stream`)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """The stream's name."""
        return self._s.name

    @property
    def remote_public_key(self) -> bytes:
        """The remote peer's 32-byte public key."""
        return self._s.remote_public_key

    def close(self) -> None:
        """End our side after the queued data (like :meth:`write_eof`)."""
        self._s.write_eof()

    def is_closing(self) -> bool:
        """Whether :meth:`close` or :meth:`write_eof` was called."""
        return self._s.eof_written()

    async def wait_closed(self) -> None:
        """Wait until the queued data and the end were sent."""
        await self._s.flush()

    def abort(self) -> None:
        """Reset the stream at once: the remote's reads fail instead of ending cleanly."""
        self._s.reset()

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<swarmplex.Stream {self.name!r} remote={self.remote_public_key.hex()[:12]}>"


class Connection(_ByteStream):
    """One encrypted connection to a peer; itself a byte stream (the session's socket).

    Reading and writing follow :class:`asyncio.StreamReader` / :class:`asyncio.StreamWriter`;
    named streams and topic messages run over the same connection.
    """

    __slots__ = ("_c",)

    def __init__(self, native: "NativeConnection") -> None:
        super().__init__(native.socket())
        self._c = native

    @property
    def remote_public_key(self) -> bytes:
        """The remote peer's 32-byte public key."""
        return self._c.remote_public_key

    @property
    def handshake_hash(self) -> bytes:
        """32 bytes equal on both sides and unique per connection."""
        return self._c.handshake_hash

    @property
    def is_initiator(self) -> bool:
        """Whether we dialed the underlying transport connection."""
        return self._c.is_initiator

    @property
    def transport(self) -> str:
        """How the connection runs: ``"quic"``, ``"tcp"``, or ``"relay"`` (a circuit through
        another peer, see :class:`swarmplex.Exchange`)."""
        return self._c.transport

    @property
    def remote_address(self) -> str:
        """The remote multiaddr of the underlying transport connection."""
        return self._c.remote_address

    @property
    def path(self) -> Path:
        """How the bytes travel: directly or through which relay, transport, remote address."""
        transport = self._c.transport
        return Path(transport == "relay", self._c.relay, transport, self._c.remote_address)

    @property
    def peer_info(self) -> PeerInfo:
        """What the swarm knows about the peer (topics it was found under, ...)."""
        pk, topics, client, explicit = self._c.peer_info()
        return PeerInfo(public_key=pk, topics=list(topics), client=client, explicit=explicit)

    @property
    def closed(self) -> bool:
        """Whether the connection has ended."""
        return self._c.is_closed()

    def is_closing(self) -> bool:
        """Whether the connection has ended or is ending."""
        return self._c.is_closed() or self._s.eof_written()

    def close(self) -> None:
        """Close the connection once the queued socket data is sent (the remote sees it at once)."""
        self._c.close_after_flush()

    def abort(self) -> None:
        """Close the connection now, dropping queued data."""
        self._c.close()

    async def wait_closed(self) -> None:
        """Wait until the connection has ended (for any reason)."""
        await self._c.closed()

    async def wait_closed_reason(self) -> SwarmplexError:
        """Wait until the connection has ended and return why, as an exception instance."""
        kind, message = await self._c.closed()
        return error_from_kind(kind, message)

    async def create_stream(self, name: str) -> Stream:
        """Open a named stream; the remote takes it with :meth:`receive_stream`."""
        return Stream(await self._c.create_stream(_check_name(name)))

    async def receive_stream(self, name: str) -> Stream:
        """Wait for the remote's :meth:`create_stream` with this name."""
        return Stream(await self._c.receive_stream(_check_name(name)))

    def take_parked_stream(self, name: str, shared: bool = False) -> Optional[Stream]:
        """Take the remote's stream ``name`` announced by a ``stream`` event, without waiting:
        ``None`` if a :meth:`receive_stream` (or :meth:`create_shared_stream`) already took it.
        Use it when handling the event; waiting with :meth:`receive_stream` there could take the
        next stream of that name instead."""
        native = self._c.take_parked_stream(_check_name(name), shared)
        return None if native is None else Stream(native)

    async def create_shared_stream(self, name: str) -> Stream:
        """Both sides call this with one name and get the two ends of one stream."""
        return Stream(await self._c.create_shared_stream(_check_name(name)))

    async def send_message(self, topic: str, data: BytesLike) -> None:
        """Send one topic message; the remote gets it if it called ``join_messages(topic)``."""
        await self._c.send_message(_check_name(topic, "topic"), _as_bytes(data))

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return (
            f"<swarmplex.Connection remote={self.remote_public_key.hex()[:12]} "
            f"initiator={self.is_initiator}>"
        )
