//! Running event listeners: one [`Subscription`] per listener, its events handed to the
//! listener's handler.
//!
//! Each listener reads the streams of all its APIs through one subscription (one blocking
//! read per transport, whatever the number of APIs) and handles at most `concurrency`
//! events at once (default 1: one after the other, in stream order). The subscription reads
//! in the background whatever the handlers are doing; the listener takes its next event
//! from it only once a concurrency slot is free, so an event handed out is one a handler
//! starts on at once, and events waiting behind slow handlers are kept from being reclaimed
//! by other processes (see `Settle::handed_out`). What happens to an event after its
//! handler ran:
//!
//! | handler outcome | settlement |
//! |---|---|
//! | success | acknowledged |
//! | error or panic, [`OnError::Shutdown`] | left unacknowledged; the worker stops with [`Error::ListenerFailed`] |
//! | error or panic, [`OnError::AckAndLog`] | logged, acknowledged |
//! | error or panic on delivery `max_deliveries` (either policy) | copied to the dead-letter stream with the failure and the count, acknowledged |
//! | parameters do not fit the listener's event type, or break the event's schema | copied to the dead-letter stream, acknowledged |
//!
//! **Poison events**: the transport counts deliveries (Redis: the consumer group's counter,
//! which survives restarts), so an event whose handler keeps failing under
//! [`OnError::Shutdown`] stops the worker at most `max_deliveries - 1` times; its next
//! delivery, if it fails too, is dead-lettered and the listener moves on. Deliveries after
//! the second wait before the handler runs (1 s, doubling per delivery, at most 30 s; a
//! stopping worker leaves the event for later rather than wait), so a crash loop is never a
//! hot loop.
//!
//! Guarantees: an event is acknowledged only after its handler finished, so it is never lost
//! to a crash, a kill or a lost connection (it is delivered again: at least once). Bad data
//! never stops a worker: an event that does not fit is dead-lettered, not treated as a
//! handler failure. A lost connection pauses the listener, whose subscription retries with
//! a back-off capped at the transport's `consumption_restart_delay`. Acknowledgements are
//! sent while the next events are handled; one that fails makes the subscription deliver
//! the event again. On shutdown no new read starts; events already read are still handled,
//! within the drain timeout, and whatever is left stays unacknowledged for the next start.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::listeners::{HandlerOutcome, ListenerSpec};
use crate::client::plugin::run_hooks;
use crate::client::{Bus, Delivery, Settler, SubscribeOptions, Subscription};
use crate::error::{Direction, Error, Result, Target};
use crate::listener::OnError;
use crate::message::EventMessage;
use crate::observe::metrics::{self, Outcome};
use crate::observe::trace;
use crate::util::{excerpt, excerpt_owned, lock, panic_text};
use tracing::Instrument;

/// How many settlements may be under way at once per listener.
const SETTLING_AT_ONCE: usize = 256;

/// The most futures `futures::future::join_all` joins without a task for each (its
/// `SMALL`, 30 in futures-util 0.3).
const JOINED_PLAINLY: usize = 30;

// `settle_all` joins a batch as groups of groups, each within `JOINED_PLAINLY`.
const _: () = assert!(SETTLING_AT_ONCE <= JOINED_PLAINLY * JOINED_PLAINLY);

/// The wait before the third delivery of an event; it doubles with each later one.
const REDELIVERY_DELAY: Duration = Duration::from_secs(1);
/// The longest wait before a delivery.
const MAX_REDELIVERY_DELAY: Duration = Duration::from_secs(30);

/// How long to wait before handling the `deliveries`th delivery of an event: none for the
/// first two (a first failure may be a fluke, a redelivery after a crash should be prompt),
/// then [`REDELIVERY_DELAY`] doubling, capped at [`MAX_REDELIVERY_DELAY`].
fn redelivery_delay(deliveries: u32) -> Duration {
    if deliveries <= 2 {
        return Duration::ZERO;
    }
    let doublings = (deliveries - 3).min(16);
    REDELIVERY_DELAY
        .saturating_mul(1 << doublings)
        .min(MAX_REDELIVERY_DELAY)
}

