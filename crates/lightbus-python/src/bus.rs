//! Every use of the `lightbus` crate's API by the Python engine, in one file.
//!
//! The rest of the crate speaks in JSON text (what the Python side produces and parses),
//! [`Failure`]s (what becomes a Python exception) and the handler types of
//! [`crate::handlers`]. When the `lightbus` crate's API moves, only this file changes; the
//! items used are: `Bus::builder()` with `config`/`config_file`/`service_name`/
//! `process_name`/`build`, `config::Config::from_str`, `Bus::config()` (`.file`,
//! `.api(name)`), `Bus::service_name`/`process_name`, `Bus::load_local_schema`,
//! `Bus::call_raw`, `Bus::fire_raw`,
//! `Bus::register` with the `api::Api` trait and `api::{ApiDescriptor, RpcDescriptor,
//! EventDescriptor, Parameter, RpcFailure, RpcOutcome}`, `Bus::listener(..).since(..)
//! .on_error(..).listen_raw(..)` with `Since`/`OnError`/`EventMessage`,
//! `worker::{Worker, Features}`, and the variants of `lightbus::Error` (in [`failure`] only).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Deserialize;
use serde_json::Value;

use lightbus::api::{
    Api, ApiDescriptor, EventDescriptor, Parameter, RpcDescriptor, RpcFailure, RpcOutcome,
};
use lightbus::config::Config;
use lightbus::worker::{Features, Worker};
use lightbus::{Error, EventMessage, Kwargs, OnError, Since};

pub(crate) use lightbus::Bus;

use crate::handlers::{HandlerError, PythonHandler, ReceivedEvent};

/// An engine failure, named by the Python exception class that reports it
/// (`lightbus.exceptions.<kind>`).
#[derive(Debug)]
pub(crate) struct Failure {
    /// The exception class's name, e.g. `LightbusTimeout`.
    pub kind: &'static str,
    /// The exception's message.
    pub message: String,
}

impl Failure {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// How to build a bus: a configuration (file or text) and names.
#[derive(Default)]
pub(crate) struct BusOptions {
    /// A configuration file (YAML or JSON) or http(s) URL; else `LIGHTBUS_CONFIG`.
    pub config_file: Option<PathBuf>,
    /// The configuration itself, as JSON text (`lightbus.create(config={...})`).
    pub config_text: Option<String>,
    /// The service name (placeholders allowed).
    pub service_name: Option<String>,
    /// The process name (placeholders allowed).
    pub process_name: Option<String>,
}

/// Loads the configuration and creates the bus (connections open on first use).
pub(crate) fn build(options: BusOptions) -> Result<Bus, Failure> {
    let mut builder = Bus::builder();
    if let Some(text) = &options.config_text {
        let config = Config::from_str(text, "the config given to lightbus.create()")
            .map_err(|e| failure(e.into()))?;
        builder = builder.config(config);
    } else if let Some(path) = options.config_file {
        builder = builder.config_file(path);
    }
    if let Some(name) = options.service_name {
        builder = builder.service_name(name);
    }
    if let Some(name) = options.process_name {
        builder = builder.process_name(name);
    }
    builder.build().map_err(failure)
}

/// The bus's service and process names.
pub(crate) fn names(bus: &Bus) -> (String, String) {
    (bus.service_name().to_owned(), bus.process_name().to_owned())
}

/// The configuration file's contents (defaults filled in), as JSON.
pub(crate) fn config_json(bus: &Bus) -> Result<String, Failure> {
    serde_json::to_string(&bus.config().file).map_err(codec)
}

/// The configuration in force for one API (its own entry, else `default`), as JSON.
pub(crate) fn api_config_json(bus: &Bus, api: &str) -> Result<String, Failure> {
    serde_json::to_string(bus.config().api(api)).map_err(codec)
}

/// Loads API schemas written by `dumpschema` (a file, or a directory of them) for
/// validation; returns the API names loaded.
pub(crate) fn load_local_schema(bus: &Bus, path: &std::path::Path) -> Result<Vec<String>, Failure> {
    bus.load_local_schema(path).map_err(failure)
}

/// Calls `api.procedure`; the future gives the result as JSON text.
pub(crate) fn call(
    bus: &Bus,
    api: &str,
    procedure: &str,
    kwargs_json: &str,
) -> Result<impl Future<Output = Result<String, Failure>> + Send + 'static, Failure> {
    let kwargs = parse_kwargs(kwargs_json, api, procedure)?;
    let (bus, api, procedure) = (bus.clone(), api.to_owned(), procedure.to_owned());
    Ok(async move {
        let value = bus
            .call_raw(&api, &procedure, kwargs)
            .await
            .map_err(failure)?;
        Ok(value.to_string())
    })
}

