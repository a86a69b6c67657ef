//! The schemas one process knows: its own APIs, files it loaded, and what is on the bus.
//!
//! Lookups prefer, in order: APIs registered in this process (their schema is generated
//! from the Rust types), schemas loaded from files ([`BusSchema::load_local`]), and schemas
//! loaded from the bus. Remote schemas are loaded on first need and reloaded once they are
//! older than `bus.schema.ttl * 0.8` (the period at which workers refresh them); a worker
//! also reloads them on that period in the background. Unchanged schemas keep their
//! compiled validators across reloads.
//!
//! Guarantees: a missing schema is warned about once per API (not per message) unless
//! `strict_validation` makes it an error; nothing is loaded or checked for an API whose
//! `validate` is off in the direction at hand.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::ApiDescriptor;
use crate::config::ApiConfig;
use crate::error::{Direction, Result, SchemaError, Target};
use crate::schema::{api_schema, to_python_json, ApiSchema};
use crate::transport::SchemaTransport;
use crate::util::{lock, read, write};

/// How soon a failed reload of remote schemas is retried.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Schemas loaded from the bus, and when to reload them.
#[derive(Default)]
struct Remote {
    schemas: HashMap<String, Arc<ApiSchema>>,
    next_refresh: Option<Instant>,
}

/// The bus schema as seen by one process. Get it with [`Bus::schema`](crate::Bus::schema).
pub struct BusSchema {
    transport: Arc<dyn SchemaTransport>,
    ttl: Duration,
    human_readable: bool,
    local: RwLock<HashMap<String, Arc<ApiSchema>>>,
    files: RwLock<HashMap<String, Arc<ApiSchema>>>,
    remote: RwLock<Remote>,
    reload: tokio::sync::Mutex<()>,
    warned: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for BusSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusSchema")
            .field("transport", &self.transport.describe())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl BusSchema {
    /// A schema store sharing through `transport`; stored schemas live `ttl`.
    pub fn new(transport: Arc<dyn SchemaTransport>, ttl: Duration, human_readable: bool) -> Self {
        BusSchema {
            transport,
            ttl: ttl.max(Duration::from_secs(1)),
            human_readable,
            local: RwLock::default(),
            files: RwLock::default(),
            remote: RwLock::default(),
            reload: tokio::sync::Mutex::new(()),
            warned: Mutex::default(),
        }
    }

    /// How long a stored schema lives without being stored again (`bus.schema.ttl`).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often workers store their schemas again and everyone reloads: `ttl * 0.8`.
    pub fn refresh_interval(&self) -> Duration {
        self.ttl.mul_f64(0.8)
    }

    /// The schema transport, for logs.
    pub fn describe(&self) -> String {
        self.transport.describe()
    }

    /// Adds the schema of an API registered in this process.
    pub(crate) fn add_local(&self, descriptor: &ApiDescriptor) -> Result<()> {
        let schema =
            ApiSchema::from_value(&descriptor.name, api_schema(descriptor), "a registered API")?;
        write(&self.local).insert(descriptor.name.clone(), Arc::new(schema));
        Ok(())
    }

    /// Loads schemas written by `dumpschema`: a JSON file `{api_name: schema, ...}`, or a
    /// directory of such files (every `*.json` in it). They are used for validation and
    /// shown by `dumpschema`, and never stored on the bus. Returns the API names loaded.
    pub fn load_local(&self, path: impl AsRef<Path>) -> Result<Vec<String>> {
        let path = path.as_ref();
        let io = |e: std::io::Error| SchemaError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut files = Vec::new();
        if path.is_dir() {
            for entry in std::fs::read_dir(path).map_err(io)? {
                let file = entry.map_err(io)?.path();
                if file.extension().is_some_and(|ext| ext == "json") && file.is_file() {
                    files.push(file);
                }
            }
            files.sort();
        } else {
            files.push(path.to_owned());
        }
        let mut loaded = Vec::new();
        for file in files {
            let origin = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|e| SchemaError::Io {
                path: origin.clone(),
                message: e.to_string(),
            })?;
            let apis = parse_schema_file(&text, &origin)?;
            let mut store = write(&self.files);
            for (name, schema) in apis {
                loaded.push(name.clone());
                store.insert(name, Arc::new(schema));
            }
        }
        tracing::debug!("loaded local schemas for {}", loaded.join(", "));
        Ok(loaded)
    }

