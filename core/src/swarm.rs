//! The [`Swarm`] handle: what applications and bindings hold.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{Multiaddr, StreamProtocol, connection_limits, dcutr, identify, kad, mdns, noise, relay, tcp, yamux};
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::engine::{Behaviour, Command, Engine};
use crate::error::{Error, Result};
use crate::handshake::{Ctx, FirewallGate};
use crate::keys::{KeyPair, PublicKey};
use crate::options::{JoinOptions, SwarmOptions};
use crate::session::Connection;
use crate::substreams::Substreams;
use crate::topic::Topic;

/// What a swarm reports, pulled with [`Swarm::next_event`].
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
            SwarmEvent::Update { .. } => None,
        }
    }
}

/// A swarm: joins topics, connects to peers, and reports connections.
///
/// Cheap to clone; all clones drive the same engine. The engine stops on [`Swarm::destroy`], or
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Swarm {
    inner: Arc<Inner>,
}

struct Inner {
    cmd: mpsc::UnboundedSender<Command>,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<crate::SwarmEvent>>,
    key_pair: KeyPair,
    message_topics: Arc<Mutex<HashSet<String>>>,
    connecting: Arc<AtomicUsize>,
    /// Set when `destroy` starts: every later call fails with `Closed`, even before the
    /// engine has dropped its end of `cmd`.
    destroyed: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.cmd.send(Command::Destroy { reply: None });
    }
}

impl Swarm {
    /// Starts a swarm on the current tokio runtime.
    pub async fn new(opts: SwarmOptions) -> Result<Self> {
        Self::spawn(opts, &tokio::runtime::Handle::current())
    }

    /// Starts a swarm whose engine runs on `runtime` (callable from any thread).
    pub fn spawn(opts: SwarmOptions, runtime: &tokio::runtime::Handle) -> Result<Self> {
        let _guard = runtime.enter();
        let key_pair = opts.resolve_key_pair()?;
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
        let mut swarm = build_libp2p(&key_pair, &kad_protocol, stream_protocol, relay_config, opts.mdns, opts.dht_server)?;
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

        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let message_topics = Arc::new(Mutex::new(HashSet::new()));
        let connecting = Arc::new(AtomicUsize::new(0));
        let ctx = Ctx {
            cmd: cmd_tx.clone(),
            report: internal_tx,
            gate: Arc::new(FirewallGate::new(opts.firewall.clone())),
            instance: rand::random(),
        };
        let mut engine = Engine::new(
            swarm,
            key_pair.public_key(),
            ctx,
            cmd_rx,
            internal_rx,
            events_tx,
            opts.max_peers,
            kad_protocol,
            message_topics.clone(),
            connecting.clone(),
        );
        engine.lan_dht = bootstrap.is_empty() && !opts.dht_server;
        engine.reserve_relays = opts.reserve_relays;
        runtime.spawn(engine.run());
        Ok(Swarm {
            inner: Arc::new(Inner {
                cmd: cmd_tx,
                events: tokio::sync::Mutex::new(events_rx),
                key_pair,
                message_topics,
                connecting,
                destroyed: AtomicBool::new(false),
            }),
        })
    }

    /// This swarm's key pair.
    pub fn key_pair(&self) -> &KeyPair {
        &self.inner.key_pair
    }

