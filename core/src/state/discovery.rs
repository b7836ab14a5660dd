//! Topic discovery: joined topics, their announce and lookup rounds, relookups after a client
//! join, the periodic refresh, and flush (see [`round`](super::round)).

use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::backoff::jitter;
use super::round::Round;
use super::{Action, FlushId, Handles, QueryRef, State, Timer};
use crate::keys::PublicKey;
use crate::options::JoinOptions;
use crate::topic::Topic;

/// Re-announce and re-lookup period (jittered ±20 %).
pub(crate) const REFRESH: Duration = Duration::from_secs(600);
/// Extra lookups after a client join, so peers that raced each other's announces meet quickly.
/// The one at 6 s catches a server behind a NAT, which announces once its relay reservation is
/// accepted (5–6 s after it saw its first AutoNAT server).
pub(crate) const RELOOKUPS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(6),
    Duration::from_secs(10),
    Duration::from_secs(30),
];

/// One joined topic.
pub(super) struct TopicState {
    pub opts: JoinOptions,
    /// A hidden lookup that `join_peer` runs for one peer's self-announce: it dials only that
    /// peer, and does not show in `topics()`, `status()` or PeerInfo topics.
    pub only: Option<PeerId>,
    /// Bumped by every new round; timers and queries of older rounds are ignored.
    pub generation: u64,
    /// A server round waiting for a listen address before it announces.
    pub announce_deferred: bool,
    pub round: Round<PeerId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QueryKind {
    Announce,
    /// `round`: the lookup that counts for flush (relookups do not).
    Lookup { round: bool },
}

/// A DHT query in flight.
pub(super) struct QueryInfo {
    pub topic: Topic,
    pub kind: QueryKind,
    pub generation: u64,
    pub started: Instant,
    /// A [`Timer::LookupGrace`] was scheduled (answers came in).
    pub grace_set: bool,
}

impl<H: Handles> State<H> {
    // ---- app requests ------------------------------------------------------------------------

    /// Joins `topic` (or changes how), and starts a round.
    pub fn join(&mut self, topic: Topic, opts: JoinOptions, now: Instant) {
        let ts = self.topics.entry(topic).or_insert_with(|| new_topic(opts, None));
        let was_server = ts.opts.server;
        ts.opts = opts;
        ts.only = None; // joined explicitly: an ordinary topic from now on
        if was_server && !opts.server {
            self.act(Action::StopAnnouncing(topic));
        }
        self.start_round(topic, now);
    }

    /// Leaves `topic`: stops announcing and looking up; connections stay.
    pub fn leave(&mut self, topic: Topic) {
        if let Some(ts) = self.topics.remove(&topic) {
            if ts.opts.server {
                self.act(Action::StopAnnouncing(topic));
            }
        }
        self.check_flush();
    }

    /// Starts a new round of `topic` now, with new options if given.
    pub fn refresh(&mut self, topic: Topic, opts: Option<JoinOptions>, now: Instant) {
        if let Some(ts) = self.topics.get_mut(&topic) {
            if let Some(o) = opts {
                ts.opts = o;
            }
            self.start_round(topic, now);
        }
    }

    /// `flush` (every topic, `None`) or `flushed` (one topic): `id` is answered with
    /// [`Action::FlushDone`] when the round(s) are done.
    pub fn flush(&mut self, topic: Option<Topic>, id: FlushId) {
        self.flush_waiters.push(topic, id);
        self.check_flush();
    }

    /// How `topic` is joined, if it is (hidden `join_peer` lookups are not).
    pub fn status(&self, topic: &Topic) -> Option<JoinOptions> {
        self.topics.get(topic).filter(|t| t.only.is_none()).map(|t| t.opts)
    }

    /// Every joined topic (hidden `join_peer` lookups are not).
    pub fn topics(&self) -> Vec<(Topic, JoinOptions)> {
        self.topics.iter().filter(|(_, s)| s.only.is_none()).map(|(t, s)| (*t, s.opts)).collect()
    }

    /// Find `key` by its self-announce (see `Swarm::listen`), with a hidden lookup.
    pub(super) fn lookup_self_announce(&mut self, pid: PeerId, key: PublicKey, now: Instant) {
        let lookup = Topic::for_public_key(&key);
        if !self.topics.contains_key(&lookup) {
            self.topics.insert(lookup, new_topic(JoinOptions { server: false, client: true }, Some(pid)));
            self.start_round(lookup, now);
        }
    }