    /// The schema used for `api` now: registered, else from a file, else from the bus.
    /// Does not load anything; see [`BusSchema::ensure_loaded`].
    pub fn get(&self, api: &str) -> Option<Arc<ApiSchema>> {
        self.get_in_process(api)
            .or_else(|| read(&self.remote).schemas.get(api).cloned())
    }

    /// A schema that never needs reloading: registered here, or loaded from a file.
    fn get_in_process(&self, api: &str) -> Option<Arc<ApiSchema>> {
        if let Some(found) = read(&self.local).get(api) {
            return Some(found.clone());
        }
        read(&self.files).get(api).cloned()
    }

    /// Loads the remote schemas if they were never loaded or are due for a reload.
    /// Concurrent callers share one load. Fails only if the first load fails; a failed
    /// reload is logged and the previous schemas stay in use.
    pub async fn ensure_loaded(&self) -> Result<()> {
        if !self.reload_due() {
            return Ok(());
        }
        let _one_at_a_time = self.reload.lock().await;
        if !self.reload_due() {
            return Ok(());
        }
        let first = read(&self.remote).next_refresh.is_none();
        match self.load_remote().await {
            Ok(()) => Ok(()),
            Err(error) if first => {
                write(&self.remote).next_refresh = None;
                Err(error)
            }
            Err(error) => {
                tracing::warn!(
                    "cannot reload the bus schema ({error}); using the schemas loaded before"
                );
                Ok(())
            }
        }
    }

    fn reload_due(&self) -> bool {
        read(&self.remote)
            .next_refresh
            .is_none_or(|at| Instant::now() >= at)
    }

    /// Loads every schema on the bus now, replacing those loaded before. Schemas that did
    /// not change keep their compiled validators.
    pub async fn load_remote(&self) -> Result<()> {
        let loaded = match self.transport.load().await {
            Ok(loaded) => loaded,
            Err(error) => {
                write(&self.remote).next_refresh = Some(Instant::now() + RETRY_AFTER_FAILURE);
                return Err(error);
            }
        };
        let previous = read(&self.remote).schemas.clone();
        let mut schemas = HashMap::with_capacity(loaded.len());
        for (name, raw) in loaded {
            if let Some(same) = previous.get(&name).filter(|old| *old.as_value() == raw) {
                schemas.insert(name, same.clone());
                continue;
            }
            match ApiSchema::from_value(&name, raw, &self.transport.describe()) {
                Ok(schema) => {
                    schemas.insert(name, Arc::new(schema));
                }
                Err(error) => tracing::warn!("ignoring a schema on the bus: {error}"),
            }
        }
        {
            let mut warned = lock(&self.warned);
            warned.retain(|api| !schemas.contains_key(api));
        }
        let mut remote = write(&self.remote);
        remote.schemas = schemas;
        remote.next_refresh = Some(Instant::now() + self.refresh_interval());
        Ok(())
    }

    /// Stores the schema of every API registered in this process on the bus, to live
    /// [`ttl`](Self::ttl). Schemas loaded from files are never stored.
    pub async fn store_local(&self) -> Result<()> {
        let local: Vec<Arc<ApiSchema>> = read(&self.local).values().cloned().collect();
        let schemas: Vec<(&str, &Value)> = local
            .iter()
            .map(|schema| (schema.name(), schema.as_value()))
            .collect();
        self.transport.store_all(&schemas, self.ttl).await
    }

    /// Every schema this process can see (registered, files, the bus), loading the bus's
    /// first, keyed by API name. This is what `dumpschema` writes.
    pub async fn snapshot(&self) -> Result<BTreeMap<String, Value>> {
        self.load_remote().await?;
        let mut all: BTreeMap<String, Value> = read(&self.remote)
            .schemas
            .iter()
            .map(|(name, schema)| (name.clone(), schema.as_value().clone()))
            .collect();
        for source in [&self.files, &self.local] {
            for (name, schema) in read(source).iter() {
                all.insert(name.clone(), schema.as_value().clone());
            }
        }
        Ok(all)
    }

    /// The JSON text of `schemas` as `dumpschema` writes it: indented by 2 when
    /// `bus.schema.human_readable` is on, on one line otherwise, keys sorted.
    pub fn dump(&self, schemas: &BTreeMap<String, Value>) -> String {
        let value = Value::Object(schemas.clone().into_iter().collect());
        to_python_json(&value, self.human_readable.then_some(2))
    }

