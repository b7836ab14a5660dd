//! Options for a swarm and for joining a topic.

use std::sync::Arc;

use std::num::NonZeroU32;
use std::time::Duration;

use futures::future::BoxFuture;
use libp2p::{Multiaddr, relay};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::keys::{KeyPair, PublicKey};

/// Decides whether a peer may connect: resolve to `true` to **reject** it (Hyperswarm's
/// convention). Called at most once per peer; a rejected peer is banned. One that does not
/// answer within [`FIREWALL_ANSWER_TIMEOUT`] (or panics) rejects the peer, in every language.
pub type Firewall = Arc<dyn Fn(PublicKey) -> BoxFuture<'static, bool> + Send + Sync>;

/// How long the engine waits for a [`Firewall`]'s answer before it rejects the peer.
pub const FIREWALL_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Wraps a synchronous firewall function.
pub fn firewall_fn(f: impl Fn(PublicKey) -> bool + Send + Sync + 'static) -> Firewall {
    Arc::new(move |k| {
        let reject = f(k);
        Box::pin(async move { reject })
    })
}

/// The environment variable that replaces the bootstrap list of any program.
pub const BOOTSTRAP_ENV: &str = "SWARMPLEX_BOOTSTRAP";

/// The public libp2p Amino DHT's bootstrap nodes.
pub const PUBLIC_BOOTSTRAP: [&str; 4] = [
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
];

/// The Amino DHT's kad protocol.
pub const PUBLIC_KAD_PROTOCOL: &str = "/ipfs/kad/1.0.0";

/// How to build a [`crate::Swarm`]. The default joins the public network with mDNS on.
#[derive(Clone)]
pub struct SwarmOptions {
    /// The identity; random when `None` (and no `seed`).
    pub key_pair: Option<KeyPair>,
    /// Derive the identity from this 32-byte seed.
    pub seed: Option<Vec<u8>>,
    /// Bootstrap multiaddrs (each ending in `/p2p/<peer id>`). `None`: `$SWARMPLEX_BOOTSTRAP`, else
    /// the public Amino bootstrap (for the public network) or nothing (for a private one).
    pub bootstrap: Option<Vec<String>>,
    /// A private network name: its own kad protocol (`/swarmplex/<name>/kad/1.0.0`).
    /// `None` is the public Amino DHT.
    pub network: Option<String>,
    /// Cap on connections (sessions plus dials in progress); `None` is unlimited.
    pub max_peers: Option<usize>,
    /// Called once per peer before a connection is accepted.
    pub firewall: Option<Firewall>,
    /// LAN discovery by multicast DNS (on by default; [`SwarmOptions::local`] turns it off).
    /// With no bootstrap list, a swarm whose mDNS finds peers serves the DHT to them, so hosts
    /// on a LAN with no internet still find each other by topic.
    pub mdns: bool,
    /// Listen addresses; default: QUIC and TCP on every interface, random ports.
    pub listen: Option<Vec<String>>,
    /// Serve the DHT (bootstrap and testnet nodes do; app peers are DHT clients).
    pub dht_server: bool,
    /// Serve as a circuit relay (v2) for other peers, within these bounds. `None`: no relay
    /// service (the default for app peers; bootstrap and peer-exchange nodes turn it on).
    pub relay: Option<RelayLimits>,
    /// Reserve a relay slot on every connected peer that offers one, so peers that cannot
    /// reach us directly can still connect through it (circuit relay v2, then DCUtR). Without
    /// it, a node that finds itself behind a NAT reserves on up to two relays by itself.
    pub reserve_relays: bool,
    /// Relays to prefer when we are behind a NAT (multiaddrs ending in `/p2p/<peer id>`),
    /// before bootstrap nodes and other peers that offer relaying; dialed at start.
    pub relays: Vec<String>,
}

/// Bounds on the relaying a node does for others, so no peer can use it as a free relay.
/// A circuit that exceeds its byte or time budget is closed (both ends see an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLimits {
    /// Peers that may hold a reservation at once.
    pub max_reservations: usize,
    /// Relayed connections at once, in all.
    pub max_circuits: usize,
    /// Relayed connections at once from or to one peer.
    pub max_circuits_per_peer: usize,
    /// Bytes one relayed connection may carry (each way) before it is closed.
    pub max_circuit_bytes: u64,
    /// How long one relayed connection may live.
    pub max_circuit_duration: Duration,
    /// New relayed connections one peer may open per minute (as a burst, then evenly).
    pub circuits_per_minute: u32,
}

impl Default for RelayLimits {
    /// libp2p's defaults for count and time; 1 MiB per circuit, which is enough to set up a
    /// session and hole-punch, not enough to stream through someone else's bandwidth.
    fn default() -> Self {
        RelayLimits {
            max_reservations: 128,
            max_circuits: 16,
            max_circuits_per_peer: 4,
            max_circuit_bytes: 1 << 20,
            max_circuit_duration: Duration::from_secs(120),
            circuits_per_minute: 30,
        }
    }
}

