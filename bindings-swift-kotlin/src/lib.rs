//! uniffi bindings of swarmplex for Kotlin (JVM, Android) and Swift.
//!
//! Every engine call runs on the core's shared runtime ([`swarmplex::runtime::shared`]): async
//! exports spawn their work there and await the join handle, so the foreign side's executor only
//! polls a handle. When the foreign side drops a pending call (a cancelled Kotlin coroutine), the
//! spawned task is aborted. [`Swarm::next_event`] instead polls the core's channel receiver in
//! place (no engine work, cancel-safe), so a cancelled `Flow` loses no event.
//!
//! Panics never cross the FFI: uniffi catches them in every exported function (sync and async)
//! and Kotlin sees `InternalException`; panics inside spawned tasks come back as
//! [`SwarmplexError::Internal`].

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use swarmplex::runtime::shared;
use swarmplex::{ErrorKind, PublicKey, Topic};

uniffi::setup_scaffolding!();

/// Errors, one variant per stable [`swarmplex::ErrorKind`]; the message is the engine's.
#[derive(Debug, thiserror::Error, uniffi::Error)]
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

fn topic(bytes: &[u8]) -> Res<Topic> {
    Ok(Topic::from_slice(bytes)?)
}

fn key(bytes: &[u8]) -> Res<PublicKey> {
    Ok(PublicKey::from_slice(bytes)?)
}

