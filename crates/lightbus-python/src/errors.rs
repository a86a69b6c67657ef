//! Engine failures as the Python exceptions upstream's users already catch.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::bus::Failure;

/// The exception for `failure`: `lightbus.exceptions.<failure.kind>(message)`, or a
/// `RuntimeError` if that class cannot be had (the package is broken).
pub(crate) fn to_py(py: Python<'_>, failure: Failure) -> PyErr {
    let class = py
        .import("lightbus.exceptions")
        .and_then(|module| module.getattr(failure.kind));
    match class.and_then(|class| class.call1((failure.message.clone(),))) {
        Ok(exception) => PyErr::from_value(exception),
        Err(_) => PyRuntimeError::new_err(format!("{}: {}", failure.kind, failure.message)),
    }
}
