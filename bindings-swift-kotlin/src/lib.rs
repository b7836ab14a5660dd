//! uniffi bindings of swarmplex for Kotlin (JVM, Android) and Swift.
//!
//! Every engine call runs on the core's shared runtime ([`swarmplex::runtime::shared`]): async
//! exports spawn their work there and await the join handle, so the foreign side's executor only
//! polls a handle. When the foreign side drops a pending call (a cancelled Kotlin coroutine), the
//! spawned task is aborted. [`Swarm::next_event`] instead polls the core's channel receiver in
//! place (no engine work, cancel-safe), so a cancelled `Flow` loses no event.
//!
//! Long-lived waits can also be cancelled from the foreign side without dropping the call (Swift
//! cannot drop a uniffi future): [`EventSubscription::cancel`], [`PeerSearch::cancel`],
//! [`Stream::cancel_reads`]/[`Stream::cancel_writes`] and [`Connection::cancel_waits`] make the
//! pending calls return at once (`None` or `SwarmplexError::Closed("cancelled")`).
//!
//! Panics never cross the FFI: uniffi catches them in every exported function (sync and async)
//! and reports them as an unexpected error (Kotlin: `InternalException`; Swift: uniffi's
//! `rustPanic` error, whose `localizedDescription` is the panic message); panics inside spawned
//! tasks come back as [`SwarmplexError::Internal`]. Every export returns [`Res`], even those that
//! cannot fail otherwise: uniffi's Swift code calls a non-throwing export with `try!`, which would
//! turn a caught panic into a trap of the host process; a throwing one throws instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarmplex::runtime::shared;
use swarmplex::{ErrorKind, PublicKey, Topic};
use tokio::sync::watch;

uniffi::setup_scaffolding!();

mod plex;

/// Errors, one variant per stable [`swarmplex::ErrorKind`]; the message is the engine's.
#[derive(Debug, Clone, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum SwarmplexError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Closed(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Firewalled(String),
    #[error("{0}")]
    Duplicate(String),
    #[error("{0}")]
    Reset(String),
    #[error("{0}")]
    RelayLimit(String),
    #[error("{0}")]
    Internal(String),
}

impl From<swarmplex::Error> for SwarmplexError {
    fn from(e: swarmplex::Error) -> Self {
        let m = e.to_string();
        match e.kind() {
            ErrorKind::InvalidInput => Self::InvalidInput(m),
            ErrorKind::Connect => Self::Connect(m),
            ErrorKind::Closed => Self::Closed(m),
            ErrorKind::Timeout => Self::Timeout(m),
            ErrorKind::Firewalled => Self::Firewalled(m),
            ErrorKind::Duplicate => Self::Duplicate(m),
            ErrorKind::Reset => Self::Reset(m),
            ErrorKind::RelayLimit => Self::RelayLimit(m),
            ErrorKind::Internal => Self::Internal(m),
        }
    }
}

type Res<T> = Result<T, SwarmplexError>;

/// Aborts the spawned task when the foreign caller drops the call.
struct AbortOnDrop(tokio::task::AbortHandle);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `fut` on the core runtime and waits for it from any executor.
async fn on_core<T, F>(fut: F) -> Res<T>
where
    F: Future<Output = Res<T>> + Send + 'static,
    T: Send + 'static,
{
    let handle = shared().spawn(fut);
    let _guard = AbortOnDrop(handle.abort_handle());
    match handle.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(SwarmplexError::Internal("panic in the engine task".into())),
        Err(_) => Err(SwarmplexError::Closed("cancelled".into())),
    }
}

fn cancelled() -> SwarmplexError {
    SwarmplexError::Closed("cancelled".into())
}

/// The pending calls of one kind on one object, all cancelled at once by [`Pending::cancel`]
/// (a generation counter: a call sees only cancels made after it started). Later calls run
/// normally.
struct Pending(watch::Sender<u64>);

impl Pending {
    fn new() -> Self {
        Pending(watch::channel(0).0)
    }

    fn cancel(&self) {
        self.0.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// `fut`, ended early with `Closed("cancelled")` by a later [`Pending::cancel`]. Subscribes
    /// now (when the call starts), so call it before any `.await`.
    fn guard<T, F>(&self, fut: F) -> impl Future<Output = Res<T>> + Send + 'static
    where
        F: Future<Output = Res<T>> + Send + 'static,
        T: Send + 'static,
    {
        let mut rx = self.0.subscribe();
        async move {
            tokio::select! {
                biased;
                _ = rx.changed() => Err(cancelled()),
                r = fut => r,
            }
        }
    }
}

fn topic(bytes: &[u8]) -> Res<Topic> {
    Ok(Topic::from_slice(bytes)?)
}

fn key(bytes: &[u8]) -> Res<PublicKey> {
    Ok(PublicKey::from_slice(bytes)?)
}

/// `sha256(name)`: a topic from a human-readable name.
#[uniffi::export]
pub fn topic_from_name(name: String) -> Res<Vec<u8>> {
    Ok(Topic::from_name(&name).0.to_vec())
}

/// A multiaddr from a string (`/ip4/127.0.0.1/tcp/4001`, …); anything else is `InvalidInput`.
fn addr(s: &str) -> Res<swarmplex::Multiaddr> {
    s.parse().map_err(|e| SwarmplexError::InvalidInput(format!("multiaddr {s:?}: {e}")))
}

/// An Ed25519 key pair in libsodium's layout (the core's `KeyPair`; Hyperswarm's `keyPair`).
/// No `Debug`: it holds the secret key.
#[derive(uniffi::Record, Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The 32-byte public key: the swarm's identity.
    pub public_key: Vec<u8>,
    /// 64 bytes: the 32-byte seed, then the public key (libsodium's secret key layout).
    pub secret_key: Vec<u8>,
}

