//! Configuration, in the same file format as Python Lightbus, so one file serves a mixed bus.
//!
//! A configuration file (YAML or JSON) has the root keys `bus`, `apis`, `plugins`,
//! `service_name` and `process_name`. The `apis` map configures each API by name, with the
//! reserved name `default` as the catch-all. As upstream, a specific API entry *replaces*
//! `default` wholesale: options it leaves out take their built-in defaults, not `default`'s.
//!
//! Where the file comes from: `--config FILE_OR_URL`, else `LIGHTBUS_CONFIG`, else none (the
//! built-in defaults). An `http://` or `https://` URL is fetched once at start-up.
//!
//! Precedence, highest first: command-line flags (`--service-name`/`-s`, `--process-name`/`-p`,
//! `--log-level`), the `LIGHTBUS_SERVICE_NAME` / `LIGHTBUS_PROCESS_NAME` environment
//! variables, the file, the built-in defaults. (Upstream lets a name in the file win over
//! the variables; here the variables override the file, so one file can serve every
//! process of a deployment.)
//!
//! Loading never panics. A missing file, broken YAML, an unknown key, a value of the wrong
//! type or out of range is a [`ConfigError`] naming the file, the key path
//! (`apis.auth.rpc_timeout`) and what was expected. [`config_json_schema`] describes every
//! key for editors (`lightbus dumpconfigschema`).
//!
//! ## Every upstream key, and what it does here
//!
//! Honoured as upstream: `service_name`, `process_name`, `bus.log_level`,
//! `bus.schema.{human_readable, ttl, transport.redis.url}`, `apis.*.{rpc_timeout,
//! event_fire_timeout, validate, strict_validation}`, `rpc_transport.redis.{url, batch_size,
//! rpc_timeout, consumption_restart_delay}` (the longest wait between a worker's retries
//! after a lost connection), `result_transport.redis.{url, result_ttl}`,
//! `event_transport.redis.{url, max_stream_length, stream_use}`, and the event-consumption keys
//! (`batch_size`, `reclaim_batch_size`, `acknowledgement_timeout`, `reclaim_interval`,
//! `consumption_restart_delay`, `consumer_ttl`, `service_name`, `consumer_name`) by the
//! event listener, and `plugins.*` by the plugins.
//!
//! Accepted without effect, as in upstream's own Redis transports or because Rust has no
//! equivalent: `apis.*.event_listener_setup_timeout` (upstream declares it and never reads
//! it), `rpc_transport.redis.rpc_retry_delay` (upstream reads and drops it),
//! `result_transport.redis.rpc_timeout` (the caller's wait is the API's `rpc_timeout`),
//! `*.connection_parameters` (connections are multiplexed, not pooled) and `cast_values:
//! false` (Rust handlers always receive their declared types). The last two are reported by
//! [`Config::notes`] at start-up.
//!
//! Transports: `redis`, or `memory` (in-process, no Redis; upstream's `debug` is read as
//! `memory`), per API and role, and for `bus.schema.transport`.
//!
//! Rejected with a message: `serializer`/`deserializer` other than the standard ones.
//!
//! ```
//! let config = lightbus::config::Config::from_str(
//!     "apis:\n  default:\n    rpc_timeout: 2\n",
//!     "inline.yaml",
//! ).expect("valid config");
//! assert_eq!(config.api("auth").rpc_timeout, 2.0);
//! ```

mod names;
mod schema;
mod source;

pub use names::expand_name;
pub use schema::config_json_schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The name of the catch-all entry in `apis`.
pub const DEFAULT_API: &str = "default";
/// The URL every transport uses when none is configured.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// A configuration that could not be loaded. Every variant names where the problem is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file does not exist.
    #[error("configuration file {path} does not exist")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The configuration URL could not be fetched.
    #[error("cannot load the configuration from {url}: {message}")]
    Fetch {
        /// The http(s) URL given.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The file exists but could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML or JSON.
    #[error("{origin} is not valid {format}: {message}")]
    Syntax {
        /// The file (or other origin) of the text.
        origin: String,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// What the parser reported, with its position.
        message: String,
    },
    /// A key is unknown or a value has the wrong type or range.
    #[error("{origin}: invalid value at `{key}`: {message}")]
    Invalid {
        /// The file (or other origin) of the configuration.
        origin: String,
        /// The dotted path of the offending key, e.g. `apis.auth.rpc_timeout`.
        key: String,
        /// What was wrong and what was expected.
        message: String,
    },
}