    /// Validates `value` as `target` of `api`.`member` if the API's configuration asks for
    /// validation in `direction`; loads remote schemas first if needed.
    ///
    /// No schema known for the API: a warning (logged once per API) and `Ok`, or
    /// [`SchemaError::Missing`] under `strict_validation`.
    pub async fn check(
        &self,
        config: &ApiConfig,
        direction: Direction,
        api: &str,
        target: Target,
        member: &str,
        value: &Value,
    ) -> Result<()> {
        let policy = Policy::of(config, direction);
        self.validate(policy, direction, api, target, member, value)
            .await
    }

    /// Validates as `policy` says, loading remote schemas first if needed.
    pub(crate) async fn validate(
        &self,
        policy: Policy,
        direction: Direction,
        api: &str,
        target: Target,
        member: &str,
        value: &Value,
    ) -> Result<()> {
        if !policy.enabled {
            return Ok(());
        }
        if let Some(schema) = self.get_in_process(api) {
            return schema.validate(target, member, value, direction);
        }
        self.ensure_loaded().await?;
        self.validate_now(policy, direction, api, target, member, value)
    }

    /// The same as [`check`](Self::check) without loading: for code that cannot wait, such
    /// as a worker's dispatch of its own APIs (whose schemas are always local).
    pub fn check_now(
        &self,
        config: &ApiConfig,
        direction: Direction,
        api: &str,
        target: Target,
        member: &str,
        value: &Value,
    ) -> Result<()> {
        let policy = Policy::of(config, direction);
        self.validate_now(policy, direction, api, target, member, value)
    }

    /// Validates as `policy` says with the schemas known now.
    pub(crate) fn validate_now(
        &self,
        policy: Policy,
        direction: Direction,
        api: &str,
        target: Target,
        member: &str,
        value: &Value,
    ) -> Result<()> {
        if !policy.enabled {
            return Ok(());
        }
        match self.get(api) {
            Some(schema) => schema.validate(target, member, value, direction),
            None => self.missing(api, policy.strict),
        }
    }

    fn missing(&self, api: &str, strict: bool) -> Result<()> {
        if strict {
            return Err(SchemaError::Missing {
                api: api.to_owned(),
            }
            .into());
        }
        let first_time = lock(&self.warned).insert(api.to_owned());
        if first_time {
            tracing::warn!(
                "validation is on for the `{api}` API but no schema is known for it, so its \
                 messages are not validated: no worker serving `{api}` has stored its schema \
                 on {}. Set `strict_validation: true` to make this an error, or \
                 `validate: false` to silence it",
                self.transport.describe()
            );
        }
        Ok(())
    }
}

/// Parses a `dumpschema` file: `{api_name: {"rpcs": …, "events": …}, …}`.
fn parse_schema_file(text: &str, origin: &str) -> Result<Vec<(String, ApiSchema)>, SchemaError> {
    let value: Value = serde_json::from_str(text).map_err(|e| SchemaError::Invalid {
        origin: origin.to_owned(),
        message: format!("not valid JSON: {e}"),
    })?;
    let Value::Object(apis) = value else {
        return Err(SchemaError::Invalid {
            origin: origin.to_owned(),
            message: "expected an object keyed by API name, as `dumpschema` writes".to_owned(),
        });
    };
    apis.into_iter()
        .map(|(name, schema)| {
            let parsed = ApiSchema::from_value(&name, schema, origin)?;
            Ok((name, parsed))
        })
        .collect()
}

/// Whether, and how strictly, one message is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Validate at all.
    pub(crate) enabled: bool,
    /// A missing schema is an error rather than a warning.
    pub(crate) strict: bool,
}

impl Policy {
    /// What `config` asks for messages going in `direction`.
    pub(crate) fn of(config: &ApiConfig, direction: Direction) -> Self {
        let enabled = match direction {
            Direction::Incoming => config.validate.incoming(),
            Direction::Outgoing => config.validate.outgoing(),
        };
        Policy {
            enabled,
            strict: config.strict_validation,
        }
    }

    /// This policy, switched on or off by a per-call choice if one was made.
    pub(crate) fn overridden(self, choice: Option<bool>) -> Self {
        Policy {
            enabled: choice.unwrap_or(self.enabled),
            ..self
        }
    }
}
