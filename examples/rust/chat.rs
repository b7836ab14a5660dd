//! Chat on a topic: every peer joins as client and server; lines written to a connection's socket
//! are printed by the other side. (`swarmplex chat TOPIC` is the interactive version.)
//!
//! `cargo run -p swarmplex-examples --bin chat`

use swarmplex::{Connection, JoinOptions, Swarm, SwarmEvent, SwarmOptions, Testnet, Topic};

async fn first_connection(s: &Swarm) -> Connection {
    loop {
        if let Some(SwarmEvent::Connection(c)) = s.next_event().await {
            return c;
        }
    }
}

#[tokio::main]
async fn main() -> swarmplex::Result<()> {
    let testnet = Testnet::new(3).await?;
    let alice = Swarm::new(SwarmOptions::local(testnet.bootstrap())).await?;
    let bob = Swarm::new(SwarmOptions::local(testnet.bootstrap())).await?;
    let room = Topic::from_name("chat example room");
    alice.join(room, JoinOptions::default())?;
    bob.join(room, JoinOptions::default())?;
    let (to_bob, to_alice) = tokio::join!(first_connection(&alice), first_connection(&bob));
    println!("alice and bob share one connection: {}", to_bob.handshake_hash() == to_alice.handshake_hash());

    to_bob.socket().write(b"hi bob!\n").await?;
    println!("bob reads: {}", String::from_utf8_lossy(&to_alice.socket().read(1024).await?).trim_end());
    to_alice.socket().write(b"hello alice!\n").await?;
    println!("alice reads: {}", String::from_utf8_lossy(&to_bob.socket().read(1024).await?).trim_end());
    alice.destroy().await;
    bob.destroy().await;
    Ok(())
}
