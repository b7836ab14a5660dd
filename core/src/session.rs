//! Sessions: the one logical connection per remote key, and the streams opened over it.
//!
//! A session starts with a handshake on a control substream (see `dedup` for who decides),
//! then carries the socket, named/shared streams and topic messages as further substreams of the
//! same transport connection. The control stream stays open for the session's life: both sides
//! send a ping every second and end the session after [`SILENCE_LIMIT`] without one, so a
//! frozen peer or a vanished network is noticed within seconds on any transport.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::AsyncWriteExt;
use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use tokio::sync::{mpsc, oneshot, watch};

use crate::link::{Activation, LinkCmd};
use crate::state::dedup::Role;
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::stream::Stream;
use crate::state::{PeerInfo, Session, SessionPlan};
use crate::topic::Topic;
use crate::wire::{Header, Kind, MAX_NAME};

/// How often each side pings on the control stream.
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// A session with no control frame for this long is dead.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(5);
/// Bound on opening a substream and on each handshake step.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest topic message.
pub const MAX_MESSAGE: usize = 16 << 20;

/// How a connection's bytes travel (see [`Connection::path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Through a relay (circuit relay v2) rather than directly.
    pub relayed: bool,
    /// The relay's public key, when relayed.
    pub relay: Option<PublicKey>,
    /// `"quic"`, `"tcp"`, `"websocket"` or `"relay"` (see [`Connection::transport`]).
    pub transport: &'static str,
    /// The remote multiaddr of the transport connection (a `/p2p-circuit` one when relayed).
    pub remote_address: libp2p::Multiaddr,
}

/// A connection to one peer: the socket plus named streams and topic messages over it.
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Connection {
    pub(crate) inner: Arc<ConnectionInner>,
}

/// The state one session's handles share (quinn's name for it).
pub(crate) struct ConnectionInner {
    pub remote: PublicKey,
    pub peer: PeerId,
    pub conn: ConnectionId,
    pub role: Role,
    pub handshake_hash: [u8; 32],
    pub is_initiator: bool,
    pub remote_addr: libp2p::Multiaddr,
    pub socket: Stream,
    pub info: Mutex<PeerInfo>,
    pub closed_tx: watch::Sender<Option<Error>>,
    pub cmd: mpsc::UnboundedSender<LinkCmd>,
    pub registry: Mutex<Registry>,
}

/// Inbound named/shared streams waiting for a taker, and takers waiting for a stream.
#[derive(Default)]
pub(crate) struct Registry {
    waiting: HashMap<(u8, String), VecDeque<oneshot::Sender<Stream>>>,
    unclaimed: HashMap<(u8, String), VecDeque<Stream>>,
}

impl Registry {
    /// The oldest unclaimed stream under `key` (dropping the key's queue once empty).
    fn pop_unclaimed(&mut self, key: &(u8, String)) -> Option<Stream> {
        let q = self.unclaimed.get_mut(key)?;
        let s = q.pop_front();
        if q.is_empty() {
            self.unclaimed.remove(key);
        }
        s
    }
}

impl Connection {
    /// Builds the session handle for `plan` on `socket` and activates its handshake task
    /// (which becomes the control task); `None` if that task is gone (the connection closes).
    pub(crate) fn start(
        plan: &SessionPlan,
        socket: libp2p::Stream,
        link: mpsc::UnboundedSender<LinkCmd>,
        activate: oneshot::Sender<Activation>,
    ) -> Option<Connection> {
        let key = plan.info.public_key;
        let (closed_tx, closed_rx) = watch::channel(None);
        let connection = Connection {
            inner: Arc::new(ConnectionInner {
                remote: key,
                peer: plan.pid,
                conn: plan.conn,
                role: plan.role,
                handshake_hash: plan.handshake_hash,
                is_initiator: plan.is_initiator,
                remote_addr: plan.remote_addr.clone(),
                socket: Stream::new(socket, String::new(), key, closed_tx.subscribe()),
                info: Mutex::new(plan.info.clone()),
                closed_tx,
                cmd: link,
                registry: Mutex::default(),
            }),
        };
        activate.send(Activation { closed: closed_rx }).ok()?;
        Some(connection)
    }

    /// A receiver of the session's end (its reason), for streams opened on it.
    pub(crate) fn closed_watch(&self) -> watch::Receiver<Option<Error>> {
        self.inner.closed_tx.subscribe()
    }

    /// The remote peer's public key.
    pub fn remote_public_key(&self) -> PublicKey {
        self.inner.remote
    }

