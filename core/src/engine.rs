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
use futures::{FutureExt, StreamExt};
use libp2p::kad::{self, GetProvidersOk, QueryId, QueryResult};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, NetworkBehaviour, SwarmEvent as P2pEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, connection_limits, identify, mdns};
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};

use crate::backoff::{Backoff, jitter};
use crate::dedup::{self, Existing, Role, Verdict};
use crate::error::{Error, Result};
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

/// The composed libp2p behaviour.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(crate) struct Behaviour {
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub identify: identify::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub limits: connection_limits::Behaviour,
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
}

enum Timer {
    Retry(PeerId),
    Refresh(Topic, u64),
    Relookup(Topic, u64, usize),
    Settled(Topic, u64),
    LookupGrace(QueryId),
    DestroyDeadline,
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
                    let _ = reply.send(Err("connection closed".into()));
                }
            }
            Command::CloseSession { conn } => {
                if let Some(pid) = self.session_peer(conn) {
                    self.end_session(pid, Error::Closed("closed locally".into()), true);
                }
            }
            Command::Ban { key } => self.ban(key.to_peer_id()),
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
        let existing = self.conns.iter().find(|(_, c)| c.peer == pid).map(|(id, _)| *id);
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
        self.emit(SwarmEvent::Connection(connection));
        self.update();
        self.check_flush();
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
        }
    }

    // ---- libp2p events -----------------------------------------------------------------------

    fn on_swarm_event(&mut self, event: P2pEvent<BehaviourEvent>) {
        match event {
            P2pEvent::NewListenAddr { address, .. } => {
                tracing::debug!(%address, "listening");
                self.swarm.add_external_address(address.clone());
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
            P2pEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                self.conns.insert(connection_id, ConnInfo { peer: peer_id, dialer: endpoint.is_dialer(), handshaking: false });
                if self.peers.get(&peer_id).is_some_and(|p| p.dialing && p.session.is_none()) {
                    self.initiate(peer_id, connection_id);
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
            P2pEvent::OutgoingConnectionError { peer_id: Some(pid), error, .. } => {
                let p = self.peers.get(&pid);
                if p.is_some_and(|p| p.dialing && p.session.is_none()) && !self.conns.values().any(|c| c.peer == pid) {
                    self.failed(pid, Error::Connect(error.to_string()));
                }
            }
            P2pEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            P2pEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                let is_dht_server = info.protocols.contains(&self.kad_protocol);
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
