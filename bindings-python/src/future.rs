//! Rust futures as asyncio futures.
//!
//! `spawn` creates a future on the running event loop, runs the Rust future on the engine's tokio
//! runtime, and settles the asyncio future through the bridge thread with
//! `loop.call_soon_threadsafe`. Cancelling the asyncio future (task cancellation, Ctrl-C, a
//! timeout) drops the Rust future at once. Panics become `InternalError`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;
use tokio::sync::oneshot;

use crate::bridge;

/// Converts a result into a Python object, on the bridge thread.
pub type Out = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;
/// What a spawned Rust future yields.
pub type Res = Result<Out, swarmplex::Error>;

/// Any value with a Python conversion.
pub fn value<T>(v: T) -> Out
where
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    Box::new(move |py| pyo3::IntoPyObjectExt::into_py_any(v, py))
}

/// `None`.
pub fn none() -> Out {
    Box::new(|py| Ok(py.None()))
}

/// `bytes`.
pub fn bytes(v: Vec<u8>) -> Out {
    Box::new(move |py| Ok(PyBytes::new(py, &v).into_any().unbind()))
}

/// Done callback: tells the Rust side the asyncio future was cancelled.
#[pyclass(module = "swarmplex._native")]
struct CancelOnDone {
    tx: Mutex<Option<oneshot::Sender<()>>>,
}

#[pymethods]
impl CancelOnDone {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        let tx = self.tx.lock().unwrap().take();
        if fut.call_method0("cancelled")?.is_truthy()? {
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
        }
        Ok(())
    }
}

/// Settles `fut` unless it is already done (cancelled meanwhile). Runs on the loop's thread.
#[pyfunction]
fn _settle(fut: &Bound<'_, PyAny>, is_err: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if fut.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    if is_err {
        fut.call_method1("set_exception", (value,))?;
    } else {
        fut.call_method1("set_result", (value,))?;
    }
    Ok(())
}

static SETTLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The running asyncio loop (RuntimeError when there is none).
pub fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let f = GET_RUNNING_LOOP.get_or_try_init(py, || {
        py.import("asyncio")?.getattr("get_running_loop").map(Bound::unbind)
    })?;
    f.bind(py).call0()
}

/// Runs `fut` on the engine runtime and returns an asyncio future for its result.
pub fn spawn<'py, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Res> + Send + 'static,
{
    let lp = running_loop(py)?;
    let pyfut = lp.call_method0("create_future")?;
    let (tx, rx) = oneshot::channel::<()>();
    pyfut.call_method1("add_done_callback", (CancelOnDone { tx: Mutex::new(Some(tx)) },))?;
    let lp = lp.unbind();
    let handle = pyfut.clone().unbind();
    swarmplex::runtime::shared().spawn(async move {
        let work = AssertUnwindSafe(fut).catch_unwind();
        tokio::select! {
            biased;
            _ = rx => {} // cancelled: the Rust future is dropped here
            r = work => {
                let r = r.unwrap_or_else(|p| Err(swarmplex::Error::Internal(format!("panic in the binding: {}", swarmplex::error::panic_message(&*p)))));
                bridge::submit(Box::new(move |py| settle(py, lp, handle, r)));
            }
        }
    });
    Ok(pyfut)
}

fn settle(py: Python<'_>, lp: Py<PyAny>, fut: Py<PyAny>, r: Res) {
    let (is_err, value) = match r {
        Ok(out) => match out(py) {
            Ok(v) => (false, v),
            Err(e) => (true, e.into_value(py).into_any()),
        },
        Err(e) => (true, crate::errors::to_py(py, &e).into_value(py).into_any()),
    };
    let settle = match SETTLE.get_or_try_init(py, || {
        wrap_pyfunction!(_settle, py).map(|f| f.into_any().unbind())
    }) {
        Ok(f) => f,
        Err(_) => return,
    };
    // Fails only when the loop is closed: nobody is waiting any more.
    let _ = lp.bind(py).call_method1("call_soon_threadsafe", (settle, fut, is_err, value));
}

