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

from ._errors import ClosedError, InvalidInputError, SwarmplexError
from ._stream import MAX_NAME, Connection
from ._swarm import Swarm, run_callback
from ._types import Message, check_key32

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
    ``onmessage``."""

    def __init__(
        self, sockets: "Peersockets", topic_name: str, onmessage: Optional[OnMessage], onclose: Optional[OnClose]
    ) -> None:
        self._sockets = sockets
        self._topic_name = topic_name
        self._onmessage = onmessage
        self._onclose = onclose
        self._closed = False

    @property
    def topic_name(self) -> str:
        """The topic's name (without the ``"peersockets/"`` prefix)."""
        return self._topic_name

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` or :meth:`Peersockets.leave` closed this handle."""
        return self._closed

    async def send(self, remote_key: bytes, msg: MessageLike) -> None:
        """Send ``msg`` (``str``, sent as UTF-8, or bytes) to the connected peer ``remote_key``;
        returns once sent (delivered only if the remote joined this topic). Raises
        :class:`swarmplex.ClosedError` when no connection to that peer is open."""
        key = check_key32(remote_key, "remote_key")
        data = _message(msg)
        if self._closed:
            raise ClosedError("topic handle closed")
        await self._sockets._connection(key).send_message(PREFIX + self._topic_name, data)

    async def broadcast(self, msg: MessageLike) -> int:
        """Send ``msg`` to every connected peer; returns how many sends succeeded (only the
        peers that joined this topic deliver it)."""
        data = _message(msg)
        if self._closed:
            raise ClosedError("topic handle closed")
        conns = list(self._sockets.swarm.connections)
        results = await asyncio.gather(
            *(c.send_message(PREFIX + self._topic_name, data) for c in conns), return_exceptions=True
        )
        return sum(1 for r in results if not isinstance(r, BaseException))

    def close(self) -> None:
        """Stop delivering to this handle (the topic stays joined while other handles use it)."""
        if not self._closed:
            self._closed = True
            self._sockets._remove(self)

    def _deliver(self, remote_key: bytes, data: bytes) -> None:
        if not self._closed and self._onmessage is not None:
            run_callback(self._onmessage, remote_key, data)

    def __repr__(self) -> str:
        return f"<swarmplex.TopicHandle {self._topic_name!r}{' closed' if self._closed else ''}>"


class Peersockets:
    """Topic-tagged messages over a :class:`swarmplex.Swarm`'s connections (the ``peersockets``
    API; see the module's notes)."""

    def __init__(self, swarm: Swarm) -> None:
        if not isinstance(swarm, Swarm):
            raise TypeError(f"Peersockets needs a swarmplex.Swarm, not {type(swarm).__name__}")
        self._swarm = swarm
        self._topics: Dict[str, Set[TopicHandle]] = {}
        swarm.on("message", self._on_message)

    @property
    def swarm(self) -> Swarm:
        """The swarm whose connections carry the messages."""
        return self._swarm

    @property
    def topics(self) -> Set[str]:
        """The names of the joined topics."""
        return set(self._topics)

    def join(
        self, topic_name: str, *, onmessage: Optional[OnMessage] = None, onclose: Optional[OnClose] = None
    ) -> TopicHandle:
        """Join ``topic_name`` (a non-empty ``str``) and return a new handle for it; the first
        join of a name starts receiving that topic.

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
        handles = self._topics.get(topic_name)
        if handles is None:
            self._swarm.join_messages(PREFIX + topic_name)
            handles = self._topics[topic_name] = set()
        handle = TopicHandle(self, topic_name, onmessage, onclose)
        handles.add(handle)
        return handle

    def leave(self, topic_name: Optional[str] = None) -> None:
        """Close every handle of ``topic_name`` (of every topic when ``None``), call their
        ``onclose``, and stop receiving the topic."""
        if topic_name is not None and not isinstance(topic_name, str):
            raise TypeError(f"topic_name must be a str or None, not {type(topic_name).__name__}")
        names = list(self._topics) if topic_name is None else [topic_name]
        for name in names:
            handles = self._topics.pop(name, None)
            if handles is None:
                continue
            if not self._swarm.destroyed:
                try:
                    self._swarm.leave_messages(PREFIX + name)
                except SwarmplexError:
                    pass
            for h in handles:
                h._closed = True
                if h._onclose is not None:
                    run_callback(h._onclose)

    def _connection(self, key: bytes) -> Connection:
        for c in self._swarm.connections:
            if c.remote_public_key == key:
                return c
        raise ClosedError("not connected to that peer")

    def _remove(self, handle: TopicHandle) -> None:
        handles = self._topics.get(handle.topic_name)
        if handles is not None:
            handles.discard(handle)

    def _on_message(self, msg: Message) -> None:
        if not msg.topic.startswith(PREFIX):
            return
        for h in list(self._topics.get(msg.topic[len(PREFIX):], ())):
            h._deliver(msg.remote_public_key, msg.data)

    def __repr__(self) -> str:
        return f"<swarmplex.Peersockets topics={sorted(self._topics)}>"
