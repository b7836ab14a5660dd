//! Local testnets: DHT bootstrap nodes on 127.0.0.1 for tests, demos and examples.
//!
//! ```no_run
//! # async fn demo() -> swarmplex::Result<()> {
//! let testnet = swarmplex::Testnet::new(3).await?;
//! let swarm = swarmplex::Swarm::new(swarmplex::SwarmOptions::local(testnet.bootstrap())).await?;
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::options::{SwarmOptions, loopback_listen};
use crate::addr::with_p2p;
use crate::swarm::Swarm;

/// A set of DHT server nodes on loopback. Dropping it stops them.
pub struct Testnet {
    nodes: Vec<Swarm>,
    bootstrap: Vec<String>,
}

impl Testnet {
    /// Starts `n` nodes on the public kad protocol (isolated all the same: they only know each other).
    pub async fn new(n: usize) -> Result<Self> {
        Self::start(n, None, 0).await
    }

    /// Starts `n` nodes of the private network `name`.
    pub async fn private(n: usize, name: &str) -> Result<Self> {
        Self::start(n, Some(name.to_string()), 0).await
    }

    /// Starts `n` nodes; the first listens on `first_port` (0: random), the rest on random ports.
    pub async fn start(n: usize, network: Option<String>, first_port: u16) -> Result<Self> {
        if n == 0 {
            return Err(Error::InvalidInput("a testnet needs at least one node".into()));
        }
        let mut nodes = Vec::with_capacity(n);
        let mut bootstrap: Vec<String> = Vec::with_capacity(n);
        for i in 0..n {
            let swarm = Swarm::new(SwarmOptions {
                bootstrap: Some(bootstrap.clone()),
                network: network.clone(),
                listen: Some(loopback_listen(if i == 0 { first_port } else { 0 })),
                dht_server: true,
                mdns: false,
                ..Default::default()
            })
            .await?;
            let pid = swarm.public_key().to_peer_id();
            for addr in swarm.listen_addrs_all().await? {
                bootstrap.push(with_p2p(addr, pid).to_string());
            }
            nodes.push(swarm);
        }
        Ok(Testnet { nodes, bootstrap })
    }

    /// The nodes' multiaddrs (QUIC and TCP), each ending in `/p2p/<peer id>`.
    pub fn bootstrap(&self) -> Vec<String> {
        self.bootstrap.clone()
    }

    /// Stops every node.
    pub async fn destroy(self) {
        for n in &self.nodes {
            n.destroy().await;
        }
    }
}
