//! Sessions: the one logical connection per remote key, and the streams opened over it.
//!
//! A session starts with a handshake on a control substream (see `dedup` for who decides),
//! then carries the socket, named/shared streams and topic messages as further substreams of the
//! same transport connection. The control stream stays open for the session's life: both sides
//! send a ping every second and end the session after [`SILENCE_LIMIT`] without one, so a
//! frozen peer or a vanished network is noticed within seconds on any transport.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};

use crate::dedup::Role;
use crate::engine::{Command, Internal};
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::stream::Stream;
use crate::topic::Topic;
use crate::wire::{Control, Header, Kind, MAX_NAME};

/// How often each side pings on the control stream.
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// A session with no control frame for this long is dead.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(5);
/// Bound on opening a substream and on each handshake step.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest topic message.
pub const MAX_MESSAGE: usize = 16 << 20;

/// What the app knows about a connected peer (Hyperswarm's `PeerInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The remote's public key.
    pub public_key: PublicKey,
    /// Topics under which we found this peer as a client (empty for purely incoming peers).
    pub topics: Vec<Topic>,
    /// Whether we look this peer up as a client of some topic.
    pub client: bool,
    /// Whether the peer was joined explicitly by key (`join_peer`).
    pub explicit: bool,
}

/// The handshake's outcome, carried from a handshake task to the event loop.
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    pub session_id: [u8; 16],
    pub leader_nonce: [u8; 32],
    pub follower_nonce: [u8; 32],
    pub remote_instance: u64,
}

impl Handshake {
    /// SHA-256 over both keys, the session id and both nonces: equal on both sides, unique per
    /// session. (libp2p exposes neither Noise's handshake hash nor a TLS exporter.)
    pub fn hash(&self, leader: &PublicKey, follower: &PublicKey) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"swarmplex/handshake/v1");
        h.update(leader.0);
        h.update(follower.0);
        h.update(self.session_id);
        h.update(self.leader_nonce);
        h.update(self.follower_nonce);
        h.finalize().into()
    }
}

/// What the event loop hands a control task when its session becomes active.
pub(crate) struct Activation {
    pub closed: watch::Receiver<Option<Error>>,
}

/// A connection to one peer: the socket plus named streams and topic messages over it.
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Connection {
    pub(crate) inner: Arc<Shared>,
}

pub(crate) struct Shared {
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
    pub cmd: mpsc::UnboundedSender<Command>,
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
        let _ = self.inner.cmd.send(Command::CloseSession { conn: self.inner.conn });
    }

    /// Opens a named stream; the remote takes it with [`Connection::receive_stream`].
    pub async fn create_stream(&self, name: &str) -> Result<Stream> {
        check_name(name)?;
        self.open(Kind::Named, name).await
    }

    /// Waits for the remote's [`Connection::create_stream`] with this name.
    pub async fn receive_stream(&self, name: &str) -> Result<Stream> {
        check_name(name)?;
        self.take(Kind::Named, name).await
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
    pub async fn create_shared_stream(&self, name: &str) -> Result<Stream> {
        check_name(name)?;
        match self.inner.role {
            Role::Leader => self.open(Kind::Shared, name).await,
            Role::Follower => self.take(Kind::Shared, name).await,
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

    async fn take(&self, kind: Kind, name: &str) -> Result<Stream> {
        let rx = {
            let mut reg = self.inner.registry.lock().unwrap();
            let key = (kind as u8, name.to_string());
            if let Some(s) = reg.pop_unclaimed(&key) {
                return Ok(s);
            }
            let (tx, rx) = oneshot::channel();
            reg.waiting.entry(key).or_default().push_back(tx);
            rx
        };
        let mut closed = self.inner.closed_tx.subscribe();
        tokio::select! {
            s = rx => s.map_err(|_| Error::closed()),
            e = crate::stream::wait_closed(&mut closed) => Err(e),
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

fn check_name(name: &str) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(Error::InvalidInput(format!("name longer than {MAX_NAME} bytes")));
    }
    Ok(())
}

/// Opens a substream on `conn` through the event loop and writes its header.
pub(crate) async fn open_raw(
    cmd: &mpsc::UnboundedSender<Command>,
    peer: PeerId,
    conn: ConnectionId,
    header: Header,
) -> Result<libp2p::Stream> {
    let (tx, rx) = oneshot::channel();
    cmd.send(Command::OpenStream { peer, conn, reply: tx }).map_err(|_| Error::closed())?;
    let mut raw = match tokio::time::timeout(STEP_TIMEOUT, rx).await {
        Err(_) => return Err(Error::Timeout("opening a stream".into())),
        Ok(Err(_)) => return Err(Error::Closed("connection closed".into())),
        Ok(Ok(Err(e @ crate::substreams::OpenError::OtherNetwork(_)))) => return Err(Error::Connect(e.to_string())),
        Ok(Ok(Err(e))) => return Err(Error::Reset(format!("opening a stream: {e}"))),
        Ok(Ok(Ok(s))) => s,
    };
    raw.write_all(&header.encode()).await.map_err(|e| Error::Reset(e.to_string()))?;
    Ok(raw)
}

/// Runs a session's control stream once the loop activated it: heartbeat, silence detection and
/// graceful close. Reports to the loop when the session ends, with the reason.
pub(crate) async fn run_control(
    control: libp2p::Stream,
    activation: Activation,
    conn: ConnectionId,
    session_id: [u8; 16],
    report: mpsc::UnboundedSender<Internal>,
) {
    let (mut rd, mut wr) = control.split();
    let mut closed = activation.closed;
    let reader = async {
        loop {
            match tokio::time::timeout(SILENCE_LIMIT, Control::read(&mut rd)).await {
                Err(_) => return Error::Timeout("peer silent for 5 s".into()),
                // Only our own code writes the control stream, so a clean end of it is a
                // deliberate close (the Close frame can lose the race with the FIN).
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Error::Closed("closed by the remote".into());
                }
                Ok(Err(e)) => return Error::Reset(format!("control stream: {e}")),
                Ok(Ok(Control::Close)) => return Error::Closed("closed by the remote".into()),
                Ok(Ok(_)) => {}
            }
        }
    };
    let writer = async {
        let mut tick = tokio::time::interval(PING_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = Control::Ping.write(&mut wr).await {
                return Error::Reset(format!("control stream: {e}"));
            }
        }
    };
    let reason = tokio::select! {
        r = reader => r,
        r = writer => r,
        reason = crate::stream::wait_closed(&mut closed) => {
            // Say goodbye so the remote ends at once, not after the silence limit.
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                let _ = Control::Close.write(&mut wr).await;
                let _ = wr.close().await;
            }).await;
            reason
        }
    };
    let _ = report.send(Internal::SessionEnded { conn, session_id, reason });
}
