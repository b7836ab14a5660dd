//! libp2p events → state inputs and driver bookkeeping.

use std::time::Instant;

use libp2p::kad::{self, GetProvidersOk, QueryResult};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent as P2pEvent;
use libp2p::{identify, mdns, relay};

use super::Engine;
use super::behaviour::BehaviourEvent;
use super::substreams;
use crate::addr::strip_p2p;
use crate::error::Error;
use crate::state::ConnFacts;
use crate::tasks;

/// The protocol AutoNAT v2 servers list in identify.
const AUTONAT_DIAL_REQUEST: &str = "/libp2p/autonat/2/dial-request";

impl Engine {
    pub(super) fn on_swarm_event(&mut self, event: P2pEvent<BehaviourEvent>) {
        let now = Instant::now();
        match event {
            P2pEvent::NewListenAddr { address, listener_id } => self.on_new_listen_addr(listener_id, address),
            P2pEvent::ExternalAddrConfirmed { address } => tracing::debug!(%address, "external address confirmed"),
            // The listener keeps the address (until it closes), so that `stop_listening` still
            // finds it by the address `listen_on` replied with.
            P2pEvent::ExpiredListenAddr { address, .. } => self.forget_listen_addr(&address),
            P2pEvent::ListenerClosed { listener_id, reason, .. } => self.on_listener_closed(listener_id, reason),
            P2pEvent::ListenerError { listener_id, error } => self.on_listener_error(listener_id, error),
            P2pEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                let relayed = endpoint.is_relayed();
                let addr = match &endpoint {
                    // An inbound circuit: `<relay addr>/p2p/<relay>/p2p-circuit/p2p/<remote>`.
                    libp2p::core::ConnectedPoint::Listener { local_addr, .. } if relayed => {
                        strip_p2p(local_addr.clone()).with(Protocol::P2p(peer_id))
                    }
                    _ => endpoint.get_remote_address().clone(),
                };
                if let Some(reply) = self.addr_dials.remove(&connection_id) {
                    // A dial by address: only now do we know whom we reached.
                    match self.state.ensure_peer(peer_id) {
                        Some(_) => match self.state.expect_session(peer_id) {
                            Some(s) => self.reply_when_settled(peer_id, reply, s),
                            None => self.dial_waiters.entry(peer_id).or_default().push(reply),
                        },
                        None => {
                            let _ = reply.send(Err(Error::Connect("the peer's key is not an Ed25519 key".into())));
                        }
                    }
                }
                if endpoint.is_dialer() && !relayed {
                    // Remember where we reached it: a retry after the lookup that found it ended
                    // has no other source of addresses (kad returns providers' ids only).
                    self.swarm.behaviour_mut().substreams.add_address(peer_id, addr.clone());
                }
                let facts = ConnFacts { dialer: endpoint.is_dialer(), addr, relayed };
                self.state.connection_established(peer_id, connection_id, facts, now);
                if !relayed {
                    self.dial_waiting_circuits(peer_id);
                }
            }
            P2pEvent::ConnectionClosed { peer_id, connection_id, cause, .. } => {
                self.state.connection_closed(peer_id, connection_id, cause.map(|c| c.to_string()), now);
                if self.state.dialed_addr(&peer_id).is_none() {
                    self.state.relay_gone(peer_id, now);
                }
            }
            P2pEvent::OutgoingConnectionError { connection_id, error, peer_id } => {
                if let Some(reply) = self.addr_dials.remove(&connection_id) {
                    let _ = reply.send(Err(Error::Connect(error.to_string())));
                    return;
                }
                let Some(pid) = peer_id else { return };
                if let libp2p::swarm::DialError::Transport(tried) = &error {
                    // The addresses the lookup offered: keep them for the backoff's retries.
                    for (addr, _) in tried {
                        self.swarm.behaviour_mut().substreams.add_address(pid, strip_p2p(addr.clone()));
                    }
                }
                if self.relays.has_circuit_dials(&pid) && !self.state.connected_to(&pid) {
                    self.fail_waiting_circuits(pid, &error);
                } else if self.relays.has_fallback(&pid) {
                    self.dial_relay(pid);
                } else {
                    self.state.dial_failed(pid, Error::Connect(error.to_string()), now);
                }
            }
            P2pEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e, now),
            P2pEvent::Behaviour(BehaviourEvent::Unannounce(e)) => self.on_unannounce(e),
            P2pEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                let is_dht_server = info.protocols.contains(&self.kad_protocol);
                if info.protocols.iter().any(|p| p.as_ref() == AUTONAT_DIAL_REQUEST) {
                    self.state.autonat_server(peer_id, now);
                }
                self.state.observed_addr(&info.observed_addr, peer_id, now);
                self.on_relay_offer(peer_id, info.protocols.contains(&relay::HOP_PROTOCOL_NAME));
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().substreams.add_address(peer_id, addr.clone());
                    if is_dht_server {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            P2pEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(list))) => {
                if self.lan_dht && self.swarm.behaviour().kad.mode() == kad::Mode::Client {
                    // No bootstrap nodes: the LAN peers are the DHT. Serve it, and look up again
                    // now that there is someone to ask.
                    tracing::debug!("mDNS found peers: serving the DHT on the LAN");
                    self.swarm.behaviour_mut().kad.set_mode(Some(kad::Mode::Server));
                }
                let had_peers = self.swarm.behaviour_mut().kad.kbuckets().any(|b| b.num_entries() > 0);
                for (pid, addr) in list {
                    self.swarm.behaviour_mut().substreams.add_address(pid, addr.clone());
                    self.swarm.behaviour_mut().kad.add_address(&pid, addr);
                }
                if self.lan_dht && !had_peers {
                    self.state.restart_rounds(now);
                }
            }
            P2pEvent::Behaviour(BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            })) => {
                tracing::debug!(relay = %relay_peer_id, renewal, "relay reservation accepted");
                self.on_reservation_accepted(relay_peer_id);
            }
            P2pEvent::Behaviour(BehaviourEvent::Relay(e)) => match e {
                relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                    self.relays.reserved_here.insert(src_peer_id);
                }
                relay::Event::ReservationClosed { src_peer_id } | relay::Event::ReservationTimedOut { src_peer_id } => {
                    self.relays.reserved_here.remove(&src_peer_id);
                }
                relay::Event::CircuitReqDenied { src_peer_id, dst_peer_id, status } => {
                    tracing::debug!(%src_peer_id, %dst_peer_id, ?status, "relay circuit denied");
                }
                _ => {}
            },
            P2pEvent::Behaviour(BehaviourEvent::Dcutr(e)) => {
                tracing::debug!(remote = %e.remote_peer_id, result = ?e.result, "hole punch");
                if e.result.is_err() {
                    self.state.punch_failed(e.remote_peer_id);
                }
            }
            P2pEvent::Behaviour(BehaviourEvent::Autonat(e)) => {
                tracing::debug!(addr = %e.tested_addr, server = %e.server, ok = e.result.is_ok(), "AutoNAT probe");
                self.state.autonat_result(e.tested_addr, e.server, e.result.is_ok(), now);
            }
            P2pEvent::Behaviour(BehaviourEvent::Substreams(substreams::Event::Inbound { peer, connection, stream })) => {
                tokio::spawn(tasks::inbound::read_header(self.ctx.report.clone(), peer, connection, stream));
            }
            _ => {}
        }
    }

    fn on_kad(&mut self, event: kad::Event, now: Instant) {
        let kad::Event::OutboundQueryProgressed { id, result, step, .. } = event else { return };
        if let QueryResult::StartProviding(_) = &result {
            self.announce_finished(&id);
        }
        if self.withdrawals.owns_query(&id) {
            if let QueryResult::GetClosestPeers(r) = result {
                self.on_withdraw_query(id, r, step.last);
            }
            return;
        }
        let Some(&query) = self.queries.get(&id) else { return };
        if step.last {
            self.queries.remove(&id);
        }
        match result {
            QueryResult::StartProviding(res) => {
                self.queries.remove(&id);
                match res {
                    Err(e) => tracing::debug!(?query, "announce: {e:?}"),
                    Ok(_) => tracing::debug!(?query, "announced"),
                }
                self.state.announce_done(query, now);
            }
            QueryResult::GetProviders(res) => {
                let providers: Vec<_> = match res {
                    Ok(GetProvidersOk::FoundProviders { providers, .. }) => providers.into_iter().collect(),
                    _ => Vec::new(),
                };
                tracing::debug!(?query, found = providers.len(), last = step.last, "lookup progressed");
                self.state.providers_found(query, providers, step.last, now);
            }
            _ => {}
        }
    }
}
