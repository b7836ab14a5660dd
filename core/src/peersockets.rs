//! peersockets: topic-tagged messages to connected peers by key (the API of the `peersockets`
//! npm module), on the swarm's topic messages.
//!
//! Each message rides the peer's authenticated, encrypted connection, and the remote delivers
//! it only if it joined that topic (otherwise it drops it; the sender cannot tell). Topic names
//! are namespaced ([`PREFIX`]) so they never meet other users of the swarm's topic messages.
//! A topic stays joined while any [`TopicHandle`] of it is open.
//!
//! ```no_run
//! use swarmplex::peersockets::Peersockets;
//! # async fn demo(swarm: swarmplex::Swarm, friend: swarmplex::PublicKey) -> swarmplex::Result<()> {
//! let sockets = Peersockets::over(swarm);
//! let room = sockets.join("my-topic")?;
//! room.send(friend, b"hello!").await?;
//! while let Some((from, msg)) = room.next_message().await {
//!     println!("{from}: {}", String::from_utf8_lossy(&msg));
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::event::SwarmEvent;
use crate::keys::PublicKey;
use crate::swarm::Swarm;
use crate::wire::MAX_NAME;

/// Prefix of the swarm message topic that carries a peersockets topic.
pub const PREFIX: &str = "peersockets/";
/// Longest topic name, in bytes.
pub const MAX_TOPIC_NAME: usize = MAX_NAME - PREFIX.len();

/// A message: the sender's key and the bytes.
pub type Message = (PublicKey, Vec<u8>);

/// Topic-tagged messaging over a [`Swarm`]'s connections. Cheap to clone.
#[derive(Clone)]
pub struct Peersockets {
    inner: Arc<Shared>,
}

struct Shared {
    swarm: Swarm,
    /// Open handles per topic name, by handle id.
    topics: Mutex<HashMap<String, HashMap<u64, mpsc::UnboundedSender<Message>>>>,
    next_id: AtomicU64,
}

/// One app's interest in a topic: sends to peers and receives what they send on it.
pub struct TopicHandle {
    sockets: Arc<Shared>,
    name: String,
    id: u64,
    closed: AtomicBool,
    messages: tokio::sync::Mutex<mpsc::UnboundedReceiver<Message>>,
}

impl Peersockets {
    /// Peersockets over `swarm` (whose own events keep going to whoever reads them).
    pub fn over(swarm: Swarm) -> Peersockets {
        let inner = Arc::new(Shared { swarm: swarm.clone(), topics: Mutex::default(), next_id: AtomicU64::new(0) });
        let weak = Arc::downgrade(&inner);
        swarm.tap(Box::new(move |event| {
            let Some(shared) = weak.upgrade() else { return false };
            if let SwarmEvent::Message { remote, topic, data } = event {
                shared.deliver(*remote, topic, data);
            }
            true
        }));
        Peersockets { inner }
    }

    /// Joins `name` (the swarm starts delivering it) and returns a new handle on it.
    pub fn join(&self, name: &str) -> Result<TopicHandle> {
        if name.is_empty() || name.len() > MAX_TOPIC_NAME {
            return Err(Error::InvalidInput(format!("topic name must be 1 to {MAX_TOPIC_NAME} bytes")));
        }
        if self.inner.swarm.is_destroyed() {
            return Err(Error::Closed("swarm destroyed".into()));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut topics = self.inner.lock();
        let handles = topics.entry(name.to_string()).or_default();
        if handles.is_empty() {
            self.inner.swarm.join_messages(&format!("{PREFIX}{name}"));
        }
        handles.insert(id, tx);
        drop(topics);
        Ok(TopicHandle {
            sockets: self.inner.clone(),
            name: name.to_string(),
            id,
            closed: AtomicBool::new(false),
            messages: tokio::sync::Mutex::new(rx),
        })
    }

    /// Closes every handle of `name` (every topic if `None`) and stops receiving it: their
    /// [`TopicHandle::next_message`] returns `None` once it delivered what had come. Returns
    /// the ids of the handles it closed.
    pub fn leave(&self, name: Option<&str>) -> Vec<u64> {
        let mut topics = self.inner.lock();
        let names: Vec<String> = match name {
            Some(n) => vec![n.to_string()],
            None => topics.keys().cloned().collect(),
        };
        let mut closed = Vec::new();
        for n in names {
            if let Some(handles) = topics.remove(&n) {
                self.inner.swarm.leave_messages(&format!("{PREFIX}{n}"));
                closed.extend(handles.into_keys());
            }
        }
        closed
    }

    /// The names of the topics with an open handle.
    pub fn topics(&self) -> Vec<String> {
        self.inner.lock().keys().cloned().collect()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<u64, mpsc::UnboundedSender<Message>>>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deliver(&self, remote: PublicKey, topic: &str, data: &[u8]) {
        let Some(name) = topic.strip_prefix(PREFIX) else { return };
        if let Some(handles) = self.lock().get(name) {
            for tx in handles.values() {
                let _ = tx.send((remote, data.to_vec()));
            }
        }
    }

    /// Drops handle `id` of `name`; the topic is left once it has no handle.
    fn remove(&self, name: &str, id: u64) {
        let mut topics = self.lock();
        let Some(handles) = topics.get_mut(name) else { return };
        handles.remove(&id);
        if handles.is_empty() {
            topics.remove(name);
            self.swarm.leave_messages(&format!("{PREFIX}{name}"));
        }
    }

    fn topic(&self, name: &str) -> String {
        format!("{PREFIX}{name}")
    }
}

impl TopicHandle {
    /// This handle's number, unique within its [`Peersockets`].
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the handle was closed (by [`TopicHandle::close`] or [`Peersockets::leave`]).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || !self.sockets.lock().get(&self.name).is_some_and(|h| h.contains_key(&self.id))
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed("topic handle closed".into()));
        }
        Ok(())
    }

    /// Sends `msg` to the connected peer `remote`; returns once sent (it is delivered only if
    /// the remote joined this topic). Fails with `Closed` if there is no open connection to it.
    pub async fn send(&self, remote: PublicKey, msg: &[u8]) -> Result<()> {
        self.check_open()?;
        let conns = self.sockets.swarm.connections().await?;
        let conn = conns
            .into_iter()
            .find(|c| c.remote_public_key() == remote)
            .ok_or_else(|| Error::Closed(format!("no open connection to {remote}")))?;
        conn.send_message(&self.sockets.topic(&self.name), msg).await
    }

    /// Sends `msg` to every connected peer (a sender cannot know who joined: only those that
    /// did deliver it); returns how many sends succeeded.
    pub async fn broadcast(&self, msg: &[u8]) -> Result<usize> {
        self.check_open()?;
        let topic = self.sockets.topic(&self.name);
        let conns = self.sockets.swarm.connections().await?;
        let sends = conns.iter().map(|c| c.send_message(&topic, msg));
        Ok(futures::future::join_all(sends).await.into_iter().filter(Result::is_ok).count())
    }

    /// The next message on this topic; `None` once the handle is closed and what came before
    /// was read.
    pub async fn next_message(&self) -> Option<Message> {
        self.messages.lock().await.recv().await
    }

    /// Stops delivering to this handle (the topic stays joined while other handles use it).
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.sockets.remove(&self.name, self.id);
        }
    }
}

impl Drop for TopicHandle {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for TopicHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicHandle").field("name", &self.name).field("closed", &self.is_closed()).finish()
    }
}

impl std::fmt::Debug for Peersockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peersockets").field("topics", &self.topics()).finish()
    }
}