/// The root of a configuration file, exactly as written (before names are expanded).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    /// The service's name: processes of one service share event listeners' work. May use
    /// the placeholders `{hostname} {pid} {random4} {random8} {random16} {friendly}`.
    /// Default `{friendly}`.
    pub service_name: Option<String>,
    /// This process's name, unique within its service (the consumer name of its listeners).
    /// Same placeholders. Default `{random4}`.
    pub process_name: Option<String>,
    /// Settings of the bus as a whole.
    pub bus: BusConfig,
    /// Settings per API, keyed by API name; `default` applies to APIs without an entry.
    pub apis: BTreeMap<String, ApiConfig>,
    /// Built-in plugins.
    pub plugins: PluginsConfig,
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
    pub ttl: u64,
    /// Where schemas are stored.
    pub transport: SchemaTransportSelector,
}

impl Default for SchemaConfig {
    fn default() -> Self {
        SchemaConfig {
            human_readable: true,
            ttl: 60,
            transport: SchemaTransportSelector::default(),
        }
    }
}

/// Settings of one API (`apis.<name>`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Seconds a caller waits for an RPC result.
    pub rpc_timeout: f64,
    /// Seconds allowed to set up an event listener.
    pub event_listener_setup_timeout: f64,
    /// Seconds allowed to fire an event.
    pub event_fire_timeout: f64,
    /// Validate messages against the bus schema: `true`, `false`, or per direction.
    pub validate: Validate,
    /// Treat a missing schema as an error rather than a warning.
    pub strict_validation: bool,
    /// Convert incoming values to the declared parameter types. Rust handlers and listeners
    /// always receive their declared types (decoding *is* the cast), so `false` has no
    /// effect here; it is accepted for files shared with Python, and noted at start-up.
    pub cast_values: bool,
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
            rpc_timeout: 5.0,
            event_listener_setup_timeout: 1.0,
            event_fire_timeout: 5.0,
            validate: Validate::default(),
            strict_validation: false,
            cast_values: true,
            event_transport: EventTransportSelector::default(),
            rpc_transport: RpcTransportSelector::default(),
            result_transport: ResultTransportSelector::default(),
        }
    }
}

impl ApiConfig {
    /// [`rpc_timeout`](Self::rpc_timeout) as a duration.
    pub fn rpc_timeout(&self) -> Duration {
        seconds(self.rpc_timeout)
    }
}

/// Converts a configured number of seconds to a duration (negative or NaN becomes zero).
pub(crate) fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
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

fn default_url() -> String {
    DEFAULT_REDIS_URL.to_owned()
}

/// `rpc_transport: {redis: {...}}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisRpcConfig {
    /// The Redis server, e.g. `redis://127.0.0.1:6379/0`.
    #[serde(default = "default_url")]
    pub url: String,
    /// Accepted for compatibility with upstream's files; connections here are multiplexed
    /// (one per server and role), so pool settings are not used.
    pub connection_parameters: BTreeMap<String, Value>,
    /// How many calls a worker takes from the queues at once.
    pub batch_size: usize,
    /// Upstream's serializer class; only the default is supported.
    pub serializer: Option<String>,
    /// Upstream's deserializer class; only the default is supported.
    pub deserializer: Option<String>,
    /// Seconds a call may wait in the queue before it expires unexecuted.
    pub rpc_timeout: f64,
    /// Seconds before retrying to send a call after a connection failure.
    pub rpc_retry_delay: f64,
    /// Seconds before a worker retries consuming after a connection failure.
    pub consumption_restart_delay: f64,
}

impl Default for RedisRpcConfig {
    fn default() -> Self {
        RedisRpcConfig {
            url: default_url(),
            connection_parameters: BTreeMap::new(),
            batch_size: 10,
            serializer: None,
            deserializer: None,
            rpc_timeout: 5.0,
            rpc_retry_delay: 1.0,
            consumption_restart_delay: 5.0,
        }
    }
}

