//! Plugins: code run at fixed points of a process's life and of every message.
//!
//! A [`Plugin`] implements any of its hooks (all default to doing nothing) and is added to a
//! bus with [`Bus::add_plugin`]. The hooks, and where they run:
//!
//! | hook | runs |
//! |---|---|
//! | [`before_worker_start`](Plugin::before_worker_start) | in [`Worker::run`](crate::worker::Worker::run), after the on-start hooks, before anything is consumed |
//! | [`after_worker_start`](Plugin::after_worker_start) | once RPC serving and listeners were started |
//! | [`before_worker_stop`](Plugin::before_worker_stop) | when the shutdown signal arrived, before consumption stops |
//! | [`after_worker_stop`](Plugin::after_worker_stop) | after consumption stopped and the after-stop hooks ran |
//! | [`before_rpc_call`](Plugin::before_rpc_call) / [`after_rpc_call`](Plugin::after_rpc_call) | caller side, around sending a call and receiving its result |
//! | [`before_rpc_execution`](Plugin::before_rpc_execution) / [`after_rpc_execution`](Plugin::after_rpc_execution) | worker side, before a claimed call runs and after its result was sent |
//! | [`before_event_fire`](Plugin::before_event_fire) / [`after_event_fire`](Plugin::after_event_fire) | around storing a fired event |
//! | [`before_event_handling`](Plugin::before_event_handling) / [`after_event_handling`](Plugin::after_event_handling) | around a listener's handler, the latter after the event was settled |
//!
//! Guarantees:
//! - plugins run in the order they were added, one hook at a time;
//! - an error from a worker start hook (`before_worker_start`, `after_worker_start`) stops the
//!   worker before or right after it started; an error from any other hook is logged and the
//!   operation goes on (a monitoring plugin must not break the bus it watches);
//! - with no plugin added, no hook code runs at all: the message paths check one atomic flag;
//! - plugins observe messages; they cannot alter them.
//!
//! Two plugins are built in, as upstream, each off unless enabled in the configuration:
//! [`state::StatePlugin`] (`plugins.internal_state.enabled`) and [`metrics::MetricsPlugin`]
//! (`plugins.internal_metrics.enabled`). When either is on, the process registers the
//! `internal.state` and `internal.metrics` APIs (so it may fire their events, and a worker
//! publishes their schemas) and adds the plugin.
//!
//! ```no_run
//! use lightbus::plugin::{HookFuture, Plugin};
//! use lightbus::message::RpcMessage;
//! use lightbus::Bus;
//!
//! /// Logs every outgoing call.
//! struct CallLog;
//!
//! impl Plugin for CallLog {
//!     fn name(&self) -> &str {
//!         "call_log"
//!     }
//!
//!     fn before_rpc_call<'a>(&'a self, _bus: &'a Bus, call: &'a RpcMessage) -> HookFuture<'a> {
//!         Box::pin(async move {
//!             println!("calling {}", call.canonical_name());
//!             Ok(())
//!         })
//!     }
//! }
//!
//! # fn setup(bus: &Bus) {
//! bus.add_plugin(CallLog);
//! # }
//! ```

pub mod metrics;
pub mod state;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use crate::client::Bus;
use crate::error::Result;
use crate::message::{EventMessage, ResultMessage, RpcMessage};
use crate::util::{read, write};

/// What a hook returns: a boxed future, so that [`Plugin`] can be used as a trait object.
pub type HookFuture<'a> = BoxFuture<'a, Result<()>>;

/// A hook that does nothing (the default of every hook).
pub fn nothing<'a>() -> HookFuture<'a> {
    Box::pin(std::future::ready(Ok(())))
}

