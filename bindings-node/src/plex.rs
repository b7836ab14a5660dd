//! The core's p2plex ([`swarmplex::plex`]) and peersockets ([`swarmplex::peersockets`]) for
//! `lib/p2plex.js` and `lib/peersockets.js`, which only translate.
//!
//! A plex is driven by the swarm's own events in JS (`connection`, `stream`, `topic`,
//! `disconnection`): the core's tap has handled each event before JS sees it, so `peer(key)`
//! and `takeStream` answer in JS's order. Stream opens claim their stream when called, so a
//! `receiveStream` made before JS handles a `stream` event takes that stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use swarmplex::peersockets::{Peersockets, TopicHandle};
use swarmplex::plex::{Peer, Plex};
use swarmplex::Stream;

use crate::{NativeConnection, NativeSwarm, buf, engine_err, guard, key_of, promise};

/// A p2plex instance over a `NativeSwarm` (see the module docs).
#[napi]
pub struct NativePlex {
    plex: Plex,
    /// Finds under way, by the id JS gave them, so an AbortSignal can stop them.
    searches: Arc<Mutex<HashMap<u32, tokio::task::AbortHandle>>>,
}

fn timeout_of(ms: Option<f64>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(ms.max(0.0) as u64))
}

impl NativePlex {
    /// Runs `find` as search `id` (cancellable with `cancel(id)`), resolving with its peer.
    fn search<'e, F>(&self, env: &'e Env, id: u32, find: F) -> Result<Object<'e>>
    where
        F: std::future::Future<Output = swarmplex::Result<Peer>> + Send + 'static,
    {
        let task = swarmplex::runtime::shared().spawn(find);
        self.searches.lock().unwrap().insert(id, task.abort_handle());
        let searches = self.searches.clone();
        promise(env, async move {
            let found = task.await;
            searches.lock().unwrap().remove(&id);
            match found {
                Ok(r) => Ok(NativePeer { peer: r.map_err(engine_err)? }),
                Err(_) => Err(engine_err(swarmplex::Error::Closed("search cancelled".into()))),
            }
        })
    }
}

#[napi]
impl NativePlex {
    /// A plex over `swarm`; `listenSelf` announces our key.
    #[napi(constructor)]
    pub fn new(swarm: &NativeSwarm, listen_self: bool) -> Result<Self> {
        guard(|| {
            let plex = Plex::over(swarm.swarm.clone(), listen_self, swarmplex::runtime::shared().handle());
            Ok(NativePlex { plex, searches: Arc::default() })
        })
    }

    /// The current peer of `key` (its latest connection's), if any.
    #[napi]
    pub fn peer(&self, key: Buffer) -> Result<Option<NativePeer>> {
        guard(|| Ok(self.plex.peer(&key_of(&key)?).map(|peer| NativePeer { peer })))
    }

    /// Finds `key` by its key announce; resolves with its peer once connected.
    #[napi(ts_return_type = "Promise<NativePeer>")]
    pub fn find_by_public_key<'e>(&self, env: &'e Env, key: Buffer, timeout_ms: Option<f64>, search: u32) -> Result<Object<'e>> {
        guard(|| {
            let key = key_of(&key)?;
            let plex = self.plex.clone();
            self.search(env, search, async move { plex.find_by_public_key(key, timeout_of(timeout_ms)).await })
        })
    }

    /// Stops search `id` (its promise rejects; JS has rejected it already).
    #[napi]
    pub fn cancel(&self, search: u32) -> Result<()> {
        guard(|| {
            if let Some(task) = self.searches.lock().unwrap().remove(&search) {
                task.abort();
            }
            Ok(())
        })
    }

    /// Resolves with the peer `key` once connected (the JS swarm looks it up by topic).
    #[napi(ts_return_type = "Promise<NativePeer>")]
    pub fn wait_for_peer<'e>(&self, env: &'e Env, key: Buffer, timeout_ms: Option<f64>, search: u32) -> Result<Object<'e>> {
        guard(|| {
            let key = key_of(&key)?;
            let plex = self.plex.clone();
            self.search(env, search, async move { plex.wait_for_peer(key, timeout_of(timeout_ms)).await })
        })
    }

    /// Destroys the plex and its swarm; pending finds reject.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn destroy<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        guard(|| {
            let plex = self.plex.clone();
            promise(env, async move {
                plex.destroy().await;
                Ok(())
            })
        })
    }
}

