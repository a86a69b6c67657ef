//! The process's Tokio runtime, and waiting on it from Python.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;

use crate::bus::Failure;
use crate::completions::{Completion, Payload};
use crate::errors;
use crate::thread_state;

/// How often a blocked Python caller wakes to let Ctrl-C (`KeyboardInterrupt`) through.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// The process that started the runtime: after a `fork()` the child has none of its threads.
static RUNTIME_PID: OnceLock<u32> = OnceLock::new();

/// Set when the interpreter starts shutting down (an `atexit` hook of the Python side):
/// from then on engine threads never enter Python, where they could crash it.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Tells the engine the interpreter is shutting down (registered with `atexit`).
#[pyfunction]
pub fn prepare_exit() {
    EXITING.store(true, Ordering::SeqCst);
}

/// Runs `f` holding the GIL from an engine thread; None (without running it) once the
/// interpreter is shutting down.
pub(crate) fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    // SAFETY: `Py_IsInitialized` may be called at any time.
    if exiting() || unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
        return None;
    }
    thread_state::keep();
    Python::try_attach(f)
}

/// Whether the interpreter has started shutting down (see [`prepare_exit`]).
pub(crate) fn exiting() -> bool {
    EXITING.load(Ordering::SeqCst)
}

/// Drops a Python object from an engine thread: with the GIL, or (when the interpreter is
/// shutting down) not at all. An object dropped without the GIL would be released later, at
/// an arbitrary point, possibly in the middle of the interpreter's teardown.
pub(crate) fn release(object: Py<PyAny>) {
    let mut slot = Some(object);
    if attach(|_py| drop(slot.take())).is_none() {
        std::mem::forget(slot.take());
    }
}

/// The runtime every bus of this process runs on, started on first use.
pub(crate) fn get() -> Result<&'static tokio::runtime::Runtime, Failure> {
    let pid = *RUNTIME_PID.get_or_init(std::process::id);
    if pid != std::process::id() {
        return Err(Failure::new(
            "UnsupportedUse",
            "this bus was created before the process forked, and its engine did not survive \
             the fork: create the bus in the child process (e.g. in a post-fork hook)",
        ));
    }
    RUNTIME
        .get_or_init(|| {
            // One thread: the bus's I/O is light next to Python's own work, and fewer threads
            // means fewer hand-overs between them. Measured against two threads on the 2-vCPU
            // VM, 2026-12-04, three interleaved rounds (a Python caller, a Rust worker):
            // sequential `fire_async` 6.4-7.9k against 5.3-5.4k events/s, 64 at once 69-75k
            // against 59-69k, sequential `call_async` p50 0.26-0.36 against 0.30-0.31 ms.
            // Python handlers still run off it: `block_in_place` moves the runtime to
            // another thread while one runs (see `handlers`).
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("lightbus-engine")
                .on_thread_start(thread_state::mark_engine_thread)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Failure::new("LightbusException", format!("cannot start the engine: {e}")))
}

/// Runs `future` on the runtime and blocks the calling Python thread until it is done,
/// without the GIL. Ctrl-C raises `KeyboardInterrupt` in the caller (the operation itself
/// carries on to its own deadline in the background).
pub(crate) fn wait<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    let runtime = get().map_err(|f| errors::to_py(py, f))?;
    let (sender, receiver) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = sender.send(future.await);
    });
    let mut receiver = receiver;
    loop {
        // The receiver moves into the GIL-free closure and back (it is `Send`, not `Sync`).
        let (received, back) = py.detach(move || {
            let received = receiver.recv_timeout(SIGNAL_CHECK);
            (received, receiver)
        });
        receiver = back;
        match received {
            Ok(outcome) => return outcome.map_err(|f| errors::to_py(py, f)),
            Err(mpsc::RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let failure = Failure::new("LightbusException", "the engine stopped mid-operation");
                return Err(errors::to_py(py, failure));
            }
        }
    }
}

/// Runs each future on the runtime, all in one task (one wake-up of the runtime for a
/// batch); each outcome, made a [`Payload`] by `payload`, goes to its [`Completion`] (see
/// [`crate::completions`]: engine threads never enter Python for it).
pub(crate) fn complete_later<T, F>(
    py: Python<'_>,
    operations: Vec<(F, Completion)>,
    payload: fn(T) -> Payload,
) -> PyResult<()>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    if operations.is_empty() {
        return Ok(());
    }
    let runtime = get().map_err(|f| errors::to_py(py, f))?;
    runtime.spawn(async move {
        let finished = operations
            .into_iter()
            .map(|(future, completion)| async move {
                completion.finish(future.await.map(payload));
            });
        futures::future::join_all(finished).await;
    });
    Ok(())
}
