//! The configuration file's structure: its root, the bus and per-API settings, plugins.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tls::TlsConfig;
use super::transports::{
    EventTransportSelector, ResultTransportSelector, RpcTransportSelector, SchemaTransportSelector,
};
use super::values::{non_empty_name, valid, Count, Seconds, WholeSeconds};

/// The root of a configuration file, exactly as written (before names are expanded).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    /// The service's name: processes of one service share event listeners' work. May use
    /// the placeholders `{hostname} {pid} {random4} {random8} {random16} {friendly}`.
    /// Default `{friendly}`.
    #[serde(deserialize_with = "non_empty_name")]
    pub service_name: Option<String>,
    /// This process's name, unique within its service (the consumer name of its listeners).
    /// Same placeholders. Default `{random4}`.
    #[serde(deserialize_with = "non_empty_name")]
    pub process_name: Option<String>,
    /// Settings of the bus as a whole.
    pub bus: BusConfig,
    /// Settings per API, keyed by API name; `default` applies to APIs without an entry.
    pub apis: BTreeMap<String, ApiConfig>,
    /// Built-in plugins.
    pub plugins: PluginsConfig,
    /// Metrics, probes and trace propagation (Rust only: see [`ObservabilityConfig`]).
    pub observability: ObservabilityConfig,
    /// CA bundle and client certificate of `rediss://` connections (Rust only: see
    /// [`TlsConfig`]).
    pub tls: TlsConfig,
}

/// Settings of the bus as a whole (`bus:`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// The log level of the worker and the command line.
    pub log_level: LogLevel,
    /// Schema sharing.
    pub schema: SchemaConfig,
}

/// Log levels, with upstream's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warning,
    Error,
    Critical,
}

impl LogLevel {
    /// The `tracing` level this maps to (`critical` maps to `ERROR`).
    pub fn as_tracing(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warning => tracing::Level::WARN,
            LogLevel::Error | LogLevel::Critical => tracing::Level::ERROR,
        }
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(Value::String(text.to_ascii_lowercase())).map_err(|_| {
            format!("unknown log level `{text}` (expected debug, info, warning, error or critical)")
        })
    }
}

/// Schema sharing settings (`bus.schema`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaConfig {
    /// Indent the JSON that `dumpschema` writes (schemas stored on the bus are always
    /// compact, as upstream stores them).
    pub human_readable: bool,
    /// Seconds a stored schema lives without refresh; workers refresh every `ttl * 0.8`.
    pub ttl: WholeSeconds,
    /// Where schemas are stored.
    pub transport: SchemaTransportSelector,
}

impl Default for SchemaConfig {
    fn default() -> Self {
        SchemaConfig {
            human_readable: true,
            ttl: valid!(WholeSeconds, 60),
            transport: SchemaTransportSelector::default(),
        }
    }
}

/// The default of `apis.<api>.max_deliveries`.
pub const DEFAULT_MAX_DELIVERIES: usize = 5;

fn is_default_max_deliveries(count: &Count) -> bool {
    count.get() == DEFAULT_MAX_DELIVERIES
}

/// Settings of one API (`apis.<name>`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Seconds a caller waits for an RPC result.
    pub rpc_timeout: Seconds,
    /// Seconds allowed to set up an event listener (accepted without effect, as upstream).
    pub event_listener_setup_timeout: Seconds,
    /// Seconds allowed to fire an event.
    pub event_fire_timeout: Seconds,
    /// Validate messages against the bus schema: `true`, `false`, or per direction.
    pub validate: Validate,
    /// Treat a missing schema as an error rather than a warning.
    pub strict_validation: bool,
    /// Convert incoming values to the declared parameter types. Rust handlers and listeners
    /// always receive their declared types (decoding *is* the cast), so `false` has no
    /// effect here; it is accepted for files shared with Python, and noted at start-up.
    pub cast_values: bool,
    /// How many times a listener is given an event of this API before a handler failure
    /// dead-letters it (each listener's `max_deliveries` builder option overrides it).
    /// Rust-only: leave it out of files shared with Python processes.
    #[serde(skip_serializing_if = "is_default_max_deliveries")]
    pub max_deliveries: Count,
    /// The transport for this API's events.
    pub event_transport: EventTransportSelector,
    /// The transport for this API's RPC calls.
    pub rpc_transport: RpcTransportSelector,
    /// The transport for this API's RPC results.
    pub result_transport: ResultTransportSelector,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            rpc_timeout: valid!(Seconds, 5.0),
            event_listener_setup_timeout: valid!(Seconds, 1.0),
            event_fire_timeout: valid!(Seconds, 5.0),
            validate: Validate::default(),
            strict_validation: false,
            cast_values: true,
            max_deliveries: valid!(Count, DEFAULT_MAX_DELIVERIES),
            event_transport: EventTransportSelector::default(),
            rpc_transport: RpcTransportSelector::default(),
            result_transport: ResultTransportSelector::default(),
        }
    }
}

