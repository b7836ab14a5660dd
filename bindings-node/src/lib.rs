//! Node.js binding of swarmplex (napi-rs v3).
//!
//! This is the thin native layer; `index.js` builds Hyperswarm v4's API on top of it. Rules:
//! - no panic crosses the FFI boundary: every synchronous export runs under `catch_unwind`, every
//!   future is wrapped in `catch_unwind` and rejects its promise instead;
//! - engine events reach JS through one ThreadsafeFunction per swarm, built `weak` (it never keeps
//!   Node alive) and not error-first, fed by a task on swarmplex's shared runtime that loops on
//!   `next_event()`;
//! - errors carry their `ErrorKind` code as a `[code] ` prefix of the message, which the JS layer
//!   strips into `err.code`.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use swarmplex::{
    Connection, Discovery, Firewall, JoinOptions, KeyPair, PublicKey, Stream, Swarm, SwarmEvent, SwarmOptions,
    Testnet, Topic,
};
use tokio::sync::{mpsc, oneshot};

mod plex;

/// Largest chunk the reader hands to JS at once.
const READ_CHUNK: usize = 256 * 1024;
/// Bytes handed to the writer and not yet accepted by the transport before JS must wait for a
/// `drain` event (the core's rule, the same in every language).
const MAX_INFLIGHT: usize = swarmplex::stream::WRITE_HIGH_WATER;

/// Longest stream id or message-topic name, in UTF-8 bytes (the engine's limit).
#[napi]
pub const MAX_NAME: u32 = swarmplex::wire::MAX_NAME as u32;

/// The multiaddr of `transport` (`tcp`, `quic` or `websocket`) at `host` (an IP address or DNS
/// name) and `port`, as peer-exchange's `accept`/`connect` take them (the core's rule).
#[napi]
pub fn transport_addr(transport: String, host: String, port: u32) -> Result<String> {
    guard(|| {
        let port = u16::try_from(port).map_err(|_| invalid(format!("port {port} out of range")))?;
        let addr = swarmplex::exchange::transport_addr(&transport, &host, port).map_err(engine_err)?;
        Ok(addr.to_string())
    })
}

// ---- error and panic plumbing ---------------------------------------------------------------------

fn engine_err(e: swarmplex::Error) -> napi::Error {
    napi::Error::from_reason(format!("[{}] {}", e.kind().as_str(), e))
}

fn invalid(msg: impl std::fmt::Display) -> napi::Error {
    napi::Error::from_reason(format!("[invalid_input] {msg}"))
}

use swarmplex::error::panic_message;

/// Runs a synchronous export body; a panic becomes a JS error instead of unwinding into Node.
fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(napi::Error::from_reason(format!("[internal] panic in swarmplex: {}", panic_message(&*p)))),
    }
}

type Resolver<T> = Box<dyn FnOnce(Env) -> Result<T> + Send>;

/// Runs `fut` on swarmplex's shared runtime and returns a promise of its result. The promise's
/// deferred holds Node open while the operation is pending (as any pending native I/O should).
fn promise<'e, T, F>(env: &'e Env, fut: F) -> Result<Object<'e>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<T, Resolver<T>>()?;
    swarmplex::runtime::shared().spawn(async move {
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(Ok(v)) => deferred.resolve(Box::new(move |_| Ok(v))),
            Ok(Err(e)) => deferred.reject(e),
            Err(p) => deferred.reject(napi::Error::from_reason(format!(
                "[internal] panic in swarmplex: {}",
                panic_message(&*p)
            ))),
        }
    });
    Ok(promise)
}

fn key32(b: &[u8], what: &str) -> Result<[u8; 32]> {
    b.try_into().map_err(|_| invalid(format!("{what} must be 32 bytes, got {}", b.len())))
}

fn parse_multiaddr(s: &str) -> Result<swarmplex::Multiaddr> {
    s.parse().map_err(|e| invalid(format!("multiaddr {s:?}: {e}")))
}

fn buf(b: &[u8]) -> Buffer {
    Buffer::from(b.to_vec())
}

// ---- events -----------------------------------------------------------------------------------

/// One engine event as JS sees it. `kind` is one of: connection, disconnected, update, ban,
/// topic, firewall (a firewall question: answer with `firewallReply(id, reject)`), marker (a
/// flush marker: acknowledge with `ack(id)`), closed (the engine stopped).
#[napi(object, object_from_js = false)]
pub struct NativeEvent {
    pub kind: String,
    pub remote: Option<Buffer>,
    pub connection: Option<NativeConnection>,
    pub topics: Option<Vec<Buffer>>,
    pub client: Option<bool>,
    pub explicit: Option<bool>,
    pub topic: Option<Buffer>,
    pub connecting: Option<u32>,
    pub connections: Option<u32>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub id: Option<u32>,
    /// `stream`: the stream's name; `message`: the message topic.
    pub name: Option<String>,
    /// `stream`: whether it is a shared stream.
    pub shared: Option<bool>,
    /// `message`: the message bytes.
    pub data: Option<Buffer>,
    /// `reachability`: `unknown`, `public` or `private`.
    pub reachability: Option<String>,
    /// `reachability`: behind a symmetric NAT.
    pub symmetric: Option<bool>,
}