    /// Whether a hidden `join_peer` lookup for `key`'s self-announce is running.
    pub(super) fn looking_for(&self, key: &PublicKey) -> bool {
        self.topics.get(&Topic::for_public_key(key)).is_some_and(|t| t.only.is_some())
    }

    pub(super) fn forget_self_announce(&mut self, key: PublicKey) {
        let lookup = Topic::for_public_key(&key);
        if self.topics.get(&lookup).is_some_and(|t| t.only.is_some()) {
            self.topics.remove(&lookup);
            self.check_flush();
        }
    }

    /// Whether we have at least one listen address: server rounds waiting for one announce now
    /// (if reachability allows, see `reach`).
    pub fn set_listening(&mut self, listening: bool, now: Instant) {
        let first = listening && !self.listening;
        self.listening = listening;
        if first {
            self.announce_deferred(now);
        }
    }

    /// Whether announces may go out: a listen address, and something others can dial.
    fn can_announce(&self) -> bool {
        self.listening && self.reach.announce_ready
    }

    /// Sends the announces that waited for [`State::can_announce`].
    pub(super) fn announce_deferred(&mut self, now: Instant) {
        if !self.can_announce() {
            return;
        }
        let deferred: Vec<(Topic, u64)> =
            self.topics.iter().filter(|(_, t)| t.announce_deferred).map(|(k, t)| (*k, t.generation)).collect();
        for (t, g) in deferred {
            if let Some(ts) = self.topics.get_mut(&t) {
                ts.announce_deferred = false;
            }
            self.announce(t, g, now);
        }
    }

    /// Announces every server topic again (what others can dial changed).
    pub(super) fn reannounce(&mut self, now: Instant) {
        if !self.can_announce() || self.suspended {
            return;
        }
        let servers: Vec<(Topic, u64)> = self
            .topics
            .iter()
            .filter(|(_, t)| t.opts.server && !t.announce_deferred)
            .map(|(k, t)| (*k, t.generation))
            .collect();
        for (t, g) in servers {
            self.announce(t, g, now);
        }
    }

    /// Starts a new round of every topic (mDNS found the first LAN peers; resume).
    pub fn restart_rounds(&mut self, now: Instant) {
        let topics: Vec<Topic> = self.topics.keys().copied().collect();
        for t in topics {
            self.start_round(t, now);
        }
    }

    // ---- rounds ------------------------------------------------------------------------------

    fn start_round(&mut self, topic: Topic, now: Instant) {
        let can_announce = self.can_announce();
        let suspended = self.suspended;
        let Some(ts) = self.topics.get_mut(&topic) else { return };
        ts.generation += 1;
        ts.round = Round::start(ts.opts.server, ts.opts.client);
        ts.announce_deferred = false;
        let generation = ts.generation;
        let opts = ts.opts;
        if suspended {
            ts.round = Round::default();
            self.check_flush();
            return;
        }
        if opts.server {
            if can_announce {
                self.announce(topic, generation, now);
            } else {
                ts.announce_deferred = true;
            }
        }
        if opts.client {
            self.lookup(topic, generation, true, now);
            self.schedule(now + RELOOKUPS[0], Timer::Relookup(topic, generation, 0));
        }
        let unit = self.unit();
        self.schedule(now + jitter(REFRESH, unit), Timer::Refresh(topic, generation));
        self.check_flush();
    }

    fn new_query(&mut self, topic: Topic, kind: QueryKind, generation: u64, now: Instant) -> QueryRef {
        self.next_query += 1;
        let query = QueryRef(self.next_query);
        self.queries.insert(query, QueryInfo { topic, kind, generation, started: now, grace_set: false });
        query
    }

    fn announce(&mut self, topic: Topic, generation: u64, now: Instant) {
        let query = self.new_query(topic, QueryKind::Announce, generation, now);
        self.act(Action::Announce { topic, query });
    }

    fn lookup(&mut self, topic: Topic, generation: u64, round: bool, now: Instant) {
        let query = self.new_query(topic, QueryKind::Lookup { round }, generation, now);
        self.act(Action::Lookup { topic, query });
    }

