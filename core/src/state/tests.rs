//! Deterministic tests of the engine's rules: several [`State`]s wired together in memory by a
//! [`Net`] (in the spirit of quinn-proto's `Pair`), with a virtual clock and no sockets.
//!
//! The net plays libp2p and the tasks: a `Dial` makes a connection pair, a `Handshake` runs the
//! Hello exchange at once (asking each side's firewall), `OpenSocket` delivers the socket stream,
//! a session ended on one side says goodbye to the other, and the DHT is a map from topic to
//! providers.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};

use super::*;
use crate::keys::KeyPair;
use crate::link::Handshake;
use crate::options::JoinOptions;

mod discovery;

struct Fake;

impl Handles for Fake {
    type Session = FakeSession;
    type Activate = ();
}

/// A session handle that records what the state did to it.
#[derive(Clone, Debug)]
struct FakeSession {
    remote: PublicKey,
    conn: ConnectionId,
    session_id: [u8; 16],
    hash: [u8; 32],
    ended: Rc<RefCell<Option<Error>>>,
    topics: Rc<RefCell<Vec<Topic>>>,
}

impl Session for FakeSession {
    fn end(&self, reason: Error) {
        self.ended.borrow_mut().get_or_insert(reason);
    }

    fn found_topic(&self, topic: Topic) {
        self.topics.borrow_mut().push(topic);
    }
}

/// One simulated swarm.
struct Node {
    key: PublicKey,
    state: State<Fake>,
    /// Random per start, as `TaskCtx::instance`.
    instance: u64,
    /// Keys this node's firewall rejects.
    rejects: HashSet<PublicKey>,
    /// Keys this node blocked (banned): their dials and substreams are refused.
    blocked: HashSet<PeerId>,
    notices: Vec<Notice<FakeSession>>,
    flushed: Vec<FlushId>,
    /// Times at which this node dialed each peer.
    dials: Vec<(Duration, PeerId)>,
    /// Every session handle this node made, for goodbyes.
    sessions: Vec<FakeSession>,
}

/// Which node and which connection id the other end of a connection is.
type End = (usize, ConnectionId);

struct Net {
    nodes: Vec<Node>,
    start: Instant,
    now: Instant,
    next_id: u64,
    /// Both directions of every open connection.
    links: HashMap<End, End>,
    dht: HashMap<Topic, HashSet<usize>>,
    /// Nodes that nobody can reach (offline).
    offline: HashSet<usize>,
    /// Nodes whose address a dialer knows only once one of its lookups found them (not in
    /// kad's routing table): `(dialer, node)` pairs in `known`.
    hidden: HashSet<usize>,
    known: HashSet<(usize, usize)>,
    /// Session ids whose goodbye was delivered.
    said_goodbye: HashSet<([u8; 16], usize)>,
}

const TOPIC_OPTS: JoinOptions = JoinOptions { server: true, client: true };

impl Net {
    fn new(n: usize) -> Net {
        Net::with(n, None)
    }

    fn with(n: usize, max_peers: Option<usize>) -> Net {
        let now = Instant::now();
        let mut net = Net {
            nodes: Vec::new(),
            start: now,
            now,
            next_id: 0,
            links: HashMap::new(),
            dht: HashMap::new(),
            offline: HashSet::new(),
            hidden: HashSet::new(),
            known: HashSet::new(),
            said_goodbye: HashSet::new(),
        };
        for i in 0..n {
            net.nodes.push(node(i as u8, max_peers, i as u64 + 1));
            net.nodes[i].state.set_listening(true, now);
        }
        net
    }

    fn pid(&self, i: usize) -> PeerId {
        self.nodes[i].key.to_peer_id()
    }

    fn index_of(&self, pid: &PeerId) -> usize {
        self.nodes.iter().position(|n| n.key.to_peer_id() == *pid).expect("known peer")
    }

    fn id(&mut self) -> ConnectionId {
        self.next_id += 1;
        ConnectionId::new_unchecked(self.next_id as usize)
    }