impl NativeEvent {
    fn new(kind: &str) -> Self {
        NativeEvent {
            kind: kind.to_string(),
            remote: None,
            connection: None,
            topics: None,
            client: None,
            explicit: None,
            topic: None,
            connecting: None,
            connections: None,
            code: None,
            message: None,
            id: None,
            name: None,
            shared: None,
            data: None,
            reachability: None,
            symmetric: None,
        }
    }
}

/// The core's `ReachabilityInfo`.
#[napi(object)]
pub struct NativeReachability {
    /// `unknown`, `public` or `private`.
    pub state: String,
    /// Behind a symmetric NAT (hole punching rarely works; sessions run relayed).
    pub symmetric: bool,
    /// The addresses we advertise as dialable.
    pub external: Vec<String>,
    /// Public keys of the relays we hold a reservation on.
    pub relays: Vec<Buffer>,
}

type EventFn = ThreadsafeFunction<NativeEvent, (), NativeEvent, Status, false, true>;

fn to_js_event(ev: SwarmEvent) -> Option<NativeEvent> {
    Some(match ev {
        SwarmEvent::Connection(conn) => {
            let info = conn.peer_info();
            let mut e = NativeEvent::new("connection");
            e.remote = Some(buf(conn.remote_public_key().as_bytes()));
            e.topics = Some(info.topics.iter().map(|t| buf(&t.0)).collect());
            e.client = Some(info.client);
            e.explicit = Some(info.explicit);
            e.connection = Some(NativeConnection::new(conn));
            e
        }
        SwarmEvent::Disconnected { remote, reason } => {
            let mut e = NativeEvent::new("disconnected");
            e.remote = Some(buf(remote.as_bytes()));
            e.code = Some(reason.kind().as_str().to_string());
            e.message = Some(reason.to_string());
            e
        }
        SwarmEvent::Update { connecting, connections } => {
            let mut e = NativeEvent::new("update");
            e.connecting = Some(connecting as u32);
            e.connections = Some(connections as u32);
            e
        }
        SwarmEvent::Ban { remote } => {
            let mut e = NativeEvent::new("ban");
            e.remote = Some(buf(remote.as_bytes()));
            e
        }
        SwarmEvent::PeerTopic { remote, topic } => {
            let mut e = NativeEvent::new("topic");
            e.remote = Some(buf(remote.as_bytes()));
            e.topic = Some(buf(&topic.0));
            e
        }
        // Named streams and topic messages (swarmplex extensions, used by p2plex/peersockets).
        SwarmEvent::Stream { remote, name, shared } => {
            let mut e = NativeEvent::new("stream");
            e.remote = Some(buf(remote.as_bytes()));
            e.name = Some(name);
            e.shared = Some(shared);
            e
        }
        SwarmEvent::Message { remote, topic, data } => {
            let mut e = NativeEvent::new("message");
            e.remote = Some(buf(remote.as_bytes()));
            e.name = Some(topic);
            e.data = Some(Buffer::from(data));
            e
        }
        SwarmEvent::Reachability(r) => {
            let mut e = NativeEvent::new("reachability");
            e.reachability = Some(r.as_str().to_string());
            e.symmetric = Some(r.is_symmetric());
            e
        }
    })
}

/// Pending requests that JS answers by id: firewall questions and flush markers.
#[derive(Default)]
struct Pending {
    next: AtomicU32,
    firewall: Mutex<HashMap<u32, oneshot::Sender<bool>>>,
    markers: Mutex<HashMap<u32, oneshot::Sender<()>>>,
}

