//! Helpers shared by the network tests: a local testnet, swarms on loopback, bounded waits.
#![allow(dead_code)]

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use swarmplex::{Connection, JoinOptions, Swarm, SwarmEvent, SwarmOptions, Testnet, Topic};

/// Bound for any single wait in a test; generous for a loaded CI machine.
pub const WAIT: Duration = Duration::from_secs(30);

pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Turns on engine logs when `SWARMPLEX_LOG` is set (env-filter syntax).
pub fn init_logging() {
    if let Ok(filter) = std::env::var("SWARMPLEX_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

pub async fn testnet() -> Testnet {
    init_logging();
    Testnet::new(3).await.expect("testnet")
}

pub async fn swarm(net: &Testnet) -> Swarm {
    Swarm::new(SwarmOptions::local(net.bootstrap())).await.expect("swarm")
}

/// A new swarm that joined `t` as a client and finished its first round (flush).
pub async fn flushed_client(net: &Testnet, t: Topic) -> Swarm {
    let c = swarm(net).await;
    c.join(t, CLIENT).expect("join");
    within("client flush", c.flush()).await.expect("flush");
    c
}

pub async fn swarm_with(net: &Testnet, f: impl FnOnce(&mut SwarmOptions)) -> Swarm {
    let mut o = SwarmOptions::local(net.bootstrap());
    f(&mut o);
    Swarm::new(o).await.expect("swarm")
}

pub const SERVER: JoinOptions = JoinOptions { server: true, client: false };
pub const CLIENT: JoinOptions = JoinOptions { server: false, client: true };
pub const BOTH: JoinOptions = JoinOptions { server: true, client: true };

pub fn topic(name: &str) -> Topic {
    Topic::from_name(name)
}

/// The next connection event (other events are skipped).
pub async fn next_connection(s: &Swarm) -> Connection {
    within("a connection", async {
        loop {
            match s.next_event().await.expect("swarm ended") {
                SwarmEvent::Connection(c) => return c,
                _ => continue,
            }
        }
    })
    .await
}

/// The next event matching `pred`.
pub async fn next_matching(s: &Swarm, what: &str, mut pred: impl FnMut(&SwarmEvent) -> bool) -> SwarmEvent {
    within(what, async {
        loop {
            let e = s.next_event().await.expect("swarm ended");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
}

/// Events that arrive within `quiet` (used only to assert that something does *not* happen).
pub async fn drain_for(s: &Swarm, quiet: Duration) -> Vec<SwarmEvent> {
    let mut out = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(quiet, s.next_event()).await {
        out.push(e);
    }
    out
}

/// A server and a client joined to one topic, connected; returns (server conn, client conn).
pub async fn pair(net: &Testnet, name: &str) -> (Swarm, Swarm, Connection, Connection) {
    let server = swarm(net).await;
    let client = swarm(net).await;
    within("announce", server.join(topic(name), SERVER).unwrap().flushed()).await.unwrap();
    client.join(topic(name), CLIENT).unwrap();
    let (cs, cc) = tokio::join!(next_connection(&server), next_connection(&client));
    (server, client, cs, cc)
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Reads `s`'s events until it holds connections to `n` distinct peers or `limit` passed
/// (asserting that no peer gets a second connection event); each connection comes with when
/// it came, since `start`.
pub async fn connections_until(s: &Swarm, n: usize, start: Instant, limit: Duration) -> Vec<(Connection, Duration)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        while seen.len() < n {
            if let SwarmEvent::Connection(c) = s.next_event().await.expect("swarm ended") {
                assert!(seen.insert(c.remote_public_key()), "duplicate connection event");
                out.push((c, start.elapsed()));
            }
        }
    })
    .await;
    out
}
