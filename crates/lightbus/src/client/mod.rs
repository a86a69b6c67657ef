//! The bus client: one handle per process to call, fire, listen and register.
//!
//! [`Bus`] is cheap to clone (an `Arc`); clones share connections, the API registry and the
//! result listener. It is the single entry point for RPCs, events and worker setup.

pub mod blocking;
pub(crate) mod tasks;
mod transports;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::api::{Api, ApiDescriptor, Event, Kwargs, Registry};
use crate::config::{Config, ConfigOverrides};
use crate::error::{Error, Result};
use crate::message::{EventMessage, RpcMessage};
use crate::schema::{BusSchema, Direction, Target};
pub(crate) use transports::ApiTransports;
use transports::Transports;

/// A hook run by the worker: before it starts consuming, or after it stopped.
pub(crate) type Hook = Box<dyn Fn(Bus) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// A handle to the bus. Create one with [`crate::create`] or [`Bus::builder`].
///
/// ```no_run
/// # async fn example() -> lightbus::Result<()> {
/// let bus = lightbus::create()?;
/// // Call an API defined anywhere (say, in a Python service), by name:
/// let valid: bool = bus
///     .call("auth.check_password", serde_json::json!({"username": "admin", "password": "secret"}))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusInner>,
}

struct BusInner {
    config: Config,
    registry: Registry,
    transports: Transports,
    schema: BusSchema,
    on_start: Mutex<Vec<Hook>>,
    after_stop: Mutex<Vec<Hook>>,
    listeners: crate::listener::Listeners,
    tasks: tasks::TaskRegistry,
    mock: std::sync::OnceLock<Arc<crate::testing::MockState>>,
    plugins: crate::plugin::Plugins,
}

/// An event that was fired: where it landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredEvent {
    /// The event's message id.
    pub id: String,
    /// Its id in the transport (the Redis stream entry id).
    pub native_id: String,
}

impl Bus {
    /// Starts building a bus client.
    pub fn builder() -> BusBuilder {
        BusBuilder::default()
    }

    /// The configuration this bus runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// This process's service name.
    pub fn service_name(&self) -> &str {
        &self.inner.config.service_name
    }

    /// This process's name.
    pub fn process_name(&self) -> &str {
        &self.inner.config.process_name
    }

    /// Registers an API, making this process authoritative for it: a worker started on this
    /// bus serves its RPCs, and this process may fire its events.
    ///
    /// Fails if an API of the same name is already registered or the name is invalid.
    pub fn register(&self, api: impl Api) -> Result<()> {
        let descriptor = self.inner.registry.add(Arc::new(api))?;
        self.inner.schema.add_local(&descriptor)?;
        tracing::debug!(api = %descriptor.name, "registered API");
        Ok(())
    }

    /// The schemas this process knows (its APIs', loaded files', the bus's), used to
    /// validate messages as each API's `validate` option says.
    pub fn schema(&self) -> &BusSchema {
        &self.inner.schema
    }

    /// Loads API schemas written by `dumpschema` (a file, or a directory of `*.json`) for
    /// validation without live workers. They are never stored on the bus. Returns the API
    /// names loaded.
    pub fn load_local_schema(&self, path: impl AsRef<std::path::Path>) -> Result<Vec<String>> {
        self.inner.schema.load_local(path)
    }

    /// The descriptions of every API registered in this process, sorted by name.
    pub fn registered_apis(&self) -> Vec<Arc<ApiDescriptor>> {
        self.inner
            .registry
            .all()
            .into_iter()
            .map(|registered| registered.descriptor)
            .collect()
    }

    /// Calls `api.procedure` (e.g. `"auth.check_password"`) with keyword arguments given as
    /// anything that serializes to a JSON object, and decodes the result into `T`.
    ///
    /// For APIs defined with `#[lightbus::api]`, the generated client is typed and shorter.
    pub async fn call<T: DeserializeOwned>(&self, rpc: &str, kwargs: impl Serialize) -> Result<T> {
        let (api, procedure) = split_member(rpc)?;
        let kwargs = to_kwargs(rpc, kwargs)?;
        let value = self.call_raw(api, procedure, kwargs).await?;
        serde_json::from_value(value).map_err(|e| {
            Error::Codec(format!(
                "the result of {rpc}() has an unexpected shape: {e}"
            ))
        })
    }

