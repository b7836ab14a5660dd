//! Transport connections: which libp2p connections a peer has, when a session starts on one
//! (at once on a direct one, after hole punching had its chance on a relayed one), and what a
//! closed one ends.

use std::time::Instant;

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

use super::dedup::{self, Role};
use super::peers::ConnInfo;
use super::{Action, ConnFacts, HOLE_PUNCH_WAIT, Handles, State, Timer};
use crate::error::Error;
use crate::keys::PublicKey;

impl<H: Handles> State<H> {
    // ---- transport connections ---------------------------------------------------------------

    /// libp2p established a connection: start the handshake if we are dialing the peer (on a
    /// relayed connection only after giving hole punching [`HOLE_PUNCH_WAIT`]).
    pub fn connection_established(&mut self, pid: PeerId, conn: ConnectionId, facts: ConnFacts, now: Instant) {
        let relayed = facts.relayed;
        self.conns.insert(conn, ConnInfo { peer: pid, facts, handshaking: false });
        if relayed && self.drop_second_circuit(pid) == Some(conn) {
            return;
        }
        if self.is_dialing(&pid) {
            if relayed {
                self.schedule(now + HOLE_PUNCH_WAIT, Timer::HolePunch(pid, conn));
            } else {
                self.initiate(pid, conn);
            }
        }
    }

    /// DCUtR gave up on a direct connection to `pid`: start the session on the relayed
    /// connection now instead of waiting out [`HOLE_PUNCH_WAIT`].
    pub fn punch_failed(&mut self, pid: PeerId) {
        let relayed: Vec<ConnectionId> =
            self.conns.iter().filter(|(_, c)| c.peer == pid && c.facts.relayed).map(|(id, _)| *id).collect();
        for conn in relayed {
            self.on_hole_punch_wait(pid, conn);
        }
    }

    /// Two peers that dial each other through relays at once get two relayed connections, and
    /// DCUtR then punches on both at once, which often fails both. Keep one: the one the
    /// leader dialed (both sides decide alike), unless a session or handshake already runs on
    /// the other. Returns the connection closed, if any.
    fn drop_second_circuit(&mut self, pid: PeerId) -> Option<ConnectionId> {
        let key = self.peers.get(&pid).map(|p| p.key).or_else(|| PublicKey::from_peer_id(&pid))?;
        let we_lead = dedup::role(&self.local, &key) == Role::Leader;
        let circuits: Vec<(ConnectionId, bool, bool)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.peer == pid && c.facts.relayed)
            .map(|(id, c)| (*id, c.facts.dialer == we_lead, c.handshaking))
            .collect();
        if circuits.len() < 2 {
            return None;
        }
        // Prefer one in use, then the leader's, then the older (lower id).
        let keep = circuits.iter().max_by_key(|(id, by_leader, busy)| (*busy, *by_leader, std::cmp::Reverse(*id)))?.0;
        let drop = circuits.iter().map(|(id, _, _)| *id).find(|id| *id != keep)?;
        tracing::debug!(?drop, ?keep, "a second relayed connection to the peer: closing it");
        self.conns.remove(&drop);
        self.act(Action::CloseConnection(drop));
        Some(drop)
    }

    pub(super) fn on_hole_punch_wait(&mut self, pid: PeerId, conn: ConnectionId) {
        let busy = self.conns.values().any(|c| c.peer == pid && c.handshaking);
        if self.is_dialing(&pid) && !busy && self.conns.contains_key(&conn) {
            tracing::debug!(?conn, "no direct connection came: starting the session relayed");
            self.initiate(pid, conn);
        }
    }

    /// libp2p closed a connection (`cause` for the session's end reason).
    pub fn connection_closed(&mut self, pid: PeerId, conn: ConnectionId, cause: Option<String>, now: Instant) {
        let removed = self.conns.remove(&conn);
        let Some(p) = self.peers.get_mut(&pid) else { return };
        p.leading.remove(&conn);
        p.following.remove(&conn);
        if p.session.as_ref().is_some_and(|s| s.conn == conn) {
            let why = cause.unwrap_or_else(|| "connection closed".into());
            // Without a goodbye on the control stream, a relayed connection ends because the
            // relay closed the circuit: its limits (kubo's: 128 KiB / 2 min), or it went away.
            let reason = if removed.is_some_and(|c| c.facts.relayed) {
                Error::RelayLimit(format!("the relay closed the circuit ({why})"))
            } else {
                Error::Reset(why)
            };
            self.end_session(pid, reason, false, now);
        } else if p.dialing && p.session.is_none() && p.leading.is_empty() && p.following.is_empty() && !self.connected_to(&pid) {
            self.failed(pid, Error::Connect("connection closed before the session started".into()), now);
        }
    }
}
