//! Reachability and relay choice: which of our addresses others can dial, whether we are behind
//! a NAT, and which relays to hold a reservation on (`../shared/NAT-DESIGN.md` §2.2–2.4).
//!
//! - **Address policy.** A listen address is confirmed as external at once only when its IP
//!   scope is no wider than the bootstrap nodes' (loopback testnets, LANs and private networks on
//!   private addresses keep working unchanged, and count as Public). On a network whose bootstrap
//!   nodes are global, only AutoNAT (v2) confirms a direct address, and the relay client
//!   confirms circuit addresses; a NATed peer never announces `192.168.x.y`.
//! - **Reachability.** Unknown → Public after AutoNAT confirmations by `min(2, servers)`
//!   distinct servers; → Private when a probe fails, or when no verdict came
//!   [`PRIVATE_AFTER`] after the first AutoNAT server was seen (a symmetric NAT yields silence).
//!   QUIC addresses observed by two peers with one IP but different ports mean a symmetric NAT.
//! - **Automatic relays.** While Private, or Unknown for [`RELAYS_AFTER`], reserve on up to
//!   [`DESIRED_RELAYS`] relays: the app's `relays` first, then bootstrap nodes, then other peers
//!   that offer the relay protocol, each over an outbound direct connection. A lost reservation
//!   is retried on the same relay once, then that relay rests [`RELAY_BACKOFF`] and the next
//!   candidate is asked. Reservations are released once Public.
//! - **Announce gating.** Server topics announce once there is something to dial: Public or a
//!   reservation (never a record without addresses); and again when the dialable set changes.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use super::{Action, Handles, Notice, State, Timer};

/// How many relay reservations a Private node holds.
pub(crate) const DESIRED_RELAYS: usize = 2;
/// Unknown this long after the first AutoNAT server was seen: reserve relays anyway.
pub(crate) const RELAYS_AFTER: Duration = Duration::from_secs(5);
/// No AutoNAT verdict this long after the first server was seen: Private.
pub(crate) const PRIVATE_AFTER: Duration = Duration::from_secs(20);
/// Server topics announce at the latest this long after start if we have a dialable address by
/// then (confirmed or a relay's); without one, the check repeats every [`ANNOUNCE_RECHECK`]: a
/// provider record with no address only makes clients dial blind (and Amino drops it).
pub(crate) const ANNOUNCE_SETTLE: Duration = Duration::from_secs(10);
/// How often the settle check repeats while nothing is dialable.
pub(crate) const ANNOUNCE_RECHECK: Duration = Duration::from_secs(5);
/// A relay whose reservation failed twice is not asked again for this long.
pub(crate) const RELAY_BACKOFF: Duration = Duration::from_secs(600);
/// Address changes within this window cause one re-announce.
pub(crate) const REANNOUNCE_DEBOUNCE: Duration = Duration::from_secs(1);

/// Whether others can dial us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    /// No verdict yet.
    Unknown,
    /// Some direct address of ours is dialable from outside (or the network is local).
    Public,
    /// Behind a NAT or firewall: reachable through relays (and hole punching).
    Private {
        /// The NAT maps each destination to another port (hole punching rarely works).
        symmetric: bool,
    },
}

impl Reachability {
    /// A stable lowercase name for bindings: `unknown`, `public` or `private`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reachability::Unknown => "unknown",
            Reachability::Public => "public",
            Reachability::Private { .. } => "private",
        }
    }

    /// Whether we are behind a NAT that maps each destination to another port.
    pub fn is_symmetric(self) -> bool {
        matches!(self, Reachability::Private { symmetric: true })
    }
}

/// How wide an address reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scope {
    Loopback,
    Private,
    Global,
}

/// The scope of an address's IP (DNS names are global); `None` without an IP or DNS part.
pub(crate) fn scope_of(addr: &Multiaddr) -> Option<Scope> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(ip_scope(IpAddr::V4(ip))),
        Protocol::Ip6(ip) => Some(ip_scope(IpAddr::V6(ip))),
        Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Dnsaddr(_) => Some(Scope::Global),
        _ => None,
    })
}

