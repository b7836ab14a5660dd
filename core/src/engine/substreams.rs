//! Our libp2p behaviour for swarmplex substreams.
//!
//! libp2p-stream (alpha) picks a connection for you and drops inbound streams when its accept
//! loop lags; sessions need neither. This behaviour:
//! - opens a substream on the *exact* connection a session lives on ([`Substreams::open`]);
//! - hands every inbound substream to the event loop, never dropping one;
//! - keeps an address book of where each peer was reached, so later redials by peer id work
//!   after kad has forgotten the addresses it found in a query;
//! - refuses connections from banned peers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::core::{ConnectedPoint, Endpoint, Multiaddr};
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound, FullyNegotiatedOutbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::PeerId;
pub(crate) use crate::link::{OpenError, OpenReply};

/// The protocol swarmplex substreams of the public network are negotiated under; a private
/// network has its own (`/swarmplex/<network>/stream/1`), so sessions never cross networks.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/swarmplex/stream/1");

/// How many addresses we remember per peer.
const MAX_ADDRS_PER_PEER: usize = 8;

/// What the behaviour reports to the event loop.
#[derive(Debug)]
pub enum Event {
    /// The remote opened a substream on `connection`.
    Inbound { peer: PeerId, connection: ConnectionId, stream: Stream },
}

/// The behaviour; see the module docs.
pub struct Substreams {
    protocol: StreamProtocol,
    pending: VecDeque<(PeerId, ConnectionId, OpenReply)>,
    events: VecDeque<Event>,
    addresses: HashMap<PeerId, Vec<Multiaddr>>,
    banned: HashSet<PeerId>,
}

impl Default for Substreams {
    fn default() -> Self {
        Substreams::new(PROTOCOL)
    }
}

impl Substreams {
    /// A behaviour whose substreams are negotiated under `protocol`.
    pub fn new(protocol: StreamProtocol) -> Self {
        Substreams {
            protocol,
            pending: VecDeque::new(),
            events: VecDeque::new(),
            addresses: HashMap::new(),
            banned: HashSet::new(),
        }
    }

    /// The addresses remembered for `peer`, most recent first.
    pub fn addresses(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.addresses.get(peer).cloned().unwrap_or_default()
    }

    /// Opens a substream on `connection` to `peer`; the reply says how it went.
    pub fn open(&mut self, peer: PeerId, connection: ConnectionId, reply: OpenReply) {
        self.pending.push_back((peer, connection, reply));
    }

    /// Remembers an address at which `peer` can be dialed (most recent first).
    pub fn add_address(&mut self, peer: PeerId, addr: Multiaddr) {
        let list = self.addresses.entry(peer).or_default();
        list.retain(|a| a != &addr);
        list.insert(0, addr);
        list.truncate(MAX_ADDRS_PER_PEER);
    }

    /// Refuses every future connection with `peer`.
    pub fn ban(&mut self, peer: PeerId) {
        self.banned.insert(peer);
    }

    fn deny_banned(&self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if self.banned.contains(peer) {
            return Err(ConnectionDenied::new(BannedPeer));
        }
        Ok(())
    }
}

/// The reason a connection with a banned peer is refused.
#[derive(Debug, thiserror::Error)]
#[error("peer is banned")]
pub struct BannedPeer;

impl NetworkBehaviour for Substreams {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.deny_banned(&peer)?;
        Ok(Handler::new(self.protocol.clone()))
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        let Some(peer) = peer else { return Ok(vec![]) };
        self.deny_banned(&peer)?;
        Ok(self.addresses.get(&peer).cloned().unwrap_or_default())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.deny_banned(&peer)?;
        Ok(Handler::new(self.protocol.clone()))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionEstablished(e) = event {
            if let ConnectedPoint::Dialer { address, .. } = e.endpoint {
                self.add_address(e.peer_id, address.clone());
            }
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        let HandlerOut::Inbound(stream) = event;
        self.events.push_back(Event::Inbound { peer, connection, stream });
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(event));
        }
        if let Some((peer_id, connection, reply)) = self.pending.pop_front() {
            return Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(connection),
                event: HandlerIn::Open(reply),
            });
        }
        Poll::Pending
    }
}

/// Commands to one connection's handler.
#[derive(Debug)]
pub enum HandlerIn {
    /// Open one outbound substream.
    Open(OpenReply),
}

/// What one connection's handler reports.
#[derive(Debug)]
pub enum HandlerOut {
    /// An inbound substream was negotiated.
    Inbound(Stream),
}

/// The per-connection half of [`Substreams`].
pub struct Handler {
    protocol: StreamProtocol,
    to_open: VecDeque<OpenReply>,
    inbound: VecDeque<Stream>,
}

impl Handler {
    fn new(protocol: StreamProtocol) -> Self {
        Handler { protocol, to_open: VecDeque::new(), inbound: VecDeque::new() }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = HandlerIn;
    type ToBehaviour = HandlerOut;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = OpenReply;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, ()> {
        SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), ())
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, OpenReply, HandlerOut>> {
        if let Some(stream) = self.inbound.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(HandlerOut::Inbound(stream)));
        }
        if let Some(reply) = self.to_open.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), reply),
            });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: HandlerIn) {
        let HandlerIn::Open(reply) = event;
        self.to_open.push_back(reply);
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), OpenReply>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol, .. }) => {
                self.inbound.push_back(protocol);
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound { protocol, info }) => {
                let _ = info.send(Ok(protocol));
            }
            ConnectionEvent::DialUpgradeError(e) => {
                let error = match e.error {
                    StreamUpgradeError::NegotiationFailed => OpenError::OtherNetwork(self.protocol.clone()),
                    other => OpenError::Failed(other.to_string()),
                };
                let _ = e.info.send(Err(error));
            }
            _ => {}
        }
    }
}

