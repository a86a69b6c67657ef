//! Running event listeners: one consumer loop per listener and API.
//!
//! Each loop takes batches from its transport's [`EventConsumer`] and hands every event to
//! the listener's handler, at most `concurrency` at once per listener (default 1: one after
//! the other, in stream order). What happens to an event after its handler ran:
//!
//! | handler outcome | settlement |
//! |---|---|
//! | success | acknowledged |
//! | error or panic, [`OnError::Shutdown`] | left unacknowledged; the worker stops with [`Error::ListenerFailed`] |
//! | error or panic, [`OnError::AckAndLog`] | logged, acknowledged |
//! | parameters do not fit the listener's event type | copied to the dead-letter stream, acknowledged |
//!
//! Guarantees: an event is acknowledged only after its handler finished, so it is never lost
//! to a crash, a kill or a lost connection (it is delivered again: at least once). A lost
//! connection pauses the loop, which retries with a backoff capped at the transport's
//! `consumption_restart_delay`; before it starts over it waits for the events in flight, so
//! that those are not delivered twice. An acknowledgement that fails makes the loop start
//! over the same way, so the event is delivered again rather than left behind. On shutdown
//! no new batch is read; events already read are still handled, within the drain timeout.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::Bus;
use crate::error::{Error, Result};
use crate::listener::{ErasedHandler, HandlerOutcome, ListenerSpec, OnError};
use crate::message::EventMessage;
use crate::schema::{Direction, Target};
use crate::transport::redis::Backoff;
use crate::transport::{ConsumeRequest, Delivery, EventConsumer};

/// The worker's event component: runs every listener of the bus until stopped.
pub(crate) struct EventListeners {
    bus: Bus,
    drain_timeout: Duration,
}

/// One listener while it runs: shared by its consumer loops (one per API).
struct RunningListener {
    spec: Arc<ListenerSpec>,
    /// The bus, for validating incoming events against the bus schema.
    bus: Bus,
    /// Bounds how many of the listener's events are handled at once.
    slots: Arc<Semaphore>,
    /// Set when a handler failed under [`OnError::Shutdown`].
    failure: Mutex<Option<Error>>,
    failed: CancellationToken,
}

impl RunningListener {
    fn fail(&self, error: Error) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some(error);
        }
        self.failed.cancel();
    }

    fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
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
        let mut loops = JoinSet::new();
        let mut names = HashMap::new();
        if initial.is_empty() {
            tracing::debug!("no event listeners set up (yet)");
        } else {
            tracing::info!("starting {} event listener(s)", initial.len());
        }
        let mut outcome = Ok(());
        for spec in initial {
            if let Err(error) = self.start(&mut loops, &mut names, spec, &local) {
                outcome = Err(error);
                break;
            }
        }
        if outcome.is_ok() {
            outcome = loop {
                tokio::select! {
                    () = local.cancelled() => break Ok(()),
                    Some(spec) = added.recv() => {
                        if let Err(error) = self.start(&mut loops, &mut names, spec, &local) {
                            break Err(error);
                        }
                    }
                    Some(done) = loops.join_next_with_id() => match done {
                        Ok((_, Ok(()))) => {}
                        Ok((_, Err(error))) => break Err(error),
                        Err(join_error) => {
                            let listener = names.get(&join_error.id()).cloned().unwrap_or_default();
                            break Err(Error::ListenerFailed {
                                listener,
                                event: String::new(),
                                native_id: String::new(),
                                message: format!("its consumer loop ended abnormally: {join_error}"),
                            });
                        }
                    },
                }
            };
        }
        self.bus.listeners().stop();
        local.cancel();
        while let Some(done) = loops.join_next().await {
            if let Ok(Err(error)) = done {
                tracing::warn!("while stopping listeners: {error}");
            }
        }
        outcome
    }

    /// Starts the consumer loops of one listener (one per API it listens to).
    fn start(
        &self,
        loops: &mut JoinSet<Result<()>>,
        names: &mut HashMap<tokio::task::Id, String>,
        spec: Arc<ListenerSpec>,
        stop: &CancellationToken,
    ) -> Result<()> {
        let running = Arc::new(RunningListener {
            bus: self.bus.clone(),
            slots: Arc::new(Semaphore::new(spec.concurrency.max(1))),
            spec: spec.clone(),
            failure: Mutex::new(None),
            failed: CancellationToken::new(),
        });
        for (api, events) in spec.events_by_api() {
            let transports = self.bus.transports_for(&api)?;
            let consumer = transports.event.consumer(ConsumeRequest {
                listener_name: spec.name.clone(),
                api_name: api,
                events,
                since: spec.since.clone(),
                service_name: self.bus.service_name().to_owned(),
                process_name: self.bus.process_name().to_owned(),
                batch_size: None,
            });
            let handle = loops.spawn(consume(
                running.clone(),
                consumer,
                stop.clone(),
                self.drain_timeout,
            ));
            names.insert(handle.id(), spec.name.clone());
        }
        Ok(())
    }
}

