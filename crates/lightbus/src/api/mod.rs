//! Defining APIs: the RPCs a service serves and the events it owns.
//!
//! An API is a named group of remote procedures and events. The process that registers an
//! API with [`Bus::register`](crate::Bus::register) is *authoritative* for it: it serves the
//! API's RPCs and is the only one allowed to fire the API's events. Any process may call the
//! RPCs and listen to the events.
//!
//! Most APIs are written with the [`#[lightbus::api]`](macro@crate::api) attribute on a trait, which
//! generates everything in this module for you. [`ApiBuilder`] builds an API from closures at
//! run time, for APIs whose shape is only known then (benchmarks, bridges, tests).
//!
//! The traits here are the contract between an API definition and the worker:
//! [`Api::descriptor`] says what the API contains (with JSON Schemas of every parameter and
//! response), and [`Api::call`] executes one procedure with keyword arguments.

mod dynamic;
mod registry;

pub use dynamic::{ApiBuilder, DynamicApi};
pub(crate) use registry::Registry;

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Keyword arguments, as they travel on the bus: a JSON object keyed by parameter name.
pub type Kwargs = serde_json::Map<String, Value>;

/// What an API contains: its name, RPCs and events, with the JSON Schema of each parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiDescriptor {
    /// The API's name on the bus, e.g. `auth` or `my_company.auth`.
    pub name: String,
    /// The version written into every event this API fires (upstream's `Meta.version`).
    pub version: u32,
    /// The API's remote procedures.
    pub rpcs: Vec<RpcDescriptor>,
    /// The API's events.
    pub events: Vec<EventDescriptor>,
}

/// One remote procedure of an API.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcDescriptor {
    /// The procedure's name, e.g. `check_password`.
    pub name: String,
    /// Its keyword parameters, in declaration order.
    pub parameters: Vec<Parameter>,
    /// JSON Schema of the value it returns (`{}` when unknown).
    pub response: Value,
}

/// One event of an API.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDescriptor {
    /// The event's name, e.g. `user_registered`.
    pub name: String,
    /// Its keyword parameters, in declaration order.
    pub parameters: Vec<Parameter>,
}

/// A keyword parameter of an RPC or event.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// The parameter's name, which is its key on the bus.
    pub name: String,
    /// JSON Schema of its value (`{}` when it accepts anything).
    pub schema: Value,
    /// False when the parameter may be left out (an `Option`).
    pub required: bool,
}

impl Parameter {
    /// A required parameter that accepts any JSON value.
    pub fn untyped(name: impl Into<String>) -> Self {
        Parameter {
            name: name.into(),
            schema: Value::Object(Default::default()),
            required: true,
        }
    }
}

impl ApiDescriptor {
    /// The RPC called `name`, if the API has one.
    pub fn rpc(&self, name: &str) -> Option<&RpcDescriptor> {
        self.rpcs.iter().find(|rpc| rpc.name == name)
    }

    /// The event called `name`, if the API has one.
    pub fn event(&self, name: &str) -> Option<&EventDescriptor> {
        self.events.iter().find(|event| event.name == name)
    }
}

/// A served API: its description and the dispatcher that runs its procedures.
///
/// Implemented for you by `#[lightbus::api]` (on the generated `…Server` type) and by
/// [`ApiBuilder`]. The worker calls [`Api::call`] for each RPC it receives; panics inside
/// are caught by the worker and turned into error results.
pub trait Api: Send + Sync + 'static {
    /// What the API contains. Called once, when the API is registered.
    fn descriptor(&self) -> ApiDescriptor;

    /// Runs the procedure `procedure` with `kwargs`, returning its JSON result or the failure
    /// to send back to the caller (unknown procedure, bad arguments, or the handler's error).
    fn call(self: Arc<Self>, procedure: &str, kwargs: Kwargs) -> BoxFuture<'static, RpcOutcome>;
}

/// What executing one RPC produced: a JSON value for the caller, or a failure.
pub type RpcOutcome = std::result::Result<Value, RpcFailure>;

/// An RPC that failed on the worker: the text sent back to the caller as the error result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcFailure {
    /// A one-line description of the failure (the result's `kwargs.result`).
    pub message: String,
    /// Extra detail such as an error chain or a panic location (the result's `metadata.trace`).
    pub trace: String,
}

impl RpcFailure {
    /// A failure from a handler's error value: its `Display` text, with its `Debug` form as
    /// the trace (which for `anyhow`-style errors includes the chain of causes).
    pub fn from_error<E: fmt::Display + fmt::Debug>(error: E) -> Self {
        RpcFailure {
            message: error.to_string(),
            trace: format!("{error:?}"),
        }
    }

    /// The call named a procedure the API does not have.
    pub fn unknown_procedure(api: &str, procedure: &str) -> Self {
        let message = format!("the `{api}` API has no procedure named `{procedure}`");
        RpcFailure {
            trace: message.clone(),
            message,
        }
    }

    /// The call's keyword arguments do not fit the procedure's parameters.
    pub fn invalid_arguments(api: &str, procedure: &str, reason: impl fmt::Display) -> Self {
        let message = format!("invalid arguments for {api}.{procedure}(): {reason}");
        RpcFailure {
            trace: message.clone(),
            message,
        }
    }

    /// The handler panicked; `panic` is the panic's message.
    pub fn panicked(api: &str, procedure: &str, panic: &str) -> Self {
        RpcFailure {
            message: format!("handler for {api}.{procedure}() panicked: {panic}"),
            trace: format!("panic in {api}.{procedure}(): {panic}"),
        }
    }
}

impl fmt::Display for RpcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An event type: the typed parameters of one event of one API.
///
/// Generated by `#[lightbus::api]` for every `#[event]` in the trait (as a struct named after
/// the event in CamelCase, e.g. `UserRegistered`). Fire one with
/// [`Bus::fire`](crate::Bus::fire); receive it by taking it as a listener's second argument.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The API the event belongs to.
    const API_NAME: &'static str;
    /// The event's name within its API.
    const EVENT_NAME: &'static str;
}
