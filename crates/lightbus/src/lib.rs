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
//! ## Where things live: layers that only point down
//!
//! Each layer uses only the layers listed before it (a test checks it), and states its
//! guarantees in its module docs:
//!
//! 1. [`Error`] and its kinds; then [`api`](mod@api) (descriptors, the [`Api`] and [`Event`]
//!    traits, [`api::ApiBuilder`]), [`message`] (the messages and their exact encoding on
//!    the wire), [`types`], and [`schema`] (JSON Schemas: generated, validated, peer-exact
//!    values);
//! 2. [`config`]: the configuration file shared with Python Lightbus, parsed into
//!    validated types; then [`observe`]: metrics, spans, readiness, what Redis says about
//!    queues and consumer groups;
//! 3. [`transport`]: one trait per role, the [`transport::Connector`] that builds them from
//!    the configuration (the one place that does), and the Redis and memory transports;
//! 4. [`Bus`] (the `client` layer): calling ([`CallOptions`]), firing ([`FireOptions`]),
//!    pull subscriptions ([`Subscription`]), registering, [`plugin`]s, [`blocking`];
//! 5. [`listener`]: callback listeners on top of subscriptions ([`Since`], [`OnError`]);
//! 6. [`worker`]: serving registered APIs, running listeners and tasks until shutdown, and
//!    its HTTP endpoint (`/metrics`, `/healthz`, `/readyz`; feature `http`);
//! 7. [`testing`]: [`testing::BusMock`] (transports that mock and record) and the transport
//!    [`testing::conformance`] suite;
//! 8. [`cli`] (feature `cli`): the runner a service's binary gets — `run`, `dumpschema`,
//!    `dumpconfigschema` — and to which it may add commands of its own. The operator tools
//!    (`lightbus call`, `listen`, `inspect`, `shell`, `bench`) are the `lightbus-cli` crate.

// `#[lightbus::api]` expands to `::lightbus::…` paths; this makes them resolve in this crate
// too (the conformance suite defines its test APIs with it).
extern crate self as lightbus;

// The layers, bottom first; a module imports only from modules above it in this list
// (`tests/layers.rs` checks it). Each stands alone so that rustfmt keeps the order.

// Errors the library reports, and what they carry.
mod error;

// Locks, panic text, back-off.
mod util;

pub mod api;

pub mod message;

pub mod types;

pub mod schema;

pub mod config;

// Metrics, spans and readiness, which every layer above records.
pub mod observe;

pub mod transport;

// `Bus`: calling, firing, subscribing, registering.
mod client;

pub mod listener;

pub mod worker;

pub mod testing;

#[cfg(feature = "cli")]
pub mod cli;

pub use api::{Api, Event, Kwargs};
pub use client::Bus;
pub use client::{
    blocking, plugin, BusBuilder, BusSchema, CallOptions, Delivery, FireOptions, FiredEvent,
    Settler, SubscribeOptions, Subscription,
};
pub use error::{BoxError, Error, MemberKind, NameKind, Operation, Result};
pub use listener::OnError;
pub use message::EventMessage;
pub use transport::Since;