    /// The driver could not start announce `query` (no known DHT peers): its round goes on.
    pub fn announce_failed(&mut self, query: QueryRef) {
        let Some(info) = self.queries.remove(&query) else { return };
        if let Some(ts) = self.topics.get_mut(&info.topic) {
            ts.round.announced();
        }
        self.check_flush();
    }

    /// Announce `query` finished. ADD_PROVIDER has no reply, so the round counts it a moment
    /// later (half the time it took, 50 ms to 1 s).
    pub fn announce_done(&mut self, query: QueryRef, now: Instant) {
        let Some(info) = self.queries.remove(&query) else { return };
        let settle = (now.saturating_duration_since(info.started) / 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
        self.schedule(now + settle, Timer::Settled(info.topic, info.generation));
    }

    /// Lookup `query` found `providers`; `last`: it is over.
    pub fn providers_found(&mut self, query: QueryRef, providers: Vec<PeerId>, last: bool, now: Instant) {
        let Some(info) = self.queries.get_mut(&query) else { return };
        let (topic, kind, generation, started) = (info.topic, info.kind, info.generation, info.started);
        if !providers.is_empty() && !info.grace_set {
            // kad waits out unresponsive peers (10 s each); once answers come in, finish soon
            // after. The next lookup catches anything this one missed.
            info.grace_set = true;
            let grace = (now.saturating_duration_since(started) * 4).max(Duration::from_millis(500));
            self.schedule(now + grace, Timer::LookupGrace(query));
        }
        let current = self.topics.get(&topic).is_some_and(|t| t.generation == generation);
        if self.topics.get(&topic).is_some_and(|t| t.opts.client) {
            for p in providers {
                self.on_found(topic, p, current);
            }
        }
        if last {
            self.queries.remove(&query);
            if current && kind == (QueryKind::Lookup { round: true }) {
                if let Some(ts) = self.topics.get_mut(&topic) {
                    ts.round.looked_up();
                }
                self.check_flush();
            }
        }
    }

    fn on_found(&mut self, topic: Topic, pid: PeerId, current_round: bool) {
        if pid == self.local_peer {
            return;
        }
        let hidden = match self.topics.get(&topic).and_then(|t| t.only) {
            Some(only) if only != pid => return, // someone else announcing under that key's topic
            Some(_) => true,
            None => false,
        };
        if self.found(topic, pid, hidden) && current_round {
            if let Some(ts) = self.topics.get_mut(&topic) {
                ts.round.dialing(pid);
            }
        }
    }

    pub(super) fn on_refresh(&mut self, topic: Topic, generation: u64, now: Instant) {
        if self.topics.get(&topic).is_some_and(|t| t.generation == generation) {
            self.start_round(topic, now);
        }
    }

    pub(super) fn on_relookup(&mut self, topic: Topic, generation: u64, i: usize, now: Instant) {
        if self.topics.get(&topic).is_some_and(|t| t.generation == generation && t.opts.client) {
            self.lookup(topic, generation, false, now);
            if let Some(next) = RELOOKUPS.get(i + 1) {
                self.schedule(now + (*next - RELOOKUPS[i]), Timer::Relookup(topic, generation, i + 1));
            }
        }
    }

    pub(super) fn on_settled(&mut self, topic: Topic, generation: u64) {
        if let Some(ts) = self.topics.get_mut(&topic).filter(|t| t.generation == generation) {
            ts.round.announced();
            self.check_flush();
        }
    }

    /// `pid` was connected to or given up on: it no longer holds up any round.
    pub(super) fn settle_in_rounds(&mut self, pid: &PeerId) {
        for ts in self.topics.values_mut() {
            ts.round.settled(pid);
        }
    }

    /// Ends every round without a new one (suspend).
    pub(super) fn reset_rounds(&mut self) {
        for ts in self.topics.values_mut() {
            ts.generation += 1;
            ts.round = Round::default();
        }
    }

    /// Answers the `flush` callers whose rounds are done.
    pub(super) fn check_flush(&mut self) {
        let topics = &self.topics;
        let ready = self.flush_waiters.take_ready(|t| match t {
            Some(t) => topics.get(t).is_none_or(|s| s.round.is_done()),
            None => topics.values().all(|s| s.round.is_done()),
        });
        for id in ready {
            self.act(Action::FlushDone(id));
        }
    }
}

fn new_topic(opts: JoinOptions, only: Option<PeerId>) -> TopicState {
    TopicState { opts, only, generation: 0, announce_deferred: false, round: Round::default() }
}
