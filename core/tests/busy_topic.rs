//! A busy topic: many swarms join one topic at the same moment. A DHT node keeps at most 20
//! provider records per key, so the DHT alone cannot tell every joiner about every member;
//! topic peer exchange (connected members tell each other about the others) makes the mesh.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

const N: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_joiners_at_once_reach_a_full_mesh_and_nobody_stays_alone() {
    let net = testnet().await;
    let t = topic("busy-30");
    let mut swarms = Vec::new();
    for _ in 0..N {
        swarms.push(swarm(&net).await);
    }
    let start = Instant::now();
    eprintln!("joins at {:?}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap());
    for s in &swarms {
        s.join(t, BOTH).unwrap();
    }
    let mut tasks = Vec::new();
    for s in swarms.clone() {
        tasks.push(tokio::spawn(async move {
            let conns = connections_until(&s, N - 1, start, WAIT).await;
            let (first, last) = (conns.first().map(|c| c.1), conns.last().map(|c| c.1));
            (conns.len() == N - 1, conns.len(), first, last)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let links: usize = results.iter().map(|r| r.1).sum::<usize>() / 2;
    let firsts: Vec<Duration> = results.iter().filter_map(|r| r.2).collect();
    let slowest_first = firsts.iter().max().copied();
    let mesh = results.iter().filter_map(|r| r.3).max();
    let mut sorted = firsts.clone();
    sorted.sort();
    eprintln!("busy topic, {N} joiners: links {links} of {}, slowest first connection {slowest_first:?}, full mesh at {mesh:?}; first connections at {sorted:?}", N * (N - 1) / 2);
    assert_eq!(firsts.len(), N, "{} swarms never connected", N - firsts.len());
    assert!(results.iter().all(|r| r.0), "no full mesh in 30 s: {links} of {} links", N * (N - 1) / 2);
    for s in &swarms {
        assert_eq!(s.connections().await.unwrap().len(), N - 1, "one connection per peer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_exchange_tells_nobody_about_a_topic_it_did_not_join() {
    // A is on topics T and U; B on T only; C on U only, connected to A through U. C asks A about
    // U, never learns of B (a member of T, which C did not join), and B never hears of C.
    let net = testnet().await;
    let (t, u) = (topic("secret-t"), topic("shared-u"));
    let (a, b, c) = (swarm(&net).await, swarm(&net).await, swarm(&net).await);
    within("a announces T", a.join(t, BOTH).unwrap().flushed()).await.unwrap();
    within("a announces U", a.join(u, BOTH).unwrap().flushed()).await.unwrap();
    b.join(t, BOTH).unwrap();
    within("b flush", b.flush()).await.unwrap();
    c.join(u, BOTH).unwrap();
    within("c flush", c.flush()).await.unwrap();
    // A refreshes both topics: each round asks every member it is connected to, and answers.
    for s in [&a, &b, &c] {
        for (topic, opts) in s.topics().await.unwrap() {
            s.join(topic, opts).unwrap();
        }
        within("refresh", s.flush()).await.unwrap();
    }
    let keys = |conns: Vec<swarmplex::Connection>| conns.iter().map(|c| c.remote_public_key()).collect::<HashSet<_>>();
    assert_eq!(keys(c.connections().await.unwrap()), HashSet::from([a.public_key()]), "C met only A");
    assert_eq!(keys(b.connections().await.unwrap()), HashSet::from([a.public_key()]), "B met only A");
    assert_eq!(keys(a.connections().await.unwrap()), HashSet::from([b.public_key(), c.public_key()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_topic_are_not_told_about_each_other() {
    // As in Hyperswarm, where only servers announce: three clients of one server stay one
    // connection each, through the rounds that ask the server about the topic.
    let net = testnet().await;
    let t = topic("one-server-three-clients");
    let server = swarm(&net).await;
    within("announce", server.join(t, SERVER).unwrap().flushed()).await.unwrap();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(flushed_client(&net, t).await);
    }
    for c in &clients {
        c.join(t, CLIENT).unwrap(); // another round: asks the server again
        within("refresh", c.flush()).await.unwrap();
    }
    for c in &clients {
        let conns = c.connections().await.unwrap();
        assert_eq!(conns.iter().map(|x| x.remote_public_key()).collect::<Vec<_>>(), vec![server.public_key()]);
    }
    assert_eq!(server.connections().await.unwrap().len(), 3);
}
