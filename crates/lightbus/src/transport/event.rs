//! Consuming events: the contract between a subscription (in the client) and its transport.
//!
//! The client asks an [`EventTransport`](super::EventTransport) for one [`EventConsumer`]
//! per listener and transport — one consumer covers every API of the listener that uses the
//! same transport — then repeatedly takes a batch of [`Received`] entries and settles each
//! one: acknowledged once its handler succeeded, or dead-lettered when it can never be
//! handled.
//!
//! What a consumer guarantees (at-least-once delivery):
//! - an entry is delivered again until it is acknowledged: after a restart of the consumer
//!   (its own unacknowledged entries come first), or to another consumer of the same group
//!   once it has been unacknowledged for longer than the acknowledgement timeout;
//! - entries the listener does not want (other events of the same stream, the transport's
//!   own placeholder entries) are acknowledged by the consumer and never delivered;
//! - an entry that cannot be decoded is never delivered and never dropped: the consumer
//!   copies it to a dead-letter place, logs it, and only then acknowledges it;
//! - no API of the request waits behind another: a read covers all of them at once.

use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use crate::error::Result;
use crate::message::EventMessage;

/// Where a listener starts reading when its consumer group is first created.
///
/// Only the first start of a listener (per service and stream) uses it: afterwards the group
/// remembers how far the listener got, and a restarted listener resumes there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Since {
    /// Only events fired from now on (the stream id `$`). The default, as upstream.
    #[default]
    New,
    /// Every event still in the stream (the stream id `0`).
    Beginning,
    /// Events after this stream id, e.g. `"1700000000000-0"` (or `$` / `0`).
    Id(String),
    /// Events fired after this point in time.
    Time(SystemTime),
}

impl Since {
    /// The stream id this starting point stands for; a time becomes `"{unix ms}-0"`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use lightbus::Since;
    /// assert_eq!(Since::New.stream_id(), "$");
    /// assert_eq!(Since::Beginning.stream_id(), "0");
    /// let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    /// assert_eq!(Since::Time(time).stream_id(), "1700000000123-0");
    /// ```
    pub fn stream_id(&self) -> String {
        match self {
            Since::New => "$".to_owned(),
            Since::Beginning => "0".to_owned(),
            Since::Id(id) => id.clone(),
            Since::Time(time) => {
                let millis = time
                    .duration_since(UNIX_EPOCH)
                    .map(|since_epoch| since_epoch.as_millis())
                    .unwrap_or(0);
                format!("{millis}-0")
            }
        }
    }

    /// Checks that an explicit id is a stream id (`$`, `0`, `<ms>` or `<ms>-<seq>`).
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        let Since::Id(id) = self else { return Ok(()) };
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        let valid = id == "$"
            || match id.split_once('-') {
                Some((ms, seq)) => digits(ms) && digits(seq),
                None => digits(id),
            };
        if valid {
            Ok(())
        } else {
            Err(format!(
                "`since` must be a stream id such as `1700000000000-0`, `0` or `$`, not {id:?}"
            ))
        }
    }
}

impl From<SystemTime> for Since {
    fn from(time: SystemTime) -> Self {
        Since::Time(time)
    }
}

/// The consumer group of a listener: `{service_name}-{listener_name}`, as the peer names it.
pub fn group_name(service_name: &str, listener_name: &str) -> String {
    format!("{service_name}-{listener_name}")
}

/// What one listener consumes through one transport.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConsumeRequest {
    /// The listener's name; with the service name it names the consumer group.
    pub listener_name: String,
    /// The `(api, event)` pairs the listener handles, without duplicates; every other entry
    /// of their streams is skipped.
    pub events: Vec<(String, String)>,
    /// Where a consumer group starts when it is created (ignored if it exists).
    pub since: Since,
    /// This process's service name (the transport's configuration may override it).
    pub service_name: String,
    /// This process's name, the consumer's name (the configuration may override it).
    pub process_name: String,
    /// How many entries one read takes, overriding the transport's `batch_size`.
    pub batch_size: Option<usize>,
}

impl ConsumeRequest {
    /// A request for `events` of listener `listener_name`, in the process named
    /// `process_name` of the service `service_name`, starting new groups at `since`.
    pub fn new(
        listener_name: impl Into<String>,
        events: Vec<(String, String)>,
        service_name: impl Into<String>,
        process_name: impl Into<String>,
    ) -> Self {
        ConsumeRequest {
            listener_name: listener_name.into(),
            events,
            since: Since::default(),
            service_name: service_name.into(),
            process_name: process_name.into(),
            batch_size: None,
        }
    }

    /// Starts new consumer groups at `since`.
    pub fn since(mut self, since: Since) -> Self {
        self.since = since;
        self
    }