impl RelayLimits {
    /// Limits for a private network's own bootstrap/relay node: no data or time limit per
    /// circuit (the only path between two peers behind symmetric NATs), more circuits and
    /// reservations. Sessions through it form only between peers of that network (their
    /// substream protocol names it); cap bandwidth with the operating system if needed.
    pub fn private_network() -> Self {
        RelayLimits {
            max_reservations: 1024,
            max_circuits: 256,
            max_circuits_per_peer: 8,
            max_circuit_bytes: u64::MAX,
            max_circuit_duration: Duration::from_secs(u64::from(u32::MAX)),
            circuits_per_minute: 60,
        }
    }

    /// The libp2p relay configuration these limits describe.
    pub(crate) fn to_config(self) -> Result<relay::Config> {
        let positive = |n: usize, what: &str| {
            if n == 0 { Err(Error::InvalidInput(format!("relay {what} must be at least 1"))) } else { Ok(n) }
        };
        let rate = NonZeroU32::new(self.circuits_per_minute)
            .ok_or_else(|| Error::InvalidInput("relay circuits_per_minute must be at least 1".into()))?;
        if self.max_circuit_bytes == 0 || self.max_circuit_duration.is_zero() {
            return Err(Error::InvalidInput("relay circuit byte and time budgets must be positive".into()));
        }
        let base = relay::Config {
            max_reservations: positive(self.max_reservations, "max_reservations")?,
            max_reservations_per_peer: 4,
            max_circuits: positive(self.max_circuits, "max_circuits")?,
            max_circuits_per_peer: positive(self.max_circuits_per_peer, "max_circuits_per_peer")?,
            max_circuit_bytes: self.max_circuit_bytes,
            max_circuit_duration: self.max_circuit_duration,
            // Drop libp2p's per-IP limiters: every peer of a LAN or a test shares one address.
            reservation_rate_limiters: vec![],
            circuit_src_rate_limiters: vec![],
            ..Default::default()
        };
        Ok(base
            .reservation_rate_per_peer(NonZeroU32::new(30).unwrap(), Duration::from_secs(2))
            // A bucket of `rate` tokens, one token back every 60 s / rate: `rate` per minute.
            .circuit_src_per_peer(rate, Duration::from_secs(60) / rate.get()))
    }
}

impl Default for SwarmOptions {
    fn default() -> Self {
        SwarmOptions {
            key_pair: None,
            seed: None,
            bootstrap: None,
            network: None,
            max_peers: None,
            firewall: None,
            mdns: true,
            listen: None,
            dht_server: false,
            relay: None,
            reserve_relays: false,
            relays: Vec::new(),
        }
    }
}

impl SwarmOptions {
    /// Options for a swarm on loopback using `bootstrap` (a local testnet): no mDNS.
    pub fn local(bootstrap: Vec<String>) -> Self {
        SwarmOptions {
            bootstrap: Some(bootstrap),
            listen: Some(loopback_listen(0)),
            mdns: false,
            ..Default::default()
        }
    }

    /// Options for a peer-exchange node of the network `network_id` (any string): no DHT
    /// bootstrap, no mDNS, no listeners until asked (`Swarm::listen_on`), a bounded relay
    /// service for its peers, and a reservation on each peer that offers one. Only nodes with
    /// the same `network_id` can open sessions with each other.
    pub fn exchange(network_id: &str) -> Self {
        SwarmOptions {
            network: Some(exchange_network(network_id)),
            bootstrap: Some(vec![]),
            listen: Some(vec![]),
            mdns: false,
            relay: Some(RelayLimits::default()),
            reserve_relays: true,
            ..Default::default()
        }
    }

    /// The substream protocol of the chosen network: sessions only form within one network.
    pub fn stream_protocol(&self) -> Result<String> {
        self.kad_protocol()?;
        Ok(match &self.network {
            None => "/swarmplex/stream/1".to_string(),
            Some(n) => format!("/swarmplex/{n}/stream/1"),
        })
    }

    /// The identity these options describe.
    pub fn resolve_key_pair(&self) -> Result<KeyPair> {
        match (&self.key_pair, &self.seed) {
            (Some(_), Some(_)) => Err(Error::InvalidInput("give key_pair or seed, not both".into())),
            (Some(kp), None) => Ok(kp.clone()),
            (None, Some(seed)) => KeyPair::from_seed(seed),
            (None, None) => Ok(KeyPair::generate()),
        }
    }

