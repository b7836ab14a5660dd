//! The swarm handle.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use swarmplex::{Discovery, JoinOptions, KeyPair, PublicKey, Swarm, SwarmEvent, SwarmOptions, Topic};
use tokio::sync::oneshot;

use crate::bridge;
use crate::connection::NativeConnection;
use crate::errors::PyResultExt;
use crate::future::{self, spawn};
use crate::registry::{self, Entry};


/// The Python firewall and the loop it runs on; cleared on destroy so engine tasks hold no
/// Python objects past it.
pub struct FirewallSlot {
    inner: Mutex<Option<(Py<PyAny>, Option<Py<PyAny>>)>>,
}

impl FirewallSlot {
    pub fn clear(&self) {
        let taken = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(taken);
    }
}

/// Receives the firewall's verdict (called from Python: `reply(reject)`).
#[pyclass(module = "swarmplex._native")]
struct FirewallReply {
    tx: Mutex<Option<oneshot::Sender<bool>>>,
}

#[pymethods]
impl FirewallReply {
    fn __call__(&self, reject: bool) {
        if let Some(tx) = self.tx.lock().unwrap().take() {
            let _ = tx.send(reject);
        }
    }
}

fn make_firewall(slot: Arc<FirewallSlot>) -> swarmplex::Firewall {
    Arc::new(move |key: PublicKey| -> BoxFuture<'static, bool> {
        let slot = slot.clone();
        Box::pin(async move {
            let (tx, rx) = oneshot::channel::<bool>();
            bridge::submit(Box::new(move |py| {
                // Clone out under the lock, call without it (Python may switch threads).
                let parts = slot
                    .inner
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map(|(cb, lp)| (cb.clone_ref(py), lp.as_ref().map(|l| l.clone_ref(py))));
                let Some((cb, Some(lp))) = parts else {
                    let _ = tx.send(true);
                    return;
                };
                let reply = FirewallReply { tx: Mutex::new(Some(tx)) };
                let res = py
                    .import("swarmplex._swarm")
                    .and_then(|m| m.getattr("_run_firewall"))
                    .and_then(|run| {
                        lp.bind(py).call_method1(
                            "call_soon_threadsafe",
                            (run, cb, PyBytes::new(py, key.as_bytes()), reply),
                        )
                    });
                if let Err(e) = res {
                    tracing::warn!("firewall could not be called: {e}");
                }
            }));
            // No verdict (loop closed, swarm destroyed): reject. The core bounds the wait
            // (FIREWALL_ANSWER_TIMEOUT, the same in every language).
            !matches!(rx.await, Ok(false))
        })
    })
}

fn topic_from(py: Python<'_>, b: &[u8]) -> PyResult<Topic> {
    Topic::from_slice(b).py(py)
}

fn key_from(py: Python<'_>, b: &[u8]) -> PyResult<PublicKey> {
    PublicKey::from_slice(b).py(py)
}

fn event_out(ev: Option<SwarmEvent>) -> future::Out {
    Box::new(move |py| {
        let Some(ev) = ev else { return Ok(py.None()) };
        let key = |k: PublicKey| PyBytes::new(py, k.as_bytes());
        let t = match ev {
            SwarmEvent::Connection(c) => {
                ("connection", Py::new(py, NativeConnection::new(c))?).into_pyobject(py)?.into_any()
            }
            SwarmEvent::Disconnected { remote, reason } => {
                ("disconnected", key(remote), reason.kind().as_str(), reason.to_string())
                    .into_pyobject(py)?
                    .into_any()
            }
            SwarmEvent::Update { connecting, connections } => {
                ("update", connecting, connections).into_pyobject(py)?.into_any()
            }
            SwarmEvent::Ban { remote } => ("ban", key(remote)).into_pyobject(py)?.into_any(),
            SwarmEvent::PeerTopic { remote, topic } => {
                ("topic", key(remote), PyBytes::new(py, &topic.0)).into_pyobject(py)?.into_any()
            }
            SwarmEvent::Stream { remote, name, shared } => {
                ("stream", key(remote), name, shared).into_pyobject(py)?.into_any()
            }
            SwarmEvent::Message { remote, topic, data } => {
                ("message", key(remote), topic, PyBytes::new(py, &data)).into_pyobject(py)?.into_any()
            }
            SwarmEvent::Reachability(r) => ("reachability", r.as_str(), r.is_symmetric()).into_pyobject(py)?.into_any(),
        };
        Ok(t.unbind())
    })
}

/// A joined topic.
#[pyclass(module = "swarmplex._native", frozen)]
pub struct NativeDiscovery {
    d: Discovery,
}

#[pymethods]
impl NativeDiscovery {
    /// The topic.
    #[getter]
    fn topic<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.d.topic().0)
    }

    /// Resolves when this topic's current round is done.
    fn flushed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = self.d.clone();
        spawn(py, async move { d.flushed().await.map(|_| future::none()) })
    }

    /// Starts a new round, optionally switching modes.
    #[pyo3(signature = (server=None, client=None))]
    fn refresh(&self, py: Python<'_>, server: Option<bool>, client: Option<bool>) -> PyResult<()> {
        let opts = match (server, client) {
            (None, None) => None,
            (s, c) => Some(JoinOptions { server: s.unwrap_or(true), client: c.unwrap_or(true) }),
        };
        self.d.refresh(opts).py(py)
    }

    /// Leaves the topic; resolves once its announce is withdrawn from the DHT.
    fn destroy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = self.d.clone();
        spawn(py, async move { d.destroy().await.map(|_| future::none()) })
    }
}