/// `result_transport: {redis: {...}}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisResultConfig {
    /// The Redis server, e.g. `redis://127.0.0.1:6379/0`.
    #[serde(default = "default_url")]
    pub url: String,
    /// Accepted for compatibility with upstream's files; connections here are multiplexed
    /// (one per server and role), so pool settings are not used.
    pub connection_parameters: BTreeMap<String, Value>,
    /// Upstream's serializer class; only the default is supported.
    pub serializer: Option<String>,
    /// Upstream's deserializer class; only the default is supported.
    pub deserializer: Option<String>,
    /// Seconds a result waits for its caller before Redis expires it.
    pub result_ttl: u64,
    /// Accepted for compatibility; the caller's wait is bounded by the API's `rpc_timeout`.
    pub rpc_timeout: f64,
}

impl Default for RedisResultConfig {
    fn default() -> Self {
        RedisResultConfig {
            url: default_url(),
            connection_parameters: BTreeMap::new(),
            serializer: None,
            deserializer: None,
            result_ttl: 60,
            rpc_timeout: 5.0,
        }
    }
}

/// How events are spread over streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamUse {
    /// One stream per API: `{api}.*:stream`.
    #[default]
    PerApi,
    /// One stream per event: `{api}.{event}:stream`.
    PerEvent,
}

/// `event_transport: {redis: {...}}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisEventConfig {
    /// The Redis server, e.g. `redis://127.0.0.1:6379/0`.
    #[serde(default = "default_url")]
    pub url: String,
    /// Accepted for compatibility with upstream's files; connections here are multiplexed
    /// (one per server and role), so pool settings are not used.
    pub connection_parameters: BTreeMap<String, Value>,
    /// Overrides the service name in consumer group names.
    pub service_name: Option<String>,
    /// Overrides the consumer name (default: the process name).
    pub consumer_name: Option<String>,
    /// How many entries a listener reads at once.
    pub batch_size: usize,
    /// How many pending entries are inspected per reclaim (default `batch_size * 10`).
    pub reclaim_batch_size: Option<usize>,
    /// Upstream's serializer class; only the default is supported.
    pub serializer: Option<String>,
    /// Upstream's deserializer class; only the default is supported.
    pub deserializer: Option<String>,
    /// Seconds an entry may stay unacknowledged before another consumer reclaims it.
    pub acknowledgement_timeout: f64,
    /// Seconds between reclaim passes (default `acknowledgement_timeout`).
    pub reclaim_interval: Option<f64>,
    /// Approximate cap on stream length (`MAXLEN ~`); `null` for no cap.
    pub max_stream_length: Option<u64>,
    /// One stream per API or per event.
    pub stream_use: StreamUse,
    /// Seconds before a listener retries after a connection failure.
    pub consumption_restart_delay: f64,
    /// Seconds after which an idle consumer is removed from its group.
    pub consumer_ttl: u64,
}

impl Default for RedisEventConfig {
    fn default() -> Self {
        RedisEventConfig {
            url: default_url(),
            connection_parameters: BTreeMap::new(),
            service_name: None,
            consumer_name: None,
            batch_size: 10,
            reclaim_batch_size: None,
            serializer: None,
            deserializer: None,
            acknowledgement_timeout: 60.0,
            reclaim_interval: None,
            max_stream_length: Some(100_000),
            stream_use: StreamUse::PerApi,
            consumption_restart_delay: 5.0,
            consumer_ttl: 2_592_000,
        }
    }
}

/// `schema.transport: {redis: {...}}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSchemaConfig {
    /// The Redis server, e.g. `redis://127.0.0.1:6379/0`.
    #[serde(default = "default_url")]
    pub url: String,
    /// Accepted for compatibility with upstream's files; connections here are multiplexed
    /// (one per server and role), so pool settings are not used.
    pub connection_parameters: BTreeMap<String, Value>,
}

/// `memory: {...}` (or upstream's name, `debug`) for RPCs, results and schemas: the
/// process's in-memory hub (see [`crate::transport::memory`]).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// The hub: buses of one process naming the same namespace share messages.
    pub namespace: String,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            namespace: crate::transport::memory::DEFAULT_NAMESPACE.to_owned(),
        }
    }
}

/// `event_transport: {memory: {...}}` (or `debug`): events in the process's in-memory hub.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryEventConfig {
    /// The hub: buses of one process naming the same namespace share events.
    pub namespace: String,
    /// How many events a listener takes at once.
    pub batch_size: usize,
    /// Seconds an event may stay unacknowledged before another consumer of the group takes
    /// it over.
    pub acknowledgement_timeout: f64,
    /// How many events each API's log keeps; `null` for no limit.
    pub max_stream_length: Option<u64>,
}

