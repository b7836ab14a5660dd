//! `swarmplex demo`: everything on loopback, printed as it happens.

use std::time::Instant;

use crate::common::first_connection;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use swarmplex::{JoinOptions, Swarm, SwarmOptions, Testnet, Topic};


fn short(k: swarmplex::PublicKey) -> String {
    k.to_hex()[..8].to_string()
}

pub async fn run(mib: usize) -> Result<()> {
    let t0 = Instant::now();
    let ms = || format!("{:>7.1} ms", t0.elapsed().as_secs_f64() * 1000.0);
    let testnet = Testnet::new(3).await?;
    println!("[{}] testnet: 3 DHT nodes on 127.0.0.1", ms());
    let alice = Swarm::new(SwarmOptions::local(testnet.bootstrap())).await?;
    let bob = Swarm::new(SwarmOptions::local(testnet.bootstrap())).await?;
    println!("[{}] alice is {}…, bob is {}…", ms(), short(alice.public_key()), short(bob.public_key()));
    let topic = Topic::from_name("swarmplex demo");
    alice.join(topic, JoinOptions { server: true, client: false })?.flushed().await?;
    println!("[{}] alice announced topic {}…", ms(), &topic.to_hex()[..8]);
    let connect_start = Instant::now();
    bob.join(topic, JoinOptions { server: false, client: true })?;
    let (a, b) = tokio::try_join!(first_connection(&alice), first_connection(&bob))?;
    println!(
        "[{}] connected in {:.1} ms; handshake hash {}… on both sides: {}",
        ms(),
        connect_start.elapsed().as_secs_f64() * 1000.0,
        &hex::encode(b.handshake_hash())[..8],
        a.handshake_hash() == b.handshake_hash()
    );
    b.socket().write(b"hello alice, this is bob").await?;
    let msg = a.socket().read(1024).await?;
    println!("[{}] alice got: {:?}", ms(), String::from_utf8_lossy(&msg));

    let block = vec![0xA5u8; 1 << 20];
    let (out, inc) = tokio::try_join!(a.create_stream("demo-file"), b.receive_stream("demo-file"))?;
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let mut h = Sha256::new();
        for i in 0..mib {
            let mut blk = block.clone();
            blk[..8].copy_from_slice(&(i as u64).to_be_bytes());
            h.update(&blk);
            out.write(&blk).await?;
        }
        out.end().await?;
        Ok::<[u8; 32], swarmplex::Error>(h.finalize().into())
    });
    let mut h = Sha256::new();
    let mut n = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = inc.read_into(&mut buf).await?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k;
    }
    let sent = writer.await.context("writer")??;
    let secs = start.elapsed().as_secs_f64();
    let got: [u8; 32] = h.finalize().into();
    println!(
        "[{}] bob received {} MiB on stream \"demo-file\" at {:.0} MiB/s; sha256 matches: {}",
        ms(),
        n >> 20,
        (n as f64 / (1 << 20) as f64) / secs,
        got == sent
    );
    anyhow::ensure!(got == sent && n == mib << 20, "transfer corrupted");
    alice.destroy().await;
    bob.destroy().await;
    testnet.destroy().await;
    println!("[{}] done", ms());
    Ok(())
}
