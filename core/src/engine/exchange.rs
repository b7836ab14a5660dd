//! Peer exchange, driver side: `get_new_peer` asks a connected peer for another one and dials
//! the offer; requests from other peers are rate-limited and answered from the state's peers.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::multiaddr::Protocol;
use rand::Rng;
use tokio::sync::oneshot;

use super::Engine;
use crate::addr::{circuit_via, is_relayed};
use crate::error::{Error, Result};
use crate::exchange::{self, Candidate, Request};
use crate::keys::PublicKey;
use crate::msg::ConnectReply;
use crate::tasks;

/// Peer-exchange requests one peer may make per minute.
pub(crate) const EXCHANGE_PER_MINUTE: u32 = 60;

/// Requests served per peer in the current minute, against a per-minute limit (peer exchange
/// and topic exchange each have one).
pub(super) struct RateLimit {
    per_minute: u32,
    served: HashMap<PeerId, (Instant, u32)>,
}

impl RateLimit {
    /// A limit of `per_minute` requests per peer.
    pub(super) fn new(per_minute: u32) -> Self {
        RateLimit { per_minute, served: HashMap::new() }
    }

    /// Counts a request from `pid`; `false` once it made `per_minute` this minute.
    pub(super) fn admit(&mut self, pid: PeerId, now: Instant) -> bool {
        let served = self.served.entry(pid).or_insert((now, 0));
        if now.duration_since(served.0) >= Duration::from_secs(60) {
            *served = (now, 0);
        }
        if served.1 >= self.per_minute {
            return false;
        }
        served.1 += 1;
        true
    }
}

impl Engine {
    /// `get_new_peer`: asks `via` (or a random connected peer) for another peer.
    pub(super) fn ask_for_peer(&mut self, via: Option<PublicKey>, reply: ConnectReply) {
        let sessions: Vec<_> = self.state.sessions().map(|(pid, conn, key, _)| (pid, conn, key)).collect();
        let chosen = match via {
            Some(k) => sessions.iter().find(|(_, _, key)| *key == k).copied(),
            None if sessions.is_empty() => None,
            None => Some(sessions[rand::thread_rng().gen_range(0..sessions.len())]),
        };
        let Some((via, conn, via_key)) = chosen else {
            let why = match via {
                Some(k) => format!("not connected to {k:?}"),
                None => "not connected to any peers".into(),
            };
            let _ = reply.send(Err(Error::Connect(why)));
            return;
        };
        let mut exclude = vec![self.local];
        exclude.extend(sessions.iter().map(|(_, _, k)| *k).filter(|k| *k != via_key));
        let (link, report) = (self.ctx.link.clone(), self.ctx.report.clone());
        tokio::spawn(tasks::exchange::ask(link, report, via, conn, Request { exclude }, reply));
    }

    /// The asked peer offered `answer`: connect to it, through `via`'s relay if it holds a
    /// reservation there, and directly at the addresses `via` knows.
    pub(super) fn on_exchange_answer(&mut self, via: PeerId, result: Result<exchange::Answer>, reply: ConnectReply) {
        let offer = match result {
            Err(e) => return drop(reply.send(Err(e))),
            Ok(None) => {
                let who = PublicKey::from_peer_id(&via).map(|k| format!("{k:?}")).unwrap_or_default();
                return drop(reply.send(Err(Error::Connect(format!("{who} has no other peer to offer")))));
            }
            Ok(Some(o)) if o.key == self.local => {
                return drop(reply.send(Err(Error::Connect("offered ourselves".into()))));
            }
            Ok(Some(o)) => o,
        };
        let pid = offer.key.to_peer_id();
        if let Some(s) = self.state.session(&pid) {
            let _ = reply.send(Ok(s.clone()));
            return;
        }
        let direct: Vec<_> = offer.addrs.into_iter().filter(|a| !is_relayed(a)).collect();
        let circuit = self.state.direct_addr(&via).filter(|_| offer.relayed).map(|base| circuit_via(base, via).with(Protocol::P2p(pid)));
        self.plan_dial(pid, &direct, circuit);
        self.dial_waiters.entry(pid).or_default().push(reply);
        if let Err(why) = self.state.dial_offer(offer.key) {
            for w in self.dial_waiters.remove(&pid).unwrap_or_default() {
                let _ = w.send(Err(why.clone()));
            }
        }
    }

    /// Serves a peer-exchange request from `pid` (rate-limited per peer).
    pub(super) fn serve_exchange(&mut self, pid: PeerId, key: PublicKey, stream: libp2p::Stream) {
        if !self.exchange.admit(pid, Instant::now()) {
            tracing::debug!(remote = ?key, "peer-exchange request refused: rate limit");
            return; // dropping the stream resets it: the asker gets an error
        }
        tokio::spawn(tasks::exchange::serve(self.ctx.report.clone(), pid, key, stream));
    }

    /// The peer to offer `asker`: one we have a session with (or a direct connection whose
    /// session handshake is under way), not in `exclude`, preferring peers that hold a relay
    /// reservation with us.
    pub(super) fn choose_offer(&self, asker: PeerId, exclude: &HashSet<PublicKey>, reply: oneshot::Sender<exchange::Answer>) {
        let candidates: Vec<Candidate> = self
            .state
            .offerable(&asker)
            .into_iter()
            .map(|(id, key)| Candidate {
                key,
                reserved: self.relays.reserved_here.contains(&id),
                addrs: self.swarm.behaviour().substreams.addresses(&id).into_iter().filter(|a| !is_relayed(a)).collect(),
            })
            .collect();
        let _ = reply.send(exchange::choose(&candidates, exclude, rand::thread_rng().r#gen()));
    }
}
