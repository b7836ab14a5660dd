//! Peers and sessions: who we want, dialing and its cap, reconnect backoff, the handshake
//! verdict (see [`dedup`](super::dedup)), activation, session end, ban, suspend and resume.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};

use super::backoff::{Backoff, jitter};
use super::dedup::{self, Existing, Role, Verdict};
use super::{Action, ConnFacts, Handles, Notice, Session, State, Timer};
use crate::error::Error;
use crate::keys::PublicKey;
use crate::link::Handshake;
use crate::topic::Topic;

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

/// A finished handshake waiting for its session to be chosen (leader) or accepted (follower).
pub(crate) struct Pending<A> {
    pub handshake: Handshake,
    pub activate: A,
}

/// The one session we hold with a peer.
pub(super) struct Active<S> {
    pub conn: ConnectionId,
    pub session_id: [u8; 16],
    pub session: S,
    pub since: Instant,
    pub remote_instance: u64,
}

/// Everything we know about one remote key.
pub(super) struct Peer<H: Handles> {
    pub key: PublicKey,
    /// Topics under which a lookup found it (client side), or a member told us it joined.
    pub topics: Vec<Topic>,
    /// Topics it proved to us it joined (topic peer exchange, `members`).
    pub proved: Vec<Topic>,
    /// Joined by key (`join_peer`): retried forever.
    pub explicit: bool,
    pub banned: bool,
    /// We want a session and are working on one (dial or handshake in progress).
    pub dialing: bool,
    pub backoff: Backoff,
    /// A backoff retry is scheduled: lookups that find the peer meanwhile do not dial it.
    pub retry_pending: bool,
    pub session: Option<Active<H::Session>>,
    /// Handshakes we lead, by connection, awaiting their socket stream.
    pub leading: HashMap<ConnectionId, Pending<H::Activate>>,
    /// Handshakes we follow, by connection, awaiting the leader's socket stream.
    pub following: HashMap<ConnectionId, Pending<H::Activate>>,
}

/// One transport connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub peer: PeerId,
    pub facts: ConnFacts,
    /// A session handshake runs (or ran to a session) on it.
    pub handshaking: bool,
}

/// What the driver needs to build a session handle.
#[derive(Debug, Clone)]
pub(crate) struct SessionPlan {
    pub pid: PeerId,
    pub conn: ConnectionId,
    pub role: Role,
    /// Equal on both sides (see [`Handshake::hash`]).
    pub handshake_hash: [u8; 32],
    pub session_id: [u8; 16],
    /// Whether we dialed the transport connection.
    pub is_initiator: bool,
    pub remote_addr: Multiaddr,
    pub info: PeerInfo,
}

impl<H: Handles> State<H> {
    // ---- queries -----------------------------------------------------------------------------

    /// The session with `pid`, if there is one.
    pub fn session(&self, pid: &PeerId) -> Option<&H::Session> {
        self.peers.get(pid).and_then(|p| p.session.as_ref()).map(|a| &a.session)
    }

    /// The session with `pid` if it runs on `conn`.
    pub fn session_on(&self, pid: &PeerId, conn: ConnectionId) -> Option<&H::Session> {
        self.peers.get(pid).and_then(|p| p.session.as_ref()).filter(|a| a.conn == conn).map(|a| &a.session)
    }

    /// Every session: (peer, connection, key, handle).
    pub fn sessions(&self) -> impl Iterator<Item = (PeerId, ConnectionId, PublicKey, &H::Session)> {
        self.peers.iter().filter_map(|(id, p)| p.session.as_ref().map(|a| (*id, a.conn, p.key, &a.session)))
    }

