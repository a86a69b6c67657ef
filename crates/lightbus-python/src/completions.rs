//! Handing the outcomes of async operations to an asyncio loop without entering Python.
//!
//! An engine thread that ran Python code (say, `loop.call_soon_threadsafe`) could be inside
//! the interpreter when the main thread finishes and tears it down; CPython then ends that
//! thread in the middle of Rust code, which crashes the process. So engine threads never
//! touch Python for `call_async`, `fire_async` or the worker's exit: they queue the outcome
//! here and write a byte to a socket the loop watches (`loop.add_reader`). The loop's
//! thread then takes the outcomes, holding the GIL as Python code does.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::bus::Failure;
use crate::errors;

/// What a finished operation produced, before it becomes a Python value.
pub(crate) enum Payload {
    /// JSON text (an RPC's result).
    Json(String),
    /// An event's message id and stream entry id.
    Ids(String, String),
    /// Nothing (the worker stopped cleanly).
    Nothing,
}

struct Queue {
    outcomes: Mutex<Vec<(u64, Result<Payload, Failure>)>>,
    reader: UnixStream,
    writer: UnixStream,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Result<Payload, Failure>)>> {
        self.outcomes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The outcomes waiting for one asyncio loop, and the socket that wakes it.
#[pyclass(frozen, module = "lightbus._engine")]
pub struct Completions {
    queue: Arc<Queue>,
}

/// Where one operation's outcome goes: a queue and the caller's token.
pub(crate) struct Completion {
    queue: Arc<Queue>,
    token: u64,
}

impl Completion {
    /// Queues the outcome and wakes the loop, unless a wake-up is already pending (the
    /// queue was not empty: the loop takes everything queued when it wakes, after reading
    /// the socket). Never enters Python.
    pub(crate) fn finish(self, outcome: Result<Payload, Failure>) {
        let was_empty = {
            let mut outcomes = self.queue.lock();
            let was_empty = outcomes.is_empty();
            outcomes.push((self.token, outcome));
            was_empty
        };
        if was_empty {
            // A full socket already holds a pending wake-up; a closed one has nobody to wake.
            let _ = (&self.queue.writer).write(&[1]);
        }
    }
}

impl Completions {
    /// Where the outcome of the operation `token` goes.
    pub(crate) fn completion(&self, token: u64) -> Completion {
        Completion {
            queue: self.queue.clone(),
            token,
        }
    }
}

#[pymethods]
impl Completions {
    /// A new queue with its wake-up socket.
    #[new]
    fn new() -> PyResult<Self> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(Completions {
            queue: Arc::new(Queue {
                outcomes: Mutex::new(Vec::new()),
                reader,
                writer,
            }),
        })
    }

    /// The file descriptor to watch for reading (`loop.add_reader(fd, ...)`).
    fn fileno(&self) -> i32 {
        self.queue.reader.as_raw_fd()
    }

    /// Takes every finished outcome as `(token, value, exception)` tuples, exactly one of
    /// `value` and `exception` being set (`value` is None for operations without one).
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let mut buffer = [0u8; 512];
        loop {
            match (&self.queue.reader).read(&mut buffer) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break, // WouldBlock: drained
            }
        }
        let outcomes = std::mem::take(&mut *self.queue.lock());
        outcomes
            .into_iter()
            .map(|(token, outcome)| {
                let (value, error) = match outcome {
                    Ok(Payload::Json(text)) => (text.into_pyobject(py)?.into_any(), py.None()),
                    Ok(Payload::Ids(id, native_id)) => {
                        (PyTuple::new(py, [id, native_id])?.into_any(), py.None())
                    }
                    Ok(Payload::Nothing) => (py.None().into_bound(py), py.None()),
                    Err(failure) => (
                        py.None().into_bound(py),
                        errors::to_py(py, failure).into_value(py).into_any(),
                    ),
                };
                PyTuple::new(
                    py,
                    [
                        token.into_pyobject(py)?.into_any(),
                        value,
                        error.into_bound(py),
                    ],
                )
            })
            .collect()
    }
}
