//! Readiness: whether every consumer of a worker is running, as `/readyz` reports it.
//!
//! Each consumer is named (one RPC consumer per RPC transport, one per listener and event
//! transport: subscriptions report their own) and reports their state as it changes: [`Readiness::starting`] when it starts one,
//! [`Readiness::running`] once it consumes, [`Readiness::failing`] when consuming fails
//! (a lost connection), [`Readiness::stopped`] when it ends. A worker is ready when it has
//! started and every consumer it started is running.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::util::lock;

/// The state of one consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConsumerState {
    /// Started, not consuming yet.
    Starting,
    /// Consuming.
    Running,
    /// Consuming failed; the worker retries.
    Failing {
        /// Why it failed.
        reason: String,
    },
    /// Ended (the worker is stopping, or the consumer had nothing to do).
    Stopped,
}

/// The readiness of one worker. Shared by the worker (which updates it) and the HTTP
/// endpoint (which reports it); cheap to update.
#[derive(Debug, Default)]
pub struct Readiness {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    worker: WorkerState,
    consumers: BTreeMap<String, ConsumerState>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum WorkerState {
    /// No worker runs in this process (yet).
    #[default]
    NotStarted,
    /// The worker started its consumers.
    Running,
    /// The worker was told to stop.
    Stopping,
}

/// What `/readyz` answers: whether the worker is ready and, if not, why.
#[derive(Debug, Clone, Serialize)]
pub struct ReadinessReport {
    /// True when the worker runs, Redis answers and every consumer is running.
    pub ready: bool,
    /// Why it is not ready (empty when ready).
    pub reasons: Vec<String>,
    /// Every consumer and its state.
    pub consumers: BTreeMap<String, ConsumerState>,
}

impl Readiness {
    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut lock(&self.state));
    }

    fn set(&self, consumer: &str, state: ConsumerState) {
        self.update(|s| {
            if s.consumers.get(consumer) != Some(&state) {
                s.consumers.insert(consumer.to_owned(), state);
            }
        });
    }

    /// The worker started all its consumers.
    pub fn worker_started(&self) {
        self.update(|s| s.worker = WorkerState::Running);
    }

    /// The worker was told to stop: it is no longer ready.
    pub fn worker_stopping(&self) {
        self.update(|s| s.worker = WorkerState::Stopping);
    }

    /// A consumer was started.
    pub fn starting(&self, consumer: &str) {
        self.set(consumer, ConsumerState::Starting);
    }

    /// A consumer consumes (called after each successful read: cheap when unchanged).
    pub fn running(&self, consumer: &str) {
        self.set(consumer, ConsumerState::Running);
    }

    /// A consumer cannot consume, for `reason`; the worker retries.
    pub fn failing(&self, consumer: &str, reason: impl std::fmt::Display) {
        self.set(
            consumer,
            ConsumerState::Failing {
                reason: reason.to_string(),
            },
        );
    }

    /// A consumer ended.
    pub fn stopped(&self, consumer: &str) {
        self.set(consumer, ConsumerState::Stopped);
    }

    /// The report, given whether Redis answered (`redis`: `Err(reason)` if it did not).
    pub fn report(&self, redis: Result<(), String>) -> ReadinessReport {
        let state = lock(&self.state);
        let mut reasons = Vec::new();
        match state.worker {
            WorkerState::NotStarted => reasons.push("the worker has not started".to_owned()),
            WorkerState::Stopping => reasons.push("the worker is stopping".to_owned()),
            WorkerState::Running => {}
        }
        if let Err(reason) = redis {
            reasons.push(format!("redis is unreachable: {reason}"));
        }
        for (name, consumer) in &state.consumers {
            match consumer {
                ConsumerState::Running => {}
                ConsumerState::Starting => reasons.push(format!("{name}: starting")),
                ConsumerState::Failing { reason } => {
                    reasons.push(format!("{name}: failing: {reason}"))
                }
                ConsumerState::Stopped => reasons.push(format!("{name}: stopped")),
            }
        }
        ReadinessReport {
            ready: reasons.is_empty(),
            reasons,
            consumers: state.consumers.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_started_reachable_and_every_consumer_runs() {
        let readiness = Readiness::default();
        let report = readiness.report(Ok(()));
        assert!(!report.ready);
        assert_eq!(report.reasons, ["the worker has not started"]);

        readiness.starting("rpcs auth");
        readiness.starting("listener a (auth)");
        readiness.worker_started();
        assert!(!readiness.report(Ok(())).ready);
        readiness.running("rpcs auth");
        readiness.running("listener a (auth)");
        let report = readiness.report(Ok(()));
        assert!(report.ready, "{:?}", report.reasons);

        let report = readiness.report(Err("connection refused".into()));
        assert_eq!(report.reasons, ["redis is unreachable: connection refused"]);

        readiness.failing("rpcs auth", "broken pipe");
        let report = readiness.report(Ok(()));
        assert_eq!(report.reasons, ["rpcs auth: failing: broken pipe"]);
        readiness.running("rpcs auth");
        assert!(readiness.report(Ok(())).ready);

        readiness.worker_stopping();
        readiness.stopped("listener a (auth)");
        let report = readiness.report(Ok(()));
        assert_eq!(
            report.reasons,
            ["the worker is stopping", "listener a (auth): stopped"]
        );
    }
}
