//! `swarmplex::peersockets`: topic-tagged messages to connected peers, over real sockets on
//! loopback — send, broadcast, several handles per topic, close, leave, and a peer that did not
//! join gets nothing.

mod common;

use std::time::Duration;

use common::*;
use swarmplex::peersockets::{MAX_TOPIC_NAME, Peersockets, TopicHandle};
use swarmplex::{ErrorKind, KeyPair, PublicKey, Swarm, SwarmEvent};

fn sockets(s: &Swarm) -> Peersockets {
    Peersockets::over(s.clone())
}

async fn next_message(h: &TopicHandle) -> (PublicKey, Vec<u8>) {
    within("a message", h.next_message()).await.expect("handle closed")
}

/// Asserts that `h` gets nothing within a short window (a bounded negative check).
async fn nothing_for(h: &TopicHandle) {
    if let Ok(m) = tokio::time::timeout(Duration::from_millis(300), h.next_message()).await {
        panic!("unexpected {m:?} on {}", h.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_broadcast_close_leave_and_a_peer_that_did_not_join_gets_nothing() {
    let net = testnet().await;
    // a is the server of a topic; b and c connect to it.
    let a = swarm(&net).await;
    within("announce", a.join(topic("ps"), SERVER).expect("join").flushed()).await.expect("announce");
    let (b, c) = (swarm(&net).await, swarm(&net).await);
    b.join(topic("ps"), CLIENT).expect("join");
    c.join(topic("ps"), CLIENT).expect("join");
    let got = connections_until(&a, 2, std::time::Instant::now(), WAIT).await;
    assert_eq!(got.len(), 2, "a connects to b and c");
    let (pa, pb, pc) = (sockets(&a), sockets(&b), sockets(&c));
    let (room_a, room_b1, room_b2) = (pa.join("room").expect("a"), pb.join("room").expect("b1"), pb.join("room").expect("b2"));
    let other_c = pc.join("other").expect("c joins another topic");

    // send: both of b's handles get it, with a's key.
    room_a.send(b.public_key(), b"hello b").await.expect("send");
    for h in [&room_b1, &room_b2] {
        assert_eq!(next_message(h).await, (a.public_key(), b"hello b".to_vec()));
    }
    // broadcast reaches every connected peer's transport; only b joined "room".
    assert_eq!(room_a.broadcast(b"to all").await.expect("broadcast"), 2);
    assert_eq!(next_message(&room_b1).await.1, b"to all");
    assert_eq!(next_message(&room_b2).await.1, b"to all");
    nothing_for(&other_c).await;
    // Replies go the other way.
    room_b1.send(a.public_key(), b"hi a").await.expect("reply");
    assert_eq!(next_message(&room_a).await, (b.public_key(), b"hi a".to_vec()));

    // A closed handle gets nothing more and refuses to send; the topic stays joined for b2.
    room_b1.close();
    assert!(room_b1.is_closed() && within("closed", room_b1.next_message()).await.is_none());
    assert_eq!(room_b1.send(a.public_key(), b"x").await.expect_err("closed").kind(), ErrorKind::Closed);
    room_a.send(b.public_key(), b"after close").await.expect("send");
    assert_eq!(next_message(&room_b2).await.1, b"after close");

    // leave closes every handle of the topic and stops delivery.
    assert_eq!(pb.leave(Some("room")), vec![room_b2.id()]);
    assert!(room_b2.is_closed() && within("left", room_b2.next_message()).await.is_none());
    assert!(pb.topics().is_empty());
    room_a.send(b.public_key(), b"after leave").await.expect("send");
    let events = drain_for(&b, Duration::from_millis(300)).await;
    let leaked = |e: &SwarmEvent| matches!(e, SwarmEvent::Message { data, .. } if data == b"after leave");
    assert!(!events.iter().any(leaked), "b's swarm delivered a message of a topic it left");
    let again = pb.join("room").expect("rejoin");
    room_a.send(b.public_key(), b"rejoined").await.expect("send");
    while next_message(&again).await.1 != b"rejoined" {} // (a late "after leave" may come first)

    // Bad input and peers we are not connected to fail with typed errors.
    assert_eq!(pa.join("").expect_err("empty").kind(), ErrorKind::InvalidInput);
    assert_eq!(pa.join(&"x".repeat(MAX_TOPIC_NAME + 1)).expect_err("long").kind(), ErrorKind::InvalidInput);
    assert!(pa.join(&"x".repeat(MAX_TOPIC_NAME)).is_ok());
    let stranger = KeyPair::generate().public_key();
    assert_eq!(room_a.send(stranger, b"?").await.expect_err("stranger").kind(), ErrorKind::Closed);
    a.destroy().await;
    assert_eq!(pa.join("late").expect_err("destroyed").kind(), ErrorKind::Closed);
}