    /// 32 bytes equal on both sides and different for every connection.
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.inner.handshake_hash
    }

    /// Whether we dialed the transport connection this session runs on.
    pub fn is_initiator(&self) -> bool {
        self.inner.is_initiator
    }

    /// The remote address of the transport connection the session runs on; a relayed
    /// connection's is a `…/p2p/<relay>/p2p-circuit` address.
    pub fn remote_address(&self) -> libp2p::Multiaddr {
        self.inner.remote_addr.clone()
    }

    /// The transport the session runs on: `"quic"`, `"tcp"`, `"websocket"`, or `"relay"` (a
    /// circuit through another peer, when hole punching could not give a direct connection).
    pub fn transport(&self) -> &'static str {
        use libp2p::multiaddr::Protocol;
        let mut kind = "unknown";
        for p in self.inner.remote_addr.iter() {
            match p {
                Protocol::P2pCircuit => return "relay",
                Protocol::QuicV1 => kind = "quic",
                Protocol::Ws(_) | Protocol::Wss(_) => kind = "websocket",
                Protocol::Tcp(_) if kind == "unknown" => kind = "tcp",
                _ => {}
            }
        }
        kind
    }

    /// The path the session runs on: direct or through which relay, transport, remote address.
    pub fn path(&self) -> Path {
        let relay = crate::addr::relay_of(&self.inner.remote_addr).and_then(|p| PublicKey::from_peer_id(&p));
        Path {
            relayed: crate::addr::is_relayed(&self.inner.remote_addr),
            relay,
            transport: self.transport(),
            remote_address: self.inner.remote_addr.clone(),
        }
    }

    /// The session's default byte stream (Hyperswarm's socket).
    pub fn socket(&self) -> Stream {
        self.inner.socket.clone()
    }

    /// A snapshot of what we know about the peer.
    pub fn peer_info(&self) -> PeerInfo {
        self.inner.info.lock().unwrap().clone()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.closed_tx.borrow().is_some()
    }

    /// Waits until the session ends and says why.
    pub async fn closed(&self) -> Error {
        crate::stream::wait_closed(&mut self.inner.closed_tx.subscribe()).await
    }

    /// Ends the session: the remote sees the close within milliseconds.
    pub fn close(&self) {
        let _ = self.inner.cmd.send(LinkCmd::CloseSession { conn: self.inner.conn });
    }

    /// Opens a named stream; the remote takes it with [`Connection::receive_stream`].
    pub async fn create_stream(&self, name: &str) -> Result<Stream> {
        check_name(name)?;
        self.open(Kind::Named, name).await
    }

    /// Waits for the remote's [`Connection::create_stream`] with this name. The call claims
    /// the next such stream at once, before the returned future is first polled, so calls
    /// made one after another take streams in that order.
    pub fn receive_stream(&self, name: &str) -> impl Future<Output = Result<Stream>> + Send + use<> {
        let take = check_name(name).map(|()| self.take(Kind::Named, name));
        async move { take?.await }
    }

    /// Takes a stream the remote opened under `name` that is waiting unclaimed (one announced
    /// by a [`SwarmEvent::Stream`](crate::SwarmEvent::Stream) event), without waiting: `None` if
    /// there is none. A `receive_stream`/`create_shared_stream` call may have taken the stream
    /// between the event and its handling, so an event handler takes the stream with this call
    /// rather than waiting for one (which would swallow the next stream of that name).
    pub fn take_parked_stream(&self, name: &str, shared: bool) -> Option<Stream> {
        let kind = if shared { Kind::Shared } else { Kind::Named };
        self.inner.registry.lock().unwrap().pop_unclaimed(&(kind as u8, name.to_string()))
    }

    /// A stream both sides ask for by the same name and get the two ends of; whichever side asks
    /// first, the data meets. Only the leader opens it, so two can never cross; the follower's
    /// call therefore resolves only once the leader's side has asked too, so do not make the
    /// other side's call depend on this one completing (call both, then await).
    ///
    /// As with [`Connection::receive_stream`], the follower claims its stream when called.
    pub fn create_shared_stream(&self, name: &str) -> impl Future<Output = Result<Stream>> + Send + use<> {
        let take = check_name(name).map(|()| match self.inner.role {
            Role::Leader => None,
            Role::Follower => Some(self.take(Kind::Shared, name)),
        });
        let (this, name) = (self.clone(), name.to_string());
        async move {
            match take? {
                Some(take) => take.await,
                None => this.open(Kind::Shared, &name).await,
            }
        }
    }

    /// Sends one topic message; the remote delivers it only if it joined `topic`.
    pub async fn send_message(&self, topic: &str, data: &[u8]) -> Result<()> {
        check_name(topic)?;
        if data.len() > MAX_MESSAGE {
            return Err(Error::InvalidInput(format!("message larger than {MAX_MESSAGE} bytes")));
        }
        let s = self.open(Kind::Message, topic).await?;
        s.write(data).await?;
        s.end().await
    }

    async fn open(&self, kind: Kind, name: &str) -> Result<Stream> {
        let raw = open_raw(&self.inner.cmd, self.inner.peer, self.inner.conn, Header::new(kind, name)).await?;
        Ok(Stream::new(raw, name.to_string(), self.inner.remote, self.inner.closed_tx.subscribe()))
    }

    /// Claims the oldest unclaimed stream of `kind`/`name`, or queues for the next one, now;
    /// the future waits for it.
    fn take(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Stream>> + Send + use<> {
        let claim = {
            let mut reg = self.inner.registry.lock().unwrap();
            let key = (kind as u8, name.to_string());
            match reg.pop_unclaimed(&key) {
                Some(s) => Ok(s),
                None => {
                    let (tx, rx) = oneshot::channel();
                    reg.waiting.entry(key).or_default().push_back(tx);
                    Err(rx)
                }
            }
        };
        let mut closed = self.inner.closed_tx.subscribe();
        async move {
            match claim {
                Ok(s) => Ok(s),
                Err(rx) => tokio::select! {
                    s = rx => s.map_err(|_| Error::closed()),
                    e = crate::stream::wait_closed(&mut closed) => Err(e),
                },
            }
        }
    }

    /// Hands an inbound named/shared stream to a waiting taker, or parks it.
    /// Returns true if it was parked (the app should be told a stream arrived).
    pub(crate) fn deliver(&self, kind: Kind, name: String, raw: libp2p::Stream) -> bool {
        let mut stream = Stream::new(raw, name.clone(), self.inner.remote, self.inner.closed_tx.subscribe());
        let mut reg = self.inner.registry.lock().unwrap();
        let key = (kind as u8, name);
        if let Some(q) = reg.waiting.get_mut(&key) {
            while let Some(tx) = q.pop_front() {
                match tx.send(stream) {
                    Ok(()) => return false,
                    Err(s) => stream = s, // that taker gave up; try the next
                }
            }
        }
        reg.unclaimed.entry(key).or_default().push_back(stream);
        true
    }

    /// Ends the session locally with `reason` (idempotent).
    pub(crate) fn end(&self, reason: Error) {
        self.inner.closed_tx.send_if_modified(|c| {
            if c.is_none() {
                *c = Some(reason);
                true
            } else {
                false
            }
        });
        // Takers still waiting get nothing now.
        self.inner.registry.lock().unwrap().waiting.clear();
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("remote", &self.inner.remote)
            .field("initiator", &self.inner.is_initiator)
            .finish()
    }
}

