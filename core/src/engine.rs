//! The event loop: one task owns the libp2p `Swarm` and all peer, topic and session state.
//!
//! Handles ([`crate::Swarm`], [`crate::Connection`]) send it [`Command`]s; helper tasks (stream
//! headers, handshakes, control streams, message readers) report back as [`Internal`] messages;
//! the app pulls [`SwarmEvent`]s. Nothing in here awaits I/O: anything slow runs in its own task,
//! so one stuck peer never stalls the others.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{AsyncWriteExt, FutureExt, StreamExt};
use libp2p::kad::{self, GetProvidersOk, QueryId, QueryResult};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{ConnectionId, DialError, NetworkBehaviour, SwarmEvent as P2pEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, connection_limits, dcutr, identify, mdns, relay};
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};

use crate::backoff::{Backoff, jitter};
use crate::dedup::{self, Existing, Role, Verdict};
use crate::error::{Error, Result};
use crate::exchange::{self, Candidate, Request};
use crate::flush::{Round, Waiters};
use crate::handshake::{self, Ctx};
use crate::keys::PublicKey;
use crate::options::JoinOptions;
use crate::session::{self, Activation, Connection, Handshake, MAX_MESSAGE, PeerInfo, Shared};
use crate::stream::Stream;
use crate::substreams::{self, OpenReply, Substreams};
use crate::swarm::SwarmEvent;
use crate::topic::Topic;
use crate::wire::{Header, Kind};

/// Re-announce and re-lookup period (jittered ±20 %).
const REFRESH: Duration = Duration::from_secs(600);
/// Extra lookups after a client join, so peers that raced each other's announces meet quickly.
const RELOOKUPS: [Duration; 4] =
    [Duration::from_secs(1), Duration::from_secs(3), Duration::from_secs(10), Duration::from_secs(30)];
/// How long `destroy` waits for sessions to say goodbye.
const DESTROY_GRACE: Duration = Duration::from_millis(500);
/// How long a session to be started on a relayed connection waits for hole punching (DCUtR) to
/// give a direct connection first, so the app sees one connection, not a relayed one replaced.
const HOLE_PUNCH_WAIT: Duration = Duration::from_secs(3);
/// The head start a direct dial to an introduced peer gets before we also dial through the relay.
const DIRECT_HEAD_START: Duration = Duration::from_secs(1);
/// How long `connect` waits for the relay reservation on the new peer to settle.
const RELAY_SETTLE_WAIT: Duration = Duration::from_secs(5);
/// Peer-exchange requests one peer may make per minute.
const EXCHANGE_PER_MINUTE: u32 = 60;

/// Where the answer to a `connect` or `get_new_peer` goes.
pub(crate) type ConnectReply = oneshot::Sender<Result<Connection>>;

/// The composed libp2p behaviour.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(crate) struct Behaviour {
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub identify: identify::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub limits: connection_limits::Behaviour,
    pub relay: Toggle<relay::Behaviour>,
    pub relay_client: relay::client::Behaviour,
    pub dcutr: dcutr::Behaviour,
    pub substreams: Substreams,
}

/// Requests from handles to the loop.
pub(crate) enum Command {
    Join { topic: Topic, opts: JoinOptions },
    Leave { topic: Topic },
    Refresh { topic: Topic, opts: Option<JoinOptions> },
    Flush { topic: Option<Topic>, reply: oneshot::Sender<()> },
    JoinPeer { key: PublicKey },
    LeavePeer { key: PublicKey },
    /// The listen addresses once there are at least `min` of them (0: at once).
    ListenAddrs { min: usize, reply: oneshot::Sender<Vec<Multiaddr>> },
    Status { topic: Topic, reply: oneshot::Sender<Option<JoinOptions>> },
    Topics { reply: oneshot::Sender<Vec<(Topic, JoinOptions)>> },
    Connections { reply: oneshot::Sender<Vec<Connection>> },
    /// Resolves with the session to `key` as soon as there is one.
    WaitConnection { key: PublicKey, reply: oneshot::Sender<Connection> },
    OpenStream { peer: PeerId, conn: ConnectionId, reply: OpenReply },
    CloseSession { conn: ConnectionId },
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
    Suspend,
    Resume,
    Destroy { reply: Option<oneshot::Sender<()>> },
}

/// Reports from helper tasks to the loop.
pub(crate) enum Internal {
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
}

enum Timer {
    Retry(PeerId),
    Refresh(Topic, u64),
    Relookup(Topic, u64, usize),
    Settled(Topic, u64),
    LookupGrace(QueryId),
    DestroyDeadline,
    /// Start the session on this relayed connection if no direct one came meanwhile.
    HolePunch(PeerId, ConnectionId),
    /// Answer `connect` callers even if the relay reservation on the peer never settled.
    RelaySettle(PeerId),
    /// The direct dial to an introduced peer had its head start: dial through the relay too.
    RelayFallback(PeerId),
}

struct Pending {
    handshake: Handshake,
    activate: oneshot::Sender<Activation>,
}

struct Active {
    conn: ConnectionId,
    session_id: [u8; 16],
    connection: Connection,
    since: Instant,
    remote_instance: u64,
}

struct Peer {
    key: PublicKey,
    topics: Vec<Topic>,
    explicit: bool,
    banned: bool,
    dialing: bool,
    backoff: Backoff,
    session: Option<Active>,
    leading: HashMap<ConnectionId, Pending>,
    following: HashMap<ConnectionId, Pending>,
}

struct ConnInfo {
    peer: PeerId,
    dialer: bool,
    handshaking: bool,
    /// The remote address (a `/p2p-circuit` address for relayed connections).
    addr: Multiaddr,
    relayed: bool,
}