    /// Whether libp2p has the connection open.
    pub fn has_conn(&self, conn: ConnectionId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Whether any transport connection to `pid` is open.
    pub fn connected_to(&self, pid: &PeerId) -> bool {
        self.conns.values().any(|c| c.peer == *pid)
    }

    /// The remote address of a direct (not relayed) connection to `pid`, if there is one.
    pub fn direct_addr(&self, pid: &PeerId) -> Option<Multiaddr> {
        self.conns.values().find(|c| c.peer == *pid && !c.facts.relayed).map(|c| c.facts.addr.clone())
    }

    /// The remote address of a direct connection we dialed to `pid` (where it listens).
    pub fn dialed_addr(&self, pid: &PeerId) -> Option<Multiaddr> {
        self.conns
            .values()
            .find(|c| c.peer == *pid && !c.facts.relayed && c.facts.dialer)
            .map(|c| c.facts.addr.clone())
    }

    /// Whether we are dialing `pid` and have no session yet.
    pub fn is_dialing(&self, pid: &PeerId) -> bool {
        self.peers.get(pid).is_some_and(|p| p.dialing && p.session.is_none())
    }

    /// Whether `pid` is banned.
    pub fn is_banned(&self, pid: &PeerId) -> bool {
        self.peers.get(pid).is_some_and(|p| p.banned)
    }

    /// Peers that may be offered to another peer (peer exchange): not `asker`, not banned, with
    /// a session or a direct connection whose handshake is under way.
    pub fn offerable(&self, asker: &PeerId) -> Vec<(PeerId, PublicKey)> {
        let settling = |id: &PeerId| self.conns.values().any(|c| c.peer == *id && c.handshaking && !c.facts.relayed);
        self.peers
            .iter()
            .filter(|(id, p)| *id != asker && !p.banned && (p.session.is_some() || settling(id)))
            .map(|(id, p)| (*id, p.key))
            .collect()
    }

    pub(super) fn peers_with_sessions(&self) -> Vec<PeerId> {
        self.peers.iter().filter(|(_, p)| p.session.is_some()).map(|(k, _)| *k).collect()
    }

    fn wanted(&self, p: &Peer<H>) -> bool {
        !p.banned && (p.explicit || p.topics.iter().any(|t| self.topics.get(t).is_some_and(|ts| ts.opts.client)))
    }

    fn count_sessions(&self) -> usize {
        self.peers.values().filter(|p| p.session.is_some()).count()
    }

    fn count_connecting(&self) -> usize {
        self.peers.values().filter(|p| p.dialing && p.session.is_none()).count()
    }

    /// Reports (connecting, connections) if it changed.
    pub(super) fn update(&mut self) {
        let now = (self.count_connecting(), self.count_sessions());
        if now != self.last_update {
            self.last_update = now;
            self.notice(Notice::Update { connecting: now.0, connections: now.1 });
        }
    }

    /// The peer entry for `key`, created if missing.
    pub(super) fn peer_entry(&mut self, key: PublicKey) -> &mut Peer<H> {
        self.peers.entry(key.to_peer_id()).or_insert_with(|| Peer {
            key,
            topics: Vec::new(),
            proved: Vec::new(),
            explicit: false,
            banned: false,
            dialing: false,
            backoff: Backoff::default(),
            retry_pending: false,
            session: None,
            leading: HashMap::new(),
            following: HashMap::new(),
        })
    }

    /// Ensures a peer entry for `pid`; `None` if `pid` is not an Ed25519 key.
    pub fn ensure_peer(&mut self, pid: PeerId) -> Option<PublicKey> {
        let key = PublicKey::from_peer_id(&pid)?;
        self.peer_entry(key);
        Some(key)
    }

    // ---- app requests ------------------------------------------------------------------------

    /// `join_peer`: keep a session with `key`, retried forever.
    pub fn join_peer(&mut self, key: PublicKey, now: Instant) {
        if key == self.local {
            return;
        }
        let p = self.peer_entry(key);
        p.explicit = true;
        p.backoff = Backoff::default();
        let pid = key.to_peer_id();
        self.dial(pid);
        self.lookup_self_announce(pid, key, now);
    }

    /// `leave_peer`: stop wanting `key` (an existing session stays). A dial under way for it
    /// alone is abandoned: its connection, if it still comes, starts no session.
    pub fn leave_peer(&mut self, key: PublicKey) {
        let pid = key.to_peer_id();
        if let Some(p) = self.peers.get_mut(&pid) {
            p.explicit = false;
        }
        if self.peers.get(&pid).is_some_and(|p| p.dialing && !self.wanted(p)) {
            if let Some(p) = self.peers.get_mut(&pid) {
                p.dialing = false;
            }
            self.update();
        }
        self.forget_self_announce(key);
    }

    /// The app closed the session on `conn`.
    pub fn close_session(&mut self, conn: ConnectionId, now: Instant) {
        if let Some(pid) = self.session_peer(conn) {
            self.end_session(pid, Error::Closed("closed locally".into()), true, now);
        }
    }

    /// A connection made by address (`connect`) reached `pid`: want a session with it. Returns
    /// the existing session, if any.
    pub fn expect_session(&mut self, pid: PeerId) -> Option<H::Session> {
        if let Some(s) = self.session(&pid) {
            return Some(s.clone());
        }
        if let Some(p) = self.peers.get_mut(&pid) {
            p.dialing = true;
        }
        self.update();
        None
    }

    /// Peer exchange offered `key`: dial it. `Err` says why no dial started.
    pub fn dial_offer(&mut self, key: PublicKey) -> Result<(), Error> {
        let pid = key.to_peer_id();
        self.peer_entry(key);
        self.dial(pid);
        if !self.is_dialing(&pid) && self.session(&pid).is_none() {
            let why = if self.is_banned(&pid) {
                Error::Firewalled("peer is banned".into())
            } else {
                Error::Connect("at max_peers or suspended".into())
            };
            self.gc(pid);
            return Err(why);
        }
        Ok(())
    }

    fn session_peer(&self, conn: ConnectionId) -> Option<PeerId> {
        self.conns.get(&conn).map(|c| c.peer).filter(|pid| self.session_on(pid, conn).is_some())
    }

    // ---- dialing and reconnects --------------------------------------------------------------

    /// Starts working on a session with `pid` unless it is banned, connected, already dialing,
    /// or we are suspended or at `max_peers`. Uses an open connection when there is one.
    pub(super) fn dial(&mut self, pid: PeerId) {
        let at_cap = self.max_peers.is_some_and(|m| self.count_sessions() + self.count_connecting() >= m);
        let existing = self
            .conns
            .iter()
            .filter(|(_, c)| c.peer == pid)
            .min_by_key(|(_, c)| c.facts.relayed)
            .map(|(id, _)| *id);
        let suspended = self.suspended;
        let Some(p) = self.peers.get_mut(&pid) else { return };
        if p.banned || p.session.is_some() || p.dialing || suspended || at_cap {
            return;
        }
        p.dialing = true;
        match existing {
            Some(conn) => self.initiate(pid, conn),
            None => self.act(Action::Dial(pid)),
        }
        self.update();
    }

    /// The driver could not start a dial to `pid`, or libp2p reported the dial failed with no
    /// connection to `pid` left.
    pub fn dial_failed(&mut self, pid: PeerId, error: Error, now: Instant) {
        if self.is_dialing(&pid) && !self.connected_to(&pid) {
            self.failed(pid, error, now);
        }
    }

    /// The driver knows no address for `pid`. A `join_peer` peer waits for its self-announce
    /// lookup, which dials it when it finds it, so this costs no backoff step (a lookup that
    /// ran before the peer announced would otherwise push its reconnects to 15 s); any other
    /// peer failed.
    pub fn dial_unroutable(&mut self, pid: PeerId, now: Instant) {
        let key = self.peers.get(&pid).map(|p| p.key);
        let looking = key.is_some_and(|k| self.looking_for(&k));
        if !looking {
            return self.dial_failed(pid, Error::Connect("no known address for the peer".into()), now);
        }
        if let Some(p) = self.peers.get_mut(&pid) {
            p.dialing = false;
        }
        tracing::debug!(?pid, "no known address: waiting for its self-announce lookup");
        self.update();
        self.check_flush();
    }

    pub(super) fn retry(&mut self, pid: PeerId) {
        if let Some(p) = self.peers.get_mut(&pid) {
            p.retry_pending = false;
        }
        if self.peers.get(&pid).is_some_and(|p| self.wanted(p) && p.session.is_none()) {
            self.dial(pid);
        }
    }

    /// Starts the session handshake on `conn`: the leader says Hello, a follower knocks.
    pub(super) fn initiate(&mut self, pid: PeerId, conn: ConnectionId) {
        let Some(key) = self.peers.get(&pid).map(|p| p.key) else { return };
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if c.handshaking {
            return;
        }
        c.handshaking = true;
        let role = dedup::role(&self.local, &key);
        self.act(Action::Handshake { pid, key, conn, role });
    }

    /// Schedules a retry of `pid` after its backoff; `false` once the backoff gave up.
    fn schedule_retry(&mut self, pid: PeerId, now: Instant) -> bool {
        let Some(p) = self.peers.get_mut(&pid) else { return false };
        let Some(delay) = p.backoff.on_failure(p.explicit) else { return false };
        p.retry_pending = true;
        let unit = self.unit();
        self.schedule(now + jitter(delay, unit), Timer::Retry(pid));
        true
    }

    /// A dial or a handshake failed: retry with backoff if we still want the peer.
    pub(super) fn failed(&mut self, pid: PeerId, error: Error, now: Instant) {
        self.settle_in_rounds(&pid);
        self.act(Action::DialFailed { pid, error: error.clone() });
        let Some(p) = self.peers.get(&pid) else { return };
        let wanted = self.wanted(p);
        let Some(p) = self.peers.get_mut(&pid) else { return };
        p.dialing = false;
        tracing::debug!(key = %p.key, "connect failed: {error}");
        let retry = wanted && p.session.is_none() && !self.suspended;
        if retry && !self.schedule_retry(pid, now) {
            if let Some(p) = self.peers.get_mut(&pid) {
                p.topics.clear(); // given up until a lookup finds it again
            }
        }
        self.update();
        self.check_flush();
        self.gc(pid);
    }

    /// Forgets `pid` unless something still needs its entry.
    pub(super) fn gc(&mut self, pid: PeerId) {
        let keep = self.peers.get(&pid).is_some_and(|p| {
            p.session.is_some()
                || p.explicit
                || p.banned
                || p.dialing
                || !p.leading.is_empty()
                || !p.following.is_empty()
                || self.wanted(p)
        });
        if !keep {
            self.peers.remove(&pid);
        }
    }

    // ---- handshakes and sessions -------------------------------------------------------------

    /// Whether a substream `pid` opened on `conn` is to be served: the connection is open, we
    /// are not suspended and the peer is not banned. Returns the peer's key.
    pub fn inbound_allowed(&mut self, pid: PeerId, conn: ConnectionId) -> Option<PublicKey> {
        if !self.conns.contains_key(&conn) || self.suspended {
            return None;
        }
        let key = self.ensure_peer(pid)?;
        (!self.is_banned(&pid)).then_some(key)
    }

    /// The remote opened a control stream on `conn` (after [`State::inbound_allowed`]): the role
    /// to run the handshake in, if one should run (a knock is answered unless a handshake already
    /// runs on the connection).
    pub fn inbound_control(&mut self, pid: PeerId, conn: ConnectionId) -> Option<Role> {
        let key = self.peers.get(&pid)?.key;
        let c = self.conns.get_mut(&conn)?;
        match dedup::role(&self.local, &key) {
            Role::Leader if c.handshaking => None,
            role => {
                c.handshaking = true;
                Some(role)
            }
        }
    }

    /// A handshake task finished Hello/HelloAck on `conn`. As leader, decide (dedup): accept
    /// (open the socket stream) or close the duplicate. As follower, wait for the socket.
    pub fn handshaked(&mut self, pid: PeerId, conn: ConnectionId, role: Role, handshake: Handshake, activate: H::Activate) {
        if !self.conns.contains_key(&conn) {
            return; // closed meanwhile; dropping `activate` ends the task
        }
        let Some(p) = self.peers.get_mut(&pid) else { return };
        tracing::debug!(local = ?self.local, remote = ?p.key, ?conn, ?role, session = %hex::encode(&handshake.session_id[..4]), "handshaked");
        let pending = Pending { handshake, activate };
        match role {
            Role::Follower => {
                p.following.insert(conn, pending);
            }
            Role::Leader => {
                let existing = match (&p.session, p.leading.values().next()) {
                    (Some(s), _) => Existing::Active { remote_instance: s.remote_instance },
                    (None, Some(l)) => Existing::Active { remote_instance: l.handshake.remote_instance },
                    (None, None) => Existing::None,
                };
                match dedup::leader_verdict(existing, pending.handshake.remote_instance) {
                    Verdict::Accept | Verdict::ReplaceStale => {
                        p.leading.insert(conn, pending);
                        self.act(Action::OpenSocket { pid, conn });
                    }
                    Verdict::Duplicate => {
                        tracing::debug!(key = ?p.key, "duplicate connection closed");
                        self.act(Action::CloseConnection(conn));
                    }
                }
            }
        }
    }

    /// A handshake on `conn` failed; `session_id` names it once Hello was exchanged. A firewall
    /// rejection bans the peer.
    pub fn handshake_failed(&mut self, pid: PeerId, conn: ConnectionId, session_id: Option<[u8; 16]>, error: Error, now: Instant) {
        if let Error::Firewalled(_) = error {
            self.ban(pid, now);
            return;
        }
        let Some(p) = self.peers.get_mut(&pid) else { return };
        if let Some(sid) = session_id {
            p.leading.retain(|c, h| !(*c == conn && h.handshake.session_id == sid));
            p.following.retain(|c, h| !(*c == conn && h.handshake.session_id == sid));
        }
        let busy = p.leading.contains_key(&conn) || p.following.contains_key(&conn);
        let stalled = p.session.is_none() && p.leading.is_empty() && p.following.is_empty() && p.dialing;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.handshaking &= busy;
        }
        tracing::debug!(?conn, "handshake failed: {error}");
        if stalled {
            self.failed(pid, error, now);
        }
    }