    /// The kad protocol name of the chosen network.
    pub fn kad_protocol(&self) -> Result<String> {
        match &self.network {
            None => Ok(PUBLIC_KAD_PROTOCOL.to_string()),
            Some(n) if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
                Err(Error::InvalidInput(format!("network name {n:?}: use letters, digits, - and _")))
            }
            Some(n) => Ok(format!("/swarmplex/{n}/kad/1.0.0")),
        }
    }

    /// The bootstrap list after defaults and `$SWARMPLEX_BOOTSTRAP`.
    pub fn resolve_bootstrap(&self) -> Result<Vec<Multiaddr>> {
        let list: Vec<String> = match &self.bootstrap {
            Some(b) => b.clone(),
            None => match std::env::var(BOOTSTRAP_ENV) {
                Ok(v) if !v.trim().is_empty() => v.split(',').map(|s| s.trim().to_string()).collect(),
                _ if self.network.is_none() && !self.dht_server => {
                    PUBLIC_BOOTSTRAP.iter().map(|s| s.to_string()).collect()
                }
                _ => vec![],
            },
        };
        list.iter().filter(|s| !s.is_empty() && *s != "none").map(|s| parse_addr(s)).collect()
    }

    /// The preferred relays, parsed (each must end in `/p2p/<peer id>`).
    pub fn resolve_relays(&self) -> Result<Vec<Multiaddr>> {
        self.relays.iter().map(|s| parse_addr(s)).collect()
    }

    /// The listen addresses after defaults.
    pub fn resolve_listen(&self) -> Result<Vec<Multiaddr>> {
        let list = self.listen.clone().unwrap_or_else(|| {
            vec!["/ip4/0.0.0.0/udp/0/quic-v1".to_string(), "/ip4/0.0.0.0/tcp/0".to_string()]
        });
        list.iter().map(|s| parse_addr(s)).collect()
    }
}

/// The private network name of a peer-exchange network id (a hash: ids may be any string).
pub fn exchange_network(network_id: &str) -> String {
    let digest = Sha256::digest([b"swarmplex/exchange/v1".as_slice(), network_id.as_bytes()].concat());
    format!("pex-{}", hex::encode(&digest[..16]))
}

/// QUIC and TCP listen addresses on 127.0.0.1 (`port` 0 picks random ports).
pub fn loopback_listen(port: u16) -> Vec<String> {
    vec![format!("/ip4/127.0.0.1/udp/{port}/quic-v1"), format!("/ip4/127.0.0.1/tcp/{port}")]
}

fn parse_addr(s: &str) -> Result<Multiaddr> {
    s.parse().map_err(|e| Error::InvalidInput(format!("multiaddr {s:?}: {e}")))
}

/// How to join a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinOptions {
    /// Announce ourselves so clients find us.
    pub server: bool,
    /// Look up servers and connect to them.
    pub client: bool,
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions { server: true, client: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let o = SwarmOptions { bootstrap: Some(vec![]), ..Default::default() };
        assert!(o.resolve_bootstrap().unwrap().is_empty());
        assert_eq!(o.kad_protocol().unwrap(), PUBLIC_KAD_PROTOCOL);
        let p = SwarmOptions { network: Some("my-net".into()), ..Default::default() };
        assert_eq!(p.kad_protocol().unwrap(), "/swarmplex/my-net/kad/1.0.0");
        assert!(SwarmOptions { network: Some("a/b".into()), ..Default::default() }.kad_protocol().is_err());
        assert!(SwarmOptions { bootstrap: Some(vec!["nope".into()]), ..Default::default() }.resolve_bootstrap().is_err());
        let both = SwarmOptions { seed: Some(vec![1; 32]), key_pair: Some(KeyPair::generate()), ..Default::default() };
        assert!(both.resolve_key_pair().is_err());
        assert!(SwarmOptions { seed: Some(vec![1; 31]), ..Default::default() }.resolve_key_pair().is_err());
        assert_eq!(o.stream_protocol().unwrap(), "/swarmplex/stream/1");
        assert_eq!(p.stream_protocol().unwrap(), "/swarmplex/my-net/stream/1");
    }

    #[test]
    fn exchange_networks_are_isolated_and_relay_limits_validated() {
        let a = SwarmOptions::exchange("some network/ü");
        let b = SwarmOptions::exchange("another");
        assert_ne!(a.stream_protocol().unwrap(), b.stream_protocol().unwrap());
        assert_eq!(a.stream_protocol().unwrap(), SwarmOptions::exchange("some network/ü").stream_protocol().unwrap());
        assert!(a.resolve_listen().unwrap().is_empty() && a.resolve_bootstrap().unwrap().is_empty());
        assert!(RelayLimits::default().to_config().is_ok());
        assert!(RelayLimits { max_circuits: 0, ..Default::default() }.to_config().is_err());
        assert!(RelayLimits { circuits_per_minute: 0, ..Default::default() }.to_config().is_err());
        assert!(RelayLimits { max_circuit_bytes: 0, ..Default::default() }.to_config().is_err());
    }
}
