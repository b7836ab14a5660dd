//! Flush bookkeeping: when a topic's discovery round is done, and who is waiting for it.
//! Plain state machines, tested without sockets.
//!
//! A round is done when its announce has settled (server), its lookup has finished (client), and
//! every peer the lookup found has been connected to or given up on. `flush()` waits for every
//! topic's round; `flushed()` for one topic's.

use std::collections::HashSet;
use std::hash::Hash;

/// One discovery round of one topic.
#[derive(Debug, Clone)]
pub struct Round<P> {
    announcing: bool,
    looking: bool,
    dialing: HashSet<P>,
}

impl<P: Hash + Eq> Default for Round<P> {
    fn default() -> Self {
        Round { announcing: false, looking: false, dialing: HashSet::new() }
    }
}

impl<P: Hash + Eq> Round<P> {
    /// A round that announces if `server` and looks up if `client`.
    pub fn start(server: bool, client: bool) -> Self {
        Round { announcing: server, looking: client, dialing: HashSet::new() }
    }

    /// The announce settled (or failed: a failed announce does not hold a flush forever).
    pub fn announced(&mut self) {
        self.announcing = false;
    }

    /// The lookup finished.
    pub fn looked_up(&mut self) {
        self.looking = false;
    }

    /// The lookup found `peer` and a connection attempt is under way.
    pub fn dialing(&mut self, peer: P) {
        self.dialing.insert(peer);
    }

    /// `peer` connected, or was given up on.
    pub fn settled(&mut self, peer: &P) {
        self.dialing.remove(peer);
    }

    /// Everything this round started is over.
    pub fn is_done(&self) -> bool {
        !self.announcing && !self.looking && self.dialing.is_empty()
    }
}

/// Callers waiting for one topic's round (`Some(topic)`) or for all of them (`None`).
#[derive(Debug)]
pub struct Waiters<T, R> {
    list: Vec<(Option<T>, R)>,
}

impl<T, R> Default for Waiters<T, R> {
    fn default() -> Self {
        Waiters { list: Vec::new() }
    }
}

impl<T, R> Waiters<T, R> {
    pub fn push(&mut self, topic: Option<T>, reply: R) {
        self.list.push((topic, reply));
    }

    /// Removes and returns the waiters whose wait is over; `done(None)` means "every topic".
    pub fn take_ready(&mut self, done: impl Fn(Option<&T>) -> bool) -> Vec<R> {
        let (ready, waiting): (Vec<_>, Vec<_>) = self.list.drain(..).partition(|(t, _)| done(t.as_ref()));
        self.list = waiting;
        ready.into_iter().map(|(_, r)| r).collect()
    }

    /// Removes every waiter (at shutdown).
    pub fn take_all(&mut self) -> Vec<R> {
        self.list.drain(..).map(|(_, r)| r).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_round_waits_for_the_lookup_and_every_dial() {
        let mut r = Round::start(false, true);
        assert!(!r.is_done());
        r.dialing("a");
        r.dialing("b");
        r.looked_up();
        assert!(!r.is_done(), "two dials pending");
        r.settled(&"a");
        assert!(!r.is_done());
        r.settled(&"b");
        assert!(r.is_done());
    }

    #[test]
    fn a_server_round_waits_for_the_announce_only() {
        let mut r: Round<&str> = Round::start(true, false);
        assert!(!r.is_done());
        r.announced();
        assert!(r.is_done());
        assert!(Round::<u8>::start(false, false).is_done());
    }

    #[test]
    fn waiters_for_one_topic_and_for_all_resolve_independently() {
        let mut w: Waiters<&str, u32> = Waiters::default();
        w.push(Some("a"), 1);
        w.push(Some("b"), 2);
        w.push(None, 3);
        let a_done = |t: Option<&&str>| matches!(t, Some(&"a"));
        assert_eq!(w.take_ready(a_done), vec![1]);
        assert_eq!(w.take_ready(a_done), Vec::<u32>::new());
        assert_eq!(w.take_ready(|_| true), vec![2, 3]);
        assert!(w.take_all().is_empty());
    }
}
