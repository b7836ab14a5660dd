//! p2plex: peers by public key, any number of named streams to each, and connections that close
//! by themselves once their last stream ended (the API of the `p2plex` npm module, on our
//! one-connection-per-peer sessions).
//!
//! ```no_run
//! use swarmplex::plex::{Plex, PlexEvent};
//! use swarmplex::{SwarmOptions, Testnet};
//!
//! # async fn demo() -> swarmplex::Result<()> {
//! let testnet = Testnet::new(3).await?;
//! let a = Plex::new(SwarmOptions::local(testnet.bootstrap())).await?;
//! let b = Plex::new(SwarmOptions::local(testnet.bootstrap())).await?;
//! let peer = b.find_by_public_key(a.public_key(), None).await?;
//! let stream = peer.create_stream("example").await?;
//! stream.write(b"Hello World!").await?;
//! stream.end().await?;
//! while let Some(event) = a.next_event().await {
//!     if let PlexEvent::Connection(peer) = event {
//!         let s = peer.receive_stream("example").await?;
//!         assert_eq!(s.read_to_end().await?, b"Hello World!");
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Rules
//! - **One [`Peer`] per connection.** Every new connection to a key gives a new `Peer`
//!   ([`PlexEvent::Connection`]); the plex knows the current one of each key.
//! - **Auto-close.** A stream counts until it is finished: both directions ended cleanly, a
//!   read or write failed, it was reset, or every handle to it was dropped. When the last
//!   stream of a connection finished, this side stops reconnecting to the key
//!   ([`Swarm::leave_peer`]) and ends the connection's socket; once the remote ended its socket
//!   too, the connection closes. A connection that never carried a stream is not auto-closed
//!   (it closes when the remote ends its socket while no stream is open here).
//! - **Reopen.** Opening a stream on a `Peer` whose connection is gone or closing waits for the
//!   old connection to end, finds the key again (up to [`RECONNECT_TIMEOUT`]) and opens the
//!   stream on the new connection, where it counts toward that connection's auto-close.
//! - **Stream notices.** A stream the remote opened that no `receive_stream` claimed is
//!   announced by [`PlexEvent::Stream`] and [`Peer::next_stream`]; it stays claimable by
//!   `receive_stream` until someone takes it ([`Peer::take_stream`]), so a notice may find its
//!   stream already taken.
//! - The socket of a plex connection carries no data: the plex reads and discards it.

mod peer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::event::SwarmEvent;
use crate::keys::{KeyPair, PublicKey};
use crate::options::{JoinOptions, SwarmOptions};
use crate::swarm::Swarm;
use crate::topic::Topic;

pub use peer::Peer;

/// How long reopening a stream on a disconnected [`Peer`] looks for the remote.
pub const RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a [`Plex`] reports, pulled with [`Plex::next_event`].
#[derive(Debug, Clone)]
pub enum PlexEvent {
    /// A new connection, as a new [`Peer`].
    Connection(Peer),
    /// The remote opened a stream nobody claimed; take it with [`Peer::take_stream`] (it may
    /// have been claimed meanwhile: then that returns `None`).
    Stream { peer: Peer, id: String, shared: bool },
    /// The peer was found under another topic too.
    Topic { peer: Peer, topic: Topic },
    /// The peer's connection ended.
    Disconnected(Peer),
}

/// A p2plex instance: a [`Swarm`] plus the per-connection [`Peer`]s and their auto-close.
/// Cheap to clone; clones share the instance.
#[derive(Clone)]
pub struct Plex {
    inner: Arc<Shared>,
}

pub(crate) struct Shared {
    swarm: Swarm,
    state: Mutex<State>,
    /// Bumped whenever a peer connects or disconnects, and on destroy (for `find_*` waiters).
    changed: watch::Sender<u64>,
    events_tx: mpsc::UnboundedSender<PlexEvent>,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<PlexEvent>>,
    runtime: tokio::runtime::Handle,
    next_peer_id: std::sync::atomic::AtomicU64,
    /// Dropped with the plex: stops the task draining the swarm's own queue.
    _drain_stop: oneshot::Sender<()>,
}

#[derive(Default)]
struct State {
    /// The current peer of each key.
    by_key: HashMap<PublicKey, Peer>,
    destroyed: bool,
}

impl Plex {
    /// Starts a swarm with `opts` and a plex over it on the current runtime, announcing our key
    /// so others can find us ([`Plex::find_by_public_key`]). The swarm's own events are
    /// drained (read the plex's events instead).
    pub async fn new(opts: SwarmOptions) -> Result<Plex> {
        let runtime = tokio::runtime::Handle::current();
        let swarm = Swarm::spawn(opts, &runtime)?;
        Ok(Plex::build(swarm, true, &runtime, true))
    }

    /// A plex over `swarm`, which keeps reporting its own events to whoever reads them. It sees
    /// connections made from now on. `listen_self` announces our key (p2plex's `listenSelf`).
    /// Its tasks run on `runtime`.
    pub fn over(swarm: Swarm, listen_self: bool, runtime: &tokio::runtime::Handle) -> Plex {
        Plex::build(swarm, listen_self, runtime, false)
    }