impl From<&swarmplex::KeyPair> for KeyPair {
    fn from(kp: &swarmplex::KeyPair) -> Self {
        KeyPair { public_key: kp.public_key().as_bytes().to_vec(), secret_key: kp.secret_key().to_vec() }
    }
}

/// A fresh random key pair.
#[uniffi::export]
pub fn key_pair_generate() -> Res<KeyPair> {
    Ok((&swarmplex::KeyPair::generate()).into())
}

/// The key pair libsodium's `crypto_sign_seed_keypair` (and Hyperswarm's `keyPair(seed)`)
/// derives from a 32-byte seed; `InvalidInput` for another length.
#[uniffi::export]
pub fn key_pair_from_seed(seed: Vec<u8>) -> Res<KeyPair> {
    Ok((&swarmplex::KeyPair::from_seed(&seed)?).into())
}

/// The key pair of a 64-byte libsodium secret key (seed ‖ public key); `InvalidInput` if its
/// length is wrong or its halves do not match.
#[uniffi::export]
pub fn key_pair_from_secret_key(secret_key: Vec<u8>) -> Res<KeyPair> {
    Ok((&swarmplex::KeyPair::from_secret_key(&secret_key)?).into())
}

/// Native handles alive (swarms, connections, streams, discoveries, testnets): for leak tests.
static LIVE: AtomicI64 = AtomicI64::new(0);

struct Live;
impl Live {
    fn new() -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Live
    }
}
impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many native objects are alive (not yet closed/garbage-collected on the foreign side).
#[uniffi::export]
pub fn live_handles() -> Res<i64> {
    Ok(LIVE.load(Ordering::Relaxed))
}

/// Test hook: panics in a sync export (must surface as an exception, not abort the process;
/// returns `Res` so that Swift throws rather than traps).
#[uniffi::export]
pub fn debug_panic(message: String) -> Res<()> {
    panic!("{message}");
}

/// Test hook: panics inside an async export.
#[uniffi::export]
pub async fn debug_panic_async(message: String) -> Res<()> {
    panic!("{message}");
}

/// Test hook: panics inside a task on the core runtime.
#[uniffi::export]
pub async fn debug_panic_engine(message: String) -> Res<()> {
    on_core(async move { panic!("{message}") }).await
}

/// How to build a swarm. Only the fields a binding needs; defaults match [`Swarm::local`].
#[derive(uniffi::Record)]
pub struct SwarmOptions {
    /// Bootstrap multiaddrs (each ending in `/p2p/<peer id>`); `None`: the public network.
    #[uniffi(default = None)]
    pub bootstrap: Option<Vec<String>>,
    /// A 32-byte seed for the identity (libsodium's seed layout, see `keyPairFromSeed`);
    /// random when neither this nor `secretKey` is given.
    #[uniffi(default = None)]
    pub seed: Option<Vec<u8>>,
    /// A 64-byte secret key for the identity (`KeyPair.secretKey`); not together with `seed`.
    #[uniffi(default = None)]
    pub secret_key: Option<Vec<u8>>,
    /// A private network name.
    #[uniffi(default = None)]
    pub network: Option<String>,
    /// Cap on connections; `None` is unlimited.
    #[uniffi(default = None)]
    pub max_peers: Option<u32>,
    /// Multicast DNS on the LAN; `None`: the core's default, as in every language (on, except
    /// for a peer-exchange node). `localOptions` turns it off.
    #[uniffi(default = None)]
    pub mdns: Option<bool>,
    /// Listen multiaddrs; `None`: QUIC and TCP on every interface.
    #[uniffi(default = None)]
    pub listen: Option<Vec<String>>,
    /// Asked once per peer before a connection is accepted; `true` rejects and bans the peer.
    #[uniffi(default = None)]
    pub firewall: Option<Arc<dyn Firewall>>,
    /// A peer-exchange node of this network id (any string; the core's `SwarmOptions::exchange`):
    /// no DHT, no mDNS, no listener until `listenOn`, a bounded relay service for its peers and a
    /// relay reservation on each peer that offers one. Meet peers with `connect(address)` and
    /// `getNewPeer(via)`. `bootstrap`, `network`, `listen` and `mdns` must then stay unset.
    #[uniffi(default = None)]
    pub exchange: Option<String>,
}