    /// Reads at most `batch_size` entries at once.
    pub fn batch_size(mut self, batch_size: Option<usize>) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// The APIs of the request, each with its events, in first-seen order.
    pub fn events_by_api(&self) -> Vec<(&str, Vec<&str>)> {
        let mut by_api: Vec<(&str, Vec<&str>)> = Vec::new();
        for (api, event) in &self.events {
            match by_api.iter_mut().find(|(name, _)| *name == api.as_str()) {
                Some((_, events)) => events.push(event),
                None => by_api.push((api, vec![event])),
            }
        }
        by_api
    }

    /// Whether the listener handles `event` of `api`.
    pub fn wants(&self, api: &str, event: &str) -> bool {
        self.events.iter().any(|(a, e)| a == api && e == event)
    }
}

/// A listener's supply of events from the APIs of one transport.
///
/// A consumer is used by one task at a time. After an error it starts over by itself on the
/// next call: it sets up again and re-delivers its own unacknowledged entries first.
pub trait EventConsumer: Send {
    /// Waits a while (seconds) for entries and returns the next batch, in stream order per
    /// stream; empty when nothing arrived.
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<Received>>>;

    /// Starts over on the next call, re-delivering this consumer's own unacknowledged
    /// entries. Call it after an entry could not be settled (so it is not left behind), and
    /// only once every entry handed out so far is settled or abandoned.
    fn restart(&mut self);

    /// The longest pause between attempts after a failure (the transport's
    /// `consumption_restart_delay`).
    fn restart_delay(&self) -> std::time::Duration;

    /// A short description for logs, e.g. the consumer group and streams.
    fn describe(&self) -> String;

    /// What cuts a wait of [`next_batch`](Self::next_batch) short, if the transport can
    /// (see [`Interrupt`](super::Interrupt)).
    fn interrupt(&self) -> Option<super::Interrupt> {
        None
    }
}

/// Settles one received entry in its transport. Implemented by each transport.
pub trait Settle: Send + Sync {
    /// Marks the entry handled, so it is not delivered again.
    fn ack(&self) -> BoxFuture<'_, Result<()>>;

    /// Copies the entry, as it was stored, to the transport's dead-letter place with
    /// `reason`, then acknowledges it; both or neither.
    fn dead_letter<'a>(&'a self, reason: &'a str) -> BoxFuture<'a, Result<()>>;

    /// How many times the transport has delivered this entry, this delivery included. Redis
    /// keeps the count in the consumer group (it survives restarts of every process); 1 where
    /// the transport does not count.
    fn deliveries(&self) -> u32 {
        1
    }

    /// Called when the subscription hands the entry to its consumer (for a worker's
    /// listener: when a handler is about to run). Until then the entry only waits in the
    /// process, and a transport that times out unsettled entries (Redis's
    /// `acknowledgement_timeout`) may keep it from timing out; from then on the timeout
    /// runs. Nothing by default.
    fn handed_out(&self) {}
}

/// One event received from a transport, and the means to settle it.
#[non_exhaustive]
pub struct Received {
    /// The event, with [`native_id`](EventMessage::native_id) and
    /// [`stream`](EventMessage::stream) set.
    pub message: EventMessage,
    /// Settles the entry in its transport.
    pub settle: Box<dyn Settle>,
    /// The entry's size as stored, in bytes (0: unknown). A subscription stops reading
    /// while the events it handed out and that are not settled yet add up to more than
    /// its byte budget, so large events cannot pile up in a process.
    pub size: usize,
}

impl Received {
    /// An entry holding `message`, settled through `settle`, of unknown size.
    pub fn new(message: EventMessage, settle: Box<dyn Settle>) -> Self {
        Received {
            message,
            settle,
            size: 0,
        }
    }

    /// The same entry, `size` bytes as stored.
    pub fn with_size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_becomes_a_stream_id_and_bad_ids_are_refused() {
        assert_eq!(Since::default(), Since::New);
        assert_eq!(Since::Id("5-1".into()).stream_id(), "5-1");
        assert_eq!(Since::Time(UNIX_EPOCH).stream_id(), "0-0");
        for good in ["$", "0", "1700000000000", "1700000000000-3"] {
            assert!(Since::Id(good.into()).check().is_ok(), "{good}");
        }
        for bad in ["", "-", "abc", "1-", "-1", "1-2-3", ">"] {
            assert!(Since::Id(bad.into()).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_group_their_events_by_api() {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(a, e)| ((*a).to_owned(), (*e).to_owned()))
                .collect()
        };
        let request = ConsumeRequest::new(
            "x",
            pairs(&[("a", "b"), ("c", "d"), ("a", "e")]),
            "svc",
            "p",
        );
        assert_eq!(
            request.events_by_api(),
            vec![("a", vec!["b", "e"]), ("c", vec!["d"])]
        );
        assert!(request.wants("a", "e") && !request.wants("c", "b"));
    }
}
