//! The only path from Rust threads into Python.
//!
//! Engine and binding tasks run on tokio worker threads and never touch Python. Anything that must
//! (settling an asyncio future, calling the firewall, forwarding a log record) is queued as a job
//! for one dedicated thread, `swarmplex-py`, which attaches to the interpreter once per batch.
//!
//! Every attach goes through a gate. At interpreter exit (`_shutdown`, registered with `atexit`)
//! the gate closes and waits, with the GIL released, until no thread is inside Python; from then
//! on no Rust thread attaches again. That is what keeps a worker thread from touching a
//! finalizing interpreter (which used to abort the process at exit).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Work to run on the bridge thread while attached to Python.
pub type Job = Box<dyn for<'py> FnOnce(Python<'py>) + Send>;

struct GateState {
    closed: bool,
    active: usize,
}

static GATE: Mutex<GateState> = Mutex::new(GateState { closed: false, active: 0 });
static GATE_CV: Condvar = Condvar::new();

enum Msg {
    Job(Job),
    Stop,
}

static SENDER: OnceLock<Mutex<mpsc::Sender<Msg>>> = OnceLock::new();

/// Runs `f` attached to Python unless the interpreter is shutting down (then returns `None`).
pub fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    {
        let mut g = GATE.lock().unwrap_or_else(|e| e.into_inner());
        if g.closed {
            return None;
        }
        g.active += 1;
    }
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let mut g = GATE.lock().unwrap_or_else(|e| e.into_inner());
            g.active -= 1;
            GATE_CV.notify_all();
        }
    }
    let _leave = Leave;
    Python::try_attach(f)
}

/// Whether the gate is closed (the interpreter is exiting).
pub fn is_closed() -> bool {
    GATE.lock().unwrap_or_else(|e| e.into_inner()).closed
}

/// Closes the gate for good and waits (GIL released, bounded) until no Rust thread is inside
/// Python. Called from the `atexit` hook.
pub fn close(py: Python<'_>) {
    GATE.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut g = GATE.lock().unwrap_or_else(|e| e.into_inner());
        while g.active > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            g = GATE_CV.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    });
    if let Some(tx) = SENDER.get() {
        let _ = tx.lock().unwrap_or_else(|e| e.into_inner()).send(Msg::Stop);
    }
}

/// Starts the bridge thread (once).
pub fn start() {
    SENDER.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("swarmplex-py".into())
            .spawn(move || run(rx))
            .expect("spawn the swarmplex-py thread");
        Mutex::new(tx)
    });
}

/// Queues `job` for the bridge thread. Dropped silently once the interpreter is exiting.
pub fn submit(job: Job) {
    if let Some(tx) = SENDER.get() {
        let _ = tx.lock().unwrap_or_else(|e| e.into_inner()).send(Msg::Job(job));
    }
}

fn run(rx: mpsc::Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = Vec::new();
        let mut stop = false;
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Job(j) => jobs.push(j),
                Msg::Stop => stop = true,
            }
            if jobs.len() < 512 {
                next = rx.try_recv().ok();
            }
        }
        if !jobs.is_empty() {
            let ran = with_python(move |py| {
                for job in jobs {
                    // A failing job must not take the bridge down with it.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(py)));
                }
            });
            if ran.is_none() {
                return;
            }
        }
        if stop || is_closed() {
            return;
        }
    }
}
