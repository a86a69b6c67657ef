//! Pulling events: [`Bus::subscribe`] and the [`Subscription`] stream of [`Delivery`]s.
//!
//! A subscription is a listener seen from the inside: a consumer group named after the
//! service and the listener, read by this process, yielding each event as a [`Delivery`]
//! to be settled explicitly. The worker's callback listeners and `lightbus listen` run on it.
//!
//! ```no_run
//! # mod doc {
//! use futures::StreamExt;
//!
//! #[lightbus::api(name = "auth")]
//! pub trait Auth {
//!     /// A user signed up.
//!     #[event]
//!     fn user_registered(username: String, email: String);
//! }
//!
//! async fn audit(bus: lightbus::Bus) -> lightbus::Result<()> {
//!     let mut events = bus.subscribe("audit", &["auth.user_registered"])?;
//!     while let Some(delivery) = events.next().await {
//!         let delivery = delivery?; // a failed read: the subscription retries by itself
//!         let user: UserRegistered = delivery.decode()?;
//!         println!("{} signed up", user.username);
//!         delivery.ack().await?;
//!     }
//!     Ok(())
//! }
//! # }
//! ```
//!
//! The guarantees are documented on [`Subscription`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::bus::Bus;
use crate::api::split_members;
use crate::api::{Event, Kwargs};
use crate::error::{DecodeError, Error, NameKind, Result};
use crate::message::EventMessage;
use crate::observe::Readiness;
use crate::transport::{
    interrupt_until, ConsumeRequest, EventConsumer, Interrupt, Received, Settle, Since,
};
use crate::util::Backoff;

/// Options of a subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Where the listener's consumer group starts the first time it is created (default
    /// [`Since::New`]: only events fired from now on).
    pub since: Since,
    /// How many entries one read takes (default: the event transport's `batch_size`).
    pub batch_size: Option<usize>,
}

impl SubscribeOptions {
    /// The defaults: new events only, the transport's batch size.
    pub fn new() -> Self {
        SubscribeOptions::default()
    }

    /// Starts a new consumer group at `since`.
    pub fn since(mut self, since: impl Into<Since>) -> Self {
        self.since = since.into();
        self
    }

    /// Reads at most `batch_size` entries at once.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size.max(1));
        self
    }
}

impl Bus {
    /// Subscribes to events given by name (`"api.event"`, from one API or several) as the
    /// listener `listener_name`, starting a new consumer group at new events.
    ///
    /// Reading starts at once, in the background; see [`Subscription`] for the guarantees.
    pub fn subscribe(&self, listener_name: &str, events: &[&str]) -> Result<Subscription> {
        self.subscribe_with(listener_name, events, SubscribeOptions::default())
    }

    /// [`subscribe`](Self::subscribe) with options.
    pub fn subscribe_with(
        &self,
        listener_name: &str,
        events: &[&str],
        options: SubscribeOptions,
    ) -> Result<Subscription> {
        let pairs = split_members(events)?;
        self.subscribe_pairs(listener_name, pairs, options)
    }

    /// Subscribes to `(api, event)` pairs (already split and without duplicates).
    pub(crate) fn subscribe_pairs(
        &self,
        listener_name: &str,
        pairs: Vec<(String, String)>,
        options: SubscribeOptions,
    ) -> Result<Subscription> {
        if listener_name.is_empty() {
            return Err(Error::InvalidName {
                kind: NameKind::Listener,
                name: String::new(),
                reason: "a listener needs a non-empty name".to_owned(),
            });
        }
        if pairs.is_empty() {
            return Err(Error::InvalidArguments {
                member: format!("listener `{listener_name}`"),
                reason: "a listener needs at least one event".to_owned(),
            });
        }
        options
            .since
            .check()
            .map_err(|reason| Error::InvalidArguments {
                member: format!("listener `{listener_name}`"),
                reason,
            })?;
        // One consumer per event transport (or per part of one, see
        // `EventTransport::partition`): the APIs sharing one are read together.
        let mut by_transport: Vec<(Arc<dyn crate::transport::EventTransport>, Vec<_>)> = Vec::new();
        let mut index: HashMap<*const (), usize> = HashMap::new();
        for (api, event) in pairs {
            let transport = self.transports_for(&api)?.event.clone();
            let key = Arc::as_ptr(&transport) as *const ();
            let slot = *index.entry(key).or_insert_with(|| {
                by_transport.push((transport, Vec::new()));
                by_transport.len() - 1
            });
            by_transport[slot].1.push((api, event));
        }
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        let largest_batch = options.batch_size.unwrap_or(DEFAULT_BUFFER).max(1);
        let (sender, receiver) = mpsc::channel(largest_batch);
        let mut interrupts = Vec::new();
        let readiness = self.readiness_handle();
        let readers = TaskTracker::new();
        let requests = by_transport.into_iter().flat_map(|(transport, events)| {
            let request = ConsumeRequest::new(
                listener_name,
                events,
                self.service_name(),
                self.process_name(),
            )
            .since(options.since.clone())
            .batch_size(options.batch_size);
            let parts = transport.partition(request);
            parts.into_iter().map(move |part| (transport.clone(), part))
        });
        for (transport, request) in requests {
            let consumer = transport.consumer(request);
            interrupts.extend(consumer.interrupt());
            let key = format!("listener `{listener_name}` ({})", consumer.describe());
            readiness.starting(&key);
            let reader = Reader {
                consumer,
                readiness: readiness.clone(),
                key,
                sender: sender.clone(),
                shared: shared.clone(),
                stop: stop.clone(),
            };
            readers.spawn(reader.run());
        }
        readers.close();
        Ok(Subscription {
            listener: listener_name.to_owned(),
            receiver,
            stop,
            interrupts,
            readers,
        })
    }
}

