//! The driver: one task owns the libp2p `Swarm`, feeds its events, the handles' [`Command`]s and
//! the tasks' [`Report`]s into the [`State`] machine, and carries out the [`Action`]s it returns.
//!
//! The rules about peers, sessions and discovery live in [`crate::state`]; what is left here is
//! I/O: libp2p calls, spawning tasks, answering callers. Relays and peer exchange (`relays`,
//! `exchange`) and listeners (`listeners`) still keep their own bookkeeping here.
//!
//! - `behaviour`: the composed libp2p behaviour and transport stack.
//! - `events`: libp2p events → state inputs.
//! - `inbound`: task reports and inbound substreams, routed by kind.
//! - `listeners`, `relays`, `exchange`, `members` (topic peer exchange): the driver-side parts
//!   of those concerns.
//! - `substreams`: our libp2p behaviour that opens streams on a chosen connection.
//! - `withdraw`: withdrawing a left topic's announce from the DHT (`crate::unannounce`).

mod behaviour;
mod events;
mod exchange;
mod inbound;
mod listeners;
mod relays;
mod members;
pub(crate) mod substreams;
mod withdraw;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libp2p::kad::QueryId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::event::{EventSink, SwarmEvent};
use crate::firewall::FirewallGate;
use crate::keys::{KeyPair, PublicKey};
use crate::link::{Activation, LinkCmd};
use crate::msg::{Command, ConnectReply, ReachabilityInfo, Report};
use crate::options::SwarmOptions;
use crate::session::{self, Connection};
use crate::state::dedup::Role;
use crate::state::reach::scope_of;
use crate::state::{Action, Config, FlushId, Handles, Notice, QueryRef, ReachConfig, State};
use crate::tasks::{self, TaskCtx};
use crate::wire::{Header, Kind};
use behaviour::{Behaviour, build_libp2p};

/// The production handles: sessions are [`Connection`]s, handshake tasks wait on a oneshot.
pub(crate) struct Live;

impl Handles for Live {
    type Session = Connection;
    type Activate = oneshot::Sender<Activation>;
}

/// What [`spawn`] gives the [`Swarm`](crate::Swarm) handle.
pub(crate) struct Spawned {
    pub cmd: mpsc::UnboundedSender<Command>,
    pub events: mpsc::UnboundedReceiver<SwarmEvent>,
    /// The engine's event taps.
    pub taps: crate::event::Taps,
    pub message_topics: Arc<Mutex<HashSet<String>>>,
    pub connecting: Arc<AtomicUsize>,
}

