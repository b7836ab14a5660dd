//! Connections: the socket plus named streams and topic messages.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use swarmplex::Connection;

use crate::future::{self, spawn};
use crate::stream::{NativeStream, StreamState};

/// How long `close()` waits for queued socket writes before closing anyway.
const CLOSE_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// One connection to a peer.
#[pyclass(module = "swarmplex._native", frozen)]
pub struct NativeConnection {
    conn: Connection,
    socket: Arc<StreamState>,
}

impl NativeConnection {
    pub fn new(conn: Connection) -> Self {
        let socket = StreamState::new(conn.socket());
        NativeConnection { conn, socket }
    }
}

fn stream_out(s: swarmplex::Stream) -> future::Out {
    Box::new(move |py| Ok(Py::new(py, NativeStream { st: StreamState::new(s) })?.into_any()))
}

#[pymethods]
impl NativeConnection {
    /// The remote peer's public key.
    #[getter]
    fn remote_public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.conn.remote_public_key().as_bytes())
    }

    /// 32 bytes equal on both sides and unique per connection.
    #[getter]
    fn handshake_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.conn.handshake_hash())
    }

    /// Whether we dialed the transport connection.
    #[getter]
    fn is_initiator(&self) -> bool {
        self.conn.is_initiator()
    }

    /// `"quic"`, `"tcp"` or `"relay"`.
    #[getter]
    fn transport(&self) -> &'static str {
        self.conn.transport()
    }

    /// The transport connection's remote multiaddr (a `/p2p-circuit` one when relayed).
    #[getter]
    fn remote_address(&self) -> String {
        self.conn.remote_address().to_string()
    }

    /// The relay's public key when the connection runs through one, else `None`.
    #[getter]
    fn relay<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.conn.path().relay.map(|k| PyBytes::new(py, k.as_bytes()))
    }

    /// `(public_key, topics, client, explicit)`.
    fn peer_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let info = self.conn.peer_info();
        let topics: Vec<Bound<'py, PyBytes>> = info.topics.iter().map(|t| PyBytes::new(py, &t.0)).collect();
        (PyBytes::new(py, info.public_key.as_bytes()), topics, info.client, info.explicit)
            .into_pyobject(py)
            .map(|t| t.into_any())
    }

    /// The session's default byte stream.
    fn socket(&self) -> NativeStream {
        NativeStream { st: self.socket.clone() }
    }

    /// Whether the session has ended.
    fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Ends the session now.
    fn close(&self) {
        self.conn.close();
    }

    /// Ends the session once the socket's queued writes are done (bounded).
    fn close_after_flush(&self) {
        let conn = self.conn.clone();
        let socket = self.socket.clone();
        swarmplex::runtime::shared().spawn(async move {
            let _ = tokio::time::timeout(CLOSE_FLUSH_LIMIT, socket.flushed()).await;
            conn.close();
        });
    }

    /// Resolves with `(kind, message)` once the session ended.
    fn closed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.conn.clone();
        spawn(py, async move {
            let e = conn.closed().await;
            Ok(future::value((e.kind().as_str(), e.to_string())))
        })
    }

    /// Opens a named stream.
    fn create_stream<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.conn.clone();
        spawn(py, async move { conn.create_stream(&name).await.map(stream_out) })
    }

    /// Waits for the remote's named stream.
    fn receive_stream<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.conn.clone();
        spawn(py, async move { conn.receive_stream(&name).await.map(stream_out) })
    }

    /// Takes the remote's stream `name` that waits unclaimed (announced by a stream event), or
    /// `None` if a receive already took it. Never waits.
    #[pyo3(signature = (name, shared=false))]
    fn take_parked_stream(&self, name: String, shared: bool) -> Option<NativeStream> {
        self.conn.take_parked_stream(&name, shared).map(|s| NativeStream { st: StreamState::new(s) })
    }

    /// Both sides get the two ends of one stream.
    fn create_shared_stream<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.conn.clone();
        spawn(py, async move { conn.create_shared_stream(&name).await.map(stream_out) })
    }

    /// Sends one topic message.
    fn send_message<'py>(&self, py: Python<'py>, topic: String, data: PyBackedBytes) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.conn.clone();
        spawn(py, async move { conn.send_message(&topic, &data).await.map(|_| future::none()) })
    }

    fn __repr__(&self) -> String {
        format!(
            "<NativeConnection remote={} initiator={}>",
            &self.conn.remote_public_key().to_hex()[..12],
            self.conn.is_initiator()
        )
    }
}
