//! `swarmplex chat`: lines from stdin go to everyone on the topic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use swarmplex::{Connection, JoinOptions, PublicKey, Swarm, SwarmEvent};
use tokio::io::AsyncBufReadExt;

use crate::common::{PeerArgs, parse_topic};

#[derive(clap::Args)]
pub struct ChatArgs {
    /// Topic to chat on (64 hex chars, or any name).
    topic: String,
    /// A line sent to every peer as soon as it connects.
    #[arg(long)]
    greet: Option<String>,
    #[command(flatten)]
    peer: PeerArgs,
}

fn name(k: &PublicKey) -> String {
    k.to_hex()[..8].to_string()
}

pub async fn run(args: ChatArgs) -> Result<()> {
    let swarm = Swarm::new(args.peer.options()?).await?;
    swarm.join(parse_topic(&args.topic)?, JoinOptions::default())?;
    println!("* you are {}; waiting for peers on {:?}", name(&swarm.public_key()), args.topic);
    let peers: Arc<Mutex<HashMap<PublicKey, Connection>>> = Arc::default();
    let events = {
        let (swarm, peers, greet) = (swarm.clone(), peers.clone(), args.greet.clone());
        tokio::spawn(async move {
            while let Some(e) = swarm.next_event().await {
                match e {
                    SwarmEvent::Connection(c) => {
                        let k = c.remote_public_key();
                        println!("* {} joined", name(&k));
                        peers.lock().unwrap().insert(k, c.clone());
                        if let Some(g) = &greet {
                            let _ = c.socket().write(format!("{g}\n").as_bytes()).await;
                        }
                        tokio::spawn(print_lines(c));
                    }
                    SwarmEvent::Disconnected { remote, .. } => {
                        peers.lock().unwrap().remove(&remote);
                        println!("* {} left", name(&remote));
                    }
                    _ => {}
                }
            }
        })
    };
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let conns: Vec<Connection> = peers.lock().unwrap().values().cloned().collect();
        for c in conns {
            let _ = c.socket().write(format!("{line}\n").as_bytes()).await;
        }
    }
    swarm.destroy().await;
    events.abort();
    Ok(())
}

async fn print_lines(c: Connection) {
    let who = name(&c.remote_public_key());
    let mut pending = Vec::new();
    while let Ok(chunk) = c.socket().read(64 * 1024).await {
        if chunk.is_empty() {
            break;
        }
        pending.extend_from_slice(&chunk);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            println!("[{who}] {}", String::from_utf8_lossy(&line[..line.len() - 1]));
        }
    }
}
