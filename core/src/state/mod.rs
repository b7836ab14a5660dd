//! The engine's rules as a sans-I/O state machine: peers and sessions, topic discovery, and the
//! swarm's lifecycle (suspend, resume, destroy).
//!
//! [`State`] performs no I/O and reads no clock and no global random generator: every input
//! carries `now`, randomness comes from a seeded [`StdRng`], and every effect leaves as an
//! [`Action`] in a queue the driver drains ([`State::poll_action`]), as in quinn-proto. Timers
//! are kept here too: the driver sleeps until [`State::next_deadline`] and then calls
//! [`State::handle_timeout`]. Handles that own I/O (the app's [`Connection`](crate::Connection),
//! the channel that activates a handshake task) are type parameters ([`Handles`]), so the tests
//! in `tests.rs` drive several states against each other in memory with a virtual clock.
//!
//! The rules live in submodules by concept, each an `impl State` block over the fields below:
//! - `peers`: the peer table, dialing and its cap, reconnect backoff, handshake verdicts,
//!   activation, session end, ban, suspend and resume.
//! - `conns`: transport connections: hole-punch wait, one relayed connection per pair, what a
//!   closed connection ends.
//! - `discovery`: joined topics, announce and lookup rounds, relookups, flush.
//! - [`backoff`], [`dedup`], [`round`]: the pure rules those use.

pub(crate) mod backoff;
mod conns;
pub(crate) mod dedup;
mod discovery;
mod members;
mod peers;
pub(crate) mod reach;
pub(crate) mod round;
#[cfg(test)]
mod tests;
pub(crate) mod timers;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::Error;
use crate::keys::PublicKey;
use crate::topic::Topic;

pub use peers::PeerInfo;
pub use reach::Reachability;
pub(crate) use reach::{ReachConfig, RelayRank};
pub(crate) use peers::SessionPlan;

use dedup::Role;
use discovery::{QueryInfo, TopicState};
use peers::{ConnInfo, Peer};
use reach::Reach;
use round::Waiters;
use timers::Timers;

/// How long `destroy` waits for sessions to say goodbye.
pub(crate) const DESTROY_GRACE: Duration = Duration::from_millis(500);
/// How long a session to be started on a relayed connection waits for hole punching (DCUtR) to
/// give a direct connection first, so the app sees one connection, not a relayed one replaced.
/// Started as soon as DCUtR reports that punching failed; 6 s covers one attempt plus QUIC's
/// 5 s handshake timeout (97.6 % of successful punches need one attempt).
pub(crate) const HOLE_PUNCH_WAIT: Duration = Duration::from_secs(6);

/// The I/O handles the state stores but never looks into.
pub(crate) trait Handles {
    /// The app's handle on a session ([`Connection`](crate::Connection) in production).
    type Session: Session;
    /// What activates a handshake task once its session is chosen (a oneshot sender).
    type Activate;
}

/// What the state may do to a session handle.
pub(crate) trait Session: Clone {
    /// Ends the session locally with `reason` (idempotent).
    fn end(&self, reason: Error);
    /// The peer was found under one more topic: record it in the handle's peer info.
    fn found_topic(&self, topic: Topic);
}

/// Names a DHT query the driver runs for the state (the driver maps libp2p's query ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct QueryRef(pub u64);

/// Names a `flush` caller waiting in the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FlushId(pub u64);

/// News for the app, turned into [`SwarmEvent`](crate::SwarmEvent)s by the driver.
#[derive(Debug)]
pub(crate) enum Notice<S> {
    Connection(S),
    Disconnected { remote: PublicKey, reason: Error },
    Update { connecting: usize, connections: usize },
    Ban { remote: PublicKey },
    PeerTopic { remote: PublicKey, topic: Topic },
    Reachability(Reachability),
}

