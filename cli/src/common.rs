//! Options and helpers shared by the subcommands.

use anyhow::{Context, Result, bail};
use swarmplex::{Connection, KeyPair, Swarm, SwarmEvent, SwarmOptions, Testnet, Topic};

/// Which network to use.
#[derive(clap::Args, Clone, Default)]
pub struct NetworkArgs {
    /// Bootstrap multiaddrs, comma-separated; `none` for LAN-only. Default: $SWARMPLEX_BOOTSTRAP,
    /// else the public network's bootstrap nodes.
    #[arg(long)]
    pub bootstrap: Option<String>,
    /// A private network name (its own DHT protocol).
    #[arg(long)]
    pub network: Option<String>,
}

/// How a peer behaves on the network.
#[derive(clap::Args, Clone, Default)]
pub struct PeerArgs {
    #[command(flatten)]
    pub net: NetworkArgs,
    /// Turn off LAN discovery (mDNS).
    #[arg(long)]
    pub no_mdns: bool,
    /// Identity seed (64 hex chars); default: a fresh key.
    #[arg(long)]
    pub seed: Option<String>,
    /// Listen on 127.0.0.1 only (tests and local demos).
    #[arg(long)]
    pub loopback: bool,
    /// Listen addresses, comma-separated multiaddrs (overrides --loopback).
    #[arg(long)]
    pub listen: Option<String>,
}

impl PeerArgs {
    pub fn options(&self) -> Result<SwarmOptions> {
        let mut o = SwarmOptions {
            bootstrap: self.net.bootstrap.as_ref().map(|b| b.split(',').map(|s| s.trim().to_string()).collect()),
            network: self.net.network.clone(),
            mdns: !self.no_mdns,
            ..Default::default()
        };
        if let Some(seed) = &self.seed {
            o.key_pair = Some(parse_seed(seed)?);
        }
        if self.loopback {
            o.listen = Some(swarmplex::options::loopback_listen(0));
        }
        if let Some(l) = &self.listen {
            o.listen = Some(l.split(',').map(|s| s.trim().to_string()).collect());
        }
        Ok(o)
    }
}

pub fn parse_seed(hex_seed: &str) -> Result<KeyPair> {
    let bytes = hex::decode(hex_seed.trim()).context("seed must be hex")?;
    Ok(KeyPair::from_seed(&bytes)?)
}

/// A topic: 64 hex characters are the raw 32 bytes; anything else is hashed (`sha256(name)`).
pub fn parse_topic(s: &str) -> Result<Topic> {
    if s.len() == 64 {
        if let Ok(b) = hex::decode(s) {
            return Ok(Topic::from_slice(&b)?);
        }
    }
    if s.is_empty() {
        bail!("topic must not be empty");
    }
    Ok(Topic::from_name(s))
}

pub fn init_logging() {
    swarmplex::logging::stderr_from_env();
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn until_stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Prints a line for a long-running node; a reader that went away must not stop the node.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

pub async fn run_testnet(nodes: usize, port: u16, net: NetworkArgs) -> Result<()> {
    let testnet = Testnet::start(nodes, net.network.clone(), port).await?;
    say(&format!("SWARMPLEX_BOOTSTRAP={}", testnet.bootstrap().join(",")));
    for a in testnet.bootstrap() {
        say(&format!("  {a}"));
    }
    say(&format!("# {nodes} nodes on 127.0.0.1; Ctrl-C stops them"));
    until_stopped().await;
    testnet.destroy().await;
    Ok(())
}

pub async fn run_bootstrap(port: u16, seed: Option<String>, net: NetworkArgs) -> Result<()> {
    let key_pair = seed.as_deref().map(parse_seed).transpose()?;
    let private = net.network.is_some();
    let swarm = swarmplex::Swarm::new(SwarmOptions {
        key_pair,
        bootstrap: Some(net.bootstrap.map(|b| b.split(',').map(str::to_string).collect()).unwrap_or_default()),
        network: net.network,
        listen: Some(vec![format!("/ip4/0.0.0.0/udp/{port}/quic-v1"), format!("/ip4/0.0.0.0/tcp/{port}")]),
        dht_server: true,
        mdns: false,
        // Relay for peers that cannot be reached directly: without data or time limits on a
        // private network (its operator runs it for its own app; only peers of that network can
        // open sessions through it), within RelayLimits' default bounds on the public one.
        relay: Some(if private { swarmplex::RelayLimits::private_network() } else { swarmplex::RelayLimits::default() }),
        ..Default::default()
    })
    .await?;
    let pid = swarm.public_key().to_peer_id();
    // Every address, so an operator can copy the ones others reach it at.
    for a in swarm.listen_addrs_all().await? {
        say(&format!("{a}/p2p/{pid}"));
    }
    until_stopped().await;
    swarm.destroy().await;
    Ok(())
}

/// The next connection the swarm reports (other events are skipped).
pub async fn first_connection(s: &Swarm) -> Result<Connection> {
    while let Some(e) = s.next_event().await {
        if let SwarmEvent::Connection(c) = e {
            return Ok(c);
        }
    }
    bail!("swarm ended")
}