/// Builds the libp2p swarm for `opts` and spawns the event loop on `runtime`.
pub(crate) fn spawn(opts: &SwarmOptions, key_pair: &KeyPair, runtime: &tokio::runtime::Handle) -> Result<Spawned> {
    let _guard = runtime.enter();
    let bootstrap = opts.resolve_bootstrap()?;
    let listen = opts.resolve_listen()?;
    let kad_protocol = StreamProtocol::try_from_owned(opts.kad_protocol()?)
        .map_err(|e| Error::InvalidInput(format!("kad protocol: {e}")))?;
    if opts.max_peers == Some(0) {
        return Err(Error::InvalidInput("max_peers must be at least 1".into()));
    }
    let stream_protocol = StreamProtocol::try_from_owned(opts.stream_protocol()?)
        .map_err(|e| Error::InvalidInput(format!("stream protocol: {e}")))?;
    let relay_config = opts.relay.map(|l| l.to_config()).transpose()?;
    let mut swarm = build_libp2p(key_pair, &kad_protocol, stream_protocol, relay_config, opts.mdns, opts.dht_server)?;
    for addr in &listen {
        swarm.listen_on(addr.clone()).map_err(|e| Error::InvalidInput(format!("listen on {addr}: {e}")))?;
    }
    for addr in &bootstrap {
        let Some(Protocol::P2p(pid)) = addr.iter().last() else {
            return Err(Error::InvalidInput(format!("bootstrap address {addr} must end in /p2p/<peer id>")));
        };
        let mut base = addr.clone();
        base.pop();
        swarm.behaviour_mut().kad.add_address(&pid, base.clone());
        swarm.behaviour_mut().substreams.add_address(pid, base);
    }
    if !bootstrap.is_empty() {
        let _ = swarm.behaviour_mut().kad.bootstrap();
    }
    let mut static_relays = HashSet::new();
    for addr in opts.resolve_relays()? {
        let Some(Protocol::P2p(pid)) = addr.iter().last() else {
            return Err(Error::InvalidInput(format!("relay address {addr} must end in /p2p/<peer id>")));
        };
        let mut base = addr.clone();
        base.pop();
        swarm.behaviour_mut().substreams.add_address(pid, base);
        let _ = swarm.dial(DialOpts::peer_id(pid).condition(PeerCondition::DisconnectedAndNotDialing).build());
        static_relays.insert(pid);
    }

    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (link_tx, link_rx) = mpsc::unbounded_channel();
    let (report_tx, report_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = EventSink::new();
    let message_topics = Arc::new(Mutex::new(HashSet::new()));
    let connecting = Arc::new(AtomicUsize::new(0));
    let ctx = TaskCtx {
        link: link_tx,
        report: report_tx,
        gate: Arc::new(FirewallGate::new(opts.firewall.clone())),
        instance: rand::random(),
    };
    let local = key_pair.public_key();
    let reach = ReachConfig {
        bootstrap_scope: bootstrap.iter().filter_map(scope_of).max(),
        reserve_all: opts.reserve_relays,
        no_relays: opts.dht_server && !opts.reserve_relays,
    };
    let bootstrap_peers = bootstrap.iter().filter_map(|a| match a.iter().last() {
        Some(Protocol::P2p(pid)) => Some(pid),
        _ => None,
    });
    let mut state = State::new(Config { local, max_peers: opts.max_peers, seed: rand::random(), reach });
    state.start_reach(Instant::now());
    let engine = Engine {
        local,
        swarm,
        state,
        ctx,
        cmd_rx,
        cmd_closed: false,
        link_rx,
        report_rx,
        events: events_tx.clone(),
        kad_protocol,
        message_topics: message_topics.clone(),
        connecting: connecting.clone(),
        lan_dht: bootstrap.is_empty() && !opts.dht_server,
        queries: HashMap::new(),
        flush_replies: HashMap::new(),
        next_flush: 0,
        conn_waiters: HashMap::new(),
        dial_waiters: HashMap::new(),
        addr_dials: HashMap::new(),
        destroy_waiters: Vec::new(),
        listeners: listeners::Listeners::default(),
        relays: relays::Relays::new(opts.reserve_relays, bootstrap_peers.collect(), static_relays),
        exchange: exchange::RateLimit::new(exchange::EXCHANGE_PER_MINUTE),
        topic_asks: exchange::RateLimit::new(members::TOPIC_ASKS_PER_MINUTE),
        withdrawals: withdraw::Withdrawals::default(),
        withdraw_until: None,
    };
    runtime.spawn(engine.run());
    Ok(Spawned { cmd: cmd_tx, events: events_rx, taps: events_tx.taps(), message_topics, connecting })
}

/// The loop's state; see the module docs.
pub(crate) struct Engine {
    local: PublicKey,
    swarm: libp2p::Swarm<Behaviour>,
    state: State<Live>,
    ctx: TaskCtx,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    /// Every `Swarm` handle is gone (the channel would report `None` forever).
    cmd_closed: bool,
    link_rx: mpsc::UnboundedReceiver<LinkCmd>,
    report_rx: mpsc::UnboundedReceiver<Report>,
    events: EventSink,
    kad_protocol: StreamProtocol,
    /// Message topics the app joined (written by the `Swarm` handle, read by message readers).
    message_topics: Arc<Mutex<HashSet<String>>>,
    /// Dials in progress, as of the last update (read by `Swarm::connecting`).
    connecting: Arc<AtomicUsize>,
    /// No bootstrap list: serve the DHT to peers found by mDNS (LAN-only mode).
    lan_dht: bool,
    /// libp2p's ids of the DHT queries the state asked for.
    queries: HashMap<QueryId, QueryRef>,
    /// `flush` callers, by the id the state knows them by.
    flush_replies: HashMap<FlushId, oneshot::Sender<()>>,
    next_flush: u64,
    /// `find_peer`-style callers waiting for any session with a peer.
    conn_waiters: HashMap<PeerId, Vec<oneshot::Sender<Connection>>>,
    /// `connect` / `get_new_peer` callers waiting for a session with a peer (or its failure).
    dial_waiters: HashMap<PeerId, Vec<ConnectReply>>,
    /// `connect` dials by address: the peer is known only once connected.
    addr_dials: HashMap<ConnectionId, ConnectReply>,
    /// `destroy` callers, answered when the loop ends.
    destroy_waiters: Vec<oneshot::Sender<()>>,
    listeners: listeners::Listeners,
    relays: relays::Relays,
    /// Rate limit of peer-exchange requests.
    exchange: exchange::RateLimit,
    /// Rate limit of topic-exchange requests (`members`).
    topic_asks: exchange::RateLimit,
    withdrawals: withdraw::Withdrawals,
    /// Set by `destroy`: the latest the loop waits for withdrawals.
    withdraw_until: Option<Instant>,
}

impl Engine {
    /// Runs until the swarm is destroyed (or its last handle dropped).
    async fn run(mut self) {
        loop {
            self.execute_actions();
            if self.is_done() {
                break;
            }
            let deadline =
                [self.state.next_deadline(), self.relays.next_deadline(), self.withdraw_until].into_iter().flatten().min();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = futures::StreamExt::select_next_some(&mut self.swarm) => {
                    self.on_swarm_event(ev);
                    // Handle every event that is ready too (a listener reports each interface's
                    // address as its own event), then answer who waits for listen addresses.
                    while let Some(ev) = futures::FutureExt::now_or_never(futures::StreamExt::select_next_some(&mut self.swarm)) {
                        self.on_swarm_event(ev);
                        self.execute_actions();
                    }
                    self.listeners.answer_waiters();
                }
                cmd = self.cmd_rx.recv(), if !self.cmd_closed => match cmd {
                    Some(c) => self.on_command(c),
                    None => {
                        self.cmd_closed = true;
                        self.begin_destroy(None);
                    }
                },
                Some(l) = self.link_rx.recv() => self.on_link(l),
                Some(r) = self.report_rx.recv() => self.on_report(r),
                () = sleep => {
                    let now = Instant::now();
                    self.state.handle_timeout(now);
                    self.on_driver_timers(now);
                }
            }
        }
        for id in self.state.take_flush_waiters() {
            if let Some(w) = self.flush_replies.remove(&id) {
                let _ = w.send(());
            }
        }
        for (_, w) in self.flush_replies.drain() {
            let _ = w.send(());
        }
        let waiters = std::mem::take(&mut self.destroy_waiters);
        drop(self.swarm); // closes every connection
        for w in waiters {
            let _ = w.send(());
        }
    }

    fn emit(&self, event: SwarmEvent) {
        let _ = self.events.send(event);
    }

    /// Carries out what the state asked for, until it asks for nothing more.
    fn execute_actions(&mut self) {
        while let Some(action) = self.state.poll_action() {
            self.execute(action);
        }
    }

    fn execute(&mut self, action: Action<Connection>) {
        match action {
            Action::Dial(pid) => {
                let opts = DialOpts::peer_id(pid).condition(PeerCondition::DisconnectedAndNotDialing).build();
                match self.swarm.dial(opts) {
                    Ok(()) | Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {}
                    Err(libp2p::swarm::DialError::NoAddresses) => self.state.dial_unroutable(pid, Instant::now()),
                    Err(e) => self.state.dial_failed(pid, Error::Connect(e.to_string()), Instant::now()),
                }
            }
            Action::Handshake { pid, key, conn, role } => {
                let ctx = self.ctx.clone();
                match role {
                    Role::Leader => tokio::spawn(tasks::handshake::lead(ctx, pid, key, conn, None)),
                    Role::Follower => tokio::spawn(tasks::handshake::knock(ctx, pid, key, conn)),
                };
            }
            Action::OpenSocket { pid, conn } => {
                let link = self.ctx.link.clone();
                let report = self.ctx.report.clone();
                tokio::spawn(async move {
                    let result = session::open_raw(&link, pid, conn, Header::new(Kind::Socket, "")).await;
                    let _ = report.send(Report::SocketOpened { peer: pid, conn, result });
                });
            }
            Action::CloseConnection(conn) => {
                let _ = self.swarm.close_connection(conn);
            }
            Action::DisconnectPeer(pid) => {
                let _ = self.swarm.disconnect_peer_id(pid);
            }
            Action::Block(pid) => self.swarm.behaviour_mut().substreams.ban(pid),
            Action::Announce { topic, query } => match self.swarm.behaviour_mut().kad.start_providing(topic.dht_key()) {
                Ok(id) => {
                    self.queries.insert(id, query);
                    self.announcing(id, topic);
                }
                Err(e) => {
                    tracing::warn!(?topic, "announce failed: {e}");
                    self.state.announce_failed(query);
                }
            },
            Action::StopAnnouncing(topic) => self.withdraw(topic),
            Action::Lookup { topic, query } => {
                let id = self.swarm.behaviour_mut().kad.get_providers(topic.dht_key());
                self.queries.insert(id, query);
                // Members we are connected to may know members this lookup cannot return.
                if let Some(opts) = self.state.status(&topic).filter(|o| o.client) {
                    self.ask_members(None, vec![(topic, opts.server)]);
                }
            }
            Action::FinishQuery(query) => {
                let id = self.queries.iter().find(|(_, q)| **q == query).map(|(id, _)| *id);
                if let Some(mut q) = id.and_then(|id| self.swarm.behaviour_mut().kad.query_mut(&id)) {
                    q.finish();
                }
            }
            Action::Notice(n) => self.on_notice(n),
            Action::Connected { pid, session } => {
                for w in self.conn_waiters.remove(&pid).unwrap_or_default() {
                    let _ = w.send(session.clone());
                }
                for w in self.dial_waiters.remove(&pid).unwrap_or_default() {
                    self.reply_when_settled(pid, w, session.clone());
                }
            }
            Action::DialFailed { pid, error } => {
                for w in self.dial_waiters.remove(&pid).unwrap_or_default() {
                    let _ = w.send(Err(error.clone()));
                }
            }
            Action::FlushDone(id) => {
                if let Some(w) = self.flush_replies.remove(&id) {
                    let _ = w.send(());
                }
            }
            Action::ConfirmAddr(addr) => self.swarm.add_external_address(addr),
            Action::ExpireAddr(addr) => self.swarm.remove_external_address(&addr),
            Action::Reserve(relay) => self.reserve_on(relay),
            Action::Release(relay) => self.release(relay),
        }
    }

    fn on_notice(&mut self, notice: Notice<Connection>) {
        let event = match notice {
            Notice::Connection(c) => {
                let topics = self.state.client_topics();
                self.ask_members(Some(c.remote_public_key().to_peer_id()), topics);
                SwarmEvent::Connection(c)
            }
            Notice::Disconnected { remote, reason } => SwarmEvent::Disconnected { remote, reason },
            Notice::Update { connecting, connections } => {
                self.connecting.store(connecting, Ordering::Relaxed);
                SwarmEvent::Update { connecting, connections }
            }
            Notice::Ban { remote } => SwarmEvent::Ban { remote },
            Notice::PeerTopic { remote, topic } => SwarmEvent::PeerTopic { remote, topic },
            Notice::Reachability(r) => SwarmEvent::Reachability(r),
        };
        self.emit(event);
    }

    // ---- commands ----------------------------------------------------------------------------

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        if self.state.is_destroying() {
            if let Command::Destroy { reply: Some(r) } = cmd {
                self.destroy_waiters.push(r);
            }
            return; // everything else is moot; replies drop and callers see Closed
        }
        match cmd {
            Command::Join { topic, opts } => self.state.join(topic, opts, now),
            Command::Leave { topic, reply } => {
                self.state.leave(topic);
                self.execute_actions(); // starts the withdrawal, if the topic was announced
                self.when_withdrawn(topic, reply);
            }
            Command::Refresh { topic, opts } => self.state.refresh(topic, opts, now),
            Command::Flush { topic, reply } => {
                self.next_flush += 1;
                let id = FlushId(self.next_flush);
                self.flush_replies.insert(id, reply);
                self.state.flush(topic, id);
            }
            Command::JoinPeer { key } => self.state.join_peer(key, now),
            Command::LeavePeer { key } => self.state.leave_peer(key),
            Command::ListenAddrs { min, reply } => self.listeners.wait_for(min, reply),
            Command::Status { topic, reply } => {
                let _ = reply.send(self.state.status(&topic));
            }
            Command::Topics { reply } => {
                let _ = reply.send(self.state.topics());
            }
            Command::Connections { reply } => {
                let _ = reply.send(self.state.sessions().map(|(_, _, _, s)| s.clone()).collect());
            }
            Command::WaitConnection { key, reply } => {
                let pid = key.to_peer_id();
                match self.state.session(&pid) {
                    Some(s) => {
                        let _ = reply.send(s.clone());
                    }
                    None => self.conn_waiters.entry(pid).or_default().push(reply),
                }
            }
            Command::Ban { key } => self.state.ban(key.to_peer_id(), now),
            Command::Connect { addr, reply } => self.connect(addr, reply),
            Command::ListenOn { addr, reply } => self.listen_on(addr, reply),
            Command::StopListening { addr, reply } => self.stop_listening(addr, reply),
            Command::GetNewPeer { via, reply } => self.ask_for_peer(via, reply),
            Command::Reachability { reply } => {
                let relays = self.state.relays().into_iter().filter_map(|p| PublicKey::from_peer_id(&p)).collect();
                let external = self.swarm.external_addresses().cloned().collect();
                let _ = reply.send(ReachabilityInfo { state: self.state.reachability(), external, relays });
            }
            Command::Suspend => self.state.suspend(now),
            Command::Resume => self.state.resume(now),
            Command::Destroy { reply } => self.begin_destroy(reply),
        }
    }

    fn on_link(&mut self, cmd: LinkCmd) {
        if self.state.is_destroying() {
            return;
        }
        match cmd {
            LinkCmd::OpenStream { peer, conn, reply } => {
                if self.state.has_conn(conn) {
                    self.swarm.behaviour_mut().substreams.open(peer, conn, reply);
                } else {
                    let _ = reply.send(Err(substreams::OpenError::Failed("connection closed".into())));
                }
            }
            LinkCmd::CloseSession { conn } => self.state.close_session(conn, Instant::now()),
        }
    }

    fn begin_destroy(&mut self, reply: Option<oneshot::Sender<()>>) {
        self.destroy_waiters.extend(reply);
        if !self.state.is_destroying() {
            self.withdraw_until = Some(Instant::now() + withdraw::WITHDRAW_ON_DESTROY);
        }
        self.state.begin_destroy(Instant::now());
    }

    /// The loop ends once the state is done and our announces are withdrawn (or
    /// [`withdraw::WITHDRAW_ON_DESTROY`] passed), as Hyperswarm unannounces on destroy.
    fn is_done(&self) -> bool {
        self.state.is_destroyed()
            && (self.withdrawals.is_idle() || self.withdraw_until.is_some_and(|t| Instant::now() >= t))
    }

}