    /// As leader, the socket stream on `conn` opened (`Ok`) or failed. On success `make` builds
    /// the session handle from the plan and activates the handshake task (`None`: it is gone).
    pub fn socket_opened<F>(&mut self, pid: PeerId, conn: ConnectionId, result: Result<(), Error>, now: Instant, make: F)
    where
        F: FnOnce(&SessionPlan, H::Activate) -> Option<H::Session>,
    {
        let Some(pending) = self.peers.get_mut(&pid).and_then(|p| p.leading.remove(&conn)) else { return };
        match result {
            Ok(()) => self.activate(pid, conn, pending, Role::Leader, now, make),
            Err(error) => {
                if self.is_dialing(&pid) {
                    self.failed(pid, error, now);
                }
            }
        }
    }

    /// As follower, the leader's socket stream arrived on `conn` (after
    /// [`State::inbound_allowed`]): the session is accepted. `make` as in [`State::socket_opened`].
    pub fn inbound_socket<F>(&mut self, pid: PeerId, conn: ConnectionId, now: Instant, make: F)
    where
        F: FnOnce(&SessionPlan, H::Activate) -> Option<H::Session>,
    {
        let Some(pending) = self.peers.get_mut(&pid).and_then(|p| p.following.remove(&conn)) else { return };
        self.activate(pid, conn, pending, Role::Follower, now, make);
    }