/// The worker's event component: runs every listener of the bus until stopped.
pub(crate) struct EventListeners {
    bus: Bus,
    drain_timeout: Duration,
}

impl EventListeners {
    pub(crate) fn new(bus: Bus, drain_timeout: Duration) -> Self {
        EventListeners { bus, drain_timeout }
    }

    /// Runs until `stop` is cancelled or a listener fails under [`OnError::Shutdown`] (then
    /// returns its [`Error::ListenerFailed`]). Listeners added meanwhile start at once.
    pub(crate) async fn run(self, stop: CancellationToken) -> Result<()> {
        let (initial, mut added) = self.bus.listeners().start();
        let local = stop.child_token();
        let mut listeners = JoinSet::new();
        let mut names = HashMap::new();
        if initial.is_empty() {
            tracing::debug!("no event listeners set up (yet)");
        } else {
            tracing::info!("starting {} event listener(s)", initial.len());
            warn_if_groups_are_new_per_start(&self.bus, &initial);
        }
        let mut outcome = Ok(());
        for spec in initial {
            if let Err(error) = self.start(&mut listeners, &mut names, spec, &local) {
                outcome = Err(error);
                break;
            }
        }
        if outcome.is_ok() {
            outcome = loop {
                tokio::select! {
                    () = local.cancelled() => break Ok(()),
                    Some(spec) = added.recv() => {
                        if let Err(error) = self.start(&mut listeners, &mut names, spec, &local) {
                            break Err(error);
                        }
                    }
                    Some(done) = listeners.join_next_with_id() => match done {
                        Ok((_, Ok(()))) => {}
                        Ok((_, Err(error))) => break Err(error),
                        Err(join_error) => {
                            let listener = names.get(&join_error.id()).cloned().unwrap_or_default();
                            break Err(Error::ListenerFailed {
                                listener,
                                event: String::new(),
                                native_id: String::new(),
                                message: format!("its task ended abnormally: {join_error}"),
                            });
                        }
                    },
                }
            };
        }
        self.bus.listeners().stop();
        local.cancel();
        while let Some(done) = listeners.join_next().await {
            if let Ok(Err(error)) = done {
                tracing::warn!("while stopping listeners: {error}");
            }
        }
        outcome
    }

    /// Starts one listener on its own subscription.
    fn start(
        &self,
        listeners: &mut JoinSet<Result<()>>,
        names: &mut HashMap<tokio::task::Id, String>,
        spec: Arc<ListenerSpec>,
        stop: &CancellationToken,
    ) -> Result<()> {
        let options = SubscribeOptions::new().since(spec.since.clone());
        let subscription = self
            .bus
            .subscribe_pairs(&spec.name, spec.events.clone(), options)?;
        let running = Arc::new(RunningListener {
            bus: self.bus.clone(),
            spec: spec.clone(),
            failure: Mutex::new(None),
            failed: CancellationToken::new(),
            stop: stop.clone(),
        });
        let handle = listeners.spawn(running.run(subscription, stop.clone(), self.drain_timeout));
        names.insert(handle.id(), spec.name.clone());
        Ok(())
    }
}

/// One listener while it runs.
struct RunningListener {
    bus: Bus,
    spec: Arc<ListenerSpec>,
    /// Set when a handler failed under [`OnError::Shutdown`].
    failure: Mutex<Option<Error>>,
    failed: CancellationToken,
    /// Cancelled when the worker stops.
    stop: CancellationToken,
}

/// How a handled event is settled.
enum Settlement {
    Ack,
    DeadLetter(String),
    /// Left unacknowledged, to be delivered again.
    Leave,
}