impl SwarmOptions {
    /// The core's options these describe.
    fn into_core(self) -> Res<swarmplex::SwarmOptions> {
        let base = match &self.exchange {
            Some(id) => {
                if self.bootstrap.is_some() || self.network.is_some() || self.listen.is_some() || self.mdns.is_some() {
                    return Err(SwarmplexError::InvalidInput(
                        "exchange sets bootstrap, network, listen and mdns itself: leave them unset".into(),
                    ));
                }
                swarmplex::SwarmOptions::exchange(id)
            }
            None => swarmplex::SwarmOptions {
                bootstrap: self.bootstrap,
                network: self.network,
                mdns: self.mdns.unwrap_or(swarmplex::SwarmOptions::default().mdns),
                listen: self.listen,
                ..Default::default()
            },
        };
        Ok(swarmplex::SwarmOptions {
            key_pair: self.secret_key.map(|s| swarmplex::KeyPair::from_secret_key(&s)).transpose()?,
            seed: self.seed,
            max_peers: self.max_peers.map(|n| n as usize),
            firewall: self.firewall.map(core_firewall),
            ..base
        })
    }
}

/// The options of [`Swarm::local`] (loopback listen addresses, mDNS off, `bootstrap` as given),
/// to adjust before `Swarm(options)`, e.g. to add a firewall.
#[uniffi::export]
pub fn local_options(bootstrap: Vec<String>) -> Res<SwarmOptions> {
    let o = swarmplex::SwarmOptions::local(bootstrap);
    Ok(SwarmOptions {
        bootstrap: o.bootstrap,
        seed: None,
        secret_key: None,
        network: o.network,
        max_peers: None,
        mdns: Some(o.mdns),
        listen: o.listen,
        firewall: None,
        exchange: None,
    })
}

/// Decides whether a peer may connect (the core's `firewall`, Hyperswarm's convention).
///
/// Called at most once per remote key, on a blocking-pool thread of the core's runtime (so it may
/// block); return `true` to **reject** the peer, which is then banned. A callback that throws
/// rejects the peer.
#[uniffi::export(with_foreign)]
pub trait Firewall: Send + Sync {
    fn reject(&self, remote_public_key: Vec<u8>) -> bool;
}

fn core_firewall(fw: Arc<dyn Firewall>) -> swarmplex::Firewall {
    Arc::new(move |key: PublicKey| -> Pin<Box<dyn Future<Output = bool> + Send>> {
        let fw = fw.clone();
        Box::pin(async move {
            // A foreign exception becomes a panic in uniffi's glue: it stays in this blocking
            // task, and a failed verdict rejects.
            tokio::task::spawn_blocking(move || fw.reject(key.as_bytes().to_vec())).await.unwrap_or(true)
        })
    })
}

/// How to join a topic.
#[derive(uniffi::Record, Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinOptions {
    #[uniffi(default = true)]
    pub server: bool,
    #[uniffi(default = true)]
    pub client: bool,
}

impl From<JoinOptions> for swarmplex::JoinOptions {
    fn from(o: JoinOptions) -> Self {
        swarmplex::JoinOptions { server: o.server, client: o.client }
    }
}

impl From<swarmplex::JoinOptions> for JoinOptions {
    fn from(o: swarmplex::JoinOptions) -> Self {
        JoinOptions { server: o.server, client: o.client }
    }
}

/// A joined topic and how it is joined (see `Swarm.topics`).
#[derive(uniffi::Record)]
pub struct TopicStatus {
    pub topic: Vec<u8>,
    pub server: bool,
    pub client: bool,
}

/// What we know about a connected peer (the core's `PeerInfo`, Hyperswarm's `peerInfo`).
#[derive(uniffi::Record)]
pub struct PeerInfo {
    /// The remote's 32-byte public key.
    pub public_key: Vec<u8>,
    /// Topics under which we found this peer as a client (empty for purely incoming peers).
    pub topics: Vec<Vec<u8>>,
    /// Whether we look this peer up as a client of some topic.
    pub client: bool,
    /// Whether the peer was joined explicitly by key (`joinPeer`/`findPeer`).
    pub explicit: bool,
}

impl From<swarmplex::PeerInfo> for PeerInfo {
    fn from(i: swarmplex::PeerInfo) -> Self {
        PeerInfo {
            public_key: i.public_key.as_bytes().to_vec(),
            topics: i.topics.iter().map(|t| t.0.to_vec()).collect(),
            client: i.client,
            explicit: i.explicit,
        }
    }
}

/// Why a connection ended: the stable error kind name (`"closed"`, `"timeout"`, `"reset"`, …,
/// as `SwarmplexException.kind`) and the engine's message.
#[derive(uniffi::Record)]
pub struct CloseReason {
    pub kind: String,
    pub message: String,
}

/// What a swarm reports (see `Swarm.nextEvent`).
#[derive(uniffi::Enum)]
pub enum SwarmEvent {
    /// A new connection (one per remote key).
    Connected { connection: Arc<Connection> },
    Disconnected { remote: Vec<u8>, reason: String },
    Update { connecting: u64, connections: u64 },
    Ban { remote: Vec<u8> },
    PeerTopic { remote: Vec<u8>, topic: Vec<u8> },
    /// The remote opened a stream nobody waited for; take it with `Connection.takeParkedStream`.
    IncomingStream { remote: Vec<u8>, name: String, shared: bool },
    Message { remote: Vec<u8>, topic: String, data: Vec<u8> },
    /// Whether others can dial us changed (`"unknown"`, `"public"` or `"private"`).
    Reachability { state: String, symmetric: bool },
}