fn ip_scope(ip: IpAddr) -> Scope {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Scope::Loopback,
        IpAddr::V4(v4) if v4.is_private() || v4.is_link_local() || v4.is_unspecified() || is_shared(v4) => Scope::Private,
        IpAddr::V6(v6) if v6.is_loopback() => Scope::Loopback,
        IpAddr::V6(v6) if v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80 => {
            Scope::Private
        }
        _ => Scope::Global,
    }
}

/// 100.64.0.0/10, carrier-grade NAT space.
fn is_shared(ip: std::net::Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 100 && (o[1] & 0xc0) == 64
}

/// Where a relay candidate came from; lower is preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RelayRank {
    /// Named by the app (`SwarmOptions::relays`).
    Static,
    /// One of our bootstrap nodes.
    Bootstrap,
    /// Any other peer offering the relay protocol.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reservation {
    Requested,
    Accepted,
}

/// Fixed inputs of the reachability machine.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReachConfig {
    /// The widest scope of the bootstrap addresses; `None`: no bootstrap nodes (LAN mode).
    pub bootstrap_scope: Option<Scope>,
    /// Reserve on every peer that offers a relay, whatever our reachability (peer exchange).
    pub reserve_all: bool,
    /// Never reserve automatically (relay-serving infrastructure nodes).
    pub no_relays: bool,
}

/// The reachability machine's state (inside [`State`]).
pub(super) struct Reach {
    config: ReachConfig,
    pub state: Reachability,
    /// Listen addresses confirmed by the scope rule.
    local_confirmed: HashSet<Multiaddr>,
    /// AutoNAT servers that confirmed each direct address.
    confirmations: HashMap<Multiaddr, HashSet<PeerId>>,
    /// Peers that serve AutoNAT.
    servers: HashSet<PeerId>,
    /// Observed QUIC ports of our public IPs, by observer.
    observed: HashMap<IpAddr, HashMap<u16, HashSet<PeerId>>>,
    symmetric: bool,
    /// Peers offering a relay over an outbound direct connection.
    candidates: HashMap<PeerId, RelayRank>,
    reservations: HashMap<PeerId, Reservation>,
    /// Relays whose reservation was lost once (retried once before resting).
    lost_once: HashSet<PeerId>,
    /// Relays resting after failures, until then.
    resting: HashMap<PeerId, Instant>,
    /// The first AutoNAT server was seen (the verdict clock runs).
    first_server: Option<Instant>,
    /// Unknown long enough to want relays anyway.
    unknown_timed_out: bool,
    /// Announces may go out (see the module docs).
    pub announce_ready: bool,
    reannounce_pending: bool,
}

impl Reach {
    pub fn new(config: ReachConfig) -> Self {
        let local = config.bootstrap_scope != Some(Scope::Global);
        Reach {
            state: if local { Reachability::Public } else { Reachability::Unknown },
            announce_ready: local,
            config,
            local_confirmed: HashSet::new(),
            confirmations: HashMap::new(),
            servers: HashSet::new(),
            observed: HashMap::new(),
            symmetric: false,
            candidates: HashMap::new(),
            reservations: HashMap::new(),
            lost_once: HashSet::new(),
            resting: HashMap::new(),
            first_server: None,
            unknown_timed_out: false,
            reannounce_pending: false,
        }
    }

    /// The scope up to which listen addresses are confirmed without a test.
    fn confirm_scope(&self) -> Option<Scope> {
        match self.config.bootstrap_scope {
            None => Some(Scope::Private),
            Some(Scope::Global) => None,
            Some(s) => Some(s),
        }
    }

    fn wants_relays(&self) -> bool {
        if self.config.no_relays {
            return false;
        }
        self.config.reserve_all
            || matches!(self.state, Reachability::Private { .. })
            || (self.state == Reachability::Unknown && self.unknown_timed_out)
    }

    fn has_accepted(&self) -> bool {
        self.reservations.values().any(|r| *r == Reservation::Accepted)
    }

