//! The app's firewall, asked at most once per peer.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::keys::PublicKey;
use crate::options::{FIREWALL_ANSWER_TIMEOUT, Firewall};

/// Asks the app's firewall at most once per peer, even when several handshakes race; no
/// answer within the limit rejects.
pub(crate) struct FirewallGate {
    firewall: Option<Firewall>,
    limit: Duration,
    decided: Mutex<HashMap<PublicKey, Shared<BoxFuture<'static, bool>>>>,
}

impl FirewallGate {
    pub fn new(firewall: Option<Firewall>) -> Self {
        Self::with_limit(firewall, FIREWALL_ANSWER_TIMEOUT)
    }

    fn with_limit(firewall: Option<Firewall>, limit: Duration) -> Self {
        FirewallGate { firewall, limit, decided: Mutex::default() }
    }

    /// Whether `remote` may connect; true without a firewall.
    pub async fn allows(&self, remote: PublicKey) -> bool {
        let Some(fw) = &self.firewall else { return true };
        let fut = {
            let mut decided = self.decided.lock().unwrap_or_else(|p| p.into_inner());
            decided
                .entry(remote)
                .or_insert_with(|| {
                    // A firewall that panics (when called, or while its future runs) rejects the
                    // peer; the panic stays here, so the lock above is never poisoned.
                    let fut = std::panic::catch_unwind(AssertUnwindSafe(|| fw(remote)));
                    let limit = self.limit;
                    async move {
                        let Ok(fut) = fut else { return false };
                        match tokio::time::timeout(limit, AssertUnwindSafe(fut).catch_unwind()).await {
                            Ok(Ok(reject)) => !reject,
                            Ok(Err(_)) | Err(_) => false,
                        }
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        fut.await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::options::firewall_fn;

    fn key(b: u8) -> PublicKey {
        crate::keys::KeyPair::from_seed(&[b; 32]).expect("seed").public_key()
    }

    #[test]
    fn the_firewall_is_asked_once_per_peer_even_when_handshakes_race() {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let rejected = key(2);
        let gate = FirewallGate::new(Some(firewall_fn(move |k| {
            counter.fetch_add(1, Ordering::SeqCst);
            k == rejected
        })));
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        rt.block_on(async {
            let (a, b, c) = futures::join!(gate.allows(key(1)), gate.allows(key(1)), gate.allows(rejected));
            assert!(a && b && !c);
            assert!(gate.allows(key(1)).await && !gate.allows(rejected).await);
        });
        assert_eq!(asked.load(Ordering::SeqCst), 2, "once per peer");
    }

    #[test]
    fn a_firewall_that_never_answers_rejects_at_the_limit() {
        let silent: Firewall = Arc::new(|_| Box::pin(futures::future::pending()));
        let gate = FirewallGate::with_limit(Some(silent), Duration::from_millis(50));
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        assert!(!rt.block_on(gate.allows(key(1))));
        assert_eq!(FIREWALL_ANSWER_TIMEOUT, Duration::from_secs(30));
    }

    #[test]
    fn a_firewall_that_panics_rejects_and_no_firewall_allows() {
        let gate = FirewallGate::new(Some(firewall_fn(|_| panic!("app bug"))));
        let open = FirewallGate::new(None);
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        rt.block_on(async {
            assert!(!gate.allows(key(1)).await);
            assert!(open.allows(key(1)).await);
        });
    }
}
