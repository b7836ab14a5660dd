//! `swarmplex::plex` (p2plex's API): peers by key, named and shared streams, auto-close once the
//! last stream finished, reopen, stream notices, find by key / topic with timeouts and
//! cancellation — over real sockets on loopback, bytes compared end to end.

mod common;

use std::time::Duration;

use common::*;
use swarmplex::plex::{Peer, Plex, PlexEvent};
use swarmplex::{ErrorKind, JoinOptions, KeyPair, Stream, SwarmOptions, Testnet};

async fn plex(net: &Testnet) -> Plex {
    plex_with(net, |_| {}).await
}

/// A plex whose key announce is done (so others find it by key at once).
async fn plex_with(net: &Testnet, f: impl FnOnce(&mut SwarmOptions)) -> Plex {
    let mut o = SwarmOptions::local(net.bootstrap());
    f(&mut o);
    let p = Plex::new(o).await.expect("plex");
    within("self-announce", p.swarm().flush()).await.expect("flush");
    p
}

/// A plex that does not announce its key (p2plex's `listenSelf: false`).
async fn unlisted_plex(net: &Testnet) -> Plex {
    Plex::over(swarm(net).await, false, &tokio::runtime::Handle::current())
}

/// The next event matching `pred` on `p`.
async fn next_plex_event(p: &Plex, what: &str, mut pred: impl FnMut(&PlexEvent) -> bool) -> PlexEvent {
    within(what, async {
        loop {
            let e = p.next_event().await.expect("plex ended");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
}

async fn next_peer(p: &Plex) -> Peer {
    within("a peer", p.next_peer()).await.expect("plex ended")
}

/// a finds b by key: (a's Peer for b, b's Peer for a).
async fn connect(a: &Plex, b: &Plex) -> (Peer, Peer) {
    let ab = within("find by key", a.find_by_public_key(b.public_key(), None)).await.expect("find");
    let ba = next_peer(b).await;
    assert_eq!(ab.public_key(), b.public_key());
    assert_eq!(ba.public_key(), a.public_key());
    (ab, ba)
}

/// Writes `out` and the end, and reads everything the other side sends until its end.
async fn exchange(s: Stream, out: Vec<u8>) -> Vec<u8> {
    let (w, r) = tokio::join!(async { s.write(&out).await.and(s.end().await) }, s.read_to_end());
    w.expect("write");
    r.expect("read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_named_streams_both_ways_bytes_intact_then_auto_close() {
    let net = testnet().await;
    let (a, b) = (plex(&net).await, plex(&net).await);
    let (ab, ba) = connect(&a, &b).await;
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let (opener, taker) = if i % 2 == 0 { (&ab, &ba) } else { (&ba, &ab) };
        let id = format!("s{i}");
        let (x, y) = (opener.create_stream(&id), taker.receive_stream(&id));
        tasks.push(tokio::spawn(async move {
            let (x, y) = tokio::join!(x, y);
            let (x, y) = (x.expect("create"), y.expect("receive"));
            let (dx, dy) = (pattern(100_000 + i as usize, i), pattern(50_000, i + 100));
            let (got_y, got_x) = tokio::join!(exchange(x, dx.clone()), exchange(y, dy.clone()));
            assert_eq!(got_x, dx, "stream {i}: opener's bytes");
            assert_eq!(got_y, dy, "stream {i}: taker's bytes");
        }));
    }
    for t in tasks {
        within("a stream", t).await.expect("stream task");
    }
    // Every stream finished on both sides: the connection closes by itself.
    within("auto-close (a)", ab.disconnected()).await;
    within("auto-close (b)", ba.disconnected()).await;
    assert!(!ab.is_connected());
    // A handshake that raced the close on a second transport connection can start one more
    // session, which carries no stream and closes by itself (seen once in CI; noted on issue 12).
    next_plex_event(&a, "a's disconnected event", |e| matches!(e, PlexEvent::Disconnected(p) if *p == ab)).await;
    for p in [&a, &b] {
        within("no connection left", async {
            while !p.peers().is_empty() {
                p.next_event().await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclaimed_stream_is_noticed_and_a_stream_on_a_closed_peer_reopens_by_key() {
    let net = testnet().await;
    let (a, b) = (plex(&net).await, plex(&net).await);
    let (ab, ba) = connect(&a, &b).await;
    let s = ab.create_stream("x").await.expect("create");
    s.write(b"unasked").await.expect("write");
    s.end().await.expect("end");
    // Nobody on b asked for "x": it is noticed, and taken from the notice.
    let PlexEvent::Stream { peer, id, shared } = next_plex_event(&b, "stream notice", |e| matches!(e, PlexEvent::Stream { .. })).await else {
        unreachable!()
    };
    assert!(peer == ba && id == "x" && !shared);
    let r = ba.take_stream("x", false).expect("the noticed stream");
    assert!(ba.take_stream("x", false).is_none(), "taken once");
    assert_eq!(within("read", exchange(r, b"ok".to_vec())).await, b"unasked");
    assert_eq!(within("read", s.read_to_end()).await.expect("read"), b"ok");
    within("auto-close (a)", ab.disconnected()).await;
    within("auto-close (b)", ba.disconnected()).await;

    // A stream opened on the closed Peer reopens on a new connection to the same key.
    let (s2, b_new) = tokio::join!(ab.create_stream("again"), next_peer(&b));
    let s2 = s2.expect("reopen");
    assert!(b_new != ba && b_new.is_connected());
    let r2 = within("receive on the new peer", b_new.receive_stream("again")).await.expect("receive");
    let (x, y) = tokio::join!(exchange(s2, b"second".to_vec()), exchange(r2, b"reply".to_vec()));
    assert_eq!((x, y), (b"reply".to_vec(), b"second".to_vec()));
    // (It may have closed by itself already: both streams finished.)
    let a_new = a.peer(&b.public_key()).expect("a's new peer");
    assert!(a_new != ab && a_new.id() > ab.id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_claims_a_stream_that_came_first_and_next_stream_skips_it() {
    let net = testnet().await;
    let (a, b) = (plex(&net).await, plex(&net).await);
    let (ab, ba) = connect(&a, &b).await;
    // Two streams of one id come before anyone asks; both are noticed.
    let (s1, s2) = (ab.create_stream("dup").await.expect("1"), ab.create_stream("dup").await.expect("2"));
    for (s, d) in [(&s1, b"one"), (&s2, b"two")] {
        s.write(d).await.expect("write");
        s.end().await.expect("end");
    }
    for _ in 0..2 {
        next_plex_event(&b, "notice", |e| matches!(e, PlexEvent::Stream { .. })).await;
    }
    // A receive now claims the first; next_stream skips the notice whose stream was taken.
    let first = within("receive", ba.receive_stream("dup")).await.expect("receive");
    let (second, id) = within("next_stream", ba.next_stream()).await.expect("next_stream");
    assert_eq!(id, "dup");
    assert_eq!(within("1", first.read_to_end()).await.expect("1"), b"one");
    assert_eq!(within("2", second.read_to_end()).await.expect("2"), b"two");
    assert!(ba.take_stream("dup", false).is_none());
    // Receives made one after another claim streams in call order.
    let (r1, r2) = (ba.receive_stream("order"), ba.receive_stream("order"));
    for d in [b"first", b"later"] {
        let s = ab.create_stream("order").await.expect("create");
        s.write(d).await.expect("write");
        s.end().await.expect("end");
    }
    assert_eq!(within("r1", r1).await.expect("r1").read_to_end().await.expect("r1"), b"first");
    assert_eq!(within("r2", r2).await.expect("r2").read_to_end().await.expect("r2"), b"later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_streams_meet_and_a_reset_counts_as_finished() {
    let net = testnet().await;
    let (a, b) = (plex(&net).await, plex(&net).await);
    let (ab, ba) = connect(&a, &b).await;
    let (x, y) = tokio::join!(ab.create_shared_stream("chat"), ba.create_shared_stream("chat"));
    let (x, y) = (x.expect("a's end"), y.expect("b's end"));
    assert_eq!(x.name(), "chat");
    let (from_b, from_a) = tokio::join!(exchange(x, b"from a".to_vec()), exchange(y, b"from b".to_vec()));
    assert_eq!((from_b, from_a), (b"from b".to_vec(), b"from a".to_vec()));
    within("auto-close (a)", ab.disconnected()).await;

    // A reset stream is finished at once; the remote's failed read finishes its side.
    let (ab, ba) = connect(&a, &b).await;
    let (s, r) = tokio::join!(ab.create_stream("doomed"), ba.receive_stream("doomed"));
    let (s, r) = (s.expect("create"), r.expect("receive"));
    s.write(b"partial").await.expect("write");
    assert_eq!(within("partial", r.read(7)).await.expect("read"), b"partial");
    s.reset().await;
    assert_eq!(within("reset", r.read(16)).await.expect_err("reset").kind(), ErrorKind::Reset);
    within("auto-close after a reset (a)", ab.disconnected()).await;
    within("auto-close after a reset (b)", ba.disconnected()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_carried_a_stream_stays_and_dropped_streams_finish() {
    let net = testnet().await;
    let (a, b) = (plex(&net).await, plex(&net).await);
    let (ab, ba) = connect(&a, &b).await;
    // Bounded negative check: no stream, no auto-close.
    assert!(tokio::time::timeout(Duration::from_secs(1), ab.disconnected()).await.is_err());
    assert!(ab.is_connected() && ba.is_connected() && a.peers() == vec![ab.clone()]);
    // A stream both sides drop without ending it counts as finished too.
    let (s, r) = tokio::join!(ab.create_stream("dropped"), ba.receive_stream("dropped"));
    drop((s.expect("create"), r.expect("receive")));
    within("auto-close after drops (a)", ab.disconnected()).await;
    within("auto-close after drops (b)", ba.disconnected()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_by_key_times_out_cancels_and_refuses_bad_input() {
    let net = testnet().await;
    let a = plex(&net).await;
    let nobody = KeyPair::generate().public_key();
    let err = a.find_by_public_key(nobody, Some(Duration::from_millis(300))).await.expect_err("nobody");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(a.find_by_public_key(a.public_key(), None).await.expect_err("self").kind(), ErrorKind::InvalidInput);
    // A timeout on a topic search leaves the topic again (it was not joined before).
    let t = topic("plex-nobody-here");
    let err = a.find_by_topic_and_public_key(t, nobody, CLIENT, Some(Duration::from_millis(200))).await;
    assert_eq!(err.expect_err("nobody").kind(), ErrorKind::Timeout);
    within("leave", async {
        while a.swarm().status(t).await.expect("status").is_some() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // Dropping a search cancels it; the plex lives on and finds a peer that listens.
    assert!(tokio::time::timeout(Duration::from_millis(200), a.find_by_public_key(nobody, None)).await.is_err());
    let b = plex(&net).await;
    let peer = within("find b", a.find_by_public_key(b.public_key(), Some(WAIT))).await.expect("find");
    assert!(peer.is_connected() && a.peers() == vec![peer]);
    // Destroy: a pending find fails with Closed, and so do later calls.
    let pending = tokio::spawn({
        let a = a.clone();
        async move { a.find_by_public_key(nobody, None).await }
    });
    a.destroy().await;
    assert_eq!(within("pending find", pending).await.expect("task").expect_err("destroyed").kind(), ErrorKind::Closed);
    assert_eq!(a.join(t, CLIENT).await.expect_err("destroyed").kind(), ErrorKind::Closed);
    assert!(within("events end", a.next_event()).await.is_none() || a.is_destroyed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_by_topic_and_key_gives_one_connection_whatever_both_sides_use() {
    let net = testnet().await;
    let (a, b) = (unlisted_plex(&net).await, unlisted_plex(&net).await);
    let t = topic("plex-find-by-topic");
    let (pa, pb) = tokio::join!(
        a.find_by_topic_and_public_key(t, b.public_key(), JoinOptions { server: true, client: true }, Some(WAIT)),
        b.find_by_topic_and_public_key(t, a.public_key(), JoinOptions { server: true, client: true }, Some(WAIT)),
    );
    let (pa, pb) = (pa.expect("a finds b"), pb.expect("b finds a"));
    assert!(pa.public_key() == b.public_key() && pb.public_key() == a.public_key());
    assert!(pa.topics().contains(&t) || pb.topics().contains(&t));
    assert!(a.peers() == vec![pa.clone()] && b.peers() == vec![pb.clone()]);
    // Already connected: the same Peer at once.
    assert!(within("again", b.find_by_topic_and_public_key(t, a.public_key(), CLIENT, None)).await.expect("again") == pb);
    let (x, y) = tokio::join!(pa.create_shared_stream("s"), pb.create_shared_stream("s"));
    let (gx, gy) = tokio::join!(exchange(x.expect("x"), b"A".to_vec()), exchange(y.expect("y"), b"B".to_vec()));
    assert_eq!((gx, gy), (b"B".to_vec(), b"A".to_vec()));
    // The swarm under a plex still ends its own event queue once destroyed.
    a.destroy().await;
    within("the swarm's events end", async { while a.swarm().next_event().await.is_some() {} }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_disconnect_ban_and_identity() {
    let net = testnet().await;
    let kp = KeyPair::from_seed(&[7; 32]).expect("seed");
    let a = plex(&net).await;
    let b = plex_with(&net, |o| o.key_pair = Some(kp.clone())).await;
    assert_eq!(b.public_key(), kp.public_key());
    assert_eq!(b.key_pair().public_key(), kp.public_key());
    let t = topic("plex-join");
    within("announce", b.join(t, SERVER)).await.expect("announce");
    within("lookup", a.join(t, CLIENT)).await.expect("lookup");
    let ab = next_peer(&a).await;
    let ba = next_peer(&b).await;
    assert!(ab.public_key() == b.public_key() && !ab.incoming() && ab.topics().contains(&t));
    assert!(ba.incoming() && ba.public_key() == a.public_key());
    within("leave", a.leave(t)).await.expect("leave");
    within("disconnect", ab.disconnect()).await;
    assert!(!ab.is_connected() && a.peers().is_empty());
    within("b sees it", ba.disconnected()).await;

    // ban() closes the connection; both sides see it, and the peer is not found again.
    let ab2 = within("find again", a.find_by_public_key(b.public_key(), None)).await.expect("find");
    let ba2 = next_peer(&b).await;
    assert!(ab2 != ab && ba2 != ba);
    ab2.ban().expect("ban");
    within("ban (a)", ab2.disconnected()).await;
    within("banned (b)", ba2.disconnected()).await;
    let err = a.find_by_public_key(b.public_key(), Some(Duration::from_millis(500))).await.expect_err("banned");
    assert!(matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Firewalled), "{err}");
}