    #[cfg(test)]
    fn accepted(&self) -> usize {
        self.reservations.values().filter(|r| **r == Reservation::Accepted).count()
    }
}

impl<H: Handles> State<H> {
    /// Our reachability.
    pub fn reachability(&self) -> Reachability {
        self.reach.state
    }

    /// Relays we hold (or asked for) a reservation on.
    pub fn relays(&self) -> Vec<PeerId> {
        self.reach.reservations.keys().copied().collect()
    }

    /// Whether we hold (or asked for) a reservation on `relay`.
    pub fn holds_relay(&self, relay: &PeerId) -> bool {
        self.reach.reservations.contains_key(relay)
    }

    /// Arms the reachability timers (call once, at start).
    pub fn start_reach(&mut self, now: Instant) {
        if !self.reach.announce_ready {
            self.schedule(now + ANNOUNCE_SETTLE, Timer::AnnounceSettle);
        }
    }

    /// A listen address appeared: confirm it if its scope allows.
    pub fn listen_addr_added(&mut self, addr: &Multiaddr, now: Instant) {
        let within = match (self.reach.confirm_scope(), scope_of(addr)) {
            (Some(max), Some(s)) => s <= max,
            _ => false,
        };
        if within && !is_circuit(addr) && self.reach.local_confirmed.insert(addr.clone()) {
            self.act(Action::ConfirmAddr(addr.clone()));
            self.addresses_changed(now);
        }
    }

    /// A listen address went away.
    pub fn listen_addr_removed(&mut self, addr: &Multiaddr, now: Instant) {
        if self.reach.local_confirmed.remove(addr) {
            self.act(Action::ExpireAddr(addr.clone()));
            self.addresses_changed(now);
        }
    }

    /// A peer serves AutoNAT: the verdict clock starts with the first.
    pub fn autonat_server(&mut self, pid: PeerId, now: Instant) {
        if !self.reach.servers.insert(pid) || self.reach.first_server.is_some() || self.reach.state != Reachability::Unknown {
            return;
        }
        self.reach.first_server = Some(now);
        self.schedule(now + RELAYS_AFTER, Timer::ReachUnknown);
        self.schedule(now + PRIVATE_AFTER, Timer::ReachSilence);
    }

    /// An AutoNAT server dialed `addr` back (`ok`), or could not.
    pub fn autonat_result(&mut self, addr: Multiaddr, server: PeerId, ok: bool, now: Instant) {
        if is_circuit(&addr) {
            return;
        }
        if !ok {
            tracing::debug!(%addr, %server, "AutoNAT: not reachable");
            if self.reach.state == Reachability::Unknown {
                self.set_reachability(Reachability::Private { symmetric: self.reach.symmetric }, now);
            }
            return;
        }
        let by = self.reach.confirmations.entry(addr.clone()).or_default();
        by.insert(server);
        let needed = self.reach.servers.len().clamp(1, 2);
        if by.len() >= needed && self.reach.state != Reachability::Public {
            tracing::debug!(%addr, "AutoNAT: reachable");
            self.set_reachability(Reachability::Public, now);
        }
    }

    /// `observer` saw us at `addr` (identify): QUIC ports that differ per observer for one IP
    /// mean an endpoint-dependent ("symmetric") NAT.
    pub fn observed_addr(&mut self, addr: &Multiaddr, observer: PeerId, now: Instant) {
        let mut ip = None;
        let mut udp = None;
        for p in addr.iter() {
            match p {
                Protocol::Ip4(v4) => ip = Some(IpAddr::V4(v4)),
                Protocol::Ip6(v6) => ip = Some(IpAddr::V6(v6)),
                Protocol::Udp(port) => udp = Some(port),
                Protocol::P2pCircuit => return,
                _ => {}
            }
        }
        let (Some(ip), Some(port)) = (ip, udp) else { return };
        if ip_scope(ip) != Scope::Global {
            return;
        }
        let ports = self.reach.observed.entry(ip).or_default();
        ports.entry(port).or_default().insert(observer);
        let observers: HashSet<&PeerId> = ports.values().flatten().collect();
        if ports.len() >= 2 && observers.len() >= 2 && !self.reach.symmetric {
            tracing::debug!(%ip, "observed ports differ per peer: symmetric NAT");
            self.reach.symmetric = true;
            if let Reachability::Private { .. } = self.reach.state {
                self.set_reachability(Reachability::Private { symmetric: true }, now);
            }
        }
    }

