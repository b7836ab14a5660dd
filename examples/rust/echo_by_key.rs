//! Echo by key: a server makes itself findable by its public key (`listen`); a client that knows
//! only that key finds it (`find_peer`) and gets its message echoed back.
//!
//! Runs on a local testnet it starts itself: `cargo run -p swarmplex-examples --bin echo_by_key`.

use swarmplex::{Swarm, SwarmEvent, SwarmOptions, Testnet};

#[tokio::main]
async fn main() -> swarmplex::Result<()> {
    let testnet = Testnet::new(3).await?;
    let server = Swarm::new(SwarmOptions::local(testnet.bootstrap())).await?;
    server.listen().await?;
    server.flush().await?;
    println!("server listening as {}", server.public_key());

    // The echo loop: every connection gets its bytes back.
    let echo = server.clone();
    tokio::spawn(async move {
        while let Some(SwarmEvent::Connection(conn)) = echo.next_event().await {
            tokio::spawn(async move {
                let sock = conn.socket();
                while let Ok(chunk) = sock.read(64 * 1024).await {
                    if chunk.is_empty() || sock.write(&chunk).await.is_err() {
                        break;
                    }
                }
                let _ = sock.end().await;
            });
        }
    });

    let client = Swarm::new(SwarmOptions::local(testnet.bootstrap())).await?;
    let conn = client.find_peer(server.public_key()).await?;
    println!("client found {}", conn.remote_public_key());
    conn.socket().write(b"ping over swarmplex").await?;
    let back = conn.socket().read(1024).await?;
    println!("echoed: {}", String::from_utf8_lossy(&back));
    client.destroy().await;
    server.destroy().await;
    Ok(())
}