/// One plex connection ([`swarmplex::plex::Peer`]).
#[napi]
pub struct NativePeer {
    peer: Peer,
}

impl NativePeer {
    fn stream<'e, F>(&self, env: &'e Env, open: F) -> Result<Object<'e>>
    where
        F: std::future::Future<Output = swarmplex::Result<Stream>> + Send + 'static,
    {
        let conn = self.peer.connection().clone();
        promise(env, async move {
            let s = open.await.map_err(engine_err)?;
            Ok(NativeConnection::with_stream(conn, s, false))
        })
    }
}

#[napi]
impl NativePeer {
    /// Unique within its plex: JS keys its Peer objects by it.
    #[napi(getter)]
    pub fn id(&self) -> Result<f64> {
        Ok(self.peer.id() as f64)
    }

    #[napi(getter)]
    pub fn public_key(&self) -> Result<Buffer> {
        Ok(buf(self.peer.public_key().as_bytes()))
    }

    #[napi(getter)]
    pub fn incoming(&self) -> Result<bool> {
        Ok(self.peer.incoming())
    }

    /// Whether the connection is open (it may be closing).
    #[napi(getter)]
    pub fn live(&self) -> Result<bool> {
        Ok(self.peer.is_live())
    }

    /// Whether new streams go over this connection (open and not closing).
    #[napi(getter)]
    pub fn connected(&self) -> Result<bool> {
        Ok(self.peer.is_connected())
    }

    /// Streams on this connection not finished yet (and opens under way).
    #[napi(getter)]
    pub fn open_streams(&self) -> Result<u32> {
        Ok(self.peer.open_streams() as u32)
    }

    /// Topics this peer was found under.
    #[napi(getter)]
    pub fn topics(&self) -> Result<Vec<Buffer>> {
        Ok(self.peer.topics().iter().map(|t| buf(&t.0)).collect())
    }

    /// Opens a named stream (on a new connection to the key if this one is gone).
    #[napi(ts_return_type = "Promise<NativeConnection>")]
    pub fn create_stream<'e>(&self, env: &'e Env, id: String) -> Result<Object<'e>> {
        guard(|| self.stream(env, self.peer.create_stream(&id)))
    }

    /// Takes the remote's `createStream(id)`; claims it now.
    #[napi(ts_return_type = "Promise<NativeConnection>")]
    pub fn receive_stream<'e>(&self, env: &'e Env, id: String) -> Result<Object<'e>> {
        guard(|| self.stream(env, self.peer.receive_stream(&id)))
    }

    /// The shared stream `id`.
    #[napi(ts_return_type = "Promise<NativeConnection>")]
    pub fn create_shared_stream<'e>(&self, env: &'e Env, id: String) -> Result<Object<'e>> {
        guard(|| self.stream(env, self.peer.create_shared_stream(&id)))
    }

    /// Takes an unclaimed stream the remote opened under `id`, or `null`.
    #[napi]
    pub fn take_stream(&self, id: String, shared: bool) -> Result<Option<NativeConnection>> {
        guard(|| {
            let conn = self.peer.connection().clone();
            Ok(self.peer.take_stream(&id, shared).map(|s| NativeConnection::with_stream(conn, s, false)))
        })
    }

    /// Closes the connection and bans the key.
    #[napi]
    pub fn ban(&self) -> Result<()> {
        guard(|| self.peer.ban().map_err(engine_err))
    }

    /// Closes the connection, stops reconnecting to the key; resolves once it ended.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn disconnect<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        guard(|| {
            let peer = self.peer.clone();
            promise(env, async move {
                peer.disconnect().await;
                Ok(())
            })
        })
    }
}

