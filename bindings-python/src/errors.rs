//! Engine errors as Python exceptions (classes defined in `swarmplex/_errors.py`).

use pyo3::prelude::*;
use swarmplex::{Error, ErrorKind};

/// The Python class name for an error kind.
pub fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "InvalidInputError",
        ErrorKind::Connect => "ConnectError",
        ErrorKind::Closed => "ClosedError",
        ErrorKind::Timeout => "SwarmplexTimeoutError",
        ErrorKind::Firewalled => "FirewalledError",
        ErrorKind::Duplicate => "DuplicateError",
        ErrorKind::Reset => "ResetError",
        ErrorKind::RelayLimit => "RelayLimitError",
        ErrorKind::Internal => "InternalError",
    }
}

/// Builds the Python exception for an engine error.
pub fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    let made = py
        .import("swarmplex._errors")
        .and_then(|m| m.getattr(class_name(e.kind())))
        .and_then(|cls| cls.call1((e.to_string(),)));
    match made {
        Ok(inst) => PyErr::from_value(inst),
        Err(err) => err,
    }
}

/// `map_err` helper for sync methods.
pub trait PyResultExt<T> {
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> PyResultExt<T> for Result<T, Error> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e))
    }
}
