//! Relays, driver side: our reservations on other peers' relays (when `reserve_relays` is on),
//! peers holding reservations with us, `connect` to relayed addresses, and the relay fallback
//! for peers introduced by peer exchange.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::DialError;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId};

use super::Engine;
use crate::addr::{circuit_via, relay_of, strip_p2p};
use crate::error::Error;
use crate::msg::ConnectReply;
use crate::session::Connection;
use crate::state::RelayRank;
use crate::state::timers::Timers;

/// How long `connect` waits for the relay reservation on the new peer to settle.
pub(crate) const RELAY_SETTLE_WAIT: Duration = Duration::from_secs(5);
/// The head start a direct dial to an introduced peer gets before we also dial through the relay.
pub(crate) const DIRECT_HEAD_START: Duration = Duration::from_secs(1);

/// Timers of the driver's own bookkeeping.
pub(crate) enum DriverTimer {
    /// Answer `connect` callers even if the relay reservation on the peer never settled.
    RelaySettle(PeerId),
    /// The direct dial to an introduced peer had its head start: dial through the relay too.
    RelayFallback(PeerId),
}

/// The driver's relay bookkeeping. Which relays to reserve on is the state's choice
/// (`state::reach`); this keeps the listeners and the `connect` callers waiting on them.
pub(super) struct Relays {
    /// Peer exchange: `connect` callers wait for our reservation on the new peer to settle.
    reserve: bool,
    /// Our bootstrap nodes (preferred relays).
    bootstrap: HashSet<PeerId>,
    /// The app's relays (`SwarmOptions::relays`, preferred over bootstrap nodes).
    statics: HashSet<PeerId>,
    /// Our relay reservations (listener → relay).
    reservations: HashMap<ListenerId, PeerId>,
    /// Relays whose reservation settled (accepted, refused, or not offered).
    settled: HashSet<PeerId>,
    /// Peers holding a relay reservation with us.
    pub reserved_here: HashSet<PeerId>,
    /// `connect` callers waiting, once their session is up, for our reservation on that peer.
    settle_waiters: HashMap<PeerId, Vec<(ConnectReply, Connection)>>,
    /// `connect` calls to relayed addresses waiting for a connection to their relay.
    circuit_dials: HashMap<PeerId, Vec<(Multiaddr, ConnectReply)>>,
    /// Introduced peers being dialed directly first: the relay address to fall back on.
    fallback: HashMap<PeerId, Multiaddr>,
    timers: Timers<DriverTimer>,
}

impl Relays {
    pub fn new(reserve: bool, bootstrap: HashSet<PeerId>, statics: HashSet<PeerId>) -> Self {
        Relays {
            reserve,
            bootstrap,
            statics,
            reservations: HashMap::new(),
            settled: HashSet::new(),
            reserved_here: HashSet::new(),
            settle_waiters: HashMap::new(),
            circuit_dials: HashMap::new(),
            fallback: HashMap::new(),
            timers: Timers::default(),
        }
    }

    /// When the next driver timer is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Whether `connect` calls wait for a connection to `relay`.
    pub fn has_circuit_dials(&self, relay: &PeerId) -> bool {
        self.circuit_dials.contains_key(relay)
    }

    /// Whether `pid` has a relay address to fall back on.
    pub fn has_fallback(&self, pid: &PeerId) -> bool {
        self.fallback.contains_key(pid)
    }
}

