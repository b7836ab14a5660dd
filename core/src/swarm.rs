//! The [`Swarm`] handle: what applications and bindings hold.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::Multiaddr;
use tokio::sync::{mpsc, oneshot};

use crate::engine;
use crate::error::{Error, Result};
use crate::event::{SwarmEvent, Taps};
use crate::keys::{KeyPair, PublicKey};
use crate::msg::{Command, ReachabilityInfo};
use crate::options::{JoinOptions, SwarmOptions};
use crate::session::Connection;
use crate::topic::Topic;

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
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<SwarmEvent>>,
    taps: Taps,
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
        let key_pair = opts.resolve_key_pair()?;
        let spawned = engine::spawn(&opts, &key_pair, runtime)?;
        Ok(Swarm {
            inner: Arc::new(Inner {
                cmd: spawned.cmd,
                events: tokio::sync::Mutex::new(spawned.events),
                taps: spawned.taps,
                key_pair,
                message_topics: spawned.message_topics,
                connecting: spawned.connecting,
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

    /// Whether others can dial us, the addresses we advertise, and our relays.
    pub async fn reachability(&self) -> Result<ReachabilityInfo> {
        self.ask(|reply| Command::Reachability { reply }).await
    }

    /// Every address we listen on, once both default listeners (QUIC and TCP) reported theirs
    /// (waits up to 5 s): what a bootstrap node prints for others to use.
    pub async fn listen_addrs_all(&self) -> Result<Vec<Multiaddr>> {
        let both = self.ask(|reply| Command::ListenAddrs { min: 2, reply });
        match tokio::time::timeout(Duration::from_secs(5), both).await {
            Ok(addrs) => addrs,
            Err(_) => self.listen_addrs().await,
        }
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

    /// Stops announcing and looking up `topic`; existing connections stay open. Resolves once
    /// our announce is withdrawn from the DHT nodes that held it (each answered or failed, see
    /// [`crate::unannounce`]), so peers that look the topic up afterwards do not find us.
    pub async fn leave(&self, topic: Topic) -> Result<()> {
        self.ask(|reply| Command::Leave { topic, reply }).await
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

    /// Shows every event from now on to `tap` before [`Swarm::next_event`]'s queue gets it
    /// (for the layers built on a swarm; see `event::EventSink`).
    pub(crate) fn tap(&self, tap: crate::event::Tap) {
        self.inner.taps.add(tap)
    }

    /// Whether [`Swarm::destroy`] was called.
    pub fn is_destroyed(&self) -> bool {
        self.inner.destroyed.load(Ordering::Acquire)
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

    /// Leaves the topic (see [`Swarm::leave`]).
    pub async fn destroy(&self) -> Result<()> {
        self.swarm.leave(self.topic).await
    }
}