/// How a connection's bytes travel (see `Connection.path`).
#[derive(uniffi::Record)]
pub struct ConnectionPath {
    /// Through a relay (circuit relay v2) rather than directly.
    pub relayed: bool,
    /// The relay's public key, when relayed.
    pub relay: Option<Vec<u8>>,
    /// `"quic"`, `"tcp"`, `"websocket"` or `"relay"`.
    pub transport: String,
    /// The remote multiaddr of the transport connection.
    pub remote_address: String,
}

/// Whether others can dial this swarm (see `Swarm.reachability`).
#[derive(uniffi::Record)]
pub struct Reachability {
    /// `"public"` (a direct address others confirmed, or a local network), `"private"` (behind a
    /// NAT: reachable through relays and hole punching) or `"unknown"`.
    pub state: String,
    /// Behind a symmetric NAT: hole punching rarely works, sessions run relayed.
    pub symmetric: bool,
    /// The multiaddrs this swarm advertises as dialable.
    pub external: Vec<String>,
    /// Public keys of the relays it holds a reservation on.
    pub relays: Vec<Vec<u8>>,
}

impl From<swarmplex::SwarmEvent> for SwarmEvent {
    fn from(e: swarmplex::SwarmEvent) -> Self {
        use swarmplex::SwarmEvent as E;
        match e {
            E::Connection(c) => SwarmEvent::Connected { connection: Connection::wrap(c) },
            E::Disconnected { remote, reason } => {
                SwarmEvent::Disconnected { remote: remote.as_bytes().to_vec(), reason: reason.to_string() }
            }
            E::Update { connecting, connections } => {
                SwarmEvent::Update { connecting: connecting as u64, connections: connections as u64 }
            }
            E::Ban { remote } => SwarmEvent::Ban { remote: remote.as_bytes().to_vec() },
            E::PeerTopic { remote, topic } => {
                SwarmEvent::PeerTopic { remote: remote.as_bytes().to_vec(), topic: topic.0.to_vec() }
            }
            E::Stream { remote, name, shared } => {
                SwarmEvent::IncomingStream { remote: remote.as_bytes().to_vec(), name, shared }
            }
            E::Message { remote, topic, data } => {
                SwarmEvent::Message { remote: remote.as_bytes().to_vec(), topic, data }
            }
            E::Reachability(r) => SwarmEvent::Reachability { state: r.as_str().into(), symmetric: r.is_symmetric() },
        }
    }
}

/// A swarm. `shutdown()` stops it; `close()` (Kotlin) frees the native handle.
#[derive(uniffi::Object)]
pub struct Swarm {
    inner: swarmplex::Swarm,
    _live: Live,
}

#[uniffi::export]
impl Swarm {
    /// Starts a swarm whose engine runs on the core runtime.
    #[uniffi::constructor]
    pub fn new(options: SwarmOptions) -> Res<Arc<Self>> {
        swarmplex::logging::stderr_from_env();
        let inner = swarmplex::Swarm::spawn(options.into_core()?, shared().handle())?;
        Ok(Arc::new(Swarm { inner, _live: Live::new() }))
    }

    /// A swarm on 127.0.0.1 using `bootstrap` (a local testnet), mDNS off.
    #[uniffi::constructor]
    pub fn local(bootstrap: Vec<String>) -> Res<Arc<Self>> {
        let inner = swarmplex::Swarm::spawn(swarmplex::SwarmOptions::local(bootstrap), shared().handle())?;
        Ok(Arc::new(Swarm { inner, _live: Live::new() }))
    }

    /// This swarm's 32-byte public key.
    pub fn public_key(&self) -> Res<Vec<u8>> {
        Ok(self.inner.public_key().as_bytes().to_vec())
    }

    /// This swarm's key pair (its secret key included: keep it to restart with the same identity).
    pub fn key_pair(&self) -> Res<KeyPair> {
        Ok(self.inner.key_pair().into())
    }

    /// Dials `address` (a multiaddr such as `/ip4/127.0.0.1/tcp/4001`) and returns the session
    /// with whoever answers there (not redialed once it ends). `Connect` if nobody does, or if
    /// the peer is of another network.
    pub async fn connect(&self, address: String) -> Res<Arc<Connection>> {
        let a = addr(&address)?;
        let s = self.inner.clone();
        on_core(async move { Ok(Connection::wrap(s.connect(a).await?)) }).await
    }

    /// Listens on one more address (a multiaddr; port 0 picks one: `/ip4/127.0.0.1/tcp/0`,
    /// `…/udp/0/quic-v1`, `…/tcp/0/ws`) and returns the bound address.
    pub async fn listen_on(&self, address: String) -> Res<String> {
        let a = addr(&address)?;
        let s = self.inner.clone();
        on_core(async move { Ok(s.listen_on(a).await?.to_string()) }).await
    }

