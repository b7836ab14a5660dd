//! `swarmplex pipe`: stdin → peer → stdout, like netcat between two machines.

use std::time::Duration;

use crate::common::first_connection;
use anyhow::{Context, Result, bail};
use swarmplex::{Connection, JoinOptions, PublicKey, Swarm};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{PeerArgs, parse_topic};

#[derive(clap::Args)]
pub struct PipeArgs {
    /// Topic to meet on (64 hex chars, or any name).
    topic: Option<String>,
    /// Connect to the peer with this public key (it runs `pipe --announce`).
    #[arg(long, conflicts_with = "topic")]
    key: Option<String>,
    /// Make this peer findable by its key and wait for one connection.
    #[arg(long, conflicts_with_all = ["topic", "key"])]
    announce: bool,
    /// Give up finding the peer after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    #[command(flatten)]
    peer: PeerArgs,
}


pub async fn run(args: PipeArgs) -> Result<()> {
    let swarm = Swarm::new(args.peer.options()?).await?;
    let find = async {
        if let Some(t) = &args.topic {
            swarm.join(parse_topic(t)?, JoinOptions::default())?;
            first_connection(&swarm).await
        } else if let Some(k) = &args.key {
            let key = PublicKey::from_hex(k).context("--key must be 64 hex chars")?;
            Ok(swarm.find_peer(key).await?)
        } else if args.announce {
            swarm.listen().await?;
            eprintln!("swarmplex pipe --key {}", swarm.public_key());
            first_connection(&swarm).await
        } else {
            bail!("give a TOPIC, --key KEY or --announce")
        }
    };
    let conn = tokio::time::timeout(Duration::from_secs(args.timeout), find)
        .await
        .context("no peer found in time")??;
    // Which path the session took: direct (quic/tcp) or through a relay.
    eprintln!("swarmplex pipe: connected to {} over {} ({})", conn.remote_public_key(), conn.transport(), conn.remote_address());
    let res = transfer(&conn).await;
    swarm.destroy().await;
    res
}

/// Copies both ways. The end of our output is written only after the remote's end was read
/// on the accepting side, and the initiator closes last-but-one: so neither side closes while
/// the other's bytes are still in flight.
async fn transfer(conn: &Connection) -> Result<()> {
    let sock = conn.socket();
    let progress = crate::pipe::progress();
    let send = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = stdin.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            sock.write(&buf[..n]).await?;
            if let Some(p) = &progress {
                p.inc(n as u64);
            }
        }
        Ok::<(), anyhow::Error>(())
    };
    let recv = async {
        let mut stdout = tokio::io::stdout();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = sock.read_into(&mut buf).await?;
            if n == 0 {
                break;
            }
            stdout.write_all(&buf[..n]).await?;
        }
        stdout.flush().await?;
        Ok::<(), anyhow::Error>(())
    };
    if conn.is_initiator() {
        let send_and_end = async {
            send.await?;
            sock.end().await?;
            Ok::<(), anyhow::Error>(())
        };
        tokio::try_join!(send_and_end, recv)?;
    } else {
        tokio::try_join!(send, recv)?;
        sock.end().await?;
        // The initiator closes once it has read our end; wait for that (bounded).
        let _ = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await;
    }
    if let Some(p) = progress {
        p.finish();
    }
    Ok(())
}

/// A progress bar on stderr, only when stderr is a terminal.
pub fn progress() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let p = indicatif::ProgressBar::new_spinner();
    p.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {bytes} sent ({bytes_per_sec}) {elapsed}").ok()?,
    );
    p.enable_steady_tick(Duration::from_millis(200));
    Some(p)
}
