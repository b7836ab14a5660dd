//! `swarmplex`: the command line. Run `swarmplex --help`.
//!
//! Exit codes: 0 success, 1 runtime failure (could not connect, peer vanished, I/O), 2 bad usage.

mod bench;
mod chat;
mod common;
mod demo;
mod identity;
mod pipe;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "swarmplex", version, about = "Find peers by topic or key; one encrypted connection per peer.")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run N DHT bootstrap nodes on loopback and print SWARMPLEX_BOOTSTRAP=… to export.
    Testnet {
        /// How many nodes.
        #[arg(default_value_t = 3)]
        nodes: usize,
        /// Port of the first node (0: random).
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[command(flatten)]
        net: common::NetworkArgs,
    },
    /// Run one long-lived DHT bootstrap and relay node on every interface (for a private network).
    Bootstrap {
        /// Port for TCP and QUIC (0: random).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Identity seed (64 hex chars) so the node keeps its peer id across restarts.
        #[arg(long)]
        seed: Option<String>,
        #[command(flatten)]
        net: common::NetworkArgs,
    },
    /// The first thing to run: a testnet, two peers, a topic, a message and a 64 MiB transfer.
    Demo {
        /// MiB to transfer.
        #[arg(long, default_value_t = 64)]
        mib: usize,
    },
    /// stdin → peer → stdout, with a peer found by topic, by key, or waiting to be found.
    Pipe(pipe::PipeArgs),
    /// Chat with everyone on a topic (names are the first 8 hex digits of each key).
    Chat(chat::ChatArgs),
    /// Make a key pair (random, or from a 32-byte hex seed).
    Keygen {
        #[arg(long)]
        seed: Option<String>,
    },
    /// Print this machine's identity (created on first use under the config directory).
    Id,
    /// Measure connect time, one-stream throughput and 1 KiB round trips on a local testnet.
    Bench(bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    common::init_logging();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    // Run the command as a task on the workers, not on this thread: every message would
    // otherwise cross between this thread and the engine's (≈4× the round-trip latency).
    let res = rt.block_on(async move {
        tokio::spawn(async move { run(cli.command).await }).await.unwrap_or_else(|e| Err(anyhow::anyhow!("{e}")))
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    if let Err(e) = res {
        eprintln!("swarmplex: {e:#}");
        std::process::exit(1);
    }
}

async fn run(command: Cmd) -> anyhow::Result<()> {
    match command {
        Cmd::Testnet { nodes, port, net } => common::run_testnet(nodes, port, net).await,
        Cmd::Bootstrap { port, seed, net } => common::run_bootstrap(port, seed, net).await,
        Cmd::Demo { mib } => demo::run(mib).await,
        Cmd::Pipe(a) => pipe::run(a).await,
        Cmd::Chat(a) => chat::run(a).await,
        Cmd::Keygen { seed } => identity::keygen(seed),
        Cmd::Id => identity::show(),
        Cmd::Bench(a) => bench::run(a).await,
    }
}