    /// Closes the listener at `address` (one `listenOn` returned); existing connections stay.
    /// `InvalidInput` if nothing listens there.
    pub async fn stop_listening(&self, address: String) -> Res<()> {
        let a = addr(&address)?;
        let s = self.inner.clone();
        on_core(async move { Ok(s.stop_listening(a).await?) }).await
    }

    /// Peer exchange: asks the connected peer `via` (a 32-byte key; `None`: a random connected
    /// peer) for another peer of this network and connects to it, through `via`'s relay when
    /// the peer cannot be dialed directly. `Connect` when there is no peer to ask or nothing new
    /// to offer.
    pub async fn get_new_peer(&self, via: Option<Vec<u8>>) -> Res<Arc<Connection>> {
        let via = via.as_deref().map(key).transpose()?;
        let s = self.inner.clone();
        on_core(async move { Ok(Connection::wrap(s.get_new_peer(via).await?)) }).await
    }

    /// Joins a 32-byte topic; returns at once (await `Discovery.flushed()`).
    pub fn join(&self, topic: Vec<u8>, options: JoinOptions) -> Res<Arc<Discovery>> {
        let d = self.inner.join(self::topic(&topic)?, options.into())?;
        Ok(Arc::new(Discovery { inner: d, _live: Live::new() }))
    }

    /// Stops announcing and looking up `topic`; returns once its announce is withdrawn from
    /// the DHT, so peers that look the topic up afterwards do not find us.
    pub async fn leave(&self, topic: Vec<u8>) -> Res<()> {
        let t = self::topic(&topic)?;
        let s = self.inner.clone();
        on_core(async move { Ok(s.leave(t).await?) }).await
    }

    /// Keeps a connection to the peer with this 32-byte key.
    pub fn join_peer(&self, public_key: Vec<u8>) -> Res<()> {
        Ok(self.inner.join_peer(key(&public_key)?)?)
    }

    /// Stops reconnecting to this peer.
    pub fn leave_peer(&self, public_key: Vec<u8>) -> Res<()> {
        Ok(self.inner.leave_peer(key(&public_key)?)?)
    }

    /// Waits until every joined topic finished its round.
    pub async fn flush(&self) -> Res<()> {
        let s = self.inner.clone();
        on_core(async move { Ok(s.flush().await?) }).await
    }

    /// Announces this peer under its key (so `joinPeer` finds it); returns the listen addresses.
    pub async fn listen(&self) -> Res<Vec<String>> {
        let s = self.inner.clone();
        on_core(async move { Ok(s.listen().await?.iter().map(|a| a.to_string()).collect()) }).await
    }

    /// The open connections.
    pub async fn connections(&self) -> Res<Vec<Arc<Connection>>> {
        let s = self.inner.clone();
        on_core(async move { Ok(s.connections().await?.into_iter().map(Connection::wrap).collect()) }).await
    }

    /// Bans a peer.
    pub fn ban(&self, public_key: Vec<u8>) -> Res<()> {
        Ok(self.inner.ban(key(&public_key)?)?)
    }

    /// Closes every connection and pauses discovery until `resume()`.
    pub fn suspend(&self) -> Res<()> {
        Ok(self.inner.suspend()?)
    }

    /// Restarts discovery after `suspend()`.
    pub fn resume(&self) -> Res<()> {
        Ok(self.inner.resume()?)
    }

    /// How `topic` is joined, or `None` if it is not.
    pub async fn status(&self, topic: Vec<u8>) -> Res<Option<JoinOptions>> {
        let t = self::topic(&topic)?;
        let s = self.inner.clone();
        on_core(async move { Ok(s.status(t).await?.map(JoinOptions::from)) }).await
    }

    /// Every joined topic and how (`listen()` joins the topic derived from our own key, which
    /// shows here; the hidden lookups of `joinPeer` do not).
    pub async fn topics(&self) -> Res<Vec<TopicStatus>> {
        let s = self.inner.clone();
        on_core(async move {
            let list = s.topics().await?.into_iter();
            Ok(list.map(|(t, o)| TopicStatus { topic: t.0.to_vec(), server: o.server, client: o.client }).collect())
        })
        .await
    }

    /// Whether others can dial us, the addresses we advertise and the relays we hold.
    pub async fn reachability(&self) -> Res<Reachability> {
        let s = self.inner.clone();
        on_core(async move {
            let r = s.reachability().await?;
            Ok(Reachability {
                state: r.state.as_str().into(),
                symmetric: r.state.is_symmetric(),
                external: r.external.iter().map(|a| a.to_string()).collect(),
                relays: r.relays.iter().map(|k| k.as_bytes().to_vec()).collect(),
            })
        })
        .await
    }

    /// Dials in progress (as of the last `Update` event).
    pub fn connecting(&self) -> Res<u64> {
        Ok(self.inner.connecting() as u64)
    }

    /// Receives topic messages sent to `topic` (`Message` events; see `Connection.sendMessage`).
    pub fn join_messages(&self, topic: String) -> Res<()> {
        self.inner.join_messages(&topic);
        Ok(())
    }