/// Code run at fixed points of a worker's life and of every message. Every hook defaults to
/// doing nothing; implement those you need. See the [module docs](self) for where each runs.
pub trait Plugin: Send + Sync + 'static {
    /// A short name for logs, e.g. `internal_state`.
    fn name(&self) -> &str;

    /// Before the worker consumes anything (after the bus's on-start hooks). An error stops
    /// the worker from starting.
    fn before_worker_start<'a>(&'a self, _bus: &'a Bus) -> HookFuture<'a> {
        nothing()
    }

    /// After the worker started serving RPCs and running listeners. An error stops it.
    fn after_worker_start<'a>(&'a self, _bus: &'a Bus) -> HookFuture<'a> {
        nothing()
    }

    /// When the worker was told to stop, before consumption stops.
    fn before_worker_stop<'a>(&'a self, _bus: &'a Bus) -> HookFuture<'a> {
        nothing()
    }

    /// After the worker stopped consuming and ran the bus's after-stop hooks.
    fn after_worker_stop<'a>(&'a self, _bus: &'a Bus) -> HookFuture<'a> {
        nothing()
    }

    /// Before a call is sent (caller side).
    fn before_rpc_call<'a>(&'a self, _bus: &'a Bus, _call: &'a RpcMessage) -> HookFuture<'a> {
        nothing()
    }

    /// After the result of a call arrived, success or failure (caller side). Not run when
    /// the call timed out.
    fn after_rpc_call<'a>(
        &'a self,
        _bus: &'a Bus,
        _call: &'a RpcMessage,
        _result: &'a ResultMessage,
    ) -> HookFuture<'a> {
        nothing()
    }

    /// Before a received and claimed call runs (worker side).
    fn before_rpc_execution<'a>(&'a self, _bus: &'a Bus, _call: &'a RpcMessage) -> HookFuture<'a> {
        nothing()
    }

    /// After a call ran and its result was sent back (worker side).
    fn after_rpc_execution<'a>(
        &'a self,
        _bus: &'a Bus,
        _call: &'a RpcMessage,
        _result: &'a ResultMessage,
    ) -> HookFuture<'a> {
        nothing()
    }

    /// Before an event is stored on the bus (after its parameters were checked).
    fn before_event_fire<'a>(&'a self, _bus: &'a Bus, _event: &'a EventMessage) -> HookFuture<'a> {
        nothing()
    }

    /// After an event was stored; its [`native_id`](EventMessage::native_id) is set.
    fn after_event_fire<'a>(&'a self, _bus: &'a Bus, _event: &'a EventMessage) -> HookFuture<'a> {
        nothing()
    }

    /// Before listener `listener`'s handler runs on `event` (worker side).
    fn before_event_handling<'a>(
        &'a self,
        _bus: &'a Bus,
        _listener: &'a str,
        _event: &'a EventMessage,
    ) -> HookFuture<'a> {
        nothing()
    }

    /// After listener `listener`'s handler ran on `event` and the event was settled;
    /// `failure` is `None` when the handler succeeded, else what it reported.
    fn after_event_handling<'a>(
        &'a self,
        _bus: &'a Bus,
        _listener: &'a str,
        _event: &'a EventMessage,
        _failure: Option<&'a str>,
    ) -> HookFuture<'a> {
        nothing()
    }
}

/// The plugins of one bus. Reading them on a message path costs one atomic load when there
/// are none.
#[derive(Default)]
pub(crate) struct Plugins {
    any: AtomicBool,
    list: RwLock<Arc<Vec<Arc<dyn Plugin>>>>,
}

/// The plugins at one moment: what a message path runs its hooks on.
pub(crate) type Active = Arc<Vec<Arc<dyn Plugin>>>;

impl Plugins {
    fn add(&self, plugin: Arc<dyn Plugin>) {
        let mut list = write(&self.list);
        let mut updated: Vec<Arc<dyn Plugin>> = list.as_ref().clone();
        updated.push(plugin);
        *list = Arc::new(updated);
        self.any.store(true, Ordering::Release);
    }

