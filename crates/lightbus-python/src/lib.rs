//! `lightbus._engine`: the Rust engine under the `lightbus` Python package.
//!
//! The Python package (`python/lightbus`) keeps Python Lightbus 1.x's API: `Api` classes,
//! `BusPath`, type hints, casting, hooks and tasks are pure Python. Every message goes
//! through this module, a thin layer over the `lightbus` crate:
//!
//! - `bus` holds every use of the `lightbus` crate's API, so a change there touches one file;
//! - `engine` is the `Engine` class Python holds per bus: calls, fires, registrations,
//!   listeners and the worker;
//! - `handlers` runs Python handlers for the Rust worker;
//! - `completions` hands the outcomes of async operations to asyncio loops;
//! - `errors` turns engine failures into the exceptions upstream's users catch;
//! - `runtime` is the process's Tokio runtime and the wait that keeps Ctrl-C working;
//! - `thread_state` keeps a Python thread state per engine thread, so handlers do not
//!   create and delete one per call;
//! - `logs` writes the engine's log lines to stderr.
//!
//! # Threads, the GIL and asyncio
//!
//! All network I/O runs on one Tokio runtime per process (one worker thread), never
//! holding the GIL. A Python thread that calls or fires without `await` releases the GIL
//! while it waits, so other Python threads (and the worker's handlers) run meanwhile;
//! `call_async` / `fire_async` return at once and resolve the caller's asyncio future on its
//! own loop: the engine queues the outcome and wakes the loop through a socket it watches,
//! so engine threads never run Python for it (see `completions`).
//!
//! Handlers for RPCs and events are called on an engine thread that first hands its share
//! of the runtime to another (`block_in_place`), with the GIL held: a plain function runs
//! right there (so a slow handler blocks neither the runtime nor other handlers' I/O, and
//! may itself make blocking calls on the bus); an `async def` handler is handed to the
//! worker's asyncio loop by the Python side. Either way the outcome
//! comes back through a one-shot `Reply`. A Python exception in a handler is an
//! error result for the caller (RPC) or a listener failure (event), never a crash of the
//! worker; a Rust panic inside the engine surfaces as a Python exception.

mod bus;
mod completions;
mod engine;
mod errors;
mod handlers;
mod logs;
mod runtime;
mod thread_state;

use pyo3::prelude::*;

/// The extension module `lightbus._engine`.
#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Engine>()?;
    m.add_class::<handlers::Reply>()?;
    m.add_class::<completions::Completions>()?;
    m.add_function(wrap_pyfunction!(logs::set_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::prepare_exit, m)?)?;
    m.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