/// The consumer loop of one listener on one API.
async fn consume(
    listener: Arc<RunningListener>,
    mut consumer: Box<dyn EventConsumer>,
    stop: CancellationToken,
    drain_timeout: Duration,
) -> Result<()> {
    let name = listener.spec.name.clone();
    let in_flight = TaskTracker::new();
    let unsettled = Arc::new(AtomicBool::new(false));
    let mut backoff = Backoff::new(consumer.restart_delay());
    let mut failing = false;
    // Completes `drain_timeout` after the stop signal: the limit for handing out events
    // already read when the worker stops.
    let drain_deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(drain_timeout).await;
    }
    .shared();
    'consume: loop {
        if stop.is_cancelled() || listener.failed.is_cancelled() {
            break;
        }
        if unsettled.swap(false, Ordering::SeqCst) {
            // An event could not be acknowledged: start over once nothing is in flight, so
            // it is delivered again instead of staying pending under this consumer.
            wait_for(&in_flight).await;
            consumer.restart();
        }
        let first = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = listener.failed.cancelled() => break,
            permit = listener.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        // A failing handler marks the failure before it frees its slot: seen here, nothing
        // more is read.
        if listener.failed.is_cancelled() {
            break;
        }
        let deliveries = match consumer.next_batch().await {
            Ok(deliveries) => {
                if failing {
                    tracing::info!(listener = %name, "consuming events again ({})", consumer.describe());
                    failing = false;
                }
                backoff.reset();
                deliveries
            }
            Err(error) => {
                drop(first);
                let delay = backoff.next_delay();
                tracing::warn!(
                    listener = %name,
                    "cannot consume events ({}): {error}; retrying in {delay:?}",
                    consumer.describe()
                );
                failing = true;
                wait_for(&in_flight).await;
                consumer.restart();
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        let mut first = Some(first);
        for delivery in deliveries {
            let permit = match first.take() {
                Some(permit) => permit,
                None => tokio::select! {
                    permit = listener.slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break 'consume,
                    },
                    // The rest stay pending: delivered again later, not lost.
                    () = drain_deadline.clone() => break 'consume,
                },
            };
            if listener.failed.is_cancelled() {
                break 'consume; // leave the rest of the batch unacknowledged
            }
            let task = handle(listener.clone(), delivery, permit, unsettled.clone());
            in_flight.spawn(task);
        }
    }
    in_flight.close();
    if !in_flight.is_empty() {
        tracing::info!(listener = %name, "waiting for {} event(s) in flight", in_flight.len());
    }
    if tokio::time::timeout(drain_timeout, in_flight.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = %name,
            "{} event(s) still being handled after {drain_timeout:?}; abandoning them (they \
             stay unacknowledged and will be delivered again)",
            in_flight.len()
        );
    }
    match listener.take_failure() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Waits until every task in `tracker` finished (it accepts new tasks again afterwards).
async fn wait_for(tracker: &TaskTracker) {
    tracker.close();
    tracker.wait().await;
    tracker.reopen();
}

/// How a handled event is settled.
enum Settlement {
    Ack,
    DeadLetter(String),
    /// Left unacknowledged, to be delivered again.
    Leave,
}

