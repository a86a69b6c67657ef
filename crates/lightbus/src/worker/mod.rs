//! The worker: serves the APIs registered on a [`Bus`] and runs its listeners until shutdown.
//!
//! [`Worker::run`] runs the on-start hooks, then starts each enabled feature (RPC serving,
//! event listeners, scheduled tasks) and waits for the shutdown signal. On shutdown it stops
//! taking new work, lets in-flight work finish (up to [`Worker::drain_timeout`]), runs the
//! after-stop hooks and returns.
//!
//! A worker never dies of bad data or a lost connection: undecodable messages are logged and
//! skipped, handler errors and panics become error results, and lost connections are
//! re-established with backoff.

mod events;
#[cfg(feature = "http")]
pub mod http;
mod rpc;
mod schema;
pub mod tasks;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::client::plugin::{worker_stage, WorkerStage};
use crate::client::Bus;
use crate::error::{Error, Result};

/// A part of the worker that `--only` / `--skip` can turn on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Serving the RPCs of registered APIs.
    Rpcs,
    /// Consuming events with registered listeners.
    Events,
    /// Running scheduled and background tasks.
    Tasks,
}

impl FromStr for Feature {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "rpcs" => Ok(Feature::Rpcs),
            "events" => Ok(Feature::Events),
            "tasks" => Ok(Feature::Tasks),
            other => Err(format!(
                "unknown feature `{other}` (expected rpcs, events or tasks)"
            )),
        }
    }
}

/// Which features a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Serve RPCs.
    pub rpcs: bool,
    /// Consume events.
    pub events: bool,
    /// Run tasks.
    pub tasks: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            rpcs: true,
            events: true,
            tasks: true,
        }
    }
}

impl Features {
    /// The features left by `--only` (if any are given, just those) and then `--skip`.
    pub fn select(only: &[Feature], skip: &[Feature]) -> Self {
        let enabled =
            |feature| (only.is_empty() || only.contains(&feature)) && !skip.contains(&feature);
        Features {
            rpcs: enabled(Feature::Rpcs),
            events: enabled(Feature::Events),
            tasks: enabled(Feature::Tasks),
        }
    }
}

/// Serves a bus until told to stop.
///
/// ```no_run
/// # async fn example(bus: lightbus::Bus) -> lightbus::Result<()> {
/// use lightbus::worker::Worker;
/// // In the foreground, until Ctrl-C:
/// Worker::new(bus.clone()).run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// // Or in the background, with a handle:
/// let worker = Worker::new(bus).spawn();
/// // ...
/// worker.stop().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a worker does nothing until run or spawned"]
pub struct Worker {
    bus: Bus,
    features: Features,
    max_concurrency: usize,
    drain_timeout: Duration,
    http: Option<std::net::SocketAddr>,
}

impl Worker {
    /// A worker for `bus` running every feature.
    pub fn new(bus: Bus) -> Self {
        Worker {
            bus,
            features: Features::default(),
            max_concurrency: 64,
            drain_timeout: Duration::from_secs(5),
            http: None,
        }
    }

    /// Runs only these features.
    pub fn features(mut self, features: Features) -> Self {
        self.features = features;
        self
    }

    /// The most RPCs executed at once (default 64).
    pub fn max_concurrency(mut self, limit: usize) -> Self {
        self.max_concurrency = limit.max(1);
        self
    }

    /// How long shutdown waits for in-flight work (default 5 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `addr` (see `worker::http`, feature
    /// `http`); default: the configuration's `observability.http`, else off.
    pub fn http(mut self, addr: Option<std::net::SocketAddr>) -> Self {
        self.http = addr;
        self
    }

    /// Runs until `shutdown` completes (e.g. a signal), then drains and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let stop = CancellationToken::new();
        self.log_startup();
        self.bus.run_hooks(false).await?;
        schema::publish_at_start(&self.bus).await;
        worker_stage(&self.bus, WorkerStage::BeforeStart).await?;

        let mut tasks = tokio::task::JoinSet::new();
        if let Some(addr) = self.http.or(self.bus.config().file.observability.http) {
            tasks.spawn(serve_http(self.bus.clone(), addr, stop.clone()).await?);
        }
        tasks.spawn(schema::keep_fresh(self.bus.clone(), stop.clone()));
        if self.features.rpcs {
            let server =
                rpc::RpcServer::new(self.bus.clone(), self.max_concurrency, self.drain_timeout);
            tasks.spawn(server.run(stop.clone()));
        }
        if self.features.events {
            let listeners = events::EventListeners::new(self.bus.clone(), self.drain_timeout);
            tasks.spawn(listeners.run(stop.clone()));
        } else if self.bus.listeners().len() > 0 {
            tracing::info!(
                "events feature off: {} event listener(s) not started",
                self.bus.listeners().len()
            );
        }
        if self.features.tasks {
            tasks.spawn(self::tasks::run(
                self.bus.clone(),
                stop.clone(),
                self.drain_timeout,
            ));
        } else {
            self::tasks::log_disabled(&self.bus);
        }

        if let Err(error) = worker_stage(&self.bus, WorkerStage::AfterStart).await {
            stop.cancel();
            while tasks.join_next().await.is_some() {}
            return Err(error);
        }

        self.bus.readiness().worker_started();

