//! Local testnets.

use std::sync::Arc;

use pyo3::prelude::*;
use swarmplex::Testnet;

use crate::future::{self, spawn};
use crate::registry::{self, Entry};

/// DHT bootstrap nodes on 127.0.0.1.
#[pyclass(module = "swarmplex._native", frozen)]
pub struct NativeTestnet {
    inner: Arc<tokio::sync::Mutex<Option<Testnet>>>,
    bootstrap: Vec<String>,
    id: u64,
}

impl Drop for NativeTestnet {
    fn drop(&mut self) {
        registry::remove(self.id);
    }
}

#[pymethods]
impl NativeTestnet {
    /// The nodes' multiaddrs.
    #[getter]
    fn bootstrap(&self) -> Vec<String> {
        self.bootstrap.clone()
    }

    /// Stops every node.
    fn destroy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        registry::remove(self.id);
        let inner = self.inner.clone();
        spawn(py, async move {
            if let Some(t) = inner.lock().await.take() {
                t.destroy().await;
            }
            Ok(future::none())
        })
    }
}

/// Starts `n` nodes (on the private network `network`, if given).
#[pyfunction]
#[pyo3(signature = (n, network=None))]
pub fn testnet_start(py: Python<'_>, n: usize, network: Option<String>) -> PyResult<Bound<'_, PyAny>> {
    spawn(py, async move {
        let t = Testnet::start(n, network, 0).await?;
        let bootstrap = t.bootstrap();
        let inner = Arc::new(tokio::sync::Mutex::new(Some(t)));
        let id = registry::add(Entry::Testnet(inner.clone()));
        Ok(Box::new(move |py: Python<'_>| Ok(Py::new(py, NativeTestnet { inner, bootstrap, id })?.into_any()))
            as future::Out)
    })
}