    /// Replaces node `i` by a fresh start with the same key (new instance, no state).
    fn restart(&mut self, i: usize) {
        let ends: Vec<End> = self.links.keys().filter(|(n, _)| *n == i).copied().collect();
        for end in ends {
            self.close(end);
        }
        let old = &self.nodes[i];
        let mut fresh = node(i as u8, old.state.max_peers, old.instance + 1000);
        fresh.state.set_listening(true, self.now);
        self.nodes[i] = fresh;
        for providers in self.dht.values_mut() {
            providers.remove(&i);
        }
    }

    /// Delivers every action of every node until all are quiet.
    fn run(&mut self) {
        for _ in 0..10_000 {
            let mut busy = false;
            for i in 0..self.nodes.len() {
                while let Some(a) = self.nodes[i].state.poll_action() {
                    busy = true;
                    self.execute(i, a);
                }
            }
            busy |= self.goodbyes();
            if !busy {
                return;
            }
        }
        panic!("the net never went quiet");
    }

    /// Advances the virtual clock by `d`, running every timer due on the way.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        self.run();
        loop {
            let next = self.nodes.iter().filter_map(|n| n.state.next_deadline()).min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    for n in &mut self.nodes {
                        n.state.handle_timeout(self.now);
                    }
                    self.run();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn execute(&mut self, i: usize, action: Action<FakeSession>) {
        let now = self.now;
        match action {
            Action::Dial(pid) => {
                let elapsed = self.elapsed();
                self.nodes[i].dials.push((elapsed, pid));
                let j = self.index_of(&pid);
                if self.hidden.contains(&j) && !self.known.contains(&(i, j)) {
                    self.nodes[i].state.dial_unroutable(pid, now);
                    return;
                }
                if self.offline.contains(&j) || self.nodes[j].blocked.contains(&self.pid(i)) {
                    self.nodes[i].state.dial_failed(pid, Error::Connect("unreachable".into()), now);
                    return;
                }
                let (a, b) = (self.id(), self.id());
                self.links.insert((i, a), (j, b));
                self.links.insert((j, b), (i, a));
                let facts = |dialer| ConnFacts { dialer, addr: Multiaddr::empty(), relayed: false };
                let pi = self.pid(i);
                self.nodes[i].state.connection_established(pid, a, facts(true), now);
                self.nodes[j].state.connection_established(pi, b, facts(false), now);
            }
            Action::Handshake { pid, conn, role, .. } => self.handshake(i, pid, conn, role),
            Action::OpenSocket { pid, conn } => {
                let Some(&(j, b)) = self.links.get(&(i, conn)) else {
                    let err = Err(Error::Closed("connection closed".into()));
                    self.nodes[i].state.socket_opened(pid, conn, err, now, |_, _| None);
                    return;
                };
                let pi = self.pid(i);
                let mut made = None;
                self.nodes[i].state.socket_opened(pid, conn, Ok(()), now, |plan, ()| {
                    made = Some(fake_session(plan));
                    made.clone()
                });
                self.nodes[i].sessions.extend(made);
                if self.nodes[j].state.inbound_allowed(pi, b).is_some() {
                    let mut made = None;
                    self.nodes[j].state.inbound_socket(pi, b, now, |plan, ()| {
                        made = Some(fake_session(plan));
                        made.clone()
                    });
                    self.nodes[j].sessions.extend(made);
                }
            }
            Action::CloseConnection(conn) => self.close((i, conn)),
            Action::DisconnectPeer(pid) => {
                let j = self.index_of(&pid);
                let ends: Vec<End> = self.links.iter().filter(|(a, b)| a.0 == i && b.0 == j).map(|(a, _)| *a).collect();
                for end in ends {
                    self.close(end);
                }
            }
            Action::Block(pid) => {
                self.nodes[i].blocked.insert(pid);
            }
            Action::Announce { topic, query } => {
                self.dht.entry(topic).or_default().insert(i);
                self.nodes[i].state.announce_done(query, now);
            }
            Action::StopAnnouncing(topic) => {
                self.dht.entry(topic).or_default().remove(&i);
            }
            Action::Lookup { topic, query } => {
                let found: Vec<usize> = self.dht.get(&topic).into_iter().flatten().copied().collect();
                self.known.extend(found.iter().map(|j| (i, *j)));
                let providers: Vec<PeerId> = found.iter().map(|j| self.pid(*j)).collect();
                self.nodes[i].state.providers_found(query, providers, true, now);
            }
            Action::FinishQuery(_) => {} // lookups here finish at once
            Action::Notice(n) => self.nodes[i].notices.push(n),
            Action::Connected { .. } | Action::DialFailed { .. } => {}
            Action::FlushDone(id) => self.nodes[i].flushed.push(id),
            Action::ConfirmAddr(_) | Action::ExpireAddr(_) | Action::Reserve(_) | Action::Release(_) => {}
        }
    }

    /// Node `i` starts a handshake on `conn` in `role`: the remote answers the control stream,
    /// both firewalls are asked, and both sides report the handshake.
    fn handshake(&mut self, i: usize, pid: PeerId, conn: ConnectionId, role: Role) {
        let now = self.now;
        let Some(&(j, b)) = self.links.get(&(i, conn)) else {
            let error = Error::Closed("connection closed".into());
            self.nodes[i].state.handshake_failed(pid, conn, None, error, now);
            return;
        };
        let pi = self.pid(i);
        let remote_role = match self.nodes[j].state.inbound_allowed(pi, b) {
            Some(_) => self.nodes[j].state.inbound_control(pi, b),
            None => None,
        };
        let Some(remote_role) = remote_role else {
            // Ignored (a knock on a connection whose leader already handshakes): the knock
            // times out.
            let error = Error::Timeout("session handshake".into());
            self.nodes[i].state.handshake_failed(pid, conn, None, error, now);
            return;
        };
        assert_ne!(role, remote_role, "exactly one side leads");
        for (me, them, my_conn, their_pid) in [(i, j, conn, pid), (j, i, b, pi)] {
            if self.nodes[me].rejects.contains(&self.nodes[them].key) {
                let error = Error::Firewalled("rejected by the firewall".into());
                self.nodes[me].state.handshake_failed(their_pid, my_conn, None, error, now);
                let other_conn = if me == i { b } else { conn };
                let other_pid = self.pid(me);
                let error = Error::Reset("session handshake: closed".into());
                self.nodes[them].state.handshake_failed(other_pid, other_conn, None, error, now);
                return;
            }
        }
        self.next_id += 1;
        let mut session_id = [0u8; 16];
        session_id[..8].copy_from_slice(&self.next_id.to_be_bytes());
        let hs = |remote_instance| Handshake {
            session_id,
            leader_nonce: [1; 32],
            follower_nonce: [2; 32],
            remote_instance,
        };
        let (ii, ij) = (self.nodes[i].instance, self.nodes[j].instance);
        self.nodes[i].state.handshaked(pid, conn, role, hs(ij), ());
        self.nodes[j].state.handshaked(pi, b, remote_role, hs(ii), ());
    }

    /// Closes a connection on both ends.
    fn close(&mut self, end: End) {
        let Some(other) = self.links.remove(&end) else { return };
        self.links.remove(&other);
        let now = self.now;
        let (pa, pb) = (self.pid(end.0), self.pid(other.0));
        self.nodes[end.0].state.connection_closed(pb, end.1, None, now);
        self.nodes[other.0].state.connection_closed(pa, other.1, None, now);
    }

    /// A session ended on one side: its control task reports the end and says goodbye, and the
    /// other side's control task reports "closed by the remote".
    fn goodbyes(&mut self) -> bool {
        let mut busy = false;
        for i in 0..self.nodes.len() {
            let ended: Vec<FakeSession> = self.nodes[i]
                .sessions
                .iter()
                .filter(|s| s.ended.borrow().is_some() && !self.said_goodbye.contains(&(s.session_id, i)))
                .cloned()
                .collect();
            for s in ended {
                busy = true;
                self.said_goodbye.insert((s.session_id, i));
                let reason = s.ended.borrow().clone().unwrap_or_else(Error::closed);
                self.nodes[i].state.session_ended(s.conn, s.session_id, reason, self.now);
                if let Some(&(j, b)) = self.links.get(&(i, s.conn)) {
                    let bye = Error::Closed("closed by the remote".into());
                    self.nodes[j].state.session_ended(b, s.session_id, bye, self.now);
                }
            }
        }
        busy
    }

    /// Node `i`'s live sessions.
    fn sessions(&self, i: usize) -> Vec<FakeSession> {
        self.nodes[i].state.sessions().map(|(_, _, _, s)| s.clone()).collect()
    }

    /// How many connection events node `i` reported.
    fn connection_events(&self, i: usize) -> usize {
        self.nodes[i].notices.iter().filter(|n| matches!(n, Notice::Connection(_))).count()
    }

    fn dials_to(&self, i: usize, j: usize) -> Vec<Duration> {
        let pj = self.pid(j);
        self.nodes[i].dials.iter().filter(|(_, p)| *p == pj).map(|(t, _)| *t).collect()
    }

    /// Asserts that `i` and `j` hold one session with each other, over the two ends of one
    /// connection, with equal handshake hashes.
    fn assert_paired(&self, i: usize, j: usize) {
        let si = self.nodes[i].state.session(&self.pid(j)).expect("session on i").clone();
        let sj = self.nodes[j].state.session(&self.pid(i)).expect("session on j").clone();
        assert_eq!(self.links.get(&(i, si.conn)), Some(&(j, sj.conn)), "one connection");
        assert_eq!(si.hash, sj.hash);
        assert_eq!(si.session_id, sj.session_id);
        assert_eq!(si.remote, self.nodes[j].key);
    }
}

fn node(seed: u8, max_peers: Option<usize>, instance: u64) -> Node {
    let key = KeyPair::from_seed(&[seed + 1; 32]).expect("seed").public_key();
    Node {
        key,
        state: State::new(Config { local: key, max_peers, seed: seed as u64, reach: ReachConfig::default() }),
        instance,
        rejects: HashSet::new(),
        blocked: HashSet::new(),
        notices: Vec::new(),
        flushed: Vec::new(),
        dials: Vec::new(),
        sessions: Vec::new(),
    }
}

fn fake_session(plan: &SessionPlan) -> FakeSession {
    FakeSession {
        remote: plan.info.public_key,
        conn: plan.conn,
        session_id: plan.session_id,
        hash: plan.handshake_hash,
        ended: Rc::default(),
        topics: Rc::default(),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn topic() -> Topic {
    Topic::from_name("pair")
}

#[test]
fn both_sides_dialing_at_once_end_with_one_session() {
    let mut net = Net::new(2);
    let (k0, k1) = (net.nodes[0].key, net.nodes[1].key);
    // Both join each other by key in the same instant: two connections, two handshakes.
    net.nodes[0].state.join_peer(k1, net.now);
    net.nodes[1].state.join_peer(k0, net.now);
    net.advance(secs(1));
    net.assert_paired(0, 1);
    assert_eq!(net.connection_events(0), 1, "one connection event on 0");
    assert_eq!(net.connection_events(1), 1, "one connection event on 1");
    // Nothing flaps afterwards.
    net.advance(secs(60));
    net.assert_paired(0, 1);
    assert_eq!(net.connection_events(0), 1);
    assert_eq!(net.connection_events(1), 1);
}

#[test]
fn a_topic_peer_that_cannot_be_reached_is_retried_with_backoff_then_given_up() {
    let mut net = Net::new(2);
    net.nodes[1].state.join(topic(), JoinOptions { server: true, client: false }, net.now);
    net.run();
    net.offline.insert(1);
    net.nodes[0].state.join(topic(), JoinOptions { server: false, client: true }, net.now);
    net.advance(secs(5 * 60));
    let dials = net.dials_to(0, 1);
    // The relookups at 1, 3, 10 and 30 s find it again, but do not bypass the backoff: only
    // the backoff spaces the dials, ≈ 1 s, 5 s, 15 s.
    assert_eq!(dials[0], Duration::ZERO);
    let gaps: Vec<Duration> = dials.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 3, "retried: {dials:?}");
    for (gap, base) in gaps.iter().zip([1.0, 5.0, 15.0]) {
        let s = gap.as_secs_f64();
        assert!(s >= base * 0.8 - 1e-9 && s <= base * 1.2 + 1e-9, "gap {s} s vs {base} s ±20 %: {dials:?}");
    }
    // Given up after the 4th failure (≈ 21 s); forgotten until a lookup finds it again: the
    // relookup at 30 s starts a new cycle, and then nothing until the refresh (≥ 8 min).
    assert!(dials[3] < secs(30) && dials[4] == secs(30), "{dials:?}");
    assert!(!dials.iter().any(|d| *d > secs(60) && *d < secs(8 * 60)), "{dials:?}");
    assert!(net.nodes[0].state.session(&net.pid(1)).is_none());
}

#[test]
fn an_explicit_peer_is_retried_forever() {
    let mut net = Net::new(2);
    net.offline.insert(1);
    let k1 = net.nodes[1].key;
    net.nodes[0].state.join_peer(k1, net.now);
    net.advance(secs(60 * 60));
    let dials = net.dials_to(0, 1);
    assert!(dials.len() >= 4 + 5, "≥ 4 quick retries then every ≈ 10 min: {dials:?}");
    // Back online: the next retry connects.
    net.offline.clear();
    net.advance(secs(15 * 60));
    net.assert_paired(0, 1);
}

#[test]
fn a_banned_peer_is_disconnected_and_never_dialed_again() {
    let mut net = Net::new(2);
    let k1 = net.nodes[1].key;
    net.nodes[1].state.join(topic(), TOPIC_OPTS, net.now);
    net.nodes[0].state.join(topic(), TOPIC_OPTS, net.now);
    net.advance(secs(2));
    net.assert_paired(0, 1);
    let p1 = net.pid(1);
    net.nodes[0].state.ban(p1, net.now);
    net.advance(secs(1));
    assert!(net.nodes[0].state.session(&p1).is_none());
    assert!(net.nodes[1].state.session(&net.pid(0)).is_none(), "the remote saw the close");
    assert!(net.nodes[0].notices.iter().any(|n| matches!(n, Notice::Ban { remote } if *remote == k1)));
    let before = net.dials_to(0, 1).len();
    net.advance(secs(30 * 60)); // relookups and refreshes find it again
    assert_eq!(net.dials_to(0, 1).len(), before, "no dial to a banned peer");
    assert!(net.nodes[0].state.session(&p1).is_none(), "and no inbound session either");
}

#[test]
fn a_firewall_rejection_bans_the_peer_on_the_rejecting_side() {
    let mut net = Net::new(2);
    let k1 = net.nodes[1].key;
    net.nodes[0].rejects.insert(k1);
    net.nodes[1].state.join(topic(), TOPIC_OPTS, net.now);
    net.nodes[0].state.join(topic(), TOPIC_OPTS, net.now);
    net.advance(secs(60));
    assert!(net.nodes[0].state.is_banned(&net.pid(1)));
    assert!(net.sessions(0).is_empty() && net.sessions(1).is_empty());
    assert_eq!(net.nodes[0].notices.iter().filter(|n| matches!(n, Notice::Ban { .. })).count(), 1);
}

#[test]
fn max_peers_caps_sessions_and_dials() {
    let mut net = Net::with(5, Some(2));
    for i in 1..5 {
        net.nodes[i].state.join(topic(), JoinOptions { server: true, client: false }, net.now);
    }
    net.run();
    net.nodes[0].state.join(topic(), JoinOptions { server: false, client: true }, net.now);
    net.advance(secs(120));
    assert_eq!(net.sessions(0).len(), 2, "capped at max_peers");
    assert_eq!(net.nodes[0].dials.len(), 2, "no dial beyond the cap");
}

#[test]
fn flush_waits_until_found_peers_are_connected_or_given_up() {
    let mut net = Net::new(3);
    for i in [1, 2] {
        net.nodes[i].state.join(topic(), JoinOptions { server: true, client: false }, net.now);
    }
    net.run();
    net.offline.insert(2);
    net.nodes[0].state.join(topic(), JoinOptions { server: false, client: true }, net.now);
    net.nodes[0].state.flush(None, FlushId(7));
    net.run();
    // Node 1 is connected at once; node 2 fails its first dial, which settles it for the round.
    assert_eq!(net.nodes[0].flushed, vec![FlushId(7)]);
    assert_eq!(net.sessions(0).len(), 1);

    // A server flush waits for its announce to settle (a moment after the query finished).
    net.nodes[1].state.join(Topic::from_name("other"), JoinOptions { server: true, client: false }, net.now);
    net.nodes[1].state.flush(Some(Topic::from_name("other")), FlushId(8));
    net.run();
    assert!(net.nodes[1].flushed.is_empty(), "not before the announce settled");
    net.advance(Duration::from_millis(60));
    assert_eq!(net.nodes[1].flushed, vec![FlushId(8)]);
}

#[test]
fn a_restarted_peer_with_the_same_key_replaces_its_stale_session() {
    let mut net = Net::new(2);
    let (k0, k1) = (net.nodes[0].key, net.nodes[1].key);
    net.nodes[0].state.join_peer(k1, net.now);
    net.advance(secs(1));
    net.assert_paired(0, 1);
    // Node 1 restarts without a goodbye (crash): its connections vanish with it.
    net.restart(1);
    net.nodes[1].state.join_peer(k0, net.now);
    net.advance(secs(30));
    net.assert_paired(0, 1);
    let ends = net.nodes[0].notices.iter().filter(|n| matches!(n, Notice::Disconnected { .. })).count();
    assert_eq!(ends, 1, "the old session ended once");
    assert_eq!(net.connection_events(0), 2, "and the new one was reported");
}

#[test]
fn suspend_ends_every_session_and_resume_reconnects() {
    let mut net = Net::new(2);
    let k1 = net.nodes[1].key;
    net.nodes[1].state.join(topic(), TOPIC_OPTS, net.now);
    net.nodes[0].state.join(topic(), TOPIC_OPTS, net.now);
    net.nodes[0].state.join_peer(k1, net.now);
    net.advance(secs(2));
    net.assert_paired(0, 1);
    net.nodes[0].state.suspend(net.now);
    net.advance(secs(1));
    assert!(net.sessions(0).is_empty() && net.sessions(1).is_empty());
    let dials = net.nodes[0].dials.len();
    net.advance(secs(30 * 60));
    assert_eq!(net.nodes[0].dials.len(), dials, "no dial while suspended");
    net.nodes[0].state.resume(net.now);
    net.advance(secs(5));
    net.assert_paired(0, 1);
}

#[test]
fn leaving_a_topic_keeps_its_connections() {
    let mut net = Net::new(2);
    net.nodes[1].state.join(topic(), TOPIC_OPTS, net.now);
    net.nodes[0].state.join(topic(), TOPIC_OPTS, net.now);
    net.advance(secs(2));
    net.assert_paired(0, 1);
    net.nodes[0].state.leave(topic());
    net.nodes[1].state.leave(topic());
    net.advance(secs(30 * 60));
    net.assert_paired(0, 1);
    assert!(net.nodes[0].state.topics().is_empty());
    assert!(!net.dht.get(&topic()).is_some_and(|p| !p.is_empty()), "no longer announced");
}

#[test]
fn a_dial_that_completes_after_leave_peer_starts_no_session() {
    // p2plex's auto-close leaves the key while a dial joinPeer started may still be under way:
    // that dial must not bring the connection back.
    let mut net = Net::new(2);
    let k1 = net.nodes[1].key;
    net.nodes[0].state.join_peer(k1, net.now);
    net.nodes[0].state.leave_peer(k1); // before the queued dial is carried out
    net.advance(secs(60));
    assert!(net.sessions(0).is_empty() && net.sessions(1).is_empty(), "a session started after leave_peer");
    assert_eq!(net.connection_events(0), 0);
}

#[test]
fn a_session_closed_by_the_app_is_redialed_only_if_wanted() {
    let mut net = Net::new(2);
    net.nodes[1].state.join(topic(), JoinOptions { server: true, client: false }, net.now);
    net.nodes[0].state.join(topic(), JoinOptions { server: false, client: true }, net.now);
    net.advance(secs(2));
    net.assert_paired(0, 1);
    // The server closes: the client still wants the peer and reconnects after backoff.
    let conn = net.sessions(1)[0].conn;
    net.nodes[1].state.close_session(conn, net.now);
    net.advance(secs(30));
    net.assert_paired(0, 1);
    // The client closes after leaving: nobody wants the other, so it stays closed.
    net.nodes[0].state.leave(topic());
    let conn = net.sessions(0)[0].conn;
    net.nodes[0].state.close_session(conn, net.now);
    net.advance(secs(30 * 60));
    assert!(net.sessions(0).is_empty() && net.sessions(1).is_empty());
}

#[test]
fn destroy_waits_for_goodbyes_then_is_done() {
    let mut net = Net::new(2);
    let k1 = net.nodes[1].key;
    net.nodes[0].state.join_peer(k1, net.now);
    net.advance(secs(1));
    net.assert_paired(0, 1);
    net.nodes[0].state.begin_destroy(net.now);
    assert!(net.nodes[0].state.is_destroying());
    assert!(!net.nodes[0].state.is_destroyed(), "waits for the session's goodbye");
    net.run();
    assert!(net.nodes[0].state.is_destroyed(), "the control task reported its end");
    assert!(net.sessions(1).is_empty(), "the remote was told");
}

#[test]
fn a_peer_found_under_a_second_topic_is_told_to_the_app_once() {
    let mut net = Net::new(2);
    let (a, b) = (Topic::from_name("a"), Topic::from_name("b"));
    for t in [a, b] {
        net.nodes[1].state.join(t, JoinOptions { server: true, client: false }, net.now);
    }
    net.run();
    net.nodes[0].state.join(a, JoinOptions { server: false, client: true }, net.now);
    net.advance(secs(2));
    net.nodes[0].state.join(b, JoinOptions { server: false, client: true }, net.now);
    net.advance(secs(60));
    let s = &net.sessions(0)[0];
    assert_eq!(*s.topics.borrow(), vec![b]);
    let told = net.nodes[0].notices.iter().filter(|n| matches!(n, Notice::PeerTopic { topic, .. } if *topic == b)).count();
    assert_eq!(told, 1);
}

#[test]
fn of_two_relayed_connections_between_a_pair_both_sides_keep_the_one_the_leader_dialed() {
    let mut net = Net::new(2);
    let leader = if dedup::role(&net.nodes[0].key, &net.nodes[1].key) == Role::Leader { 0 } else { 1 };
    let relayed = |dialer| ConnFacts { dialer, addr: Multiaddr::empty(), relayed: true };
    // Each dialed the other through a relay: connection x dialed by node 0, y by node 1; each
    // side sees both (its own ids).
    let (x0, x1, y0, y1) = (net.id(), net.id(), net.id(), net.id());
    let (p0, p1, now) = (net.pid(0), net.pid(1), net.now);
    net.nodes[0].state.connection_established(p1, x0, relayed(true), now);
    net.nodes[1].state.connection_established(p0, x1, relayed(false), now);
    net.nodes[0].state.connection_established(p1, y0, relayed(false), now);
    net.nodes[1].state.connection_established(p0, y1, relayed(true), now);
    let closed = |net: &mut Net, i: usize| -> Vec<ConnectionId> {
        std::iter::from_fn(|| net.nodes[i].state.poll_action())
            .filter_map(|a| if let Action::CloseConnection(c) = a { Some(c) } else { None })
            .collect()
    };
    let (c0, c1) = (closed(&mut net, 0), closed(&mut net, 1));
    // The leader dialed x if it is node 0, y if node 1: both close the other one.
    let (gone0, gone1) = if leader == 0 { (y0, y1) } else { (x0, x1) };
    assert_eq!(c0, vec![gone0]);
    assert_eq!(c1, vec![gone1]);
}
