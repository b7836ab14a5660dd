//! Live swarms and testnets, so the `atexit` hook can destroy them before the interpreter goes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use swarmplex::{Swarm, Testnet};

use crate::swarm::FirewallSlot;

pub enum Entry {
    Swarm(Swarm, Option<Arc<FirewallSlot>>),
    Testnet(Arc<tokio::sync::Mutex<Option<Testnet>>>),
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static LIVE: Mutex<Option<HashMap<u64, Entry>>> = Mutex::new(None);

pub fn add(e: Entry) -> u64 {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(id, e);
    id
}

pub fn remove(id: u64) -> Option<Entry> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).as_mut().and_then(|m| m.remove(&id))
}

pub fn take_all() -> Vec<Entry> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).take().map(|m| m.into_values().collect()).unwrap_or_default()
}

impl Entry {
    pub async fn destroy(self) {
        match self {
            Entry::Swarm(s, _) => s.destroy().await,
            Entry::Testnet(t) => {
                if let Some(t) = t.lock().await.take() {
                    t.destroy().await;
                }
            }
        }
    }
}