    /// Calls `api`.`procedure` with JSON keyword arguments and returns the JSON result.
    ///
    /// Waits at most the API's `rpc_timeout`. A failure on the worker is
    /// [`Error::Remote`]; no answer in time is [`Error::Timeout`].
    pub async fn call_raw(&self, api: &str, procedure: &str, kwargs: Kwargs) -> Result<Value> {
        if let Some(mock) = self.inner.mock.get() {
            return mock.call(self, api, procedure, kwargs).await;
        }
        let api_config = self.inner.config.api(api);
        let kwargs = Value::Object(kwargs);
        self.inner
            .schema
            .check(
                api_config,
                Direction::Outgoing,
                api,
                Target::RpcParameters,
                procedure,
                &kwargs,
            )
            .await?;
        let kwargs = crate::schema::into_kwargs(kwargs);
        let transports = self.inner.transports.for_api(api)?;
        let mut call = RpcMessage::new(api, procedure, kwargs, String::new());
        let (return_path, pending) = transports.result.expect_result(&call.id)?;
        call.return_path = return_path;

        let plugins = self.inner.plugins.active();
        if let Some(plugins) = &plugins {
            crate::plugin::run_hooks!(plugins, before_rpc_call(self, &call));
        }
        let started = Instant::now();
        // One deadline bounds sending and waiting alike. Its timer is registered before the
        // send's own, so the runtime's timer wheel needs no extra wake-up per call (measured:
        // a timer armed after the send cost an eventfd write and an epoll round each call).
        let send_and_wait = async {
            transports
                .rpc
                .send_call(&call, transports.call_expiry)
                .await?;
            pending.wait().await.ok_or(Error::Closed)
        };
        let result = tokio::time::timeout(transports.rpc_timeout, send_and_wait)
            .await
            .map_err(|_| Error::Timeout {
                api: api.to_owned(),
                procedure: procedure.to_owned(),
                timeout: transports.rpc_timeout,
            })??;
        if let Some(plugins) = &plugins {
            crate::plugin::run_hooks!(plugins, after_rpc_call(self, &call, &result));
        }
        tracing::debug!(
            rpc = %call.canonical_name(),
            id = %call.id,
            elapsed = ?started.elapsed(),
            ok = result.outcome.is_ok(),
            "RPC answered"
        );
        let value = result.outcome.map_err(|failure| Error::Remote {
            api: api.to_owned(),
            procedure: procedure.to_owned(),
            message: failure.message,
            trace: failure.trace,
        })?;
        self.inner
            .schema
            .check(
                api_config,
                Direction::Incoming,
                api,
                Target::RpcResponse,
                procedure,
                &value,
            )
            .await?;
        Ok(value)
    }

    /// Fires a typed event. Only a process that registered the event's API may fire it.
    pub async fn fire<E: Event>(&self, event: E) -> Result<FiredEvent> {
        let member = format!("{}.{}", E::API_NAME, E::EVENT_NAME);
        let kwargs = to_kwargs(&member, &event)?;
        self.fire_raw(E::API_NAME, E::EVENT_NAME, kwargs).await
    }

    /// Fires `api`.`event` with JSON keyword arguments, checked against the event's declared
    /// parameters before anything is sent.
    pub async fn fire_raw(&self, api: &str, event: &str, kwargs: Kwargs) -> Result<FiredEvent> {
        let registered = self
            .inner
            .registry
            .get(api)
            .ok_or_else(|| Error::NotAuthoritative {
                api: api.to_owned(),
                event: event.to_owned(),
            })?;
        let declared = registered.descriptor.event(event).ok_or_else(|| {
            Error::Unknown(format!("the `{api}` API declares no event named `{event}`"))
        })?;
        check_event_kwargs(api, declared, &kwargs)?;
        let kwargs = Value::Object(kwargs);
        self.inner.schema.check_now(
            self.inner.config.api(api),
            Direction::Outgoing,
            api,
            Target::EventParameters,
            event,
            &kwargs,
        )?;
        let kwargs = crate::schema::into_kwargs(kwargs);
        let mut message = EventMessage::new(api, event, registered.descriptor.version, kwargs);
        if let Some(mock) = self.inner.mock.get() {
            return mock.fire(message);
        }
        let transports = self.inner.transports.for_api(api)?;
        let plugins = self.inner.plugins.active();
        if let Some(plugins) = &plugins {
            crate::plugin::run_hooks!(plugins, before_event_fire(self, &message));
        }
        let native_id = tokio::time::timeout(
            transports.event_fire_timeout,
            transports.event.send_event(&message),
        )
        .await
        .map_err(|_| {
            Error::Codec(format!(
                "firing {api}.{event} did not complete within {:?} (event_fire_timeout)",
                transports.event_fire_timeout
            ))
        })??;
        tracing::debug!(event = %message.canonical_name(), id = %message.id, %native_id, "fired");
        if let Some(plugins) = &plugins {
            message.native_id = Some(native_id.clone());
            crate::plugin::run_hooks!(plugins, after_event_fire(self, &message));
        }
        Ok(FiredEvent {
            id: message.id,
            native_id,
        })
    }

