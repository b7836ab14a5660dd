//! Withdrawing announces, driver side (see [`crate::unannounce`]): when the state stops
//! announcing a topic, find the DHT nodes closest to its key and ask each to drop our record;
//! `leave` callers wait until every node answered or failed. DHT servers answer such requests
//! for the peer that asks. An announce still in flight would store the record again after the
//! withdrawal, so a withdrawal starts once the topic's announces in flight have finished.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::kad::{self, QueryId, RecordKey};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::PeerId;
use tokio::sync::oneshot;

use super::Engine;
use crate::topic::Topic;

/// How long `destroy` waits at most for its announces to be withdrawn.
pub(crate) const WITHDRAW_ON_DESTROY: Duration = Duration::from_secs(2);

/// Withdrawals in flight.
#[derive(Default)]
pub(super) struct Withdrawals {
    /// The closest-peers query of each withdrawal.
    queries: HashMap<QueryId, Topic>,
    /// Each unannounce request sent, by the topic it withdraws.
    requests: HashMap<OutboundRequestId, Topic>,
    /// Announce queries in flight, by topic.
    announcing: HashMap<QueryId, Topic>,
    /// Per topic: queries and requests still open, and the `leave` callers waiting.
    pending: HashMap<Topic, Pending>,
}

#[derive(Default)]
struct Pending {
    open: usize,
    /// The closest-peers query waits for announces in flight to finish.
    deferred: bool,
    waiters: Vec<oneshot::Sender<()>>,
}

impl Withdrawals {
    /// No withdrawal is in flight.
    pub(super) fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether `id` is one of our closest-peers queries.
    pub(super) fn owns_query(&self, id: &QueryId) -> bool {
        self.queries.contains_key(id)
    }

    /// One query or request of `topic`'s withdrawal ended; answers its waiters after the last.
    fn one_done(&mut self, topic: Topic) {
        let Some(p) = self.pending.get_mut(&topic) else { return };
        p.open = p.open.saturating_sub(1);
        if p.open == 0 {
            for w in self.pending.remove(&topic).map(|p| p.waiters).unwrap_or_default() {
                let _ = w.send(());
            }
        }
    }
}

impl Engine {
    /// Stops announcing `topic` here and starts withdrawing its record from the DHT (once its
    /// announces in flight finished).
    pub(super) fn withdraw(&mut self, topic: Topic) {
        self.swarm.behaviour_mut().kad.stop_providing(&topic.dht_key());
        let in_flight = self.withdrawals.announcing.values().any(|t| *t == topic);
        let p = self.withdrawals.pending.entry(topic).or_default();
        p.open += 1;
        if in_flight {
            p.deferred = true;
        } else {
            self.find_holders(topic);
        }
    }

    fn find_holders(&mut self, topic: Topic) {
        let id = self.swarm.behaviour_mut().kad.get_closest_peers(topic.dht_key().to_vec());
        self.withdrawals.queries.insert(id, topic);
    }

    /// An announce query of `topic` started.
    pub(super) fn announcing(&mut self, id: QueryId, topic: Topic) {
        self.withdrawals.announcing.insert(id, topic);
    }

    /// An announce query finished: a withdrawal that waited for it goes on.
    pub(super) fn announce_finished(&mut self, id: &QueryId) {
        let Some(topic) = self.withdrawals.announcing.remove(id) else { return };
        if self.withdrawals.announcing.values().any(|t| *t == topic) {
            return;
        }
        if let Some(p) = self.withdrawals.pending.get_mut(&topic).filter(|p| p.deferred) {
            p.deferred = false;
            self.find_holders(topic);
        }
    }

    /// Answers `reply` once `topic`'s withdrawal (if one runs) is over.
    pub(super) fn when_withdrawn(&mut self, topic: Topic, reply: oneshot::Sender<()>) {
        match self.withdrawals.pending.get_mut(&topic) {
            Some(p) => p.waiters.push(reply),
            None => drop(reply.send(())),
        }
    }

    /// A closest-peers query of a withdrawal progressed: ask every node it found.
    pub(super) fn on_withdraw_query(&mut self, id: QueryId, result: kad::GetClosestPeersResult, last: bool) {
        let Some(&topic) = self.withdrawals.queries.get(&id) else { return };
        let peers = match result {
            Ok(ok) => ok.peers,
            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
        };
        let key = topic.dht_key().to_vec();
        for info in peers {
            for addr in info.addrs {
                self.swarm.add_peer_address(info.peer_id, addr);
            }
            let req = self.swarm.behaviour_mut().unannounce.send_request(&info.peer_id, key.clone());
            self.withdrawals.requests.insert(req, topic);
            if let Some(p) = self.withdrawals.pending.get_mut(&topic) {
                p.open += 1;
            }
        }
        if last {
            self.withdrawals.queries.remove(&id);
            self.withdrawals.one_done(topic);
        }
    }

    pub(super) fn on_unannounce(&mut self, event: request_response::Event<Vec<u8>, bool>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => self.serve_unannounce(peer, request, channel),
                request_response::Message::Response { request_id, response } => {
                    tracing::debug!(%peer, removed = response, "unannounced");
                    self.request_done(request_id);
                }
            },
            request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                tracing::debug!(%peer, "unannounce: {error}");
                self.request_done(request_id);
            }
            request_response::Event::InboundFailure { .. } | request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn request_done(&mut self, id: OutboundRequestId) {
        if let Some(topic) = self.withdrawals.requests.remove(&id) {
            self.withdrawals.one_done(topic);
        }
    }

    /// `peer` asks us to drop its provider record for `key` (DHT servers hold such records).
    fn serve_unannounce(&mut self, peer: PeerId, key: Vec<u8>, channel: request_response::ResponseChannel<bool>) {
        use kad::store::RecordStore;
        let key = RecordKey::new(&key);
        let store = self.swarm.behaviour_mut().kad.store_mut();
        let held = store.providers(&key).iter().any(|r| r.provider == peer);
        store.remove_provider(&key, &peer);
        let _ = self.swarm.behaviour_mut().unannounce.send_response(channel, held);
    }
}
