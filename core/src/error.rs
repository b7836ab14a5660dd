//! Errors: one enum for everything the engine reports, each with a stable [`ErrorKind`].
//!
//! Bindings never match on messages; they map [`ErrorKind`] to their language's exception types.

/// The stable, coarse category of an [`Error`], shared by every binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller passed a value of the wrong length or shape.
    InvalidInput,
    /// A dial or lookup could not reach the peer.
    Connect,
    /// The swarm, connection or stream is closed.
    Closed,
    /// The operation did not finish in time.
    Timeout,
    /// The firewall rejected the peer, or the peer is banned.
    Firewalled,
    /// The connection was closed because another one to the same peer won.
    Duplicate,
    /// The remote reset the stream or the connection died under it.
    Reset,
    /// A relayed connection was closed by its relay (its data or time limit, or the relay
    /// went away).
    RelayLimit,
    /// A bug or an unexpected state in the engine.
    Internal,
}

impl ErrorKind {
    /// A stable lowercase name, e.g. `"invalid_input"`, used as an error code by the bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Connect => "connect",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Firewalled => "firewalled",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::Reset => "reset",
            ErrorKind::RelayLimit => "relay_limit",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error from the engine.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A value has the wrong length or shape.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A peer could not be reached.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The swarm, connection or stream is closed.
    #[error("closed: {0}")]
    Closed(String),
    /// The operation timed out.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The peer was rejected by the firewall or is banned.
    #[error("firewalled: {0}")]
    Firewalled(String),
    /// The connection lost to a duplicate.
    #[error("duplicate connection")]
    Duplicate,
    /// The stream was reset by the remote or died with its connection.
    #[error("stream reset: {0}")]
    Reset(String),
    /// The relay closed the relayed connection the session ran on.
    #[error("relay limit: {0}")]
    RelayLimit(String),
    /// An unexpected engine state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Connect(_) => ErrorKind::Connect,
            Error::Closed(_) => ErrorKind::Closed,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Firewalled(_) => ErrorKind::Firewalled,
            Error::Duplicate => ErrorKind::Duplicate,
            Error::Reset(_) => ErrorKind::Reset,
            Error::RelayLimit(_) => ErrorKind::RelayLimit,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn closed() -> Self {
        Error::Closed("swarm destroyed".into())
    }
}

/// The message of a caught panic (bindings catch panics at the FFI boundary and report them as
/// [`ErrorKind::Internal`]).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