/// The native swarm.
#[pyclass(module = "swarmplex._native", frozen)]
pub struct NativeSwarm {
    swarm: Swarm,
    id: u64,
    firewall: Option<Arc<FirewallSlot>>,
}

impl Drop for NativeSwarm {
    fn drop(&mut self) {
        if let Some(f) = &self.firewall {
            f.clear();
        }
        registry::remove(self.id);
    }
}

impl NativeSwarm {
    /// The core swarm (for the plex and peersockets layers).
    pub fn swarm(&self) -> &Swarm {
        &self.swarm
    }
}

#[pymethods]
impl NativeSwarm {
    #[new]
    #[pyo3(signature = (*, seed=None, secret_key=None, bootstrap=None, network=None, max_peers=None, firewall=None, event_loop=None, mdns=true, listen=None, exchange=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        seed: Option<PyBackedBytes>,
        secret_key: Option<PyBackedBytes>,
        bootstrap: Option<Vec<String>>,
        network: Option<String>,
        max_peers: Option<usize>,
        firewall: Option<Py<PyAny>>,
        event_loop: Option<Py<PyAny>>,
        mdns: bool,
        listen: Option<Vec<String>>,
        exchange: Option<String>,
    ) -> PyResult<Self> {
        let key_pair = secret_key.map(|s| KeyPair::from_secret_key(&s)).transpose().py(py)?;
        let slot = firewall.map(|cb| Arc::new(FirewallSlot { inner: Mutex::new(Some((cb, event_loop))) }));
        let base = match &exchange {
            Some(id) => SwarmOptions::exchange(id),
            None => SwarmOptions { bootstrap, network, mdns, listen, ..Default::default() },
        };
        let opts = SwarmOptions {
            key_pair,
            seed: seed.map(|s| s.to_vec()),
            max_peers,
            firewall: slot.clone().map(make_firewall),
            ..base
        };
        let swarm = py
            .detach(|| Swarm::spawn(opts, swarmplex::runtime::shared().handle()))
            .py(py)?;
        let id = registry::add(Entry::Swarm(swarm.clone(), slot.clone()));
        Ok(NativeSwarm { swarm, id, firewall: slot })
    }

    /// Sets the event loop the firewall runs on.
    fn set_event_loop(&self, py: Python<'_>, event_loop: Py<PyAny>) {
        if let Some(slot) = &self.firewall {
            if let Some((_, lp)) = slot.inner.lock().unwrap().as_mut() {
                if lp.is_none() {
                    *lp = Some(event_loop.clone_ref(py));
                }
            }
        }
    }

    /// This swarm's public key.
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.swarm.public_key().as_bytes())
    }

    /// This swarm's 64-byte secret key.
    #[getter]
    fn secret_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.swarm.key_pair().secret_key())
    }

    /// Dials in progress.
    #[getter]
    fn connecting(&self) -> usize {
        self.swarm.connecting()
    }

    /// Joins a topic.
    fn join(&self, py: Python<'_>, topic: &[u8], server: bool, client: bool) -> PyResult<NativeDiscovery> {
        let t = topic_from(py, topic)?;
        let d = self.swarm.join(t, JoinOptions { server, client }).py(py)?;
        Ok(NativeDiscovery { d })
    }

    /// Leaves a topic; connections stay.
    fn leave<'py>(&self, py: Python<'py>, topic: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let t = topic_from(py, topic)?;
        let s = self.swarm.clone();
        spawn(py, async move { s.leave(t).await.map(|_| future::none()) })
    }

    /// Resolves when every joined topic finished its round.
    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.swarm.clone();
        spawn(py, async move { s.flush().await.map(|_| future::none()) })
    }

    /// Keeps a connection to this key.
    fn join_peer(&self, py: Python<'_>, key: &[u8]) -> PyResult<()> {
        let k = key_from(py, key)?;
        self.swarm.join_peer(k).py(py)
    }

    /// Stops reconnecting to this key.
    fn leave_peer(&self, py: Python<'_>, key: &[u8]) -> PyResult<()> {
        let k = key_from(py, key)?;
        self.swarm.leave_peer(k).py(py)
    }

    /// Announces under our own key; resolves with the listen addresses.
    fn listen<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.swarm.clone();
        spawn(py, async move {
            let addrs = s.listen().await?;
            Ok(future::value(addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>()))
        })
    }

    /// The listen addresses.
    fn listen_addrs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.swarm.clone();
        spawn(py, async move {
            let addrs = s.listen_addrs().await?;
            Ok(future::value(addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>()))
        })
    }

    /// (state, symmetric, external addresses, relay keys).
    fn reachability<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.swarm.clone();
        spawn(py, async move {
            let r = s.reachability().await?;
            let external: Vec<String> = r.external.iter().map(|a| a.to_string()).collect();
            let relays: Vec<Vec<u8>> = r.relays.iter().map(|k| k.as_bytes().to_vec()).collect();
            Ok(future::value((r.state.as_str(), r.state.is_symmetric(), external, relays)))
        })
    }

    /// Finds a peer by key and connects; resolves with the connection.
    fn find_peer<'py>(&self, py: Python<'py>, key: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let k = key_from(py, key)?;
        let s = self.swarm.clone();
        spawn(py, async move {
            let c = s.find_peer(k).await?;
            Ok(Box::new(move |py: Python<'_>| Ok(Py::new(py, NativeConnection::new(c))?.into_any())) as future::Out)
        })
    }

    /// Peer exchange: dials `transport` (`"tcp"`/`"quic"`/`"websocket"`) at `host`:`port`; the connection.
    fn connect<'py>(&self, py: Python<'py>, transport: &str, host: &str, port: u16) -> PyResult<Bound<'py, PyAny>> {
        let addr = swarmplex::exchange::transport_addr(transport, host, port).py(py)?;
        let s = self.swarm.clone();
        spawn(py, async move {
            let c = s.connect(addr).await?;
            Ok(Box::new(move |py: Python<'_>| Ok(Py::new(py, NativeConnection::new(c))?.into_any())) as future::Out)
        })
    }

    /// Listens on `transport` at `host`:`port` (0: any); the bound multiaddr.
    fn listen_on<'py>(&self, py: Python<'py>, transport: &str, host: &str, port: u16) -> PyResult<Bound<'py, PyAny>> {
        let addr = swarmplex::exchange::transport_addr(transport, host, port).py(py)?;
        let s = self.swarm.clone();
        spawn(py, async move {
            let a = s.listen_on(addr).await?.to_string();
            Ok(Box::new(move |py: Python<'_>| Ok(a.into_pyobject(py)?.into_any().unbind())) as future::Out)
        })
    }

    /// Closes the listener bound at `addr` (a multiaddr `listen_on` resolved with); resolves
    /// once its socket is closed. Connections made through it stay.
    fn stop_listening<'py>(&self, py: Python<'py>, addr: &str) -> PyResult<Bound<'py, PyAny>> {
        let addr = addr
            .parse::<swarmplex::Multiaddr>()
            .map_err(|e| swarmplex::Error::InvalidInput(format!("bad multiaddr {addr:?}: {e}")))
            .py(py)?;
        let s = self.swarm.clone();
        spawn(py, async move { s.stop_listening(addr).await.map(|_| future::none()) })
    }

    /// Asks `via` (or a random connected peer) for another peer and connects to it.
    #[pyo3(signature = (via=None))]
    fn get_new_peer<'py>(&self, py: Python<'py>, via: Option<PyBackedBytes>) -> PyResult<Bound<'py, PyAny>> {
        let via = via.map(|k| key_from(py, &k)).transpose()?;
        let s = self.swarm.clone();
        spawn(py, async move {
            let c = s.get_new_peer(via).await?;
            Ok(Box::new(move |py: Python<'_>| Ok(Py::new(py, NativeConnection::new(c))?.into_any())) as future::Out)
        })
    }

    /// `[(topic, server, client)]`.
    fn topics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.swarm.clone();
        spawn(py, async move {
            let t = s.topics().await?;
            Ok(Box::new(move |py: Python<'_>| {
                let v: Vec<_> = t.iter().map(|(t, o)| (PyBytes::new(py, &t.0), o.server, o.client)).collect();
                Ok(v.into_pyobject(py)?.into_any().unbind())
            }) as future::Out)
        })
    }

    /// Bans a key.
    fn ban(&self, py: Python<'_>, key: &[u8]) -> PyResult<()> {
        let k = key_from(py, key)?;
        self.swarm.ban(k).py(py)
    }

    /// Closes every connection and pauses discovery.
    fn suspend(&self, py: Python<'_>) -> PyResult<()> {
        self.swarm.suspend().py(py)
    }

    /// Restarts discovery.
    fn resume(&self, py: Python<'_>) -> PyResult<()> {
        self.swarm.resume().py(py)
    }

    /// Receives topic messages for `topic`.
    fn join_messages(&self, topic: &str) {
        self.swarm.join_messages(topic);
    }

    /// Stops receiving topic messages for `topic`.
    fn leave_messages(&self, topic: &str) {
        self.swarm.leave_messages(topic);
    }

    /// The next event as a tuple, or `None` once destroyed.
    fn next_event<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.swarm.clone();
        spawn(py, async move { Ok(event_out(s.next_event().await)) })
    }

    /// Closes every connection and stops the engine.
    fn destroy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(f) = &self.firewall {
            f.clear();
        }
        registry::remove(self.id);
        let s = self.swarm.clone();
        spawn(py, async move {
            s.destroy().await;
            Ok(future::none())
        })
    }

    fn __repr__(&self) -> String {
        format!("<NativeSwarm {}>", &self.swarm.public_key().to_hex()[..12])
    }
}
