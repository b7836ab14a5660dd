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
//! Layers, each using only the ones above it (checked by `tests/layout.rs`):
//! 1. **Leaves**: [`keys`], [`topic`], [`wire`] (substream header and control frames),
//!    [`exchange`] (the peer-exchange codec and choice), [`options`], [`error`]; `addr`
//!    (multiaddr rules), `link` (messages about one connection: open a substream, the handshake's
//!    outcome), `firewall` (the app's firewall, asked once per peer).
//! 2. **`state`**: the rules as a sans-I/O state machine. Peers and sessions (`state::peers`:
//!    dialing, the `max_peers` cap, backoff, dedup verdicts, activation, ban, suspend/resume),
//!    topic discovery (`state::discovery`: rounds, relookups, flush) and the lifecycle. It takes
//!    time as an input, owns a seeded random generator, and returns actions; its tests
//!    (`state/tests.rs`) wire several states together in memory with a virtual clock.
//! 3. **Handles**: [`stream`] (framed byte streams), `session` ([`Connection`]), `event`
//!    ([`SwarmEvent`]), `msg` (commands from the [`Swarm`] handle, reports from tasks).
//! 4. **`tasks`**: everything that awaits I/O (handshake, control stream, peer exchange, inbound
//!    substreams), one task each, reporting back to the loop.
//! 5. **`engine`**: the driver. One task owns the libp2p swarm, feeds its events, commands and
//!    reports into the state, and carries out the state's actions; relays, peer exchange and
//!    listeners keep their remaining bookkeeping there.
//! 6. [`swarm`] ([`Swarm`], [`Discovery`]) and [`testnet`]: the public handles.
//! 7. Layers built on a swarm, which see its events through a tap without taking them from the
//!    app: [`plex`] (p2plex: peers by key, named streams, auto-close once the last stream
//!    finished, reopen by key) and [`peersockets`] (topic-tagged messages to peers by key).
//!
//! Which module owns which rule: who to dial, when to retry or give up, which of two
//! connections becomes the session, when flush resolves, what a ban does — `state`; the
//! handshake's wire steps and the heartbeat — `tasks`; address policy, relay reservations and
//! the relay fallback — `engine::relays`; peer-exchange rate limits — `engine::exchange`;
//! when a plex connection closes by itself and where a reopened stream goes — [`plex`].
//!
//! # Shutdown
//! [`Swarm::destroy`] stops announcing, tells every connected peer goodbye on the session's
//! control stream (so remotes see the close at once, not after a timeout), waits up to 500 ms for
//! those goodbyes and up to 2 s for its announces to be withdrawn from the DHT (see
//! [`unannounce`]), then drops the libp2p swarm, which closes every transport connection. Pending
//! reads and writes on its streams fail with [`ErrorKind::Closed`]. Dropping the last [`Swarm`]
//! clone does the same without waiting.

mod addr;
mod engine;
mod event;
pub mod error;
pub mod exchange;
mod firewall;
pub mod keys;
pub mod logging;
mod link;
mod msg;
pub mod options;
pub mod peersockets;
pub mod plex;
pub mod runtime;
mod session;
mod state;
pub mod stream;
pub mod swarm;
mod tasks;
pub mod testnet;
pub mod topic;
pub mod topic_exchange;
pub mod unannounce;
pub mod wire;

pub use error::{Error, ErrorKind, Result};
/// Addresses (`/ip4/127.0.0.1/tcp/4001`, …), re-exported so bindings need no libp2p dependency.
pub use libp2p::Multiaddr;
pub use keys::{KeyPair, PublicKey};
pub use options::{Firewall, JoinOptions, RelayLimits, SwarmOptions, firewall_fn};
pub use session::{Connection, Path};
pub use msg::ReachabilityInfo;
pub use state::{PeerInfo, Reachability};
pub use stream::Stream;
pub use event::SwarmEvent;
pub use swarm::{Discovery, Swarm};
pub use testnet::Testnet;
pub use topic::Topic;