    /// This swarm's public key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.key_pair.public_key()
    }

    /// Dials in progress (as of the last update; see [`SwarmEvent::Update`]).
    pub fn connecting(&self) -> usize {
        self.inner.connecting.load(Ordering::Relaxed)
    }

    fn send(&self, cmd: Command) -> Result<()> {
        if self.inner.destroyed.load(Ordering::Acquire) {
            return Err(Error::closed());
        }
        self.inner.cmd.send(cmd).map_err(|_| Error::closed())
    }

    pub(crate) async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| Error::closed())
    }

    /// Joins `topic`: as a server it announces itself, as a client it looks up servers and
    /// connects to each. Returns at once; await [`Discovery::flushed`] to wait for the round.
    pub fn join(&self, topic: Topic, opts: JoinOptions) -> Result<Discovery> {
        if !opts.server && !opts.client {
            return Err(Error::InvalidInput("join needs server, client or both".into()));
        }
        self.send(Command::Join { topic, opts })?;
        Ok(Discovery { swarm: self.clone(), topic })
    }

    /// Stops announcing and looking up `topic`; existing connections stay open.
    pub fn leave(&self, topic: Topic) -> Result<()> {
        self.send(Command::Leave { topic })
    }

    /// Resolves when every joined topic finished its current round: announced, looked up, and
    /// every peer found was connected or given up.
    pub async fn flush(&self) -> Result<()> {
        self.ask(|reply| Command::Flush { topic: None, reply }).await
    }

    /// Keeps a connection to `key` (reconnecting forever, with backoff) until [`Swarm::leave_peer`].
    /// The peer is dialed at addresses known from earlier connections and found by key through
    /// its [`Swarm::listen`] announce. Joining yourself is a no-op.
    pub fn join_peer(&self, key: PublicKey) -> Result<()> {
        self.send(Command::JoinPeer { key })
    }

    /// Stops reconnecting to `key`; an open connection stays.
    pub fn leave_peer(&self, key: PublicKey) -> Result<()> {
        self.send(Command::LeavePeer { key })
    }

    /// Announces this peer under its own key so others can find it by key, and resolves once
    /// the swarm listens. Returns the listen addresses.
    pub async fn listen(&self) -> Result<Vec<Multiaddr>> {
        let addrs = self.listen_addrs().await?;
        self.join(Topic::for_public_key(&self.public_key()), JoinOptions { server: true, client: false })?;
        Ok(addrs)
    }

    /// Finds the peer with this key through its self-announce and keeps a connection to it
    /// (`join_peer` semantics). Resolves with the connection; bound it with a timeout.
    pub async fn find_peer(&self, key: PublicKey) -> Result<Connection> {
        if key == self.public_key() {
            return Err(Error::InvalidInput("cannot connect to yourself".into()));
        }
        if let Some(c) = self.connections().await?.into_iter().find(|c| c.remote_public_key() == key) {
            return Ok(c);
        }
        self.join_peer(key)?;
        self.wait_connection(key).await
    }

    /// Dials `addr` (a multiaddr such as `/ip4/10.0.0.2/tcp/8001`) and resolves with the session
    /// to whoever answers there. The peer is not redialed once that session ends. With
    /// `reserve_relays`, resolves once our relay reservation on the peer settled too.
    pub async fn connect(&self, addr: Multiaddr) -> Result<Connection> {
        self.ask(|reply| Command::Connect { addr, reply }).await?
    }

    /// Starts listening on one more address (port 0 picks one) and returns the bound address.
    pub async fn listen_on(&self, addr: Multiaddr) -> Result<Multiaddr> {
        self.ask(|reply| Command::ListenOn { addr, reply }).await?
    }

    /// Stops listening on `addr`, an address [`listen_on`](Self::listen_on) returned; resolves
    /// once the socket is closed. Existing connections stay. `InvalidInput` if nothing listens
    /// there.
    pub async fn stop_listening(&self, addr: Multiaddr) -> Result<()> {
        self.ask(|reply| Command::StopListening { addr, reply }).await?
    }

    /// Peer exchange: asks `via` (or, with `None`, a random connected peer) for another peer
    /// of this network and connects to it — through `via`'s relay when the peer holds a
    /// reservation there, upgraded to a direct connection by hole punching (DCUtR) when that
    /// succeeds within a few seconds. Fails with [`ErrorKind::Connect`](crate::ErrorKind)
    /// when there is no peer to ask or nothing to offer.
    pub async fn get_new_peer(&self, via: Option<PublicKey>) -> Result<Connection> {
        self.ask(|reply| Command::GetNewPeer { via, reply }).await?
    }

    async fn wait_connection(&self, key: PublicKey) -> Result<Connection> {
        self.ask(|reply| Command::WaitConnection { key, reply }).await
    }

    /// The listen addresses, waiting for the first one.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>> {
        self.ask(|reply| Command::ListenAddrs { min: 1, reply }).await
    }

    /// How `topic` is joined, if it is.
    pub async fn status(&self, topic: Topic) -> Result<Option<JoinOptions>> {
        self.ask(|reply| Command::Status { topic, reply }).await
    }

    /// Every joined topic.
    pub async fn topics(&self) -> Result<Vec<(Topic, JoinOptions)>> {
        self.ask(|reply| Command::Topics { reply }).await
    }

    /// The open connections.
    pub async fn connections(&self) -> Result<Vec<Connection>> {
        self.ask(|reply| Command::Connections { reply }).await
    }

    /// Bans `key`: closes its connection and refuses it from now on.
    pub fn ban(&self, key: PublicKey) -> Result<()> {
        self.send(Command::Ban { key })
    }

    /// Closes every connection and pauses discovery until [`Swarm::resume`].
    pub fn suspend(&self) -> Result<()> {
        self.send(Command::Suspend)
    }

    /// Restarts discovery after [`Swarm::suspend`].
    pub fn resume(&self) -> Result<()> {
        self.send(Command::Resume)
    }

    /// Receives topic messages sent to `topic` (see [`Connection::send_message`]).
    pub fn join_messages(&self, topic: &str) {
        self.inner.message_topics.lock().unwrap().insert(topic.to_string());
    }

    /// Stops receiving topic messages for `topic`.
    pub fn leave_messages(&self, topic: &str) {
        self.inner.message_topics.lock().unwrap().remove(topic);
    }

    /// The next event, or `None` once the swarm is destroyed.
    pub async fn next_event(&self) -> Option<SwarmEvent> {
        self.inner.events.lock().await.recv().await
    }

    /// Closes every connection (the remotes see it within milliseconds) and stops the engine.
    pub async fn destroy(&self) {
        let (tx, rx) = oneshot::channel();
        self.inner.destroyed.store(true, Ordering::Release);
        if self.inner.cmd.send(Command::Destroy { reply: Some(tx) }).is_ok() {
            let _ = rx.await;
        }
    }
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm").field("public_key", &self.public_key()).finish()
    }
}

