//! The messages between connection handles, session tasks and the event loop that are about one
//! transport connection: opening substreams on it, closing its session, and the handshake's
//! outcome. A leaf module (it names neither the loop nor the handles), so that `session`, the
//! tasks and the loop can all use it without importing each other (as quinn's `shared.rs`).

use libp2p::swarm::ConnectionId;
use libp2p::{PeerId, Stream as RawStream, StreamProtocol};
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};

use crate::error::Error;
use crate::keys::PublicKey;

/// Requests from a [`Connection`](crate::Connection) or a session task to the loop.
/// The reason a control task reports when the control stream ended cleanly without a Close
/// frame; the state turns it into the remote's close, or `RelayLimit` on a relayed connection.
pub(crate) const CONTROL_ENDED: &str = "control stream ended without a goodbye";

pub(crate) enum LinkCmd {
    /// Open a substream on `conn`; the reply carries it (header not yet written).
    OpenStream { peer: PeerId, conn: ConnectionId, reply: OpenReply },
    /// The app closed the session on `conn`.
    CloseSession { conn: ConnectionId },
}

/// A request for a new outbound substream; the sender gets the stream or why it failed.
pub type OpenReply = oneshot::Sender<Result<RawStream, OpenError>>;

/// Why a substream could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    /// The remote does not speak our substream protocol: it is in another network.
    #[error("the peer is not in this network (it does not speak {0})")]
    OtherNetwork(StreamProtocol),
    /// Anything else (connection closing, timeout, stream limit).
    #[error("{0}")]
    Failed(String),
}

/// The handshake's outcome, carried from a handshake task to the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handshake {
    /// Chosen by the leader; names this session in reports from its control task.
    pub session_id: [u8; 16],
    pub leader_nonce: [u8; 32],
    pub follower_nonce: [u8; 32],
    /// The remote's instance id (random per swarm): a new one means the remote restarted.
    pub remote_instance: u64,
}

impl Handshake {
    /// SHA-256 over both keys, the session id and both nonces: equal on both sides, unique per
    /// session. (libp2p exposes neither Noise's handshake hash nor a TLS exporter.)
    pub fn hash(&self, leader: &PublicKey, follower: &PublicKey) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"swarmplex/handshake/v1");
        h.update(leader.0);
        h.update(follower.0);
        h.update(self.session_id);
        h.update(self.leader_nonce);
        h.update(self.follower_nonce);
        h.finalize().into()
    }
}

/// What the event loop hands a control task when its session becomes active.
pub(crate) struct Activation {
    /// Set once when the session ends locally (the reason): the control task says goodbye.
    pub closed: watch::Receiver<Option<Error>>,
}
