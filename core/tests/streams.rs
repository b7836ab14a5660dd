//! Streams over one connection: bytes compared end to end over real sockets on loopback.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};
use swarmplex::{ErrorKind, Stream, SwarmEvent};

async fn send_all(s: Stream, data: Vec<u8>, chunk: usize) {
    for c in data.chunks(chunk) {
        s.write(c).await.unwrap();
    }
    s.end().await.unwrap();
}

async fn hash_all(s: Stream) -> ([u8; 32], usize) {
    let mut h = Sha256::new();
    let mut n = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let k = s.read_into(&mut buf).await.unwrap();
        if k == 0 {
            return (h.finalize().into(), n);
        }
        h.update(&buf[..k]);
        n += k;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mib_256_cross_byte_for_byte_while_named_streams_run_beside() {
    let net = testnet().await;
    let (_server, _client, cs, cc) = pair(&net, "big").await;
    const TOTAL: usize = 256 << 20;
    // Generate the payload in 1 MiB blocks on the fly and hash it as we go.
    let block = pattern(1 << 20, 42);
    let b2 = block.clone();
    let expect: [u8; 32] = tokio::task::spawn_blocking(move || {
        let mut expect = Sha256::new();
        for i in 0..256u32 {
            let mut b = b2.clone();
            b[..4].copy_from_slice(&i.to_be_bytes());
            expect.update(&b);
        }
        expect.finalize().into()
    })
    .await
    .unwrap();
    let sock = cc.socket();
    let writer = tokio::spawn(async move {
        for i in 0..256u32 {
            let mut b = block.clone();
            b[..4].copy_from_slice(&i.to_be_bytes());
            sock.write(&b).await.unwrap();
        }
        sock.end().await.unwrap();
    });
    let reader = tokio::spawn(hash_all(cs.socket()));
    // Eight named streams of 1 MiB each, both directions, at the same time.
    let mut side = Vec::new();
    for i in 0..8u64 {
        let (a, b) = (cc.clone(), cs.clone());
        side.push(tokio::spawn(async move {
            let name = format!("side-{i}");
            let data = pattern(1 << 20, i);
            let (out, inc) = tokio::join!(a.create_stream(&name), b.receive_stream(&name));
            let (out, inc) = (out.unwrap(), inc.unwrap());
            let want: [u8; 32] = Sha256::digest(&data).into();
            let (_, got) = tokio::join!(send_all(out, data, 100_000), hash_all(inc));
            assert_eq!(got.0, want, "named stream {i}");
        }));
    }
    for t in side {
        within("named streams", t).await.unwrap();
    }
    within("writer", writer).await.unwrap();
    let (got, n) = within("reader", reader).await.unwrap();
    assert_eq!(n, TOTAL);
    assert_eq!(got, expect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_named_streams_both_ways() {
    let net = testnet().await;
    let (_s, _c, cs, cc) = pair(&net, "sixteen").await;
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        // Even streams are opened by the client, odd ones by the server.
        let (opener, taker) = if i % 2 == 0 { (cc.clone(), cs.clone()) } else { (cs.clone(), cc.clone()) };
        tasks.push(tokio::spawn(async move {
            let name = format!("s{i}");
            let (o, t) = tokio::join!(opener.create_stream(&name), taker.receive_stream(&name));
            let (o, t) = (o.unwrap(), t.unwrap());
            let ask = pattern(50_000 + i as usize, i);
            let answer = pattern(70_000, 100 + i);
            let (a2, ans2) = (ask.clone(), answer.clone());
            let echo = tokio::spawn(async move {
                assert_eq!(t.name(), format!("s{i}"));
                let got = t.read_to_end().await.unwrap();
                assert_eq!(got, a2);
                t.write(&ans2).await.unwrap();
                t.end().await.unwrap();
            });
            o.write(&ask).await.unwrap();
            o.end().await.unwrap();
            assert_eq!(o.read_to_end().await.unwrap(), answer);
            echo.await.unwrap();
        }));
    }
    for t in tasks {
        within("stream pair", t).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_streams_meet_whichever_side_asks_first() {
    let net = testnet().await;
    let (_s, _c, cs, cc) = pair(&net, "shared").await;
    // Each side asks first once; the data meets either way.
    for (first, second, name) in [(&cc, &cs, "chat"), (&cs, &cc, "files")] {
        let (x, y) = tokio::join!(first.create_shared_stream(name), async {
            tokio::task::yield_now().await;
            second.create_shared_stream(name).await
        });
        let (x, y) = (x.unwrap(), y.unwrap());
        x.write(b"one way").await.unwrap();
        assert_eq!(y.read(64).await.unwrap(), b"one way");
        y.write(b"other way").await.unwrap();
        assert_eq!(x.read(64).await.unwrap(), b"other way");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclaimed_stream_is_announced_and_taken_once() {
    let net = testnet().await;
    let (_s, client, cs, cc) = pair(&net, "unclaimed").await;
    let out = cs.create_stream("surprise").await.unwrap();
    out.write(b"early bytes").await.unwrap();
    out.end().await.unwrap();
    let e = next_matching(&client, "stream event", |e| matches!(e, SwarmEvent::Stream { .. })).await;
    assert!(matches!(&e, SwarmEvent::Stream { name, shared: false, .. } if name == "surprise"), "{e:?}");
    let got = cc.receive_stream("surprise").await.unwrap();
    assert_eq!(got.read_to_end().await.unwrap(), b"early bytes");

    // The event's stream was taken by that receive: a handler of the event that comes late takes
    // nothing (instead of waiting and swallowing the next stream of that name)...
    assert!(cc.take_parked_stream("surprise", false).is_none());
    // ...and takes the next one, announced by its own event, without waiting.
    let out = cs.create_stream("surprise").await.unwrap();
    out.write(b"second").await.unwrap();
    out.end().await.unwrap();
    next_matching(&client, "second stream event", |e| matches!(e, SwarmEvent::Stream { .. })).await;
    let got = cc.take_parked_stream("surprise", false).expect("the second stream is parked");
    assert_eq!(got.read_to_end().await.unwrap(), b"second");
    assert!(cc.take_parked_stream("surprise", false).is_none());
    assert!(cc.take_parked_stream("surprise", true).is_none(), "shared and named are apart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_is_an_error_not_an_end() {
    let net = testnet().await;
    let (_s, _c, cs, cc) = pair(&net, "reset").await;
    let (o, t) = tokio::join!(cc.create_stream("r"), cs.receive_stream("r"));
    let (o, t) = (o.unwrap(), t.unwrap());
    o.write(b"partial").await.unwrap();
    o.reset().await;
    assert_eq!(t.read(64).await.unwrap(), b"partial");
    let err = t.read(64).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Reset, "{err}");
    assert!(o.write(b"more").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_does_not_read_holds_the_writer_back() {
    let net = testnet().await;
    let (_s, _c, cs, cc) = pair(&net, "backpressure").await;
    const TOTAL: usize = 96 << 20;
    let written = Arc::new(AtomicUsize::new(0));
    let w2 = written.clone();
    let sock = cc.socket();
    let (data, want) = tokio::task::spawn_blocking(|| {
        let data = pattern(TOTAL, 7);
        let want: [u8; 32] = Sha256::digest(&data).into();
        (data, want)
    })
    .await
    .unwrap();
    let writer = tokio::spawn(async move {
        for c in data.chunks(1 << 20) {
            sock.write(c).await.unwrap();
            w2.fetch_add(c.len(), Ordering::SeqCst);
        }
        sock.end().await.unwrap();
    });
    // Wait until the writer stalls: no progress for a whole second.
    let mut last = usize::MAX;
    within("writer stalls", async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = written.load(Ordering::SeqCst);
            if now == last {
                break;
            }
            last = now;
        }
    })
    .await;
    assert!(last < TOTAL / 2, "writer got {last} bytes ahead of a reader that never read");
    let (got, n) = within("drain", hash_all(cs.socket())).await;
    assert_eq!(n, TOTAL);
    assert_eq!(got, want);
    writer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_read_loses_nothing() {
    let net = testnet().await;
    let (_s, _c, cs, cc) = pair(&net, "cancel").await;
    let sock = cs.socket();
    assert!(tokio::time::timeout(Duration::from_millis(100), sock.read(10)).await.is_err());
    cc.socket().write(b"0123456789").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 10 {
        got.extend(sock.read(3).await.unwrap());
    }
    assert_eq!(got, b"0123456789");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_messages_reach_only_peers_that_joined_the_topic() {
    let net = testnet().await;
    let (server, _client, cs, cc) = pair(&net, "messages").await;
    server.join_messages("chat");
    cc.send_message("other", b"not for you").await.unwrap();
    cc.send_message("chat", b"hello 1").await.unwrap();
    cc.send_message("chat", b"hello 2").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        if let SwarmEvent::Message { topic, data, remote } =
            next_matching(&server, "message", |e| matches!(e, SwarmEvent::Message { .. })).await
        {
            assert_eq!(remote, cs.remote_public_key());
            assert_eq!(topic, "chat");
            got.push(data);
        }
    }
    got.sort();
    assert_eq!(got, vec![b"hello 1".to_vec(), b"hello 2".to_vec()]);
    let later = drain_for(&server, Duration::from_millis(300)).await;
    assert!(!later.iter().any(|e| matches!(e, SwarmEvent::Message { .. })), "{later:?}");
    // Leaving the message topic stops delivery.
    server.leave_messages("chat");
    cc.send_message("chat", b"after leave").await.unwrap();
    let later = drain_for(&server, Duration::from_millis(300)).await;
    assert!(!later.iter().any(|e| matches!(e, SwarmEvent::Message { .. })), "{later:?}");
}