/// Fires `api.event`; the future gives the event's message id and stream entry id.
pub(crate) fn fire(
    bus: &Bus,
    api: &str,
    event: &str,
    kwargs_json: &str,
) -> Result<impl Future<Output = Result<(String, String), Failure>> + Send + 'static, Failure> {
    let kwargs = parse_kwargs(kwargs_json, api, event)?;
    let (bus, api, event) = (bus.clone(), api.to_owned(), event.to_owned());
    Ok(async move {
        let fired = bus.fire_raw(&api, &event, kwargs).await.map_err(failure)?;
        Ok((fired.id, fired.native_id))
    })
}

/// An API as the Python side describes it (`lightbus.api.describe`).
#[derive(Deserialize)]
struct ApiSpec {
    name: String,
    version: u32,
    rpcs: Vec<RpcSpec>,
    events: Vec<EventSpec>,
}

#[derive(Deserialize)]
struct RpcSpec {
    name: String,
    parameters: Vec<ParameterSpec>,
    response: Value,
}

#[derive(Deserialize)]
struct EventSpec {
    name: String,
    parameters: Vec<ParameterSpec>,
}

#[derive(Deserialize)]
struct ParameterSpec {
    name: String,
    schema: Value,
    required: bool,
}

fn parameters(specs: Vec<ParameterSpec>) -> Vec<Parameter> {
    specs
        .into_iter()
        .map(|spec| Parameter {
            name: spec.name,
            schema: spec.schema,
            required: spec.required,
        })
        .collect()
}

/// A Python `Api` instance served by the Rust worker.
struct PythonApi {
    descriptor: ApiDescriptor,
    handler: Arc<PythonHandler>,
}

impl Api for PythonApi {
    fn descriptor(&self) -> ApiDescriptor {
        self.descriptor.clone()
    }

    fn call(self: Arc<Self>, procedure: &str, kwargs: Kwargs) -> BoxFuture<'static, RpcOutcome> {
        let procedure = procedure.to_owned();
        async move {
            let kwargs = Value::Object(kwargs).to_string();
            let api = &self.descriptor.name;
            let handler = self.handler.clone();
            match handler.call_rpc(procedure.clone(), kwargs).await {
                Ok(result) => serde_json::from_str(&result).map_err(|e| {
                    RpcFailure::new(format!(
                        "the result of {api}.{procedure}() is not JSON: {e}"
                    ))
                }),
                Err(HandlerError { message, trace }) => {
                    Err(RpcFailure::new(message).with_trace(trace))
                }
            }
        }
        .boxed()
    }
}

/// Registers an API described by `spec_json` (see [`ApiSpec`]), served by `handler`.
pub(crate) fn register(
    bus: &Bus,
    spec_json: &str,
    handler: Arc<PythonHandler>,
) -> Result<(), Failure> {
    let spec: ApiSpec = serde_json::from_str(spec_json)
        .map_err(|e| Failure::new("InvalidApiRegistryEntry", format!("bad API spec: {e}")))?;
    let descriptor = ApiDescriptor {
        name: spec.name,
        version: spec.version,
        rpcs: spec
            .rpcs
            .into_iter()
            .map(|rpc| RpcDescriptor {
                name: rpc.name,
                parameters: parameters(rpc.parameters),
                response: rpc.response,
            })
            .collect(),
        events: spec
            .events
            .into_iter()
            .map(|event| EventDescriptor {
                name: event.name,
                parameters: parameters(event.parameters),
            })
            .collect(),
    };
    bus.register(PythonApi {
        descriptor,
        handler,
    })
    .map_err(|error| match failure(error) {
        Failure {
            kind: "DuplicateListenerName",
            message,
        } => Failure::new("InvalidApiRegistryEntry", message),
        other => other,
    })
}