/// `validate:` — a boolean for both directions, or `{incoming, outgoing}` (each defaulting
/// to `true`); `null` means the default, validation both ways, as upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Validate {
    /// The same for incoming and outgoing messages.
    Both(bool),
    /// Per direction.
    PerDirection {
        /// Validate messages this process receives.
        #[serde(default = "yes")]
        incoming: bool,
        /// Validate messages this process sends.
        #[serde(default = "yes")]
        outgoing: bool,
    },
}

fn yes() -> bool {
    true
}

impl<'de> Deserialize<'de> for Validate {
    /// Reads `true`/`false`/`null` or a map of `incoming`/`outgoing` booleans, with a
    /// message saying which form was expected (an untagged enum would only say that
    /// nothing matched).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let expected = "expected true, false, or {incoming: true|false, outgoing: true|false}";
        match Value::deserialize(deserializer)? {
            Value::Null => Ok(Validate::default()),
            Value::Bool(both) => Ok(Validate::Both(both)),
            Value::Object(map) => {
                let mut incoming = true;
                let mut outgoing = true;
                for (key, value) in map {
                    let slot = match key.as_str() {
                        "incoming" => &mut incoming,
                        "outgoing" => &mut outgoing,
                        other => {
                            return Err(D::Error::custom(format!(
                                "unknown key `{other}` in `validate`: {expected}"
                            )))
                        }
                    };
                    *slot = value.as_bool().ok_or_else(|| {
                        D::Error::custom(format!("`validate.{key}` is {value}: {expected}"))
                    })?;
                }
                Ok(Validate::PerDirection { incoming, outgoing })
            }
            other => Err(D::Error::custom(format!("found {other}: {expected}"))),
        }
    }
}

impl Default for Validate {
    fn default() -> Self {
        Validate::Both(true)
    }
}

impl Validate {
    /// Whether incoming messages are validated.
    pub fn incoming(self) -> bool {
        match self {
            Validate::Both(value) => value,
            Validate::PerDirection { incoming, .. } => incoming,
        }
    }

    /// Whether outgoing messages are validated.
    pub fn outgoing(self) -> bool {
        match self {
            Validate::Both(value) => value,
            Validate::PerDirection { outgoing, .. } => outgoing,
        }
    }
}

/// Built-in plugins (`plugins:`). Both are off unless enabled.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Fires `internal.state` events about workers.
    pub internal_state: StatePluginConfig,
    /// Fires `internal.metrics` events about RPCs and events.
    pub internal_metrics: MetricsPluginConfig,
}

/// `plugins.internal_state`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StatePluginConfig {
    /// Turn the plugin on.
    pub enabled: bool,
    /// Fire `worker_ping` periodically.
    pub ping_enabled: bool,
    /// Seconds between pings.
    pub ping_interval: Seconds,
}

impl Default for StatePluginConfig {
    fn default() -> Self {
        StatePluginConfig {
            enabled: false,
            ping_enabled: true,
            ping_interval: valid!(Seconds, 60.0),
        }
    }
}

/// `plugins.internal_metrics`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsPluginConfig {
    /// Turn the plugin on.
    pub enabled: bool,
}

/// `observability:` in the configuration file. A Rust-only section: Python Lightbus 1.1.2
/// rejects files with keys it does not know, so a file shared with Python processes leaves
/// it out and Rust processes use the equivalent flags and environment variables.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ObservabilityConfig {
    /// Where a worker serves `/metrics`, `/healthz` and `/readyz`, e.g. `127.0.0.1:9090`
    /// (`run --http` overrides it). Off when absent.
    pub http: Option<SocketAddr>,
    /// Send the current span's W3C trace context with calls and events, so that the
    /// worker's and listeners' spans are its children (see `lightbus::observe::trace`). Python peers on
    /// the bus still decode every message. Also `LIGHTBUS_TRACE_PROPAGATION=1`.
    pub trace_propagation: bool,
}
