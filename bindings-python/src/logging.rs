//! Engine logs (`tracing`) to Python's `logging`, under the `swarmplex` logger.
//!
//! Engine threads never wait for the GIL: a record is formatted on the spot and put in a bounded
//! queue (`try_send`; dropped, and counted, when it is full). One forwarding thread,
//! `swarmplex-log`, hands batches to `logging` through the bridge's gate, so no record is
//! delivered once the interpreter exits, and a slow log handler never delays asyncio futures.
//! `SWARMPLEX_LOG` (env-filter syntax) chooses what is recorded; default `warn,swarmplex=debug`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::bridge;

const QUEUE: usize = 4096;
static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Record {
    level: i32,
    name: String,
    msg: String,
}

static SENDER: OnceLock<Mutex<mpsc::SyncSender<Record>>> = OnceLock::new();

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={:?}", field.name(), value);
        }
    }
}

struct PyLogLayer;

fn py_level(l: &Level) -> i32 {
    match *l {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// `swarmplex::engine` → `swarmplex.engine`; other crates go under `swarmplex.deps`.
fn logger_name(target: &str) -> String {
    let dotted = target.replace("::", ".");
    if dotted == "swarmplex" || dotted.starts_with("swarmplex.") {
        dotted
    } else {
        format!("swarmplex.deps.{dotted}")
    }
}

impl<S: Subscriber> Layer<S> for PyLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(tx) = SENDER.get() else { return };
        let meta = event.metadata();
        let mut f = Fields::default();
        event.record(&mut f);
        let rec = Record { level: py_level(meta.level()), name: logger_name(meta.target()), msg: f.message + &f.rest };
        if tx.lock().unwrap_or_else(|e| e.into_inner()).try_send(rec).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn forward(rx: mpsc::Receiver<Record>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let delivered = bridge::with_python(|py| {
            let dropped = DROPPED.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                let _ = emit(py, 30, "swarmplex", &format!("{dropped} engine log records dropped (Python logging too slow)"));
            }
            for r in batch {
                let _ = emit(py, r.level, &r.name, &r.msg);
            }
        });
        if delivered.is_none() {
            return; // the interpreter is exiting
        }
    }
}

fn emit(py: Python<'_>, level: i32, name: &str, msg: &str) -> PyResult<()> {
    let logger = py.import("logging")?.call_method1("getLogger", (name,))?;
    if logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
        logger.call_method1("log", (level, "%s", msg))?;
    }
    Ok(())
}

/// Installs the forwarding subscriber (once; a no-op if another global subscriber exists).
pub fn init() {
    SENDER.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("swarmplex-log".into())
            .spawn(move || forward(rx))
            .expect("spawn the swarmplex-log thread");
        Mutex::new(tx)
    });
    let filter = EnvFilter::try_from_env("SWARMPLEX_LOG").unwrap_or_else(|_| EnvFilter::new("warn,swarmplex=debug"));
    let _ = tracing_subscriber::registry().with(PyLogLayer.with_filter(filter)).try_init();
}