/// An event handled, on its way to being settled.
struct Handled {
    settler: Settler,
    settlement: Settlement,
    /// The event, kept for the plugins' `after_event_handling` hook (only when plugins run).
    /// Boxed: a `Handled` is moved several times on its way to being settled, and without
    /// plugins this is the larger part of it (callgrind, `lightbus bench listen`: ~500
    /// instructions per event of copies).
    for_plugins: Option<Box<(EventMessage, Option<String>)>>,
}

impl Handled {
    /// An event not handled (the worker stopped first), left to be delivered again.
    fn left(settler: Settler) -> Self {
        Handled {
            settler,
            settlement: Settlement::Leave,
            for_plugins: None,
        }
    }
}

impl RunningListener {
    fn fail(&self, error: Error) {
        let mut failure = lock(&self.failure);
        if failure.is_none() {
            *failure = Some(error);
        }
        self.failed.cancel();
    }

    /// Handles the subscription's deliveries until `stop`, or until a handler fails under
    /// [`OnError::Shutdown`]; then drains as the module docs say.
    async fn run(
        self: Arc<Self>,
        mut subscription: Subscription,
        stop: CancellationToken,
        drain_timeout: Duration,
    ) -> Result<()> {
        let (settle, settled) = mpsc::unbounded_channel();
        let settler = tokio::spawn(self.clone().settle_all(settled));
        // Concurrency slots; none for a listener of concurrency 1, which handles inline.
        let slots =
            (self.spec.concurrency > 1).then(|| Arc::new(Semaphore::new(self.spec.concurrency)));
        let in_flight = TaskTracker::new();
        let mut failing = false;
        // Made once, not per event: each one made registers with its token's `Notify` when
        // first polled, and unregisters when dropped (callgrind, `lightbus bench listen`:
        // four of them per event were ~1.3k instructions).
        let stopped = stop.cancelled();
        let failed = self.failed.cancelled();
        tokio::pin!(stopped, failed);
        loop {
            let permit = tokio::select! {
                biased;
                () = &mut stopped => break,
                () = &mut failed => break,
                permit = free_slot(slots.as_ref()) => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let next = tokio::select! {
                biased;
                () = &mut stopped => break,
                () = &mut failed => break,
                next = subscription.next() => next,
            };
            let delivery = match next {
                None => break,
                Some(Err(error)) => {
                    tracing::warn!(
                        listener = %self.spec.name,
                        "cannot consume events: {error}; retrying"
                    );
                    failing = true;
                    continue;
                }
                Some(Ok(delivery)) => delivery,
            };
            if failing {
                tracing::info!(listener = %self.spec.name, "consuming events again");
                failing = false;
            }
            if !self.dispatch(delivery, permit, &in_flight, &settle).await {
                break;
            }
        }
        subscription.close();
        if !self.failed.is_cancelled() {
            // Events already read are still handled, within the drain timeout.
            let deadline = tokio::time::Instant::now() + drain_timeout;
            loop {
                let Ok(Ok(permit)) =
                    tokio::time::timeout_at(deadline, free_slot(slots.as_ref())).await
                else {
                    break;
                };
                let Ok(Some(Ok(delivery))) =
                    tokio::time::timeout_at(deadline, subscription.next()).await
                else {
                    break;
                };
                if self.failed.is_cancelled()
                    || !self.dispatch(delivery, permit, &in_flight, &settle).await
                {
                    break;
                }
            }
        }
        drop(subscription);
        in_flight.close();
        if !in_flight.is_empty() {
            tracing::info!(listener = %self.spec.name, "waiting for {} event(s) in flight", in_flight.len());
        }
        if tokio::time::timeout(drain_timeout, in_flight.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                listener = %self.spec.name,
                "{} event(s) still being handled after {drain_timeout:?}; abandoning them (they \
                 stay unacknowledged and will be delivered again)",
                in_flight.len()
            );
        }
        drop(settle);
        let _ = settler.await;
        match lock(&self.failure).take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Handles one delivery: inline without a `permit` (a listener of concurrency 1), else
    /// in a task of its own holding the permit (its concurrency slot). False if the
    /// listener must stop.
    async fn dispatch(
        self: &Arc<Self>,
        delivery: Delivery,
        permit: Option<OwnedSemaphorePermit>,
        in_flight: &TaskTracker,
        settle: &mpsc::UnboundedSender<Handled>,
    ) -> bool {
        let Some(permit) = permit else {
            let span = trace::handle_span(&self.spec.name, delivery.message());
            let handled = self.handle(delivery).instrument(span).await;
            return settle.send(handled).is_ok() && !self.failed.is_cancelled();
        };
        if self.failed.is_cancelled() {
            return false; // the delivery is left: delivered again later
        }
        let listener = self.clone();
        let settle = settle.clone();
        let span = trace::handle_span(&self.spec.name, delivery.message());
        in_flight.spawn(
            async move {
                let handled = listener.handle(delivery).await;
                drop(permit);
                let _ = settle.send(handled);
            }
            .instrument(span),
        );
        true
    }

    /// Runs the handler on one event and decides how to settle it.
    async fn handle(&self, delivery: Delivery) -> Handled {
        let spec = &self.spec;
        let (message, settler) = delivery.into_parts();
        let event = excerpt_owned(message.canonical_name());
        let deliveries = settler.deliveries();
        let max_deliveries = spec.max_deliveries.unwrap_or_else(|| {
            let configured = self.bus.config().api(&message.api_name).max_deliveries;
            u32::try_from(configured.get()).unwrap_or(u32::MAX)
        });
        let delay = redelivery_delay(deliveries);
        if !delay.is_zero() {
            tracing::info!(
                listener = %spec.name,
                event = %event,
                "delivery {deliveries} of {event} (stream entry {}; at most {max_deliveries}): \
                 waiting {delay:?} before handling it again",
                message.native_id.as_deref().unwrap_or_default()
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.stop.cancelled() => return Handled::left(settler),
                () = self.failed.cancelled() => return Handled::left(settler),
            }
        }
        let measured =
            metrics::enabled().then(|| (message.api_name.clone(), message.event_name.clone()));
        let id = message.id.clone();
        let native_id = message.native_id.clone().unwrap_or_default();
        let plugins = self.bus.plugins().active();
        if let Some(plugins) = &plugins {
            run_hooks!(
                plugins,
                before_event_handling(&self.bus, &spec.name, &message)
            );
        }
        let kept = plugins.as_ref().map(|_| message.clone());
        let started = Instant::now();
        // An event that breaks its schema can never be handled: set it aside. A schema that
        // cannot be had (strict validation, no schema yet) is no fault of the event.
        let outcome = match self.validate_incoming(&message).await {
            Ok(()) => invoke(spec, message).await,
            Err(error @ Error::Validation(_)) => HandlerOutcome::Rejected(error.to_string()),
            Err(error) => HandlerOutcome::Failed(error.to_string()),
        };
        // Texts that may quote the event's data go into logs and dead letters: escaped, capped.
        let outcome = match outcome {
            HandlerOutcome::Failed(text) => HandlerOutcome::Failed(excerpt(&text)),
            HandlerOutcome::Rejected(text) => HandlerOutcome::Rejected(excerpt(&text)),
            handled => handled,
        };
        let elapsed = started.elapsed();
        if let Some((api, event_name)) = &measured {
            let kind = match &outcome {
                HandlerOutcome::Handled => Outcome::Ok,
                HandlerOutcome::Failed(_) => Outcome::Failed,
                HandlerOutcome::Rejected(_) => Outcome::Rejected,
            };
            metrics::event_handled(api, event_name, &spec.name, kind, elapsed);
        }
        let failure = match &outcome {
            HandlerOutcome::Handled => None,
            HandlerOutcome::Failed(text) | HandlerOutcome::Rejected(text) => Some(text.clone()),
        };
        let settlement = match outcome {
            HandlerOutcome::Failed(failure) if deliveries >= max_deliveries => {
                tracing::error!(
                    listener = %spec.name,
                    event = %event,
                    id = %id,
                    native_id = %native_id,
                    "{} failed on {event} (stream entry {native_id}) for the {deliveries}th \
                     time (max_deliveries {max_deliveries}): {failure}; moving it to the \
                     dead-letter stream and carrying on",
                    spec.name
                );
                Settlement::DeadLetter(format!(
                    "the handler failed on delivery {deliveries} (max_deliveries \
                     {max_deliveries}): {failure}"
                ))
            }
            HandlerOutcome::Handled => {
                // The listener, event and id are the fields of the `lightbus.handle` span this
                // runs in: not repeated here (formatting them twice was a third of the cost of
                // handling an event with logs at `info`, measured with callgrind).
                tracing::info!(native_id = %native_id, "📩 handled {event} in {elapsed:.2?}");
                Settlement::Ack
            }
            HandlerOutcome::Failed(failure) => match spec.on_error {
                OnError::Shutdown => {
                    tracing::error!(
                        listener = %spec.name,
                        event = %event,
                        id = %id,
                        native_id = %native_id,
                        "{} failed on {event} after {elapsed:.2?} (delivery {deliveries} of at \
                         most {max_deliveries}): {failure}; leaving it unacknowledged and \
                         stopping the worker (on_error: Shutdown); a failure on delivery \
                         {max_deliveries} dead-letters it",
                        spec.name
                    );
                    // Before anything else is handled: no further event of this listener
                    // starts.
                    self.fail(Error::ListenerFailed {
                        listener: spec.name.clone(),
                        event: event.clone(),
                        native_id: native_id.clone(),
                        message: failure,
                    });
                    Settlement::Leave
                }
                OnError::AckAndLog => {
                    tracing::error!(
                        listener = %spec.name,
                        event = %event,
                        id = %id,
                        native_id = %native_id,
                        "{} failed on {event} after {elapsed:.2?}: {failure}; acknowledging it \
                         anyway (on_error: AckAndLog)",
                        spec.name
                    );
                    Settlement::Ack
                }
            },
            HandlerOutcome::Rejected(reason) => {
                tracing::error!(
                    listener = %spec.name,
                    event = %event,
                    id = %id,
                    native_id = %native_id,
                    "{} cannot handle {event} (stream entry {native_id}): {reason}; moving it \
                     to the dead-letter stream",
                    spec.name
                );
                Settlement::DeadLetter(reason)
            }
        };
        Handled {
            settler,
            settlement,
            for_plugins: kept.map(|message| Box::new((message, failure))),
        }
    }

    /// Settles handled events until the listener stops: every event handled meanwhile at
    /// once (at most [`SETTLING_AT_ONCE`]), the next such batch when those are settled. The
    /// Redis transport acknowledges a batch in one round trip, so settling keeps up with
    /// handling. (Against a `for_each_concurrent` over single events: 39.2k instead of 40.4k
    /// instructions per event consumed, callgrind of `lightbus bench listen`.)
    ///
    /// The batch is joined in groups of at most [`JOINED_PLAINLY`]: `join_all` of more
    /// futures than that gives each its own task (an allocation, and the bookkeeping of a
    /// `FuturesOrdered`); a batch of at most [`SETTLING_AT_ONCE`] is at most that many groups
    /// (checked at compile time beside the constants).
    async fn settle_all(self: Arc<Self>, mut handled: mpsc::UnboundedReceiver<Handled>) {
        let mut batch = Vec::with_capacity(SETTLING_AT_ONCE);
        while handled.recv_many(&mut batch, SETTLING_AT_ONCE).await > 0 {
            let mut settling = batch
                .drain(..)
                .map(|handled| self.settle(handled))
                .peekable();
            let mut groups = Vec::new();
            while settling.peek().is_some() {
                groups.push(futures::future::join_all(
                    settling.by_ref().take(JOINED_PLAINLY).collect::<Vec<_>>(),
                ));
            }
            futures::future::join_all(groups).await;
        }
    }

    async fn settle(&self, handled: Handled) {
        let Handled {
            settler,
            settlement,
            for_plugins,
        } = handled;
        let settled = match settlement {
            Settlement::Ack => settler.ack().await,
            Settlement::DeadLetter(reason) => settler.dead_letter(&reason).await,
            Settlement::Leave => Ok(()),
        };
        if let Err(error) = settled {
            tracing::warn!(
                listener = %self.spec.name,
                "cannot settle an event: {error}; it will be delivered again"
            );
        }
        if let (Some(plugins), Some(kept)) = (self.bus.plugins().active(), for_plugins) {
            let (message, failure) = *kept;
            run_hooks!(
                plugins,
                after_event_handling(&self.bus, &self.spec.name, &message, failure.as_deref())
            );
        }
    }

    /// Validates an incoming event's parameters against the bus schema, when the API's
    /// configuration asks for incoming validation.
    async fn validate_incoming(&self, message: &EventMessage) -> Result<()> {
        let config = self.bus.config().api(&message.api_name);
        if !config.validate.incoming() {
            return Ok(()); // and no copy of the parameters is made
        }
        let kwargs = serde_json::Value::Object(message.kwargs.clone());
        self.bus
            .schema()
            .check(
                config,
                Direction::Incoming,
                &message.api_name,
                Target::EventParameters,
                &message.event_name,
                &kwargs,
            )
            .await
    }
}

/// Warns, loudly, when listeners run under a service name made up at this start: their
/// consumer groups are new, so events fired while the process was down are never delivered
/// to it. Not when the event transport names the groups' service itself (the Redis
/// transport's `service_name`).
fn warn_if_groups_are_new_per_start(bus: &Bus, listeners: &[Arc<ListenerSpec>]) {
    let config = bus.config();
    if !config.service_name_changes_per_start() {
        return;
    }
    let affected: Vec<&str> = listeners
        .iter()
        .filter(|spec| {
            spec.events.iter().any(|(api, _)| {
                config
                    .api(api)
                    .event_transport
                    .redis()
                    .is_none_or(|redis| redis.service_name.is_none())
            })
        })
        .map(|spec| spec.name.as_str())
        .collect();
    if affected.is_empty() {
        return;
    }
    let service = &config.service_name;
    tracing::warn!(
        "⚠ EVENTS WILL BE LOST: listener(s) {} run under the service name `{service}`, made \
         up at this start (service name `{}`). Their consumer groups (`{service}-<listener>`) \
         are new at every start, so events fired while this process is down are never \
         delivered to it, and the old groups stay in Redis. Give the service a fixed name: \
         `--service-name NAME`, LIGHTBUS_SERVICE_NAME=NAME, `service_name: NAME` in the \
         configuration, or Bus::builder().service_name(\"NAME\").",
        affected.join(", "),
        config.service_name_template()
    );
}

/// Calls the handler, turning a panic (while creating or polling its future) into a failure.
async fn invoke(spec: &ListenerSpec, message: EventMessage) -> HandlerOutcome {
    let call = std::panic::catch_unwind(AssertUnwindSafe(|| (spec.handler)(message)));
    let outcome = match call {
        Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    outcome.unwrap_or_else(|panic| {
        HandlerOutcome::Failed(format!(
            "the handler panicked: {}",
            panic_text(panic.as_ref())
        ))
    })
}

/// A free concurrency slot of a concurrent listener, taken before its next event is (so an
/// event handed out is one a handler starts on at once); `None` at once for a listener of
/// concurrency 1 (no `slots`), which handles its events inline.
async fn free_slot(
    slots: Option<&Arc<Semaphore>>,
) -> std::result::Result<Option<OwnedSemaphorePermit>, AcquireError> {
    match slots {
        Some(slots) => slots.clone().acquire_owned().await.map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redeliveries_wait_longer_each_time_up_to_a_cap() {
        let waits: Vec<u64> = (1..=9).map(|n| redelivery_delay(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(redelivery_delay(u32::MAX), MAX_REDELIVERY_DELAY);
    }
}
