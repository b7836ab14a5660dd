//! Deduplication: exactly one session per remote key, decided by one side only.
//!
//! Hyperswarm lets both ends judge duplicates, and they can disagree (the reset loop in the
//! peopleswarm log). Here only the **leader** (the peer with the larger public key) decides, and
//! the follower obeys: a connection becomes a session on the follower exactly when the leader
//! opens the socket stream on it. The leader keeps the first session; a later connection is a
//! duplicate and closed, unless the follower's instance id changed (it restarted), in which case the
//! old session is stale and the new one replaces it — Hyperswarm's "stale connection" rule, judged
//! by identity instead of by byte counters.

use crate::keys::PublicKey;

/// Which side of a pair decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Larger public key: decides which connection is the session.
    Leader,
    /// Smaller public key: follows the leader's decision.
    Follower,
}

/// Our role towards `remote`.
pub fn role(local: &PublicKey, remote: &PublicKey) -> Role {
    if local > remote { Role::Leader } else { Role::Follower }
}

/// The leader's view of the peer when a handshake on a new connection completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// No session with this peer.
    None,
    /// A live session whose follower had this instance id.
    Active { remote_instance: u64 },
}

/// The leader's verdict on a freshly handshaken connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Make it the session.
    Accept,
    /// Make it the session and close the old one, which belongs to a previous instance.
    ReplaceStale,
    /// Close it: the existing session stays.
    Duplicate,
}

/// Decides what the leader does with a new connection whose follower reported `remote_instance`.
pub fn leader_verdict(existing: Existing, remote_instance: u64) -> Verdict {
    match existing {
        Existing::None => Verdict::Accept,
        Existing::Active { remote_instance: old } if old != remote_instance => Verdict::ReplaceStale,
        Existing::Active { .. } => Verdict::Duplicate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_side_leads() {
        let a = PublicKey([1; 32]);
        let b = PublicKey([2; 32]);
        assert_eq!(role(&b, &a), Role::Leader);
        assert_eq!(role(&a, &b), Role::Follower);
    }

    #[test]
    fn first_session_wins_and_a_restart_replaces_it() {
        assert_eq!(leader_verdict(Existing::None, 5), Verdict::Accept);
        assert_eq!(leader_verdict(Existing::Active { remote_instance: 5 }, 5), Verdict::Duplicate);
        assert_eq!(leader_verdict(Existing::Active { remote_instance: 5 }, 6), Verdict::ReplaceStale);
    }

    #[test]
    fn simultaneous_handshakes_resolve_to_one_session() {
        // Both connections of a simultaneous dial finish their handshakes; the leader applies the
        // verdicts in completion order, so the second one is always a duplicate.
        let mut existing = Existing::None;
        let mut sessions = 0;
        for _conn in 0..2 {
            match leader_verdict(existing, 77) {
                Verdict::Accept | Verdict::ReplaceStale => {
                    sessions += 1;
                    existing = Existing::Active { remote_instance: 77 };
                }
                Verdict::Duplicate => {}
            }
        }
        assert_eq!(sessions, 1);
    }
}
