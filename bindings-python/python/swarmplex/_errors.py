"""Exceptions raised by swarmplex: one base class and one subclass per error kind."""

from __future__ import annotations

__all__ = [
    "SwarmplexError",
    "InvalidInputError",
    "ConnectError",
    "ClosedError",
    "SwarmplexTimeoutError",
    "FirewalledError",
    "DuplicateError",
    "ResetError",
    "InternalError",
    "error_from_kind",
]


class SwarmplexError(Exception):
    """Base class of every error the swarmplex engine reports.

    ``kind`` is the stable lowercase error code shared by every binding (``"closed"``,
    ``"timeout"``, ...).
    """

    kind: str = "internal"


class InvalidInputError(SwarmplexError, ValueError):
    """A value had the wrong length or shape (also a :class:`ValueError`)."""

    kind = "invalid_input"


class ConnectError(SwarmplexError, ConnectionError):
    """A dial or lookup could not reach the peer."""

    kind = "connect"


class ClosedError(SwarmplexError):
    """The swarm, connection or stream is closed."""

    kind = "closed"


class SwarmplexTimeoutError(SwarmplexError, TimeoutError):
    """An engine operation did not finish in time (also a :class:`TimeoutError`)."""

    kind = "timeout"


class FirewalledError(SwarmplexError):
    """The firewall rejected the peer, or the peer is banned."""

    kind = "firewalled"


class DuplicateError(SwarmplexError):
    """The connection was closed because another one to the same peer won."""

    kind = "duplicate"


class ResetError(SwarmplexError, ConnectionResetError):
    """The remote reset the stream, or the connection died under it."""

    kind = "reset"


class RelayLimitError(ResetError):
    """A relayed connection was closed by its relay (its data or time limit, or the relay went
    away). A :class:`ResetError` too."""

    kind = "relay_limit"


class InternalError(SwarmplexError):
    """A bug or unexpected state in the engine or the binding (including a caught Rust panic)."""

    kind = "internal"


_BY_KIND = {
    cls.kind: cls
    for cls in (
        InvalidInputError,
        ConnectError,
        ClosedError,
        SwarmplexTimeoutError,
        FirewalledError,
        DuplicateError,
        ResetError,
        RelayLimitError,
        InternalError,
    )
}


def error_from_kind(kind: str, message: str) -> SwarmplexError:
    """The exception instance for an engine error code and message."""
    return _BY_KIND.get(kind, InternalError)(message)
