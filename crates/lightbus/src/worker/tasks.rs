//! Scheduled and background tasks: work a worker runs besides serving RPCs and events.
//!
//! Tasks are added on the [`Bus`] (usually in the setup function or an on-start hook) and run
//! by a [`Worker`](super::Worker) whose `tasks` feature is on (`--only`/`--skip tasks`):
//!
//! - [`Bus::every`]: every interval ([`Every`]), upstream's `@bus.client.every(...)`;
//! - [`Bus::schedule`]: on a cron schedule ([`Cron`]), upstream's `@bus.client.schedule(...)`;
//! - [`Bus::background`]: once, for as long as it likes, upstream's `add_background_task`.
//!
//! ```no_run
//! use lightbus::worker::tasks::{Cron, Every};
//!
//! # fn setup(bus: &lightbus::Bus) -> lightbus::Result<()> {
//! bus.every("refresh_rates", Every::minutes(5).also_run_immediately(), |bus| async move {
//!     let rates: serde_json::Value = bus.call("rates.latest", ()).await?;
//!     println!("{rates}");
//!     Ok::<_, lightbus::Error>(())
//! })?;
//! bus.schedule("nightly_report", "0 3 * * *", |_bus| async { /* ... */ })?;
//! bus.schedule("heartbeat", Cron::new("*/10 * * * * *")?.local_time(), |_bus| async {})?;
//! let (audit, mut lines) = tokio::sync::mpsc::channel::<String>(100);
//! bus.background("audit_writer", |_bus| async move {
//!     while let Some(line) = lines.recv().await {
//!         println!("audit: {line}");
//!     }
//! })?;
//! # drop(audit);
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//!
//! - **No overlap.** Runs of one recurring task never overlap: the next run is scheduled only
//!   after the current one ends. An interval task that overruns its interval runs again as
//!   soon as it ends (as upstream's does); a cron task skips the occurrences it missed and
//!   runs at the next one after it ends. Missed runs are never made up in a burst.
//! - **Interval timing** is measured from the start of one run to the start of the next, so
//!   a task's own duration does not stretch its period. The first run is one interval after
//!   the worker starts, or immediately with `also_run_immediately`.
//! - **Cron times** are wall-clock times in UTC, or in the machine's local time zone with
//!   [`Cron::local_time`]. A run never starts before its time, and each occurrence runs at
//!   most once even if the clock is adjusted backwards.
//! - **Errors stop the worker**, as upstream's do: a background task that fails or panics, and
//!   by default a recurring task whose run fails or panics, stops the worker, which returns
//!   [`Error::Task`] naming the task (`lightbus run` prints it and exits non-zero). A
//!   recurring task may instead log its failures and carry on:
//!   [`OnTaskError::LogAndContinue`]. A background task that returns normally just ends.
//! - **Shutdown.** When the worker stops, background tasks are cancelled at once (their
//!   futures are dropped at their current `.await`); recurring tasks start no new run, and a
//!   run in progress may finish within the worker's drain timeout, after which it is
//!   cancelled too. Nothing is left running once [`Worker::run`](super::Worker::run) returns.
//! - **Late additions.** Tasks added while a worker runs (from a hook, an RPC handler or
//!   another task) start at once. Recurring tasks are kept on the bus and run again by the
//!   next worker on the same bus; a background task runs once, in the first worker to start
//!   after it was added.
//!

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use crate::client::tasks::{Cron, Every, IntoCron, OnTaskError, TaskOutcome};
use crate::client::tasks::{RecurringTask, TaskFuture, Trigger};
use crate::client::Bus;
use crate::error::{Error, Result};
use crate::util::panic_text;

/// Runs one run of a task, turning an error into `failed: …` and a panic (while creating or
/// polling the future) into `panicked: …`.
async fn run_once(start: impl FnOnce() -> TaskFuture) -> std::result::Result<(), String> {
    let future = std::panic::catch_unwind(AssertUnwindSafe(start))
        .map_err(|panic| format!("panicked: {}", panic_text(panic.as_ref())))?;
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(outcome) => outcome.map_err(|error| format!("failed: {error}")),
        Err(panic) => Err(format!("panicked: {}", panic_text(panic.as_ref()))),
    }
}

/// How a spawned task ended: `Err` stops the worker.
type Ended = Result<String>;

