//! A timer queue on a caller-supplied clock: the state machines schedule, the driver sleeps
//! until [`Timers::next_deadline`] and hands due timers back. Tests advance a virtual clock.

use std::collections::BTreeMap;
use std::time::Instant;

/// Timers of type `T`, due in deadline order (ties in scheduling order).
pub(crate) struct Timers<T> {
    queue: BTreeMap<(Instant, u64), T>,
    seq: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers { queue: BTreeMap::new(), seq: 0 }
    }
}

impl<T> Timers<T> {
    /// Schedules `timer` to be due at `at`.
    pub fn schedule(&mut self, at: Instant, timer: T) {
        self.seq += 1;
        self.queue.insert((at, self.seq), timer);
    }

    /// When the earliest timer is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let (&key, _) = self.queue.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.queue.remove(&key)
    }

    /// How many timers are pending.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timers_come_due_in_deadline_order_then_scheduling_order() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.schedule(t0 + Duration::from_secs(2), "b");
        t.schedule(t0 + Duration::from_secs(1), "a");
        t.schedule(t0 + Duration::from_secs(2), "c");
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None);
        assert_eq!(t.pop_due(t0 + Duration::from_secs(5)), Some("a"));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(5)), Some("b"));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(5)), Some("c"));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(5)), None);
        assert_eq!(t.len(), 0);
    }
}
