//! `Engine`: one bus, as the Python side uses it. Values cross as JSON text.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use tokio::sync::oneshot;

use crate::bus::{self, Bus, BusOptions, Failure, StartAt};
use crate::completions::{Completions, Payload};
use crate::errors;
use crate::handlers::PythonHandler;
use crate::{logs, runtime};

/// A bus client: calls, fires, registrations, listeners and the worker.
#[pyclass(frozen, module = "lightbus._engine")]
pub struct Engine {
    bus: Bus,
    /// Stops the running worker, if one runs.
    stop_worker: Mutex<Option<oneshot::Sender<()>>>,
}

/// `since` from Python: a stream id, or seconds since the Unix epoch.
#[derive(FromPyObject)]
enum SinceArg {
    Seconds(f64),
    Id(String),
}

impl Engine {
    fn fail(py: Python<'_>, failure: Failure) -> PyErr {
        errors::to_py(py, failure)
    }
}

#[pymethods]
impl Engine {
    /// Loads the configuration (`config_text` as JSON, else `config_file`, else
    /// `LIGHTBUS_CONFIG`) and creates the bus. Connections open on first use.
    #[new]
    #[pyo3(signature = (*, config_file=None, config_text=None, service_name=None, process_name=None))]
    fn new(
        py: Python<'_>,
        config_file: Option<PathBuf>,
        config_text: Option<String>,
        service_name: Option<String>,
        process_name: Option<String>,
    ) -> PyResult<Self> {
        logs::install();
        let options = BusOptions {
            config_file,
            config_text,
            service_name,
            process_name,
        };
        let built = py.detach(|| {
            let runtime = runtime::get()?;
            let _entered = runtime.enter();
            bus::build(options)
        });
        Ok(Engine {
            bus: built.map_err(|f| Self::fail(py, f))?,
            stop_worker: Mutex::new(None),
        })
    }

    /// This process's service name.
    #[getter]
    fn service_name(&self) -> String {
        bus::names(&self.bus).0
    }

    /// This process's name.
    #[getter]
    fn process_name(&self) -> String {
        bus::names(&self.bus).1
    }

    /// The configuration file's contents with defaults filled in, as JSON.
    fn config_json(&self, py: Python<'_>) -> PyResult<String> {
        bus::config_json(&self.bus).map_err(|f| Self::fail(py, f))
    }

    /// The configuration in force for `api`, as JSON.
    fn api_config_json(&self, py: Python<'_>, api: &str) -> PyResult<String> {
        bus::api_config_json(&self.bus, api).map_err(|f| Self::fail(py, f))
    }

    /// Loads API schemas written by `dumpschema` (a JSON file, or a directory of them) for
    /// validation without live workers; returns the API names loaded.
    fn load_local_schema(&self, py: Python<'_>, path: PathBuf) -> PyResult<Vec<String>> {
        py.detach(|| bus::load_local_schema(&self.bus, &path))
            .map_err(|f| Self::fail(py, f))
    }

    /// Calls `api.procedure` with JSON keyword arguments and blocks (without the GIL) until
    /// the JSON result arrives.
    fn call(&self, py: Python<'_>, api: &str, procedure: &str, kwargs: &str) -> PyResult<String> {
        let call = bus::call(&self.bus, api, procedure, kwargs).map_err(|f| Self::fail(py, f))?;
        runtime::wait(py, call)
    }

    /// Starts calls and returns at once: `calls` are `(api, procedure, kwargs_json, token)`;
    /// each outcome (the result's JSON text) is queued in `completions` under its token.
    fn call_batch(
        &self,
        py: Python<'_>,
        calls: Vec<(String, String, String, u64)>,
        completions: &Completions,
    ) -> PyResult<()> {
        let mut started = Vec::with_capacity(calls.len());
        for (api, procedure, kwargs, token) in calls {
            let completion = completions.completion(token);
            match bus::call(&self.bus, &api, &procedure, &kwargs) {
                Ok(call) => started.push((call, completion)),
                Err(failure) => completion.finish(Err(failure)),
            }
        }
        runtime::complete_later(py, started, Payload::Json)
    }