    fn activate<F>(&mut self, pid: PeerId, conn: ConnectionId, pending: Pending<H::Activate>, role: Role, now: Instant, make: F)
    where
        F: FnOnce(&SessionPlan, H::Activate) -> Option<H::Session>,
    {
        let Some(p) = self.peers.get(&pid) else { return };
        let key = p.key;
        let (leader, follower) = match role {
            Role::Leader => (self.local, key),
            Role::Follower => (key, self.local),
        };
        let facts = self.conns.get(&conn).map(|c| c.facts.clone());
        let plan = SessionPlan {
            pid,
            conn,
            role,
            handshake_hash: pending.handshake.hash(&leader, &follower),
            session_id: pending.handshake.session_id,
            is_initiator: facts.as_ref().is_some_and(|f| f.dialer),
            remote_addr: facts.map(|f| f.addr).unwrap_or_else(Multiaddr::empty),
            info: PeerInfo {
                public_key: key,
                topics: p.topics.clone(),
                client: self.wanted(p) && !p.topics.is_empty(),
                explicit: p.explicit,
            },
        };
        let Some(session) = make(&plan, pending.activate) else {
            return; // the handshake task is gone: the connection is closing
        };
        if self.peers.get(&pid).and_then(|p| p.session.as_ref()).is_some_and(|s| s.conn != conn) {
            self.end_session(pid, Error::Duplicate, true, now);
        }
        let Some(p) = self.peers.get_mut(&pid) else { return };
        tracing::debug!(local = ?self.local, remote = ?key, ?conn, ?role, session = %hex::encode(&plan.session_id[..4]), "session active");
        p.session = Some(Active {
            conn,
            session_id: plan.session_id,
            session: session.clone(),
            since: now,
            remote_instance: pending.handshake.remote_instance,
        });
        p.dialing = false;
        self.settle_in_rounds(&pid);
        self.act(Action::Connected { pid, session: session.clone() });
        self.notice(Notice::Connection(session));
        self.update();
        self.check_flush();
    }

