//! # Lightbus for Rust
//!
//! RPCs and events between backend services over Redis, wire-compatible with Python
//! Lightbus 1.1: a Rust service and a Python service on one Redis call each other's
//! procedures and consume each other's events.
//!
//! ```no_run
//! # mod doc {
//! use lightbus::{Bus, EventMessage};
//!
//! /// The `auth` API, shared by the service that serves it and every caller.
//! #[lightbus::api(name = "auth")]
//! pub trait Auth {
//!     /// Checks a user's password.
//!     async fn check_password(&self, username: String, password: String) -> bool;
//!
//!     /// Fired when a user signs up.
//!     #[event]
//!     fn user_registered(username: String, email: String);
//! }
//!
//! struct AuthService;
//!
//! impl Auth for AuthService {
//!     async fn check_password(&self, username: String, password: String) -> bool {
//!         username == "admin" && password == "secret"
//!     }
//! }
//!
//! async fn caller() -> lightbus::Result<()> {
//!     let bus = lightbus::create()?;
//!     let valid = AuthClient::new(&bus).check_password("admin", "secret").await?;
//!     assert!(valid);
//!     Ok(())
//! }
//! # }
//! ```
//!
//! ## Where things live
//!
//! - [`api`](mod@api): defining APIs (the [`api`](macro@api) attribute, [`api::ApiBuilder`]) and what
//!   a worker needs to serve them;
//! - [`Bus`] (in `client`): the handle every process uses to call, fire, listen and register;
//! - [`listener`]: event handlers and listener options ([`Since`], [`OnError`]);
//! - [`message`]: the RPC, result and event messages and their exact encoding on the wire;
//! - [`transport`]: moving messages, one module per transport and role
//!   (`transport::redis::{rpc, result, event, schema}`);
//! - [`config`]: the configuration file shared with Python Lightbus, and process names;
//! - [`worker`]: serving registered APIs and running listeners until shutdown;
//! - [`plugin`]: hooks into the worker's life and every message, and the built-in
//!   `internal_state` / `internal_metrics` plugins;
//! - [`cli`]: the `run` command for a service's own binary, and the `lightbus` tool;
//! - [`testing`]: [`testing::BusMock`], a bus without Redis for users' unit tests.

pub mod api;
#[cfg(feature = "cli")]
pub mod cli;
mod client;
pub mod config;
mod error;
pub mod listener;
pub mod message;
pub mod plugin;
pub mod schema;
pub mod testing;
pub mod transport;
pub mod types;
pub mod worker;

pub use api::{Api, Event, Kwargs};
pub use client::{blocking, Bus, BusBuilder, FiredEvent};
pub use error::{Error, Result};
pub use listener::{OnError, Since};
pub use message::EventMessage;

/// Defines an API from a trait: its RPCs (async methods) and events (`#[event]` methods).
///
/// See the crate documentation for an example. For a trait `Auth` it generates:
/// - the trait itself, whose RPC methods return `Send` futures so a worker can run them;
/// - `AuthServer<T: Auth>`, which serves an implementation: `bus.register(AuthServer::new(svc))`;
/// - `AuthClient`, a typed client: `AuthClient::new(&bus).check_password("a", "b").await`;
/// - a struct per event (`UserRegistered { username, email }`) implementing [`Event`].
pub use lightbus_macros::api;

/// Creates a bus client from the environment: the configuration file named by
/// `LIGHTBUS_CONFIG` (if set) and the `LIGHTBUS_SERVICE_NAME` / `LIGHTBUS_PROCESS_NAME`
/// variables. Connections to Redis are opened on first use.
///
/// Use [`Bus::builder`] for anything else (an explicit file, names, or a config value).
pub fn create() -> Result<Bus> {
    Bus::builder().build()
}

/// Items used by code that `#[lightbus::api]` generates. Not a public API: no stability promise.
#[doc(hidden)]
pub mod __private {
    pub use futures::future::BoxFuture;
    pub use futures::FutureExt;
    pub use schemars;
    pub use serde;
    pub use serde_json;

    use crate::api::{Kwargs, RpcFailure, RpcOutcome};
    use crate::error::{Error, Result};
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::Value;

    /// JSON Schema of `T`, as used in API descriptors.
    pub fn schema_of<T: schemars::JsonSchema>() -> Value {
        crate::schema::schema_of::<T>()
    }

    /// Encodes one argument of a typed client call.
    pub fn encode_argument<T: Serialize>(member: &str, name: &str, value: &T) -> Result<Value> {
        serde_json::to_value(value).map_err(|e| Error::InvalidArguments {
            member: member.to_owned(),
            reason: format!("argument `{name}` cannot be encoded as JSON: {e}"),
        })
    }

    /// Decodes the result of a typed client call.
    pub fn decode_result<T: DeserializeOwned>(member: &str, value: Value) -> Result<T> {
        serde_json::from_value(value).map_err(|e| {
            Error::Codec(format!(
                "the result of {member}() has an unexpected shape: {e}"
            ))
        })
    }

    /// Decodes the keyword arguments of an incoming call into the handler's argument struct.
    pub fn decode_arguments<T: DeserializeOwned>(
        api: &str,
        procedure: &str,
        kwargs: Kwargs,
    ) -> std::result::Result<T, RpcFailure> {
        // The path names the offending argument (`username: invalid type…`).
        serde_path_to_error::deserialize(Value::Object(kwargs))
            .map_err(|e| RpcFailure::invalid_arguments(api, procedure, e))
    }

    /// Encodes a handler's plain return value.
    pub fn encode_output<T: Serialize>(api: &str, procedure: &str, value: &T) -> RpcOutcome {
        serde_json::to_value(value).map_err(|e| RpcFailure {
            message: format!("the result of {api}.{procedure}() cannot be encoded as JSON: {e}"),
            trace: String::new(),
        })
    }

    /// Encodes a handler's `Result` return value; its error becomes the failure.
    pub fn encode_fallible_output<T: Serialize, E: std::fmt::Display + std::fmt::Debug>(
        api: &str,
        procedure: &str,
        value: std::result::Result<T, E>,
    ) -> RpcOutcome {
        match value {
            Ok(value) => encode_output(api, procedure, &value),
            Err(error) => Err(RpcFailure::from_error(error)),
        }
    }
}