/// What the state asks the driver to do.
#[derive(Debug)]
pub(crate) enum Action<S> {
    /// Dial the peer at the addresses libp2p knows, unless connected or dialing already.
    Dial(PeerId),
    /// Start the session handshake on `conn`: lead it (open the control stream and say Hello)
    /// or, as follower, knock.
    Handshake { pid: PeerId, key: PublicKey, conn: ConnectionId, role: Role },
    /// As leader, open the socket stream on `conn`: the session is accepted.
    OpenSocket { pid: PeerId, conn: ConnectionId },
    /// Close one transport connection.
    CloseConnection(ConnectionId),
    /// Close every transport connection to the peer.
    DisconnectPeer(PeerId),
    /// Refuse the peer's connections and substreams from now on.
    Block(PeerId),
    /// Announce ourselves as a provider of the topic (`start_providing`).
    Announce { topic: Topic, query: QueryRef },
    /// Stop announcing the topic.
    StopAnnouncing(Topic),
    /// Look up the topic's providers (`get_providers`).
    Lookup { topic: Topic, query: QueryRef },
    /// Finish a lookup early (it already had answers).
    FinishQuery(QueryRef),
    /// Tell the app.
    Notice(Notice<S>),
    /// A session with `pid` is up (for callers waiting on it).
    Connected { pid: PeerId, session: S },
    /// Dialing `pid` failed (for callers waiting on it).
    DialFailed { pid: PeerId, error: Error },
    /// A `flush` caller's wait is over.
    FlushDone(FlushId),
    /// Advertise this address as dialable (an external address).
    ConfirmAddr(Multiaddr),
    /// Stop advertising this address.
    ExpireAddr(Multiaddr),
    /// Reserve a slot on this relay (over our outbound direct connection to it).
    Reserve(PeerId),
    /// Give up our reservation on this relay.
    Release(PeerId),
}

/// Time-driven inputs; see [`State::handle_timeout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Retry a peer after backoff.
    Retry(PeerId),
    /// Start the topic's next round (generation).
    Refresh(Topic, u64),
    /// An extra lookup `i` after a client join.
    Relookup(Topic, u64, usize),
    /// An announce had time to land: the round's announce part is done.
    Settled(Topic, u64),
    /// A lookup that has answers has run long enough.
    LookupGrace(QueryRef),
    /// `destroy` stops waiting for goodbyes.
    DestroyDeadline,
    /// Start the session on this relayed connection if no direct one came meanwhile.
    HolePunch(PeerId, ConnectionId),
    /// Still Unknown: reserve relays anyway.
    ReachUnknown,
    /// Still no AutoNAT verdict: Private.
    ReachSilence,
    /// Announce whether or not reachability settled.
    AnnounceSettle,
    /// A relay's rest is over: choose relays again.
    RelayRested,
    /// Re-announce server topics after an address change.
    Reannounce,
}

/// Fixed inputs of a [`State`].
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Our public key.
    pub local: PublicKey,
    /// Cap on sessions plus dials in progress.
    pub max_peers: Option<usize>,
    /// Seed of the state's random generator (jitter, choices).
    pub seed: u64,
    /// Inputs of the reachability machine.
    pub reach: ReachConfig,
}

/// The engine's state; see the module docs.
pub(crate) struct State<H: Handles> {
    local: PublicKey,
    local_peer: PeerId,
    max_peers: Option<usize>,
    rng: StdRng,
    actions: VecDeque<Action<H::Session>>,
    timers: Timers<Timer>,
    // -- peers (`peers.rs`)
    peers: HashMap<PeerId, Peer<H>>,
    /// Every transport connection libp2p has open, whoever it is to.
    conns: HashMap<ConnectionId, ConnInfo>,
    /// (connecting, connections) as last reported, to report only changes.
    last_update: (usize, usize),
    // -- discovery (`discovery.rs`)
    topics: HashMap<Topic, TopicState>,
    queries: HashMap<QueryRef, QueryInfo>,
    next_query: u64,
    flush_waiters: Waiters<Topic, FlushId>,
    /// Whether we have a listen address (announces wait for one).
    listening: bool,
    // -- reachability and relays (`reach.rs`)
    reach: Reach,
    // -- lifecycle
    suspended: bool,
    destroying: Option<Destroying>,
}

/// Shutdown in progress: sessions were told goodbye; the loop ends when every one of them
/// reported its end (`closing` empty) or the grace period ran out (`done`).
struct Destroying {
    /// Session ids whose control tasks have not yet reported their end.
    closing: HashSet<[u8; 16]>,
    /// The grace period ran out.
    done: bool,
}