    /// Ends our session with `pid` (if any) with `reason`; reconnects with backoff if we still
    /// want the peer. `close_transport` also closes its transport connection.
    pub(super) fn end_session(&mut self, pid: PeerId, reason: Error, close_transport: bool, now: Instant) {
        let Some(p) = self.peers.get_mut(&pid) else { return };
        let Some(active) = p.session.take() else { return };
        active.session.end(reason.clone());
        // A session the relay cut counts as a failure however long it lived: a relay that cuts
        // sessions at its limit must not make us reconnect through it at once, forever.
        if !matches!(reason, Error::RelayLimit(_)) {
            p.backoff.on_connection_ended(now.saturating_duration_since(active.since));
        }
        let key = p.key;
        tracing::debug!(local = ?self.local, remote = ?key, conn = ?active.conn, "session ended: {reason}");
        if let Some(d) = &mut self.destroying {
            d.closing.insert(active.session_id);
        }
        if close_transport && self.destroying.is_none() {
            self.act(Action::CloseConnection(active.conn));
        }
        if let Some(c) = self.conns.get_mut(&active.conn) {
            c.handshaking = false;
        }
        self.notice(Notice::Disconnected { remote: key, reason: reason.clone() });
        let wanted = self.peers.get(&pid).is_some_and(|p| self.wanted(p));
        if wanted && !self.suspended && self.destroying.is_none() && reason != Error::Duplicate {
            self.schedule_retry(pid, now);
        }
        self.update();
        self.gc(pid);
    }