// ---- peersockets ------------------------------------------------------------------------------

/// A message for a topic handle, or (`closed`) the end of its messages.
#[napi(object, object_from_js = false)]
pub struct TopicMessage {
    pub handle: f64,
    pub remote: Option<Buffer>,
    pub data: Option<Buffer>,
    pub closed: bool,
}

type MessageFn = ThreadsafeFunction<TopicMessage, (), TopicMessage, Status, false, true>;

/// Peersockets over a `NativeSwarm`; messages reach JS through one weak ThreadsafeFunction.
#[napi]
pub struct NativePeersockets {
    sockets: Peersockets,
    tsfn: Arc<MessageFn>,
}

#[napi]
impl NativePeersockets {
    #[napi(constructor)]
    pub fn new(swarm: &NativeSwarm, on_message: Function<TopicMessage, ()>) -> Result<Self> {
        guard(|| {
            let tsfn = on_message.build_threadsafe_function::<TopicMessage>().weak::<true>().callee_handled::<false>().build()?;
            Ok(NativePeersockets { sockets: Peersockets::over(swarm.swarm.clone()), tsfn: Arc::new(tsfn) })
        })
    }

    /// Joins `name`; its messages come with the returned handle's id.
    #[napi]
    pub fn join(&self, name: String) -> Result<NativeTopicHandle> {
        guard(|| {
            let handle = Arc::new(self.sockets.join(&name).map_err(engine_err)?);
            let (h, tsfn) = (handle.clone(), self.tsfn.clone());
            let id = handle.id() as f64;
            swarmplex::runtime::shared().spawn(async move {
                while let Some((remote, data)) = h.next_message().await {
                    let m = TopicMessage { handle: id, remote: Some(buf(remote.as_bytes())), data: Some(data.into()), closed: false };
                    tsfn.call(m, ThreadsafeFunctionCallMode::NonBlocking);
                }
                let end = TopicMessage { handle: id, remote: None, data: None, closed: true };
                tsfn.call(end, ThreadsafeFunctionCallMode::NonBlocking);
            });
            Ok(NativeTopicHandle { handle })
        })
    }

    /// Leaves `name` (every topic if omitted); returns the ids of the handles it closed.
    #[napi]
    pub fn leave(&self, name: Option<String>) -> Result<Vec<f64>> {
        guard(|| Ok(self.sockets.leave(name.as_deref()).into_iter().map(|id| id as f64).collect()))
    }

    /// The topics with an open handle.
    #[napi]
    pub fn topics(&self) -> Result<Vec<String>> {
        guard(|| Ok(self.sockets.topics()))
    }
}

/// One peersockets topic handle.
#[napi]
pub struct NativeTopicHandle {
    handle: Arc<TopicHandle>,
}

#[napi]
impl NativeTopicHandle {
    #[napi(getter)]
    pub fn id(&self) -> Result<f64> {
        Ok(self.handle.id() as f64)
    }

    #[napi(getter)]
    pub fn closed(&self) -> Result<bool> {
        Ok(self.handle.is_closed())
    }

    /// Sends `data` to the connected peer `remote`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn send<'e>(&self, env: &'e Env, remote: Buffer, data: Buffer) -> Result<Object<'e>> {
        guard(|| {
            let (remote, data, h) = (key_of(&remote)?, data.to_vec(), self.handle.clone());
            promise(env, async move { h.send(remote, &data).await.map_err(engine_err) })
        })
    }

    /// Sends `data` to every connected peer; resolves with how many sends succeeded.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn broadcast<'e>(&self, env: &'e Env, data: Buffer) -> Result<Object<'e>> {
        guard(|| {
            let (data, h) = (data.to_vec(), self.handle.clone());
            promise(env, async move { h.broadcast(&data).await.map(|n| n as u32).map_err(engine_err) })
        })
    }

    /// Stops delivering to this handle.
    #[napi]
    pub fn close(&self) -> Result<()> {
        guard(|| {
            self.handle.close();
            Ok(())
        })
    }
}
