//! Topic messages (peersockets): one connection per peer carries messages tagged with a topic
//! name; a peer receives only the topics it joined with `join_messages`.
//!
//! `cargo run -p swarmplex-examples --bin topic_messages`

use swarmplex::{Connection, JoinOptions, Swarm, SwarmEvent, SwarmOptions, Testnet, Topic};

async fn connections(s: &Swarm, n: usize) -> Vec<Connection> {
    let mut out = Vec::new();
    while out.len() < n {
        if let Some(SwarmEvent::Connection(c)) = s.next_event().await {
            out.push(c);
        }
    }
    out
}

async fn next_message(s: &Swarm) -> (String, String) {
    loop {
        if let Some(SwarmEvent::Message { topic, data, .. }) = s.next_event().await {
            return (topic, String::from_utf8_lossy(&data).into_owned());
        }
    }
}

#[tokio::main]
async fn main() -> swarmplex::Result<()> {
    let testnet = Testnet::new(3).await?;
    let new = || Swarm::new(SwarmOptions::local(testnet.bootstrap()));
    let (hub, reader, other) = (new().await?, new().await?, new().await?);
    let topic = Topic::from_name("topic-messages example");
    hub.join(topic, JoinOptions { server: true, client: false })?.flushed().await?;
    reader.join(topic, JoinOptions { server: false, client: true })?;
    other.join(topic, JoinOptions { server: false, client: true })?;
    reader.join_messages("news"); // only `reader` listens to "news"
    other.join_messages("sports");
    let peers = connections(&hub, 2).await;

    for p in &peers {
        p.send_message("news", b"swarmplex 0.1 released").await?;
    }
    let (t, m) = next_message(&reader).await;
    println!("reader got [{t}] {m}");
    // `other` joined only "sports": the "news" message was dropped on arrival; this one is for it.
    for p in &peers {
        p.send_message("sports", b"2 - 1").await?;
    }
    let (t, m) = next_message(&other).await;
    println!("other got [{t}] {m}");
    for s in [hub, reader, other] {
        s.destroy().await;
    }
    Ok(())
}