    /// `pid` offers a relay and we reached it directly (outbound): a candidate.
    pub fn relay_candidate(&mut self, pid: PeerId, rank: RelayRank, now: Instant) {
        let known = self.reach.candidates.entry(pid).or_insert(rank);
        *known = (*known).min(rank);
        self.choose_relays(now);
    }

    /// The relay accepted our reservation.
    pub fn reservation_accepted(&mut self, relay: PeerId, now: Instant) {
        if let Some(r) = self.reach.reservations.get_mut(&relay) {
            let first = *r == Reservation::Requested;
            *r = Reservation::Accepted;
            self.reach.lost_once.remove(&relay);
            if first {
                self.addresses_changed(now);
                self.settle_announce(now);
            }
        }
    }

    /// A reservation ended or was refused (or its connection closed). Retries the same relay
    /// once, then rests it and asks the next candidate.
    pub fn reservation_lost(&mut self, relay: PeerId, now: Instant) {
        let Some(was) = self.reach.reservations.remove(&relay) else { return };
        if was == Reservation::Accepted {
            self.addresses_changed(now);
        }
        if !self.reach.wants_relays() {
            return;
        }
        if self.reach.lost_once.insert(relay) && self.reach.candidates.contains_key(&relay) {
            self.reach.reservations.insert(relay, Reservation::Requested);
            self.act(Action::Reserve(relay));
            return;
        }
        self.reach.lost_once.remove(&relay);
        self.reach.resting.insert(relay, now + RELAY_BACKOFF);
        self.schedule(now + RELAY_BACKOFF, Timer::RelayRested);
        self.choose_relays(now);
    }

    /// The connection a candidate was reached over closed: it cannot be retried until we
    /// reach it again; ask the next candidate.
    pub fn relay_gone(&mut self, pid: PeerId, now: Instant) {
        self.reach.candidates.remove(&pid);
        if self.reach.reservations.remove(&pid) == Some(Reservation::Accepted) {
            self.addresses_changed(now);
        }
        self.choose_relays(now);
    }

    fn set_reachability(&mut self, to: Reachability, now: Instant) {
        if self.reach.state == to {
            return;
        }
        tracing::debug!(from = ?self.reach.state, ?to, "reachability");
        self.reach.state = to;
        self.notice(Notice::Reachability(to));
        if to == Reachability::Public {
            let relays: Vec<PeerId> = self.reach.reservations.drain().map(|(p, _)| p).collect();
            for relay in relays {
                self.act(Action::Release(relay));
            }
            self.addresses_changed(now);
            self.settle_announce(now);
        }
        self.choose_relays(now);
    }

    /// Reserves on the best candidates until [`DESIRED_RELAYS`] are held or asked for.
    pub(super) fn choose_relays(&mut self, now: Instant) {
        if !self.reach.wants_relays() {
            return;
        }
        self.reach.resting.retain(|_, until| *until > now);
        let want = if self.reach.config.reserve_all { usize::MAX } else { DESIRED_RELAYS };
        let mut ranked: Vec<(RelayRank, PeerId)> = self
            .reach
            .candidates
            .iter()
            .filter(|(p, _)| !self.reach.reservations.contains_key(p) && !self.reach.resting.contains_key(p))
            .map(|(p, r)| (*r, *p))
            .collect();
        ranked.sort();
        for (_, relay) in ranked {
            if self.reach.reservations.len() >= want {
                break;
            }
            self.reach.reservations.insert(relay, Reservation::Requested);
            self.act(Action::Reserve(relay));
        }
    }

