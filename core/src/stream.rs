//! Byte streams over a session: the socket, named streams and shared streams.
//!
//! Data is framed as `len u32 BE | bytes`, and a zero-length frame marks a clean end. A stream that
//! stops without that marker (reset, dead peer, closed connection) is an error on the reading side,
//! never a silent end: every byte arrives in order, or the reader is told.
//!
//! Reads are cancel-safe: the frame state lives in the stream, so dropping a pending `read` loses
//! nothing. Writes are not: a write dropped half-way poisons the writing side, which then fails.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::io::{ReadHalf, WriteHalf};
use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, watch};

use crate::error::{Error, Result};
use crate::keys::PublicKey;

/// Bytes a binding may queue for a stream's writer, not yet accepted by the transport, before
/// the app must wait (Node's `write()` returns false, Python's `drain()` waits): the engine-side
/// equivalent of a kernel socket buffer, the same in every language.
pub const WRITE_HIGH_WATER: usize = 1 << 20;

/// Largest frame a reader accepts.
const MAX_FRAME: usize = 1 << 20;
/// Largest frame a writer sends; bigger writes are split.
const WRITE_CHUNK: usize = 256 * 1024;
/// Small writes are copied next to their header and sent in one call.
const COALESCE_BELOW: usize = 16 * 1024;

type Raw = libp2p::Stream;

/// Why a session ended, as seen by its streams. `None` while it is open.
pub(crate) type SessionClosed = watch::Receiver<Option<Error>>;

/// A bidirectional byte stream to a peer. Cheap to clone; clones share the stream.
#[derive(Clone)]
pub struct Stream {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    remote: PublicKey,
    reader: Mutex<Reader>,
    writer: Mutex<Writer>,
    closed: SessionClosed,
    done: watch::Sender<Done>,
}

/// How far a stream got, for [`Finished`].
#[derive(Clone, Copy, Default)]
struct Done {
    /// We read the remote's clean end.
    read: bool,
    /// Our clean end was sent.
    written: bool,
    /// A read or write failed, or we reset the stream.
    failed: bool,
}

impl Done {
    fn finished(&self) -> bool {
        self.failed || (self.read && self.written)
    }
}

struct Reader {
    io: ReadHalf<Raw>,
    header: [u8; 4],
    header_len: usize,
    remaining: usize,
    ended: bool,
    failed: Option<Error>,
}

struct Writer {
    io: WriteHalf<Raw>,
    state: WriteState,
}

#[derive(PartialEq, Eq)]
enum WriteState {
    Open,
    Ended,
    Poisoned,
}

impl Stream {
    pub(crate) fn new(raw: Raw, name: String, remote: PublicKey, closed: SessionClosed) -> Self {
        let (r, w) = raw.split();
        Stream {
            inner: Arc::new(Inner {
                name,
                remote,
                reader: Mutex::new(Reader {
                    io: r,
                    header: [0; 4],
                    header_len: 0,
                    remaining: 0,
                    ended: false,
                    failed: None,
                }),
                writer: Mutex::new(Writer { io: w, state: WriteState::Open }),
                closed,
                done: watch::channel(Done::default()).0,
            }),
        }
    }

    /// The stream's name (`""` for the socket).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The remote peer's public key.
    pub fn remote_public_key(&self) -> PublicKey {
        self.inner.remote
    }

