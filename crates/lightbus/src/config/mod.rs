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
//! Rust-only: `observability` (`http`, `trace_propagation`; see [`ObservabilityConfig`]) and
//! `apis.*.max_deliveries` (how many deliveries of an event a failing listener gets before
//! it is dead-lettered; default 5), `{rpc,result,event}_transport.redis.max_message_bytes`
//! (the largest message sent or accepted; default 64 MiB) and `tls` (`ca_file`,
//! `cert_file`, `key_file` for `rediss://` servers; see [`TlsConfig`], also
//! `LIGHTBUS_TLS_CA_FILE`, `LIGHTBUS_TLS_CERT_FILE`, `LIGHTBUS_TLS_KEY_FILE`).
//! Python Lightbus 1.1.2 rejects files with keys it does not know, so a file shared with
//! Python processes leaves it out; `--http`, `LIGHTBUS_HTTP` and
//! `LIGHTBUS_TRACE_PROPAGATION` do the same from the command line and the environment.
//!
//! ```
//! let config = lightbus::config::Config::from_str(
//!     "apis:\n  default:\n    rpc_timeout: 2\n",
//!     "inline.yaml",
//! ).expect("valid config");
//! assert_eq!(config.api("auth").rpc_timeout, 2.0);
//! ```

mod file;
mod names;
mod schema;
mod source;
mod tls;
mod transports;
mod url;
mod values;

pub use file::{
    ApiConfig, BusConfig, ConfigFile, LogLevel, MetricsPluginConfig, ObservabilityConfig,
    PluginsConfig, SchemaConfig, StatePluginConfig, Validate, DEFAULT_MAX_DELIVERIES,
};
pub use names::expand_name;
pub use schema::config_json_schema;
pub use tls::{TlsConfig, TLS_CA_FILE_ENV, TLS_CERT_FILE_ENV, TLS_KEY_FILE_ENV};
pub use transports::{
    EventTransportSelector, MemoryConfig, MemoryEventConfig, RedisEventConfig, RedisResultConfig,
    RedisRpcConfig, RedisSchemaConfig, ResultTransportSelector, RpcTransportSelector,
    SchemaTransportSelector, StreamUse, DEFAULT_MAX_MESSAGE_BYTES,
};
pub use url::redact_url;
pub(crate) use url::{client_url, cluster_url, sentinel_url, SentinelUrl};
pub use values::{Count, Delay, Seconds, WholeSeconds};

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The name of the catch-all entry in `apis`.
pub const DEFAULT_API: &str = "default";
/// The URL every transport uses when none is configured.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";
/// The in-memory hub that memory transports use when no `namespace` is configured.
pub const DEFAULT_MEMORY_NAMESPACE: &str = "default";

pub use crate::error::ConfigError;

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

/// The service name when none is configured: a new friendly name at every start, as
/// upstream.
pub const DEFAULT_SERVICE_NAME: &str = "{friendly}";

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
    /// The service name as given, placeholders unexpanded.
    service_template: String,
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
        let service_template = file
            .service_name
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
        let service_name = expand_name(&service_template);
        let process_name = expand_name(file.process_name.as_deref().unwrap_or("{random4}"));
        Config {
            service_name,
            process_name,
            file,
            origin,
            default_api: ApiConfig::default(),
            service_template,
        }
    }

    /// Sets the service name from `template` (placeholders expanded), as `--service-name`
    /// does.
    pub fn set_service_name(&mut self, template: &str) {
        self.service_template = template.to_owned();
        self.service_name = expand_name(template);
    }

    /// The service name as configured, before its placeholders were expanded
    /// ([`DEFAULT_SERVICE_NAME`] when none was given).
    pub fn service_name_template(&self) -> &str {
        &self.service_template
    }

    /// True when the service name is made up anew at every start: it was not given (the
    /// default `{friendly}`), or uses `{friendly}`, `{random4}`, `{random8}`, `{random16}`
    /// or `{pid}`. A listener's consumer group is named after the service, so such a
    /// process starts a new group at every start and misses the events fired while it was
    /// down.
    pub fn service_name_changes_per_start(&self) -> bool {
        [
            "{friendly}",
            "{random4}",
            "{random8}",
            "{random16}",
            "{pid}",
        ]
        .iter()
        .any(|placeholder| self.service_template.contains(placeholder))
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

    /// The TLS files of `rediss://` connections: the file's `tls` section, each file
    /// overridden by its environment variable (`LIGHTBUS_TLS_CA_FILE`,
    /// `LIGHTBUS_TLS_CERT_FILE`, `LIGHTBUS_TLS_KEY_FILE`) when that is set.
    pub fn tls(&self) -> TlsConfig {
        self.file.tls.clone().with_env()
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
    // Every value is checked by its type while parsing: a file that parses is valid.
    serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: e.path().to_string(),
        message: e.inner().to_string(),
    })
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

#[cfg(test)]
mod tests;