    /// Stops receiving topic messages for `topic`.
    pub fn leave_messages(&self, topic: String) -> Res<()> {
        self.inner.leave_messages(&topic);
        Ok(())
    }

    /// Starts finding the peer with this 32-byte key (through its `listen()` announce) and
    /// connecting to it; it is then kept like `joinPeer` (call `leavePeer` to stop). Returns at
    /// once: take the connection with `PeerSearch.connection()`, stop with `cancel()`. With
    /// `timeout_ms`, the search fails with `Timeout` after that long.
    pub fn find_peer(&self, public_key: Vec<u8>, timeout_ms: Option<u64>) -> Res<Arc<PeerSearch>> {
        let key = key(&public_key)?;
        let s = self.inner.clone();
        let result = Arc::new(watch::channel(None).0);
        let publish = result.clone();
        let task = shared().spawn(async move {
            let r = match timeout_ms {
                Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), s.find_peer(key)).await {
                    Ok(r) => r.map_err(SwarmplexError::from),
                    Err(_) => Err(SwarmplexError::Timeout(format!("peer not found within {ms} ms"))),
                },
                None => s.find_peer(key).await.map_err(SwarmplexError::from),
            };
            PeerSearch::settle(&publish, r.map(Connection::wrap));
        });
        Ok(Arc::new(PeerSearch { result, task: task.abort_handle(), _live: Live::new() }))
    }

    /// Events through a handle whose `cancel()` ends a pending `next()` at once (for callers
    /// that cannot drop a pending call). One event queue per swarm: one consumer at a time.
    pub fn subscribe(&self) -> Res<Arc<EventSubscription>> {
        let (cancel, _) = watch::channel(false);
        Ok(Arc::new(EventSubscription { swarm: self.inner.clone(), cancel, _live: Live::new() }))
    }

    /// The next event, or `None` once the swarm is destroyed. Cancelling the call loses nothing.
    pub async fn next_event(&self) -> Res<Option<SwarmEvent>> {
        // Only a channel receive (tokio sync primitives need no runtime): polled in place so a
        // dropped call cancels it cleanly.
        Ok(self.inner.next_event().await.map(SwarmEvent::from))
    }

    /// Closes every connection and stops the engine (the core's `destroy`; named so because
    /// uniffi's Kotlin objects already have `destroy()`/`close()` to free the native handle).
    pub async fn shutdown(&self) -> Res<()> {
        let s = self.inner.clone();
        let _ = on_core(async move {
            s.destroy().await;
            Ok(())
        })
        .await;
        Ok(())
    }
}

/// A swarm's events, pulled with `next()`; `cancel()` ends it (see `Swarm.subscribe`).
#[derive(uniffi::Object)]
pub struct EventSubscription {
    swarm: swarmplex::Swarm,
    cancel: watch::Sender<bool>,
    _live: Live,
}

#[uniffi::export]
impl EventSubscription {
    /// The next event; `None` once the swarm is destroyed or the subscription cancelled.
    /// A cancelled call takes no event from the queue.
    pub async fn next(&self) -> Res<Option<SwarmEvent>> {
        let mut cancelled = self.cancel.subscribe();
        // Polled in place like `Swarm.nextEvent` (a channel receive, cancel-safe).
        Ok(tokio::select! {
            biased;
            _ = cancelled.wait_for(|c| *c) => None,
            e = self.swarm.next_event() => e.map(SwarmEvent::from),
        })
    }

    /// Ends the subscription: a pending `next()` returns `None` at once, and so do later ones.
    pub fn cancel(&self) -> Res<()> {
        self.cancel.send_replace(true);
        Ok(())
    }

    pub fn is_cancelled(&self) -> Res<bool> {
        Ok(*self.cancel.borrow())
    }
}

/// A search for a peer by key, started by `Swarm.findPeer`. Freeing it stops the search.
#[derive(uniffi::Object)]
pub struct PeerSearch {
    result: Arc<watch::Sender<Option<Res<Arc<Connection>>>>>,
    task: tokio::task::AbortHandle,
    _live: Live,
}

impl PeerSearch {
    /// Records the outcome unless there already is one (the first of finish/cancel wins).
    fn settle(result: &watch::Sender<Option<Res<Arc<Connection>>>>, r: Res<Arc<Connection>>) {
        result.send_if_modified(|slot| {
            if slot.is_some() {
                return false;
            }
            *slot = Some(r);
            true
        });
    }
}

impl Drop for PeerSearch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[uniffi::export]
impl PeerSearch {
    /// Waits for the connection to the peer. Fails with `Timeout` when the search's timeout
    /// passed, `Closed("cancelled")` after `cancel()`, or the engine's error. Callable again: the
    /// outcome stays.
    pub async fn connection(&self) -> Res<Arc<Connection>> {
        let mut rx = self.result.subscribe();
        // Polled in place (a watch receive; the search itself runs on the core runtime).
        let r = match rx.wait_for(|r| r.is_some()).await {
            Ok(r) => r.clone(),
            Err(_) => None,
        };
        r.unwrap_or_else(|| Err(cancelled()))
    }