/// How many deliveries wait in the process when the batch size is the transport's.
const DEFAULT_BUFFER: usize = 64;

/// A listener's events, as a [`Stream`] of [`Delivery`]s, from [`Bus::subscribe`].
///
/// Guarantees (at least once, as for every listener):
/// - a delivery that is not acknowledged — [`left`](Delivery::leave), dropped, or whose
///   acknowledgement failed — is delivered again: by this subscription, once every delivery
///   it handed out before is settled (it then re-reads its own unacknowledged entries), or
///   after a restart of the process, or by another process of the service once the
///   acknowledgement timeout has passed — counted from when the delivery was taken from
///   this stream: events read ahead and still waiting here are kept from timing out (for
///   Redis, see `acknowledgement_timeout` in the protocol document);
/// - entries of one stream arrive in stream order; the APIs of a subscription are read
///   together (one blocking read per transport), so none waits behind another;
/// - the next read is under way while earlier deliveries are being handled, and at most
///   one read's worth of deliveries waits unhandled in the process;
/// - events handed out and not settled yet add up to at most 64 MiB as stored (plus the
///   one that crosses that, for transports that report sizes, as Redis does): larger
///   backlogs wait in the transport until earlier events are settled;
/// - a failed read is reported as an `Err` item, and the subscription goes on by itself,
///   retrying with back-off; it ends only when closed or dropped.
///
/// [`close`](Self::close) it to stop reading and drain what was read; dropping it stops at
/// once (deliveries not handled yet are delivered again later).
#[must_use = "a subscription does nothing unless its deliveries are taken"]
pub struct Subscription {
    listener: String,
    receiver: mpsc::Receiver<Result<Delivery>>,
    stop: CancellationToken,
    /// What cuts the readers' blocking reads short when the subscription closes.
    interrupts: Vec<Interrupt>,
    readers: TaskTracker,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("listener", &self.listener)
            .field("closed", &self.stop.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The listener's name.
    pub fn listener(&self) -> &str {
        &self.listener
    }

    /// Stops reading: no new read starts, a read under way completes, and the stream ends
    /// once what was read has been taken.
    pub fn close(&self) {
        if self.stop.is_cancelled() {
            return;
        }
        self.stop.cancel();
        // Cut reads under way short, until every reader has returned.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.interrupts.is_empty() {
            return;
        }
        let (interrupts, readers) = (self.interrupts.clone(), self.readers.clone());
        runtime.spawn(async move {
            tokio::select! {
                () = interrupt_until(interrupts, CancellationToken::new()) => {}
                () = readers.wait() => {}
            }
        });
    }
}

impl Stream for Subscription {
    type Item = Result<Delivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.receiver.poll_recv(cx);
        if let Poll::Ready(Some(Ok(delivery))) = &next {
            delivery.settler.handed_out();
        }
        next
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.close();
    }
}

/// One event of a [`Subscription`], to be settled: [`ack`](Self::ack) once handled,
/// [`dead_letter`](Self::dead_letter) if it can never be, or [`leave`](Self::leave) it (or
/// drop it) to have it delivered again.
#[derive(Debug)]
pub struct Delivery {
    message: EventMessage,
    settler: Settler,
}

impl Delivery {
    /// The event, with its stream entry id ([`native_id`](EventMessage::native_id)).
    pub fn message(&self) -> &EventMessage {
        &self.message
    }

