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
mod rpc;
pub mod tasks;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::client::Bus;
use crate::error::Result;

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
pub struct Worker {
    bus: Bus,
    features: Features,
    max_concurrency: usize,
    drain_timeout: Duration,
}

impl Worker {
    /// A worker for `bus` running every feature.
    pub fn new(bus: Bus) -> Self {
        Worker {
            bus,
            features: Features::default(),
            max_concurrency: 64,
            drain_timeout: Duration::from_secs(5),
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

    /// Runs until `shutdown` completes (e.g. a signal), then drains and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let stop = CancellationToken::new();
        self.log_startup();
        self.bus.run_hooks(false).await?;
        crate::schema::publish_at_start(&self.bus).await;
        crate::plugin::worker_stage(&self.bus, crate::plugin::WorkerStage::BeforeStart).await?;

        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(crate::schema::keep_fresh(self.bus.clone(), stop.clone()));
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

        if let Err(error) =
            crate::plugin::worker_stage(&self.bus, crate::plugin::WorkerStage::AfterStart).await
        {
            stop.cancel();
            while tasks.join_next().await.is_some() {}
            return Err(error);
        }

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
        let _ =
            crate::plugin::worker_stage(&self.bus, crate::plugin::WorkerStage::BeforeStop).await;
        stop.cancel();
        while let Some(finished) = tasks.join_next().await {
            if let Ok(Err(error)) = finished {
                tracing::warn!("while stopping: {error}");
            }
        }
        self.bus.run_hooks(true).await?;
        let _ = crate::plugin::worker_stage(&self.bus, crate::plugin::WorkerStage::AfterStop).await;
        tracing::info!("worker stopped");
        outcome
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