    /// Stops the search: a pending `connection()` fails with `Closed("cancelled")` at once
    /// (no-op if it already finished). The peer stays joined: call `Swarm.leavePeer` to stop
    /// reconnecting to it.
    pub fn cancel(&self) -> Res<()> {
        self.task.abort();
        Self::settle(&self.result, Err(cancelled()));
        Ok(())
    }
}

/// A joined topic.
#[derive(uniffi::Object)]
pub struct Discovery {
    inner: swarmplex::Discovery,
    _live: Live,
}

#[uniffi::export]
impl Discovery {
    pub fn topic(&self) -> Res<Vec<u8>> {
        Ok(self.inner.topic().0.to_vec())
    }

    /// Waits until this topic's current round is done.
    pub async fn flushed(&self) -> Res<()> {
        let d = self.inner.clone();
        on_core(async move { Ok(d.flushed().await?) }).await
    }

    /// Starts a new round now (announce and/or look up again); with `options`, switches to that
    /// server/client mode first.
    #[uniffi::method(default(options = None))]
    pub fn refresh(&self, options: Option<JoinOptions>) -> Res<()> {
        Ok(self.inner.refresh(options.map(Into::into))?)
    }

    /// Leaves the topic; returns once its announce is withdrawn from the DHT.
    pub async fn leave(&self) -> Res<()> {
        let d = self.inner.clone();
        on_core(async move { Ok(d.destroy().await?) }).await
    }
}

/// One connection per remote peer.
#[derive(uniffi::Object)]
pub struct Connection {
    inner: swarmplex::Connection,
    /// One handle for the socket, so `cancelReads()` reaches reads made through `socket()`.
    socket: Arc<Stream>,
    waits: Pending,
    _live: Live,
}

impl Connection {
    fn wrap(c: swarmplex::Connection) -> Arc<Self> {
        let socket = Stream::wrap(c.socket());
        Arc::new(Connection { inner: c, socket, waits: Pending::new(), _live: Live::new() })
    }
}

#[uniffi::export]
impl Connection {
    pub fn remote_public_key(&self) -> Res<Vec<u8>> {
        Ok(self.inner.remote_public_key().as_bytes().to_vec())
    }

    /// 32 bytes equal on both sides.
    pub fn handshake_hash(&self) -> Res<Vec<u8>> {
        Ok(self.inner.handshake_hash().to_vec())
    }

    pub fn is_initiator(&self) -> Res<bool> {
        Ok(self.inner.is_initiator())
    }

    /// How the bytes travel: directly or through which relay, transport, remote address.
    pub fn path(&self) -> Res<ConnectionPath> {
        let p = self.inner.path();
        Ok(ConnectionPath {
            relayed: p.relayed,
            relay: p.relay.map(|k| k.as_bytes().to_vec()),
            transport: p.transport.into(),
            remote_address: p.remote_address.to_string(),
        })
    }

    pub fn is_closed(&self) -> Res<bool> {
        Ok(self.inner.is_closed())
    }

    /// What we know about the peer now (its topics grow as it is found under more of them).
    pub fn peer_info(&self) -> Res<PeerInfo> {
        Ok(self.inner.peer_info().into())
    }

    /// The session's default byte stream (the same handle every time).
    pub fn socket(&self) -> Res<Arc<Stream>> {
        Ok(self.socket.clone())
    }

    /// Opens a named stream; the remote takes it with `receiveStream(name)`.
    pub async fn create_stream(&self, name: String) -> Res<Arc<Stream>> {
        let c = self.inner.clone();
        on_core(async move { Ok(Stream::wrap(c.create_stream(&name).await?)) }).await
    }

    /// Waits for the remote's `createStream(name)` (ended by `cancelWaits()`).
    pub async fn receive_stream(&self, name: String) -> Res<Arc<Stream>> {
        let c = self.inner.clone();
        on_core(self.waits.guard(async move { Ok(Stream::wrap(c.receive_stream(&name).await?)) })).await
    }

    /// Takes the remote's stream `name` that waits unclaimed (announced by a `Stream` event)
    /// without waiting; `None` if a `receiveStream`/`createSharedStream` already took it. Use it
    /// when handling the event: a `receiveStream` there could take the next stream of that name.
    pub fn take_parked_stream(&self, name: String, shared: bool) -> Res<Option<Arc<Stream>>> {
        Ok(self.inner.take_parked_stream(&name, shared).map(Stream::wrap))
    }

    /// A stream both sides ask for by the same name and get the two ends of, whichever asks
    /// first. The follower's call resolves only once the leader's side asked too, so call it on
    /// both sides before awaiting either (ended by `cancelWaits()`).
    pub async fn create_shared_stream(&self, name: String) -> Res<Arc<Stream>> {
        let c = self.inner.clone();
        on_core(self.waits.guard(async move { Ok(Stream::wrap(c.create_shared_stream(&name).await?)) })).await
    }