struct TopicState {
    opts: JoinOptions,
    /// A hidden lookup that `join_peer` runs for one peer's self-announce: it dials only that
    /// peer, and does not show in `topics()`, `status()` or PeerInfo topics.
    only: Option<PeerId>,
    generation: u64,
    announce_deferred: bool,
    round: Round<PeerId>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum QueryKind {
    Announce,
    Lookup { round: bool },
}

struct QueryInfo {
    topic: Topic,
    kind: QueryKind,
    generation: u64,
    started: Instant,
    grace_set: bool,
}

/// The loop's state. Built by `crate::swarm`, then consumed by [`Engine::run`].
pub(crate) struct Engine {
    pub swarm: libp2p::Swarm<Behaviour>,
    pub local: PublicKey,
    pub local_peer: PeerId,
    pub ctx: Ctx,
    pub cmd_rx: mpsc::UnboundedReceiver<Command>,
    pub internal_rx: mpsc::UnboundedReceiver<Internal>,
    pub events: mpsc::UnboundedSender<SwarmEvent>,
    pub max_peers: Option<usize>,
    pub kad_protocol: StreamProtocol,
    pub message_topics: Arc<Mutex<HashSet<String>>>,
    pub connecting: Arc<std::sync::atomic::AtomicUsize>,
    /// No bootstrap list: serve the DHT to peers found by mDNS (LAN-only mode).
    pub lan_dht: bool,
    /// Reserve a relay slot on connected peers that offer one.
    pub reserve_relays: bool,
    peers: HashMap<PeerId, Peer>,
    conns: HashMap<ConnectionId, ConnInfo>,
    topics: HashMap<Topic, TopicState>,
    queries: HashMap<QueryId, QueryInfo>,
    timers: FuturesUnordered<BoxFuture<'static, Timer>>,
    flush_waiters: Waiters<Topic, oneshot::Sender<()>>,
    listen_waiters: Vec<(usize, oneshot::Sender<Vec<Multiaddr>>)>,
    conn_waiters: HashMap<PeerId, Vec<oneshot::Sender<Connection>>>,
    listen_addrs: Vec<Multiaddr>,
    suspended: bool,
    destroying: Option<Destroying>,
    last_update: (usize, usize),
    /// `connect` dials by address: the peer is known only once connected.
    addr_dials: HashMap<ConnectionId, ConnectReply>,
    /// `connect` / `get_new_peer` callers waiting for a session with a peer.
    dial_waiters: HashMap<PeerId, Vec<ConnectReply>>,
    /// ... and, once it is up, for our relay reservation on that peer to settle.
    settle_waiters: HashMap<PeerId, Vec<(ConnectReply, Connection)>>,
    listen_replies: HashMap<ListenerId, oneshot::Sender<Result<Multiaddr>>>,
    /// The addresses each listener is bound to, and `StopListening` calls awaiting a close.
    listener_addrs: HashMap<ListenerId, Vec<Multiaddr>>,
    unlisten_replies: HashMap<ListenerId, oneshot::Sender<Result<()>>>,
    /// Our relay reservations (listener → relay) and which relays are settled.
    reservations: HashMap<ListenerId, PeerId>,
    relays_settled: HashSet<PeerId>,
    /// Peers holding a relay reservation with us.
    reserved_here: HashSet<PeerId>,
    /// `connect` calls to relayed addresses waiting for a connection to their relay.
    circuit_dials: HashMap<PeerId, Vec<(Multiaddr, ConnectReply)>>,
    /// Introduced peers being dialed directly first: the relay address to fall back on.
    relay_fallback: HashMap<PeerId, Multiaddr>,
    /// Peer-exchange requests served per peer in the current minute.
    exchange_served: HashMap<PeerId, (Instant, u32)>,
}

struct Destroying {
    waiters: Vec<oneshot::Sender<()>>,
    closing: HashSet<[u8; 16]>,
    done: bool,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        swarm: libp2p::Swarm<Behaviour>,
        local: PublicKey,
        ctx: Ctx,
        cmd_rx: mpsc::UnboundedReceiver<Command>,
        internal_rx: mpsc::UnboundedReceiver<Internal>,
        events: mpsc::UnboundedSender<SwarmEvent>,
        max_peers: Option<usize>,
        kad_protocol: StreamProtocol,
        message_topics: Arc<Mutex<HashSet<String>>>,
        connecting: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Self {
        Engine {
            local_peer: local.to_peer_id(),
            swarm,
            local,
            ctx,
            cmd_rx,
            internal_rx,
            events,
            max_peers,
            kad_protocol,
            message_topics,
            connecting,
            lan_dht: false,
            reserve_relays: false,
            addr_dials: HashMap::new(),
            dial_waiters: HashMap::new(),
            settle_waiters: HashMap::new(),
            listen_replies: HashMap::new(),
            listener_addrs: HashMap::new(),
            unlisten_replies: HashMap::new(),
            reservations: HashMap::new(),
            relays_settled: HashSet::new(),
            reserved_here: HashSet::new(),
            exchange_served: HashMap::new(),
            relay_fallback: HashMap::new(),
            circuit_dials: HashMap::new(),
            peers: HashMap::new(),
            conns: HashMap::new(),
            topics: HashMap::new(),
            queries: HashMap::new(),
            timers: FuturesUnordered::new(),
            flush_waiters: Waiters::default(),
            listen_waiters: Vec::new(),
            conn_waiters: HashMap::new(),
            listen_addrs: Vec::new(),
            suspended: false,
            destroying: None,
            last_update: (0, 0),
        }
    }