    pub(super) fn on_reach_timer(&mut self, t: &Timer, now: Instant) {
        match t {
            Timer::ReachUnknown => {
                self.reach.unknown_timed_out = true;
                self.choose_relays(now);
            }
            Timer::ReachSilence => {
                if self.reach.state == Reachability::Unknown {
                    self.set_reachability(Reachability::Private { symmetric: self.reach.symmetric }, now);
                }
            }
            Timer::AnnounceSettle => {
                if self.reach.state == Reachability::Public || self.reach.has_accepted() {
                    self.settle_announce(now);
                } else if !self.reach.announce_ready {
                    self.schedule(now + ANNOUNCE_RECHECK, Timer::AnnounceSettle);
                }
            }
            Timer::RelayRested => self.choose_relays(now),
            Timer::Reannounce => {
                self.reach.reannounce_pending = false;
                self.reannounce(now);
            }
            _ => {}
        }
    }

    /// Announces may go out now (Public, a reservation, or the settle time passed).
    fn settle_announce(&mut self, now: Instant) {
        if !self.reach.announce_ready {
            self.reach.announce_ready = true;
            self.announce_deferred(now);
        }
    }

    /// What others can dial changed: re-announce server topics (debounced).
    fn addresses_changed(&mut self, now: Instant) {
        if self.reach.announce_ready && !self.reach.reannounce_pending {
            self.reach.reannounce_pending = true;
            self.schedule(now + REANNOUNCE_DEBOUNCE, Timer::Reannounce);
        }
    }

    /// How many reservations were accepted.
    #[cfg(test)]
    pub fn accepted_relays(&self) -> usize {
        self.reach.accepted()
    }
}

