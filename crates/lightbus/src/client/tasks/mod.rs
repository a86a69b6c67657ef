//! Adding scheduled and background tasks to a bus; a worker runs them (see
//! [`crate::worker::tasks`] for when and how, and what happens on errors and shutdown).

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::sync::Notify;

mod schedule;

pub(crate) use schedule::TaskFuture;
pub use schedule::{Cron, Every, IntoCron, OnTaskError, TaskOutcome};

use super::Bus;
use crate::error::{Error, NameKind, Result};
use crate::util::lock;

/// Starts one run of a recurring task.
pub(crate) type RecurringFn = Arc<dyn Fn(Bus) -> TaskFuture + Send + Sync>;
/// Starts a background task.
pub(crate) type BackgroundFn = Box<dyn FnOnce(Bus) -> TaskFuture + Send>;

/// When a recurring task runs.
pub(crate) enum Trigger {
    Every(Every),
    Cron(Box<Cron>),
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Every(every) => every.fmt(f),
            Trigger::Cron(cron) => cron.fmt(f),
        }
    }
}

/// A task run every interval or on a cron schedule.
pub(crate) struct RecurringTask {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) trigger: Trigger,
    pub(crate) run: RecurringFn,
}

/// A task run once, in the background.
pub(crate) struct BackgroundTask {
    pub(crate) name: String,
    pub(crate) run: BackgroundFn,
}

/// The tasks added to a bus, waiting for (or run by) a worker.
#[derive(Default)]
pub(crate) struct TaskRegistry {
    state: Mutex<State>,
    added: Notify,
}

#[derive(Default)]
struct State {
    next_id: u64,
    recurring: Vec<Arc<RecurringTask>>,
    background: Vec<BackgroundTask>,
}

impl TaskRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn check_name(state: &State, name: &str) -> Result<()> {
        let taken = state.recurring.iter().any(|task| task.name == name)
            || state.background.iter().any(|task| task.name == name);
        if taken {
            return Err(Error::Duplicate {
                kind: NameKind::Task,
                name: name.to_owned(),
                scope: "on this bus".to_owned(),
            });
        }
        Ok(())
    }

    fn add_recurring(&self, name: String, trigger: Trigger, run: RecurringFn) -> Result<()> {
        let mut state = self.lock();
        Self::check_name(&state, &name)?;
        let id = state.next_id;
        state.next_id += 1;
        state.recurring.push(Arc::new(RecurringTask {
            id,
            name,
            trigger,
            run,
        }));
        drop(state);
        self.added.notify_one();
        Ok(())
    }

    fn add_background(&self, name: String, run: BackgroundFn) -> Result<()> {
        let mut state = self.lock();
        Self::check_name(&state, &name)?;
        state.background.push(BackgroundTask { name, run });
        drop(state);
        self.added.notify_one();
        Ok(())
    }

    /// The recurring tasks not in `started` (which this adds them to), and every background
    /// task not yet taken (which are taken: each runs once).
    pub(crate) fn take_new(
        &self,
        started: &mut HashSet<u64>,
    ) -> (Vec<Arc<RecurringTask>>, Vec<BackgroundTask>) {
        let mut state = self.lock();
        let recurring = state
            .recurring
            .iter()
            .filter(|task| started.insert(task.id))
            .cloned()
            .collect();
        (recurring, std::mem::take(&mut state.background))
    }

    /// Completes when a task was added since the last call (or, the first time, ever).
    pub(crate) async fn added(&self) {
        self.added.notified().await;
    }

    /// How many recurring and not-yet-started background tasks there are.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.recurring.len(), state.background.len())
    }
}