    /// The event's parameters decoded as the event type `E`.
    ///
    /// Fails with [`Error::Decode`] when they do not fit `E` (such an event can never be
    /// handled by this code: [`dead_letter`](Self::dead_letter) it).
    pub fn decode<E: Event>(&self) -> Result<E> {
        decode_event(&self.message.kwargs).map_err(|reason| {
            Error::Decode(DecodeError {
                kind: "event",
                reason: format!("{}: {reason}", self.message.canonical_name()),
            })
        })
    }

    /// How many times the event has been delivered to this listener (its consumer group),
    /// this delivery included: 1 the first time, more after failures, crashes or
    /// reclaims. Redis counts it, so the count survives restarts; transports that do not
    /// count say 1.
    pub fn deliveries(&self) -> u32 {
        self.settler.deliveries()
    }

    /// Acknowledges the event: it was handled and is not delivered again.
    ///
    /// If acknowledging fails, the event counts as not acknowledged: it is delivered again.
    pub async fn ack(self) -> Result<()> {
        self.settler.ack().await
    }

    /// Sets the event aside as one that can never be handled, keeping a copy of it with
    /// `reason` in the transport's dead-letter place (for Redis, `<stream>:dead`), and
    /// acknowledges it.
    pub async fn dead_letter(self, reason: &str) -> Result<()> {
        self.settler.dead_letter(reason).await
    }

    /// Leaves the event unacknowledged, to be delivered again (the same as dropping it).
    pub fn leave(self) {}

    /// The event and what settles it, apart: for handing the event to code that takes it
    /// by value and settling it afterwards.
    pub fn into_parts(self) -> (EventMessage, Settler) {
        (self.message, self.settler)
    }
}

/// Settles one delivered event (see [`Delivery`]); dropping it unsettled leaves the event
/// to be delivered again.
pub struct Settler {
    settle: Option<Box<dyn Settle>>,
    shared: Arc<Shared>,
    /// The event's size as stored (0: unknown), counted in [`Shared::outstanding_bytes`].
    size: usize,
}

impl std::fmt::Debug for Settler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settler")
            .field("settled", &self.settle.is_none())
            .finish_non_exhaustive()
    }
}

impl Settler {
    /// How many times the event has been delivered, this delivery included (see
    /// [`Delivery::deliveries`]).
    pub fn deliveries(&self) -> u32 {
        self.settle.as_ref().map_or(1, |settle| settle.deliveries())
    }

    /// Acknowledges the event (see [`Delivery::ack`]).
    pub async fn ack(mut self) -> Result<()> {
        let Some(settle) = self.settle.take() else {
            return Ok(());
        };
        let acknowledged = settle.ack().await;
        self.settled(acknowledged.is_ok());
        acknowledged
    }

    /// Dead-letters the event (see [`Delivery::dead_letter`]).
    pub async fn dead_letter(mut self, reason: &str) -> Result<()> {
        let Some(settle) = self.settle.take() else {
            return Ok(());
        };
        let set_aside = settle.dead_letter(reason).await;
        self.settled(set_aside.is_ok());
        set_aside
    }

    /// Leaves the event unacknowledged, to be delivered again (the same as dropping it).
    pub fn leave(self) {}

    /// Tells the transport the event left the subscription (see [`Settle::handed_out`]).
    fn handed_out(&self) {
        if let Some(settle) = &self.settle {
            settle.handed_out();
        }
    }

    /// Records how the delivery ended: settled, or to be delivered again.
    fn settled(&self, done: bool) {
        if !done {
            self.shared.redeliver.store(true, Ordering::Release);
        }
        self.shared.release(self.size);
    }
}

impl Drop for Settler {
    fn drop(&mut self) {
        if self.settle.take().is_some() {
            // Not settled: delivered again once nothing else is outstanding.
            self.settled(false);
        }
    }
}

/// Decodes an event's parameters as `E`; the error says why they do not fit.
pub(crate) fn decode_event<E: Event>(kwargs: &Kwargs) -> std::result::Result<E, String> {
    E::deserialize(kwargs).map_err(|error| {
        format!(
            "its parameters do not fit {}: {error}",
            std::any::type_name::<E>()
        )
    })
}

/// How many bytes of events (as stored) a subscription hands out before it waits for some
/// to be settled. Redis reads are bounded by count and adapt to entry sizes (about 8 MiB a
/// read), the channel by count (64 deliveries): this bounds what a process holds of large
/// events. At least one event is always handed out, whatever its size.
const OUTSTANDING_BYTES: usize = 64 << 20;