impl<H: Handles> State<H> {
    /// A state with no peers and no topics.
    pub fn new(config: Config) -> Self {
        State {
            local_peer: config.local.to_peer_id(),
            local: config.local,
            max_peers: config.max_peers,
            rng: StdRng::seed_from_u64(config.seed),
            actions: VecDeque::new(),
            timers: Timers::default(),
            peers: HashMap::new(),
            conns: HashMap::new(),
            last_update: (0, 0),
            topics: HashMap::new(),
            queries: HashMap::new(),
            next_query: 0,
            flush_waiters: Waiters::default(),
            listening: false,
            reach: Reach::new(config.reach),
            suspended: false,
            destroying: None,
        }
    }

    /// The next effect to carry out.
    pub fn poll_action(&mut self) -> Option<Action<H::Session>> {
        self.actions.pop_front()
    }

    /// When [`State::handle_timeout`] is next due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(t) = self.timers.pop_due(now) {
            self.on_timer(t, now);
        }
    }

    fn schedule(&mut self, at: Instant, timer: Timer) {
        self.timers.schedule(at, timer);
    }

    fn act(&mut self, action: Action<H::Session>) {
        self.actions.push_back(action);
    }

    fn notice(&mut self, notice: Notice<H::Session>) {
        self.act(Action::Notice(notice));
    }

    fn unit(&mut self) -> f64 {
        rand::Rng::r#gen(&mut self.rng)
    }

    fn on_timer(&mut self, t: Timer, now: Instant) {
        match t {
            Timer::Retry(pid) => self.retry(pid),
            Timer::Refresh(topic, generation) => self.on_refresh(topic, generation, now),
            Timer::Relookup(topic, generation, i) => self.on_relookup(topic, generation, i, now),
            Timer::Settled(topic, generation) => self.on_settled(topic, generation),
            Timer::LookupGrace(query) => {
                if self.queries.contains_key(&query) {
                    self.act(Action::FinishQuery(query));
                }
            }
            Timer::DestroyDeadline => {
                if let Some(d) = &mut self.destroying {
                    d.done = true;
                }
            }
            Timer::HolePunch(pid, conn) => self.on_hole_punch_wait(pid, conn),
            t => self.on_reach_timer(&t, now),
        }
    }

    // ---- lifecycle ---------------------------------------------------------------------------

    /// Whether `destroy` has begun.
    pub fn is_destroying(&self) -> bool {
        self.destroying.is_some()
    }

    /// Whether a destroy is complete: every session said goodbye, or the grace period ran out.
    pub fn is_destroyed(&self) -> bool {
        self.destroying.as_ref().is_some_and(|d| d.done || d.closing.is_empty())
    }

    /// Begins `destroy`: stops announcing, forgets every topic, ends every session (their
    /// control tasks say goodbye), and waits [`DESTROY_GRACE`] at most for those goodbyes.
    pub fn begin_destroy(&mut self, now: Instant) {
        if self.destroying.is_some() {
            return;
        }
        self.destroying = Some(Destroying { closing: HashSet::new(), done: false });
        let topics: Vec<(Topic, bool)> = self.topics.drain().map(|(t, s)| (t, s.opts.server)).collect();
        for (t, server) in topics {
            if server {
                self.act(Action::StopAnnouncing(t));
            }
        }
        for pid in self.peers_with_sessions() {
            self.end_session(pid, Error::Closed("swarm destroyed".into()), false, now);
        }
        if self.destroying.as_ref().is_some_and(|d| !d.closing.is_empty()) {
            self.schedule(now + DESTROY_GRACE, Timer::DestroyDeadline);
        }
    }

    /// Every pending `flush` caller (answered when the loop ends).
    pub fn take_flush_waiters(&mut self) -> Vec<FlushId> {
        self.flush_waiters.take_all()
    }
}

/// Addresses and transport facts of a connection, as libp2p reported them.
#[derive(Debug, Clone)]
pub(crate) struct ConnFacts {
    /// Whether we dialed it.
    pub dialer: bool,
    /// The remote address (a `/p2p-circuit` address for relayed connections).
    pub addr: Multiaddr,
    /// Whether it runs through a relay.
    pub relayed: bool,
}