    /// Fires `api.event` and blocks (without the GIL) until it is stored; returns the
    /// event's message id and stream entry id.
    fn fire(
        &self,
        py: Python<'_>,
        api: &str,
        event: &str,
        kwargs: &str,
    ) -> PyResult<(String, String)> {
        let fire = bus::fire(&self.bus, api, event, kwargs).map_err(|f| Self::fail(py, f))?;
        runtime::wait(py, fire)
    }

    /// Starts fires and returns at once: `fires` are `(api, event, kwargs_json, token)`;
    /// each outcome (`(id, native_id)`) is queued in `completions` under its token.
    fn fire_batch(
        &self,
        py: Python<'_>,
        fires: Vec<(String, String, String, u64)>,
        completions: &Completions,
    ) -> PyResult<()> {
        let mut started = Vec::with_capacity(fires.len());
        for (api, event, kwargs, token) in fires {
            let completion = completions.completion(token);
            match bus::fire(&self.bus, &api, &event, &kwargs) {
                Ok(fire) => started.push((fire, completion)),
                Err(failure) => completion.finish(Err(failure)),
            }
        }
        let ids = |(id, native_id)| Payload::Ids(id, native_id);
        runtime::complete_later(py, started, ids)
    }

    /// Registers an API described by `spec` (JSON: name, version, rpcs, events with their
    /// parameter schemas); `dispatch(procedure, kwargs_json, reply)` runs its RPCs.
    fn register(&self, py: Python<'_>, spec: &str, dispatch: Py<PyAny>) -> PyResult<()> {
        let handler = Arc::new(PythonHandler::new(dispatch));
        py.detach(|| bus::register(&self.bus, spec, handler))
            .map_err(|f| Self::fail(py, f))
    }

    /// Adds the listener `name` for `events` (`"api.event"` each); `dispatch(id, api_name,
    /// event_name, version, kwargs_json, native_id, reply)` handles each event. With
    /// `acknowledge_failures`, a failed handler's event is acknowledged and logged; else the
    /// worker stops and the event stays pending.
    #[pyo3(signature = (name, events, dispatch, *, since=None, acknowledge_failures=false))]
    fn listen(
        &self,
        py: Python<'_>,
        name: &str,
        events: Vec<String>,
        dispatch: Py<PyAny>,
        since: Option<SinceArg>,
        acknowledge_failures: bool,
    ) -> PyResult<()> {
        let since = since.map(|since| match since {
            SinceArg::Id(id) => StartAt::Id(id),
            SinceArg::Seconds(seconds) => StartAt::UnixSeconds(seconds),
        });
        let handler = Arc::new(PythonHandler::new(dispatch));
        py.detach(|| {
            bus::listen(
                &self.bus,
                name,
                &events,
                since,
                acknowledge_failures,
                handler,
            )
        })
        .map_err(|f| Self::fail(py, f))
    }

    /// Starts the worker (serving RPCs and/or running listeners) and returns at once; when
    /// it has stopped (after `stop_worker`, or on a fatal error such as a failed listener)
    /// its outcome is queued in `completions` under `token`.
    fn start_worker(
        &self,
        py: Python<'_>,
        rpcs: bool,
        events: bool,
        max_concurrency: usize,
        completions: &Completions,
        token: u64,
    ) -> PyResult<()> {
        let (stop, stopped) = oneshot::channel::<()>();
        {
            let mut slot = self
                .stop_worker
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if slot.as_ref().is_some_and(|sender| !sender.is_closed()) {
                let failure =
                    Failure::new("UnsupportedUse", "a worker is already running on this bus");
                return Err(Self::fail(py, failure));
            }
            *slot = Some(stop);
        }
        let shutdown = async move {
            // A dropped sender (the engine went away) stops the worker too.
            let _ = stopped.await;
        };
        let run = bus::run_worker(&self.bus, rpcs, events, max_concurrency, shutdown);
        let nothing = |()| Payload::Nothing;
        runtime::complete_later(py, vec![(run, completions.completion(token))], nothing)
    }

    /// Asks the running worker to stop: no new work is taken, in-flight work finishes.
    fn stop_worker(&self) {
        let sender = self
            .stop_worker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(());
        }
    }
}
