//! Running Python handlers for the Rust worker.
//!
//! The worker calls a handler from a Tokio task. The task's thread first hands its share of
//! the runtime to another thread (`block_in_place`), so the handler may take long or block
//! (even on a bus call of its own) without stalling other work; then it takes the GIL and
//! calls the Python side's dispatcher with the message and a [`Reply`]. The dispatcher either
//! runs a plain function at once and replies, or hands a coroutine to the worker's asyncio
//! loop, which replies when it finishes. The task then waits for the reply.

use std::sync::{Arc, Mutex};

use crate::runtime;

use pyo3::prelude::*;
use tokio::sync::oneshot;

/// A failed handler: the exception's text and its Python traceback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HandlerError {
    /// What failed, e.g. `ValueError('bad x')`.
    pub message: String,
    /// The formatted traceback, possibly empty.
    pub trace: String,
}

impl HandlerError {
    fn internal(message: String) -> Self {
        HandlerError {
            trace: message.clone(),
            message,
        }
    }
}

/// What a handler produced: a JSON result (RPCs), nothing (events), or a failure.
type Outcome = Result<Option<String>, HandlerError>;

/// The one-shot answer channel a Python handler replies on; Python calls `ok` or `fail` once.
#[pyclass(frozen, module = "lightbus._engine")]
pub struct Reply {
    sender: Mutex<Option<oneshot::Sender<Outcome>>>,
}

impl Reply {
    fn send(&self, outcome: Outcome) -> PyResult<()> {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        match sender {
            // A closed receiver means the worker gave up on the message (shutdown): the
            // outcome has nowhere to go, which is not the handler's error.
            Some(sender) => {
                let _ = sender.send(outcome);
                Ok(())
            }
            None => Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this handler already replied",
            )),
        }
    }
}

#[pymethods]
impl Reply {
    /// The handler succeeded; `result` is its JSON-encoded return value (RPCs) or None.
    #[pyo3(signature = (result=None))]
    fn ok(&self, result: Option<String>) -> PyResult<()> {
        self.send(Ok(result))
    }

    /// The handler failed with `message` (the exception's repr) and `trace` (its traceback).
    fn fail(&self, message: String, trace: String) -> PyResult<()> {
        self.send(Err(HandlerError { message, trace }))
    }
}

/// An event as the worker received it, for a Python listener.
pub(crate) struct ReceivedEvent {
    pub id: String,
    pub api_name: String,
    pub event_name: String,
    pub version: u32,
    pub kwargs_json: String,
    pub native_id: Option<String>,
}

/// A Python dispatcher: for RPCs `dispatch(procedure, kwargs_json, reply)`, for events
/// `dispatch(id, api_name, event_name, version, kwargs_json, native_id, reply)`.
pub(crate) struct PythonHandler {
    /// Always `Some` until dropped.
    dispatch: Option<Py<PyAny>>,
}

impl Drop for PythonHandler {
    fn drop(&mut self) {
        if let Some(dispatch) = self.dispatch.take() {
            runtime::release(dispatch);
        }
    }
}

impl PythonHandler {
    /// Wraps a Python callable.
    pub(crate) fn new(dispatch: Py<PyAny>) -> Self {
        PythonHandler {
            dispatch: Some(dispatch),
        }
    }

    /// Runs an RPC; its JSON result, or its failure.
    pub(crate) async fn call_rpc(
        self: Arc<Self>,
        procedure: String,
        kwargs_json: String,
    ) -> Result<String, HandlerError> {
        let outcome = self
            .invoke(move |py, dispatch, reply| {
                dispatch.call1(py, (procedure, kwargs_json, reply))?;
                Ok(())
            })
            .await?;
        Ok(outcome.unwrap_or_else(|| "null".to_owned()))
    }

    /// Runs a listener on one event; a failure as text (with its traceback).
    pub(crate) async fn handle_event(self: Arc<Self>, event: ReceivedEvent) -> Result<(), String> {
        self.invoke(move |py, dispatch, reply| {
            let args = (
                event.id,
                event.api_name,
                event.event_name,
                event.version,
                event.kwargs_json,
                event.native_id,
                reply,
            );
            dispatch.call1(py, args)?;
            Ok(())
        })
        .await
        .map(|_| ())
        .map_err(|error| {
            if error.trace.is_empty() {
                error.message
            } else {
                format!("{}\n{}", error.message, error.trace)
            }
        })
    }

    /// Calls the dispatcher with the GIL on this thread, which first hands its share of the
    /// runtime to another thread (`block_in_place`: a slow or blocking handler stalls no other
    /// work), then waits for the reply. A plain-function handler has replied by the time the
    /// dispatcher returns, so its outcome needs no further wake-up.
    async fn invoke<F>(self: Arc<Self>, call: F) -> Outcome
    where
        F: FnOnce(Python<'_>, &Py<PyAny>, Py<Reply>) -> PyResult<()> + Send + 'static,
    {
        let (sender, receiver) = oneshot::channel();
        let started = tokio::task::block_in_place(|| {
            runtime::attach(|py| -> Result<(), HandlerError> {
                let reply = Reply {
                    sender: Mutex::new(Some(sender)),
                };
                let reply = Py::new(py, reply).map_err(|e| python_error(py, e))?;
                let Some(dispatch) = self.dispatch.as_ref() else {
                    return Err(HandlerError::internal(
                        "the handler was released".to_owned(),
                    ));
                };
                call(py, dispatch, reply).map_err(|e| python_error(py, e))
            })
        });
        match started {
            Some(Ok(())) => {}
            Some(Err(error)) => return Err(error),
            None => {
                return Err(HandlerError::internal(
                    "the Python interpreter is shutting down".to_owned(),
                ))
            }
        }
        receiver.await.unwrap_or_else(|_| {
            Err(HandlerError::internal(
                "the Python handler finished without a result".to_owned(),
            ))
        })
    }
}

/// An exception raised by the dispatcher itself (not by the user's handler, which the
/// dispatcher reports through [`Reply::fail`]).
fn python_error(py: Python<'_>, error: PyErr) -> HandlerError {
    let trace = error
        .traceback(py)
        .and_then(|traceback| traceback.format().ok())
        .unwrap_or_default();
    HandlerError {
        message: error.to_string(),
        trace,
    }
}