    /// Adds a hook the worker runs after setup, before it starts consuming (upstream's
    /// `before_server_start`): the place to start listeners or background work.
    pub fn on_start<F, Fut>(&self, hook: F)
    where
        F: Fn(Bus) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let hook: Hook = Box::new(move |bus| hook(bus).boxed());
        self.inner
            .on_start
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    /// Adds a hook the worker runs after it stopped consuming (upstream's
    /// `after_server_stopped`).
    pub fn after_stop<F, Fut>(&self, hook: F)
    where
        F: Fn(Bus) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let hook: Hook = Box::new(move |bus| hook(bus).boxed());
        self.inner
            .after_stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    /// Routes this bus's calls and fires to a mock (see [`crate::testing`]); once only.
    pub(crate) fn install_mock(&self, mock: Arc<crate::testing::MockState>) {
        let _ = self.inner.mock.set(mock);
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The event listeners set up on this bus (see [`crate::listener`]).
    pub(crate) fn listeners(&self) -> &crate::listener::Listeners {
        &self.inner.listeners
    }

    /// The plugins added to this bus (see [`crate::plugin`]).
    pub(crate) fn plugins(&self) -> &crate::plugin::Plugins {
        &self.inner.plugins
    }

    pub(crate) fn transports_for(&self, api: &str) -> Result<Arc<ApiTransports>> {
        self.inner.transports.for_api(api)
    }

    /// Runs the hooks added with `on_start` (or `after_stop` when `after_stop` is true).
    pub(crate) async fn run_hooks(&self, after_stop: bool) -> Result<()> {
        let list = if after_stop {
            &self.inner.after_stop
        } else {
            &self.inner.on_start
        };
        let hooks: Vec<BoxFuture<'static, Result<()>>> = list
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|hook| hook(self.clone()))
            .collect();
        for hook in hooks {
            hook.await?;
        }
        Ok(())
    }
}

/// Splits `"api.procedure"` at its last dot (API names may contain dots).
pub(crate) fn split_member(member: &str) -> Result<(&str, &str)> {
    member
        .rsplit_once('.')
        .filter(|(api, name)| !api.is_empty() && !name.is_empty())
        .ok_or_else(|| {
            Error::Unknown(format!(
                "`{member}` is not of the form `api.member` (for example `auth.check_password`)"
            ))
        })
}

/// Serializes keyword arguments, which must form a JSON object.
pub(crate) fn to_kwargs(member: &str, kwargs: impl Serialize) -> Result<Kwargs> {
    match serde_json::to_value(kwargs) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Kwargs::new()),
        Ok(other) => Err(Error::InvalidArguments {
            member: member.to_owned(),
            reason: format!(
                "Lightbus takes keyword arguments only: pass a JSON object, not {other}"
            ),
        }),
        Err(e) => Err(Error::InvalidArguments {
            member: member.to_owned(),
            reason: format!("cannot be encoded as JSON: {e}"),
        }),
    }
}

fn check_event_kwargs(
    api: &str,
    declared: &crate::api::EventDescriptor,
    kwargs: &Kwargs,
) -> Result<()> {
    let invalid = |reason: String| Error::InvalidArguments {
        member: format!("{api}.{}", declared.name),
        reason,
    };
    if let Some(unknown) = kwargs
        .keys()
        .find(|key| !declared.parameters.iter().any(|p| &p.name == *key))
    {
        return Err(invalid(format!("unexpected parameter `{unknown}`")));
    }
    if let Some(missing) = declared
        .parameters
        .iter()
        .find(|p| p.required && !kwargs.contains_key(&p.name))
    {
        return Err(invalid(format!("missing parameter `{}`", missing.name)));
    }
    Ok(())
}

