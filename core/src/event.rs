//! [`SwarmEvent`]: what a swarm reports to the app.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::error::Error;
use crate::keys::PublicKey;
use crate::session::Connection;
use crate::state::Reachability;
use crate::topic::Topic;

/// What a swarm reports, pulled with [`Swarm::next_event`](crate::Swarm::next_event).
#[derive(Debug)]
pub enum SwarmEvent {
    /// A new connection (one per remote key).
    Connection(Connection),
    /// A connection ended.
    Disconnected { remote: PublicKey, reason: Error },
    /// The number of connections in progress or open changed.
    Update { connecting: usize, connections: usize },
    /// A peer was banned (by `ban` or by the firewall).
    Ban { remote: PublicKey },
    /// A connected peer was also found under another topic.
    PeerTopic { remote: PublicKey, topic: Topic },
    /// The remote opened a named or shared stream nobody was waiting for; take it with
    /// `receive_stream(name)` / `create_shared_stream(name)` on its connection.
    Stream { remote: PublicKey, name: String, shared: bool },
    /// A topic message for a message topic we joined.
    Message { remote: PublicKey, topic: String, data: Vec<u8> },
    /// Our reachability changed (see [`Swarm::reachability`](crate::Swarm::reachability)).
    Reachability(Reachability),
}

impl SwarmEvent {
    /// A stable lowercase name for the event kind, for bindings.
    pub fn kind(&self) -> &'static str {
        match self {
            SwarmEvent::Connection(_) => "connection",
            SwarmEvent::Disconnected { .. } => "disconnected",
            SwarmEvent::Update { .. } => "update",
            SwarmEvent::Ban { .. } => "ban",
            SwarmEvent::PeerTopic { .. } => "topic",
            SwarmEvent::Stream { .. } => "stream",
            SwarmEvent::Message { .. } => "message",
            SwarmEvent::Reachability(_) => "reachability",
        }
    }

    /// The remote peer the event is about, if any.
    pub fn remote(&self) -> Option<PublicKey> {
        match self {
            SwarmEvent::Connection(c) => Some(c.remote_public_key()),
            SwarmEvent::Disconnected { remote, .. }
            | SwarmEvent::Ban { remote }
            | SwarmEvent::PeerTopic { remote, .. }
            | SwarmEvent::Stream { remote, .. }
            | SwarmEvent::Message { remote, .. } => Some(*remote),
            SwarmEvent::Update { .. } | SwarmEvent::Reachability(_) => None,
        }
    }
}

/// A tap: called with every event before the app's queue gets it; returns false to be removed.
/// It runs on the engine's task, so it must not block (no awaiting, short locks only).
pub(crate) type Tap = Box<dyn Fn(&SwarmEvent) -> bool + Send + Sync>;

/// The taps of one swarm (shared by its engine's [`EventSink`] and its `Swarm` handles, which
/// add to it without holding the app's queue open).
#[derive(Clone, Default)]
pub(crate) struct Taps(Arc<Mutex<Vec<Tap>>>);

impl Taps {
    /// Adds a tap for every event sent from now on.
    pub fn add(&self, tap: Tap) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(tap);
    }
}

/// Where the engine sends events: every tap first (layers built on a swarm, such as
/// [`Plex`](crate::plex::Plex), which so have seen each event before the app does), then the
/// app's queue ([`Swarm::next_event`](crate::Swarm::next_event)).
#[derive(Clone)]
pub(crate) struct EventSink {
    app: mpsc::UnboundedSender<SwarmEvent>,
    taps: Taps,
}

impl EventSink {
    /// A sink and the app's end of its queue.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<SwarmEvent>) {
        let (app, rx) = mpsc::unbounded_channel();
        (EventSink { app, taps: Taps::default() }, rx)
    }

    /// Shows `event` to every tap, then queues it for the app.
    pub fn send(&self, event: SwarmEvent) {
        self.taps.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|tap| tap(&event));
        let _ = self.app.send(event);
    }

    /// The sink's taps.
    pub fn taps(&self) -> Taps {
        self.taps.clone()
    }
}
