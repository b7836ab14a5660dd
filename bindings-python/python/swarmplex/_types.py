"""Plain value types: key pairs, peer info, messages, topics."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional, Union

from . import _native
from ._errors import InvalidInputError

__all__ = ["KeyPair", "PeerInfo", "Message", "topic", "check_key32"]


def check_key32(value: object, what: str) -> bytes:
    """``value`` as 32 bytes: TypeError for non-bytes, InvalidInputError (a ValueError) for
    another length."""
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise TypeError(f"{what} must be 32 bytes, not {type(value).__name__}")
    if len(value) != 32:
        raise InvalidInputError(f"{what} must be 32 bytes, got {len(value)}")
    return value


def topic(name: Union[str, bytes]) -> bytes:
    """A 32-byte topic derived from a human-readable name: ``sha256(name)``.

    The same derivation as the Rust core and the CLI (for names that are not 64 hex digits).
    """
    if isinstance(name, str):
        name = name.encode()
    if not isinstance(name, (bytes, bytearray, memoryview)):
        raise TypeError(f"topic name must be str or bytes, not {type(name).__name__}")
    return hashlib.sha256(name).digest()


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair in libsodium's layout: ``secret_key`` is seed ‖ public key."""

    public_key: bytes
    secret_key: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> "KeyPair":
        """A fresh random key pair."""
        return cls(*_native.key_pair_generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> "KeyPair":
        """The key pair libsodium's ``crypto_sign_seed_keypair`` derives from a 32-byte seed."""
        return cls(*_native.key_pair_from_seed(check_key32(seed, "seed")))

    @classmethod
    def from_secret_key(cls, secret_key: bytes) -> "KeyPair":
        """Parses a 64-byte secret key (seed ‖ public key)."""
        if isinstance(secret_key, (bytearray, memoryview)):
            secret_key = bytes(secret_key)
        if not isinstance(secret_key, bytes):
            raise TypeError(f"secret_key must be 64 bytes, not {type(secret_key).__name__}")
        if len(secret_key) != 64:
            raise InvalidInputError(f"secret_key must be 64 bytes, got {len(secret_key)}")
        return cls(*_native.key_pair_from_secret_key(secret_key))


@dataclass(frozen=True)
class PeerInfo:
    """What the swarm knows about a connected peer (Hyperswarm's ``PeerInfo``)."""

    #: The peer's 32-byte public key.
    public_key: bytes
    #: Topics under which we found this peer as a client (empty for purely incoming peers).
    topics: List[bytes]
    #: Whether we look this peer up as a client of some topic.
    client: bool
    #: Whether the peer was joined explicitly by key (``join_peer``).
    explicit: bool


@dataclass(frozen=True)
class Reachability:
    """Whether others can dial this swarm (:meth:`swarmplex.Swarm.reachability`)."""

    #: ``"public"`` (a direct address others confirmed, or a local network), ``"private"``
    #: (behind a NAT: reachable through relays and hole punching) or ``"unknown"``.
    state: str
    #: Behind a symmetric NAT: hole punching rarely works, sessions run relayed.
    symmetric: bool
    #: The multiaddrs this swarm advertises as dialable.
    external: List[str]
    #: Public keys of the relays it holds a reservation on.
    relays: List[bytes]


@dataclass(frozen=True)
class Path:
    """How a connection's bytes travel (:attr:`swarmplex.Connection.path`)."""

    #: Through a relay (circuit relay v2) rather than directly.
    relayed: bool
    #: The relay's 32-byte public key, when relayed.
    relay: Optional[bytes]
    #: ``"quic"``, ``"tcp"``, ``"websocket"`` or ``"relay"``.
    transport: str
    #: The remote multiaddr of the transport connection.
    remote_address: str


class Message(NamedTuple):
    """A topic message received from a peer."""

    #: The sender's public key.
    remote_public_key: bytes
    #: The message topic (a name, see :meth:`swarmplex.Swarm.join_messages`).
    topic: str
    #: The payload.
    data: bytes