impl Pending {
    fn id(&self) -> u32 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// The event pump: the only consumer of the swarm's events. A marker request is served only
/// when the event queue is empty (biased select), so a marker reaches JS after every event the
/// engine produced before the request — in particular every connection a flush waited for.
async fn pump(swarm: Swarm, tsfn: Arc<EventFn>, mut markers: mpsc::UnboundedReceiver<u32>) {
    loop {
        tokio::select! {
            biased;
            ev = swarm.next_event() => match ev {
                Some(ev) => {
                    if let Some(js) = to_js_event(ev) {
                        tsfn.call(js, ThreadsafeFunctionCallMode::NonBlocking);
                    }
                }
                None => break,
            },
            Some(id) = markers.recv() => {
                let mut e = NativeEvent::new("marker");
                e.id = Some(id);
                tsfn.call(e, ThreadsafeFunctionCallMode::NonBlocking);
            }
        }
    }
    // Engine stopped: answer any marker still queued, then say so.
    markers.close();
    while let Some(id) = markers.recv().await {
        let mut e = NativeEvent::new("marker");
        e.id = Some(id);
        tsfn.call(e, ThreadsafeFunctionCallMode::NonBlocking);
    }
    tsfn.call(NativeEvent::new("closed"), ThreadsafeFunctionCallMode::NonBlocking);
}

// ---- swarm ------------------------------------------------------------------------------------

/// Options as the JS layer passes them (already type-checked there).
#[napi(object)]
pub struct NativeOptions {
    /// 64-byte libsodium secret key (seed ‖ public key).
    pub secret_key: Option<Buffer>,
    pub seed: Option<Buffer>,
    pub bootstrap: Option<Vec<String>>,
    pub network: Option<String>,
    pub max_peers: Option<u32>,
    /// Whether JS has a firewall function (asked through `firewall` events).
    pub firewall: Option<bool>,
    pub mdns: Option<bool>,
    pub listen: Option<Vec<String>>,
    /// A peer-exchange node of this network id (`SwarmOptions::exchange`): no DHT, no mDNS, no
    /// listeners until `listenOn`, a bounded relay service, reservations on its peers.
    pub exchange: Option<String>,
}

#[napi]
pub struct NativeSwarm {
    swarm: Swarm,
    pending: Arc<Pending>,
    markers: mpsc::UnboundedSender<u32>,
    discoveries: Mutex<HashMap<Topic, Discovery>>,
}

fn topic_of(t: &[u8]) -> Result<Topic> {
    Ok(Topic(key32(t, "topic")?))
}

/// A remote's public key: the engine checks that it is 32 bytes encoding an Ed25519 point.
fn key_of(k: &[u8]) -> Result<PublicKey> {
    PublicKey::from_slice(k).map_err(engine_err)
}

#[napi]
impl NativeSwarm {
    /// Starts a swarm; `on_event` receives every event (see `NativeEvent`).
    #[napi(constructor)]
    pub fn new(opts: NativeOptions, on_event: Function<NativeEvent, ()>) -> Result<Self> {
        swarmplex::logging::stderr_from_env();
        guard(|| {
            let tsfn: Arc<EventFn> = Arc::new(
                on_event.build_threadsafe_function::<NativeEvent>().weak::<true>().callee_handled::<false>().build()?,
            );
            let pending = Arc::new(Pending::default());
            let key_pair = match &opts.secret_key {
                Some(sk) => Some(KeyPair::from_secret_key(sk).map_err(engine_err)?),
                None => None,
            };
            let firewall: Option<Firewall> = if opts.firewall == Some(true) {
                let tsfn = tsfn.clone();
                let pending = pending.clone();
                Some(Arc::new(move |key: PublicKey| {
                    let (tx, rx) = oneshot::channel();
                    let id = pending.id();
                    pending.firewall.lock().unwrap().insert(id, tx);
                    let mut e = NativeEvent::new("firewall");
                    e.id = Some(id);
                    e.remote = Some(buf(key.as_bytes()));
                    tsfn.call(e, ThreadsafeFunctionCallMode::NonBlocking);
                    // No answer (swarm gone, JS gone): reject.
                    Box::pin(async move { rx.await.unwrap_or(true) })
                }))
            } else {
                None
            };
            let base = match &opts.exchange {
                Some(id) => SwarmOptions::exchange(id),
                None => SwarmOptions {
                    bootstrap: opts.bootstrap.clone(),
                    network: opts.network.clone(),
                    mdns: opts.mdns.unwrap_or(false),
                    listen: opts.listen.clone(),
                    ..Default::default()
                },
            };
            let options = SwarmOptions {
                key_pair,
                seed: opts.seed.as_ref().map(|s| s.to_vec()),
                max_peers: opts.max_peers.map(|n| n as usize),
                firewall,
                ..base
            };
            let swarm = Swarm::spawn(options, swarmplex::runtime::shared().handle()).map_err(engine_err)?;
            let (markers, markers_rx) = mpsc::unbounded_channel();
            swarmplex::runtime::shared().spawn(pump(swarm.clone(), tsfn, markers_rx));
            Ok(NativeSwarm { swarm, pending, markers, discoveries: Mutex::default() })
        })
    }

    #[napi(getter)]
    pub fn public_key(&self) -> Result<Buffer> {
        guard(|| Ok(buf(self.swarm.public_key().as_bytes())))
    }

    #[napi(getter)]
    pub fn secret_key(&self) -> Result<Buffer> {
        guard(|| Ok(buf(&self.swarm.key_pair().secret_key())))
    }

    #[napi(getter)]
    pub fn connecting(&self) -> Result<u32> {
        guard(|| Ok(self.swarm.connecting() as u32))
    }

