//! Topic peer exchange, driver side (see [`crate::topic_exchange`] and `state::members`): ask
//! members about our topics when a session starts and at every lookup of a topic; answer such
//! requests, rate-limited per peer.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;
use tokio::sync::oneshot;

use super::Engine;
use crate::addr::is_relayed;
use crate::topic::Topic;
use crate::topic_exchange::{self, MAX_ADDRS, MAX_MEMBERS, Member};
use crate::tasks;

/// Topic-exchange requests one peer may make per minute (a round of each joined topic asks
/// every member once, rounds run at 0, 1, 3, 6, 10 and 30 s after a join, then every 10 min).
pub(crate) const TOPIC_ASKS_PER_MINUTE: u32 = 120;

impl Engine {
    /// Asks our session with `only` (or every session) which members of `topics` it knows.
    pub(super) fn ask_members(&mut self, only: Option<PeerId>, topics: Vec<(Topic, bool)>) {
        if topics.is_empty() {
            return;
        }
        let sessions: Vec<_> = self
            .state
            .sessions()
            .filter(|(pid, ..)| only.is_none_or(|o| o == *pid))
            .map(|(pid, conn, _, s)| (pid, conn, s.handshake_hash()))
            .collect();
        for (pid, conn, hash) in sessions {
            let (link, report) = (self.ctx.link.clone(), self.ctx.report.clone());
            tokio::spawn(tasks::topic_exchange::ask(link, report, pid, conn, topics.clone(), hash));
        }
    }

    /// Serves a request from `asker` on its session (rate-limited per peer).
    pub(super) fn serve_members(&mut self, asker: PeerId, stream: libp2p::Stream) {
        if !self.topic_asks.admit(asker, Instant::now()) {
            tracing::debug!(%asker, "topic exchange request refused: rate limit");
            return; // dropping the stream resets it
        }
        tokio::spawn(tasks::topic_exchange::serve(self.ctx.report.clone(), asker, stream));
    }

    /// `asker` named `tags`: the ones that match a topic we joined prove it joined that topic
    /// too (as a server, if it says so); answer with the servers of those topics we know (and
    /// nothing about the others).
    pub(super) fn answer_members(&mut self, asker: PeerId, tags: Vec<topic_exchange::Named>, reply: oneshot::Sender<Vec<Member>>) {
        let Some(hash) = self.state.session(&asker).map(|s| s.handshake_hash()) else {
            return drop(reply.send(Vec::new()));
        };
        let joined: Vec<Topic> = self.state.topics().into_iter().map(|(t, _)| t).collect();
        let mut proved = Vec::new();
        let mut members = Vec::new();
        for (index, (tag, serves)) in tags.iter().enumerate() {
            let Some(topic) = joined.iter().find(|t| topic_exchange::tag(&hash, t) == *tag) else { continue };
            if *serves {
                proved.push(*topic);
            }
            for (pid, key) in self.state.topic_members(topic, &asker, MAX_MEMBERS - members.len()) {
                let mut addrs = self.swarm.behaviour().substreams.addresses(&pid);
                addrs.sort_by_key(is_relayed); // direct addresses first
                addrs.truncate(MAX_ADDRS);
                members.push(Member { index: index as u8, key, addrs });
            }
        }
        self.state.member_proved(asker, &proved);
        let _ = reply.send(members);
    }

    /// `from` named these members of our topics: keep their addresses and dial them as a
    /// lookup would.
    pub(super) fn on_members(&mut self, from: PeerId, members: Vec<(Topic, Member)>) {
        let mut by_topic: HashMap<Topic, Vec<PeerId>> = HashMap::new();
        for (topic, m) in members {
            let pid = m.key.to_peer_id();
            for addr in m.addrs {
                self.swarm.behaviour_mut().substreams.add_address(pid, addr);
            }
            by_topic.entry(topic).or_default().push(pid);
        }
        tracing::debug!(%from, topics = by_topic.len(), "members heard");
        for (topic, pids) in by_topic {
            self.state.members_heard(topic, pids);
        }
    }
}
