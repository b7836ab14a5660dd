//! Reconnect backoff: a plain state machine, tested without sockets.
//!
//! Delays follow Hyperswarm: ≈1 s, 5 s, 15 s. A peer found through a topic is given up after its
//! 4th consecutive failure; a peer joined by key (`join_peer`) is retried every 10 minutes forever.
//! A connection that lived at least 15 s resets the count.

use std::time::Duration;

/// Delays before the 1st, 2nd and 3rd retry.
pub const DELAYS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(15)];
/// Retry interval for explicit peers once the schedule is exhausted.
pub const EXPLICIT_INTERVAL: Duration = Duration::from_secs(600);
/// Failures after which a topic peer is given up.
pub const MAX_FAILURES: u32 = 4;
/// A connection that lived this long resets the failure count.
pub const STABLE_AFTER: Duration = Duration::from_secs(15);

/// Per-peer reconnect state.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// Records a failed dial or a lost connection; returns the delay before the next attempt, or
    /// `None` to give up. `explicit` peers are never given up.
    pub fn on_failure(&mut self, explicit: bool) -> Option<Duration> {
        self.failures += 1;
        if let Some(d) = DELAYS.get(self.failures as usize - 1) {
            return Some(*d);
        }
        if explicit {
            Some(EXPLICIT_INTERVAL)
        } else if self.failures >= MAX_FAILURES {
            None
        } else {
            Some(DELAYS[DELAYS.len() - 1])
        }
    }

    /// Records that a connection ended after living `lived`; a stable one resets the count.
    pub fn on_connection_ended(&mut self, lived: Duration) {
        if lived >= STABLE_AFTER {
            self.failures = 0;
        }
    }

    /// Consecutive failures so far.
    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Spreads a delay by ±20 % so that peers do not retry in lockstep; `unit` is in [0, 1).
pub fn jitter(d: Duration, unit: f64) -> Duration {
    d.mul_f64(0.8 + 0.4 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_peers_give_up_after_four_failures() {
        let mut b = Backoff::default();
        assert_eq!(b.on_failure(false), Some(Duration::from_secs(1)));
        assert_eq!(b.on_failure(false), Some(Duration::from_secs(5)));
        assert_eq!(b.on_failure(false), Some(Duration::from_secs(15)));
        assert_eq!(b.on_failure(false), None);
    }

    #[test]
    fn explicit_peers_retry_forever() {
        let mut b = Backoff::default();
        for _ in 0..3 {
            b.on_failure(true);
        }
        for _ in 0..10 {
            assert_eq!(b.on_failure(true), Some(EXPLICIT_INTERVAL));
        }
    }

    #[test]
    fn a_stable_connection_resets_the_count() {
        let mut b = Backoff::default();
        b.on_failure(false);
        b.on_failure(false);
        b.on_connection_ended(Duration::from_secs(3));
        assert_eq!(b.failures(), 2);
        b.on_connection_ended(STABLE_AFTER);
        assert_eq!(b.on_failure(false), Some(Duration::from_secs(1)));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let d = Duration::from_secs(10);
        assert_eq!(jitter(d, 0.0), Duration::from_secs(8));
        assert!(jitter(d, 0.999) < Duration::from_secs(12));
    }
}