/// What a subscription's readers and deliveries share.
#[derive(Default)]
struct Shared {
    /// Deliveries handed to the channel and not yet settled or dropped.
    outstanding: AtomicUsize,
    /// Their sizes as stored, added up (sizes a transport does not know count as 0).
    outstanding_bytes: AtomicUsize,
    /// Set when a delivery was left or could not be settled: the readers re-read their own
    /// pending entries once nothing is outstanding.
    redeliver: AtomicBool,
    /// Woken whenever a delivery is settled or dropped.
    released: Notify,
}

impl Shared {
    fn release(&self, size: usize) {
        self.outstanding_bytes.fetch_sub(size, Ordering::AcqRel);
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
        self.released.notify_waiters();
    }

    /// Whether the deliveries handed out and not settled add up to less than
    /// [`OUTSTANDING_BYTES`], or there are none.
    fn has_room(&self) -> bool {
        self.outstanding_bytes.load(Ordering::Acquire) < OUTSTANDING_BYTES
            || self.outstanding.load(Ordering::Acquire) == 0
    }

    /// Waits until [`has_room`](Self::has_room).
    async fn until_room(&self) {
        self.until(|| self.has_room()).await;
    }

    /// Waits until every delivery handed out is settled or dropped.
    async fn until_idle(&self) {
        self.until(|| self.outstanding.load(Ordering::Acquire) == 0)
            .await;
    }

    /// Waits until `done` holds, checking it again after each release.
    async fn until(&self, done: impl Fn() -> bool) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if done() {
                return;
            }
            released.await;
        }
    }
}

/// Reads one consumer into the subscription's channel.
struct Reader {
    consumer: Box<dyn EventConsumer>,
    /// Where the reader says how it fares, under `key`.
    readiness: Arc<Readiness>,
    key: String,
    sender: mpsc::Sender<Result<Delivery>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Reader {
    async fn run(mut self) {
        self.read().await;
        self.readiness.stopped(&self.key);
    }

    async fn read(&mut self) {
        let mut backoff = Backoff::new(self.consumer.restart_delay());
        loop {
            if self.stop.is_cancelled() || self.sender.is_closed() {
                return;
            }
            if self.shared.redeliver.load(Ordering::Acquire) {
                // Re-read this consumer's own pending entries, which include what was left,
                // once no delivery handed out can still be settled (it would come twice).
                tokio::select! {
                    () = self.shared.until_idle() => {}
                    () = self.stop.cancelled() => return,
                }
                self.shared.redeliver.store(false, Ordering::Release);
                self.consumer.restart();
            }
            // Not raced against `stop`: what a read under way brings is delivered, not left
            // pending until the next start. A read returns within a few seconds anyway.
            match self.consumer.next_batch().await {
                Ok(batch) => {
                    backoff.reset();
                    self.readiness.running(&self.key);
                    if !self.deliver(batch).await {
                        return;
                    }
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    self.readiness.failing(&self.key, &error);
                    tracing::debug!(
                        "cannot consume events ({}): {error}; retrying in {delay:?}",
                        self.consumer.describe()
                    );
                    if self.sender.send(Err(error)).await.is_err() {
                        return;
                    }
                    // Start over only once nothing is outstanding, then after the delay.
                    self.shared.redeliver.store(true, Ordering::Release);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.stop.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Hands a batch to the subscription; false once nobody takes deliveries any more.
    async fn deliver(&mut self, batch: Vec<Received>) -> bool {
        for Received {
            message,
            settle,
            size,
            ..
        } in batch
        {
            // Large events wait here until earlier ones are settled (see OUTSTANDING_BYTES);
            // those not handed out when the subscription closes are delivered again later.
            // Checked first without waiting: the usual case (room to spare) then costs two
            // atomic loads, not a registration with two `Notify`s and back (callgrind,
            // `lightbus bench listen`: ~470 instructions per event delivered).
            if !self.shared.has_room() {
                tokio::select! {
                    () = self.shared.until_room() => {}
                    () = self.sender.closed() => return false,
                }
            }
            self.shared.outstanding.fetch_add(1, Ordering::AcqRel);
            self.shared
                .outstanding_bytes
                .fetch_add(size, Ordering::AcqRel);
            let delivery = Delivery {
                message,
                settler: Settler {
                    settle: Some(settle),
                    shared: self.shared.clone(),
                    size,
                },
            };
            if self.sender.send(Ok(delivery)).await.is_err() {
                return false;
            }
        }
        true
    }
}