impl Default for MemoryEventConfig {
    fn default() -> Self {
        MemoryEventConfig {
            namespace: crate::transport::memory::DEFAULT_NAMESPACE.to_owned(),
            batch_size: 10,
            acknowledgement_timeout: 60.0,
            max_stream_length: Some(100_000),
        }
    }
}

macro_rules! transport_selector {
    (
        $(#[$doc:meta])* $name:ident, $redis:ty, $nullable:literal, $memory:ty,
        $memory_nullable:literal
    ) => {
        $(#[$doc])*
        ///
        /// Written as a one-key map naming the transport, e.g. `redis: {url: "redis://…"}` or
        /// `memory: {}` (upstream's `debug: {}` is read as `memory`).
        #[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "snake_case")]
        pub enum $name {
            /// Redis.
            Redis(
                #[serde(default, deserialize_with = "null_as_default")]
                #[schemars(with = $nullable)]
                $redis,
            ),
            /// The process's in-memory hub (no Redis; nothing leaves the process).
            #[serde(alias = "debug")]
            Memory(
                #[serde(default, deserialize_with = "null_as_default")]
                #[schemars(with = $memory_nullable)]
                $memory,
            ),
        }

        impl Default for $name {
            fn default() -> Self {
                $name::Redis(Default::default())
            }
        }

        impl $name {
            /// The Redis settings, if Redis is selected.
            pub fn redis(&self) -> Option<&$redis> {
                match self {
                    $name::Redis(redis) => Some(redis),
                    $name::Memory(_) => None,
                }
            }
        }
    };
}

impl Default for RedisSchemaConfig {
    fn default() -> Self {
        RedisSchemaConfig {
            url: default_url(),
            connection_parameters: BTreeMap::new(),
        }
    }
}

transport_selector!(
    /// Which transport carries an API's RPC calls.
    RpcTransportSelector,
    RedisRpcConfig,
    "Option<RedisRpcConfig>",
    MemoryConfig,
    "Option<MemoryConfig>"
);
transport_selector!(
    /// Which transport carries an API's RPC results.
    ResultTransportSelector,
    RedisResultConfig,
    "Option<RedisResultConfig>",
    MemoryConfig,
    "Option<MemoryConfig>"
);
transport_selector!(
    /// Which transport carries an API's events.
    EventTransportSelector,
    RedisEventConfig,
    "Option<RedisEventConfig>",
    MemoryEventConfig,
    "Option<MemoryEventConfig>"
);
transport_selector!(
    /// Where API schemas are shared.
    SchemaTransportSelector,
    RedisSchemaConfig,
    "Option<RedisSchemaConfig>",
    MemoryConfig,
    "Option<MemoryConfig>"
);

/// `redis:` with no value (YAML null) means "all defaults", as upstream.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
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
    pub ping_interval: f64,
}

impl Default for StatePluginConfig {
    fn default() -> Self {
        StatePluginConfig {
            enabled: false,
            ping_enabled: true,
            ping_interval: 60.0,
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

/// Values that override the file: from command-line flags or the caller's code.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    /// Read this file instead of `LIGHTBUS_CONFIG`.
    pub config_path: Option<PathBuf>,
    /// Overrides `service_name` (and `LIGHTBUS_SERVICE_NAME`).
    pub service_name: Option<String>,
    /// Overrides `process_name` (and `LIGHTBUS_PROCESS_NAME`).
    pub process_name: Option<String>,
    /// Overrides `bus.log_level`.
    pub log_level: Option<LogLevel>,
}

/// A loaded configuration with service and process names expanded.
#[derive(Debug, Clone)]
pub struct Config {
    /// This service's name (placeholders expanded).
    pub service_name: String,
    /// This process's name (placeholders expanded).
    pub process_name: String,
    /// The file's contents, as written.
    pub file: ConfigFile,
    /// Where the configuration came from (a path, or `built-in defaults`).
    pub origin: String,
    default_api: ApiConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_file_contents(ConfigFile::default(), "built-in defaults".to_owned())
    }
}

impl Config {
    /// Loads the configuration as a process started from the command line would: the file
    /// from `overrides.config_path` or `LIGHTBUS_CONFIG` (built-in defaults when neither is
    /// set), then names from `LIGHTBUS_SERVICE_NAME` / `LIGHTBUS_PROCESS_NAME`, then the
    /// overrides.
    pub fn load(overrides: &ConfigOverrides) -> Result<Config, ConfigError> {
        let path = overrides
            .config_path
            .clone()
            .or_else(|| non_empty_env("LIGHTBUS_CONFIG").map(PathBuf::from));
        let mut file = match &path {
            Some(path) => Config::read_location(path)?,
            None => ConfigFile::default(),
        };
        if let Some(name) = overrides
            .service_name
            .clone()
            .or_else(|| non_empty_env("LIGHTBUS_SERVICE_NAME"))
        {
            file.service_name = Some(name);
        }
        if let Some(name) = overrides
            .process_name
            .clone()
            .or_else(|| non_empty_env("LIGHTBUS_PROCESS_NAME"))
        {
            file.process_name = Some(name);
        }
        if let Some(level) = overrides.log_level {
            file.bus.log_level = level;
        }
        let origin = match path {
            Some(path) => path.display().to_string(),
            None => "built-in defaults".to_owned(),
        };
        Ok(Config::from_file_contents(file, origin))
    }

    /// Reads and parses a configuration file (YAML, or JSON when it ends in `.json`). An
    /// `http://` or `https://` URL in place of the path is fetched (see [`Config::from_url`]).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let file = Config::read_location(path)?;
        Ok(Config::from_file_contents(file, path.display().to_string()))
    }

    /// Fetches and parses a configuration file from an http(s) URL: JSON when the
    /// response's content type says so or the URL ends in `.json`, YAML otherwise.
    pub fn from_url(url: &str) -> Result<Config, ConfigError> {
        let file = Config::read_url(url)?;
        Ok(Config::from_file_contents(file, url.to_owned()))
    }

    fn read_location(path: &Path) -> Result<ConfigFile, ConfigError> {
        match path.to_str() {
            Some(text) if source::is_url(text) => Config::read_url(text),
            _ => Config::read_file(path),
        }
    }

    fn read_url(url: &str) -> Result<ConfigFile, ConfigError> {
        let (text, json) = source::fetch(url)?;
        parse_text(&text, url, json)
    }

    /// Parses configuration text. `origin` names it in errors (a file name or `inline`).
    /// The text is read as JSON when `origin` ends in `.json`, as YAML otherwise (YAML is a
    /// superset of JSON, so JSON text parses either way).
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let file = parse_file(text, origin)?;
        Ok(Config::from_file_contents(file, origin.to_owned()))
    }

    /// A configuration from an already-built [`ConfigFile`].
    pub fn from_file_contents(file: ConfigFile, origin: String) -> Config {
        let service_name = expand_name(file.service_name.as_deref().unwrap_or("{friendly}"));
        let process_name = expand_name(file.process_name.as_deref().unwrap_or("{random4}"));
        Config {
            service_name,
            process_name,
            file,
            origin,
            default_api: ApiConfig::default(),
        }
    }

    fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotFound {
                    path: path.to_owned(),
                }
            } else {
                ConfigError::Read {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        parse_file(&text, &path.display().to_string())
    }

    /// The configuration of API `name`: its own entry, else `default`, else built-in defaults.
    pub fn api(&self, name: &str) -> &ApiConfig {
        self.file
            .apis
            .get(name)
            .or_else(|| self.file.apis.get(DEFAULT_API))
            .unwrap_or(&self.default_api)
    }

    /// Settings in the file that are accepted for compatibility with Python Lightbus but
    /// change nothing in this implementation, one sentence each (logged by the worker at
    /// start-up, so nobody relies on them unknowingly).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for (name, api) in &self.file.apis {
            if !api.cast_values {
                notes.push(format!(
                    "apis.{name}.cast_values is false, but Rust handlers always receive \
                     their declared types; the setting has no effect here"
                ));
            }
            for (transport, parameters) in [
                (
                    "rpc_transport",
                    api.rpc_transport.redis().map(|c| &c.connection_parameters),
                ),
                (
                    "result_transport",
                    api.result_transport
                        .redis()
                        .map(|c| &c.connection_parameters),
                ),
                (
                    "event_transport",
                    api.event_transport
                        .redis()
                        .map(|c| &c.connection_parameters),
                ),
            ] {
                if parameters.is_some_and(|parameters| !parameters.is_empty()) {
                    notes.push(format!(
                        "apis.{name}.{transport}.redis.connection_parameters is ignored: \
                         connections are multiplexed (one per server and role), not pooled"
                    ));
                }
            }
        }
        let schema = self.file.bus.schema.transport.redis();
        if schema.is_some_and(|schema| !schema.connection_parameters.is_empty()) {
            notes.push(
                "bus.schema.transport.redis.connection_parameters is ignored: connections \
                 are multiplexed, not pooled"
                    .to_owned(),
            );
        }
        notes
    }

    /// The bus-wide settings.
    pub fn bus(&self) -> &BusConfig {
        &self.file.bus
    }

    /// The plugin settings.
    pub fn plugins(&self) -> &PluginsConfig {
        &self.file.plugins
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Parses a configuration file's text into its structure, naming the key of any error.
fn parse_file(text: &str, origin: &str) -> Result<ConfigFile, ConfigError> {
    parse_text(text, origin, origin.ends_with(".json"))
}

/// Parses configuration text as JSON or YAML, naming `origin` in errors.
fn parse_text(text: &str, origin: &str, json: bool) -> Result<ConfigFile, ConfigError> {
    let value: Value = if json {
        serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            format: "JSON",
            message: e.to_string(),
        })?
    } else {
        serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            format: "YAML",
            message: e.to_string(),
        })?
    };
    // An empty file is an empty configuration.
    let value = match value {
        Value::Null => Value::Object(Default::default()),
        Value::Object(_) => value,
        other => {
            return Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                key: "(root)".to_owned(),
                message: format!(
                    "expected a mapping of `bus`, `apis`, `plugins`, `service_name` and \
                     `process_name`, found {}",
                    kind_of(&other)
                ),
            })
        }
    };
    let file: ConfigFile =
        serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    check_file(&file, origin)?;
    Ok(file)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Checks what the types alone cannot: ranges and supported serializers.