    fn build(swarm: Swarm, listen_self: bool, runtime: &tokio::runtime::Handle, drain: bool) -> Plex {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (drain_stop, stopped) = oneshot::channel::<()>();
        let inner = Arc::new(Shared {
            swarm: swarm.clone(),
            state: Mutex::default(),
            changed: watch::channel(0).0,
            events_tx,
            events: tokio::sync::Mutex::new(events),
            runtime: runtime.clone(),
            next_peer_id: std::sync::atomic::AtomicU64::new(1),
            _drain_stop: drain_stop,
        });
        let weak = Arc::downgrade(&inner);
        swarm.tap(Box::new(move |event| match weak.upgrade() {
            Some(shared) => {
                shared.on_swarm_event(event);
                true
            }
            None => false,
        }));
        if drain {
            // Nobody else reads this swarm's own queue; stop with the plex.
            let swarm = swarm.clone();
            runtime.spawn(async move {
                tokio::select! {
                    _ = stopped => {}
                    _ = async { while swarm.next_event().await.is_some() {} } => {}
                }
            });
        }
        if listen_self {
            runtime.spawn(async move {
                let _ = swarm.listen().await;
            });
        }
        Plex { inner }
    }

    /// The swarm under this plex.
    pub fn swarm(&self) -> &Swarm {
        &self.inner.swarm
    }

    /// Our key pair.
    pub fn key_pair(&self) -> &KeyPair {
        self.inner.swarm.key_pair()
    }

    /// Our public key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.swarm.public_key()
    }

    /// The current peer of `key` (the one of its latest connection), whatever its state.
    pub fn peer(&self, key: &PublicKey) -> Option<Peer> {
        self.inner.current(key)
    }

    /// The peers whose connection is open.
    pub fn peers(&self) -> Vec<Peer> {
        self.inner.lock().by_key.values().filter(|p| p.is_live()).cloned().collect()
    }

    /// The next event, or `None` once the plex is destroyed.
    pub async fn next_event(&self) -> Option<PlexEvent> {
        let mut events = self.inner.events.lock().await;
        let mut changed = self.inner.changed.subscribe();
        loop {
            if let Ok(event) = events.try_recv() {
                return Some(event);
            }
            if self.inner.lock().destroyed {
                return None;
            }
            tokio::select! {
                e = events.recv() => return e,
                _ = changed.changed() => {}
            }
        }
    }

    /// The next new connection's [`Peer`], skipping other events (for apps that only wait
    /// for peers).
    pub async fn next_peer(&self) -> Option<Peer> {
        loop {
            if let PlexEvent::Connection(peer) = self.next_event().await? {
                return Some(peer);
            }
        }
    }

    /// Finds the peer with `key` (by its key announce, [`Swarm::join_peer`]) and resolves with
    /// its [`Peer`] once connected. Fails with `Timeout` after `timeout`; dropping the future
    /// cancels the search. Either way, a search that did not finish stops reconnecting to the key.
    pub async fn find_by_public_key(&self, key: PublicKey, timeout: Option<Duration>) -> Result<Peer> {
        if key == self.public_key() {
            return Err(Error::InvalidInput("cannot find yourself".into()));
        }
        self.inner.check_open()?;
        if let Some(peer) = self.inner.connected(&key) {
            return Ok(peer);
        }
        self.inner.swarm.join_peer(key)?;
        let swarm = self.inner.swarm.clone();
        let give_up = OnDrop(Some(move || {
            let _ = swarm.leave_peer(key);
        }));
        let peer = self.inner.wait_peer(key, timeout).await?;
        give_up.disarm();
        Ok(peer)
    }

    /// Resolves with the peer `key` once connected to it, without searching for it (for a
    /// caller that looks it up another way). Fails with `Timeout` after `timeout`.
    pub async fn wait_for_peer(&self, key: PublicKey, timeout: Option<Duration>) -> Result<Peer> {
        self.inner.check_open()?;
        self.inner.wait_peer(key, timeout).await
    }

    /// Joins `topic` with `opts` (p2plex's `announce` is `server`, `lookup` is `client`) and
    /// resolves with the peer `key` once connected to it. Fails with `Timeout` after `timeout`;
    /// dropping the future cancels. A search that did not finish leaves the topic again unless
    /// it was joined before.
    pub async fn find_by_topic_and_public_key(
        &self,
        topic: Topic,
        key: PublicKey,
        opts: JoinOptions,
        timeout: Option<Duration>,
    ) -> Result<Peer> {
        self.inner.check_open()?;
        if let Some(peer) = self.inner.connected(&key) {
            return Ok(peer);
        }
        let was_joined = self.inner.swarm.status(topic).await?.is_some();
        self.inner.swarm.join(topic, opts)?;
        let swarm = self.inner.swarm.clone();
        let runtime = self.inner.runtime.clone();
        let give_up = OnDrop(Some(move || {
            if !was_joined && !swarm.is_destroyed() {
                runtime.spawn(async move { swarm.leave(topic).await });
            }
        }));
        let found = self.inner.wait_peer(key, timeout).await;
        give_up.disarm();
        if found.is_err() && !was_joined && !self.inner.swarm.is_destroyed() {
            let _ = self.inner.swarm.leave(topic).await; // left before the caller hears of it
        }
        found
    }

    /// Joins `topic` and resolves once its first full round (announce and/or lookup) is done.
    pub async fn join(&self, topic: Topic, opts: JoinOptions) -> Result<()> {
        self.inner.check_open()?;
        self.inner.swarm.join(topic, opts)?.flushed().await
    }

    /// Leaves `topic`: stops announcing and looking it up, and withdraws our announce.
    pub async fn leave(&self, topic: Topic) -> Result<()> {
        self.inner.swarm.leave(topic).await
    }

    /// Closes every connection and stops the swarm; pending finds fail with `Closed`.
    pub async fn destroy(&self) {
        let first = !std::mem::replace(&mut self.inner.lock().destroyed, true);
        if !first {
            self.inner.swarm.destroy().await;
            return;
        }
        self.inner.bump();
        self.inner.swarm.destroy().await;
        let peers: Vec<Peer> = self.inner.lock().by_key.values().cloned().collect();
        for peer in peers {
            peer.on_disconnection();
        }
    }

    /// Whether [`Plex::destroy`] was called.
    pub fn is_destroyed(&self) -> bool {
        self.inner.lock().destroyed
    }
}

