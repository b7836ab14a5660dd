//! p2plex ([`swarmplex::plex`]) and peersockets ([`swarmplex::peersockets`]) for Kotlin and Swift.
//!
//! Thin translations: auto-close, reopen, stream claims and notices, finds with timeouts, topic
//! delivery all live in the core; these objects convert types and errors. Streams are the
//! binding's [`Stream`] objects (as `Connection.createStream` returns); freeing a stream's last
//! handle counts as finishing it for auto-close, as dropping it does in the core.
//!
//! Cancellation follows the rest of the binding: a cancelled Kotlin coroutine drops its call
//! (the core's future is dropped, so a find stops searching); callers that cannot drop a call
//! (Swift) end pending waits natively with [`Plex::cancel_finds`], [`Peer::cancel_waits`],
//! [`PlexEventSubscription::cancel`] and [`TopicHandle::cancel_reads`].
//! Closing is `shutdown()` (`Plex`, `TopicHandle`): uniffi's Kotlin objects already have `close()`.

use std::sync::Arc;
use std::time::Duration;

use swarmplex::runtime::shared;
use tokio::sync::watch;

use crate::{JoinOptions, KeyPair, Live, Pending, Res, Stream, Swarm, SwarmOptions, key, on_core, topic};

fn timeout(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

/// A p2plex instance: peers by public key, named streams to each, connections that close by
/// themselves once their last stream finished. `shutdown()` destroys it; `close()` (Kotlin)
/// frees the native handle.
#[derive(uniffi::Object)]
pub struct Plex {
    inner: swarmplex::plex::Plex,
    finds: Pending,
    _live: Live,
}

impl Plex {
    fn wrap(inner: swarmplex::plex::Plex) -> Arc<Self> {
        Arc::new(Plex { inner, finds: Pending::new(), _live: Live::new() })
    }

    /// `find` on the core runtime, as a [`Peer`], ended by `cancelFinds()`.
    async fn find<F>(&self, find: F) -> Res<Arc<Peer>>
    where
        F: std::future::Future<Output = swarmplex::Result<swarmplex::plex::Peer>> + Send + 'static,
    {
        on_core(self.finds.guard(async move { Ok(Peer::wrap(find.await?)) })).await
    }
}

#[uniffi::export]
impl Plex {
    /// Starts a swarm with `options` and a plex over it, announcing our key so that others find
    /// us with `findByPublicKey`. The swarm's own events are drained: read the plex's.
    #[uniffi::constructor]
    pub async fn create(options: SwarmOptions) -> Res<Arc<Self>> {
        let opts = options.into_core()?;
        on_core(async move {
            swarmplex::logging::stderr_from_env();
            Ok(Plex::wrap(swarmplex::plex::Plex::new(opts).await?))
        })
        .await
    }

    /// A plex over `swarm`, which keeps reporting its own events to whoever reads them (read
    /// them, or they queue up). `listenSelf` announces our key (p2plex's `listenSelf`).
    #[uniffi::constructor]
    pub fn over(swarm: Arc<Swarm>, listen_self: bool) -> Res<Arc<Self>> {
        Ok(Plex::wrap(swarmplex::plex::Plex::over(swarm.inner.clone(), listen_self, shared().handle())))
    }

    /// Our 32-byte public key.
    pub fn public_key(&self) -> Res<Vec<u8>> {
        Ok(self.inner.public_key().as_bytes().to_vec())
    }

    /// Our key pair (the secret key included).
    pub fn key_pair(&self) -> Res<KeyPair> {
        Ok(self.inner.key_pair().into())
    }

    /// A handle on the swarm under this plex (its `shutdown()` stops the plex's swarm too).
    pub fn swarm(&self) -> Res<Arc<Swarm>> {
        Ok(Arc::new(Swarm { inner: self.inner.swarm().clone(), _live: Live::new() }))
    }

    /// The peers whose connection is open.
    pub fn peers(&self) -> Res<Vec<Arc<Peer>>> {
        Ok(self.inner.peers().into_iter().map(Peer::wrap).collect())
    }

    /// The current peer of this 32-byte key (its latest connection's, whatever its state).
    pub fn peer(&self, public_key: Vec<u8>) -> Res<Option<Arc<Peer>>> {
        Ok(self.inner.peer(&key(&public_key)?).map(Peer::wrap))
    }

    /// Finds the peer with this key (by its key announce) and returns its `Peer` once
    /// connected. `Timeout` after `timeoutMs`; `InvalidInput` for our own key; `Closed` if the
    /// plex is shut down meanwhile, or `Closed("cancelled")` after `cancelFinds()`. A search that
    /// did not finish stops reconnecting to the key.
    #[uniffi::method(default(timeout_ms = None))]
    pub async fn find_by_public_key(&self, public_key: Vec<u8>, timeout_ms: Option<u64>) -> Res<Arc<Peer>> {
        let (k, plex) = (key(&public_key)?, self.inner.clone());
        self.find(async move { plex.find_by_public_key(k, timeout(timeout_ms)).await }).await
    }

    /// Joins `topic` with `options` (p2plex's `announce` is `server`, `lookup` is `client`) and
    /// returns the peer with this key once connected. Errors and cancellation as
    /// `findByPublicKey`; a search that did not finish leaves the topic unless it was joined.
    #[uniffi::method(default(timeout_ms = None))]
    pub async fn find_by_topic_and_public_key(
        &self,
        topic: Vec<u8>,
        public_key: Vec<u8>,
        options: JoinOptions,
        timeout_ms: Option<u64>,
    ) -> Res<Arc<Peer>> {
        let (t, k, plex) = (self::topic(&topic)?, key(&public_key)?, self.inner.clone());
        self.find(async move { plex.find_by_topic_and_public_key(t, k, options.into(), timeout(timeout_ms)).await })
            .await
    }

    /// Returns the peer with this key once connected, without searching for it. Errors and
    /// cancellation as `findByPublicKey`.
    #[uniffi::method(default(timeout_ms = None))]
    pub async fn wait_for_peer(&self, public_key: Vec<u8>, timeout_ms: Option<u64>) -> Res<Arc<Peer>> {
        let (k, plex) = (key(&public_key)?, self.inner.clone());
        self.find(async move { plex.wait_for_peer(k, timeout(timeout_ms)).await }).await
    }

    /// Ends every pending `findByPublicKey`, `findByTopicAndPublicKey` and `waitForPeer` made
    /// through this handle with `Closed("cancelled")` (their searches stop); later calls work.
    pub fn cancel_finds(&self) -> Res<()> {
        self.finds.cancel();
        Ok(())
    }

    /// Joins `topic` and returns once its first full round (announce and/or lookup) is done.
    pub async fn join(&self, topic: Vec<u8>, options: JoinOptions) -> Res<()> {
        let (t, plex) = (self::topic(&topic)?, self.inner.clone());
        on_core(async move { Ok(plex.join(t, options.into()).await?) }).await
    }

    /// Leaves `topic`: stops announcing and looking it up, and withdraws our announce.
    pub async fn leave(&self, topic: Vec<u8>) -> Res<()> {
        let (t, plex) = (self::topic(&topic)?, self.inner.clone());
        on_core(async move { Ok(plex.leave(t).await?) }).await
    }

    /// The next event, or `None` once the plex is shut down. Cancelling the call loses nothing.
    pub async fn next_event(&self) -> Res<Option<PlexEvent>> {
        // A channel receive under a tokio mutex (no runtime needed): polled in place, cancel-safe.
        Ok(self.inner.next_event().await.map(PlexEvent::from))
    }

    /// Events through a handle whose `cancel()` ends a pending `next()` at once (for callers
    /// that cannot drop a pending call). One event queue per plex: one consumer at a time.
    pub fn subscribe(&self) -> Res<Arc<PlexEventSubscription>> {
        let cancel = watch::channel(false).0;
        Ok(Arc::new(PlexEventSubscription { plex: self.inner.clone(), cancel, _live: Live::new() }))
    }

    /// Whether `shutdown()` was called.
    pub fn is_destroyed(&self) -> Res<bool> {
        Ok(self.inner.is_destroyed())
    }

    /// Closes every connection and stops the swarm; pending finds fail with `Closed` (the core's
    /// `destroy`; `close()` frees the handle in Kotlin).
    pub async fn shutdown(&self) -> Res<()> {
        let plex = self.inner.clone();
        let _ = on_core(async move {
            plex.destroy().await;
            Ok(())
        })
        .await;
        Ok(())
    }
}

/// What a plex reports (see `Plex.nextEvent`).
#[derive(uniffi::Enum)]
pub enum PlexEvent {
    /// A new connection, as a new `Peer`.
    Connected { peer: Arc<Peer> },
    /// The remote opened a stream nobody claimed; take it with `Peer.takeStream(id, shared)`
    /// (`None` if it was claimed meanwhile).
    IncomingStream { peer: Arc<Peer>, id: String, shared: bool },
    /// The peer was found under another topic too.
    PeerTopic { peer: Arc<Peer>, topic: Vec<u8> },
    /// The peer's connection ended.
    Disconnected { peer: Arc<Peer> },
}

impl From<swarmplex::plex::PlexEvent> for PlexEvent {
    fn from(e: swarmplex::plex::PlexEvent) -> Self {
        use swarmplex::plex::PlexEvent as E;
        match e {
            E::Connection(p) => PlexEvent::Connected { peer: Peer::wrap(p) },
            E::Stream { peer, id, shared } => PlexEvent::IncomingStream { peer: Peer::wrap(peer), id, shared },
            E::Topic { peer, topic } => PlexEvent::PeerTopic { peer: Peer::wrap(peer), topic: topic.0.to_vec() },
            E::Disconnected(p) => PlexEvent::Disconnected { peer: Peer::wrap(p) },
        }
    }
}

/// A plex's events, pulled with `next()`; `cancel()` ends it (see `Plex.subscribe`).
#[derive(uniffi::Object)]
pub struct PlexEventSubscription {
    plex: swarmplex::plex::Plex,
    cancel: watch::Sender<bool>,
    _live: Live,
}

#[uniffi::export]
impl PlexEventSubscription {
    /// The next event; `None` once the plex is shut down or the subscription cancelled. A
    /// cancelled call takes no event from the queue.
    pub async fn next(&self) -> Res<Option<PlexEvent>> {
        let mut cancelled = self.cancel.subscribe();
        Ok(tokio::select! {
            biased;
            _ = cancelled.wait_for(|c| *c) => None,
            e = self.plex.next_event() => e.map(PlexEvent::from),
        })
    }

    /// Ends the subscription: a pending `next()` returns `None` at once, and so do later ones.
    pub fn cancel(&self) -> Res<()> {
        self.cancel.send_replace(true);
        Ok(())
    }
}

/// A stream the remote opened that nobody claimed, and its id (see `Peer.nextStream`).
#[derive(uniffi::Record)]
pub struct PeerStream {
    pub id: String,
    pub stream: Arc<Stream>,
}

/// One connection to a remote peer (p2plex's `Peer`); every connection gets a new one. Streams
/// opened on a peer whose connection is gone reopen on a new connection to the same key.
#[derive(uniffi::Object)]
pub struct Peer {
    inner: swarmplex::plex::Peer,
    waits: Pending,
    _live: Live,
}

impl Peer {
    fn wrap(inner: swarmplex::plex::Peer) -> Arc<Self> {
        Arc::new(Peer { inner, waits: Pending::new(), _live: Live::new() })
    }

    /// An open, as the binding's `Stream` (to run on the core runtime).
    async fn open<F>(open: F) -> Res<Arc<Stream>>
    where
        F: std::future::Future<Output = swarmplex::Result<swarmplex::Stream>> + Send + 'static,
    {
        Ok(Stream::wrap(open.await?))
    }
}

#[uniffi::export]
impl Peer {
    /// This peer's number, unique within its plex (1, 2, … in connection order): two `Peer`
    /// handles are the same connection when their ids are equal.
    pub fn id(&self) -> Res<u64> {
        Ok(self.inner.id())
    }

    /// The remote's 32-byte public key.
    pub fn public_key(&self) -> Res<Vec<u8>> {
        Ok(self.inner.public_key().as_bytes().to_vec())
    }

    /// Whether the remote dialed this connection.
    pub fn incoming(&self) -> Res<bool> {
        Ok(self.inner.incoming())
    }

    /// Topics this peer was found under (may be empty for incoming connections).
    pub fn topics(&self) -> Res<Vec<Vec<u8>>> {
        Ok(self.inner.topics().iter().map(|t| t.0.to_vec()).collect())
    }

    /// Whether new streams go over this connection: it is open and not closing.
    pub fn is_connected(&self) -> Res<bool> {
        Ok(self.inner.is_connected())
    }

    /// Whether the connection is open (it may be closing); false once it ended.
    pub fn is_live(&self) -> Res<bool> {
        Ok(self.inner.is_live())
    }

    /// Streams opened on this connection that have not finished yet (and opens under way).
    pub fn open_streams(&self) -> Res<u64> {
        Ok(self.inner.open_streams() as u64)
    }

    /// The connection under this peer.
    pub fn connection(&self) -> Res<Arc<crate::Connection>> {
        Ok(crate::Connection::wrap(self.inner.connection().clone()))
    }

    /// Opens a named stream (on a new connection to the key if this one is gone); the remote
    /// takes it with `receiveStream(id)`.
    pub async fn create_stream(&self, id: String) -> Res<Arc<Stream>> {
        on_core(Self::open(self.inner.create_stream(&id))).await
    }

    /// Takes the remote's `createStream(id)`, waiting for it; claims it when called (ended by
    /// `cancelWaits()`).
    pub async fn receive_stream(&self, id: String) -> Res<Arc<Stream>> {
        on_core(self.waits.guard(Self::open(self.inner.receive_stream(&id)))).await
    }

    /// Both sides call this with one id and get the two ends of one stream (call it on both
    /// sides before awaiting either; ended by `cancelWaits()`).
    pub async fn create_shared_stream(&self, id: String) -> Res<Arc<Stream>> {
        on_core(self.waits.guard(Self::open(self.inner.create_shared_stream(&id)))).await
    }

    /// Takes an unclaimed stream the remote opened under `id` without waiting; `None` if there
    /// is none (a `PlexEvent.IncomingStream` may find its stream already taken).
    pub fn take_stream(&self, id: String, shared: bool) -> Res<Option<Arc<Stream>>> {
        Ok(self.inner.take_stream(&id, shared).map(Stream::wrap))
    }

    /// The next stream the remote opened that nobody claimed, with its id. `Closed` once the
    /// connection is gone, `Closed("cancelled")` after `cancelWaits()`.
    pub async fn next_stream(&self) -> Res<PeerStream> {
        let peer = self.inner.clone();
        on_core(self.waits.guard(async move {
            let (s, id) = peer.next_stream().await?;
            Ok(PeerStream { id, stream: Stream::wrap(s) })
        }))
        .await
    }

    /// Returns once this peer's connection has ended (for any reason), or `cancelWaits()` ended
    /// the wait (then `Closed("cancelled")`).
    pub async fn disconnected(&self) -> Res<()> {
        let peer = self.inner.clone();
        on_core(self.waits.guard(async move {
            peer.disconnected().await;
            Ok(())
        }))
        .await
    }

    /// Closes the connection (every stream on it), stops reconnecting to this key, and returns
    /// once the connection ended.
    pub async fn disconnect(&self) -> Res<()> {
        let peer = self.inner.clone();
        on_core(async move {
            peer.disconnect().await;
            Ok(())
        })
        .await
    }

    /// Closes the connection and refuses this peer from now on.
    pub fn ban(&self) -> Res<()> {
        Ok(self.inner.ban()?)
    }

    /// Ends every pending `receiveStream`, `createSharedStream`, `nextStream` and
    /// `disconnected` made through this handle with `Closed("cancelled")`; later calls work.
    pub fn cancel_waits(&self) -> Res<()> {
        self.waits.cancel();
        Ok(())
    }
}

// ---- peersockets ------------------------------------------------------------------------------

/// Topic-tagged messages to connected peers by key (the `peersockets` npm module), over a swarm
/// whose own events keep going to whoever reads them.
#[derive(uniffi::Object)]
pub struct Peersockets {
    inner: swarmplex::peersockets::Peersockets,
    _live: Live,
}

#[uniffi::export]
impl Peersockets {
    /// Peersockets over `swarm` (or over `Plex.swarm()`).
    #[uniffi::constructor]
    pub fn new(swarm: Arc<Swarm>) -> Res<Arc<Self>> {
        let inner = swarmplex::peersockets::Peersockets::over(swarm.inner.clone());
        Ok(Arc::new(Peersockets { inner, _live: Live::new() }))
    }

    /// Joins the topic `name` and returns a new handle on it. `InvalidInput` for an empty or
    /// too long name, `Closed` once the swarm is shut down.
    pub fn join(&self, name: String) -> Res<Arc<TopicHandle>> {
        let inner = Arc::new(self.inner.join(&name)?);
        Ok(Arc::new(TopicHandle { inner, reads: Pending::new(), _live: Live::new() }))
    }

    /// Closes every handle of `name` (every topic if `None`) and stops receiving it; returns the
    /// ids of the handles it closed.
    #[uniffi::method(default(name = None))]
    pub fn leave(&self, name: Option<String>) -> Res<Vec<u64>> {
        Ok(self.inner.leave(name.as_deref()))
    }

    /// The names of the topics with an open handle.
    pub fn topics(&self) -> Res<Vec<String>> {
        Ok(self.inner.topics())
    }
}

/// A message on a topic: the sender's 32-byte key and the bytes.
#[derive(uniffi::Record)]
pub struct TopicMessage {
    pub remote: Vec<u8>,
    pub data: Vec<u8>,
}

/// One interest in a peersockets topic: sends to peers and receives what they send on it.
/// Freeing the handle closes it.
#[derive(uniffi::Object)]
pub struct TopicHandle {
    inner: Arc<swarmplex::peersockets::TopicHandle>,
    reads: Pending,
    _live: Live,
}

#[uniffi::export]
impl TopicHandle {
    /// This handle's number, unique within its `Peersockets` (as `leave` returns them).
    pub fn id(&self) -> Res<u64> {
        Ok(self.inner.id())
    }

    /// The topic's name.
    pub fn name(&self) -> Res<String> {
        Ok(self.inner.name().to_string())
    }

    /// Whether the handle was closed (by `close()` or `Peersockets.leave`).
    pub fn is_closed(&self) -> Res<bool> {
        Ok(self.inner.is_closed())
    }

    /// Sends `data` to the connected peer `remote` (delivered only if it joined this topic).
    /// `Closed` if there is no open connection to it or the handle is closed.
    pub async fn send(&self, remote: Vec<u8>, data: Vec<u8>) -> Res<()> {
        let (k, h) = (key(&remote)?, self.inner.clone());
        on_core(async move { Ok(h.send(k, &data).await?) }).await
    }

    /// Sends `data` to every connected peer (only those that joined deliver it); returns how
    /// many sends succeeded.
    pub async fn broadcast(&self, data: Vec<u8>) -> Res<u64> {
        let h = self.inner.clone();
        on_core(async move { Ok(h.broadcast(&data).await? as u64) }).await
    }

    /// The next message; `None` once the handle is closed and what came before was read.
    /// Ended by `cancelReads()` with `Closed("cancelled")`; no message is lost then.
    pub async fn next_message(&self) -> Res<Option<TopicMessage>> {
        let h = self.inner.clone();
        // A channel receive (no runtime needed): polled in place, cancel-safe.
        self.reads
            .guard(async move {
                Ok(h.next_message().await.map(|(k, data)| TopicMessage { remote: k.as_bytes().to_vec(), data }))
            })
            .await
    }

    /// Ends every pending `nextMessage` made through this handle with `Closed("cancelled")`.
    pub fn cancel_reads(&self) -> Res<()> {
        self.reads.cancel();
        Ok(())
    }

    /// Stops delivering to this handle; the topic stays joined while other handles use it (the
    /// core's `close`; `close()` frees the native handle in Kotlin, which closes it too).
    pub fn shutdown(&self) -> Res<()> {
        self.inner.close();
        Ok(())
    }
}
