//! Events over Redis streams, as Python Lightbus 1.1 stores and consumes them.
//!
//! **Firing**: `XADD <stream> MAXLEN ~ {max_stream_length} * <fields…>`, where the stream is
//! `{api}.*:stream` (`stream_use: per_api`, the default) or `{api}.{event}:stream`
//! (`per_event`), and the fields are those of [`EventMessage::to_fields`]. One command on one of
//! the process's shared connections: concurrent fires are pipelined, with no other round trip.
//! Fires awaited one after the other are stored in that order; concurrent ones in any order.
//!
//! **Consuming** (one [`EventConsumer`] per listener and API, see `consume.rs`):
//! - the consumer group is `{service_name}-{listener_name}` and the consumer the process
//!   name (the transport's `service_name` / `consumer_name` options override them);
//! - setup: a noop entry (`"" ""`) creates a missing stream, then `XGROUP CREATE … <since>`
//!   (an existing group is kept as it is);
//! - the consumer's own unacknowledged entries (`XREADGROUP … 0`) are delivered first, after
//!   every (re)start; then new entries (`XREADGROUP … COUNT batch_size BLOCK … >`);
//! - every `reclaim_interval`, entries other consumers left unacknowledged for longer than
//!   `acknowledgement_timeout` are claimed (`XPENDING`, `XCLAIM`) and delivered here (see
//!   `reclaim.rs`); consumers idle longer than `consumer_ttl` with nothing pending are
//!   removed from the group at setup.
//!
//! **Guarantees**: an entry is acknowledged (`XACK`) only when the listener settles it, so a
//! crash or a lost connection means it is delivered again (at least once). Noops and events
//! the listener does not want are acknowledged without delivery. An entry that cannot be
//! decoded is copied with its original fields, plus `error`, `original_id` and
//! `consumer_group`, to `<stream>:dead` and acknowledged in one transaction: it never stops
//! the listener and is never lost. If the group disappears (Redis restarted without
//! persistence), it is re-created from the last entry this consumer saw, so events fired
//! after the restart are not skipped.

mod consume;
mod reclaim;
mod reply;
mod settle;
mod waiting;

use crate::util::Backoff;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::RedisServer;
use crate::config::{RedisEventConfig, StreamUse};
use crate::error::{DecodeError, Result};
use crate::message::EventMessage;
use crate::transport::{ConsumeRequest, EventConsumer, EventTransport};

/// The stream an event is written to.
pub fn stream_key(stream_use: StreamUse, api_name: &str, event_name: &str) -> String {
    // Concatenated rather than `format!`ted: this runs for every fire, and formatting cost
    // ~575 instructions per event there (callgrind, `lightbus bench fire -c 64`).
    let middle = match stream_use {
        StreamUse::PerApi => "*",
        StreamUse::PerEvent => event_name,
    };
    [api_name, ".", middle, ":stream"].concat()
}

/// The dead-letter stream of `stream`: where its undecodable entries are kept.
pub fn dead_letter_key(stream: &str) -> String {
    format!("{stream}:dead")
}

pub use crate::transport::event::group_name;

/// One stream entry read without a consumer group (as `lightbus inspect` reads): its id
/// and its fields, `None` for an entry deleted meanwhile. Decode the fields with
/// [`EventMessage::from_fields`].
pub type StreamEntry = (String, Option<Vec<(Vec<u8>, Vec<u8>)>>);

/// The entries of an `XRANGE` / `XREVRANGE` reply, in the order Redis gave them.
pub fn range_reply(reply: redis::Value) -> Result<Vec<StreamEntry>, DecodeError> {
    Ok(reply::entries(reply)
        .map_err(bad_reply)?
        .into_iter()
        .map(|entry| (entry.id, entry.fields))
        .collect())
}

/// The entries of an `XREAD` reply, per stream.
pub fn read_reply(reply: redis::Value) -> Result<Vec<(String, Vec<StreamEntry>)>, DecodeError> {
    Ok(reply::streams(reply)
        .map_err(bad_reply)?
        .into_iter()
        .map(|(stream, entries)| {
            let entries = entries
                .into_iter()
                .map(|entry| (entry.id, entry.fields))
                .collect();
            (stream, entries)
        })
        .collect())
}

fn bad_reply(problem: String) -> DecodeError {
    DecodeError {
        kind: "Redis stream reply",
        reason: problem,
    }
}

/// The smallest stream entry id after `id` (`"5-1"` → `"5-2"`), if `id` is one.
pub fn id_after(id: &str) -> Option<String> {
    reply::next_id(id)
}

/// A stream entry id as numbers (`"5-1"` → `(5, 1)`, `"5"` → `(5, 0)`), for ordering.
pub fn id_order(id: &str) -> Option<(u64, u64)> {
    reply::parse_id(id)
}