    #[napi]
    pub fn join(&self, topic: Buffer, server: bool, client: bool) -> Result<()> {
        guard(|| {
            let t = topic_of(&topic)?;
            let d = self.swarm.join(t, JoinOptions { server, client }).map_err(engine_err)?;
            self.discoveries.lock().unwrap().insert(t, d);
            Ok(())
        })
    }

    #[napi]
    pub fn refresh(&self, topic: Buffer, server: bool, client: bool) -> Result<()> {
        guard(|| {
            let t = topic_of(&topic)?;
            match self.discoveries.lock().unwrap().get(&t) {
                Some(d) => d.refresh(Some(JoinOptions { server, client })).map_err(engine_err),
                None => Ok(()),
            }
        })
    }

    /// Leaves `topic` at once; resolves once its announce is withdrawn from the DHT.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn leave<'e>(&self, env: &'e Env, topic: Buffer) -> Result<Object<'e>> {
        guard(|| {
            let t = topic_of(&topic)?;
            self.discoveries.lock().unwrap().remove(&t);
            let swarm = self.swarm.clone();
            promise(env, async move { swarm.leave(t).await.map_err(engine_err) })
        })
    }

    #[napi]
    pub fn join_peer(&self, key: Buffer) -> Result<()> {
        guard(|| {
            // The engine finds the peer by key (its self-announce) and reconnects forever.
            self.swarm.join_peer(key_of(&key)?).map_err(engine_err)
        })
    }

    #[napi]
    pub fn leave_peer(&self, key: Buffer) -> Result<()> {
        guard(|| {
            self.swarm.leave_peer(key_of(&key)?).map_err(engine_err)
        })
    }

    #[napi]
    pub fn ban(&self, key: Buffer) -> Result<()> {
        guard(|| self.swarm.ban(key_of(&key)?).map_err(engine_err))
    }

    /// Delivers topic messages sent to `topic` (as `message` events).
    #[napi]
    pub fn join_messages(&self, topic: String) -> Result<()> {
        guard(|| {
            self.swarm.join_messages(&topic);
            Ok(())
        })
    }

    /// Stops delivering topic messages for `topic`.
    #[napi]
    pub fn leave_messages(&self, topic: String) -> Result<()> {
        guard(|| {
            self.swarm.leave_messages(&topic);
            Ok(())
        })
    }

    #[napi]
    pub fn suspend(&self) -> Result<()> {
        guard(|| self.swarm.suspend().map_err(engine_err))
    }

    #[napi]
    pub fn resume(&self) -> Result<()> {
        guard(|| self.swarm.resume().map_err(engine_err))
    }

    /// Answers a `firewall` event: `reject` true refuses (and bans) the peer.
    #[napi]
    pub fn firewall_reply(&self, id: u32, reject: bool) -> Result<()> {
        guard(|| {
            if let Some(tx) = self.pending.firewall.lock().unwrap().remove(&id) {
                let _ = tx.send(reject);
            }
            Ok(())
        })
    }

    /// Acknowledges a `marker` event (JS has handled every event before it).
    #[napi]
    pub fn ack(&self, id: u32) -> Result<()> {
        guard(|| {
            if let Some(tx) = self.pending.markers.lock().unwrap().remove(&id) {
                let _ = tx.send(());
            }
            Ok(())
        })
    }