fn is_circuit(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyPair;
    use crate::options::JoinOptions;
    use crate::state::{Config, Session};
    use crate::topic::Topic;

    struct NoIo;

    #[derive(Clone)]
    struct NoSession;

    impl Session for NoSession {
        fn end(&self, _: crate::Error) {}
        fn found_topic(&self, _: Topic) {}
    }

    impl Handles for NoIo {
        type Session = NoSession;
        type Activate = ();
    }

    /// A state on a network whose bootstrap nodes have `scope`, listening, joined to a topic
    /// as a server.
    fn node(scope: Option<Scope>) -> (State<NoIo>, Instant) {
        let local = KeyPair::from_seed(&[9; 32]).expect("seed").public_key();
        let reach = ReachConfig { bootstrap_scope: scope, ..Default::default() };
        let mut s = State::new(Config { local, max_peers: None, seed: 1, reach });
        let t0 = Instant::now();
        s.start_reach(t0);
        s.set_listening(true, t0);
        s.join(Topic::from_name("r"), JoinOptions { server: true, client: false }, t0);
        (s, t0)
    }

    fn drain(s: &mut State<NoIo>) -> Vec<Action<NoSession>> {
        std::iter::from_fn(|| s.poll_action()).collect()
    }

    fn reserves(actions: &[Action<NoSession>]) -> Vec<PeerId> {
        actions.iter().filter_map(|a| if let Action::Reserve(p) = a { Some(*p) } else { None }).collect()
    }

    fn announces(actions: &[Action<NoSession>]) -> usize {
        actions.iter().filter(|a| matches!(a, Action::Announce { .. })).count()
    }

    fn later(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn a_natted_server_reserves_the_best_two_relays_and_announces_once_one_accepted() {
        let (mut s, t0) = node(Some(Scope::Global));
        let (boot, other, third) = (PeerId::random(), PeerId::random(), PeerId::random());
        assert_eq!(announces(&drain(&mut s)), 0, "nothing to dial yet: the announce waits");
        s.autonat_server(boot, t0);
        s.relay_candidate(third, RelayRank::Other, t0);
        s.relay_candidate(boot, RelayRank::Bootstrap, t0);
        s.relay_candidate(other, RelayRank::Other, t0);
        assert!(reserves(&drain(&mut s)).is_empty(), "no relay while reachability is unknown");
        s.autonat_result("/ip4/11.0.1.2/udp/5/quic-v1".parse().expect("addr"), boot, false, later(t0, 2));
        assert_eq!(s.reachability(), Reachability::Private { symmetric: false });
        let chosen = reserves(&drain(&mut s));
        assert_eq!(chosen.len(), DESIRED_RELAYS);
        assert_eq!(chosen[0], boot, "bootstrap nodes first");
        s.reservation_accepted(boot, later(t0, 3));
        assert_eq!(announces(&drain(&mut s)), 1, "announced as soon as a relay address exists");
        assert_eq!(s.accepted_relays(), 1);
    }

    #[test]
    fn unknown_for_five_seconds_reserves_and_silence_means_private() {
        let (mut s, t0) = node(Some(Scope::Global));
        let boot = PeerId::random();
        s.autonat_server(boot, t0);
        s.relay_candidate(boot, RelayRank::Bootstrap, t0);
        s.handle_timeout(later(t0, 4));
        assert!(reserves(&drain(&mut s)).is_empty());
        s.handle_timeout(later(t0, 5));
        assert_eq!(reserves(&drain(&mut s)), vec![boot], "reserved while still unknown");
        assert_eq!(s.reachability(), Reachability::Unknown);
        s.handle_timeout(later(t0, 20));
        assert_eq!(s.reachability(), Reachability::Private { symmetric: false }, "no AutoNAT answer: private");
    }

    #[test]
    fn no_announce_goes_out_while_nothing_is_dialable() {
        let (mut s, t0) = node(Some(Scope::Global));
        let boot = PeerId::random();
        s.handle_timeout(t0 + ANNOUNCE_SETTLE * 3);
        assert_eq!(announces(&drain(&mut s)), 0, "a record with no address only makes clients dial blind");
        s.autonat_server(boot, t0 + ANNOUNCE_SETTLE * 3);
        s.relay_candidate(boot, RelayRank::Bootstrap, t0 + ANNOUNCE_SETTLE * 3);
        s.handle_timeout(t0 + ANNOUNCE_SETTLE * 4);
        assert_eq!(reserves(&drain(&mut s)), vec![boot]);
        s.reservation_accepted(boot, t0 + ANNOUNCE_SETTLE * 4);
        assert_eq!(announces(&drain(&mut s)), 1);
    }

    #[test]
    fn a_lost_reservation_is_retried_once_then_the_next_relay_is_asked() {
        let (mut s, t0) = node(Some(Scope::Global));
        let (a, b) = (PeerId::random(), PeerId::random());
        s.autonat_server(a, t0);
        s.relay_candidate(a, RelayRank::Bootstrap, t0);
        s.relay_candidate(b, RelayRank::Other, t0);
        s.autonat_result("/ip4/11.0.1.2/tcp/5".parse().expect("addr"), a, false, t0);
        assert_eq!(reserves(&drain(&mut s)), vec![a, b]);
        s.reservation_accepted(a, t0);
        s.reservation_accepted(b, t0);
        drain(&mut s);
        s.reservation_lost(a, later(t0, 60));
        assert_eq!(reserves(&drain(&mut s)), vec![a], "the same relay once more");
        s.reservation_lost(a, later(t0, 61));
        assert!(reserves(&drain(&mut s)).is_empty(), "a rests; b is held; no third candidate");
        assert_eq!(s.relays(), vec![b]);
        let c = PeerId::random();
        s.relay_candidate(c, RelayRank::Other, later(t0, 62));
        assert_eq!(reserves(&drain(&mut s)), vec![c], "a new candidate replaces the lost one");
        // a's rest ends after RELAY_BACKOFF; it is a candidate again when one is needed.
        s.relay_gone(c, later(t0, 63));
        assert!(reserves(&drain(&mut s)).is_empty());
        s.handle_timeout(later(t0, 61) + RELAY_BACKOFF);
        assert_eq!(reserves(&drain(&mut s)), vec![a]);
    }

    #[test]
    fn becoming_public_releases_every_relay() {
        let (mut s, t0) = node(Some(Scope::Global));
        let (a, b) = (PeerId::random(), PeerId::random());
        for p in [a, b] {
            s.autonat_server(p, t0);
            s.relay_candidate(p, RelayRank::Other, t0);
        }
        s.handle_timeout(later(t0, 5));
        assert_eq!(reserves(&drain(&mut s)).len(), 2);
        let addr: Multiaddr = "/ip4/11.0.9.20/udp/7/quic-v1".parse().expect("addr");
        s.autonat_result(addr.clone(), a, true, later(t0, 6));
        assert_eq!(s.reachability(), Reachability::Unknown, "two servers known: one confirmation is not enough");
        s.autonat_result(addr, b, true, later(t0, 7));
        assert_eq!(s.reachability(), Reachability::Public);
        let released = drain(&mut s).into_iter().filter(|a| matches!(a, Action::Release(_))).count();
        assert_eq!(released, 2);
        assert!(s.relays().is_empty());
    }

    #[test]
    fn local_networks_confirm_listen_addresses_within_the_bootstraps_scope() {
        let (mut s, t0) = node(Some(Scope::Loopback));
        assert_eq!(s.reachability(), Reachability::Public);
        assert_eq!(announces(&drain(&mut s)), 1, "a testnet announces at once");
        s.listen_addr_added(&"/ip4/127.0.0.1/udp/1/quic-v1".parse().expect("addr"), t0);
        s.listen_addr_added(&"/ip4/192.168.1.2/udp/1/quic-v1".parse().expect("addr"), t0);
        let confirmed: Vec<String> =
            drain(&mut s).iter().filter_map(|a| if let Action::ConfirmAddr(x) = a { Some(x.to_string()) } else { None }).collect();
        assert_eq!(confirmed, vec!["/ip4/127.0.0.1/udp/1/quic-v1".to_string()]);
        let (mut g, t0) = node(Some(Scope::Global));
        g.listen_addr_added(&"/ip4/192.168.1.2/udp/1/quic-v1".parse().expect("addr"), t0);
        assert!(!drain(&mut g).iter().any(|a| matches!(a, Action::ConfirmAddr(_))), "no private address on a global network");
    }

    #[test]
    fn ports_that_differ_per_observer_mean_a_symmetric_nat() {
        let (mut s, t0) = node(Some(Scope::Global));
        let (x, y) = (PeerId::random(), PeerId::random());
        s.autonat_server(x, t0);
        s.observed_addr(&"/ip4/11.0.1.2/udp/4000/quic-v1".parse().expect("addr"), x, t0);
        s.observed_addr(&"/ip4/11.0.1.2/udp/4000/quic-v1".parse().expect("addr"), y, t0);
        s.handle_timeout(later(t0, 20));
        assert_eq!(s.reachability(), Reachability::Private { symmetric: false }, "one port for everyone");
        s.observed_addr(&"/ip4/11.0.1.2/udp/4711/quic-v1".parse().expect("addr"), y, later(t0, 21));
        assert_eq!(s.reachability(), Reachability::Private { symmetric: true });
    }

    #[test]
    fn scopes() {
        let s = |a: &str| scope_of(&a.parse().expect("addr"));
        assert_eq!(s("/ip4/127.0.0.1/udp/1/quic-v1"), Some(Scope::Loopback));
        assert_eq!(s("/ip4/192.168.1.2/tcp/1"), Some(Scope::Private));
        assert_eq!(s("/ip4/100.64.3.4/tcp/1"), Some(Scope::Private));
        assert_eq!(s("/ip4/11.0.9.11/tcp/1"), Some(Scope::Global));
        assert_eq!(s("/ip6/fd00::1/tcp/1"), Some(Scope::Private));
        assert_eq!(s("/ip6/2a0a::1/tcp/1"), Some(Scope::Global));
        assert_eq!(s("/dnsaddr/bootstrap.example"), Some(Scope::Global));
    }
}