/// Fires and consumes events through Redis streams.
pub struct RedisEventTransport {
    server: Arc<RedisServer>,
    config: RedisEventConfig,
    /// `max_stream_length` as the text `XADD MAXLEN ~` takes, written once.
    max_length: Option<String>,
}

impl std::fmt::Debug for RedisEventTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventTransport")
            .field(
                "describe",
                &crate::transport::EventTransport::describe(self),
            )
            .finish()
    }
}

impl RedisEventTransport {
    /// A transport on `server` with the API's `event_transport.redis` settings.
    pub fn new(server: Arc<RedisServer>, config: RedisEventConfig) -> Self {
        let max_length = config.max_stream_length.map(|n| n.get().to_string());
        RedisEventTransport {
            server,
            config,
            max_length,
        }
    }
}

/// The longest wait between two attempts of a fire while Redis is away.
const MAX_FIRE_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// `MAXLEN ~ n` arguments for an `XADD`, if streams are capped (`None`: uncapped, which
/// `max_stream_length: 0` or `null` configure, as upstream).
fn add_max_length(command: &mut redis::Cmd, max_stream_length: Option<usize>) {
    if let Some(max_length) = max_stream_length {
        command.arg("MAXLEN").arg("~").arg(max_length);
    }
}

impl EventTransport for RedisEventTransport {
    fn send_event<'a>(&'a self, event: &'a EventMessage) -> BoxFuture<'a, Result<String>> {
        async move {
            let stream = stream_key(self.config.stream_use, &event.api_name, &event.event_name);
            let fields = event.to_fields();
            // Sized up front: grown argument by argument, the buffers were reallocated
            // ~10 times per fire. Besides the fields, at most six arguments
            // (`XADD <stream> MAXLEN ~ <n> *`), whose text other than the stream fits in 32
            // bytes.
            let text: usize = fields.iter().map(|(f, v)| f.len() + v.len()).sum();
            let limit = self.config.max_message_bytes.get();
            if text > limit {
                return Err(crate::error::Error::MessageTooLarge {
                    what: "event",
                    member: event.canonical_name(),
                    size: text,
                    limit,
                    setting: "event_transport.redis.max_message_bytes",
                });
            }
            let mut args: Vec<&[u8]> = Vec::with_capacity(6 + 2 * fields.len());
            args.extend([&b"XADD"[..], stream.as_bytes()]);
            if let Some(max_length) = &self.max_length {
                args.extend([&b"MAXLEN"[..], b"~", max_length.as_bytes()]);
            }
            args.push(b"*");
            for (field, value) in &fields {
                args.extend([field.as_bytes(), value.as_bytes()]);
            }
            // While Redis is away (lost, restarting, loading its data), the fire waits and
            // tries again, with growing delays and jitter, until the caller's
            // `event_fire_timeout` cancels it. At least once: an `XADD` on the wire when
            // the connection died may have been stored, and is then stored twice.
            let mut backoff = Backoff::new(MAX_FIRE_RETRY_DELAY);
            loop {
                let attempt = async {
                    let mut connection = self.server.shared_in_turn().await?;
                    connection
                        .query_args(&args)
                        .await
                        .and_then(|reply| Ok(redis::from_redis_value(reply.extract_error()?)?))
                        .map_err(|e| self.server.error(e))
                }
                .await;
                match attempt {
                    Err(error) if error.is_transient() => {
                        let delay = backoff.next_delay();
                        tracing::debug!("fire of {stream} retried in {delay:?}: {error}");
                        tokio::time::sleep(delay).await;
                    }
                    outcome => return outcome,
                }
            }
        }
        .boxed()
    }

    /// One request on one server; on a cluster one per hash slot of the streams, since one
    /// `XREADGROUP` cannot span slots.
    fn partition(&self, request: ConsumeRequest) -> Vec<ConsumeRequest> {
        let stream_use = self.config.stream_use;
        self.server
            .by_slot(request.events.clone(), |(api, event)| {
                stream_key(stream_use, api, event)
            })
            .into_iter()
            .map(|events| ConsumeRequest {
                events,
                ..request.clone()
            })
            .collect()
    }

    fn consumer(&self, request: ConsumeRequest) -> Box<dyn EventConsumer> {
        Box::new(consume::RedisEventConsumer::new(
            self.server.clone(),
            &self.config,
            request,
        ))
    }

    fn describe(&self) -> String {
        format!("redis event transport at {}", self.server.url().redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_follow_the_peer() {
        assert_eq!(
            stream_key(StreamUse::PerApi, "auth", "user_registered"),
            "auth.*:stream"
        );
        assert_eq!(
            stream_key(StreamUse::PerEvent, "auth", "user_registered"),
            "auth.user_registered:stream"
        );
        assert_eq!(dead_letter_key("auth.*:stream"), "auth.*:stream:dead");
        assert_eq!(group_name("billing", "audit"), "billing-audit");
    }
}
