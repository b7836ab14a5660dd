"""peersockets' API on a swarmplex Swarm: topic-tagged messages to connected peers by key::

    sockets = Peersockets(swarm)               # a swarmplex.Swarm (e.g. plex.swarm)
    handle = sockets.join("my-topic", onmessage=lambda remote_key, msg: print(remote_key.hex(), msg))
    await handle.send(friend_key, "hello!")    # friend_key: a connected peer's public key

Messages are the engine's topic messages: each one rides the peer's authenticated, encrypted
connection (so, unlike the original, they are MAC'd), and the remote delivers it only if it
joined that topic; otherwise it drops it silently (the sender cannot tell). Topic names are
namespaced (``"peersockets/" + name``, as in the npm package's ``swarmplex/peersockets``, so a
Python peer and a Node peer talk to each other) and never collide with other users of the
swarm. ``broadcast(msg)`` sends to every connected peer, because a sender cannot know who
joined: only the peers that joined the topic deliver it. ``onmessage(remote_key, msg)`` gets the
sender's 32-byte public key and the message as ``bytes``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Optional, Set, Union

from . import _native
from ._errors import InvalidInputError
from ._stream import MAX_NAME
from ._swarm import Swarm, run_callback
from ._types import check_key32

__all__ = ["Peersockets", "TopicHandle", "PREFIX"]

#: Prefix of the engine's message topic for a peersockets topic name.
PREFIX = "peersockets/"
#: Longest topic name, in UTF-8 bytes.
MAX_TOPIC = MAX_NAME - len(PREFIX)

OnMessage = Callable[[bytes, bytes], Any]
OnClose = Callable[[], Any]
MessageLike = Union[str, bytes, bytearray, memoryview]


def _message(msg: object) -> bytes:
    if isinstance(msg, str):
        return msg.encode()
    if isinstance(msg, (bytes, bytearray, memoryview)):
        return bytes(msg)
    raise TypeError(f"message must be str or bytes, not {type(msg).__name__}")


def _check_callback(cb: object, what: str) -> None:
    if cb is not None and not callable(cb):
        raise TypeError(f"{what} must be callable, not {type(cb).__name__}")


class TopicHandle:
    """One :meth:`Peersockets.join` of a topic: sends on it and receives through its
    ``onmessage``. The behaviour is the core's ``swarmplex::peersockets::TopicHandle``."""

    def __init__(
        self,
        sockets: "Peersockets",
        topic_name: str,
        native: "_native.NativeTopicHandle",
        onmessage: Optional[OnMessage],
        onclose: Optional[OnClose],
    ) -> None:
        self._sockets = sockets
        self._topic_name = topic_name
        self._n = native
        self._onmessage = onmessage
        self._onclose = onclose
        self._task: "Optional[asyncio.Task[None]]" = None
        if onmessage is not None:
            self._task = asyncio.ensure_future(self._deliver())

    @property
    def topic_name(self) -> str:
        """The topic's name (without the ``"peersockets/"`` prefix)."""
        return self._topic_name

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` or :meth:`Peersockets.leave` closed this handle."""
        return self._n.closed

    async def send(self, remote_key: bytes, msg: MessageLike) -> None:
        """Send ``msg`` (``str``, sent as UTF-8, or bytes) to the connected peer ``remote_key``;
        returns once sent (delivered only if the remote joined this topic). Raises
        :class:`swarmplex.ClosedError` when no connection to that peer is open."""
        key = check_key32(remote_key, "remote_key")
        await self._n.send(key, _message(msg))

    async def broadcast(self, msg: MessageLike) -> int:
        """Send ``msg`` to every connected peer; returns how many sends succeeded (only the
        peers that joined this topic deliver it)."""
        return await self._n.broadcast(_message(msg))

    def close(self) -> None:
        """Stop delivering to this handle (the topic stays joined while other handles use it)."""
        self._n.close()

    async def _deliver(self) -> None:
        """Hands each message to ``onmessage`` until the handle is closed."""
        while True:
            m = await self._n.next_message()
            if m is None:
                return
            if self._onmessage is not None and not self._n.closed:
                run_callback(self._onmessage, m[0], m[1])

    def __repr__(self) -> str:
        return f"<swarmplex.TopicHandle {self._topic_name!r}{' closed' if self.closed else ''}>"


class Peersockets:
    """Topic-tagged messages over a :class:`swarmplex.Swarm`'s connections (the ``peersockets``
    API; see the module's notes)."""

    def __init__(self, swarm: Swarm) -> None:
        if not isinstance(swarm, Swarm):
            raise TypeError(f"Peersockets needs a swarmplex.Swarm, not {type(swarm).__name__}")
        self._swarm = swarm
        self._n = _native.NativePeersockets(swarm._native)
        self._handles: Dict[int, TopicHandle] = {}  # open handles by native id (for onclose)

    @property
    def swarm(self) -> Swarm:
        """The swarm whose connections carry the messages."""
        return self._swarm

    @property
    def topics(self) -> Set[str]:
        """The names of the joined topics."""
        return set(self._n.topics())

    def join(
        self, topic_name: str, *, onmessage: Optional[OnMessage] = None, onclose: Optional[OnClose] = None
    ) -> TopicHandle:
        """Join ``topic_name`` (a non-empty ``str``) and return a new handle for it; the first
        join of a name starts receiving that topic. With ``onmessage``, call it while an
        asyncio event loop runs (the handle delivers on it).

        :param onmessage: ``onmessage(remote_key, msg)`` for every message received on the topic
            (coroutine functions allowed).
        :param onclose: ``onclose()`` when :meth:`leave` closes the handle.
        """
        if not isinstance(topic_name, str):
            raise TypeError(f"topic_name must be a str, not {type(topic_name).__name__}")
        if not topic_name:
            raise InvalidInputError("topic_name must not be empty")
        if len(topic_name.encode()) > MAX_TOPIC:
            raise InvalidInputError(f"topic_name longer than {MAX_TOPIC} bytes")
        _check_callback(onmessage, "onmessage")
        _check_callback(onclose, "onclose")
        native = self._n.join(topic_name)
        handle = TopicHandle(self, topic_name, native, onmessage, onclose)
        self._handles = {i: h for i, h in self._handles.items() if not h.closed}
        self._handles[native.id] = handle
        return handle

    def leave(self, topic_name: Optional[str] = None) -> None:
        """Close every handle of ``topic_name`` (of every topic when ``None``), call their
        ``onclose``, and stop receiving the topic."""
        if topic_name is not None and not isinstance(topic_name, str):
            raise TypeError(f"topic_name must be a str or None, not {type(topic_name).__name__}")
        for handle_id in self._n.leave(topic_name):
            h = self._handles.pop(handle_id, None)
            if h is not None and h._onclose is not None:
                run_callback(h._onclose)

    def __repr__(self) -> str:
        return f"<swarmplex.Peersockets topics={sorted(self.topics)}>"
