//! When tasks run: intervals ([`Every`]), cron schedules ([`Cron`]), and what a task returns
//! ([`TaskOutcome`]). The worker's task runner (`crate::worker::tasks`) follows these.
//!
//! ## Why `croner` for cron expressions
//!
//! It is actively maintained, accepts the standard five-field crontab syntax operators know
//! (`0 3 * * MON-FRI`) as well as an optional leading seconds field (`*/10 * * * * *`),
//! follows Vixie cron's rules (a day-of-month and a day-of-week restriction match either), has
//! the usual extensions (`L`, `W`, `#`, `@daily`), and computes occurrences correctly across
//! daylight-saving changes. The `cron` crate, the other common choice, requires the seconds
//! field and does not follow Vixie cron's day rules.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use futures::future::BoxFuture;

use crate::error::{Error, Result};

/// What happens when a run of a recurring task fails (returns an error or panics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnTaskError {
    /// Stop the worker with [`Error::Task`] (the default, as upstream).
    #[default]
    StopWorker,
    /// Log the failure at error level and run the task again at its next time.
    LogAndContinue,
}

/// An interval for [`Bus::every`](crate::Bus::every): run every `interval`, timed from the start of one run to
/// the start of the next.
///
/// A plain [`Duration`] converts into an `Every` with the default options.
///
/// ```
/// use std::time::Duration;
/// use lightbus::worker::tasks::{Every, OnTaskError};
///
/// let every = Every::seconds(30)
///     .also_run_immediately()
///     .on_error(OnTaskError::LogAndContinue);
/// assert_eq!(every.interval(), Duration::from_secs(30));
/// assert_eq!(Every::from(Duration::from_secs(2)).interval(), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every {
    pub(crate) interval: Duration,
    pub(crate) also_run_immediately: bool,
    pub(crate) on_error: OnTaskError,
}

impl Every {
    /// Every `interval` (which must not be zero: [`Bus::every`](crate::Bus::every) rejects it).
    pub fn new(interval: Duration) -> Self {
        Every {
            interval,
            also_run_immediately: false,
            on_error: OnTaskError::default(),
        }
    }

    /// Every `n` seconds.
    pub fn seconds(n: u64) -> Self {
        Every::new(Duration::from_secs(n))
    }

    /// Every `n` minutes.
    pub fn minutes(n: u64) -> Self {
        Every::new(Duration::from_secs(n.saturating_mul(60)))
    }

    /// Every `n` hours.
    pub fn hours(n: u64) -> Self {
        Every::new(Duration::from_secs(n.saturating_mul(3600)))
    }

    /// Every `n` days (of 24 hours).
    pub fn days(n: u64) -> Self {
        Every::new(Duration::from_secs(n.saturating_mul(86_400)))
    }

    /// Also run as soon as the worker starts, instead of one interval later.
    pub fn also_run_immediately(mut self) -> Self {
        self.also_run_immediately = true;
        self
    }

    /// What a failed run does (default: [`OnTaskError::StopWorker`]).
    pub fn on_error(mut self, policy: OnTaskError) -> Self {
        self.on_error = policy;
        self
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

impl From<Duration> for Every {
    fn from(interval: Duration) -> Self {
        Every::new(interval)
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "every {:?}", self.interval)?;
        if self.also_run_immediately {
            f.write_str(", and at start")?;
        }
        Ok(())
    }
}

/// A cron schedule for [`Bus::schedule`](crate::Bus::schedule): five fields (minute, hour, day of month, month,
/// day of week), or six with a leading seconds field; times in UTC unless
/// [`local_time`](Cron::local_time).
///
/// ```
/// use lightbus::worker::tasks::Cron;
///
/// let weekday_mornings = Cron::new("30 7 * * MON-FRI").unwrap();
/// assert_eq!(weekday_mornings.expression(), "30 7 * * MON-FRI");
/// let every_ten_seconds: Cron = "*/10 * * * * *".parse().unwrap();
/// # let _ = every_ten_seconds;
/// assert!(Cron::new("61 * * * *").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Cron {
    pub(crate) schedule: croner::Cron,
    pub(crate) expression: String,
    pub(crate) local: bool,
    pub(crate) also_run_immediately: bool,
    pub(crate) on_error: OnTaskError,
}

