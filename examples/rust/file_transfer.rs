//! File transfer over named streams: the sender opens a `meta` stream with the file's name, size
//! and SHA-256, and a `data` stream with the bytes; the receiver takes both by name and checks.
//!
//! `cargo run -p swarmplex-examples --bin file_transfer [PATH]` (default: 16 MiB of generated data).

use sha2::{Digest, Sha256};
use swarmplex::{Connection, JoinOptions, Swarm, SwarmEvent, SwarmOptions, Testnet, Topic};

async fn first_connection(s: &Swarm) -> Connection {
    loop {
        if let Some(SwarmEvent::Connection(c)) = s.next_event().await {
            return c;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (name, bytes) = match std::env::args().nth(1) {
        Some(path) => (path.clone(), std::fs::read(&path)?),
        None => ("generated.bin".to_string(), (0..16u32 << 20).map(|i| (i * 7 % 251) as u8).collect()),
    };
    let testnet = Testnet::new(3).await?;
    let sender = Swarm::new(SwarmOptions::local(testnet.bootstrap())).await?;
    let receiver = Swarm::new(SwarmOptions::local(testnet.bootstrap())).await?;
    let topic = Topic::from_name("file-transfer example");
    sender.join(topic, JoinOptions { server: true, client: false })?.flushed().await?;
    receiver.join(topic, JoinOptions { server: false, client: true })?;
    let (to_receiver, to_sender) = tokio::join!(first_connection(&sender), first_connection(&receiver));

    let digest = hex::encode(Sha256::digest(&bytes));
    let send = async {
        let meta = to_receiver.create_stream("meta").await?;
        meta.write(format!("{name}\n{}\n{digest}\n", bytes.len()).as_bytes()).await?;
        meta.end().await?;
        let data = to_receiver.create_stream("data").await?;
        data.write(&bytes).await?;
        data.end().await
    };
    let receive = async {
        let meta = String::from_utf8(to_sender.receive_stream("meta").await?.read_to_end().await?).unwrap();
        let data = to_sender.receive_stream("data").await?.read_to_end().await?;
        Ok::<_, swarmplex::Error>((meta, data))
    };
    let (sent, received) = tokio::join!(send, receive);
    sent?;
    let (meta, data) = received?;
    let mut lines = meta.lines();
    let (got_name, size, want) = (lines.next().unwrap(), lines.next().unwrap(), lines.next().unwrap());
    let ok = hex::encode(Sha256::digest(&data)) == want && data.len().to_string() == size;
    println!("received {got_name}: {} bytes, sha256 {} — {}", data.len(), &want[..16], if ok { "verified" } else { "CORRUPT" });
    sender.destroy().await;
    receiver.destroy().await;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