/// Runs the bus's tasks until `stop`, then shuts them down as the module documentation says.
/// Returns the first error that must stop the worker.
pub(crate) async fn run(bus: Bus, stop: CancellationToken, drain_timeout: Duration) -> Result<()> {
    // A child token: stopping the tasks after a failure leaves stopping the rest to the worker.
    let stop = stop.child_token();
    let registry = bus.task_registry();
    let mut recurring: JoinSet<Ended> = JoinSet::new();
    let mut background: JoinSet<Ended> = JoinSet::new();
    let mut started = HashSet::new();
    let failure = loop {
        let (new_recurring, new_background) = registry.take_new(&mut started);
        for task in new_recurring {
            tracing::info!("task `{}` runs {}", task.name, task.trigger);
            recurring.spawn(run_recurring(bus.clone(), task, stop.clone()));
        }
        for task in new_background {
            tracing::info!("background task `{}` started", task.name);
            let (name, start, bus) = (task.name, task.run, bus.clone());
            background.spawn(async move {
                match run_once(move || start(bus)).await {
                    Ok(()) => Ok(name),
                    Err(reason) => Err(Error::Task { name, reason }),
                }
            });
        }
        tokio::select! {
            () = stop.cancelled() => break None,
            () = registry.added() => {}
            Some(ended) = recurring.join_next() => {
                if let Some(error) = failed(ended, "task") { break Some(error) }
            }
            Some(ended) = background.join_next() => {
                if let Some(error) = failed(ended, "background task") { break Some(error) }
            }
        }
    };
    stop.cancel();
    background.shutdown().await;
    let drained = tokio::time::timeout(drain_timeout, async {
        while let Some(ended) = recurring.join_next().await {
            if let Some(error) = failed(ended, "task") {
                tracing::warn!("while stopping: {error}");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "cancelling {} task run(s) still in progress after {drain_timeout:?}",
            recurring.len()
        );
        recurring.shutdown().await;
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The error in how a spawned task ended, if any (logging a normal end).
fn failed(ended: std::result::Result<Ended, tokio::task::JoinError>, kind: &str) -> Option<Error> {
    match ended {
        Ok(Ok(name)) => {
            tracing::info!("{kind} `{name}` ended");
            None
        }
        Ok(Err(error)) => Some(error),
        // Panics are caught inside; a cancelled task was cancelled by us.
        Err(join_error) => {
            if join_error.is_panic() {
                Some(Error::Task {
                    name: "(unknown)".to_owned(),
                    reason: format!("panicked: {join_error}"),
                })
            } else {
                None
            }
        }
    }
}

/// Runs a recurring task until `stop`; returns `Err` for a failure that stops the worker.
async fn run_recurring(bus: Bus, task: Arc<RecurringTask>, stop: CancellationToken) -> Ended {
    let (mut run_now, on_error) = match &task.trigger {
        Trigger::Every(every) => (every.also_run_immediately, every.on_error),
        Trigger::Cron(cron) => (cron.also_run_immediately, cron.on_error),
    };
    let mut next_start = match &task.trigger {
        Trigger::Every(every) => Instant::now() + every.interval,
        Trigger::Cron(_) => Instant::now(),
    };
    // The last cron occurrence run, so that none runs twice if the clock goes back.
    let mut last_occurrence: Option<DateTime<Utc>> = None;
    loop {
        if !run_now {
            let due = match &task.trigger {
                Trigger::Every(_) => {
                    // An overrunning run is followed at once by the next: `next_start` passed.
                    tokio::select! {
                        () = stop.cancelled() => false,
                        () = tokio::time::sleep_until(next_start) => true,
                    }
                }
                Trigger::Cron(cron) => {
                    let after = last_occurrence.map_or_else(Utc::now, |last| last.max(Utc::now()));
                    match cron.next_after(after) {
                        Some(occurrence) => {
                            last_occurrence = Some(occurrence);
                            wait_for_wall_clock(occurrence, &stop).await
                        }
                        None => {
                            tracing::warn!(
                                "task `{}` ({cron}) has no further occurrence: it will not run \
                                 again",
                                task.name
                            );
                            stop.cancelled().await;
                            false
                        }
                    }
                }
            };
            if !due {
                return Ok(task.name.clone());
            }
        }
        run_now = false;
        let started = Instant::now();
        if let Trigger::Every(every) = &task.trigger {
            next_start = started + every.interval;
        }
        tracing::debug!("task `{}` running", task.name);
        let (run, bus) = (task.run.clone(), bus.clone());
        match run_once(move || run(bus)).await {
            Ok(()) => tracing::debug!("task `{}` ran in {:?}", task.name, started.elapsed()),
            Err(reason) => match on_error {
                OnTaskError::StopWorker => {
                    return Err(Error::Task {
                        name: task.name.clone(),
                        reason,
                    })
                }
                OnTaskError::LogAndContinue => {
                    tracing::error!("task `{}` {reason}; it will run again", task.name);
                }
            },
        }
    }
}

/// Sleeps until the wall clock reaches `time` (never returning early, as the monotonic and
/// wall clocks may drift apart); false if `stop` came first.
async fn wait_for_wall_clock(time: DateTime<Utc>, stop: &CancellationToken) -> bool {
    loop {
        let remaining = (time - Utc::now()).to_std().unwrap_or_default();
        if remaining.is_zero() {
            return true;
        }
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(remaining) => {}
        }
    }
}

/// Logs, for a worker whose `tasks` feature is off, what it will not run.
pub(crate) fn log_disabled(bus: &Bus) {
    let (recurring, background) = bus.task_registry().counts();
    if recurring + background > 0 {
        tracing::info!(
            "the tasks feature is off: {recurring} recurring and {background} background task(s) \
             will not run"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_run_reports_errors_and_panics() {
        assert_eq!(run_once(|| async { Ok(()) }.boxed()).await, Ok(()));
        let err = run_once(|| async { Err("bad".to_owned()) }.boxed()).await;
        assert_eq!(err, Err("failed: bad".to_owned()));
        let err = run_once(|| async { panic!("boom") }.boxed()).await;
        assert_eq!(err, Err("panicked: boom".to_owned()));
        let err = run_once(|| panic!("early")).await;
        assert_eq!(err, Err("panicked: early".to_owned()));
    }
}
