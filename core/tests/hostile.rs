//! Peers that try to harm others through the protocol (issue 17's hostile-peer suite, started):
//! each test has a misbehaving or merely foreign peer act, then checks a well-behaved one is
//! unaffected — over real sockets on loopback.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unannounce_withdraws_only_the_askers_own_record() {
    // `/swarmplex/unannounce/1` names only a topic: a DHT node must remove the record of the
    // peer that asks, never another's. c announces beside a and withdraws; a stays findable.
    let net = testnet().await;
    let t = topic("withdraw-only-mine");
    let (a, c) = (swarm(&net).await, swarm(&net).await);
    within("a announces", a.join(t, SERVER).unwrap().flushed()).await.unwrap();
    within("c announces", c.join(t, SERVER).unwrap().flushed()).await.unwrap();
    within("c withdraws", c.leave(t)).await.unwrap();
    let client = flushed_client(&net, t).await;
    let found: Vec<_> = client.connections().await.unwrap().iter().map(|x| x.remote_public_key()).collect();
    assert_eq!(found, vec![a.public_key()], "the client found a (and only a) after c withdrew");
}
