//! Tasks the event loop spawns: everything that awaits I/O lives here, so the loop never waits
//! and one stuck peer never stalls the others. Each task reports back with a [`Report`].
//!
//! - [`handshake`]: lead / follow / knock, then the session's control task ([`control`]).
//! - [`exchange`]: ask a peer for another peer, and serve such requests.
//! - [`inbound`]: read a new substream's header; read a topic message.

pub(crate) mod control;
pub(crate) mod exchange;
pub(crate) mod handshake;
pub(crate) mod inbound;
pub(crate) mod topic_exchange;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::firewall::FirewallGate;
use crate::link::LinkCmd;
use crate::msg::Report;

/// Everything a task needs from its swarm.
#[derive(Clone)]
pub(crate) struct TaskCtx {
    /// Opens substreams through the loop.
    pub link: mpsc::UnboundedSender<LinkCmd>,
    /// Where tasks report.
    pub report: mpsc::UnboundedSender<Report>,
    /// The app's firewall, asked once per peer.
    pub gate: Arc<FirewallGate>,
    /// This swarm's instance id (random per start), sent in the handshake.
    pub instance: u64,
}