    /// A session's control task ended (`reason`).
    pub fn session_ended(&mut self, conn: ConnectionId, session_id: [u8; 16], reason: Error, now: Instant) {
        if let Some(d) = &mut self.destroying {
            d.closing.remove(&session_id);
        }
        if let Some(pid) = self.session_peer(conn) {
            if self.peers.get(&pid).and_then(|p| p.session.as_ref()).is_some_and(|s| s.session_id == session_id) {
                let reason = self.without_goodbye(conn, reason);
                self.end_session(pid, reason, true, now);
            }
        }
    }

    /// A control stream that ended without a goodbye: on a relayed connection the relay cut
    /// the circuit (its limits, or it went away), elsewhere the remote closed.
    fn without_goodbye(&self, conn: ConnectionId, reason: Error) -> Error {
        match reason {
            Error::Closed(m) if m == crate::link::CONTROL_ENDED => {
                if self.conns.get(&conn).is_some_and(|c| c.facts.relayed) {
                    Error::RelayLimit("the relay closed the circuit (control stream ended)".into())
                } else {
                    Error::Closed("closed by the remote".into())
                }
            }
            other => other,
        }
    }

    /// Bans `pid`: ends its session, refuses it from now on, stops reconnecting.
    pub fn ban(&mut self, pid: PeerId, now: Instant) {
        let Some(key) = self.ensure_peer(pid) else { return };
        let Some(p) = self.peers.get_mut(&pid) else { return };
        if p.banned {
            return;
        }
        p.banned = true;
        p.explicit = false;
        p.dialing = false;
        self.act(Action::Block(pid));
        self.end_session(pid, Error::Firewalled("banned".into()), true, now);
        self.act(Action::DisconnectPeer(pid));
        self.settle_in_rounds(&pid);
        self.notice(Notice::Ban { remote: key });
        self.update();
        self.check_flush();
    }

    /// Ends every session, closes every connection and stops discovery until [`State::resume`].
    pub fn suspend(&mut self, now: Instant) {
        self.suspended = true;
        for pid in self.peers_with_sessions() {
            self.end_session(pid, Error::Closed("suspended".into()), true, now);
        }
        let conns: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for c in conns {
            self.act(Action::CloseConnection(c));
        }
        self.reset_rounds();
        for p in self.peers.values_mut() {
            p.dialing = false;
        }
        self.update();
        self.check_flush();
    }

    /// Restarts every topic's round and dials explicit peers again.
    pub fn resume(&mut self, now: Instant) {
        if !self.suspended {
            return;
        }
        self.suspended = false;
        self.restart_rounds(now);
        let explicit: Vec<PeerId> = self.peers.iter().filter(|(_, p)| p.explicit).map(|(k, _)| *k).collect();
        for pid in explicit {
            self.dial(pid);
        }
    }

    /// A lookup of `topic` found `pid`: remember the topic on the peer and dial it.
    pub(super) fn found(&mut self, topic: Topic, pid: PeerId, hidden: bool) -> bool {
        let Some(key) = PublicKey::from_peer_id(&pid) else { return false };
        let p = self.peer_entry(key);
        if !hidden && !p.topics.contains(&topic) {
            p.topics.push(topic);
            if let Some(s) = &p.session {
                s.session.found_topic(topic);
                self.notice(Notice::PeerTopic { remote: key, topic });
            }
        }
        let Some(p) = self.peers.get(&pid) else { return false };
        if p.session.is_some() || p.banned || p.retry_pending {
            return false; // a scheduled retry dials it: lookups do not bypass the backoff
        }
        self.dial(pid);
        self.is_dialing(&pid)
    }
}
