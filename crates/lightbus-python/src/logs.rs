//! The engine's log lines (worker start-up, reconnects, warnings) on stderr.
//!
//! Installed when the first bus is created, at `warning` level (or as `RUST_LOG` says);
//! `lightbus run` raises it to the configured level with [`set_log_level`].

use std::sync::OnceLock;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

static FILTER: OnceLock<Option<reload::Handle<EnvFilter, Registry>>> = OnceLock::new();

/// Installs the stderr logger once per process (a no-op if the process has one already).
pub(crate) fn install() {
    FILTER.get_or_init(|| {
        let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
        let filter = EnvFilter::new(from_env.as_deref().unwrap_or("warn"));
        let (filter, handle) = reload::Layer::new(filter);
        let format = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false);
        let installed = tracing_subscriber::registry()
            .with(filter)
            .with(format)
            .try_init()
            .is_ok();
        // RUST_LOG, when set, stays in charge.
        (installed && from_env.is_none()).then_some(handle)
    });
}

/// Sets the engine's log level: `debug`, `info`, `warning`, `error` or `critical`
/// (Python's names; case-insensitive).
#[pyfunction]
pub fn set_log_level(level: &str) -> PyResult<()> {
    let directive = match level.to_ascii_lowercase().as_str() {
        "debug" => "debug",
        "info" => "info",
        "warning" | "warn" => "warn",
        "error" | "critical" | "exception" => "error",
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown log level {other:?} (expected debug, info, warning, error or critical)"
            )))
        }
    };
    install();
    if let Some(Some(handle)) = FILTER.get() {
        let _ = handle.reload(EnvFilter::new(directive));
    }
    Ok(())
}
