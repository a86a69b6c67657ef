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

/// Splits `"api.member"` (e.g. `"auth.check_password"`) at its last dot: API names may
/// contain dots, member names may not.
///
/// ```
/// use lightbus::api::split_member;
/// assert_eq!(split_member("my_company.auth.check").unwrap(), ("my_company.auth", "check"));
/// assert!(split_member("auth").is_err());
/// ```
pub fn split_member(member: &str) -> crate::error::Result<(&str, &str)> {
    member
        .rsplit_once('.')
        .filter(|(api, name)| !api.is_empty() && !name.is_empty())
        .ok_or_else(|| crate::error::Error::InvalidName {
            kind: crate::error::NameKind::Member,
            name: member.to_owned(),
            reason: "expected `api.member`, for example `auth.check_password`".to_owned(),
        })
}

/// Splits each `"api.event"` name with [`split_member`], in order, without repeats.
///
/// ```
/// use lightbus::api::split_members;
/// let pairs = split_members(&["auth.user_registered", "billing.paid", "auth.user_registered"]);
/// assert_eq!(pairs.unwrap(), [
///     ("auth".to_owned(), "user_registered".to_owned()),
///     ("billing".to_owned(), "paid".to_owned()),
/// ]);
/// ```
pub fn split_members(members: &[&str]) -> crate::error::Result<Vec<(String, String)>> {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(members.len());
    for member in members {
        let (api, name) = split_member(member)?;
        let pair = (api.to_owned(), name.to_owned());
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    Ok(pairs)
}

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
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an API that can be registered",
    label = "expected an API server here",
    note = "register the server that `#[lightbus::api]` generates around your implementation: `bus.register(AuthServer::new(MyService))`",
    note = "for APIs built at run time, use `lightbus::api::ApiBuilder`"
)]
pub trait Api: Send + Sync + 'static {
    /// What the API contains. Called once, when the API is registered.
    fn descriptor(&self) -> ApiDescriptor;

    /// Runs the procedure `procedure` with `kwargs`, returning its JSON result or the failure
    /// to send back to the caller (unknown procedure, bad arguments, or the handler's error).
    fn call(self: Arc<Self>, procedure: &str, kwargs: Kwargs) -> BoxFuture<'static, RpcOutcome>;
}

/// What executing one RPC produced: a JSON value for the caller, or a failure.
pub type RpcOutcome = std::result::Result<Value, RpcFailure>;

/// An RPC that failed on the worker: what is sent back to the caller as the error result.
///
/// A handler returns one to fail with a machine-readable [`code`](Self::code) that Rust
/// callers can match on ([`Error::Remote`](crate::Error::Remote)'s `code`):
///
/// ```
/// use lightbus::api::RpcFailure;
///
/// fn check(balance: u64, amount: u64) -> Result<u64, RpcFailure> {
///     if amount > balance {
///         return Err(RpcFailure::new(format!("cannot take {amount} from {balance}"))
///             .with_code("insufficient_funds"));
///     }
///     Ok(balance - amount)
/// }
/// assert_eq!(check(1, 2).unwrap_err().code.as_deref(), Some("insufficient_funds"));
/// ```
///
/// On the wire the code travels beside the result (`kwargs.error_code`), where Python
/// Lightbus callers, which read only `kwargs.result`, do not see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RpcFailure {
    /// A one-line description of the failure (the result's `kwargs.result`).
    pub message: String,
    /// Extra detail such as an error chain or a panic location (the result's `metadata.trace`).
    pub trace: String,
    /// A machine-readable code for callers to match on, e.g. `not_found`.
    pub code: Option<String>,
}

impl RpcFailure {
    /// A failure described by `message`, with the message as its trace and no code.
    pub fn new(message: impl Into<String>) -> Self {
        let message = message.into();
        RpcFailure {
            trace: message.clone(),
            message,
            code: None,
        }
    }

    /// This failure with a machine-readable `code`.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// This failure with `trace` as its trace.
    pub fn with_trace(mut self, trace: impl Into<String>) -> Self {
        self.trace = trace.into();
        self
    }

    /// A failure from a handler's error value: its `Display` text, with its `Debug` form as
    /// the trace (which for `anyhow`-style errors includes the chain of causes). An
    /// `RpcFailure` returned as the error is taken as it is, code included.
    pub fn from_error<E: fmt::Display + fmt::Debug + 'static>(error: E) -> Self {
        let any: &dyn std::any::Any = &error;
        if let Some(failure) = any.downcast_ref::<RpcFailure>() {
            return failure.clone();
        }
        RpcFailure::new(error.to_string()).with_trace(format!("{error:?}"))
    }

    /// The call named a procedure the API does not have.
    pub fn unknown_procedure(api: &str, procedure: &str) -> Self {
        RpcFailure::new(format!(
            "the `{api}` API has no procedure named `{procedure}`"
        ))
        .with_code(codes::UNKNOWN_PROCEDURE)
    }

    /// The call's keyword arguments do not fit the procedure's parameters.
    pub fn invalid_arguments(api: &str, procedure: &str, reason: impl fmt::Display) -> Self {
        RpcFailure::new(format!(
            "invalid arguments for {api}.{procedure}(): {reason}"
        ))
        .with_code(codes::INVALID_ARGUMENTS)
    }

    /// The handler panicked; `panic` is the panic's message.
    pub fn panicked(api: &str, procedure: &str, panic: &str) -> Self {
        RpcFailure::new(format!("handler for {api}.{procedure}() panicked: {panic}"))
            .with_trace(format!("panic in {api}.{procedure}(): {panic}"))
            .with_code(codes::PANICKED)
    }
}

/// The codes this library gives the failures it produces itself on the worker.
pub mod codes {
    /// The call named a procedure the API does not have.
    pub const UNKNOWN_PROCEDURE: &str = "unknown_procedure";
    /// The arguments do not fit the procedure's parameters (or its schema).
    pub const INVALID_ARGUMENTS: &str = "invalid_arguments";
    /// The handler's result does not fit the procedure's response schema.
    pub const INVALID_RESULT: &str = "invalid_result";
    /// The handler panicked.
    pub const PANICKED: &str = "panicked";
    /// The worker does not serve the API called.
    pub const UNKNOWN_API: &str = "unknown_api";
    /// The call could not be decoded (its arguments are not an object, a field has the
    /// wrong type…); it was not executed.
    pub const INVALID_CALL: &str = "invalid_call";
    /// The handler's result is larger than `result_transport.redis.max_message_bytes`.
    pub const RESULT_TOO_LARGE: &str = "result_too_large";
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
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event of an API",
    label = "expected an event struct generated by `#[lightbus::api]`",
    note = "declare the event with `#[event] fn name(params...);` in an API trait; its struct implements `Event`"
)]
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The API the event belongs to.
    const API_NAME: &'static str;
    /// The event's name within its API.
    const EVENT_NAME: &'static str;
}
