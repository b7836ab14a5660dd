//! [`Peer`]: one plex connection, its streams and its auto-close (see the module docs).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use super::{PlexEvent, PlexRef, RECONNECT_TIMEOUT, Shared};
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::session::{Connection, check_name};
use crate::stream::Stream;
use crate::topic::Topic;

/// Stream notices a peer keeps for [`Peer::next_stream`]; older ones are dropped (their
/// streams stay claimable by `receive_stream`).
pub const MAX_STREAM_NOTICES: usize = 1024;

/// One connection to a remote peer (p2plex's `Peer`). Every connection gets a new `Peer`;
/// streams opened on one whose connection is gone reopen on a new connection to the same key.
/// Cheap to clone; clones share the peer.
#[derive(Clone)]
pub struct Peer {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    plex: PlexRef,
    conn: Connection,
    key: PublicKey,
    incoming: bool,
    /// Taken after the plex's state lock, never before it.
    state: Mutex<State>,
    /// Bumped on every change of `State` (streams noticed, disconnection).
    news: watch::Sender<u64>,
}

struct State {
    topics: Vec<Topic>,
    /// The connection is open.
    live: bool,
    /// We ended the socket (auto-close) or `disconnect` runs.
    closing: bool,
    /// The remote ended the socket (it is closing).
    remote_ended: bool,
    /// A stream was opened on this connection.
    carried: bool,
    /// Streams opened here and not finished, plus opens under way.
    open: usize,
    /// Inbound streams nobody claimed when they came: (id, shared).
    notices: VecDeque<(String, bool)>,
}

/// Which kind of stream an open asks for.
#[derive(Clone, Copy)]
enum Open {
    Create,
    Receive,
    Shared,
}