fn check_file(file: &ConfigFile, origin: &str) -> Result<(), ConfigError> {
    let invalid = |key: String, message: &str| ConfigError::Invalid {
        origin: origin.to_owned(),
        key,
        message: message.to_owned(),
    };
    for (name, api) in &file.apis {
        for (key, value) in [
            ("rpc_timeout", api.rpc_timeout),
            (
                "event_listener_setup_timeout",
                api.event_listener_setup_timeout,
            ),
            ("event_fire_timeout", api.event_fire_timeout),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(
                    format!("apis.{name}.{key}"),
                    "expected a positive number of seconds",
                ));
            }
        }
        // A memory transport has none of the Redis settings: its defaults pass every check.
        let (default_rpc, default_result, default_event) = Default::default();
        let rpc: &RedisRpcConfig = api.rpc_transport.redis().unwrap_or(&default_rpc);
        let result: &RedisResultConfig = api.result_transport.redis().unwrap_or(&default_result);
        let event: &RedisEventConfig = api.event_transport.redis().unwrap_or(&default_event);
        if let EventTransportSelector::Memory(memory) = &api.event_transport {
            if memory.batch_size == 0 {
                return Err(invalid(
                    format!("apis.{name}.event_transport.memory.batch_size"),
                    "expected at least 1",
                ));
            }
            if !positive_seconds(memory.acknowledgement_timeout) {
                return Err(invalid(
                    format!("apis.{name}.event_transport.memory.acknowledgement_timeout"),
                    "expected a positive number of seconds",
                ));
            }
        }
        let serializers = [
            (
                "rpc_transport.redis",
                &rpc.serializer,
                &rpc.deserializer,
                "Blob",
            ),
            (
                "result_transport.redis",
                &result.serializer,
                &result.deserializer,
                "Blob",
            ),
            (
                "event_transport.redis",
                &event.serializer,
                &event.deserializer,
                "ByField",
            ),
        ];
        for (transport, serializer, deserializer, kind) in serializers {
            for (key, value, role) in [
                ("serializer", serializer, "Serializer"),
                ("deserializer", deserializer, "Deserializer"),
            ] {
                let expected = format!("lightbus.serializers.{kind}Message{role}");
                if value.as_ref().is_some_and(|class| *class != expected) {
                    return Err(invalid(
                        format!("apis.{name}.{transport}.{key}"),
                        &format!(
                            "only the standard encoding is supported: remove the key or set \
                             it to `{expected}`"
                        ),
                    ));
                }
            }
        }
        let prefix = |transport: &str, key: &str| format!("apis.{name}.{transport}.redis.{key}");
        for (transport, url) in [
            ("rpc_transport", &rpc.url),
            ("result_transport", &result.url),
            ("event_transport", &event.url),
        ] {
            check_redis_url(url).map_err(|m| invalid(prefix(transport, "url"), &m))?;
        }
        let positive = "expected a positive number of seconds";
        let not_negative = "expected a number of seconds, zero or more";
        let checks: [(bool, String, &str); 12] = [
            (
                rpc.batch_size >= 1,
                prefix("rpc_transport", "batch_size"),
                "expected at least 1",
            ),
            (
                positive_seconds(rpc.rpc_timeout),
                prefix("rpc_transport", "rpc_timeout"),
                positive,
            ),
            (
                rpc.rpc_retry_delay.is_finite() && rpc.rpc_retry_delay >= 0.0,
                prefix("rpc_transport", "rpc_retry_delay"),
                not_negative,
            ),
            (
                rpc.consumption_restart_delay.is_finite() && rpc.consumption_restart_delay >= 0.0,
                prefix("rpc_transport", "consumption_restart_delay"),
                not_negative,
            ),
            (
                result.result_ttl >= 1,
                prefix("result_transport", "result_ttl"),
                "expected a whole number of seconds, at least 1",
            ),
            (
                positive_seconds(result.rpc_timeout),
                prefix("result_transport", "rpc_timeout"),
                positive,
            ),
            (
                event.batch_size >= 1,
                prefix("event_transport", "batch_size"),
                "expected at least 1",
            ),
            (
                event.reclaim_batch_size.is_none_or(|size| size >= 1),
                prefix("event_transport", "reclaim_batch_size"),
                "expected at least 1, or null for `batch_size * 10`",
            ),
            (
                positive_seconds(event.acknowledgement_timeout),
                prefix("event_transport", "acknowledgement_timeout"),
                positive,
            ),
            (
                event.reclaim_interval.is_none_or(positive_seconds),
                prefix("event_transport", "reclaim_interval"),
                "expected a positive number of seconds, or null for `acknowledgement_timeout`",
            ),
            (
                event.max_stream_length.is_none_or(|length| length >= 1),
                prefix("event_transport", "max_stream_length"),
                "expected at least 1, or null for no limit",
            ),
            (
                event.consumption_restart_delay.is_finite()
                    && event.consumption_restart_delay >= 0.0,
                prefix("event_transport", "consumption_restart_delay"),
                not_negative,
            ),
        ];
        for (ok, key, expected) in checks {
            if !ok {
                return Err(invalid(key, expected));
            }
        }
        if event.consumer_ttl == 0 {
            return Err(invalid(
                prefix("event_transport", "consumer_ttl"),
                "expected a whole number of seconds, at least 1",
            ));
        }
    }
    let schema = &file.bus.schema;
    if schema.ttl == 0 {
        return Err(invalid(
            "bus.schema.ttl".to_owned(),
            "expected a whole number of seconds, at least 1 (schemas are refreshed every \
             ttl * 0.8)",
        ));
    }
    if let Some(schema_redis) = schema.transport.redis() {
        check_redis_url(&schema_redis.url)
            .map_err(|m| invalid("bus.schema.transport.redis.url".to_owned(), &m))?;
    }
    let ping = file.plugins.internal_state.ping_interval;
    if !positive_seconds(ping) {
        return Err(invalid(
            "plugins.internal_state.ping_interval".to_owned(),
            "expected a positive number of seconds",
        ));
    }
    for (key, name) in [
        ("service_name", &file.service_name),
        ("process_name", &file.process_name),
    ] {
        if name.as_deref().is_some_and(|name| name.trim().is_empty()) {
            return Err(invalid(
                key.to_owned(),
                "expected a non-empty name (placeholders such as {friendly} are allowed)",
            ));
        }
    }
    Ok(())
}

fn positive_seconds(value: f64) -> bool {
    value.is_finite() && value > 0.0
}

/// A Redis URL the client accepts (`redis://`, `rediss://`, `unix://`), without connecting.
fn check_redis_url(url: &str) -> Result<(), String> {
    use redis::IntoConnectionInfo;
    url.into_connection_info().map(|_| ()).map_err(|e| {
        format!("expected a Redis URL such as `redis://127.0.0.1:6379/0`, found `{url}` ({e})")
    })
}

#[cfg(test)]
mod tests;