/// Fails with `InvalidInput` if `name` is longer than a stream or topic name may be.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(Error::InvalidInput(format!("name longer than {MAX_NAME} bytes")));
    }
    Ok(())
}


/// Opens a substream on `conn` through the event loop and writes its header.
pub(crate) async fn open_raw(
    cmd: &mpsc::UnboundedSender<LinkCmd>,
    peer: PeerId,
    conn: ConnectionId,
    header: Header,
) -> Result<libp2p::Stream> {
    let (tx, rx) = oneshot::channel();
    cmd.send(LinkCmd::OpenStream { peer, conn, reply: tx }).map_err(|_| Error::closed())?;
    let mut raw = match tokio::time::timeout(STEP_TIMEOUT, rx).await {
        Err(_) => return Err(Error::Timeout("opening a stream".into())),
        Ok(Err(_)) => return Err(Error::Closed("connection closed".into())),
        Ok(Ok(Err(e @ crate::link::OpenError::OtherNetwork(_)))) => return Err(Error::Connect(e.to_string())),
        Ok(Ok(Err(e))) => return Err(Error::Reset(format!("opening a stream: {e}"))),
        Ok(Ok(Ok(s))) => s,
    };
    raw.write_all(&header.encode()).await.map_err(|e| Error::Reset(e.to_string()))?;
    Ok(raw)
}


impl Session for Connection {
    fn end(&self, reason: Error) {
        Connection::end(self, reason);
    }

    fn found_topic(&self, topic: Topic) {
        let mut info = self.inner.info.lock().unwrap_or_else(|p| p.into_inner());
        info.topics.push(topic);
        info.client = true;
    }
}
