//! Python binding of swarmplex: the native module `swarmplex._native`.
//!
//! The Python package (`python/swarmplex/`) wraps these classes in the public API. Threading
//! rules: Rust threads reach Python only through `bridge` (one thread, behind a gate closed at
//! exit); Python threads never block on engine work (everything slow is an asyncio future, and
//! the few synchronous calls that do work release the GIL).

mod bridge;
mod connection;
mod errors;
mod future;
mod logging;
mod plex;
mod registry;
mod stream;
mod swarm;
mod testnet;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use swarmplex::KeyPair;

use crate::errors::PyResultExt;

fn key_pair_tuple<'py>(py: Python<'py>, kp: &KeyPair) -> (Bound<'py, PyBytes>, Bound<'py, PyBytes>) {
    (PyBytes::new(py, kp.public_key().as_bytes()), PyBytes::new(py, &kp.secret_key()))
}

/// A random key pair as `(public_key, secret_key)`.
#[pyfunction]
fn key_pair_generate(py: Python<'_>) -> (Bound<'_, PyBytes>, Bound<'_, PyBytes>) {
    key_pair_tuple(py, &KeyPair::generate())
}

/// The key pair derived from a 32-byte seed.
#[pyfunction]
fn key_pair_from_seed(py: Python<'_>, seed: PyBackedBytes) -> PyResult<(Bound<'_, PyBytes>, Bound<'_, PyBytes>)> {
    let kp = KeyPair::from_seed(&seed).py(py)?;
    Ok(key_pair_tuple(py, &kp))
}

/// The key pair of a 64-byte secret key.
#[pyfunction]
fn key_pair_from_secret_key(
    py: Python<'_>,
    secret_key: PyBackedBytes,
) -> PyResult<(Bound<'_, PyBytes>, Bound<'_, PyBytes>)> {
    let kp = KeyPair::from_secret_key(&secret_key).py(py)?;
    Ok(key_pair_tuple(py, &kp))
}

/// Destroys every live swarm and testnet (bounded) and closes the gate to Python, so no Rust
/// thread touches the interpreter after this. Registered with `atexit` by the package.
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    let entries = registry::take_all();
    for e in &entries {
        if let registry::Entry::Swarm(_, Some(slot)) = e {
            slot.clear();
        }
    }
    if !entries.is_empty() {
        py.detach(|| {
            swarmplex::runtime::shared().block_on(async {
                let all = futures::future::join_all(entries.into_iter().map(|e| e.destroy()));
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), all).await;
            })
        });
    }
    bridge::close(py);
}

/// Raises a Rust panic inside a native call (tests check it never crashes the interpreter).
#[pyfunction]
fn _panic_for_test(py: Python<'_>, in_future: bool) -> PyResult<Bound<'_, PyAny>> {
    if in_future {
        future::spawn(py, async { panic!("a test panic in a future") })
    } else {
        panic!("a test panic in a call")
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    bridge::start();
    logging::init();
    m.add_class::<swarm::NativeSwarm>()?;
    m.add_class::<swarm::NativeDiscovery>()?;
    m.add_class::<connection::NativeConnection>()?;
    m.add_class::<stream::NativeStream>()?;
    m.add_class::<testnet::NativeTestnet>()?;
    m.add_class::<plex::NativePlex>()?;
    m.add_class::<plex::NativePeer>()?;
    m.add_class::<plex::NativePeersockets>()?;
    m.add_class::<plex::NativeTopicHandle>()?;
    m.add_function(wrap_pyfunction!(testnet::testnet_start, m)?)?;
    m.add_function(wrap_pyfunction!(key_pair_generate, m)?)?;
    m.add_function(wrap_pyfunction!(key_pair_from_seed, m)?)?;
    m.add_function(wrap_pyfunction!(key_pair_from_secret_key, m)?)?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add("HIGH_WATER", stream::HIGH_WATER)?;
    m.add("MAX_NAME", swarmplex::wire::MAX_NAME)?;
    Ok(())
}