/// Where a new listener starts reading.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StartAt {
    /// A stream id (`$`, `0`, `1700000000000-0`).
    Id(String),
    /// A point in time, in seconds since the Unix epoch.
    UnixSeconds(f64),
}

/// Adds a listener `name` for `events` (`"api.event"` each), handled by `handler`.
pub(crate) fn listen(
    bus: &Bus,
    name: &str,
    events: &[String],
    since: Option<StartAt>,
    acknowledge_failures: bool,
    handler: Arc<PythonHandler>,
) -> Result<(), Failure> {
    let mut builder = bus.listener(name);
    match since {
        Some(StartAt::Id(id)) => builder = builder.since(Since::Id(id)),
        Some(StartAt::UnixSeconds(seconds)) => {
            let time = Duration::try_from_secs_f64(seconds)
                .map(|offset| UNIX_EPOCH + offset)
                .map_err(|e| Failure::new("InvalidParameters", format!("bad `since` time: {e}")))?;
            builder = builder.since(Since::Time(time));
        }
        None => {}
    }
    if acknowledge_failures {
        builder = builder.on_error(OnError::AckAndLog);
    }
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    builder
        .listen_raw(&events, move |message: EventMessage| {
            let handler = handler.clone();
            async move {
                let event = ReceivedEvent {
                    kwargs_json: Value::Object(message.kwargs).to_string(),
                    id: message.id,
                    api_name: message.api_name,
                    event_name: message.event_name,
                    version: message.version,
                    native_id: message.native_id,
                };
                handler.handle_event(event).await
            }
        })
        .map_err(failure)
}

/// Serves the registered APIs and runs the listeners until `shutdown` completes.
/// Tasks and hooks are run by the Python side.
pub(crate) fn run_worker(
    bus: &Bus,
    rpcs: bool,
    events: bool,
    max_concurrency: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = Result<(), Failure>> + Send + 'static {
    let features = Features {
        rpcs,
        events,
        tasks: false,
    };
    let worker = Worker::new(bus.clone())
        .features(features)
        .max_concurrency(max_concurrency);
    async move { worker.run(shutdown).await.map_err(failure) }
}

fn parse_kwargs(kwargs_json: &str, api: &str, member: &str) -> Result<Kwargs, Failure> {
    serde_json::from_str(kwargs_json).map_err(|e| {
        Failure::new(
            "InvalidParameters",
            format!("the arguments for {api}.{member} are not a JSON object: {e}"),
        )
    })
}

fn codec(error: serde_json::Error) -> Failure {
    Failure::new("InvalidMessage", error.to_string())
}

/// The Python exception for a `lightbus::Error`: the only place that looks at its variants.
pub(crate) fn failure(error: Error) -> Failure {
    let kind = match &error {
        Error::Timeout { .. } => "LightbusTimeout",
        Error::Remote {
            api,
            procedure,
            message,
            trace,
            ..
        } => {
            let mut text = format!("{api}.{procedure}() failed on the worker: {message}");
            if !trace.is_empty() {
                text.push_str("\n\nRemote traceback:\n");
                text.push_str(trace);
            }
            return Failure::new("LightbusWorkerError", text);
        }
        Error::Validation(_) => "ValidationError",
        Error::Schema(_) => "SchemaNotFound",
        Error::NotAuthoritative { .. } => "UnknownApi",
        Error::InvalidArguments { .. } => "InvalidParameters",
        Error::UnknownMember { .. } | Error::InvalidName { .. } => "UnknownApi",
        Error::Duplicate { .. } => "DuplicateListenerName",
        Error::Config(_) => "UnexpectedConfigurationFormat",
        Error::Connection { .. }
        | Error::Authentication { .. }
        | Error::Tls { .. }
        | Error::Server { .. } => "LightbusConnectionError",
        Error::Closed => "BusAlreadyClosed",
        Error::Decode(_) | Error::Encoding { .. } => "InvalidMessage",
        Error::InvalidSchedule { .. } => "InvalidSchedule",
        Error::ListenerFailed { .. } | Error::Task { .. } => "LightbusWorkerError",
        _ => "LightbusException",
    };
    Failure::new(kind, error.to_string())
}
