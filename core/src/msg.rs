//! The messages between the [`Swarm`](crate::Swarm) handle, the tasks the loop spawns and the
//! loop itself: [`Command`]s in from the handle, [`Report`]s in from tasks. The loop's module
//! imports these; nothing here imports the loop.

use std::collections::HashSet;

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::exchange;
use crate::keys::PublicKey;
use crate::link::{Activation, Handshake};
use crate::options::JoinOptions;
use crate::session::Connection;
use crate::state::dedup::Role;
use crate::topic::Topic;
use crate::wire::Header;

/// Where the answer to a `connect` or `get_new_peer` goes.
pub(crate) type ConnectReply = oneshot::Sender<Result<Connection>>;

/// Requests from handles to the loop.
pub(crate) enum Command {
    Join { topic: Topic, opts: JoinOptions },
    /// Answered once the topic's announce is withdrawn (see `engine::withdraw`).
    Leave { topic: Topic, reply: oneshot::Sender<()> },
    Refresh { topic: Topic, opts: Option<JoinOptions> },
    Flush { topic: Option<Topic>, reply: oneshot::Sender<()> },
    JoinPeer { key: PublicKey },
    LeavePeer { key: PublicKey },
    /// The listen addresses once at least `min` listeners reported theirs (0: at once).
    ListenAddrs { min: usize, reply: oneshot::Sender<Vec<Multiaddr>> },
    Status { topic: Topic, reply: oneshot::Sender<Option<JoinOptions>> },
    Topics { reply: oneshot::Sender<Vec<(Topic, JoinOptions)>> },
    Connections { reply: oneshot::Sender<Vec<Connection>> },
    /// Resolves with the session to `key` as soon as there is one.
    WaitConnection { key: PublicKey, reply: oneshot::Sender<Connection> },
    Ban { key: PublicKey },
    /// Dial an address and start a session with whoever answers.
    Connect { addr: Multiaddr, reply: ConnectReply },
    /// Listen on one more address; replies with the bound address.
    ListenOn { addr: Multiaddr, reply: oneshot::Sender<Result<Multiaddr>> },
    /// Close the listener bound to `addr` (an address `ListenOn` replied with); replies once
    /// the socket is closed.
    StopListening { addr: Multiaddr, reply: oneshot::Sender<Result<()>> },
    /// Ask `via` (or a random connected peer) for another peer and connect to it.
    GetNewPeer { via: Option<PublicKey>, reply: ConnectReply },
    /// Our reachability, external addresses and relays.
    Reachability { reply: oneshot::Sender<ReachabilityInfo> },
    Suspend,
    Resume,
    Destroy { reply: Option<oneshot::Sender<()>> },
}

/// What [`Swarm::reachability`](crate::Swarm::reachability) reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachabilityInfo {
    /// Whether others can dial us.
    pub state: crate::state::Reachability,
    /// The addresses we advertise as dialable (direct ones others confirmed, relay circuits,
    /// or on a local network our listen addresses).
    pub external: Vec<Multiaddr>,
    /// The relays we hold (or asked for) a reservation on.
    pub relays: Vec<PublicKey>,
}

/// Reports from helper tasks to the loop.
pub(crate) enum Report {
    Inbound { peer: PeerId, conn: ConnectionId, header: Header, stream: libp2p::Stream },
    Handshaked {
        peer: PeerId,
        conn: ConnectionId,
        role: Role,
        handshake: Handshake,
        activate: oneshot::Sender<Activation>,
    },
    /// `session_id` names the failed handshake once Hello was exchanged; before that (a knock the
    /// leader ignored, a stream that never opened) there is nothing registered to undo.
    HandshakeFailed { peer: PeerId, conn: ConnectionId, session_id: Option<[u8; 16]>, error: Error },
    SocketOpened { peer: PeerId, conn: ConnectionId, result: Result<libp2p::Stream> },
    SessionEnded { conn: ConnectionId, session_id: [u8; 16], reason: Error },
    /// A peer we asked for a new peer answered (or failed to).
    ExchangeAnswer { via: PeerId, result: Result<exchange::Answer>, reply: ConnectReply },
    /// A peer-exchange request from `asker` was read: choose what to offer.
    ExchangeChoose { asker: PeerId, exclude: HashSet<PublicKey>, reply: oneshot::Sender<exchange::Answer> },
    /// A topic-exchange request from `asker` was read: match its tags, choose the members.
    TopicsAsked { asker: PeerId, tags: Vec<crate::topic_exchange::Named>, reply: oneshot::Sender<Vec<crate::topic_exchange::Member>> },
    /// A member answered our topic-exchange request.
    TopicMembers { from: PeerId, members: Vec<(crate::topic::Topic, crate::topic_exchange::Member)> },
}