    /// Resolves once every joined topic (or just `topic`) finished its round, and every event
    /// produced until then — every connection it made — has been delivered to JS.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn flush<'e>(&self, env: &'e Env, topic: Option<Buffer>) -> Result<Object<'e>> {
        guard(|| {
            let discovery = match topic {
                Some(t) => match self.discoveries.lock().unwrap().get(&topic_of(&t)?) {
                    Some(d) => Some(Some(d.clone())),
                    None => Some(None), // not joined: nothing to wait for
                },
                None => None,
            };
            let swarm = self.swarm.clone();
            let pending = self.pending.clone();
            let markers = self.markers.clone();
            promise(env, async move {
                match discovery {
                    Some(Some(d)) => d.flushed().await,
                    Some(None) => Ok(()),
                    None => swarm.flush().await,
                }
                .map_err(engine_err)?;
                let (tx, rx) = oneshot::channel();
                let id = pending.id();
                pending.markers.lock().unwrap().insert(id, tx);
                if markers.send(id).is_err() {
                    pending.markers.lock().unwrap().remove(&id);
                    return Err(engine_err(swarmplex::Error::Closed("swarm destroyed".into())));
                }
                let _ = rx.await; // dropped only if the pump is gone: nothing left to wait for
                Ok(())
            })
        })
    }

    /// Announces this peer under its own key; resolves with the listen addresses.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn listen<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        guard(|| {
            let swarm = self.swarm.clone();
            promise(env, async move {
                let addrs = swarm.listen().await.map_err(engine_err)?;
                Ok(addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>())
            })
        })
    }

    /// Dials a multiaddr and resolves with the public key of whoever answered, once the
    /// session is up (its `connection` event is on its way to JS).
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn connect<'e>(&self, env: &'e Env, addr: String) -> Result<Object<'e>> {
        guard(|| {
            let addr = parse_multiaddr(&addr)?;
            let swarm = self.swarm.clone();
            promise(env, async move {
                let conn = swarm.connect(addr).await.map_err(engine_err)?;
                Ok(buf(conn.remote_public_key().as_bytes()))
            })
        })
    }

    /// Whether others can dial us, the addresses we advertise, and our relays.
    #[napi(ts_return_type = "Promise<NativeReachability>")]
    pub fn reachability<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        guard(|| {
            let swarm = self.swarm.clone();
            promise(env, async move {
                let r = swarm.reachability().await.map_err(engine_err)?;
                Ok(NativeReachability {
                    state: r.state.as_str().to_string(),
                    symmetric: r.state.is_symmetric(),
                    external: r.external.iter().map(|a| a.to_string()).collect(),
                    relays: r.relays.iter().map(|k| buf(k.as_bytes())).collect(),
                })
            })
        })
    }

    /// Listens on one more multiaddr; resolves with the bound address.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn listen_on<'e>(&self, env: &'e Env, addr: String) -> Result<Object<'e>> {
        guard(|| {
            let addr = parse_multiaddr(&addr)?;
            let swarm = self.swarm.clone();
            promise(env, async move { Ok(swarm.listen_on(addr).await.map_err(engine_err)?.to_string()) })
        })
    }

    /// Stops the listener bound at `addr` (an address `listenOn` resolved with).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop_listening<'e>(&self, env: &'e Env, addr: String) -> Result<Object<'e>> {
        guard(|| {
            let addr = parse_multiaddr(&addr)?;
            let swarm = self.swarm.clone();
            promise(env, async move { swarm.stop_listening(addr).await.map_err(engine_err) })
        })
    }

    /// Peer exchange: asks `via` (or a random connected peer) for another peer and connects to
    /// it; resolves with its public key.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn get_new_peer<'e>(&self, env: &'e Env, via: Option<Buffer>) -> Result<Object<'e>> {
        guard(|| {
            let via = via.map(|k| key_of(&k)).transpose()?;
            let swarm = self.swarm.clone();
            promise(env, async move {
                let conn = swarm.get_new_peer(via).await.map_err(engine_err)?;
                Ok(buf(conn.remote_public_key().as_bytes()))
            })
        })
    }

    /// Closes every connection (remotes see it at once) and stops the engine.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn destroy<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        guard(|| {
            let swarm = self.swarm.clone();
            promise(env, async move {
                swarm.destroy().await;
                Ok(())
            })
        })
    }
}

// ---- connections ------------------------------------------------------------------------------

/// What a connection's I/O tasks report to JS, in order, through the connection's own weak
/// ThreadsafeFunction: `data` (a chunk), `end` (the remote's clean end), `drain` (writes that
/// were refused room may go on), `ended` (our end was sent), `error` (`code`, `message`).
#[napi(object, object_from_js = false)]
pub struct ConnEvent {
    pub kind: String,
    pub data: Option<Buffer>,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl ConnEvent {
    fn new(kind: &str) -> Self {
        ConnEvent { kind: kind.to_string(), data: None, code: None, message: None }
    }

    fn error(e: &swarmplex::Error) -> Self {
        let mut ev = ConnEvent::new("error");
        ev.code = Some(e.kind().as_str().to_string());
        ev.message = Some(e.to_string());
        ev
    }
}

type ConnFn = ThreadsafeFunction<ConnEvent, (), ConnEvent, Status, false, true>;

enum WriteOp {
    Data(Buffer),
    End,
    /// Answered `true` once every write queued before it was flushed to the transport.
    Flush(oneshot::Sender<bool>),
}

/// One connection and one of its byte streams: the socket (`owns` true: destroying it closes the
/// connection) or a named/shared stream (`owns` false: destroying it resets only that stream).
///
/// Data path: `start(cb)` spawns a reader and a writer task. The reader reads one chunk per
/// credit, and JS grants one credit per `_read()` (`pull()`), so nothing is read from the
/// network while the readable side is full: backpressure reaches the transport. The writer
/// drains a queue fed by `write()`, which says whether there is room for more (at most
/// `MAX_INFLIGHT` bytes not yet accepted by the transport); when there was not, the writer sends
/// one `drain` once there is. No event per write: small writes cost no JS wake-up.
#[napi]
pub struct NativeConnection {
    conn: Connection,
    stream: Stream,
    credits: Arc<tokio::sync::Semaphore>,
    writes: Mutex<Option<mpsc::UnboundedSender<WriteOp>>>,
    flow: Arc<WriteFlow>,
    owns: bool,
}

/// Write accounting shared by `write()` (JS thread) and the writer task.
#[derive(Default)]
struct WriteFlow {
    inflight: AtomicUsize,
    waiting: AtomicBool,
}

impl NativeConnection {
    fn new(conn: Connection) -> Self {
        let stream = conn.socket();
        Self::with_stream(conn, stream, true)
    }

