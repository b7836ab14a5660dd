//! The composed libp2p behaviour and the transport stack it runs on.

use std::time::Duration;

use futures::FutureExt;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, autonat, request_response, connection_limits, dcutr, identify, kad, mdns, noise, relay, tcp, yamux};

use super::substreams::Substreams;
use crate::error::{Error, Result};
use crate::keys::KeyPair;
use crate::unannounce;

/// The composed libp2p behaviour.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(crate) struct Behaviour {
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub identify: identify::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub limits: connection_limits::Behaviour,
    pub relay: Toggle<relay::Behaviour>,
    pub relay_client: relay::client::Behaviour,
    pub dcutr: dcutr::Behaviour,
    /// Asks AutoNAT servers whether our address candidates are reachable (every node).
    pub autonat: autonat::v2::client::Behaviour,
    /// Dials others' candidates back (DHT servers: bootstrap and testnet nodes).
    pub autonat_server: Toggle<autonat::v2::server::Behaviour>,
    pub substreams: Substreams,
    /// Withdraws our announces from DHT nodes, and (DHT servers) serves such requests.
    pub unannounce: request_response::Behaviour<unannounce::Codec>,
}

/// Builds the libp2p swarm: QUIC, TCP+Noise+yamux, WebSocket, DNS, relay client; kad, identify,
/// mDNS (if on), limits, relay server (if configured), DCUtR and our substreams.
pub(crate) fn build_libp2p(
    key_pair: &KeyPair,
    kad_protocol: &StreamProtocol,
    stream_protocol: StreamProtocol,
    relay_config: Option<relay::Config>,
    mdns_on: bool,
    dht_server: bool,
) -> Result<libp2p::Swarm<Behaviour>> {
    let internal = |e: &dyn std::fmt::Display| Error::Internal(e.to_string());
    let kad_protocol = kad_protocol.clone();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key_pair.to_libp2p())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| internal(&e))?
        .with_quic_config(|mut c| {
            // Larger flow-control windows than the defaults: loopback and LAN links are fast.
            c.max_stream_data = 16 << 20;
            c.max_connection_data = 64 << 20;
            c.max_concurrent_stream_limit = 1024;
            c.keep_alive_interval = Duration::from_secs(2);
            c
        })
        .with_dns()
        .map_err(|e| internal(&e))?
        // WebSocket over TCP (`/ip4/…/tcp/P/ws`), for peers that can only open HTTP-like sockets.
        // The builder's future is ready at once with tokio (its DNS resolver is built synchronously).
        .with_websocket(noise::Config::new, yamux::Config::default)
        .now_or_never()
        .ok_or_else(|| Error::Internal("websocket transport setup did not complete".into()))?
        .map_err(|e| internal(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| internal(&e))?
        .with_behaviour(|key, relay_client| {
            let peer = key.public().to_peer_id();
            let mut cfg = kad::Config::new(kad_protocol.clone());
            cfg.set_query_timeout(Duration::from_secs(30));
            let mut kad = kad::Behaviour::with_config(peer, kad::store::MemoryStore::new(peer), cfg);
            kad.set_mode(Some(if dht_server { kad::Mode::Server } else { kad::Mode::Client }));
            let identify = identify::Behaviour::new(
                identify::Config::new("/swarmplex/0.1.0".into(), key.public())
                    .with_agent_version(format!("swarmplex/{}", env!("CARGO_PKG_VERSION"))),
            );
            let mdns_cfg = mdns::Config { query_interval: Duration::from_secs(5), ..Default::default() };
            let mdns = if mdns_on { Some(mdns::tokio::Behaviour::new(mdns_cfg, peer)?) } else { None };
            let limits = connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established_per_peer(Some(4))
                    .with_max_established(Some(1024)),
            );
            // DHT servers (bootstrap and testnet nodes) only: a relay-only node (peer exchange)
            // would also answer probes over relayed connections, whose dial data (tens of KiB)
            // eats the circuit's byte budget.
            let autonat_server = dht_server.then(autonat::v2::server::Behaviour::default);
            // Only DHT servers hold provider records, so only they answer unannounce requests.
            let unannounce_support =
                if dht_server { request_response::ProtocolSupport::Full } else { request_response::ProtocolSupport::Outbound };
            let relay = relay_config.map(|c| {
                let mut r = relay::Behaviour::new(peer, c);
                r.set_status(Some(relay::Status::Enable));
                r
            });
            Ok(Behaviour {
                kad,
                identify,
                mdns: Toggle::from(mdns),
                limits,
                relay: Toggle::from(relay),
                relay_client,
                dcutr: dcutr::Behaviour::new(peer),
                autonat: autonat::v2::client::Behaviour::default(),
                autonat_server: Toggle::from(autonat_server),
                unannounce: request_response::Behaviour::with_codec(
                    unannounce::Codec,
                    [(unannounce::protocol_for(stream_protocol.as_ref()), unannounce_support)],
                    request_response::Config::default().with_request_timeout(Duration::from_secs(5)),
                ),
                substreams: Substreams::new(stream_protocol),
            })
        })
        .map_err(|e| internal(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build();
    Ok(swarm)
}