impl Engine {
    /// `connect`: dials an address and starts a session with whoever answers.
    pub(super) fn connect(&mut self, addr: Multiaddr, reply: ConnectReply) {
        // A relayed address: libp2p's relay client cannot dial it while the relay itself is
        // still being dialed, so connect to the relay first and dial the circuit then.
        if let Some(relay) = relay_of(&addr).filter(|r| self.state.direct_addr(r).is_none()) {
            let mut base = addr.clone();
            while base.iter().any(|p| p == Protocol::P2pCircuit) {
                base.pop();
            }
            let opts = DialOpts::peer_id(relay).addresses(vec![strip_p2p(base)]).extend_addresses_through_behaviour().build();
            match self.swarm.dial(opts) {
                Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {
                    self.relays.circuit_dials.entry(relay).or_default().push((addr, reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::Connect(format!("relay: {e}"))));
                }
            }
            return;
        }
        let opts = DialOpts::unknown_peer_id().address(addr).build();
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.addr_dials.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(Error::Connect(e.to_string())));
            }
        }
    }

    /// A direct connection to `relay` is up: dial the circuits waiting for it.
    pub(super) fn dial_waiting_circuits(&mut self, relay: PeerId) {
        for (circuit, reply) in self.relays.circuit_dials.remove(&relay).unwrap_or_default() {
            self.connect(circuit, reply);
        }
    }

    /// Dialing `relay` failed: fail the circuits waiting for it.
    pub(super) fn fail_waiting_circuits(&mut self, relay: PeerId, error: &DialError) {
        for (_, reply) in self.relays.circuit_dials.remove(&relay).unwrap_or_default() {
            let _ = reply.send(Err(Error::Connect(format!("relay: {error}"))));
        }
    }

    /// Answers a `connect` caller once our relay reservation on `pid` settled (so peers that
    /// ask `pid` for a new peer right after can be offered us), or at once if we reserve none.
    pub(super) fn reply_when_settled(&mut self, pid: PeerId, reply: ConnectReply, connection: Connection) {
        if !self.relays.reserve || self.relays.settled.contains(&pid) {
            let _ = reply.send(Ok(connection));
            return;
        }
        let list = self.relays.settle_waiters.entry(pid).or_default();
        if list.is_empty() {
            self.relays.timers.schedule(Instant::now() + RELAY_SETTLE_WAIT, DriverTimer::RelaySettle(pid));
        }
        list.push((reply, connection));
    }

    fn relay_settled(&mut self, pid: PeerId) {
        self.relays.settled.insert(pid);
        self.answer_settle_waiters(pid);
    }

    /// Answers the `connect` callers waiting on `pid`'s reservation, settled or not.
    fn answer_settle_waiters(&mut self, pid: PeerId) {
        for (w, c) in self.relays.settle_waiters.remove(&pid).unwrap_or_default() {
            let _ = w.send(Ok(c));
        }
    }

    /// Identify told us whether `pid` offers a relay: a candidate for the state's relay choice
    /// if we reached it directly (outbound).
    pub(super) fn on_relay_offer(&mut self, pid: PeerId, offers_relay: bool) {
        if offers_relay && self.state.dialed_addr(&pid).is_some() {
            let rank = if self.relays.statics.contains(&pid) {
                RelayRank::Static
            } else if self.relays.bootstrap.contains(&pid) {
                RelayRank::Bootstrap
            } else {
                RelayRank::Other
            };
            self.state.relay_candidate(pid, rank, Instant::now());
        }
        if !self.state.holds_relay(&pid) {
            self.relay_settled(pid); // no reservation coming: `connect` callers need not wait
        }
    }

    /// Reserves a slot on `relay`, over our outbound direct connection to it.
    pub(super) fn reserve_on(&mut self, relay: PeerId) {
        if self.relays.reservations.values().any(|r| *r == relay) {
            return;
        }
        let Some(addr) = self.state.dialed_addr(&relay) else {
            self.state.reservation_lost(relay, Instant::now());
            return self.relay_settled(relay);
        };
        let circuit = circuit_via(addr, relay);
        match self.swarm.listen_on(circuit.clone()) {
            Ok(id) => {
                tracing::debug!(%circuit, "reserving a relay slot");
                self.relays.settled.remove(&relay);
                self.relays.reservations.insert(id, relay);
            }
            Err(e) => {
                tracing::debug!(%circuit, "cannot reserve: {e}");
                self.state.reservation_lost(relay, Instant::now());
                self.relay_settled(relay);
            }
        }
    }

    /// Gives up our reservation on `relay`.
    pub(super) fn release(&mut self, relay: PeerId) {
        let ids: Vec<ListenerId> = self.relays.reservations.iter().filter(|(_, r)| **r == relay).map(|(id, _)| *id).collect();
        for id in ids {
            self.relays.reservations.remove(&id);
            self.swarm.remove_listener(id);
        }
    }

    /// The relay accepted (or renewed) our reservation.
    pub(super) fn on_reservation_accepted(&mut self, relay: PeerId) {
        self.state.reservation_accepted(relay, Instant::now());
        self.relay_settled(relay);
    }

    /// A listener closed: if it was a relay reservation, it ended.
    pub(super) fn on_reservation_closed(&mut self, listener: ListenerId) {
        if let Some(relay) = self.relays.reservations.remove(&listener) {
            tracing::debug!(%relay, "relay reservation ended");
            self.relays.settled.remove(&relay);
            self.answer_settle_waiters(relay);
            self.state.reservation_lost(relay, Instant::now());
        }
    }

    /// Dial `pid` directly at `direct` first; fall back to `circuit` after a head start or as soon
    /// as the direct dial fails; use the circuit at once when there is nothing direct.
    pub(super) fn plan_dial(&mut self, pid: PeerId, direct: &[Multiaddr], circuit: Option<Multiaddr>) {
        for a in direct.iter().rev() {
            self.swarm.behaviour_mut().substreams.add_address(pid, a.clone());
        }
        match circuit {
            Some(c) if direct.is_empty() => self.swarm.behaviour_mut().substreams.add_address(pid, c),
            Some(c) => {
                self.relays.fallback.insert(pid, c);
                self.relays.timers.schedule(Instant::now() + DIRECT_HEAD_START, DriverTimer::RelayFallback(pid));
            }
            None => {}
        }
    }

    /// Dials an introduced peer through the relay that introduced it (once).
    pub(super) fn dial_relay(&mut self, pid: PeerId) {
        let Some(addr) = self.relays.fallback.remove(&pid) else { return };
        if !self.state.is_dialing(&pid) {
            return;
        }
        tracing::debug!(%addr, "dialing through the relay");
        let opts = DialOpts::peer_id(pid).addresses(vec![addr]).condition(PeerCondition::Always).build();
        if let Err(e) = self.swarm.dial(opts) {
            self.state.dial_failed(pid, Error::Connect(e.to_string()), Instant::now());
        }
    }

    pub(super) fn on_driver_timers(&mut self, now: Instant) {
        while let Some(t) = self.relays.timers.pop_due(now) {
            match t {
                DriverTimer::RelaySettle(pid) => self.answer_settle_waiters(pid),
                DriverTimer::RelayFallback(pid) => {
                    if !self.state.connected_to(&pid) {
                        self.dial_relay(pid);
                    }
                    self.relays.fallback.remove(&pid);
                }
            }
        }
    }
}