impl std::fmt::Debug for Plex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plex").field("public_key", &self.public_key()).finish()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_open(&self) -> Result<()> {
        if self.lock().destroyed {
            return Err(Error::Closed("plex destroyed".into()));
        }
        Ok(())
    }

    fn emit(&self, event: PlexEvent) {
        let _ = self.events_tx.send(event);
    }

    /// The current peer of `key` if new streams can go over it.
    fn connected(&self, key: &PublicKey) -> Option<Peer> {
        self.lock().by_key.get(key).filter(|p| p.is_connected()).cloned()
    }

    /// The current peer of `key`, whatever its state.
    pub(crate) fn current(&self, key: &PublicKey) -> Option<Peer> {
        self.lock().by_key.get(key).cloned()
    }

    fn is_destroyed(&self) -> bool {
        self.lock().destroyed
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Waits until `key` has a connected peer (or the plex is destroyed, or `timeout` passed).
    async fn wait_peer(&self, key: PublicKey, timeout: Option<Duration>) -> Result<Peer> {
        let mut changed = self.changed.subscribe();
        let wait = async {
            loop {
                changed.borrow_and_update();
                if self.is_destroyed() {
                    return Err(Error::Closed("plex destroyed".into()));
                }
                if let Some(peer) = self.connected(&key) {
                    return Ok(peer);
                }
                if changed.changed().await.is_err() {
                    return Err(Error::Closed("plex destroyed".into()));
                }
            }
        };
        match timeout {
            None => wait.await,
            Some(t) => tokio::time::timeout(t, wait)
                .await
                .unwrap_or_else(|_| Err(Error::Timeout(format!("peer not found within {} ms", t.as_millis())))),
        }
    }

    /// Runs on the engine's task (a tap): no blocking.
    fn on_swarm_event(self: &Arc<Self>, event: &SwarmEvent) {
        match event {
            SwarmEvent::Connection(conn) => {
                if self.is_destroyed() {
                    return;
                }
                let id = self.next_peer_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let peer = Peer::new(Arc::downgrade(self), conn.clone(), id);
                let old = self.lock().by_key.insert(peer.public_key(), peer.clone());
                if let Some(old) = old {
                    old.on_disconnection(); // replaced (the old session has ended)
                }
                peer.start(&self.runtime);
                self.bump();
                self.emit(PlexEvent::Connection(peer));
            }
            SwarmEvent::Stream { remote, name, shared } => {
                if let Some(peer) = self.current(remote).filter(|p| p.is_live()) {
                    peer.on_stream(name, *shared);
                    self.emit(PlexEvent::Stream { peer, id: name.clone(), shared: *shared });
                }
            }
            SwarmEvent::PeerTopic { remote, topic } => {
                if let Some(peer) = self.current(remote).filter(|p| p.is_live()) {
                    if peer.add_topic(*topic) {
                        self.emit(PlexEvent::Topic { peer, topic: *topic });
                    }
                }
            }
            // The session ended before the engine said so: the app sees the peer gone with it.
            SwarmEvent::Disconnected { remote, .. } => {
                if let Some(peer) = self.current(remote).filter(|p| p.connection().is_closed()) {
                    peer.on_disconnection();
                }
            }
            _ => {}
        }
    }
}

/// Runs its closure when dropped, unless disarmed.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnDrop<F> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// A weak handle to a plex, held by its peers.
pub(crate) type PlexRef = Weak<Shared>;