/// Builds a [`Bus`] from a configuration.
///
/// ```
/// let bus = lightbus::Bus::builder()
///     .service_name("billing")
///     .process_name("billing-{pid}")
///     .build()
///     .expect("valid configuration");
/// assert_eq!(bus.service_name(), "billing");
/// ```
#[derive(Default)]
pub struct BusBuilder {
    config: Option<Config>,
    overrides: ConfigOverrides,
    local_schemas: Vec<std::path::PathBuf>,
}

impl BusBuilder {
    /// Uses this configuration instead of loading one (overrides still apply to names).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Loads this configuration file instead of the one named by `LIGHTBUS_CONFIG`.
    pub fn config_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.overrides.config_path = Some(path.into());
        self
    }

    /// Applies command-line style overrides (file, names, log level).
    pub fn overrides(mut self, overrides: ConfigOverrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// Sets the service name (placeholders allowed).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.overrides.service_name = Some(name.into());
        self
    }

    /// Sets the process name (placeholders allowed).
    pub fn process_name(mut self, name: impl Into<String>) -> Self {
        self.overrides.process_name = Some(name.into());
        self
    }

    /// Loads API schemas from a `dumpschema` file or directory when the bus is built (see
    /// [`Bus::load_local_schema`]). May be given several times.
    pub fn local_schema(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.local_schemas.push(path.into());
        self
    }

    /// Loads the configuration and creates the bus. Connections open on first use.
    pub fn build(self) -> Result<Bus> {
        let mut config = match self.config {
            Some(config) => config,
            None => Config::load(&self.overrides)?,
        };
        if let Some(name) = &self.overrides.service_name {
            config.service_name = crate::config::expand_name(name);
        }
        if let Some(name) = &self.overrides.process_name {
            config.process_name = crate::config::expand_name(name);
        }
        if let Some(level) = self.overrides.log_level {
            config.file.bus.log_level = level;
        }
        let transports = Transports::new(config.clone());
        let schema = crate::schema::bus_schema_for(&config, transports.servers())?;
        for path in &self.local_schemas {
            schema.load_local(path)?;
        }
        let bus = Bus {
            inner: Arc::new(BusInner {
                transports,
                schema,
                config,
                registry: Registry::default(),
                on_start: Mutex::default(),
                after_stop: Mutex::default(),
                listeners: Default::default(),
                tasks: Default::default(),
                mock: Default::default(),
                plugins: Default::default(),
            }),
        };
        crate::plugin::install_builtin(&bus)?;
        Ok(bus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_split_at_the_last_dot() {
        assert_eq!(split_member("auth.check").unwrap(), ("auth", "check"));
        assert_eq!(
            split_member("my_company.auth.check").unwrap(),
            ("my_company.auth", "check")
        );
        for bad in ["auth", ".check", "auth.", ""] {
            assert!(split_member(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keyword_arguments_must_be_an_object() {
        assert!(to_kwargs("a.b", json!({"x": 1})).is_ok());
        assert!(to_kwargs("a.b", ()).unwrap().is_empty());
        let err = to_kwargs("a.b", json!([1, 2])).unwrap_err();
        assert!(err.to_string().contains("keyword arguments only"), "{err}");
    }

    #[tokio::test]
    async fn firing_needs_authority_and_declared_parameters() {
        let bus = Bus::builder().build().expect("default config");
        let err = bus
            .fire_raw("auth", "user_registered", Kwargs::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotAuthoritative { .. }), "{err}");

        bus.register(
            crate::api::ApiBuilder::new("auth")
                .event("user_registered", ["username", "email"])
                .build(),
        )
        .expect("registers");
        let missing = json!({"username": "a"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let err = bus
            .fire_raw("auth", "user_registered", missing)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("missing parameter `email`"),
            "{err}"
        );
        let extra = json!({"username": "a", "email": "b", "age": 3})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let err = bus
            .fire_raw("auth", "user_registered", extra)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("unexpected parameter `age`"),
            "{err}"
        );
        let err = bus
            .fire_raw("auth", "nope", Kwargs::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no event named `nope`"), "{err}");
    }
}