    /// Runs until the swarm is destroyed (or its last handle dropped).
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(c) => self.on_command(c),
                    None => self.begin_destroy(None),
                },
                Some(msg) = self.internal_rx.recv() => self.on_internal(msg),
                Some(t) = self.timers.next(), if !self.timers.is_empty() => self.on_timer(t),
            }
            if self.destroying.as_ref().is_some_and(|d| d.done || d.closing.is_empty()) {
                break;
            }
        }
        let waiters = self.destroying.take().map(|d| d.waiters).unwrap_or_default();
        for w in self.flush_waiters.take_all() {
            let _ = w.send(());
        }
        drop(self.swarm); // closes every connection
        for w in waiters {
            let _ = w.send(());
        }
    }

    fn schedule(&mut self, after: Duration, timer: Timer) {
        self.timers.push(async move {
            tokio::time::sleep(after).await;
            timer
        }
        .boxed());
    }

    fn emit(&self, event: SwarmEvent) {
        let _ = self.events.send(event);
    }

    // ---- commands ----------------------------------------------------------------------------

    fn on_command(&mut self, cmd: Command) {
        if self.destroying.is_some() {
            if let Command::Destroy { reply: Some(r) } = cmd {
                self.destroying.as_mut().unwrap().waiters.push(r);
            }
            return; // everything else is moot; replies drop and callers see Closed
        }
        match cmd {
            Command::Join { topic, opts } => {
                let ts = self.topics.entry(topic).or_insert(TopicState {
                    only: None,
                    opts,
                    generation: 0,
                    announce_deferred: false,
                    round: Round::default(),
                });
                let was_server = ts.opts.server;
                ts.opts = opts;
                ts.only = None; // joined explicitly: an ordinary topic from now on
                if was_server && !opts.server {
                    self.swarm.behaviour_mut().kad.stop_providing(&topic.dht_key());
                }
                self.start_round(topic);
            }
            Command::Leave { topic } => {
                if let Some(ts) = self.topics.remove(&topic) {
                    if ts.opts.server {
                        self.swarm.behaviour_mut().kad.stop_providing(&topic.dht_key());
                    }
                }
                self.check_flush();
            }
            Command::Refresh { topic, opts } => {
                if let Some(ts) = self.topics.get_mut(&topic) {
                    if let Some(o) = opts {
                        ts.opts = o;
                    }
                    self.start_round(topic);
                }
            }
            Command::Flush { topic, reply } => {
                self.flush_waiters.push(topic, reply);
                self.check_flush();
            }
            Command::JoinPeer { key } => {
                if key == self.local {
                    return;
                }
                let pid = self.peer_entry(key);
                let p = self.peers.get_mut(&pid).unwrap();
                p.explicit = true;
                p.backoff = Backoff::default();
                self.dial(pid);
                // Find it by key too: look up its self-announce (see `Swarm::listen`).
                let lookup = Topic::for_public_key(&key);
                if !self.topics.contains_key(&lookup) {
                    self.topics.insert(lookup, TopicState {
                        only: Some(pid),
                        opts: JoinOptions { server: false, client: true },
                        generation: 0,
                        announce_deferred: false,
                        round: Round::default(),
                    });
                    self.start_round(lookup);
                }
            }
            Command::LeavePeer { key } => {
                if let Some(p) = self.peers.get_mut(&key.to_peer_id()) {
                    p.explicit = false;
                }
                let lookup = Topic::for_public_key(&key);
                if self.topics.get(&lookup).is_some_and(|t| t.only.is_some()) {
                    self.topics.remove(&lookup);
                    self.check_flush();
                }
            }
            Command::ListenAddrs { min, reply } => {
                if self.listen_addrs.len() < min {
                    self.listen_waiters.push((min, reply));
                } else {
                    let _ = reply.send(self.listen_addrs.clone());
                }
            }
            Command::Status { topic, reply } => {
                let _ = reply.send(self.topics.get(&topic).filter(|t| t.only.is_none()).map(|t| t.opts));
            }
            Command::Topics { reply } => {
                let visible = self.topics.iter().filter(|(_, s)| s.only.is_none());
                let _ = reply.send(visible.map(|(t, s)| (*t, s.opts)).collect());
            }
            Command::Connections { reply } => {
                let list = self.peers.values().filter_map(|p| p.session.as_ref()).map(|s| s.connection.clone());
                let _ = reply.send(list.collect());
            }
            Command::WaitConnection { key, reply } => {
                let pid = key.to_peer_id();
                match self.peers.get(&pid).and_then(|p| p.session.as_ref()) {
                    Some(s) => {
                        let _ = reply.send(s.connection.clone());
                    }
                    None => self.conn_waiters.entry(pid).or_default().push(reply),
                }
            }
            Command::OpenStream { peer, conn, reply } => {
                if self.conns.contains_key(&conn) {
                    self.swarm.behaviour_mut().substreams.open(peer, conn, reply);
                } else {
                    let _ = reply.send(Err(substreams::OpenError::Failed("connection closed".into())));
                }
            }
            Command::CloseSession { conn } => {
                if let Some(pid) = self.session_peer(conn) {
                    self.end_session(pid, Error::Closed("closed locally".into()), true);
                }
            }
            Command::Ban { key } => self.ban(key.to_peer_id()),
            Command::Connect { addr, reply } => {
                // A relayed address: libp2p's relay client cannot dial it while the relay itself
                // is still being dialed, so connect to the relay first and dial the circuit then.
                if let Some(relay) = relay_of(&addr).filter(|r| self.direct_addr(*r).is_none()) {
                    let mut base = addr.clone();
                    while base.iter().any(|p| p == Protocol::P2pCircuit) {
                        base.pop();
                    }
                    let opts = DialOpts::peer_id(relay).addresses(vec![strip_p2p(base)]).extend_addresses_through_behaviour().build();
                    match self.swarm.dial(opts) {
                        Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {
                            self.circuit_dials.entry(relay).or_default().push((addr, reply));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(Error::Connect(format!("relay: {e}"))));
                        }
                    }
                    return;
                }
                let opts = DialOpts::unknown_peer_id().address(addr).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.addr_dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(Error::Connect(e.to_string())));
                    }
                }
            }
            Command::ListenOn { addr, reply } => match self.swarm.listen_on(addr.clone()) {
                Ok(id) => {
                    self.listen_replies.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::InvalidInput(format!("listen on {addr}: {e}"))));
                }
            },
            Command::StopListening { addr, reply } => {
                let found = self.listener_addrs.iter().find(|(_, addrs)| addrs.contains(&addr)).map(|(id, _)| *id);
                match found {
                    Some(id) if self.swarm.remove_listener(id) => {
                        self.unlisten_replies.insert(id, reply);
                    }
                    _ => {
                        let _ = reply.send(Err(Error::InvalidInput(format!("not listening on {addr}"))));
                    }
                }
            }
            Command::GetNewPeer { via, reply } => self.ask_for_peer(via, reply),
            Command::Suspend => self.suspend(),
            Command::Resume => self.resume(),
            Command::Destroy { reply } => self.begin_destroy(reply),
        }
    }

    fn peer_entry(&mut self, key: PublicKey) -> PeerId {
        let pid = key.to_peer_id();
        self.peers.entry(pid).or_insert_with(|| Peer {
            key,
            topics: Vec::new(),
            explicit: false,
            banned: false,
            dialing: false,
            backoff: Backoff::default(),
            session: None,
            leading: HashMap::new(),
            following: HashMap::new(),
        });
        pid
    }

    fn session_peer(&self, conn: ConnectionId) -> Option<PeerId> {
        self.conns.get(&conn).map(|c| c.peer).filter(|pid| {
            self.peers.get(pid).and_then(|p| p.session.as_ref()).is_some_and(|s| s.conn == conn)
        })
    }

    fn wanted(&self, p: &Peer) -> bool {
        !p.banned
            && (p.explicit || p.topics.iter().any(|t| self.topics.get(t).is_some_and(|ts| ts.opts.client)))
    }

    fn count_sessions(&self) -> usize {
        self.peers.values().filter(|p| p.session.is_some()).count()
    }

    fn count_connecting(&self) -> usize {
        self.peers.values().filter(|p| p.dialing && p.session.is_none()).count()
    }

    fn update(&mut self) {
        let now = (self.count_connecting(), self.count_sessions());
        self.connecting.store(now.0, std::sync::atomic::Ordering::Relaxed);
        if now != self.last_update {
            self.last_update = now;
            self.emit(SwarmEvent::Update { connecting: now.0, connections: now.1 });
        }
    }

    // ---- discovery ---------------------------------------------------------------------------

    fn start_round(&mut self, topic: Topic) {
        let listening = !self.listen_addrs.is_empty();
        let Some(ts) = self.topics.get_mut(&topic) else { return };
        ts.generation += 1;
        ts.round = Round::start(ts.opts.server, ts.opts.client);
        ts.announce_deferred = false;
        let generation = ts.generation;
        let opts = ts.opts;
        if self.suspended {
            ts.round = Round::default();
            self.check_flush();
            return;
        }
        if opts.server {
            if listening {
                self.announce(topic, generation);
            } else {
                self.topics.get_mut(&topic).unwrap().announce_deferred = true;
            }
        }
        if opts.client {
            self.lookup(topic, generation, true);
            self.schedule(RELOOKUPS[0], Timer::Relookup(topic, generation, 0));
        }
        let unit: f64 = rand::thread_rng().r#gen();
        self.schedule(jitter(REFRESH, unit), Timer::Refresh(topic, generation));
        self.check_flush();
    }

    fn announce(&mut self, topic: Topic, generation: u64) {
        match self.swarm.behaviour_mut().kad.start_providing(topic.dht_key()) {
            Ok(id) => {
                self.queries.insert(id, QueryInfo {
                    topic,
                    kind: QueryKind::Announce,
                    generation,
                    started: Instant::now(),
                    grace_set: false,
                });
            }
            Err(e) => {
                tracing::warn!(?topic, "announce failed: {e}");
                if let Some(ts) = self.topics.get_mut(&topic) {
                    ts.round.announced();
                }
            }
        }
    }

    fn lookup(&mut self, topic: Topic, generation: u64, round: bool) {
        let id = self.swarm.behaviour_mut().kad.get_providers(topic.dht_key());
        self.queries.insert(id, QueryInfo {
            topic,
            kind: QueryKind::Lookup { round },
            generation,
            started: Instant::now(),
            grace_set: false,
        });
    }

    fn on_kad(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed { id, result, step, .. } = event else { return };
        let Some(info) = self.queries.get_mut(&id) else { return };
        let (topic, kind, generation, started) = (info.topic, info.kind, info.generation, info.started);
        let current = self.topics.get(&topic).is_some_and(|t| t.generation == generation);
        match result {
            QueryResult::StartProviding(res) => {
                self.queries.remove(&id);
                if let Err(e) = res {
                    tracing::debug!(?topic, "announce: {e:?}");
                }
                // ADD_PROVIDER has no reply: give it a moment to land before the round counts.
                let settle = (started.elapsed() / 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
                self.schedule(settle, Timer::Settled(topic, generation));
            }
            QueryResult::GetProviders(res) => {
                if let Ok(GetProvidersOk::FoundProviders { providers, .. }) = res {
                    if !info.grace_set {
                        // kad waits out unresponsive peers (10 s each); once answers come in,
                        // finish soon after. The next lookup catches anything this one missed.
                        info.grace_set = true;
                        let grace = (started.elapsed() * 4).max(Duration::from_millis(500));
                        self.schedule(grace, Timer::LookupGrace(id));
                    }
                    if self.topics.get(&topic).is_some_and(|t| t.opts.client) {
                        for p in providers {
                            self.on_found(topic, p, current);
                        }
                    }
                }
                if step.last {
                    self.queries.remove(&id);
                    if current && kind == (QueryKind::Lookup { round: true }) {
                        self.topics.get_mut(&topic).unwrap().round.looked_up();
                        self.check_flush();
                    }
                }
            }
            _ => {}
        }
    }

    fn on_found(&mut self, topic: Topic, pid: PeerId, current_round: bool) {
        if pid == self.local_peer {
            return;
        }
        let Some(key) = PublicKey::from_peer_id(&pid) else { return };
        let hidden = match self.topics.get(&topic).and_then(|t| t.only) {
            Some(only) if only != pid => return, // someone else announcing under that key's topic
            Some(_) => true,
            None => false,
        };
        self.peer_entry(key);
        let p = self.peers.get_mut(&pid).unwrap();
        if !hidden && !p.topics.contains(&topic) {
            p.topics.push(topic);
            if let Some(s) = &p.session {
                let mut info = s.connection.inner.info.lock().unwrap();
                info.topics.push(topic);
                info.client = true;
                drop(info);
                let _ = self.events.send(SwarmEvent::PeerTopic { remote: key, topic });
            }
        }
        if p.session.is_some() || p.banned {
            return;
        }
        self.dial(pid);
        if current_round && self.peers[&pid].dialing {
            self.topics.get_mut(&topic).unwrap().round.dialing(pid);
        }
    }

    // ---- dialing and reconnects --------------------------------------------------------------

    fn dial(&mut self, pid: PeerId) {
        let at_cap = self.max_peers.is_some_and(|m| self.count_sessions() + self.count_connecting() >= m);
        let existing = self
            .conns
            .iter()
            .filter(|(_, c)| c.peer == pid)
            .min_by_key(|(_, c)| c.relayed)
            .map(|(id, _)| *id);
        let Some(p) = self.peers.get_mut(&pid) else { return };
        if p.banned || p.session.is_some() || p.dialing || self.suspended || at_cap {
            return;
        }
        p.dialing = true;
        if let Some(conn) = existing {
            self.initiate(pid, conn);
        } else {
            let opts = DialOpts::peer_id(pid).condition(PeerCondition::DisconnectedAndNotDialing).build();
            match self.swarm.dial(opts) {
                Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => {
                    self.failed(pid, Error::Connect(e.to_string()));
                    return;
                }
            }
        }
        self.update();
    }

    /// Starts the session handshake on `conn`: the leader says Hello, a follower knocks.
    fn initiate(&mut self, pid: PeerId, conn: ConnectionId) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if c.handshaking {
            return;
        }
        c.handshaking = true;
        let key = self.peers[&pid].key;
        let ctx = self.ctx.clone();
        match dedup::role(&self.local, &key) {
            Role::Leader => tokio::spawn(handshake::lead(ctx, pid, key, conn, None)),
            Role::Follower => tokio::spawn(handshake::knock(ctx, pid, key, conn)),
        };
    }

    /// A dial or a handshake failed: retry with backoff if we still want the peer.
    fn failed(&mut self, pid: PeerId, error: Error) {
        for ts in self.topics.values_mut() {
            ts.round.settled(&pid);
        }
        for w in self.dial_waiters.remove(&pid).unwrap_or_default() {
            let _ = w.send(Err(error.clone()));
        }
        let Some(p) = self.peers.get(&pid) else { return };
        let wanted = self.wanted(p);
        let p = self.peers.get_mut(&pid).unwrap();
        p.dialing = false;
        tracing::debug!(key = %p.key, "connect failed: {error}");
        if wanted && p.session.is_none() && !self.suspended {
            match p.backoff.on_failure(p.explicit) {
                Some(d) => {
                    let unit: f64 = rand::thread_rng().r#gen();
                    self.schedule(jitter(d, unit), Timer::Retry(pid));
                }
                None => p.topics.clear(), // given up until a lookup finds it again
            }
        }
        self.update();
        self.check_flush();
        self.gc(pid);
    }

    fn gc(&mut self, pid: PeerId) {
        let keep = self.peers.get(&pid).is_some_and(|p| {
            p.session.is_some()
                || p.explicit
                || p.banned
                || p.dialing
                || !p.leading.is_empty()
                || !p.following.is_empty()
                || self.wanted(p)
        });
        if !keep {
            self.peers.remove(&pid);
        }
    }

    // ---- sessions ----------------------------------------------------------------------------

    fn on_handshaked(&mut self, pid: PeerId, conn: ConnectionId, role: Role, hs: Handshake, activate: oneshot::Sender<Activation>) {
        if !self.conns.contains_key(&conn) {
            return; // closed meanwhile; dropping `activate` ends the task
        }
        let Some(p) = self.peers.get_mut(&pid) else { return };
        tracing::debug!(local = %short(&self.local), remote = %short(&p.key), ?conn, ?role, session = %hex::encode(&hs.session_id[..4]), "handshaked");
        let pending = Pending { handshake: hs, activate };
        match role {
            Role::Follower => {
                p.following.insert(conn, pending);
            }
            Role::Leader => {
                let existing = match (&p.session, p.leading.values().next()) {
                    (Some(s), _) => Existing::Active { remote_instance: s.remote_instance },
                    (None, Some(l)) => Existing::Active { remote_instance: l.handshake.remote_instance },
                    (None, None) => Existing::None,
                };
                match dedup::leader_verdict(existing, pending.handshake.remote_instance) {
                    Verdict::Accept | Verdict::ReplaceStale => {
                        p.leading.insert(conn, pending);
                        let cmd = self.ctx.cmd.clone();
                        let report = self.ctx.report.clone();
                        tokio::spawn(async move {
                            let result = session::open_raw(&cmd, pid, conn, Header::new(Kind::Socket, "")).await;
                            let _ = report.send(Internal::SocketOpened { peer: pid, conn, result });
                        });
                    }
                    Verdict::Duplicate => {
                        tracing::debug!(key = %p.key, "duplicate connection closed");
                        let _ = self.swarm.close_connection(conn);
                    }
                }
            }
        }
    }

    fn activate(&mut self, pid: PeerId, conn: ConnectionId, pending: Pending, socket: libp2p::Stream, role: Role) {
        if let Some(old) = self.peers.get(&pid).and_then(|p| p.session.as_ref()).map(|s| s.conn) {
            if old != conn {
                self.end_session(pid, Error::Duplicate, true);
            }
        }
        let is_initiator = self.conns.get(&conn).is_some_and(|c| c.dialer);
        let remote_addr = self.conns.get(&conn).map(|c| c.addr.clone()).unwrap_or_else(Multiaddr::empty);
        let wanted = self.peers.get(&pid).is_some_and(|p| self.wanted(p));
        let Some(p) = self.peers.get_mut(&pid) else { return };
        let (leader, follower) = match role {
            Role::Leader => (self.local, p.key),
            Role::Follower => (p.key, self.local),
        };
        let (closed_tx, closed_rx) = watch::channel(None);
        let connection = Connection {
            inner: Arc::new(Shared {
                remote: p.key,
                peer: pid,
                conn,
                role,
                handshake_hash: pending.handshake.hash(&leader, &follower),
                is_initiator,
                remote_addr,
                socket: Stream::new(socket, String::new(), p.key, closed_tx.subscribe()),
                info: Mutex::new(PeerInfo {
                    public_key: p.key,
                    topics: p.topics.clone(),
                    client: wanted && !p.topics.is_empty(),
                    explicit: p.explicit,
                }),
                closed_tx,
                cmd: self.ctx.cmd.clone(),
                registry: Mutex::default(),
            }),
        };
        tracing::debug!(local = %short(&self.local), remote = %short(&p.key), ?conn, ?role, session = %hex::encode(&pending.handshake.session_id[..4]), "session active");
        if pending.activate.send(Activation { closed: closed_rx }).is_err() {
            return; // control task gone: the connection is closing
        }
        p.session = Some(Active {
            conn,
            session_id: pending.handshake.session_id,
            connection: connection.clone(),
            since: Instant::now(),
            remote_instance: pending.handshake.remote_instance,
        });
        p.dialing = false;
        for ts in self.topics.values_mut() {
            ts.round.settled(&pid);
        }
        for w in self.conn_waiters.remove(&pid).unwrap_or_default() {
            let _ = w.send(connection.clone());
        }
        for w in self.dial_waiters.remove(&pid).unwrap_or_default() {
            self.reply_when_settled(pid, w, connection.clone());
        }
        self.emit(SwarmEvent::Connection(connection));
        self.update();
        self.check_flush();
    }

    // ---- relays and peer exchange ------------------------------------------------------------

    /// Answers a `connect` caller once our relay reservation on `pid` settled (so peers that
    /// ask `pid` for a new peer right after can be offered us), or at once if we reserve none.
    fn reply_when_settled(&mut self, pid: PeerId, reply: ConnectReply, connection: Connection) {
        if !self.reserve_relays || self.relays_settled.contains(&pid) {
            let _ = reply.send(Ok(connection));
            return;
        }
        let list = self.settle_waiters.entry(pid).or_default();
        if list.is_empty() {
            self.schedule(RELAY_SETTLE_WAIT, Timer::RelaySettle(pid));
        }
        self.settle_waiters.get_mut(&pid).unwrap().push((reply, connection));
    }

    fn relay_settled(&mut self, pid: PeerId) {
        self.relays_settled.insert(pid);
        self.answer_settle_waiters(pid);
    }

    /// Answers the `connect` callers waiting on `pid`'s reservation, settled or not.
    fn answer_settle_waiters(&mut self, pid: PeerId) {
        for (w, c) in self.settle_waiters.remove(&pid).unwrap_or_default() {
            let _ = w.send(Ok(c));
        }
    }

    /// Drops an address we no longer listen on from what we advertise.
    fn forget_listen_addr(&mut self, address: &Multiaddr) {
        self.listen_addrs.retain(|a| a != address);
        self.swarm.remove_external_address(address);
    }

    /// The remote address of a direct (not relayed) connection to `pid`, if there is one.
    fn direct_addr(&self, pid: PeerId) -> Option<Multiaddr> {
        self.conns.values().find(|c| c.peer == pid && !c.relayed).map(|c| c.addr.clone())
    }

    /// Reserves a slot on `pid`'s relay, over a direct connection we have to it.
    fn reserve_on(&mut self, pid: PeerId) {
        if self.reservations.values().any(|r| *r == pid) {
            return;
        }
        let Some(addr) = self.direct_addr(pid) else { return };
        let circuit = circuit_via(addr, pid);
        match self.swarm.listen_on(circuit.clone()) {
            Ok(id) => {
                tracing::debug!(%circuit, "reserving a relay slot");
                self.relays_settled.remove(&pid);
                self.reservations.insert(id, pid);
            }
            Err(e) => {
                tracing::debug!(%circuit, "cannot reserve: {e}");
                self.relay_settled(pid);
            }
        }
    }

    /// `get_new_peer`: asks `via` (or a random connected peer) for another peer.
    fn ask_for_peer(&mut self, via: Option<PublicKey>, reply: ConnectReply) {
        let sessions: Vec<(PeerId, ConnectionId, PublicKey)> = self
            .peers
            .iter()
            .filter_map(|(id, p)| p.session.as_ref().map(|s| (*id, s.conn, p.key)))
            .collect();
        let chosen = match via {
            Some(k) => sessions.iter().find(|(_, _, key)| *key == k).copied(),
            None if sessions.is_empty() => None,
            None => Some(sessions[rand::thread_rng().gen_range(0..sessions.len())]),
        };
        let Some((via, conn, via_key)) = chosen else {
            let why = match via {
                Some(k) => format!("not connected to {}", short(&k)),
                None => "not connected to any peers".into(),
            };
            let _ = reply.send(Err(Error::Connect(why)));
            return;
        };
        let mut exclude = vec![self.local];
        exclude.extend(sessions.iter().map(|(_, _, k)| *k).filter(|k| *k != via_key));
        let request = Request { exclude }.encode();
        let cmd = self.ctx.cmd.clone();
        let report = self.ctx.report.clone();
        tokio::spawn(async move {
            let ask = async {
                let mut raw = session::open_raw(&cmd, via, conn, Header::new(Kind::Exchange, "")).await?;
                let io = |e: std::io::Error| Error::Reset(format!("peer exchange: {e}"));
                raw.write_all(&request).await.map_err(io)?;
                raw.flush().await.map_err(io)?;
                exchange::read_answer(&mut raw).await.map_err(io)
            };
            let result = match tokio::time::timeout(session::STEP_TIMEOUT, ask).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout("waiting for a peer-exchange answer".into())),
            };
            let _ = report.send(Internal::ExchangeAnswer { via, result, reply });
        });
    }

    /// The asked peer offered `answer`: connect to it, through `via`'s relay if it holds a
    /// reservation there, and directly at the addresses `via` knows.
    fn on_exchange_answer(&mut self, via: PeerId, result: Result<exchange::Answer>, reply: ConnectReply) {
        let offer = match result {
            Err(e) => return drop(reply.send(Err(e))),
            Ok(None) => {
                let why = format!("{} has no other peer to offer", PublicKey::from_peer_id(&via).map(|k| short(&k)).unwrap_or_default());
                return drop(reply.send(Err(Error::Connect(why))));
            }
            Ok(Some(o)) if o.key == self.local => {
                return drop(reply.send(Err(Error::Connect("offered ourselves".into()))));
            }
            Ok(Some(o)) => o,
        };
        let pid = self.peer_entry(offer.key);
        if let Some(s) = &self.peers[&pid].session {
            let _ = reply.send(Ok(s.connection.clone()));
            return;
        }
        // Direct first (the addresses `via` saw), with the relay as fallback after a head start
        // or as soon as the direct dial fails; relay at once when there is nothing direct.
        let direct: Vec<Multiaddr> = offer.addrs.into_iter().filter(|a| !is_relayed(a)).collect();
        let circuit = self.direct_addr(via).filter(|_| offer.relayed).map(|base| circuit_via(base, via).with(Protocol::P2p(pid)));
        for a in direct.iter().rev() {
            self.swarm.behaviour_mut().substreams.add_address(pid, a.clone());
        }
        match circuit {
            Some(c) if direct.is_empty() => self.swarm.behaviour_mut().substreams.add_address(pid, c),
            Some(c) => {
                self.relay_fallback.insert(pid, c);
                self.schedule(DIRECT_HEAD_START, Timer::RelayFallback(pid));
            }
            None => {}
        }
        self.dial_waiters.entry(pid).or_default().push(reply);
        self.dial(pid);
        let stuck = self.peers.get(&pid).is_some_and(|p| !p.dialing && p.session.is_none());
        if stuck {
            let why = if self.peers[&pid].banned { Error::Firewalled("peer is banned".into()) } else { Error::Connect("at max_peers or suspended".into()) };
            for w in self.dial_waiters.remove(&pid).unwrap_or_default() {
                let _ = w.send(Err(why.clone()));
            }
            self.gc(pid);
        }
    }

    /// Dials an introduced peer through the relay that introduced it (once).
    fn dial_relay(&mut self, pid: PeerId) {
        let Some(addr) = self.relay_fallback.remove(&pid) else { return };
        if !self.peers.get(&pid).is_some_and(|p| p.dialing && p.session.is_none()) {
            return;
        }
        tracing::debug!(%addr, "dialing through the relay");
        let opts = DialOpts::peer_id(pid).addresses(vec![addr]).condition(PeerCondition::Always).build();
        if let Err(e) = self.swarm.dial(opts) {
            self.failed(pid, Error::Connect(e.to_string()));
        }
    }

    /// Serves a peer-exchange request from `pid` (rate-limited per peer).
    fn serve_exchange(&mut self, pid: PeerId, key: PublicKey, mut stream: libp2p::Stream) {
        let now = Instant::now();
        let served = self.exchange_served.entry(pid).or_insert((now, 0));
        if now.duration_since(served.0) >= Duration::from_secs(60) {
            *served = (now, 0);
        }
        if served.1 >= EXCHANGE_PER_MINUTE {
            tracing::debug!(remote = %short(&key), "peer-exchange request refused: rate limit");
            return; // dropping the stream resets it: the asker gets an error
        }
        served.1 += 1;
        // The offer is chosen once the request has arrived, by the loop (`ExchangeChoose`): by
        // then a peer whose session or relay reservation was settling when the stream opened
        // counts.
        let report = self.ctx.report.clone();
        tokio::spawn(async move {
            let serve = async {
                let req = Request::read(&mut stream).await?;
                let mut exclude: HashSet<PublicKey> = req.exclude.into_iter().collect();
                exclude.insert(key);
                let (tx, rx) = oneshot::channel();
                let _ = report.send(Internal::ExchangeChoose { asker: pid, exclude, reply: tx });
                let answer = rx.await.map_err(|_| std::io::Error::other("swarm closed"))?;
                stream.write_all(&exchange::encode_answer(&answer)).await?;
                stream.close().await
            };
            if let Err(e) = tokio::time::timeout(session::STEP_TIMEOUT, serve).await.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())) {
                tracing::debug!("peer-exchange request: {e}");
            }
        });
    }

    /// The peer to offer `asker`: one we have a session with (or a direct connection whose
    /// session handshake is under way), not in `exclude`, preferring peers that hold a relay
    /// reservation with us.
    fn choose_offer(&self, asker: PeerId, exclude: &HashSet<PublicKey>) -> exchange::Answer {
        let settling = |id: &PeerId| self.conns.values().any(|c| c.peer == *id && c.handshaking && !c.relayed);
        let candidates: Vec<Candidate> = self
            .peers
            .iter()
            .filter(|(id, p)| **id != asker && !p.banned && (p.session.is_some() || settling(id)))
            .map(|(id, p)| Candidate {
                key: p.key,
                reserved: self.reserved_here.contains(id),
                addrs: self.swarm.behaviour().substreams.addresses(id).into_iter().filter(|a| !is_relayed(a)).collect(),
            })
            .collect();
        exchange::choose(&candidates, exclude, rand::thread_rng().r#gen())
    }

    fn end_session(&mut self, pid: PeerId, reason: Error, close_transport: bool) {
        let Some(p) = self.peers.get_mut(&pid) else { return };
        let Some(active) = p.session.take() else { return };
        active.connection.end(reason.clone());
        p.backoff.on_connection_ended(active.since.elapsed());
        let key = p.key;
        tracing::debug!(local = %short(&self.local), remote = %short(&key), conn = ?active.conn, "session ended: {reason}");
        if let Some(d) = &mut self.destroying {
            d.closing.insert(active.session_id);
        }
        if close_transport && self.destroying.is_none() {
            let _ = self.swarm.close_connection(active.conn);
        }
        if let Some(c) = self.conns.get_mut(&active.conn) {
            c.handshaking = false;
        }
        self.emit(SwarmEvent::Disconnected { remote: key, reason: reason.clone() });
        let p = &self.peers[&pid];
        if self.wanted(p) && !self.suspended && self.destroying.is_none() && reason != Error::Duplicate {
            let p = self.peers.get_mut(&pid).unwrap();
            if let Some(d) = p.backoff.on_failure(p.explicit) {
                let unit: f64 = rand::thread_rng().r#gen();
                self.schedule(jitter(d, unit), Timer::Retry(pid));
            }
        }
        self.update();
        self.gc(pid);
    }

    fn ban(&mut self, pid: PeerId) {
        let key = self.peer_entry_by_pid(pid);
        let Some(key) = key else { return };
        let p = self.peers.get_mut(&pid).unwrap();
        if p.banned {
            return;
        }
        p.banned = true;
        p.explicit = false;
        p.dialing = false;
        self.swarm.behaviour_mut().substreams.ban(pid);
        self.end_session(pid, Error::Firewalled("banned".into()), true);
        let _ = self.swarm.disconnect_peer_id(pid);
        for ts in self.topics.values_mut() {
            ts.round.settled(&pid);
        }
        self.emit(SwarmEvent::Ban { remote: key });
        self.update();
        self.check_flush();
    }

    fn peer_entry_by_pid(&mut self, pid: PeerId) -> Option<PublicKey> {
        let key = PublicKey::from_peer_id(&pid)?;
        self.peer_entry(key);
        Some(key)
    }

    fn suspend(&mut self) {
        self.suspended = true;
        let with_sessions: Vec<PeerId> = self.peers.iter().filter(|(_, p)| p.session.is_some()).map(|(k, _)| *k).collect();
        for pid in with_sessions {
            self.end_session(pid, Error::Closed("suspended".into()), true);
        }
        let conns: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for c in conns {
            let _ = self.swarm.close_connection(c);
        }
        for ts in self.topics.values_mut() {
            ts.generation += 1;
            ts.round = Round::default();
        }
        for p in self.peers.values_mut() {
            p.dialing = false;
        }
        self.update();
        self.check_flush();
    }

    fn resume(&mut self) {
        if !self.suspended {
            return;
        }
        self.suspended = false;
        let topics: Vec<Topic> = self.topics.keys().copied().collect();
        for t in topics {
            self.start_round(t);
        }
        let explicit: Vec<PeerId> = self.peers.iter().filter(|(_, p)| p.explicit).map(|(k, _)| *k).collect();
        for pid in explicit {
            self.dial(pid);
        }
    }

    fn begin_destroy(&mut self, reply: Option<oneshot::Sender<()>>) {
        if let Some(d) = &mut self.destroying {
            d.waiters.extend(reply);
            return;
        }
        self.destroying = Some(Destroying { waiters: reply.into_iter().collect(), closing: HashSet::new(), done: false });
        let topics: Vec<(Topic, JoinOptions)> = self.topics.drain().map(|(t, s)| (t, s.opts)).collect();
        for (t, o) in topics {
            if o.server {
                self.swarm.behaviour_mut().kad.stop_providing(&t.dht_key());
            }
        }
        let with_sessions: Vec<PeerId> = self.peers.iter().filter(|(_, p)| p.session.is_some()).map(|(k, _)| *k).collect();
        for pid in with_sessions {
            self.end_session(pid, Error::Closed("swarm destroyed".into()), false);
        }
        if self.destroying.as_ref().is_some_and(|d| !d.closing.is_empty()) {
            self.schedule(DESTROY_GRACE, Timer::DestroyDeadline);
        }
    }

    // ---- flush -------------------------------------------------------------------------------

    fn check_flush(&mut self) {
        let topics = &self.topics;
        let ready = self.flush_waiters.take_ready(|t| match t {
            Some(t) => topics.get(t).is_none_or(|s| s.round.is_done()),
            None => topics.values().all(|s| s.round.is_done()),
        });
        for w in ready {
            let _ = w.send(());
        }
    }

    // ---- internal reports and timers ---------------------------------------------------------

    fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::Inbound { peer, conn, header, stream } => self.on_inbound(peer, conn, header, stream),
            Internal::Handshaked { peer, conn, role, handshake, activate } => {
                self.on_handshaked(peer, conn, role, handshake, activate)
            }
            Internal::HandshakeFailed { peer, conn, session_id, error } => {
                if let Error::Firewalled(_) = error {
                    self.ban(peer);
                    return;
                }
                let Some(p) = self.peers.get_mut(&peer) else { return };
                if let Some(sid) = session_id {
                    p.leading.retain(|c, h| !(*c == conn && h.handshake.session_id == sid));
                    p.following.retain(|c, h| !(*c == conn && h.handshake.session_id == sid));
                }
                let busy = p.leading.contains_key(&conn) || p.following.contains_key(&conn);
                let stalled = p.session.is_none() && p.leading.is_empty() && p.following.is_empty() && p.dialing;
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.handshaking &= busy;
                }
                tracing::debug!(?conn, "handshake failed: {error}");
                if stalled {
                    self.failed(peer, error);
                }
            }
            Internal::SocketOpened { peer, conn, result } => {
                let Some(pending) = self.peers.get_mut(&peer).and_then(|p| p.leading.remove(&conn)) else { return };
                match result {
                    Ok(socket) => self.activate(peer, conn, pending, socket, Role::Leader),
                    Err(error) => {
                        if self.peers[&peer].session.is_none() && self.peers[&peer].dialing {
                            self.failed(peer, error);
                        }
                    }
                }
            }
            Internal::SessionEnded { conn, session_id, reason } => {
                if let Some(d) = &mut self.destroying {
                    d.closing.remove(&session_id);
                }
                if let Some(pid) = self.session_peer(conn) {
                    if self.peers[&pid].session.as_ref().is_some_and(|s| s.session_id == session_id) {
                        self.end_session(pid, reason, true);
                    }
                }
            }
            Internal::ExchangeAnswer { via, result, reply } => self.on_exchange_answer(via, result, reply),
            Internal::ExchangeChoose { asker, exclude, reply } => {
                let _ = reply.send(self.choose_offer(asker, &exclude));
            }
        }
    }

    fn on_inbound(&mut self, pid: PeerId, conn: ConnectionId, header: Header, stream: libp2p::Stream) {
        if !self.conns.contains_key(&conn) || self.suspended {
            return;
        }
        let Some(key) = self.peer_entry_by_pid(pid) else { return };
        if self.peers[&pid].banned {
            return;
        }
        match header.kind {
            Kind::Control => {
                let ctx = self.ctx.clone();
                let c = self.conns.get_mut(&conn).unwrap();
                match dedup::role(&self.local, &key) {
                    // A knock: answer it unless a handshake is already running on this connection.
                    Role::Leader if !c.handshaking => {
                        c.handshaking = true;
                        tokio::spawn(handshake::lead(ctx, pid, key, conn, Some(stream)));
                    }
                    Role::Leader => {}
                    Role::Follower => {
                        c.handshaking = true;
                        tokio::spawn(handshake::follow(ctx, pid, key, conn, stream));
                    }
                }
            }
            Kind::Socket => {
                let Some(pending) = self.peers.get_mut(&pid).unwrap().following.remove(&conn) else { return };
                self.activate(pid, conn, pending, stream, Role::Follower);
            }
            Kind::Named | Kind::Shared => {
                let Some(s) = self.peers[&pid].session.as_ref().filter(|s| s.conn == conn) else { return };
                if s.connection.deliver(header.kind, header.name.clone(), stream) {
                    self.emit(SwarmEvent::Stream {
                        remote: key,
                        name: header.name,
                        shared: header.kind == Kind::Shared,
                    });
                }
            }
            Kind::Exchange => {
                if self.peers[&pid].session.as_ref().is_some_and(|s| s.conn == conn) {
                    self.serve_exchange(pid, key, stream);
                }
            }
            Kind::Message => {
                let Some(s) = self.peers[&pid].session.as_ref().filter(|s| s.conn == conn) else { return };
                let closed = s.connection.inner.closed_tx.subscribe();
                let joined = self.message_topics.clone();
                let events = self.events.clone();
                tokio::spawn(async move {
                    let stream = Stream::new(stream, header.name.clone(), key, closed);
                    let Ok(Ok(data)) = tokio::time::timeout(session::STEP_TIMEOUT * 6, read_limited(&stream)).await else {
                        return;
                    };
                    if joined.lock().unwrap().contains(&header.name) {
                        let _ = events.send(SwarmEvent::Message { remote: key, topic: header.name, data });
                    }
                });
            }
        }
    }

    fn on_timer(&mut self, t: Timer) {
        match t {
            Timer::Retry(pid) => {
                if self.peers.get(&pid).is_some_and(|p| self.wanted(p) && p.session.is_none()) {
                    self.dial(pid);
                }
            }
            Timer::Refresh(topic, generation) => {
                if self.topics.get(&topic).is_some_and(|t| t.generation == generation) {
                    self.start_round(topic);
                }
            }
            Timer::Relookup(topic, generation, i) => {
                if self.topics.get(&topic).is_some_and(|t| t.generation == generation && t.opts.client) {
                    self.lookup(topic, generation, false);
                    if let Some(next) = RELOOKUPS.get(i + 1) {
                        self.schedule(*next - RELOOKUPS[i], Timer::Relookup(topic, generation, i + 1));
                    }
                }
            }
            Timer::Settled(topic, generation) => {
                if let Some(ts) = self.topics.get_mut(&topic).filter(|t| t.generation == generation) {
                    ts.round.announced();
                    self.check_flush();
                }
            }
            Timer::LookupGrace(id) => {
                if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                    q.finish();
                }
            }
            Timer::DestroyDeadline => {
                if let Some(d) = &mut self.destroying {
                    d.done = true;
                }
            }
            Timer::HolePunch(pid, conn) => {
                let busy = self.conns.values().any(|c| c.peer == pid && c.handshaking);
                let waiting = self.peers.get(&pid).is_some_and(|p| p.dialing && p.session.is_none());
                if waiting && !busy && self.conns.contains_key(&conn) {
                    tracing::debug!(?conn, "no direct connection came: starting the session relayed");
                    self.initiate(pid, conn);
                }
            }
            Timer::RelayFallback(pid) => {
                if !self.conns.values().any(|c| c.peer == pid) {
                    self.dial_relay(pid);
                }
                self.relay_fallback.remove(&pid);
            }
            Timer::RelaySettle(pid) => self.answer_settle_waiters(pid),
        }
    }

    // ---- libp2p events -----------------------------------------------------------------------

    fn on_swarm_event(&mut self, event: P2pEvent<BehaviourEvent>) {
        match event {
            P2pEvent::NewListenAddr { address, listener_id } => {
                tracing::debug!(%address, "listening");
                if let Some(r) = self.listen_replies.remove(&listener_id) {
                    let _ = r.send(Ok(address.clone()));
                }
                self.swarm.add_external_address(address.clone());
                self.listener_addrs.entry(listener_id).or_default().push(address.clone());
                let first = self.listen_addrs.is_empty();
                self.listen_addrs.push(address);
                let have = self.listen_addrs.len();
                let (ready, waiting): (Vec<_>, Vec<_>) = self.listen_waiters.drain(..).partition(|(min, _)| have >= *min);
                self.listen_waiters = waiting;
                for (_, w) in ready {
                    let _ = w.send(self.listen_addrs.clone());
                }
                if first {
                    let deferred: Vec<(Topic, u64)> = self
                        .topics
                        .iter()
                        .filter(|(_, t)| t.announce_deferred)
                        .map(|(k, t)| (*k, t.generation))
                        .collect();
                    for (t, g) in deferred {
                        self.topics.get_mut(&t).unwrap().announce_deferred = false;
                        self.announce(t, g);
                    }
                }
            }
            // The listener keeps the address in `listener_addrs` (until it closes), so that
            // `StopListening` still finds it by the address `ListenOn` replied with.
            P2pEvent::ExpiredListenAddr { address, .. } => self.forget_listen_addr(&address),
            P2pEvent::ListenerClosed { listener_id, reason, .. } => {
                for address in self.listener_addrs.remove(&listener_id).unwrap_or_default() {
                    self.forget_listen_addr(&address);
                }
                if let Some(r) = self.unlisten_replies.remove(&listener_id) {
                    let _ = r.send(Ok(()));
                }
                if let Some(r) = self.listen_replies.remove(&listener_id) {
                    let why = reason.err().map(|e| e.to_string()).unwrap_or_else(|| "listener closed".into());
                    let _ = r.send(Err(Error::InvalidInput(why)));
                }
                if let Some(relay) = self.reservations.remove(&listener_id) {
                    tracing::debug!(%relay, "relay reservation ended");
                    self.relays_settled.remove(&relay);
                    self.answer_settle_waiters(relay);
                }
            }
            P2pEvent::ListenerError { listener_id, error } => {
                if let Some(r) = self.listen_replies.remove(&listener_id) {
                    let _ = r.send(Err(Error::InvalidInput(error.to_string())));
                }
            }
            P2pEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                let relayed = endpoint.is_relayed();
                let addr = match &endpoint {
                    // An inbound circuit: `<relay addr>/p2p/<relay>/p2p-circuit/p2p/<remote>`.
                    libp2p::core::ConnectedPoint::Listener { local_addr, .. } if relayed => {
                        let mut a = strip_p2p(local_addr.clone());
                        a.push(Protocol::P2p(peer_id));
                        a
                    }
                    _ => endpoint.get_remote_address().clone(),
                };
                self.conns.insert(connection_id, ConnInfo { peer: peer_id, dialer: endpoint.is_dialer(), handshaking: false, addr, relayed });
                if !relayed {
                    for (circuit, reply) in self.circuit_dials.remove(&peer_id).unwrap_or_default() {
                        self.on_command(Command::Connect { addr: circuit, reply });
                    }
                }
                if let Some(reply) = self.addr_dials.remove(&connection_id) {
                    // A dial by address: only now do we know whom we reached.
                    match self.peer_entry_by_pid(peer_id) {
                        Some(_) => match &self.peers[&peer_id].session {
                            Some(s) => {
                                let c = s.connection.clone();
                                self.reply_when_settled(peer_id, reply, c);
                            }
                            None => {
                                self.dial_waiters.entry(peer_id).or_default().push(reply);
                                self.peers.get_mut(&peer_id).unwrap().dialing = true;
                                self.update();
                            }
                        },
                        None => {
                            let _ = reply.send(Err(Error::Connect("the peer's key is not an Ed25519 key".into())));
                        }
                    }
                }
                if self.peers.get(&peer_id).is_some_and(|p| p.dialing && p.session.is_none()) {
                    if relayed {
                        // Give hole punching a moment to bring a direct connection first.
                        self.schedule(HOLE_PUNCH_WAIT, Timer::HolePunch(peer_id, connection_id));
                    } else {
                        self.initiate(peer_id, connection_id);
                    }
                }
            }
            P2pEvent::ConnectionClosed { peer_id, connection_id, cause, .. } => {
                self.conns.remove(&connection_id);
                let Some(p) = self.peers.get_mut(&peer_id) else { return };
                p.leading.remove(&connection_id);
                p.following.remove(&connection_id);
                if p.session.as_ref().is_some_and(|s| s.conn == connection_id) {
                    let why = cause.map(|c| c.to_string()).unwrap_or_else(|| "connection closed".into());
                    self.end_session(peer_id, Error::Reset(why), false);
                } else if p.dialing
                    && p.session.is_none()
                    && p.leading.is_empty()
                    && p.following.is_empty()
                    && !self.conns.values().any(|c| c.peer == peer_id)
                {
                    self.failed(peer_id, Error::Connect("connection closed before the session started".into()));
                }
            }
            P2pEvent::OutgoingConnectionError { connection_id, error, .. } if self.addr_dials.contains_key(&connection_id) => {
                let reply = self.addr_dials.remove(&connection_id).unwrap();
                let _ = reply.send(Err(Error::Connect(error.to_string())));
            }
            P2pEvent::OutgoingConnectionError { peer_id: Some(pid), error, .. }
                if self.circuit_dials.contains_key(&pid) && !self.conns.values().any(|c| c.peer == pid) =>
            {
                for (_, reply) in self.circuit_dials.remove(&pid).unwrap_or_default() {
                    let _ = reply.send(Err(Error::Connect(format!("relay: {error}"))));
                }
            }
            P2pEvent::OutgoingConnectionError { peer_id: Some(pid), .. } if self.relay_fallback.contains_key(&pid) => {
                self.dial_relay(pid);
            }
            P2pEvent::OutgoingConnectionError { peer_id: Some(pid), error, .. } => {
                let p = self.peers.get(&pid);
                if p.is_some_and(|p| p.dialing && p.session.is_none()) && !self.conns.values().any(|c| c.peer == pid) {
                    self.failed(pid, Error::Connect(error.to_string()));
                }
            }
            P2pEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            P2pEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                let is_dht_server = info.protocols.contains(&self.kad_protocol);
                if self.reserve_relays {
                    if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
                        self.reserve_on(peer_id);
                    } else {
                        self.relay_settled(peer_id);
                    }
                }
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().substreams.add_address(peer_id, addr.clone());
                    if is_dht_server {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            P2pEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(list))) => {
                if self.lan_dht && self.swarm.behaviour().kad.mode() == kad::Mode::Client {
                    // No bootstrap nodes: the LAN peers are the DHT. Serve it, and look up again
                    // now that there is someone to ask.
                    tracing::debug!("mDNS found peers: serving the DHT on the LAN");
                    self.swarm.behaviour_mut().kad.set_mode(Some(kad::Mode::Server));
                }
                let had_peers = self.swarm.behaviour_mut().kad.kbuckets().any(|b| b.num_entries() > 0);
                for (pid, addr) in list {
                    self.swarm.behaviour_mut().substreams.add_address(pid, addr.clone());
                    self.swarm.behaviour_mut().kad.add_address(&pid, addr);
                }
                if self.lan_dht && !had_peers {
                    let topics: Vec<Topic> = self.topics.keys().copied().collect();
                    for t in topics {
                        self.start_round(t);
                    }
                }
            }
            P2pEvent::Behaviour(BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal, .. })) => {
                tracing::debug!(relay = %relay_peer_id, renewal, "relay reservation accepted");
                self.relay_settled(relay_peer_id);
            }
            P2pEvent::Behaviour(BehaviourEvent::Relay(e)) => match e {
                relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                    self.reserved_here.insert(src_peer_id);
                }
                relay::Event::ReservationClosed { src_peer_id } | relay::Event::ReservationTimedOut { src_peer_id } => {
                    self.reserved_here.remove(&src_peer_id);
                }
                relay::Event::CircuitReqDenied { src_peer_id, dst_peer_id, status } => {
                    tracing::debug!(%src_peer_id, %dst_peer_id, ?status, "relay circuit denied");
                }
                _ => {}
            },
            P2pEvent::Behaviour(BehaviourEvent::Dcutr(e)) => {
                tracing::debug!(remote = %e.remote_peer_id, result = ?e.result, "hole punch");
            }
            P2pEvent::Behaviour(BehaviourEvent::Substreams(substreams::Event::Inbound { peer, connection, mut stream })) => {
                let report = self.ctx.report.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(header)) = tokio::time::timeout(session::STEP_TIMEOUT, Header::read(&mut stream)).await {
                        let _ = report.send(Internal::Inbound { peer, conn: connection, header, stream });
                    }
                });
            }
            _ => {}
        }
    }
}

/// The relay's peer id in a `…/p2p/<relay>/p2p-circuit/…` address.
fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut last = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(id) => last = Some(id),
            Protocol::P2pCircuit => return last,
            _ => {}
        }
    }
    None
}

fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// The relay address `<addr>/p2p/<relay>/p2p-circuit` of `relay`, reached at `addr`.
fn circuit_via(addr: Multiaddr, relay: PeerId) -> Multiaddr {
    strip_p2p(addr).with(Protocol::P2p(relay)).with(Protocol::P2pCircuit)
}

/// `addr` without a trailing `/p2p/<peer>`.
fn strip_p2p(mut addr: Multiaddr) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

fn short(k: &PublicKey) -> String {
    k.to_hex()[..8].to_string()
}

async fn read_limited(stream: &Stream) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read_into(&mut buf).await?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > MAX_MESSAGE {
            return Err(Error::InvalidInput("message too large".into()));
        }
        out.extend_from_slice(&buf[..n]);
    }
}
