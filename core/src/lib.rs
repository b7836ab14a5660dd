//! # swarmplex
//!
//! A peer-to-peer connectivity engine. Peers find each other by **topic** (a 32-byte key) or by
//! **public key** through a Kademlia DHT, connect over authenticated, encrypted QUIC or
//! TCP+Noise+yamux links, and keep **exactly one connection per peer**, over which they open
//! any number of named streams and send topic messages.
//!
//! ```no_run
//! use swarmplex::{JoinOptions, Swarm, SwarmEvent, SwarmOptions, Testnet, Topic};
//!
//! # async fn demo() -> swarmplex::Result<()> {
//! let testnet = Testnet::new(3).await?;                       // DHT nodes on 127.0.0.1
//! let a = Swarm::new(SwarmOptions::local(testnet.bootstrap())).await?;
//! let b = Swarm::new(SwarmOptions::local(testnet.bootstrap())).await?;
//! let topic = Topic::from_name("hello");
//! a.join(topic, JoinOptions { server: true, client: false })?.flushed().await?;
//! b.join(topic, JoinOptions { server: false, client: true })?;
//! while let Some(event) = b.next_event().await {
//!     if let SwarmEvent::Connection(conn) = event {
//!         conn.socket().write(b"hi").await?;
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`keys`], [`topic`]: identities and topic keys (pure).
//! - [`dedup`], [`backoff`], [`flush`], [`wire`], [`exchange`]: the connection rules, wire formats
//!   and peer-exchange choice as plain state machines and codecs, unit-tested without sockets.
//! - `substreams`: our libp2p behaviour that opens streams on a chosen connection.
//! - `engine`: the event loop that owns the libp2p swarm; `handshake` and `session`: the tasks
//!   that set up and run each session; [`stream`]: the framed byte streams.
//! - [`swarm`]: the [`Swarm`] handle; [`testnet`]: local DHT nodes.
//!
//! # Shutdown
//! [`Swarm::destroy`] stops announcing, tells every connected peer goodbye on the session's
//! control stream (so remotes see the close at once, not after a timeout), waits up to 500 ms for
//! those goodbyes, then drops the libp2p swarm, which closes every transport connection. Pending
//! reads and writes on its streams fail with [`ErrorKind::Closed`]. Dropping the last [`Swarm`]
//! clone does the same without waiting.

pub mod backoff;
pub mod dedup;
mod engine;
pub mod error;
pub mod exchange;
pub mod flush;
mod handshake;
pub mod keys;
pub mod options;
pub mod runtime;
mod session;
pub mod stream;
mod substreams;
pub mod swarm;
pub mod testnet;
pub mod topic;
pub mod wire;

pub use error::{Error, ErrorKind, Result};
/// Addresses (`/ip4/127.0.0.1/tcp/4001`, …), re-exported so bindings need no libp2p dependency.
pub use libp2p::Multiaddr;
pub use keys::{KeyPair, PublicKey};
pub use options::{Firewall, JoinOptions, RelayLimits, SwarmOptions, firewall_fn};
pub use session::{Connection, PeerInfo};
pub use stream::Stream;
pub use swarm::{Discovery, Swarm, SwarmEvent};
pub use testnet::Testnet;
pub use topic::Topic;