    fn with_stream(conn: Connection, stream: Stream, owns: bool) -> Self {
        NativeConnection {
            conn,
            stream,
            // One chunk of read-ahead: the next chunk is read while JS handles the last one.
            credits: Arc::new(tokio::sync::Semaphore::new(1)),
            writes: Mutex::new(None),
            flow: Arc::default(),
            owns,
        }
    }
}

async fn reader(stream: Stream, credits: Arc<tokio::sync::Semaphore>, tsfn: Arc<ConnFn>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match credits.acquire().await {
            Ok(p) => p.forget(),
            Err(_) => return, // destroyed
        }
        // A destroyed socket also closes its connection, which fails a pending read.
        match stream.read_into(&mut buf).await {
            Ok(0) => {
                tsfn.call(ConnEvent::new("end"), ThreadsafeFunctionCallMode::NonBlocking);
                return;
            }
            Ok(n) => {
                let mut ev = ConnEvent::new("data");
                ev.data = Some(Buffer::from(buf[..n].to_vec()));
                tsfn.call(ev, ThreadsafeFunctionCallMode::NonBlocking);
            }
            Err(e) => {
                tsfn.call(ConnEvent::error(&e), ThreadsafeFunctionCallMode::NonBlocking);
                return;
            }
        }
    }
}

async fn writer(stream: Stream, mut ops: mpsc::UnboundedReceiver<WriteOp>, flow: Arc<WriteFlow>, tsfn: Arc<ConnFn>) {
    while let Some(op) = ops.recv().await {
        match op {
            WriteOp::Data(data) => {
                let n = data.len();
                if let Err(e) = stream.write(&data).await {
                    tsfn.call(ConnEvent::error(&e), ThreadsafeFunctionCallMode::NonBlocking);
                    return;
                }
                drop(data);
                let now = flow.inflight.fetch_sub(n, Ordering::SeqCst) - n;
                if now < MAX_INFLIGHT && flow.waiting.swap(false, Ordering::SeqCst) {
                    tsfn.call(ConnEvent::new("drain"), ThreadsafeFunctionCallMode::NonBlocking);
                }
            }
            WriteOp::End => {
                let ended = stream.end().await;
                match &ended {
                    Ok(()) => tsfn.call(ConnEvent::new("ended"), ThreadsafeFunctionCallMode::NonBlocking),
                    Err(e) => tsfn.call(ConnEvent::error(e), ThreadsafeFunctionCallMode::NonBlocking),
                };
                // Nothing is written after the end; a flush queued after it reports how it went.
                while let Some(op) = ops.recv().await {
                    if let WriteOp::Flush(done) = op {
                        let _ = done.send(ended.is_ok());
                    }
                }
                return;
            }
            // Each write above returned only once the transport took and flushed it.
            WriteOp::Flush(done) => {
                let _ = done.send(true);
            }
        }
    }
}

#[napi]
impl NativeConnection {
    #[napi(getter)]
    pub fn remote_public_key(&self) -> Result<Buffer> {
        guard(|| Ok(buf(self.conn.remote_public_key().as_bytes())))
    }

    #[napi(getter)]
    pub fn handshake_hash(&self) -> Result<Buffer> {
        guard(|| Ok(buf(&self.conn.handshake_hash())))
    }

    /// `"quic"`, `"tcp"` or `"relay"` (a circuit through another peer).
    #[napi(getter)]
    pub fn transport(&self) -> Result<String> {
        guard(|| Ok(self.conn.transport().to_string()))
    }

    /// The relay's public key when the connection runs through one, else null.
    #[napi(getter)]
    pub fn relay(&self) -> Result<Option<Buffer>> {
        guard(|| Ok(self.conn.path().relay.map(|k| buf(k.as_bytes()))))
    }

    /// The remote multiaddr of the transport connection (a `/p2p-circuit` one when relayed).
    #[napi(getter)]
    pub fn remote_address(&self) -> Result<String> {
        guard(|| Ok(self.conn.remote_address().to_string()))
    }

    /// Whether we dialed the transport connection.
    #[napi(getter)]
    pub fn is_initiator(&self) -> Result<bool> {
        guard(|| Ok(self.conn.is_initiator()))
    }

    #[napi(getter)]
    pub fn closed(&self) -> Result<bool> {
        guard(|| Ok(self.conn.is_closed()))
    }

