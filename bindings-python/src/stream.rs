//! Byte streams with asyncio stream semantics: buffered, cancel-safe reads and queued writes
//! with `drain()` backpressure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use swarmplex::{Error, Stream};
use tokio::sync::{mpsc, watch};

use crate::errors::PyResultExt;
use crate::future::{self, spawn};

/// `drain()` waits while more than this many written bytes are still queued.
pub const HIGH_WATER: usize = swarmplex::stream::WRITE_HIGH_WATER;
/// Largest single read from the core.
const READ_CHUNK: usize = 1 << 20;

#[derive(Default)]
struct ReadBuf {
    data: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl ReadBuf {
    fn avail(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.avail());
        let out = self.data[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
        } else if self.pos > (1 << 20) && self.pos * 2 > self.data.len() {
            self.data.drain(..self.pos);
            self.pos = 0;
        }
        out
    }

    fn push(&mut self, v: &[u8]) {
        self.data.extend_from_slice(v);
    }
}

#[derive(Default, Clone)]
struct WState {
    /// Bytes written but not yet accepted by the transport.
    pending: usize,
    /// Queued operations (writes and the end) not yet done.
    ops: usize,
    error: Option<Error>,
}

enum Op {
    Data(PyBackedBytes),
    End,
}

struct WriterSide {
    tx: Option<mpsc::UnboundedSender<Op>>,
    eof: bool,
}

/// One stream's shared state; every Python handle to the stream shares it.
pub struct StreamState {
    stream: Stream,
    rbuf: tokio::sync::Mutex<ReadBuf>,
    writer: Mutex<WriterSide>,
    wstate: Arc<watch::Sender<WState>>,
}

impl StreamState {
    pub fn new(stream: Stream) -> Arc<Self> {
        Arc::new(StreamState {
            stream,
            rbuf: tokio::sync::Mutex::new(ReadBuf::default()),
            writer: Mutex::new(WriterSide { tx: None, eof: false }),
            wstate: Arc::new(watch::channel(WState::default()).0),
        })
    }

    fn queue(&self, op: Op) -> Result<(), Error> {
        if let Some(e) = self.wstate.borrow().error.clone() {
            return Err(e);
        }
        let mut w = self.writer.lock().unwrap();
        if w.eof {
            return Err(Error::Closed("write after write_eof".into()));
        }
        let len = match &op {
            Op::Data(d) => d.len(),
            Op::End => {
                w.eof = true;
                0
            }
        };
        self.wstate.send_modify(|s| {
            s.pending += len;
            s.ops += 1;
        });
        let tx = w.tx.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            swarmplex::runtime::shared().spawn(run_writer(self.stream.clone(), self.wstate.clone(), rx));
            tx
        });
        tx.send(op).map_err(|_| Error::Closed("stream writer stopped".into()))
    }

    /// Waits until every queued write (and the end, if queued) is done; the first write error.
    pub async fn flushed(&self) -> Result<(), Error> {
        let mut rx = self.wstate.subscribe();
        let s = rx.wait_for(|s| s.ops == 0 || s.error.is_some()).await.map(|s| s.clone());
        match s {
            Ok(WState { error: Some(e), .. }) => Err(e),
            _ => Ok(()),
        }
    }
}

async fn run_writer(stream: Stream, ws: Arc<watch::Sender<WState>>, mut rx: mpsc::UnboundedReceiver<Op>) {
    while let Some(op) = rx.recv().await {
        let (len, res) = match op {
            Op::Data(d) => {
                let r = stream.write(&d).await;
                (d.len(), r)
            }
            Op::End => (0, stream.end().await),
        };
        let failed = res.is_err();
        ws.send_modify(|s| {
            s.pending -= len;
            s.ops -= 1;
            if let Err(e) = res {
                s.error.get_or_insert(e);
            }
        });
        if failed {
            rx.close();
            while let Ok(op) = rx.try_recv() {
                let len = match &op {
                    Op::Data(d) => d.len(),
                    Op::End => 0,
                };
                ws.send_modify(|s| {
                    s.pending -= len;
                    s.ops -= 1;
                });
            }
            return;
        }
    }
}

async fn read_some(st: Arc<StreamState>, n: usize) -> Result<Vec<u8>, Error> {
    let mut rb = st.rbuf.lock().await;
    if rb.avail() > 0 {
        return Ok(rb.take(n));
    }
    if rb.eof {
        return Ok(Vec::new());
    }
    // Cancel-safe: the core keeps partial frames; nothing is lost if this is dropped.
    let v = st.stream.read(n.min(READ_CHUNK)).await?;
    if v.is_empty() {
        rb.eof = true;
    }
    Ok(v)
}

/// Fills the buffer until `done(buf)` or the end; everything read stays in the buffer, so a
/// cancelled call loses nothing.
async fn fill_until(
    st: &StreamState,
    rb: &mut ReadBuf,
    want: usize,
    mut done: impl FnMut(&ReadBuf) -> bool,
) -> Result<(), Error> {
    while !done(rb) && !rb.eof {
        let ask = want.saturating_sub(rb.avail()).clamp(64 * 1024, READ_CHUNK);
        let v = st.stream.read(ask).await?;
        if v.is_empty() {
            rb.eof = true;
        } else {
            rb.push(&v);
        }
    }
    Ok(())
}

