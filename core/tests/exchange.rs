//! Peer exchange: connect by address, ask a peer for another peer, reach it through that
//! peer's relay (circuit relay v2) or directly after hole punching (DCUtR). All on loopback.

mod common;

use std::time::Duration;

use common::*;
use rand::RngCore;
use sha2::{Digest, Sha256};
use swarmplex::{Connection, ErrorKind, RelayLimits, Swarm, SwarmEvent, SwarmOptions};

async fn node(network: &str, f: impl FnOnce(&mut SwarmOptions)) -> Swarm {
    init_logging();
    let mut o = SwarmOptions::exchange(network);
    f(&mut o);
    Swarm::new(o).await.expect("swarm")
}

/// A node that accepts TCP and QUIC on 127.0.0.1; returns it with its two addresses.
async fn acceptor(network: &str, f: impl FnOnce(&mut SwarmOptions)) -> (Swarm, String, String) {
    let s = node(network, f).await;
    let tcp = s.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).await.unwrap();
    let quic = s.listen_on("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()).await.unwrap();
    (s, tcp.to_string(), quic.to_string())
}

/// The connection event from `key` (other events are skipped).
async fn connection_from(s: &Swarm, key: swarmplex::PublicKey) -> Connection {
    match next_matching(s, "a connection from the peer", |e| matches!(e, SwarmEvent::Connection(c) if c.remote_public_key() == key)).await {
        SwarmEvent::Connection(c) => c,
        _ => unreachable!(),
    }
}