    /// Sends one topic message; the remote delivers it (a `Message` event) only if it joined
    /// `topic` with `joinMessages`.
    pub async fn send_message(&self, topic: String, data: Vec<u8>) -> Res<()> {
        let c = self.inner.clone();
        on_core(async move { Ok(c.send_message(&topic, &data).await?) }).await
    }

    /// Waits until the session ends and says why; `None` if `cancelWaits()` ended the wait.
    pub async fn closed(&self) -> Res<Option<CloseReason>> {
        let c = self.inner.clone();
        let wait = self.waits.guard(async move {
            let e = c.closed().await;
            Ok(CloseReason { kind: e.kind().as_str().to_string(), message: e.to_string() })
        });
        Ok(on_core(wait).await.ok())
    }

    /// Ends every pending `receiveStream`, `createSharedStream` (with `Closed("cancelled")`)
    /// and `closed()` (with `None`) made through this handle; later calls work normally.
    pub fn cancel_waits(&self) -> Res<()> {
        self.waits.cancel();
        Ok(())
    }

    /// Ends the session (the core's `close`; `close()` frees the handle in Kotlin).
    pub fn disconnect(&self) -> Res<()> {
        self.inner.close();
        Ok(())
    }
}

/// A framed, ordered byte stream.
#[derive(uniffi::Object)]
pub struct Stream {
    inner: swarmplex::Stream,
    reads: Pending,
    writes: Pending,
    _live: Live,
}

impl Stream {
    fn wrap(s: swarmplex::Stream) -> Arc<Self> {
        Arc::new(Stream { inner: s, reads: Pending::new(), writes: Pending::new(), _live: Live::new() })
    }
}

#[uniffi::export]
impl Stream {
    pub fn name(&self) -> Res<String> {
        Ok(self.inner.name().to_string())
    }

    /// The remote peer's 32-byte public key.
    pub fn remote_public_key(&self) -> Res<Vec<u8>> {
        Ok(self.inner.remote_public_key().as_bytes().to_vec())
    }

    /// Up to `max` bytes (waits for at least one); empty means the remote ended the stream.
    /// Ended by `cancelReads()` with `Closed("cancelled")`; nothing is lost then.
    pub async fn read(&self, max: u32) -> Res<Vec<u8>> {
        let s = self.inner.clone();
        on_core(self.reads.guard(async move { Ok(s.read(max as usize).await?) })).await
    }

    /// Writes all of `data` (waits while the remote's window is full). Ended by
    /// `cancelWrites()`.
    pub async fn write(&self, data: Vec<u8>) -> Res<()> {
        let s = self.inner.clone();
        on_core(self.writes.guard(async move { Ok(s.write(&data).await?) })).await
    }

    /// Ends our side of the stream cleanly: the remote reads everything, then the end.
    pub async fn end(&self) -> Res<()> {
        let s = self.inner.clone();
        on_core(self.writes.guard(async move { Ok(s.end().await?) })).await
    }

    /// Aborts our side: the remote's reads fail with `Reset` instead of ending cleanly. Pending
    /// writes through this handle are cancelled first, so a reset never waits behind them.
    pub async fn reset(&self) -> Res<()> {
        self.writes.cancel();
        let s = self.inner.clone();
        let _ = on_core(async move {
            s.reset().await;
            Ok(())
        })
        .await;
        Ok(())
    }

    /// Ends every pending `read` made through this handle with `Closed("cancelled")` at once;
    /// no data is lost and later reads work normally.
    pub fn cancel_reads(&self) -> Res<()> {
        self.reads.cancel();
        Ok(())
    }

    /// Ends every pending `write`/`end` made through this handle with `Closed("cancelled")`.
    /// A write cut short may have sent part of its data, so the writing side then fails with
    /// `Reset` (the core's rule); use it to abandon a stream whose remote stopped reading.
    pub fn cancel_writes(&self) -> Res<()> {
        self.writes.cancel();
        Ok(())
    }
}

/// DHT bootstrap nodes on 127.0.0.1.
#[derive(uniffi::Object)]
pub struct Testnet {
    inner: Mutex<Option<swarmplex::Testnet>>,
    bootstrap: Vec<String>,
    _live: Live,
}

/// Starts a local testnet of `nodes` DHT nodes on 127.0.0.1.
#[uniffi::export]
pub async fn start_testnet(nodes: u32) -> Res<Arc<Testnet>> {
    on_core(async move {
        swarmplex::logging::stderr_from_env();
        let t = swarmplex::Testnet::new(nodes as usize).await?;
        let bootstrap = t.bootstrap();
        Ok(Arc::new(Testnet { inner: Mutex::new(Some(t)), bootstrap, _live: Live::new() }))
    })
    .await
}

#[uniffi::export]
impl Testnet {
    /// The nodes' multiaddrs, to pass to `Swarm.local`.
    pub fn bootstrap(&self) -> Res<Vec<String>> {
        Ok(self.bootstrap.clone())
    }

    /// Stops every node (idempotent).
    pub async fn shutdown(&self) -> Res<()> {
        let t = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            let _ = on_core(async move {
                t.destroy().await;
                Ok(())
            })
            .await;
        }
        Ok(())
    }
}
