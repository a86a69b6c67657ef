//! [`Bus`]: what it holds, registering APIs, and the hooks a worker runs.

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Serialize;
use serde_json::Value;

use super::listeners::Listeners;
use super::plugin::Plugins;
use super::schema::BusSchema;
use super::tasks::TaskRegistry;
use super::transports::{ApiTransports, Transports};
use super::BusBuilder;
pub(crate) use crate::api::split_member;
use crate::api::{Api, ApiDescriptor, Kwargs, Registry};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::observe::Readiness;
use crate::util::lock;

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
    pub(super) inner: Arc<BusInner>,
}

/// What a bus holds: its configuration, the APIs it serves, its transports and schemas, and
/// what a worker started on it runs (hooks, listeners, tasks).
pub(super) struct BusInner {
    pub(super) config: Config,
    pub(super) apis: Registry,
    pub(super) transports: Transports,
    pub(super) schema: BusSchema,
    pub(super) plugins: Plugins,
    pub(super) listeners: Listeners,
    pub(super) tasks: TaskRegistry,
    pub(super) readiness: Arc<Readiness>,
    pub(super) on_start: Mutex<Vec<Hook>>,
    pub(super) after_stop: Mutex<Vec<Hook>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("service_name", &self.service_name())
            .field("process_name", &self.process_name())
            .field("config", &self.inner.config.origin)
            .finish_non_exhaustive()
    }
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
        let descriptor = self.inner.apis.add(Arc::new(api))?;
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
            .apis
            .all()
            .into_iter()
            .map(|registered| registered.descriptor)
            .collect()
    }

    /// Adds a hook the worker runs after setup, before it starts consuming (upstream's
    /// `before_server_start`): the place to start listeners or background work.
    pub fn on_start<F, Fut>(&self, hook: F)
    where
        F: Fn(Bus) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        lock(&self.inner.on_start).push(Box::new(move |bus| hook(bus).boxed()));
    }

    /// Adds a hook the worker runs after it stopped consuming (upstream's
    /// `after_server_stopped`).
    pub fn after_stop<F, Fut>(&self, hook: F)
    where
        F: Fn(Bus) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        lock(&self.inner.after_stop).push(Box::new(move |bus| hook(bus).boxed()));
    }

    /// Runs the hooks added with `on_start` (or `after_stop` when `after_stop` is true), in
    /// the order they were added; the first error stops the run.
    pub(crate) async fn run_hooks(&self, after_stop: bool) -> Result<()> {
        let list = if after_stop {
            &self.inner.after_stop
        } else {
            &self.inner.on_start
        };
        let hooks: Vec<BoxFuture<'static, Result<()>>> =
            lock(list).iter().map(|hook| hook(self.clone())).collect();
        for hook in hooks {
            hook.await?;
        }
        Ok(())
    }

    /// The readiness of this bus's worker and consumers, as `/readyz` reports it.
    pub fn readiness(&self) -> &Readiness {
        &self.inner.readiness
    }

    /// The readiness, shared (for consumers that report into it).
    pub(crate) fn readiness_handle(&self) -> Arc<Readiness> {
        self.inner.readiness.clone()
    }

    /// The APIs registered in this process.
    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.apis
    }

    /// The event listeners set up on this bus.
    pub(crate) fn listeners(&self) -> &Listeners {
        &self.inner.listeners
    }

    /// The plugins added to this bus.
    pub(crate) fn plugins(&self) -> &Plugins {
        &self.inner.plugins
    }

    /// The scheduled and background tasks added to this bus.
    pub(crate) fn task_registry(&self) -> &TaskRegistry {
        &self.inner.tasks
    }

    /// The transports of `api`, built on first use.
    pub(crate) fn transports_for(&self, api: &str) -> Result<Arc<ApiTransports>> {
        self.inner.transports.for_api(api)
    }

    /// A handle that does not keep the bus alive (for parts the bus itself holds).
    pub(crate) fn downgrade(&self) -> WeakBus {
        WeakBus(Arc::downgrade(&self.inner))
    }
}

/// A [`Bus`] that is not kept alive by this handle.
#[derive(Clone, Default)]
pub(crate) struct WeakBus(Weak<BusInner>);

impl WeakBus {
    /// The bus, if it still exists.
    pub(crate) fn upgrade(&self) -> Option<Bus> {
        self.0.upgrade().map(|inner| Bus { inner })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keyword_arguments_must_be_an_object() {
        assert!(to_kwargs("a.b", json!({"x": 1})).is_ok());
        assert!(to_kwargs("a.b", ()).unwrap().is_empty());
        let err = to_kwargs("a.b", json!([1, 2])).unwrap_err();
        assert!(err.to_string().contains("keyword arguments only"), "{err}");
    }
}
