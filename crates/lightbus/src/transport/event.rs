//! Consuming events: the contract between a listener (in the worker) and its transport.
//!
//! The worker asks an [`EventTransport`](super::EventTransport) for one [`EventConsumer`]
//! per listener and API, then repeatedly takes a batch of [`Delivery`]s and settles each
//! one: [`Delivery::ack`] once its handler succeeded, or [`Delivery::dead_letter`] when the
//! entry can never be handled.
//!
//! What a consumer guarantees (at-least-once delivery):
//! - an entry is delivered again until it is acknowledged: after a restart of the consumer
//!   (its own unacknowledged entries come first), or to another consumer of the same group
//!   once it has been unacknowledged for longer than the acknowledgement timeout;
//! - entries the listener does not want (other events of the same stream, the transport's
//!   own placeholder entries) are acknowledged by the consumer and never delivered;
//! - an entry that cannot be decoded is never delivered and never dropped: the consumer
//!   copies it to a dead-letter place, logs it, and only then acknowledges it.

use futures::future::BoxFuture;

use crate::error::Result;
use crate::listener::Since;
use crate::message::EventMessage;

/// What one listener consumes from one API.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeRequest {
    /// The listener's name; with the service name it names the consumer group.
    pub listener_name: String,
    /// The API whose events are consumed.
    pub api_name: String,
    /// The events of that API the listener handles; every other entry is skipped.
    pub events: Vec<String>,
    /// Where a consumer group starts when it is created (ignored if it exists).
    pub since: Since,
    /// This process's service name (the transport's configuration may override it).
    pub service_name: String,
    /// This process's name, the consumer's name (the configuration may override it).
    pub process_name: String,
    /// How many entries one read takes, overriding the transport's `batch_size` (for
    /// consumers such as `lightbus listen` that settle whole batches at once).
    pub batch_size: Option<usize>,
}

/// A listener's supply of events from one API.
///
/// A consumer is used by one task at a time. After an error it starts over by itself on the
/// next call: it sets up again and re-delivers its own unacknowledged entries first.
pub trait EventConsumer: Send {
    /// Waits a short while (well under a second or two) for entries and returns the next
    /// batch, in stream order; empty when nothing arrived, so the caller can check for
    /// shutdown between calls.
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<Delivery>>>;

    /// Starts over on the next call, re-delivering this consumer's own unacknowledged
    /// entries. Call it after an entry could not be settled (so it is not left behind), and
    /// only once every delivery handed out so far is settled or abandoned.
    fn restart(&mut self);

    /// The longest pause between attempts after a failure (the transport's
    /// `consumption_restart_delay`).
    fn restart_delay(&self) -> std::time::Duration;

    /// A short description for logs, e.g. the consumer group and streams.
    fn describe(&self) -> String;
}

/// Settles one delivered entry in its transport. Implemented by each transport.
pub trait Settle: Send + Sync {
    /// Marks the entry handled, so it is not delivered again.
    fn ack(&self) -> BoxFuture<'_, Result<()>>;

    /// Copies the entry, as it was stored, to the transport's dead-letter place with
    /// `reason`, then acknowledges it; both or neither.
    fn dead_letter<'a>(&'a self, reason: &'a str) -> BoxFuture<'a, Result<()>>;
}

/// One event handed to a listener, and the means to settle it.
pub struct Delivery {
    /// The event, with [`native_id`](EventMessage::native_id) and
    /// [`stream`](EventMessage::stream) set.
    pub message: EventMessage,
    settle: Box<dyn Settle>,
}

impl Delivery {
    /// A delivery of `message`, settled through `settle`.
    pub fn new(message: EventMessage, settle: Box<dyn Settle>) -> Self {
        Delivery { message, settle }
    }

    /// Acknowledges the entry: its handler succeeded (or failed and the listener's policy is
    /// to carry on).
    pub async fn ack(&self) -> Result<()> {
        self.settle.ack().await
    }

    /// Sets the entry aside as one that can never be handled (for instance its parameters do
    /// not fit the listener's event type), keeping a copy with `reason`.
    pub async fn dead_letter(&self, reason: &str) -> Result<()> {
        self.settle.dead_letter(reason).await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}
