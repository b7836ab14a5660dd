//! Topic peer exchange, state side. A DHT node keeps a bounded number of provider records per
//! key, so on a busy topic a lookup cannot return every member. Connected members therefore tell
//! each other which other members they know (`crate::topic_exchange` is the wire format, the
//! driver runs it): here is who counts as a member of a topic, and what to do with members heard.

use libp2p::PeerId;
use rand::seq::SliceRandom;

use super::{Handles, State};
use crate::keys::PublicKey;
use crate::topic::Topic;

impl<H: Handles> State<H> {
    /// The topics we look up as a client (not hidden `join_peer` lookups), each with whether we
    /// serve it too: what we ask about.
    pub fn client_topics(&self) -> Vec<(Topic, bool)> {
        self.topics().into_iter().filter(|(_, o)| o.client).map(|(t, o)| (t, o.server)).collect()
    }

    /// `pid` proved it serves `topics` (it named them by their per-session tags).
    pub fn member_proved(&mut self, pid: PeerId, topics: &[Topic]) {
        let Some(p) = self.peers.get_mut(&pid) else { return };
        for t in topics {
            if !p.proved.contains(t) {
                p.proved.push(*t);
            }
        }
    }

    /// Up to `max` peers we hold a session with that serve `topic` (a lookup found them under
    /// it, or they proved it), other than `asker`, chosen at random when there are more (so
    /// askers learn different members). Clients only are not named: clients of a topic do not
    /// dial each other.
    pub fn topic_members(&mut self, topic: &Topic, asker: &PeerId, max: usize) -> Vec<(PeerId, PublicKey)> {
        let mut all: Vec<(PeerId, PublicKey)> = self
            .peers
            .iter()
            .filter(|(id, p)| *id != asker && p.session.is_some() && !p.banned)
            .filter(|(_, p)| p.topics.contains(topic) || p.proved.contains(topic))
            .map(|(id, p)| (*id, p.key))
            .collect();
        all.sort_by_key(|(id, _)| *id); // HashMap order would make the choice depend on it
        all.shuffle(&mut self.rng);
        all.truncate(max);
        all
    }

    /// A member of `topic` told us about these members: dial them as if a lookup found them
    /// (if we are still a client of the topic).
    pub fn members_heard(&mut self, topic: Topic, members: Vec<PeerId>) {
        if !self.status(&topic).is_some_and(|o| o.client) {
            return;
        }
        for pid in members {
            if pid != self.local_peer {
                self.found(topic, pid, false);
            }
        }
        self.update();
    }
}
