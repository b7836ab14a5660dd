//! Listeners: the addresses we listen on, `listen_on` / `stop_listening`, and callers waiting
//! for listen addresses.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::Multiaddr;
use libp2p::core::transport::ListenerId;
use tokio::sync::oneshot;

use super::Engine;
use crate::error::{Error, Result};

/// The driver's listener bookkeeping.
#[derive(Default)]
pub(super) struct Listeners {
    /// Every address we listen on, in the order they came.
    pub addrs: Vec<Multiaddr>,
    /// Callers waiting until at least `min` listeners reported an address.
    waiters: Vec<(usize, oneshot::Sender<Vec<Multiaddr>>)>,
    /// `listen_on` callers, answered with the first address their listener binds.
    replies: HashMap<ListenerId, oneshot::Sender<Result<Multiaddr>>>,
    /// The addresses each listener is bound to (until it closes), so that `stop_listening`
    /// finds it by the address `listen_on` replied with even after the address expired.
    by_listener: HashMap<ListenerId, Vec<Multiaddr>>,
    /// `stop_listening` callers awaiting the close.
    unlisten_replies: HashMap<ListenerId, oneshot::Sender<Result<()>>>,
}

impl Listeners {
    /// Answers with the listen addresses once at least `min` listeners reported theirs (0: at
    /// once).
    pub fn wait_for(&mut self, min: usize, reply: oneshot::Sender<Vec<Multiaddr>>) {
        if self.by_listener.len() < min {
            self.waiters.push((min, reply));
        } else {
            let _ = reply.send(self.addrs.clone());
        }
    }

    fn added(&mut self, listener: ListenerId, address: Multiaddr) {
        if let Some(r) = self.replies.remove(&listener) {
            let _ = r.send(Ok(address.clone()));
        }
        self.by_listener.entry(listener).or_default().push(address.clone());
        self.addrs.push(address);
    }

    /// Answers the waiters whose listeners all reported. Called once the loop has handled every
    /// libp2p event that was ready, so a listener on `0.0.0.0` has reported every interface.
    pub fn answer_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let have = self.by_listener.len();
        let (ready, waiting): (Vec<_>, Vec<_>) = self.waiters.drain(..).partition(|(min, _)| have >= *min);
        self.waiters = waiting;
        for (_, w) in ready {
            let _ = w.send(self.addrs.clone());
        }
    }
}

impl Engine {
    pub(super) fn listen_on(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<Multiaddr>>) {
        match self.swarm.listen_on(addr.clone()) {
            Ok(id) => {
                self.listeners.replies.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(Error::InvalidInput(format!("listen on {addr}: {e}"))));
            }
        }
    }

    pub(super) fn stop_listening(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<()>>) {
        let found = self.listeners.by_listener.iter().find(|(_, addrs)| addrs.contains(&addr)).map(|(id, _)| *id);
        match found {
            Some(id) if self.swarm.remove_listener(id) => {
                self.listeners.unlisten_replies.insert(id, reply);
            }
            _ => {
                let _ = reply.send(Err(Error::InvalidInput(format!("not listening on {addr}"))));
            }
        }
    }

    pub(super) fn on_new_listen_addr(&mut self, listener: ListenerId, address: Multiaddr) {
        tracing::debug!(%address, "listening");
        let now = Instant::now();
        self.state.listen_addr_added(&address, now);
        self.listeners.added(listener, address);
        self.state.set_listening(true, now);
    }

    /// Drops an address we no longer listen on from what we advertise.
    pub(super) fn forget_listen_addr(&mut self, address: &Multiaddr) {
        self.listeners.addrs.retain(|a| a != address);
        let now = Instant::now();
        self.state.listen_addr_removed(address, now);
        self.state.set_listening(!self.listeners.addrs.is_empty(), now);
    }

    pub(super) fn on_listener_closed(&mut self, listener: ListenerId, reason: std::result::Result<(), std::io::Error>) {
        for address in self.listeners.by_listener.remove(&listener).unwrap_or_default() {
            self.forget_listen_addr(&address);
        }
        if let Some(r) = self.listeners.unlisten_replies.remove(&listener) {
            let _ = r.send(Ok(()));
        }
        if let Some(r) = self.listeners.replies.remove(&listener) {
            let why = reason.err().map(|e| e.to_string()).unwrap_or_else(|| "listener closed".into());
            let _ = r.send(Err(Error::InvalidInput(why)));
        }
        self.on_reservation_closed(listener);
    }

    pub(super) fn on_listener_error(&mut self, listener: ListenerId, error: std::io::Error) {
        if let Some(r) = self.listeners.replies.remove(&listener) {
            let _ = r.send(Err(Error::InvalidInput(error.to_string())));
        }
    }
}