/// Runs the handler on one event and settles the event according to the outcome.
///
/// The slot is released as soon as the outcome is known, so the listener's next event runs
/// while this one is being acknowledged (order of handling is kept; acknowledgements of
/// consecutive events may overlap).
async fn handle(
    listener: Arc<RunningListener>,
    delivery: Delivery,
    permit: OwnedSemaphorePermit,
    unsettled: Arc<AtomicBool>,
) {
    let spec = &listener.spec;
    let message = &delivery.message;
    let event = message.canonical_name();
    let native_id = message.native_id.clone().unwrap_or_default();
    let plugins = listener.bus.plugins().active();
    if let Some(plugins) = &plugins {
        crate::plugin::run_hooks!(
            plugins,
            before_event_handling(&listener.bus, &spec.name, message)
        );
    }
    let started = Instant::now();
    // An event that breaks its schema is treated as a handler failure: the listener's
    // on_error policy decides what happens to it.
    let outcome = match validate_incoming(&listener.bus, message).await {
        Ok(()) => invoke(&spec.handler, message.clone()).await,
        Err(error) => HandlerOutcome::Failed(error.to_string()),
    };
    let elapsed = started.elapsed();
    let failure = match &outcome {
        HandlerOutcome::Handled => None,
        HandlerOutcome::Failed(text) | HandlerOutcome::Rejected(text) => {
            plugins.as_ref().map(|_| text.clone())
        }
    };
    let settlement = match outcome {
        HandlerOutcome::Handled => {
            tracing::info!(
                listener = %spec.name,
                event = %event,
                id = %message.id,
                native_id = %native_id,
                "📩 {} handled {event} in {elapsed:.2?}",
                spec.name
            );
            Settlement::Ack
        }
        HandlerOutcome::Failed(failure) => match spec.on_error {
            OnError::Shutdown => {
                tracing::error!(
                    listener = %spec.name,
                    event = %event,
                    id = %message.id,
                    native_id = %native_id,
                    "{} failed on {event} after {elapsed:.2?}: {failure}; leaving it \
                     unacknowledged and stopping the worker (on_error: Shutdown)",
                    spec.name
                );
                // Before the slot is released: no further event of this listener starts.
                listener.fail(Error::ListenerFailed {
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
                    id = %message.id,
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
                id = %message.id,
                native_id = %native_id,
                "{} cannot handle {event} (stream entry {native_id}): {reason}; moving it to \
                 the dead-letter stream",
                spec.name
            );
            Settlement::DeadLetter(reason)
        }
    };
    drop(permit);
    let settled = match settlement {
        Settlement::Ack => delivery.ack().await,
        Settlement::DeadLetter(reason) => delivery.dead_letter(&reason).await,
        Settlement::Leave => Ok(()),
    };
    if let Err(error) = settled {
        tracing::warn!(
            listener = %spec.name,
            event = %event,
            native_id = %native_id,
            "cannot settle {event} (stream entry {native_id}): {error}; it will be delivered again"
        );
        unsettled.store(true, Ordering::SeqCst);
    }
    if let Some(plugins) = &plugins {
        crate::plugin::run_hooks!(
            plugins,
            after_event_handling(&listener.bus, &spec.name, message, failure.as_deref())
        );
    }
}

/// Validates an incoming event's parameters against the bus schema, when the API's
/// configuration asks for incoming validation.
async fn validate_incoming(bus: &Bus, message: &EventMessage) -> Result<()> {
    let config = bus.config().api(&message.api_name);
    // Checked here as well, to skip copying the parameters when validation is off.
    if !crate::schema::validation_enabled(config, Direction::Incoming) {
        return Ok(());
    }
    let kwargs = serde_json::Value::Object(message.kwargs.clone());
    bus.schema()
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

/// Calls the handler, turning a panic (while creating or polling its future) into a failure.
async fn invoke(handler: &ErasedHandler, message: EventMessage) -> HandlerOutcome {
    let call = std::panic::catch_unwind(AssertUnwindSafe(|| handler(message)));
    let outcome = match call {
        Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    outcome.unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-text panic payload".to_owned());
        HandlerOutcome::Failed(format!("the handler panicked: {text}"))
    })
}