/// `sha256(name)`: a topic from a human-readable name.
#[uniffi::export]
pub fn topic_from_name(name: String) -> Vec<u8> {
    Topic::from_name(&name).0.to_vec()
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
pub fn live_handles() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// Test hook: panics in a sync export (must surface as an exception, not abort the process).
#[uniffi::export]
pub fn debug_panic(message: String) {
    panic!("{message}");
}

/// Test hook: panics inside an async export.
#[uniffi::export]
pub async fn debug_panic_async(message: String) {
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
    /// A 32-byte seed for the identity; random when `None`.
    #[uniffi(default = None)]
    pub seed: Option<Vec<u8>>,
    /// A private network name.
    #[uniffi(default = None)]
    pub network: Option<String>,
    /// Cap on connections; `None` is unlimited.
    #[uniffi(default = None)]
    pub max_peers: Option<u32>,
    /// Multicast DNS on the LAN.
    #[uniffi(default = false)]
    pub mdns: bool,
    /// Listen multiaddrs; `None`: QUIC and TCP on every interface.
    #[uniffi(default = None)]
    pub listen: Option<Vec<String>>,
}

/// How to join a topic.
#[derive(uniffi::Record, Clone, Copy)]
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

/// What a swarm reports (see `Swarm.nextEvent`).
#[derive(uniffi::Enum)]
pub enum SwarmEvent {
    /// A new connection (one per remote key).
    Connected { connection: Arc<Connection> },
    Disconnected { remote: Vec<u8>, reason: String },
    Update { connecting: u64, connections: u64 },
    Ban { remote: Vec<u8> },
    PeerTopic { remote: Vec<u8>, topic: Vec<u8> },
    /// The remote opened a stream nobody waited for; take it with `receiveStream(name)`.
    IncomingStream { remote: Vec<u8>, name: String, shared: bool },
    Message { remote: Vec<u8>, topic: String, data: Vec<u8> },
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
        let opts = swarmplex::SwarmOptions {
            bootstrap: options.bootstrap,
            seed: options.seed,
            network: options.network,
            max_peers: options.max_peers.map(|n| n as usize),
            mdns: options.mdns,
            listen: options.listen,
            ..Default::default()
        };
        let inner = swarmplex::Swarm::spawn(opts, shared().handle())?;
        Ok(Arc::new(Swarm { inner, _live: Live::new() }))
    }

    /// A swarm on 127.0.0.1 using `bootstrap` (a local testnet), mDNS off.
    #[uniffi::constructor]
    pub fn local(bootstrap: Vec<String>) -> Res<Arc<Self>> {
        let inner = swarmplex::Swarm::spawn(swarmplex::SwarmOptions::local(bootstrap), shared().handle())?;
        Ok(Arc::new(Swarm { inner, _live: Live::new() }))
    }

    /// This swarm's 32-byte public key.
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public_key().as_bytes().to_vec()
    }

    /// Joins a 32-byte topic; returns at once (await `Discovery.flushed()`).
    pub fn join(&self, topic: Vec<u8>, options: JoinOptions) -> Res<Arc<Discovery>> {
        let d = self.inner.join(self::topic(&topic)?, options.into())?;
        Ok(Arc::new(Discovery { inner: d, _live: Live::new() }))
    }

    /// Stops announcing and looking up `topic`.
    pub fn leave(&self, topic: Vec<u8>) -> Res<()> {
        Ok(self.inner.leave(self::topic(&topic)?)?)
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

    /// The next event, or `None` once the swarm is destroyed. Cancelling the call loses nothing.
    pub async fn next_event(&self) -> Option<SwarmEvent> {
        // Only a channel receive (tokio sync primitives need no runtime): polled in place so a
        // dropped call cancels it cleanly.
        self.inner.next_event().await.map(SwarmEvent::from)
    }

    /// Closes every connection and stops the engine (the core's `destroy`; named so because
    /// uniffi's Kotlin objects already have `destroy()`/`close()` to free the native handle).
    pub async fn shutdown(&self) {
        let s = self.inner.clone();
        let _ = on_core(async move {
            s.destroy().await;
            Ok(())
        })
        .await;
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
    pub fn topic(&self) -> Vec<u8> {
        self.inner.topic().0.to_vec()
    }

    /// Waits until this topic's current round is done.
    pub async fn flushed(&self) -> Res<()> {
        let d = self.inner.clone();
        on_core(async move { Ok(d.flushed().await?) }).await
    }

    /// Starts a new round now.
    pub fn refresh(&self) -> Res<()> {
        Ok(self.inner.refresh(None)?)
    }

    /// Leaves the topic.
    pub fn leave(&self) -> Res<()> {
        Ok(self.inner.destroy()?)
    }
}

/// One connection per remote peer.
#[derive(uniffi::Object)]
pub struct Connection {
    inner: swarmplex::Connection,
    _live: Live,
}

impl Connection {
    fn wrap(c: swarmplex::Connection) -> Arc<Self> {
        Arc::new(Connection { inner: c, _live: Live::new() })
    }
}

#[uniffi::export]
impl Connection {
    pub fn remote_public_key(&self) -> Vec<u8> {
        self.inner.remote_public_key().as_bytes().to_vec()
    }

    /// 32 bytes equal on both sides.
    pub fn handshake_hash(&self) -> Vec<u8> {
        self.inner.handshake_hash().to_vec()
    }

    pub fn is_initiator(&self) -> bool {
        self.inner.is_initiator()
    }

    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The session's default byte stream.
    pub fn socket(&self) -> Arc<Stream> {
        Stream::wrap(self.inner.socket())
    }

    /// Opens a named stream; the remote takes it with `receiveStream(name)`.
    pub async fn create_stream(&self, name: String) -> Res<Arc<Stream>> {
        let c = self.inner.clone();
        on_core(async move { Ok(Stream::wrap(c.create_stream(&name).await?)) }).await
    }

    /// Waits for the remote's `createStream(name)`.
    pub async fn receive_stream(&self, name: String) -> Res<Arc<Stream>> {
        let c = self.inner.clone();
        on_core(async move { Ok(Stream::wrap(c.receive_stream(&name).await?)) }).await
    }

    /// Ends the session (the core's `close`; `close()` frees the handle in Kotlin).
    pub fn disconnect(&self) {
        self.inner.close()
    }
}

/// A framed, ordered byte stream.
#[derive(uniffi::Object)]
pub struct Stream {
    inner: swarmplex::Stream,
    _live: Live,
}

impl Stream {
    fn wrap(s: swarmplex::Stream) -> Arc<Self> {
        Arc::new(Stream { inner: s, _live: Live::new() })
    }
}

#[uniffi::export]
impl Stream {
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// Up to `max` bytes (waits for at least one); empty means the remote ended the stream.
    pub async fn read(&self, max: u32) -> Res<Vec<u8>> {
        let s = self.inner.clone();
        on_core(async move { Ok(s.read(max as usize).await?) }).await
    }

    /// Writes all of `data`.
    pub async fn write(&self, data: Vec<u8>) -> Res<()> {
        let s = self.inner.clone();
        on_core(async move { Ok(s.write(&data).await?) }).await
    }

    /// Ends our side of the stream.
    pub async fn end(&self) -> Res<()> {
        let s = self.inner.clone();
        on_core(async move { Ok(s.end().await?) }).await
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
        let t = swarmplex::Testnet::new(nodes as usize).await?;
        let bootstrap = t.bootstrap();
        Ok(Arc::new(Testnet { inner: Mutex::new(Some(t)), bootstrap, _live: Live::new() }))
    })
    .await
}

#[uniffi::export]
impl Testnet {
    /// The nodes' multiaddrs, to pass to `Swarm.local`.
    pub fn bootstrap(&self) -> Vec<String> {
        self.bootstrap.clone()
    }

    /// Stops every node (idempotent).
    pub async fn shutdown(&self) {
        let t = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            let _ = on_core(async move {
                t.destroy().await;
                Ok(())
            })
            .await;
        }
    }
}
