//! The core's p2plex ([`swarmplex::plex`]) and peersockets ([`swarmplex::peersockets`]) for
//! `swarmplex.plex` and `swarmplex.peersockets`, which only translate.
//!
//! Opens claim their stream when called (before the asyncio future is awaited), as the core's do.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use swarmplex::peersockets::{Peersockets, TopicHandle};
use swarmplex::plex::{Peer, Plex};
use swarmplex::{JoinOptions, PublicKey, Topic};

use crate::errors::PyResultExt;
use crate::future::{self, spawn};
use crate::stream::{NativeStream, StreamState};
use crate::swarm::NativeSwarm;

fn key_from(py: Python<'_>, b: &[u8]) -> PyResult<PublicKey> {
    PublicKey::from_slice(b).py(py)
}

fn timeout_of(secs: Option<f64>) -> Option<Duration> {
    secs.map(|s| Duration::from_secs_f64(s.max(0.0)))
}

fn peer_out(peer: Peer) -> future::Out {
    Box::new(move |py| Ok(Py::new(py, NativePeer { peer })?.into_any()))
}

fn stream_out(s: swarmplex::Stream) -> future::Out {
    Box::new(move |py| Ok(Py::new(py, NativeStream { st: StreamState::new(s) })?.into_any()))
}

/// A p2plex instance over a native swarm.
#[pyclass(module = "swarmplex._native", frozen)]
pub struct NativePlex {
    plex: Plex,
}

#[pymethods]
impl NativePlex {
    /// A plex over `swarm`; `listen_self` announces our key.
    #[new]
    fn new(swarm: &NativeSwarm, listen_self: bool) -> Self {
        NativePlex { plex: Plex::over(swarm.swarm().clone(), listen_self, swarmplex::runtime::shared().handle()) }
    }

    /// The current peer of `key` (its latest connection's), or `None`.
    fn peer(&self, py: Python<'_>, key: &[u8]) -> PyResult<Option<NativePeer>> {
        Ok(self.plex.peer(&key_from(py, key)?).map(|peer| NativePeer { peer }))
    }

    /// The peers whose connection is open.
    fn peers(&self) -> Vec<NativePeer> {
        self.plex.peers().into_iter().map(|peer| NativePeer { peer }).collect()
    }

    /// Finds `key` by its key announce; resolves with its peer once connected.
    #[pyo3(signature = (key, timeout=None))]
    fn find_by_public_key<'py>(&self, py: Python<'py>, key: &[u8], timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let (key, plex) = (key_from(py, key)?, self.plex.clone());
        spawn(py, async move { plex.find_by_public_key(key, timeout_of(timeout)).await.map(peer_out) })
    }

    /// Joins `topic` and resolves with the peer `key` once connected to it.
    #[pyo3(signature = (topic, key, server, client, timeout=None))]
    fn find_by_topic_and_public_key<'py>(
        &self,
        py: Python<'py>,
        topic: &[u8],
        key: &[u8],
        server: bool,
        client: bool,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (topic, key, plex) = (Topic::from_slice(topic).py(py)?, key_from(py, key)?, self.plex.clone());
        let opts = JoinOptions { server, client };
        spawn(py, async move { plex.find_by_topic_and_public_key(topic, key, opts, timeout_of(timeout)).await.map(peer_out) })
    }

    /// Destroys the plex and its swarm; pending finds fail with `ClosedError`.
    fn destroy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let plex = self.plex.clone();
        spawn(py, async move {
            plex.destroy().await;
            Ok(future::none())
        })
    }
}

/// One plex connection.
#[pyclass(module = "swarmplex._native", frozen)]
pub struct NativePeer {
    peer: Peer,
}

impl NativePeer {
    fn open<'py, F>(&self, py: Python<'py>, open: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: std::future::Future<Output = swarmplex::Result<swarmplex::Stream>> + Send + 'static,
    {
        spawn(py, async move { open.await.map(stream_out) })
    }
}