/// A byte stream to a peer (the connection's socket, a named stream or a shared stream).
#[pyclass(module = "swarmplex._native", frozen)]
pub struct NativeStream {
    pub st: Arc<StreamState>,
}

#[pymethods]
impl NativeStream {
    /// The stream's name (`""` for a connection's socket).
    #[getter]
    fn name(&self) -> String {
        self.st.stream.name().to_string()
    }

    /// The remote peer's public key.
    #[getter]
    fn remote_public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.st.stream.remote_public_key().as_bytes())
    }

    /// Up to `n` bytes (waits for at least one); `b""` at the end.
    fn read<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let st = self.st.clone();
        spawn(py, async move { read_some(st, n).await.map(future::bytes) })
    }

    /// Everything until the end.
    fn read_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let st = self.st.clone();
        spawn(py, async move {
            let mut rb = st.rbuf.lock().await;
            fill_until(&st, &mut rb, READ_CHUNK, |_| false).await?;
            let n = rb.avail();
            Ok(future::bytes(rb.take(n)))
        })
    }

    /// Exactly `n` bytes, or fewer only at the end (the caller raises IncompleteReadError).
    fn readexactly<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let st = self.st.clone();
        spawn(py, async move {
            let mut rb = st.rbuf.lock().await;
            fill_until(&st, &mut rb, n, |rb| rb.avail() >= n).await?;
            Ok(future::bytes(rb.take(n)))
        })
    }

    /// `(data, status)`: status 0 found (data ends with `sep`), 1 end reached first (data is
    /// the rest), 2 more than `limit` bytes without `sep` (nothing consumed).
    fn readuntil<'py>(&self, py: Python<'py>, sep: Vec<u8>, limit: usize) -> PyResult<Bound<'py, PyAny>> {
        if sep.is_empty() {
            return Err(pyo3::exceptions::PyValueError::new_err("separator must not be empty"));
        }
        let st = self.st.clone();
        spawn(py, async move {
            let mut rb = st.rbuf.lock().await;
            let mut found = None;
            let mut scanned = 0usize;
            fill_until(&st, &mut rb, READ_CHUNK, |rb| {
                let hay = &rb.data[rb.pos..];
                let from = scanned.saturating_sub(sep.len() - 1);
                if let Some(i) = hay[from..].windows(sep.len()).position(|w| w == sep.as_slice()) {
                    found = Some(from + i + sep.len());
                    return true;
                }
                scanned = hay.len();
                hay.len() > limit
            })
            .await?;
            let (data, status) = match found {
                Some(end) if end <= limit => (rb.take(end), 0u8),
                Some(_) => (Vec::new(), 2),
                None if rb.avail() > limit => (Vec::new(), 2),
                None => {
                    let n = rb.avail();
                    (rb.take(n), 1)
                }
            };
            Ok(future::value((PyBytesOwned(data), status)))
        })
    }

    /// Whether the end was read and the buffer is empty.
    fn at_eof(&self) -> bool {
        match self.st.rbuf.try_lock() {
            Ok(rb) => rb.eof && rb.avail() == 0,
            Err(_) => false,
        }
    }

    /// Queues `data` for writing (never blocks).
    fn write(&self, py: Python<'_>, data: PyBackedBytes) -> PyResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.st.queue(Op::Data(data)).py(py)
    }

    /// Whether `drain()` would wait or raise.
    fn need_drain(&self) -> bool {
        let s = self.st.wstate.borrow();
        s.error.is_some() || s.pending > HIGH_WATER
    }

    /// Bytes queued but not yet accepted by the transport.
    #[getter]
    fn pending(&self) -> usize {
        self.st.wstate.borrow().pending
    }

    /// Waits until the queue is below the high-water mark; raises the first write error.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut rx = self.st.wstate.subscribe();
        spawn(py, async move {
            let s = rx.wait_for(|s| s.error.is_some() || s.pending <= HIGH_WATER).await.map(|s| s.clone());
            match s {
                Ok(WState { error: Some(e), .. }) => Err(e),
                _ => Ok(future::none()),
            }
        })
    }

    /// Waits until every queued write (and the end) is done.
    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let st = self.st.clone();
        spawn(py, async move { st.flushed().await.map(|_| future::none()) })
    }

    /// Queues the end of our side (after the queued writes).
    fn write_eof(&self, py: Python<'_>) -> PyResult<()> {
        if self.st.writer.lock().unwrap().eof {
            return Ok(());
        }
        self.st.queue(Op::End).py(py)
    }

    /// Whether `write_eof()` was called.
    fn eof_written(&self) -> bool {
        self.st.writer.lock().unwrap().eof
    }

    /// Aborts our side at once: the remote's reads fail.
    fn reset(&self) {
        let stream = self.st.stream.clone();
        self.st.writer.lock().unwrap().eof = true;
        swarmplex::runtime::shared().spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), stream.reset()).await;
        });
    }

    fn __repr__(&self) -> String {
        format!("<NativeStream {:?} remote={}>", self.st.stream.name(), &self.st.stream.remote_public_key().to_hex()[..12])
    }
}

/// Bytes that convert to Python `bytes` (a `Vec<u8>` would too, but say so explicitly).
pub struct PyBytesOwned(pub Vec<u8>);

impl<'py> IntoPyObject<'py> for PyBytesOwned {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = std::convert::Infallible;
    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyBytes::new(py, &self.0))
    }
}