impl Peer {
    pub(super) fn new(plex: PlexRef, conn: Connection, id: u64) -> Peer {
        let info = conn.peer_info();
        Peer {
            inner: Arc::new(Inner {
                id,
                plex,
                key: conn.remote_public_key(),
                incoming: !conn.is_initiator(),
                conn,
                state: Mutex::new(State {
                    topics: info.topics,
                    live: true,
                    closing: false,
                    remote_ended: false,
                    carried: false,
                    open: 0,
                    notices: VecDeque::new(),
                }),
                news: watch::channel(0).0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn plex(&self) -> Result<Arc<Shared>> {
        self.inner.plex.upgrade().ok_or_else(|| Error::Closed("plex destroyed".into()))
    }

    fn bump(&self) {
        self.inner.news.send_modify(|n| *n += 1);
    }

    /// This peer's number, unique within its plex (1, 2, … in connection order).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The remote's public key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.key
    }

    /// Whether the remote dialed this connection.
    pub fn incoming(&self) -> bool {
        self.inner.incoming
    }

    /// Topics this peer was found under (may be empty for incoming connections).
    pub fn topics(&self) -> Vec<Topic> {
        self.lock().topics.clone()
    }

    /// The connection under this peer.
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    /// Whether new streams go over this peer's connection: it is open and not closing.
    pub fn is_connected(&self) -> bool {
        let st = self.lock();
        st.live && !st.closing && !st.remote_ended
    }

    /// Whether the connection is open (it may be closing); false once it ended.
    pub fn is_live(&self) -> bool {
        self.lock().live
    }

    /// Streams opened on this connection that have not finished yet (and opens under way).
    pub fn open_streams(&self) -> usize {
        self.lock().open
    }

    /// Opens a named stream; the remote takes it with [`Peer::receive_stream`].
    pub fn create_stream(&self, id: &str) -> impl Future<Output = Result<Stream>> + Send + use<> {
        self.open(Open::Create, id)
    }

    /// Takes the remote's [`Peer::create_stream`] with this id (waits for it). Claims the
    /// stream when called, as [`Connection::receive_stream`] does.
    pub fn receive_stream(&self, id: &str) -> impl Future<Output = Result<Stream>> + Send + use<> {
        self.open(Open::Receive, id)
    }

    /// Both sides call this with one id and get the two ends of one stream (call both, then
    /// await: one side's call resolves only once the other side asked too).
    pub fn create_shared_stream(&self, id: &str) -> impl Future<Output = Result<Stream>> + Send + use<> {
        self.open(Open::Shared, id)
    }

    /// Takes a stream the remote opened under `id` that nobody claimed, without waiting
    /// (`None` if there is none); it counts toward this connection's auto-close.
    pub fn take_stream(&self, id: &str, shared: bool) -> Option<Stream> {
        let stream = self.inner.conn.take_parked_stream(id, shared)?;
        Some(self.track(stream))
    }

    /// The next stream the remote opened that nobody claimed, with its id. Fails with
    /// `Closed` once the connection is gone.
    pub async fn next_stream(&self) -> Result<(Stream, String)> {
        let mut news = self.inner.news.subscribe();
        loop {
            news.borrow_and_update();
            let notice = {
                let mut st = self.lock();
                match st.notices.pop_front() {
                    Some(n) => Some(n),
                    None if !st.live => return Err(Error::Closed("peer disconnected".into())),
                    None => None,
                }
            };
            match notice {
                // A receive may have claimed it since the notice: then skip it.
                Some((id, shared)) => {
                    if let Some(stream) = self.take_stream(&id, shared) {
                        return Ok((stream, id));
                    }
                }
                None => {
                    if news.changed().await.is_err() {
                        return Err(Error::Closed("peer disconnected".into()));
                    }
                }
            }
        }
    }

    /// Closes the connection and refuses this peer from now on.
    pub fn ban(&self) -> Result<()> {
        self.plex()?.swarm.ban(self.inner.key)
    }

    /// Closes the connection (every stream on it), stops reconnecting to this key, and
    /// resolves once the connection ended.
    pub async fn disconnect(&self) {
        if let Ok(plex) = self.plex() {
            let _ = plex.swarm.leave_peer(self.inner.key);
        }
        {
            let mut st = self.lock();
            if !st.live {
                return;
            }
            st.closing = true;
        }
        self.inner.conn.close();
        self.disconnected().await;
    }

    /// Resolves once this peer's connection has ended (for any reason).
    pub async fn disconnected(&self) {
        let mut news = self.inner.news.subscribe();
        while self.is_live() {
            if news.changed().await.is_err() {
                return;
            }
        }
    }

    fn open(&self, kind: Open, id: &str) -> impl Future<Output = Result<Stream>> + Send + use<> {
        let checked = check_name(id);
        // On a connected peer the open starts now, so a receive claims its stream in call order.
        let now = match (&checked, self.is_connected()) {
            (Ok(()), true) => Some(self.open_here(kind, id)),
            _ => None,
        };
        let (this, id) = (self.clone(), id.to_string());
        async move {
            checked?;
            if let Some(open) = now {
                return open.await;
            }
            this.carrier().await?.open_here(kind, &id).await
        }
    }

    /// Opens on this peer's connection, counted toward its auto-close from now on.
    fn open_here(&self, kind: Open, id: &str) -> impl Future<Output = Result<Stream>> + Send + use<> {
        let opening = Opening::new(self.clone());
        let conn = self.inner.conn.clone();
        let id = id.to_string();
        let claim = match kind {
            Open::Receive => Some(conn.receive_stream(&id)),
            _ => None,
        };
        let shared = match kind {
            Open::Shared => Some(conn.create_shared_stream(&id)),
            _ => None,
        };
        async move {
            let stream = match (claim, shared) {
                (Some(claim), _) => claim.await,
                (_, Some(shared)) => shared.await,
                _ => conn.create_stream(&id).await,
            }?;
            Ok(opening.into_stream(stream))
        }
    }

    /// The peer whose connection carries a new stream: this one while connected; otherwise
    /// the key's current peer, found again once this connection ended.
    async fn carrier(&self) -> Result<Peer> {
        let mut peer = self.clone();
        loop {
            let plex = peer.plex()?;
            if plex.is_destroyed() {
                return Err(Error::Closed("plex destroyed".into()));
            }
            if peer.is_connected() {
                return Ok(peer);
            }
            if peer.is_live() {
                peer.disconnected().await;
                continue;
            }
            match plex.current(&peer.inner.key) {
                Some(current) if !Arc::ptr_eq(&current.inner, &peer.inner) => peer = current,
                _ => {
                    let plex = super::Plex { inner: plex };
                    peer = plex.find_by_public_key(self.inner.key, Some(RECONNECT_TIMEOUT)).await?;
                }
            }
        }
    }

    /// Counts `stream` toward auto-close until it finished.
    fn track(&self, stream: Stream) -> Stream {
        self.opened();
        self.watch_finish(&stream);
        stream
    }

    fn opened(&self) {
        let mut st = self.lock();
        st.open += 1;
        st.carried = true;
    }

    fn watch_finish(&self, stream: &Stream) {
        let finished = stream.finished();
        let this = self.clone();
        if let Ok(plex) = self.plex() {
            plex.runtime.spawn(async move {
                finished.await;
                this.closed_one();
            });
        }
    }

    /// A stream (or an open under way) is done: auto-close if it was the last.
    fn closed_one(&self) {
        self.lock().open -= 1;
        self.check_idle();
    }

    fn check_idle(&self) {
        let Ok(plex) = self.plex() else { return };
        // Lock order: the plex's state before a peer's, never the other way.
        let destroyed = plex.is_destroyed();
        let (end_socket, close) = {
            let mut st = self.lock();
            if !st.live || !st.carried || st.open > 0 || destroyed {
                return;
            }
            let end_socket = !st.closing;
            st.closing = true;
            (end_socket, st.remote_ended)
        };
        if end_socket {
            // The last stream finished: stop reconnecting and end the socket.
            let _ = plex.swarm.leave_peer(self.inner.key);
            let socket = self.inner.conn.socket();
            plex.runtime.spawn(async move {
                let _ = socket.end().await;
            });
        }
        if close {
            self.inner.conn.close();
        }
    }

    /// Reads the socket to its end (the remote is closing), then waits for the close.
    pub(super) fn start(&self, runtime: &tokio::runtime::Handle) {
        let this = self.clone();
        runtime.spawn(async move {
            let conn = this.inner.conn.clone();
            let socket = conn.socket();
            let mut buf = vec![0u8; 4096];
            let ended = loop {
                match socket.read_into(&mut buf).await {
                    Ok(0) => break true,
                    Ok(_) => {} // the socket carries no plex data: discard it
                    Err(_) => break false,
                }
            };
            if ended {
                let close = {
                    let mut st = this.lock();
                    st.remote_ended = true;
                    if st.open == 0 {
                        st.closing = true;
                    }
                    st.open == 0
                };
                this.bump();
                if close {
                    conn.close();
                }
            }
            conn.closed().await;
            this.on_disconnection();
        });
    }

    pub(super) fn on_disconnection(&self) {
        {
            let mut st = self.lock();
            if !st.live {
                return;
            }
            st.live = false;
            st.closing = false;
            st.notices.clear();
        }
        self.bump();
        if let Ok(plex) = self.plex() {
            plex.bump();
            plex.emit(PlexEvent::Disconnected(self.clone()));
        }
    }

    pub(super) fn on_stream(&self, id: &str, shared: bool) {
        {
            let mut st = self.lock();
            if st.notices.len() >= MAX_STREAM_NOTICES {
                st.notices.pop_front();
            }
            st.notices.push_back((id.to_string(), shared));
        }
        self.bump();
    }

    /// Adds `topic`; false if the peer already had it.
    pub(super) fn add_topic(&self, topic: Topic) -> bool {
        let mut st = self.lock();
        if st.topics.contains(&topic) {
            return false;
        }
        st.topics.push(topic);
        true
    }
}

impl PartialEq for Peer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Peer {}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("public_key", &self.inner.key)
            .field("connected", &self.is_connected())
            .field("open_streams", &self.open_streams())
            .finish()
    }
}

/// An open under way: counts toward auto-close until it became a tracked stream or failed
/// (or was cancelled).
struct Opening(Option<Peer>);

impl Opening {
    fn new(peer: Peer) -> Self {
        peer.opened();
        Opening(Some(peer))
    }

    /// The opened stream, now counted by itself.
    fn into_stream(mut self, stream: Stream) -> Stream {
        if let Some(peer) = self.0.take() {
            peer.watch_finish(&stream);
        }
        stream
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        if let Some(peer) = self.0.take() {
            peer.closed_one();
        }
    }
}