/// Sends `n` random bytes each way over the two ends' sockets and compares their hashes.
async fn exchange_bytes(x: &Connection, y: &Connection, n: usize) {
    let mut data = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut data);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    for (from, to) in [(x, y), (y, x)] {
        let (w, r) = (from.socket(), to.socket());
        let payload = data.clone();
        let writer = tokio::spawn(async move {
            for c in payload.chunks(16 * 1024) {
                w.write(c).await.unwrap();
            }
        });
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            got.extend(within("relayed bytes", r.read(64 * 1024)).await.unwrap());
        }
        writer.await.unwrap();
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&got)), digest);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaches_c_through_b_when_c_accepts_nothing() {
    // C listens on nothing (like a peer behind a NAT): the only way in is B's relay.
    let (b, b_tcp, b_quic) = acceptor("three", |_| {}).await;
    let a = node("three", |_| {}).await;
    let c = node("three", |_| {}).await;
    let ab = within("A connects to B", a.connect(b_tcp.parse().unwrap())).await.unwrap();
    assert_eq!(ab.remote_public_key(), b.public_key());
    assert_eq!(ab.transport(), "tcp");
    let cb = within("C connects to B", c.connect(b_quic.parse().unwrap())).await.unwrap();
    assert_eq!(cb.transport(), "quic");

    let ac = within("A gets a new peer from B", a.get_new_peer(None)).await.unwrap();
    assert_eq!(ac.remote_public_key(), c.public_key(), "B offered the only other peer");
    assert_eq!(ac.transport(), "relay", "no direct path exists: {}", ac.remote_address());
    let ca = connection_from(&c, a.public_key()).await;
    assert_eq!(ca.transport(), "relay");
    assert_eq!(ca.handshake_hash(), ac.handshake_hash());
    exchange_bytes(&ac, &ca, 256 * 1024).await;

    // B knows nobody that A is not connected to already.
    let err = within("B has nothing to offer", a.get_new_peer(Some(b.public_key()))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    for s in [a, b, c] {
        s.destroy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introduced_peer_that_accepts_is_reached_directly() {
    let (b, b_tcp, _) = acceptor("direct", |_| {}).await;
    let (a, _, _) = acceptor("direct", |_| {}).await;
    let (c, _, _) = acceptor("direct", |_| {}).await;
    within("A connects to B", a.connect(b_tcp.parse().unwrap())).await.unwrap();
    within("C connects to B", c.connect(b_tcp.parse().unwrap())).await.unwrap();
    let ac = within("A gets C through B", a.get_new_peer(Some(b.public_key()))).await.unwrap();
    assert_eq!(ac.remote_public_key(), c.public_key());
    assert_ne!(ac.transport(), "relay", "a direct path exists: {}", ac.remote_address());
    let ca = connection_from(&c, a.public_key()).await;
    exchange_bytes(&ac, &ca, 4 << 20).await;
    for s in [a, b, c] {
        s.destroy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaying_is_bounded_and_an_exhausted_circuit_fails_loudly() {
    let limits = RelayLimits { max_circuit_bytes: 64 * 1024, ..Default::default() };
    let (b, b_tcp, _) = acceptor("bounded", |o| o.relay = Some(limits)).await;
    let a = node("bounded", |_| {}).await;
    let c = node("bounded", |_| {}).await;
    within("A connects to B", a.connect(b_tcp.parse().unwrap())).await.unwrap();
    within("C connects to B", c.connect(b_tcp.parse().unwrap())).await.unwrap();
    let ac = within("A reaches C through B", a.get_new_peer(None)).await.unwrap();
    assert_eq!(ac.transport(), "relay");
    let ca = connection_from(&c, a.public_key()).await;
    // 1 MiB cannot cross a 64 KiB circuit: the reader must see an error, never a clean end.
    let w = ac.socket();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; 16 * 1024];
        for _ in 0..64 {
            if w.write(&chunk).await.is_err() {
                return;
            }
        }
        let _ = w.end().await;
    });
    let r = ca.socket();
    let mut got = 0usize;
    let outcome = within("the circuit to give out", async {
        loop {
            match r.read(64 * 1024).await {
                Ok(d) if d.is_empty() => return Ok(got),
                Ok(d) => got += d.len(),
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    assert!(outcome.is_err(), "read {got} bytes and then a clean end: bytes were lost silently");
    assert!(got < 1 << 20);
    // Both ends learn why: the relay cut the session (typed), not a remote's goodbye.
    for (side, conn) in [("reader", &ca), ("writer", &ac)] {
        let reason = within("the session to end", conn.closed()).await;
        assert_eq!(reason.kind(), ErrorKind::RelayLimit, "{side}'s session ended with {reason}");
    }
    writer.abort();
    for s in [a, b, c] {
        s.destroy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_only_peer_within_one_network_and_bad_asks_fail_fast() {
    let (other, other_tcp, _) = acceptor("network-one", |_| {}).await;
    let a = node("network-two", |_| {}).await;
    let err = within("a cross-network connect to fail", a.connect(other_tcp.parse().unwrap())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(drain_for(&other, Duration::from_millis(300)).await.iter().all(|e| !matches!(e, SwarmEvent::Connection(_))));

    let err = within("asking with no peers", a.get_new_peer(None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    let err = within("a dead address", a.connect("/ip4/127.0.0.1/tcp/1".parse().unwrap())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    let err = within("a bad listen address", a.listen_on("/ip4/127.0.0.1/udp/0".parse().unwrap())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    for s in [a, other] {
        s.destroy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connects_and_a_stopped_listener_refuses_new_peers_only() {
    let b = node("ws", |_| {}).await;
    let ws = within("B listens on WebSocket", b.listen_on("/ip4/127.0.0.1/tcp/0/ws".parse().unwrap())).await.unwrap();
    assert!(ws.to_string().ends_with("/ws"), "{ws}");
    let a = node("ws", |_| {}).await;
    let ab = within("A connects to B over WebSocket", a.connect(ws.clone())).await.unwrap();
    assert_eq!(ab.transport(), "websocket", "{}", ab.remote_address());
    let ba = connection_from(&b, a.public_key()).await;
    assert_eq!(ba.transport(), "websocket", "{}", ba.remote_address());
    exchange_bytes(&ab, &ba, 1 << 20).await;

    within("B stops listening", b.stop_listening(ws.clone())).await.unwrap();
    let c = node("ws", |_| {}).await;
    let err = within("a connect to the closed listener", c.connect(ws.clone())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    // The connection made before stays up.
    exchange_bytes(&ab, &ba, 64 * 1024).await;
    let err = within("stopping it twice", b.stop_listening(ws)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    for s in [a, b, c] {
        s.destroy().await;
    }
}