    /// Reads into `buf`; returns 0 only at a clean end of the stream.
    pub async fn read_into(&self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Err(Error::InvalidInput("read buffer is empty".into()));
        }
        let mut reader = self.inner.reader.lock().await;
        let mut closed = self.inner.closed.clone();
        let res = tokio::select! {
            biased;
            r = futures::future::poll_fn(|cx| reader.poll_fill(cx, buf)) => r,
            e = wait_closed(&mut closed) => Err(e),
        };
        match res {
            Ok(0) => self.mark(|d| d.read = true),
            Err(_) => self.mark(|d| d.failed = true),
            Ok(_) => {}
        }
        res
    }

    fn mark(&self, f: impl FnOnce(&mut Done)) {
        self.inner.done.send_modify(f);
    }

    /// A future that resolves once this stream is finished: both directions ended cleanly (we
    /// read the remote's end and sent ours), a read or write failed, it was reset, its session
    /// ended, or every clone of it was dropped. It holds no clone of the stream.
    pub(crate) fn finished(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut done = self.inner.done.subscribe();
        let mut closed = self.inner.closed.clone();
        async move {
            tokio::select! {
                _ = done.wait_for(Done::finished) => {}
                _ = wait_closed(&mut closed) => {}
            }
        }
    }

    /// Reads up to `max` bytes of what has arrived (at least one byte, waiting for it).
    /// An empty result means the remote ended the stream cleanly.
    pub async fn read(&self, max: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; max.max(1)];
        let n = self.read_into(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads until the remote ends the stream cleanly.
    pub async fn read_to_end(&self) -> Result<Vec<u8>> {
        self.read_to_end_within(usize::MAX).await
    }

    /// Reads until the remote ends the stream cleanly; `InvalidInput` once more than `max`
    /// bytes came.
    pub(crate) async fn read_to_end_within(&self, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.read_into(&mut buf).await?;
            if n == 0 {
                return Ok(out);
            }
            if out.len() + n > max {
                return Err(Error::InvalidInput(format!("more than {max} bytes")));
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// Writes all of `data`; returns once the transport accepted it (flow control applies).
    pub async fn write(&self, data: &[u8]) -> Result<()> {
        let mut writer = self.inner.writer.lock().await;
        writer.check()?;
        self.check_open()?;
        let mut closed = self.inner.closed.clone();
        let guard = PoisonGuard(&mut writer);
        let res = tokio::select! {
            biased;
            r = write_frames(&mut guard.0.io, data) => r.map_err(|e| io_error(e, "write")),
            e = wait_closed(&mut closed) => Err(e),
        };
        let res = guard.finish(res);
        if res.is_err() {
            self.mark(|d| d.failed = true);
        }
        res
    }

    /// Ends our side cleanly: the remote reads everything written, then the end.
    pub async fn end(&self) -> Result<()> {
        let mut writer = self.inner.writer.lock().await;
        if writer.state == WriteState::Ended {
            return Ok(());
        }
        writer.check()?;
        self.check_open()?;
        let guard = PoisonGuard(&mut writer);
        let res = async {
            guard.0.io.write_all(&0u32.to_be_bytes()).await?;
            guard.0.io.flush().await?;
            guard.0.io.close().await
        }
        .await
        .map_err(|e| io_error(e, "end"));
        let res = guard.finish(res);
        if res.is_ok() {
            writer.state = WriteState::Ended;
        }
        self.mark(|d| if res.is_ok() { d.written = true } else { d.failed = true });
        res
    }

    /// Fails if the session has ended: nothing may be written after that, even if a transport
    /// buffer would still take it.
    fn check_open(&self) -> Result<()> {
        match &*self.inner.closed.borrow() {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// Aborts our side: the remote's reads fail instead of ending cleanly.
    pub async fn reset(&self) {
        let mut writer = self.inner.writer.lock().await;
        if writer.state == WriteState::Open {
            writer.state = WriteState::Poisoned;
            let _ = writer.io.close().await;
        }
        self.mark(|d| d.failed = true);
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("name", &self.inner.name).field("remote", &self.inner.remote).finish()
    }
}

impl Writer {
    fn check(&self) -> Result<()> {
        match self.state {
            WriteState::Open => Ok(()),
            WriteState::Ended => Err(Error::Closed("stream already ended".into())),
            WriteState::Poisoned => Err(Error::Reset("stream was reset or a write was cancelled".into())),
        }
    }
}

/// Marks the writer poisoned unless the write finished (a dropped write leaves a partial frame).
struct PoisonGuard<'a>(&'a mut Writer);

impl PoisonGuard<'_> {
    fn finish<T>(self, res: Result<T>) -> Result<T> {
        if res.is_err() {
            self.0.state = WriteState::Poisoned;
        }
        std::mem::forget(self);
        res
    }
}

impl Drop for PoisonGuard<'_> {
    fn drop(&mut self) {
        self.0.state = WriteState::Poisoned;
    }
}

async fn write_frames(io: &mut WriteHalf<Raw>, data: &[u8]) -> io::Result<()> {
    for chunk in data.chunks(WRITE_CHUNK) {
        let len = (chunk.len() as u32).to_be_bytes();
        if chunk.len() < COALESCE_BELOW {
            let mut frame = Vec::with_capacity(4 + chunk.len());
            frame.extend_from_slice(&len);
            frame.extend_from_slice(chunk);
            io.write_all(&frame).await?;
        } else {
            io.write_all(&len).await?;
            io.write_all(chunk).await?;
        }
    }
    io.flush().await
}

/// Waits until the session ends and returns why.
pub(crate) async fn wait_closed(closed: &mut SessionClosed) -> Error {
    match closed.wait_for(|c| c.is_some()).await {
        Ok(reason) => reason.clone().unwrap_or_else(Error::closed),
        Err(_) => Error::closed(),
    }
}

fn io_error(e: io::Error, what: &str) -> Error {
    Error::Reset(format!("{what}: {e}"))
}

impl Reader {
    /// Reads frame bytes into `buf`: waits for the first byte, then takes whatever else is ready.
    fn poll_fill(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.poll_once(cx, &mut buf[filled..]) {
                Poll::Ready(Ok(0)) => break,
                Poll::Ready(Ok(n)) => filled += n,
                Poll::Ready(Err(e)) if filled == 0 => return Poll::Ready(Err(e)),
                Poll::Ready(Err(_)) => break, // reported by the next read
                Poll::Pending if filled == 0 => return Poll::Pending,
                Poll::Pending => break,
            }
        }
        Poll::Ready(Ok(filled))
    }

    fn poll_once(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        if let Some(e) = &self.failed {
            return Poll::Ready(Err(e.clone()));
        }
        let res = ready!(self.poll_frames(cx, buf));
        if let Err(e) = &res {
            self.failed = Some(e.clone());
        }
        Poll::Ready(res)
    }

    fn poll_frames(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        loop {
            if self.ended {
                return Poll::Ready(Ok(0));
            }
            if self.remaining > 0 {
                let want = buf.len().min(self.remaining);
                let n = ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf[..want]))
                    .map_err(|e| io_error(e, "read"))?;
                if n == 0 {
                    return Poll::Ready(Err(Error::Reset("stream ended in the middle of a frame".into())));
                }
                self.remaining -= n;
                return Poll::Ready(Ok(n));
            }
            while self.header_len < 4 {
                let n = ready!(Pin::new(&mut self.io).poll_read(cx, &mut self.header[self.header_len..]))
                    .map_err(|e| io_error(e, "read"))?;
                if n == 0 {
                    return Poll::Ready(Err(Error::Reset("stream closed without an end marker".into())));
                }
                self.header_len += n;
            }
            self.header_len = 0;
            let len = u32::from_be_bytes(self.header) as usize;
            if len == 0 {
                self.ended = true;
            } else if len > MAX_FRAME {
                return Poll::Ready(Err(Error::Reset(format!("frame of {len} bytes is too large"))));
            } else {
                self.remaining = len;
            }
        }
    }
}