/// Defines an API from a trait: its RPCs (`async fn`s) and events (`#[event]` fns).
///
/// A complete example of what the attribute accepts (the reference follows):
///
/// ```
/// # mod doc {
/// use lightbus::api::RpcFailure;
/// use schemars::JsonSchema; // parameter and result types derive it (schemars 1.x)
/// use serde::{Deserialize, Serialize};
///
/// /// A type of your own, as a parameter or result: serde and `JsonSchema` derives.
/// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
/// pub struct Profile {
///     pub display_name: String,
///     pub age: Option<u32>,
/// }
///
/// /// Users of our site. `version` is written into every event (default 1).
/// #[lightbus::api(name = "my_company.users", version = 2)]
/// pub trait Users {
///     /// A plain return value.
///     async fn count(&self) -> u64;
///
///     /// A `Result`: `Err` becomes a failure on the caller's side. An `RpcFailure` error
///     /// can carry a code that Rust callers match on (`Error::remote_code`).
///     async fn profile(&self, username: String) -> Result<Profile, RpcFailure>;
///
///     /// Parameters with defaults may be left out by callers, as in Python
///     /// (`limit: int = 10`, `tags: List[str] = []`, `region: Optional[str] = None`).
///     async fn search(
///         &self,
///         text: String,
///         #[default(10)] limit: i64,
///         #[default] tags: Vec<String>,
///         region: Option<String>,
///     ) -> Vec<String>;
///
///     /// An event: parameters only.
///     #[event]
///     fn signed_up(username: String, profile: Profile);
/// }
///
/// struct UsersService;
///
/// impl Users for UsersService {
///     async fn count(&self) -> u64 {
///         1
///     }
///
///     async fn profile(&self, username: String) -> Result<Profile, RpcFailure> {
///         Err(RpcFailure::new(format!("no user {username}")).with_code("not_found"))
///     }
///
///     async fn search(
///         &self,
///         text: String,
///         limit: i64,
///         tags: Vec<String>,
///         region: Option<String>,
///     ) -> Vec<String> {
///         vec![format!("{text} {limit} {tags:?} {region:?}")]
///     }
/// }
///
/// async fn use_it(bus: &lightbus::Bus) -> lightbus::Result<()> {
///     bus.register(UsersServer::new(UsersService))?; // serve it (in a worker)
///     let client = UsersClient::new(bus) // call it, from anywhere
///         .with_timeout(std::time::Duration::from_secs(2));
///     let found = client.search("shoes", None, None, None).await?; // sends {"text": "shoes"}
///     match client.profile("ada").await {
///         Err(error) if error.remote_code() == Some("not_found") => {}
///         other => println!("{other:?}"),
///     }
///     bus.fire(SignedUp {
///         username: "ada".into(),
///         profile: Profile { display_name: "Ada".into(), age: None },
///     })
///     .await?;
///     # let _ = found;
///     Ok(())
/// }
/// # }
/// ```
///
#[doc(inline)]
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

    pub use crate::schema::PlanCell;

    use crate::api::{ApiDescriptor, Kwargs, RpcFailure, RpcOutcome};
    use crate::error::{Error, Result};
    use crate::schema::ValuePlan;
    use schemars::JsonSchema;
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    /// JSON Schema of `T`, as used in API descriptors.
    pub fn schema_of<T: JsonSchema>() -> Value {
        crate::schema::schema_of::<T>()
    }

    /// The schema of an `Option<T>` parameter, which callers may leave out: as the peer
    /// writes a parameter `Optional[T] = None`.
    pub fn optional_parameter_schema<T: JsonSchema>() -> Value {
        crate::schema::defaulted_parameter_schema(schema_of::<T>(), Value::Null)
    }

    /// The schema of a parameter with a default (`#[default(value)]`), as the peer writes
    /// `name: T = value`: the default in the peer's form.
    pub fn defaulted_parameter_schema<T: JsonSchema + Serialize>(default: &T) -> Value {
        let mut value = serde_json::to_value(default).unwrap_or(Value::Null);
        ValuePlan::new(&schema_of::<T>()).to_peer(&mut value);
        crate::schema::defaulted_parameter_schema(schema_of::<T>(), value)
    }

    /// An object schema of an RPC's parameters, from which its arguments' plan is compiled.
    pub fn arguments_schema(api: &ApiDescriptor, procedure: &str) -> Value {
        let properties: serde_json::Map<String, Value> = api
            .rpc(procedure)
            .map(|rpc| &rpc.parameters[..])
            .unwrap_or_default()
            .iter()
            .map(|parameter| (parameter.name.clone(), parameter.schema.clone()))
            .collect();
        serde_json::json!({"type": "object", "properties": properties})
    }

    /// `value` as JSON in the peer's form for `T`.
    fn to_peer_json<T: Serialize + JsonSchema>(
        value: &T,
        plan: &PlanCell,
    ) -> serde_json::Result<Value> {
        let mut value = serde_json::to_value(value)?;
        plan.get(schema_of::<T>).to_peer(&mut value);
        Ok(value)
    }

    /// Reads a `T` from JSON in any form the peer writes.
    fn from_peer_json<T: DeserializeOwned + JsonSchema>(
        mut value: Value,
        plan: &PlanCell,
    ) -> serde_json::Result<T> {
        plan.get(schema_of::<T>).from_peer(&mut value);
        serde_json::from_value(value)
    }

    /// Encodes one argument of a typed client call, as the peer would write it.
    pub fn encode_argument<T: Serialize + JsonSchema>(
        member: &str,
        name: &str,
        value: &T,
        plan: &PlanCell,
    ) -> Result<Value> {
        to_peer_json(value, plan).map_err(|e| Error::InvalidArguments {
            member: member.to_owned(),
            reason: format!("argument `{name}` cannot be encoded as JSON: {e}"),
        })
    }

    /// Decodes the result of a typed client call.
    pub fn decode_result<T: DeserializeOwned + JsonSchema>(
        member: &str,
        value: Value,
        plan: &PlanCell,
    ) -> Result<T> {
        from_peer_json(value, plan)
            .map_err(|e| Error::encoding(format!("the result of {member}()"), e))
    }

    /// Decodes the keyword arguments of an incoming call into the handler's argument struct,
    /// after reading them from the peer's forms with `plan` (the RPC's parameters' plan).
    pub fn decode_arguments<T: DeserializeOwned>(
        api: &str,
        procedure: &str,
        kwargs: Kwargs,
        plan: &ValuePlan,
    ) -> std::result::Result<T, RpcFailure> {
        let mut value = Value::Object(kwargs);
        plan.from_peer(&mut value);
        // The path names the offending argument (`username: invalid type…`).
        serde_path_to_error::deserialize(value)
            .map_err(|e| RpcFailure::invalid_arguments(api, procedure, e))
    }

    /// Encodes a handler's plain return value, as the peer would write it.
    pub fn encode_output<T: Serialize + JsonSchema>(
        api: &str,
        procedure: &str,
        value: &T,
        plan: &PlanCell,
    ) -> RpcOutcome {
        to_peer_json(value, plan).map_err(|e| {
            RpcFailure::new(format!(
                "the result of {api}.{procedure}() cannot be encoded as JSON: {e}"
            ))
        })
    }

    /// Encodes a handler's `Result` return value; its error becomes the failure.
    pub fn encode_fallible_output<T, E>(
        api: &str,
        procedure: &str,
        value: std::result::Result<T, E>,
        plan: &PlanCell,
    ) -> RpcOutcome
    where
        T: Serialize + JsonSchema,
        E: std::fmt::Display + std::fmt::Debug + 'static,
    {
        match value {
            Ok(value) => encode_output(api, procedure, &value, plan),
            Err(error) => Err(RpcFailure::from_error(error)),
        }
    }

    /// Serializes an event field as the peer writes it (`serialize_with` of event structs).
    /// A type whose plan changes nothing is serialized directly.
    pub fn serialize_field<T: Serialize + JsonSchema, S: Serializer>(
        value: &T,
        serializer: S,
        plan: &PlanCell,
    ) -> std::result::Result<S::Ok, S::Error> {
        if plan.get(schema_of::<T>).is_identity_outgoing() {
            return value.serialize(serializer);
        }
        to_peer_json(value, plan)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }

    /// Deserializes an event field from any form the peer writes (`deserialize_with` of event
    /// structs). A type whose plan changes nothing is deserialized directly.
    pub fn deserialize_field<'de, T: DeserializeOwned + JsonSchema, D: Deserializer<'de>>(
        deserializer: D,
        plan: &PlanCell,
    ) -> std::result::Result<T, D::Error> {
        if plan.get(schema_of::<T>).is_identity_incoming() {
            return T::deserialize(deserializer);
        }
        from_peer_json(Value::deserialize(deserializer)?, plan).map_err(serde::de::Error::custom)
    }
}