impl Bus {
    /// Runs `task` every interval while a worker runs on this bus (upstream's
    /// `@bus.client.every`). `every` is a [`Duration`](std::time::Duration) or an [`Every`]
    /// with options (`also_run_immediately`, what errors do).
    ///
    /// The task gets the bus and returns `()` or a `Result` (see [`TaskOutcome`]); by default
    /// a failed or panicking run stops the worker. Runs never overlap. See
    /// [`crate::worker::tasks`] for the timing guarantees.
    ///
    /// Fails if `name` is already used by a task on this bus, or the interval is zero.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # fn setup(bus: &lightbus::Bus) -> lightbus::Result<()> {
    /// bus.every("purge_sessions", Duration::from_secs(60), |bus| async move {
    ///     let purged: u64 = bus.call("sessions.purge_expired", ()).await?;
    ///     println!("purged {purged} expired sessions");
    ///     Ok::<_, lightbus::Error>(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn every<F, Fut>(
        &self,
        name: impl Into<String>,
        every: impl Into<Every>,
        task: F,
    ) -> Result<()>
    where
        F: Fn(Bus) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutcome,
    {
        let name = name.into();
        let every = every.into();
        if every.interval().is_zero() {
            return Err(Error::InvalidSchedule {
                schedule: every.to_string(),
                reason: format!("task `{name}` needs an interval greater than zero"),
            });
        }
        let run: RecurringFn =
            Arc::new(move |bus| task(bus).map(TaskOutcome::into_outcome).boxed());
        self.task_registry()
            .add_recurring(name, Trigger::Every(every), run)
    }

    /// Runs `task` at the times of a cron schedule while a worker runs on this bus (upstream's
    /// `@bus.client.schedule`). `cron` is an expression such as `"0 3 * * *"` (five fields, or
    /// six with seconds first), in UTC, or a [`Cron`] with options (local time,
    /// `also_run_immediately`, what errors do).
    ///
    /// Errors, overlap and shutdown behave as for [`Bus::every`]; occurrences missed while a
    /// run was in progress are skipped.
    ///
    /// Fails if the expression does not parse ([`Error::InvalidSchedule`]) or `name` is
    /// already used by a task on this bus.
    ///
    /// ```no_run
    /// use lightbus::worker::tasks::Cron;
    /// # fn setup(bus: &lightbus::Bus) -> lightbus::Result<()> {
    /// bus.schedule("weekly_digest", "0 8 * * MON", |_bus| async { /* ... */ })?;
    /// bus.schedule("tick", Cron::new("*/5 * * * * *")?.local_time(), |_bus| async {})?;
    /// # Ok(()) }
    /// ```
    pub fn schedule<F, Fut>(
        &self,
        name: impl Into<String>,
        cron: impl IntoCron,
        task: F,
    ) -> Result<()>
    where
        F: Fn(Bus) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutcome,
    {
        let cron = cron.into_cron()?;
        let run: RecurringFn =
            Arc::new(move |bus| task(bus).map(TaskOutcome::into_outcome).boxed());
        self.task_registry()
            .add_recurring(name.into(), Trigger::Cron(Box::new(cron)), run)
    }

    /// Runs `task` once in the background while a worker runs on this bus (upstream's
    /// `add_background_task`): it starts when the worker starts (or at once, if added while a
    /// worker runs, e.g. from an on-start hook) and is cancelled when the worker stops.
    ///
    /// If it fails or panics, the worker stops with [`Error::Task`] naming it. If it returns
    /// normally, it just ends.
    ///
    /// Fails if `name` is already used by a task on this bus.
    ///
    /// ```no_run
    /// # fn setup(bus: &lightbus::Bus) -> lightbus::Result<()> {
    /// bus.on_start(|bus| async move {
    ///     bus.background("watch_queue", |bus| async move {
    ///         loop {
    ///             let depth: u64 = bus.call("queue.depth", ()).await?;
    ///             println!("queue depth: {depth}");
    ///             tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    ///         }
    ///         #[allow(unreachable_code)]
    ///         Ok::<_, lightbus::Error>(())
    ///     })
    /// });
    /// # Ok(()) }
    /// ```
    pub fn background<F, Fut>(&self, name: impl Into<String>, task: F) -> Result<()>
    where
        F: FnOnce(Bus) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutcome,
    {
        let run: BackgroundFn =
            Box::new(move |bus| task(bus).map(TaskOutcome::into_outcome).boxed());
        self.task_registry().add_background(name.into(), run)
    }
}