impl Cron {
    /// Parses a cron expression. Fails with [`Error::InvalidSchedule`] saying what is wrong.
    pub fn new(expression: &str) -> Result<Self> {
        let schedule = croner::Cron::from_str(expression).map_err(|e| Error::InvalidSchedule {
            schedule: expression.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Cron {
            schedule,
            expression: expression.to_owned(),
            local: false,
            also_run_immediately: false,
            on_error: OnTaskError::default(),
        })
    }

    /// Reads the expression's times in the machine's local time zone instead of UTC.
    pub fn local_time(mut self) -> Self {
        self.local = true;
        self
    }

    /// Also run as soon as the worker starts, besides at the scheduled times.
    pub fn also_run_immediately(mut self) -> Self {
        self.also_run_immediately = true;
        self
    }

    /// What a failed run does (default: [`OnTaskError::StopWorker`]).
    pub fn on_error(mut self, policy: OnTaskError) -> Self {
        self.on_error = policy;
        self
    }

    /// The expression, as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first scheduled time strictly after `time`, if the schedule has one.
    pub(crate) fn next_after(&self, time: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.local {
            self.schedule
                .find_next_occurrence(&time.with_timezone(&Local), false)
                .ok()
                .map(|next| next.with_timezone(&Utc))
        } else {
            self.schedule.find_next_occurrence(&time, false).ok()
        }
    }
}

impl FromStr for Cron {
    type Err = Error;

    fn from_str(expression: &str) -> Result<Self> {
        Cron::new(expression)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let zone = if self.local { "local time" } else { "UTC" };
        write!(f, "on cron `{}` ({zone})", self.expression)?;
        if self.also_run_immediately {
            f.write_str(", and at start")?;
        }
        Ok(())
    }
}

/// Something [`Bus::schedule`](crate::Bus::schedule) accepts as a schedule: a [`Cron`], or an expression as text.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a cron schedule",
    label = "expected a cron expression (`\"0 3 * * *\"`) or a `Cron`"
)]
pub trait IntoCron {
    /// Parses or passes on the schedule.
    fn into_cron(self) -> Result<Cron>;
}

impl IntoCron for Cron {
    fn into_cron(self) -> Result<Cron> {
        Ok(self)
    }
}

impl IntoCron for &str {
    fn into_cron(self) -> Result<Cron> {
        Cron::new(self)
    }
}

impl IntoCron for String {
    fn into_cron(self) -> Result<Cron> {
        Cron::new(&self)
    }
}

/// What a task's future may return: `()`, or a `Result<(), E>` whose error is anything
/// that converts into a boxed error (`lightbus::Error`, `std::io::Error`, `String`, `&str`,
/// `anyhow::Error`, ...). An error's text, with its chain of causes, names the failure.
#[diagnostic::on_unimplemented(
    message = "a task must return `()` or `Result<(), E>` with `E` convertible into a boxed error, not `{Self}`",
    label = "this task's output"
)]
pub trait TaskOutcome {
    /// `Err` with the failure's text if the run failed.
    fn into_outcome(self) -> std::result::Result<(), String>;
}

impl TaskOutcome for () {
    fn into_outcome(self) -> std::result::Result<(), String> {
        Ok(())
    }
}

impl<E> TaskOutcome for std::result::Result<(), E>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn into_outcome(self) -> std::result::Result<(), String> {
        self.map_err(|error| {
            let error: Box<dyn std::error::Error + Send + Sync> = error.into();
            let mut text = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        })
    }
}

/// A task body as stored on the bus: starts one run.
pub(crate) type TaskFuture = BoxFuture<'static, std::result::Result<(), String>>;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cron_accepts_five_or_six_fields_and_names_errors() {
        let cron = Cron::new("0 3 * * *").unwrap();
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        assert_eq!(
            cron.next_after(at),
            Some(Utc.with_ymd_and_hms(2024, 5, 2, 3, 0, 0).unwrap())
        );
        let seconds = Cron::new("*/10 * * * * *").unwrap();
        assert_eq!(
            seconds.next_after(at),
            Some(Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 10).unwrap())
        );
        let err = Cron::new("not a cron").unwrap_err().to_string();
        assert!(err.contains("`not a cron`"), "{err}");
    }

    #[test]
    fn cron_occurrences_are_strictly_after_the_given_time() {
        let cron = Cron::new("* * * * * *").unwrap();
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        assert_eq!(
            cron.next_after(at),
            Some(Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 1).unwrap())
        );
        let later = at + chrono::Duration::milliseconds(400);
        assert_eq!(
            cron.next_after(later),
            Some(Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 1).unwrap())
        );
    }

    #[test]
    fn outcomes_carry_the_error_chain() {
        assert_eq!(().into_outcome(), Ok(()));
        assert_eq!(Err::<(), _>("nope").into_outcome(), Err("nope".to_owned()));
        let io = std::io::Error::other("disk full");
        let err = Error::Io(io);
        assert_eq!(
            Err::<(), _>(err).into_outcome(),
            Err("disk full".to_owned())
        );
    }
}
