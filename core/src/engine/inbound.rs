//! Reports from tasks, and inbound substreams routed by their header's kind: Control → a
//! handshake task, Socket → the session starts, Named/Shared → the session's streams,
//! Exchange → a peer-exchange server task, Topics → a topic-exchange server task, Message → a
//! message reader task.

use std::time::Instant;

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

use super::Engine;
use crate::event::SwarmEvent;
use crate::msg::Report;
use crate::session::Connection;
use crate::state::dedup::Role;
use crate::tasks;
use crate::wire::{Header, Kind};

impl Engine {
    pub(super) fn on_report(&mut self, report: Report) {
        let now = Instant::now();
        match report {
            Report::Inbound { peer, conn, header, stream } => self.on_inbound(peer, conn, header, stream),
            Report::Handshaked { peer, conn, role, handshake, activate } => {
                self.state.handshaked(peer, conn, role, handshake, activate);
            }
            Report::HandshakeFailed { peer, conn, session_id, error } => {
                self.state.handshake_failed(peer, conn, session_id, error, now);
            }
            Report::SocketOpened { peer, conn, result } => {
                let (result, socket) = match result {
                    Ok(s) => (Ok(()), Some(s)),
                    Err(e) => (Err(e), None),
                };
                let link = self.ctx.link.clone();
                self.state.socket_opened(peer, conn, result, now, |plan, activate| {
                    Connection::start(plan, socket?, link, activate)
                });
            }
            Report::SessionEnded { conn, session_id, reason } => self.state.session_ended(conn, session_id, reason, now),
            Report::ExchangeAnswer { via, result, reply } => self.on_exchange_answer(via, result, reply),
            Report::ExchangeChoose { asker, exclude, reply } => self.choose_offer(asker, &exclude, reply),
            Report::TopicsAsked { asker, tags, reply } => self.answer_members(asker, tags, reply),
            Report::TopicMembers { from, members } => self.on_members(from, members),
        }
    }

    fn on_inbound(&mut self, pid: PeerId, conn: ConnectionId, header: Header, stream: libp2p::Stream) {
        let Some(key) = self.state.inbound_allowed(pid, conn) else { return };
        match header.kind {
            Kind::Control => {
                let ctx = self.ctx.clone();
                match self.state.inbound_control(pid, conn) {
                    Some(Role::Leader) => drop(tokio::spawn(tasks::handshake::lead(ctx, pid, key, conn, Some(stream)))),
                    Some(Role::Follower) => drop(tokio::spawn(tasks::handshake::follow(ctx, pid, key, conn, stream))),
                    None => {}
                }
            }
            Kind::Socket => {
                let link = self.ctx.link.clone();
                self.state.inbound_socket(pid, conn, Instant::now(), |plan, activate| {
                    Connection::start(plan, stream, link, activate)
                });
            }
            Kind::Named | Kind::Shared => {
                let Some(s) = self.state.session_on(&pid, conn) else { return };
                if s.deliver(header.kind, header.name.clone(), stream) {
                    let shared = header.kind == Kind::Shared;
                    self.emit(SwarmEvent::Stream { remote: key, name: header.name, shared });
                }
            }
            Kind::Exchange => {
                if self.state.session_on(&pid, conn).is_some() {
                    self.serve_exchange(pid, key, stream);
                }
            }
            Kind::Topics => {
                if self.state.session_on(&pid, conn).is_some() {
                    self.serve_members(pid, stream);
                }
            }
            Kind::Message => {
                let Some(s) = self.state.session_on(&pid, conn) else { return };
                let closed = s.closed_watch();
                let (joined, events) = (self.message_topics.clone(), self.events.clone());
                tokio::spawn(tasks::inbound::read_message(stream, header.name, key, closed, joined, events));
            }
        }
    }
}
