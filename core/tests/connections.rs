//! Connection behaviour over real sockets on loopback, against a local testnet.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use swarmplex::{ErrorKind, JoinOptions, KeyPair, Swarm, SwarmEvent, SwarmOptions, Topic, firewall_fn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_client_exchange_bytes_both_ways() {
    let net = testnet().await;
    let (server, client, cs, cc) = pair(&net, "one-server-one-client").await;
    assert_eq!(cs.remote_public_key(), client.public_key());
    assert_eq!(cc.remote_public_key(), server.public_key());
    assert!(cc.is_initiator());
    assert!(!cs.is_initiator());
    assert_eq!(cs.handshake_hash(), cc.handshake_hash());
    assert_eq!(cc.peer_info().topics, vec![topic("one-server-one-client")]);
    assert!(cs.peer_info().topics.is_empty(), "server side does not know the topic");
    let path = cc.path();
    assert!(!path.relayed && path.relay.is_none() && ["quic", "tcp"].contains(&path.transport), "{path:?}");
    assert_eq!(path.remote_address, cc.remote_address());
    // Bootstrap nodes on loopback: a local network, reachable as it is, no relay held.
    let r = server.reachability().await.unwrap();
    assert_eq!(r.state, swarmplex::Reachability::Public);
    assert!(r.relays.is_empty());
    assert!(r.external.iter().any(|a| a.to_string().starts_with("/ip4/127.0.0.1/")), "{r:?}");

    cc.socket().write(b"hello from client").await.unwrap();
    assert_eq!(cs.socket().read(100).await.unwrap(), b"hello from client");
    cs.socket().write(b"hello from server").await.unwrap();
    cs.socket().end().await.unwrap();
    assert_eq!(cc.socket().read_to_end().await.unwrap(), b"hello from server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_in_client_and_server_mode_get_exactly_one_connection() {
    let net = testnet().await;
    for round in 0..3 {
        let a = swarm(&net).await;
        let b = swarm(&net).await;
        let t = topic(&format!("dedup-{round}"));
        a.join(t, BOTH).unwrap();
        b.join(t, BOTH).unwrap();
        let (ca, cb) = tokio::join!(next_connection(&a), next_connection(&b));
        assert_eq!(ca.handshake_hash(), cb.handshake_hash(), "both sides hold the same connection");
        within("flush", async { tokio::try_join!(a.flush(), b.flush()) }).await.unwrap();
        // Past the 1 s re-lookup both sides do: no second connection may appear.
        for (s, c) in [(&a, &ca), (&b, &cb)] {
            let extra: Vec<_> = drain_for(s, Duration::from_millis(1500))
                .await
                .into_iter()
                .filter(|e| matches!(e, SwarmEvent::Connection(_) | SwarmEvent::Disconnected { .. }))
                .collect();
            assert!(extra.is_empty(), "round {round}: unexpected events {extra:?}");
            assert!(!c.is_closed());
            assert_eq!(s.connections().await.unwrap().len(), 1);
        }
        // The connection works after dedup.
        ca.socket().write(b"ping").await.unwrap();
        assert_eq!(cb.socket().read(4).await.unwrap(), b"ping");
        a.destroy().await;
        b.destroy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_peers_reach_a_full_mesh_without_duplicates() {
    let net = testnet().await;
    let t = topic("mesh-10");
    let mut swarms = Vec::new();
    for _ in 0..10 {
        swarms.push(swarm(&net).await);
    }
    for s in &swarms {
        s.join(t, BOTH).unwrap();
    }
    let mut tasks = Vec::new();
    for s in swarms.clone() {
        tasks.push(tokio::spawn(async move {
            let conns = connections_until(&s, 9, std::time::Instant::now(), WAIT).await;
            assert_eq!(conns.len(), 9, "timed out waiting for 9 connections");
            let hashes: Vec<_> = conns.iter().map(|(c, _)| (c.remote_public_key(), c.handshake_hash())).collect();
            (s.public_key(), hashes)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    // Each pair agrees on its connection.
    for (me, hashes) in &all {
        for (remote, h) in hashes {
            let (_, theirs) = all.iter().find(|(k, _)| k == remote).unwrap();
            let (_, their_h) = theirs.iter().find(|(k, _)| k == me).unwrap();
            assert_eq!(h, their_h);
        }
    }
    for s in &swarms {
        within("flush", s.flush()).await.unwrap();
        assert_eq!(s.connections().await.unwrap().len(), 9);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_topics_share_one_connection() {
    let net = testnet().await;
    let server = swarm(&net).await;
    let client = swarm(&net).await;
    let (t1, t2) = (topic("multi-1"), topic("multi-2"));
    server.join(t1, SERVER).unwrap();
    within("announce", server.join(t2, SERVER).unwrap().flushed()).await.unwrap();
    within("announce", server.flush()).await.unwrap();
    client.join(t1, CLIENT).unwrap();
    client.join(t2, CLIENT).unwrap();
    // Each side reports the connection when its own end is active (the follower's a moment
    // after the leader's): wait for both before counting.
    let (conn, _) = tokio::join!(next_connection(&client), next_connection(&server));
    within("flush", client.flush()).await.unwrap();
    let mut topics = conn.peer_info().topics;
    if topics.len() < 2 {
        let e = next_matching(&client, "topic event", |e| matches!(e, SwarmEvent::PeerTopic { .. })).await;
        assert!(matches!(e, SwarmEvent::PeerTopic { remote, .. } if remote == server.public_key()));
        topics = conn.peer_info().topics;
    }
    topics.sort();
    let mut want = vec![t1, t2];
    want.sort();
    assert_eq!(topics, want);
    assert_eq!(client.connections().await.unwrap().len(), 1);
    assert_eq!(server.connections().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_peer_connects_and_reconnects_after_a_restart_with_the_same_key() {
    let net = testnet().await;
    let kp = KeyPair::from_seed(&[9u8; 32]).unwrap();
    let mk = |kp: KeyPair| {
        let b = net.bootstrap();
        async move {
            Swarm::new(SwarmOptions { key_pair: Some(kp), ..SwarmOptions::local(b) }).await.unwrap()
        }
    };
    let target = mk(kp.clone()).await;
    within("listen", target.listen()).await.unwrap();
    within("announce", target.flush()).await.unwrap();
    let seeker = swarm(&net).await;
    let conn = within("find by key", seeker.find_peer(kp.public_key())).await.unwrap();
    assert_eq!(conn.remote_public_key(), kp.public_key());
    let _ = next_connection(&target).await;

    // Restart the target: same key, new ports.
    target.destroy().await;
    next_matching(&seeker, "disconnect", |e| matches!(e, SwarmEvent::Disconnected { .. })).await;
    let target2 = mk(kp.clone()).await;
    within("listen", target2.listen()).await.unwrap();
    within("announce", target2.flush()).await.unwrap();
    let back = next_connection(&seeker).await;
    assert_eq!(back.remote_public_key(), kp.public_key());
    let c2 = next_connection(&target2).await;
    back.socket().write(b"again").await.unwrap();
    assert_eq!(c2.socket().read(5).await.unwrap(), b"again");

    // join_peer(self) is a no-op; leave_peer stops reconnecting.
    seeker.join_peer(seeker.public_key()).unwrap();
    seeker.leave_peer(kp.public_key()).unwrap();
    seeker.leave(Topic::for_public_key(&kp.public_key())).await.unwrap();
    target2.destroy().await;
    next_matching(&seeker, "disconnect", |e| matches!(e, SwarmEvent::Disconnected { .. })).await;
    let target3 = mk(kp).await;
    within("listen", target3.listen()).await.unwrap();
    within("announce", target3.flush()).await.unwrap();
    let later = drain_for(&seeker, Duration::from_millis(2500)).await;
    assert!(!later.iter().any(|e| matches!(e, SwarmEvent::Connection(_))), "reconnected after leave_peer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_peer_finds_a_peer_by_key_alone() {
    let net = testnet().await;
    let target = swarm(&net).await;
    within("listen", target.listen()).await.unwrap();
    within("announce", target.flush()).await.unwrap();
    let seeker = swarm(&net).await;
    seeker.join_peer(target.public_key()).unwrap(); // no address known: found through its announce
    let conn = next_connection(&seeker).await;
    assert_eq!(conn.remote_public_key(), target.public_key());
    assert!(conn.peer_info().explicit);
    assert!(conn.peer_info().topics.is_empty(), "the lookup by key is not a topic of the peer");
    assert!(seeker.topics().await.unwrap().is_empty(), "nor one of ours");
    within("flush", seeker.flush()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_rejects_bans_and_is_asked_once_per_peer() {
    let net = testnet().await;
    let asked = Arc::new(AtomicUsize::new(0));
    let a2 = asked.clone();
    let server = swarm_with(&net, |o| {
        o.firewall = Some(firewall_fn(move |_| {
            a2.fetch_add(1, Ordering::SeqCst);
            true // reject everyone
        }))
    })
    .await;
    within("announce", server.join(topic("fw"), SERVER).unwrap().flushed()).await.unwrap();
    let client = swarm(&net).await;
    client.join(topic("fw"), CLIENT).unwrap();
    let ban = next_matching(&server, "ban", |e| matches!(e, SwarmEvent::Ban { .. })).await;
    assert!(matches!(ban, SwarmEvent::Ban { remote } if remote == client.public_key()));
    // The client retries (1 s, 5 s): the banned peer is refused before the firewall is asked.
    within("client flush", client.flush()).await.unwrap();
    client.refresh_all().await;
    within("client flush", client.flush()).await.unwrap();
    assert!(client.connections().await.unwrap().is_empty());
    assert!(server.connections().await.unwrap().is_empty());
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    // An allowing firewall is also asked only once, across reconnects.
    let asked2 = Arc::new(AtomicUsize::new(0));
    let a3 = asked2.clone();
    let server2 = swarm_with(&net, |o| {
        o.firewall = Some(firewall_fn(move |_| {
            a3.fetch_add(1, Ordering::SeqCst);
            false
        }))
    })
    .await;
    within("announce", server2.join(topic("fw-ok"), SERVER).unwrap().flushed()).await.unwrap();
    client.join(topic("fw-ok"), CLIENT).unwrap();
    let c = next_connection(&server2).await;
    c.close();
    let _ = next_connection(&server2).await; // the client reconnects
    assert_eq!(asked2.load(Ordering::SeqCst), 1);
}

trait RefreshAll {
    async fn refresh_all(&self);
}
impl RefreshAll for Swarm {
    async fn refresh_all(&self) {
        for (t, o) in self.topics().await.unwrap() {
            self.join(t, o).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_keeps_existing_connections() {
    let net = testnet().await;
    let (server, client, cs, cc) = pair(&net, "leave").await;
    client.leave(topic("leave")).await.unwrap();
    within("leave", server.leave(topic("leave"))).await.unwrap();
    within("flush", client.flush()).await.unwrap();
    cc.socket().write(b"still here").await.unwrap();
    assert_eq!(cs.socket().read(64).await.unwrap(), b"still here");
    assert!(client.topics().await.unwrap().is_empty());
    assert_eq!(server.connections().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_switches_a_client_to_server_and_status_follows() {
    let net = testnet().await;
    let t = topic("refresh");
    let a = swarm(&net).await;
    let d = a.join(t, CLIENT).unwrap();
    within("first round", d.flushed()).await.unwrap();
    assert_eq!(a.status(t).await.unwrap(), Some(CLIENT));
    assert_eq!(a.status(topic("never joined")).await.unwrap(), None);
    let neither = JoinOptions { server: false, client: false };
    assert_eq!(d.refresh(Some(neither)).unwrap_err().kind(), ErrorKind::InvalidInput);
    d.refresh(Some(BOTH)).unwrap();
    assert_eq!(a.status(t).await.unwrap(), Some(BOTH));
    within("the round that announces", d.flushed()).await.unwrap();
    // A new client's first lookup finds a: without the switch there is no announce to find.
    let b = flushed_client(&net, t).await;
    let found: Vec<_> = b.connections().await.unwrap().iter().map(|c| c.remote_public_key()).collect();
    assert_eq!(found, vec![a.public_key()]);
    // A plain refresh runs a round and keeps the mode.
    d.refresh(None).unwrap();
    within("a plain round", d.flushed()).await.unwrap();
    assert_eq!(a.status(t).await.unwrap(), Some(BOTH));
    within("leave", d.destroy()).await.unwrap();
    assert_eq!(a.status(t).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_server_leaves_a_new_client_does_not_find_it() {
    // Hyperswarm's "if a second client joins after the server leaves, they will not connect":
    // leave withdraws the announce from the DHT nodes (kad alone would keep it for hours).
    let net = testnet().await;
    let t = topic("left");
    let server = swarm(&net).await;
    within("announce", server.join(t, SERVER).unwrap().flushed()).await.unwrap();
    let first = flushed_client(&net, t).await;
    assert_eq!(first.connections().await.unwrap().len(), 1, "the first client found the server");
    within("leave", server.leave(t)).await.unwrap();
    let second = flushed_client(&net, t).await;
    assert!(second.connections().await.unwrap().is_empty(), "the second client found a server that left");
    assert_eq!(first.connections().await.unwrap().len(), 1, "leave keeps existing connections");
    // Joining again announces again.
    within("announce again", server.join(t, SERVER).unwrap().flushed()).await.unwrap();
    let third = flushed_client(&net, t).await;
    assert_eq!(third.connections().await.unwrap().len(), 1, "the third client found the server again");
    // Leaving while the announce is still in flight: the withdrawal waits for it, so the record
    // it stores is withdrawn too. (The race is narrow here: this checks the end state, and it
    // also passes without the wait.)
    let t2 = topic("left-at-once");
    server.join(t2, SERVER).unwrap();
    within("leave at once", server.leave(t2)).await.unwrap();
    let fourth = flushed_client(&net, t2).await;
    assert!(fourth.connections().await.unwrap().is_empty(), "the fourth client found a server that left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_server_is_not_found_by_clients_that_join_later() {
    // destroy withdraws the announces (as Hyperswarm's does): a client that joins afterwards
    // finds no record, so it never even dials the dead peer.
    let net = testnet().await;
    let t = topic("destroyed");
    let server = swarm(&net).await;
    within("announce", server.join(t, SERVER).unwrap().flushed()).await.unwrap();
    within("destroy", server.destroy()).await;
    let client = flushed_client(&net, t).await;
    let dialed: Vec<_> = drain_for(&client, Duration::from_millis(100))
        .await
        .into_iter()
        .filter(|e| matches!(e, SwarmEvent::Update { connecting, .. } if *connecting > 0))
        .collect();
    assert!(dialed.is_empty(), "the client dialed a destroyed server: {dialed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_closes_and_refuses() {
    let net = testnet().await;
    let (server, client, cs, _cc) = pair(&net, "ban").await;
    server.ban(client.public_key()).unwrap();
    next_matching(&server, "ban event", |e| matches!(e, SwarmEvent::Ban { .. })).await;
    assert_eq!(cs.closed().await.kind(), ErrorKind::Firewalled);
    next_matching(&client, "disconnect", |e| matches!(e, SwarmEvent::Disconnected { .. })).await;
    within("client flush", client.flush()).await.unwrap();
    assert!(server.connections().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_peers_caps_dials_and_flush_resolves() {
    let net = testnet().await;
    let t = topic("max-peers");
    let mut servers = Vec::new();
    for _ in 0..3 {
        let s = swarm(&net).await;
        within("announce", s.join(t, SERVER).unwrap().flushed()).await.unwrap();
        servers.push(s);
    }
    let client = swarm_with(&net, |o| o.max_peers = Some(1)).await;
    client.join(t, CLIENT).unwrap();
    within("flush", client.flush()).await.unwrap();
    let _ = next_connection(&client).await;
    assert_eq!(client.connections().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_goes_up_and_down_through_updates() {
    let net = testnet().await;
    let server = swarm(&net).await;
    within("announce", server.join(topic("updates"), SERVER).unwrap().flushed()).await.unwrap();
    let client = swarm(&net).await;
    client.join(topic("updates"), CLIENT).unwrap();
    let mut seen = Vec::new();
    within("updates", async {
        loop {
            if let SwarmEvent::Update { connecting, connections } = client.next_event().await.unwrap() {
                seen.push(connecting);
                if connections == 1 {
                    break;
                }
            }
        }
    })
    .await;
    assert!(seen.contains(&1), "connecting reached 1: {seen:?}");
    assert_eq!(*seen.last().unwrap(), 0);
    assert_eq!(client.connecting(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_closes_and_resume_reconnects() {
    let net = testnet().await;
    let (server, client, _cs, cc) = pair(&net, "suspend").await;
    client.suspend().unwrap();
    assert_eq!(cc.closed().await.kind(), ErrorKind::Closed);
    next_matching(&server, "server sees close", |e| matches!(e, SwarmEvent::Disconnected { .. })).await;
    client.resume().unwrap();
    let again = next_connection(&client).await;
    assert_ne!(again.handshake_hash(), cc.handshake_hash());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_is_seen_by_the_remote_quickly() {
    let net = testnet().await;
    let (server, client, cs, cc) = pair(&net, "destroy").await;
    let pending_read = tokio::spawn(async move { cs.socket().read(10).await });
    let started = std::time::Instant::now();
    client.destroy().await;
    let err = within("remote read fails", pending_read).await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Closed | ErrorKind::Reset), "{err}");
    next_matching(&server, "disconnect", |e| matches!(e, SwarmEvent::Disconnected { .. })).await;
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    // Our own pending operations fail too, instead of hanging.
    assert!(cc.socket().read(1).await.is_err());
    assert!(cc.socket().write(b"x").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_input() {
    assert_eq!(Topic::from_slice(&[0; 31]).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(KeyPair::from_seed(&[0; 33]).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(swarmplex::PublicKey::from_slice(&[0; 5]).unwrap_err().kind(), ErrorKind::InvalidInput);
    let bad = |o: SwarmOptions| async move { Swarm::new(o).await.unwrap_err().kind() };
    assert_eq!(bad(SwarmOptions { seed: Some(vec![1; 31]), ..SwarmOptions::local(vec![]) }).await, ErrorKind::InvalidInput);
    assert_eq!(bad(SwarmOptions::local(vec!["/ip4/127.0.0.1/tcp/1".into()])).await, ErrorKind::InvalidInput);
    assert_eq!(bad(SwarmOptions { max_peers: Some(0), ..SwarmOptions::local(vec![]) }).await, ErrorKind::InvalidInput);
    assert_eq!(bad(SwarmOptions { network: Some("a b".into()), ..SwarmOptions::local(vec![]) }).await, ErrorKind::InvalidInput);
    let s = Swarm::new(SwarmOptions::local(vec![])).await.unwrap();
    let neither = swarmplex::JoinOptions { server: false, client: false };
    assert_eq!(s.join(topic("x"), neither).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(s.find_peer(s.public_key()).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    s.destroy().await;
    assert_eq!(s.join(topic("x"), common::BOTH).unwrap_err().kind(), ErrorKind::Closed);
}