    /// Starts the I/O tasks; `on_event` receives `ConnEvent`s. Call once.
    #[napi]
    pub fn start(&self, on_event: Function<ConnEvent, ()>) -> Result<()> {
        guard(|| {
            let mut writes = self.writes.lock().unwrap();
            if writes.is_some() {
                return Err(invalid("connection already started"));
            }
            let tsfn: Arc<ConnFn> = Arc::new(
                on_event.build_threadsafe_function::<ConnEvent>().weak::<true>().callee_handled::<false>().build()?,
            );
            let (tx, rx) = mpsc::unbounded_channel();
            *writes = Some(tx);
            let rt = swarmplex::runtime::shared();
            rt.spawn(reader(self.stream.clone(), self.credits.clone(), tsfn.clone()));
            rt.spawn(writer(self.stream.clone(), rx, self.flow.clone(), tsfn));
            Ok(())
        })
    }

    /// Lets the reader deliver one more chunk (JS calls it from `_read()`).
    #[napi]
    pub fn pull(&self) -> Result<()> {
        guard(|| {
            self.credits.add_permits(1);
            Ok(())
        })
    }

    /// Queues `data`. Returns whether there is room for more now; if not, a `drain` event
    /// follows once there is.
    #[napi]
    pub fn write(&self, data: Buffer) -> Result<bool> {
        guard(|| {
            let n = data.len();
            let flow = &self.flow;
            // Count before queueing: the writer subtracts as soon as the transport took it.
            let now = flow.inflight.fetch_add(n, Ordering::SeqCst) + n;
            let sent = match &*self.writes.lock().unwrap() {
                Some(tx) => tx.send(WriteOp::Data(data)).is_ok(),
                None => return Err(invalid("connection not started")),
            };
            if !sent {
                flow.inflight.fetch_sub(n, Ordering::SeqCst);
                return Err(engine_err(swarmplex::Error::Closed("socket closed".into())));
            }
            if now < MAX_INFLIGHT {
                return Ok(true);
            }
            // Full: ask for a drain, then re-check (the writer may have caught up meanwhile).
            // Exactly one of this re-check and the writer's swap clears `waiting`.
            flow.waiting.store(true, Ordering::SeqCst);
            if flow.inflight.load(Ordering::SeqCst) < MAX_INFLIGHT && flow.waiting.swap(false, Ordering::SeqCst) {
                return Ok(true);
            }
            Ok(false)
        })
    }

    /// Queues our clean end (half-close); an `ended` event follows.
    #[napi]
    pub fn end(&self) -> Result<()> {
        guard(|| match &*self.writes.lock().unwrap() {
            Some(tx) => tx.send(WriteOp::End).map_err(|_| engine_err(swarmplex::Error::Closed("socket closed".into()))),
            None => Err(invalid("connection not started")),
        })
    }