        // A component that returns `Ok` has nothing (left) to do, e.g. RPC serving without
        // registered APIs; the worker keeps running the others until the shutdown signal.
        tokio::pin!(shutdown);
        let outcome = loop {
            tokio::select! {
                () = &mut shutdown => {
                    tracing::info!("shutting down: no new work is taken, in-flight work finishes");
                    break Ok(());
                }
                Some(finished) = tasks.join_next() => match finished {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::error!("stopping the worker: {error}");
                        break Err(error);
                    }
                    Err(join_error) => {
                        tracing::error!("stopping the worker: a worker task failed: {join_error}");
                        break Ok(());
                    }
                },
            }
        };
        self.bus.readiness().worker_stopping();
        let _ = worker_stage(&self.bus, WorkerStage::BeforeStop).await;
        stop.cancel();
        while let Some(finished) = tasks.join_next().await {
            if let Ok(Err(error)) = finished {
                tracing::warn!("while stopping: {error}");
            }
        }
        self.bus.run_hooks(true).await?;
        let _ = worker_stage(&self.bus, WorkerStage::AfterStop).await;
        tracing::info!("worker stopped");
        outcome
    }

    /// Runs the worker in a task of its own until [`WorkerHandle::stop`] (or the handle is
    /// dropped, which stops it too).
    pub fn spawn(self) -> WorkerHandle {
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(async move { self.run(signal.cancelled_owned()).await });
        WorkerHandle {
            stop,
            task: Some(task),
        }
    }

    fn log_startup(&self) {
        let bus = &self.bus;
        tracing::info!(
            "Lightbus worker starting: service `{}`, process `{}`",
            bus.service_name(),
            bus.process_name()
        );
        tracing::info!("configuration: {}", bus.config().origin);
        for note in bus.config().notes() {
            tracing::warn!("configuration: {note}");
        }
        tracing::info!("schemas: {}", bus.schema().describe());
        let features = [
            ("rpcs", self.features.rpcs),
            ("events", self.features.events),
            ("tasks", self.features.tasks),
        ];
        let enabled: Vec<&str> = features
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect();
        tracing::info!("features: {}", enabled.join(", "));
        let apis = bus.registered_apis();
        if apis.is_empty() {
            tracing::info!("no APIs registered: this worker serves no RPCs");
        }
        for api in apis {
            let rpcs: Vec<&str> = api.rpcs.iter().map(|rpc| rpc.name.as_str()).collect();
            let events: Vec<&str> = api.events.iter().map(|event| event.name.as_str()).collect();
            tracing::info!(
                "API `{}`: rpcs [{}], events [{}]",
                api.name,
                rpcs.join(", "),
                events.join(", ")
            );
            match bus.transports_for(&api.name) {
                Ok(transports) => tracing::info!(
                    "  transports: {}; {}; {}",
                    transports.rpc.describe(),
                    transports.result.describe(),
                    transports.event.describe()
                ),
                Err(error) => tracing::warn!("  transports: {error}"),
            }
        }
    }
}

/// Binds the HTTP endpoint on `addr` and returns the future that serves it
/// until `stop` (see `http::serve`). Without the `http` feature, an error saying so.
async fn serve_http(
    bus: Bus,
    addr: std::net::SocketAddr,
    stop: tokio_util::sync::CancellationToken,
) -> Result<futures::future::BoxFuture<'static, Result<()>>> {
    #[cfg(feature = "http")]
    {
        use futures::FutureExt;
        Ok(http::serve(bus, addr, stop).await?.boxed())
    }
    #[cfg(not(feature = "http"))]
    {
        let _ = (bus, stop);
        Err(Error::Config(crate::config::ConfigError::Invalid {
            origin: "the worker".to_owned(),
            key: "observability.http".to_owned(),
            message: format!(
                "cannot serve HTTP on {addr}: lightbus was built without its `http` feature"
            ),
        }))
    }
}

/// A worker running in a task of its own (see [`Worker::spawn`]).
#[derive(Debug)]
pub struct WorkerHandle {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl WorkerHandle {
    /// Tells the worker to stop (as a shutdown signal would), without waiting.
    pub fn signal_stop(&self) {
        self.stop.cancel();
    }

    /// Stops the worker and waits until it has drained and returned.
    pub async fn stop(mut self) -> Result<()> {
        self.stop.cancel();
        self.join_inner().await
    }

    /// Waits until the worker returns by itself (a listener or task failure stops it).
    pub async fn join(mut self) -> Result<()> {
        self.join_inner().await
    }

    /// Whether the worker has returned.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|task| task.is_finished())
    }

    async fn join_inner(&mut self) -> Result<()> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(outcome) => outcome,
            // The worker catches every panic of user code; one here is a bug in it.
            Err(join_error) if join_error.is_panic() => {
                std::panic::resume_unwind(join_error.into_panic())
            }
            Err(_cancelled) => Err(Error::Closed),
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_and_skip_select_features() {
        assert_eq!(Features::select(&[], &[]), Features::default());
        let only_rpcs = Features::select(&[Feature::Rpcs], &[]);
        assert!(only_rpcs.rpcs && !only_rpcs.events && !only_rpcs.tasks);
        let skip_events = Features::select(&[], &[Feature::Events]);
        assert!(skip_events.rpcs && !skip_events.events && skip_events.tasks);
        assert!("bogus".parse::<Feature>().is_err());
    }
}