#[pymethods]
impl NativePeer {
    /// Unique within its plex (Python keys its Peer objects by it).
    #[getter]
    fn id(&self) -> u64 {
        self.peer.id()
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.peer.public_key().as_bytes())
    }

    #[getter]
    fn incoming(&self) -> bool {
        self.peer.incoming()
    }

    /// Whether new streams go over this connection (open and not closing).
    #[getter]
    fn connected(&self) -> bool {
        self.peer.is_connected()
    }

    /// Whether the connection is open (it may be closing).
    #[getter]
    fn live(&self) -> bool {
        self.peer.is_live()
    }

    #[getter]
    fn topics<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.peer.topics().iter().map(|t| PyBytes::new(py, &t.0)).collect()
    }

    /// Opens a named stream (on a new connection to the key if this one is gone).
    fn create_stream<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        self.open(py, self.peer.create_stream(&id))
    }

    /// Takes the remote's `create_stream(id)`; claims it now.
    fn receive_stream<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        self.open(py, self.peer.receive_stream(&id))
    }

    /// The shared stream `id`.
    fn create_shared_stream<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        self.open(py, self.peer.create_shared_stream(&id))
    }

    /// `(stream, id)`: the next stream the remote opened that nobody claimed.
    fn next_stream<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let peer = self.peer.clone();
        spawn(py, async move {
            let (s, id) = peer.next_stream().await?;
            Ok(Box::new(move |py: Python<'_>| {
                let s = Py::new(py, NativeStream { st: StreamState::new(s) })?;
                Ok((s, id).into_pyobject(py)?.into_any().unbind())
            }) as future::Out)
        })
    }

    /// Closes the connection and bans the key.
    fn ban(&self, py: Python<'_>) -> PyResult<()> {
        self.peer.ban().py(py)
    }

    /// Closes the connection, stops reconnecting to the key; resolves once it ended.
    fn disconnect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let peer = self.peer.clone();
        spawn(py, async move {
            peer.disconnect().await;
            Ok(future::none())
        })
    }

    /// Resolves once the connection ended.
    fn disconnected<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let peer = self.peer.clone();
        spawn(py, async move {
            peer.disconnected().await;
            Ok(future::none())
        })
    }
}

/// Peersockets over a native swarm.
#[pyclass(module = "swarmplex._native", frozen)]
pub struct NativePeersockets {
    sockets: Peersockets,
}

#[pymethods]
impl NativePeersockets {
    #[new]
    fn new(swarm: &NativeSwarm) -> Self {
        NativePeersockets { sockets: Peersockets::over(swarm.swarm().clone()) }
    }

    /// A new handle on topic `name`.
    fn join(&self, py: Python<'_>, name: &str) -> PyResult<NativeTopicHandle> {
        Ok(NativeTopicHandle { handle: Arc::new(self.sockets.join(name).py(py)?) })
    }

    /// Leaves `name` (every topic if `None`); returns the ids of the handles it closed.
    #[pyo3(signature = (name=None))]
    fn leave(&self, name: Option<&str>) -> Vec<u64> {
        self.sockets.leave(name)
    }

    /// The topics with an open handle.
    fn topics(&self) -> Vec<String> {
        self.sockets.topics()
    }
}

/// One peersockets topic handle.
#[pyclass(module = "swarmplex._native", frozen)]
pub struct NativeTopicHandle {
    handle: Arc<TopicHandle>,
}

#[pymethods]
impl NativeTopicHandle {
    #[getter]
    fn id(&self) -> u64 {
        self.handle.id()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Sends `data` to the connected peer `remote`.
    fn send<'py>(&self, py: Python<'py>, remote: &[u8], data: PyBackedBytes) -> PyResult<Bound<'py, PyAny>> {
        let (remote, h) = (key_from(py, remote)?, self.handle.clone());
        spawn(py, async move { h.send(remote, &data).await.map(|_| future::none()) })
    }

    /// Sends `data` to every connected peer; resolves with how many sends succeeded.
    fn broadcast<'py>(&self, py: Python<'py>, data: PyBackedBytes) -> PyResult<Bound<'py, PyAny>> {
        let h = self.handle.clone();
        spawn(py, async move { h.broadcast(&data).await.map(future::value) })
    }

    /// `(remote, data)`, or `None` once the handle is closed and drained.
    fn next_message<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.handle.clone();
        spawn(py, async move {
            let m = h.next_message().await;
            Ok(Box::new(move |py: Python<'_>| match m {
                Some((k, d)) => Ok((PyBytes::new(py, k.as_bytes()), PyBytes::new(py, &d)).into_pyobject(py)?.into_any().unbind()),
                None => Ok(py.None()),
            }) as future::Out)
        })
    }

    /// Stops delivering to this handle.
    fn close(&self) {
        self.handle.close();
    }
}