    /// The plugins, or `None` (cheaply) when there are none.
    #[inline]
    pub(crate) fn active(&self) -> Option<Active> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        Some(read(&self.list).clone())
    }

    /// Whether a plugin called `name` was added.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.active()
            .is_some_and(|list| list.iter().any(|plugin| plugin.name() == name))
    }
}

/// Logs a failed message hook; message hooks never fail the operation.
pub(crate) fn log_failure(plugin: &dyn Plugin, hook: &str, result: Result<()>) {
    if let Err(error) = result {
        tracing::warn!("plugin `{}`: {hook} failed: {error}", plugin.name());
    }
}

/// Runs one message hook on every plugin of `$active`, logging failures.
macro_rules! run_hooks {
    ($active:expr, $hook:ident($($arg:expr),*)) => {
        for plugin in $active.iter() {
            let result = plugin.$hook($($arg),*).await;
            $crate::client::plugin::log_failure(plugin.as_ref(), stringify!($hook), result);
        }
    };
}
pub(crate) use run_hooks;

/// The worker's lifecycle hooks, in the order the worker runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerStage {
    BeforeStart,
    AfterStart,
    BeforeStop,
    AfterStop,
}

/// Runs a worker lifecycle hook on every plugin. Start hooks stop at the first error and
/// return it; stop hooks log errors and go on.
pub(crate) async fn worker_stage(bus: &Bus, stage: WorkerStage) -> Result<()> {
    let Some(active) = bus.plugins().active() else {
        return Ok(());
    };
    for plugin in active.iter() {
        let result = match stage {
            WorkerStage::BeforeStart => plugin.before_worker_start(bus).await,
            WorkerStage::AfterStart => plugin.after_worker_start(bus).await,
            WorkerStage::BeforeStop => plugin.before_worker_stop(bus).await,
            WorkerStage::AfterStop => plugin.after_worker_stop(bus).await,
        };
        if let Err(error) = result {
            match stage {
                WorkerStage::BeforeStart | WorkerStage::AfterStart => {
                    tracing::error!("plugin `{}` failed at {stage:?}: {error}", plugin.name());
                    return Err(error);
                }
                WorkerStage::BeforeStop | WorkerStage::AfterStop => {
                    tracing::warn!("plugin `{}` failed at {stage:?}: {error}", plugin.name());
                }
            }
        }
    }
    Ok(())
}

impl Bus {
    /// Adds a plugin; its hooks run from now on, after those of plugins added before.
    pub fn add_plugin(&self, plugin: impl Plugin) {
        tracing::debug!(plugin = plugin.name(), "plugin added");
        self.plugins().add(Arc::new(plugin));
    }

    /// Whether a plugin called `name` was added (e.g. `internal_metrics`).
    pub fn has_plugin(&self, name: &str) -> bool {
        self.plugins().has(name)
    }
}

/// Adds the built-in plugins the configuration enables, registering the internal APIs they
/// fire events of.
pub(crate) fn install_builtin(bus: &Bus) -> Result<()> {
    let plugins = bus.config().plugins().clone();
    if !plugins.internal_state.enabled && !plugins.internal_metrics.enabled {
        return Ok(());
    }
    for api in [state::state_api(), metrics::metrics_api()] {
        let name = crate::api::Api::descriptor(&api).name;
        if bus.registry().get(&name).is_none() {
            bus.register(api)?;
        }
    }
    // Metrics first, so that the state plugin's events can say whether metrics are on.
    if plugins.internal_metrics.enabled {
        bus.add_plugin(metrics::MetricsPlugin::new());
    }
    if plugins.internal_state.enabled {
        bus.add_plugin(state::StatePlugin::new(
            plugins.internal_state.ping_enabled,
            plugins.internal_state.ping_interval.get().as_secs_f64(),
        ));
    }
    Ok(())
}

/// Seconds since the epoch, as a float (the peer's `timestamp` values).
pub(crate) fn timestamp() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs_f64())
        .unwrap_or(0.0)
}