/// A joined topic (Hyperswarm's `PeerDiscovery`).
#[derive(Clone, Debug)]
pub struct Discovery {
    swarm: Swarm,
    topic: Topic,
}

impl Discovery {
    /// The topic.
    pub fn topic(&self) -> Topic {
        self.topic
    }

    /// Resolves when this topic's current round is done (announced and/or looked up and dialed).
    pub async fn flushed(&self) -> Result<()> {
        let topic = self.topic;
        self.swarm.ask(|reply| Command::Flush { topic: Some(topic), reply }).await
    }

    /// Starts a new round now, optionally switching server/client mode.
    pub fn refresh(&self, opts: Option<JoinOptions>) -> Result<()> {
        if opts.is_some_and(|o| !o.server && !o.client) {
            return Err(Error::InvalidInput("refresh needs server, client or both".into()));
        }
        self.swarm.send(Command::Refresh { topic: self.topic, opts })
    }

    /// Leaves the topic.
    pub fn destroy(&self) -> Result<()> {
        self.swarm.leave(self.topic)
    }
}

fn build_libp2p(
    key_pair: &KeyPair,
    kad_protocol: &StreamProtocol,
    stream_protocol: StreamProtocol,
    relay_config: Option<relay::Config>,
    mdns_on: bool,
    dht_server: bool,
) -> Result<libp2p::Swarm<Behaviour>> {
    let internal = |e: &dyn std::fmt::Display| Error::Internal(e.to_string());
    let kad_protocol = kad_protocol.clone();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key_pair.to_libp2p())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| internal(&e))?
        .with_quic_config(|mut c| {
            // Larger flow-control windows than the defaults: loopback and LAN links are fast.
            c.max_stream_data = 16 << 20;
            c.max_connection_data = 64 << 20;
            c.max_concurrent_stream_limit = 1024;
            c.keep_alive_interval = Duration::from_secs(2);
            c
        })
        .with_dns()
        .map_err(|e| internal(&e))?
        // WebSocket over TCP (`/ip4/…/tcp/P/ws`), for peers that can only open HTTP-like sockets.
        // The builder's future is ready at once with tokio (its DNS resolver is built synchronously).
        .with_websocket(noise::Config::new, yamux::Config::default)
        .now_or_never()
        .ok_or_else(|| Error::Internal("websocket transport setup did not complete".into()))?
        .map_err(|e| internal(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| internal(&e))?
        .with_behaviour(|key, relay_client| {
            let peer = key.public().to_peer_id();
            let mut cfg = kad::Config::new(kad_protocol.clone());
            cfg.set_query_timeout(Duration::from_secs(30));
            let mut kad = kad::Behaviour::with_config(peer, kad::store::MemoryStore::new(peer), cfg);
            kad.set_mode(Some(if dht_server { kad::Mode::Server } else { kad::Mode::Client }));
            let identify = identify::Behaviour::new(
                identify::Config::new("/swarmplex/0.1.0".into(), key.public())
                    .with_agent_version(format!("swarmplex/{}", env!("CARGO_PKG_VERSION"))),
            );
            let mdns_cfg = mdns::Config { query_interval: Duration::from_secs(5), ..Default::default() };
            let mdns = if mdns_on { Some(mdns::tokio::Behaviour::new(mdns_cfg, peer)?) } else { None };
            let limits = connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established_per_peer(Some(4))
                    .with_max_established(Some(1024)),
            );
            let relay = relay_config.map(|c| {
                let mut r = relay::Behaviour::new(peer, c);
                r.set_status(Some(relay::Status::Enable));
                r
            });
            Ok(Behaviour {
                kad,
                identify,
                mdns: Toggle::from(mdns),
                limits,
                relay: Toggle::from(relay),
                relay_client,
                dcutr: dcutr::Behaviour::new(peer),
                substreams: Substreams::new(stream_protocol),
            })
        })
        .map_err(|e| internal(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build();
    Ok(swarm)
}

/// Ensures `addr` ends with `/p2p/<peer>` (for printing bootstrap lists).
pub(crate) fn with_p2p(mut addr: Multiaddr, peer: libp2p::PeerId) -> Multiaddr {
    if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.push(Protocol::P2p(peer));
    }
    addr
}