    /// Resolves `true` once every byte written before this call was handed to the transport
    /// and flushed (the transport's own delivery is not awaited), `false` if the stream was
    /// destroyed or failed first.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn flush<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        guard(|| {
            let (tx, rx) = oneshot::channel();
            let queued = match &*self.writes.lock().unwrap() {
                Some(w) => w.send(WriteOp::Flush(tx)).is_ok(),
                None => false,
            };
            promise(env, async move { Ok(queued && rx.await.unwrap_or(false)) })
        })
    }

    /// Resets the stream; for the socket also closes the connection (the remote sees it at once).
    #[napi]
    pub fn destroy(&self) -> Result<()> {
        guard(|| {
            self.credits.close();
            self.writes.lock().unwrap().take();
            let stream = self.stream.clone();
            let conn = self.owns.then(|| self.conn.clone());
            swarmplex::runtime::shared().spawn(async move {
                let _ = tokio::time::timeout(Duration::from_millis(200), stream.reset()).await;
                if let Some(conn) = conn {
                    conn.close();
                }
            });
            Ok(())
        })
    }

    /// The stream's name (`""` for the socket).
    #[napi(getter)]
    pub fn name(&self) -> Result<String> {
        guard(|| Ok(self.stream.name().to_string()))
    }

    /// Opens a named stream on this connection (the remote takes it with `receiveStream`).
    #[napi(ts_return_type = "Promise<NativeConnection>")]
    pub fn create_stream<'e>(&self, env: &'e Env, name: String) -> Result<Object<'e>> {
        guard(|| {
            let conn = self.conn.clone();
            promise(env, async move {
                let s = conn.create_stream(&name).await.map_err(engine_err)?;
                Ok(NativeConnection::with_stream(conn, s, false))
            })
        })
    }

    /// Waits for the remote's `createStream(name)` (or takes one that already arrived).
    #[napi(ts_return_type = "Promise<NativeConnection>")]
    pub fn receive_stream<'e>(&self, env: &'e Env, name: String) -> Result<Object<'e>> {
        guard(|| {
            let conn = self.conn.clone();
            promise(env, async move {
                let s = conn.receive_stream(&name).await.map_err(engine_err)?;
                Ok(NativeConnection::with_stream(conn, s, false))
            })
        })
    }

    /// Takes the stream the remote opened under `name` that waits unclaimed (announced by a
    /// `stream` event), or `null` if a `receiveStream`/`createSharedStream` already took it.
    #[napi]
    pub fn take_parked_stream(&self, name: String, shared: bool) -> Result<Option<NativeConnection>> {
        guard(|| {
            let s = self.conn.take_parked_stream(&name, shared);
            Ok(s.map(|s| NativeConnection::with_stream(self.conn.clone(), s, false)))
        })
    }

    /// The shared stream `name`: both sides ask for it and get its two ends.
    #[napi(ts_return_type = "Promise<NativeConnection>")]
    pub fn create_shared_stream<'e>(&self, env: &'e Env, name: String) -> Result<Object<'e>> {
        guard(|| {
            let conn = self.conn.clone();
            promise(env, async move {
                let s = conn.create_shared_stream(&name).await.map_err(engine_err)?;
                Ok(NativeConnection::with_stream(conn, s, false))
            })
        })
    }

    /// Sends one topic message (delivered only if the remote joined `topic`).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn send_message<'e>(&self, env: &'e Env, topic: String, data: Buffer) -> Result<Object<'e>> {
        guard(|| {
            let conn = self.conn.clone();
            let data = data.to_vec();
            promise(env, async move { conn.send_message(&topic, &data).await.map_err(engine_err) })
        })
    }

    /// Closes the whole connection (every stream on it).
    #[napi]
    pub fn close(&self) -> Result<()> {
        guard(|| {
            self.conn.close();
            Ok(())
        })
    }

    /// Closes the connection once the remote closes it or after `ms` milliseconds, whichever
    /// comes first: used after both directions ended cleanly, so the last bytes (the end
    /// marker) are not cut off by a transport close racing them.
    #[napi]
    pub fn close_after(&self, ms: u32) -> Result<()> {
        guard(|| {
            self.credits.close();
            self.writes.lock().unwrap().take();
            if !self.owns {
                return Ok(()); // a stream that ended both ways: nothing to close
            }
            let conn = self.conn.clone();
            swarmplex::runtime::shared().spawn(async move {
                let _ = tokio::time::timeout(Duration::from_millis(ms as u64), conn.closed()).await;
                conn.close();
            });
            Ok(())
        })
    }
}

// ---- testnet ----------------------------------------------------------------------------------

/// DHT bootstrap nodes on 127.0.0.1.
#[napi]
pub struct NativeTestnet {
    inner: Arc<Mutex<Option<Testnet>>>,
    bootstrap: Vec<String>,
}

#[napi]
impl NativeTestnet {
    #[napi(ts_return_type = "Promise<NativeTestnet>")]
    pub fn create<'e>(env: &'e Env, size: u32) -> Result<Object<'e>> {
        guard(|| {
            if size == 0 || size > 64 {
                return Err(invalid("testnet size must be 1..=64"));
            }
            promise(env, async move {
                swarmplex::logging::stderr_from_env();
                let t = Testnet::new(size as usize).await.map_err(engine_err)?;
                Ok(NativeTestnet { bootstrap: t.bootstrap(), inner: Arc::new(Mutex::new(Some(t))) })
            })
        })
    }

    #[napi(getter)]
    pub fn bootstrap(&self) -> Result<Vec<String>> {
        guard(|| Ok(self.bootstrap.clone()))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn destroy<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        guard(|| {
            let t = self.inner.lock().unwrap().take();
            promise(env, async move {
                if let Some(t) = t {
                    t.destroy().await;
                }
                Ok(())
            })
        })
    }
}

/// The key pair libsodium's `crypto_sign_seed_keypair` derives from a 32-byte seed:
/// `[publicKey, secretKey]`.
#[napi]
pub fn key_pair_from_seed(seed: Buffer) -> Result<Vec<Buffer>> {
    guard(|| {
        let kp = KeyPair::from_seed(&seed).map_err(engine_err)?;
        Ok(vec![buf(kp.public_key().as_bytes()), buf(&kp.secret_key())])
    })
}

/// A fresh random key pair: `[publicKey, secretKey]`.
#[napi]
pub fn random_key_pair() -> Result<Vec<Buffer>> {
    guard(|| {
        let kp = KeyPair::generate();
        Ok(vec![buf(kp.public_key().as_bytes()), buf(&kp.secret_key())])
    })
}

/// Test hook: proves a Rust panic in an export becomes a JS error (never an abort).
#[napi]
pub fn panic_for_test() -> Result<()> {
    guard(|| panic!("deliberate test panic"))
}
