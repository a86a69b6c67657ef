//! One listener's consumer of one API's stream(s): setup, own pending entries, new entries.
//!
//! The consumer is a small state machine driven by [`EventConsumer::next_batch`]:
//! `Setup` → `OwnPending` (this consumer's unacknowledged entries, paged) → `Live` (reclaim
//! passes when due, otherwise a short blocking read of new entries). Any error sends it back
//! to `Setup`, so after a reconnect the group is checked again and every entry delivered
//! before the failure but never acknowledged is delivered again.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::transport::redis::{Connection, SharedConnection};
use futures::future::BoxFuture;
use futures::FutureExt;
use redis::Value;

use super::reclaim::Reclaim;
use super::reply::{self, RawEntry};
use super::settle::{dead_letter, Acker, RedisSettle};
use super::waiting::Waiting;
use super::{dead_letter_key, group_name, stream_key};
use crate::config::{Count, RedisEventConfig, Seconds};
use crate::error::{DecodeError, Error, Operation, Result};
use crate::message::EventMessage;
use crate::transport::redis::{query_reply, RedisServer, Unblock};
use crate::transport::{ConsumeRequest, EventConsumer, Interrupt, Received};
use crate::util::excerpt;

/// How long one blocking read waits for new entries. Long, so that an idle listener sends
/// few commands (one read per this period); a subscription that closes cuts the wait short
/// (`CLIENT UNBLOCK`), so stopping is still prompt. The read is never cancelled mid-way:
/// entries it returns are handled, not left pending.
const READ_BLOCK: Duration = Duration::from_secs(5);
/// The shortest block of a read cut short by a reclaim pass due soon (`BLOCK 0` would wait
/// for ever).
const MIN_READ_BLOCK: Duration = Duration::from_millis(10);
/// How much longer than its block time a read may take before the connection is presumed
/// dead and replaced.
const READ_GRACE: Duration = Duration::from_secs(5);

/// About how many bytes of entries one read should bring. Redis bounds a read by entries,
/// not bytes, so the count adapts: after a read that brought more than this, the next
/// asks for proportionally fewer entries.
const READ_BYTES: usize = 8 << 20;
/// The count of a consumer's first read: one entry, since nothing is known of the stream's
/// entry sizes before one is read. Reads double after each full read that stayed within
/// [`READ_BYTES`], up to `batch_size` (100 in 7 reads). Starting at upstream's 10, a worker
/// started on a backlog of ten 20 MiB events read all of them at once and peaked at 444 MB
/// (`bench/memory_large.py`: the reply, and the events decoded from it).
const FIRST_READ: usize = 1;

/// The `COUNT` of a consumer's next read (see [`READ_BYTES`] and [`FIRST_READ`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadSize {
    pub(super) count: usize,
    max: usize,
}

impl ReadSize {
    fn new(max: usize) -> Self {
        ReadSize {
            count: FIRST_READ.min(max),
            max,
        }
    }

    /// Adjusts the count after a read (or claim) that brought `entries`; returns their
    /// bytes.
    pub(super) fn after_entries<'a>(
        &mut self,
        entries: impl Iterator<Item = &'a RawEntry>,
    ) -> usize {
        let (count, bytes) = entries.fold((0, 0), |(count, bytes), entry| {
            (count + 1, bytes + entry.size())
        });
        self.after_read(count, bytes);
        bytes
    }

    /// Adjusts the count after a read that brought `entries` entries of `bytes` bytes.
    fn after_read(&mut self, entries: usize, bytes: usize) {
        if bytes > READ_BYTES {
            let fitting = entries.saturating_mul(READ_BYTES) / bytes;
            self.count = fitting.clamp(1, self.max);
        } else if entries >= self.count {
            self.count = self.count.saturating_mul(2).min(self.max);
        }
    }
}

/// Everything fixed about one consumer: names, streams and settings.
#[derive(Debug)]
pub(super) struct GroupSpec {
    pub(super) listener: String,
    /// The `(api, event)` pairs the listener wants.
    pub(super) events: Vec<(String, String)>,
    pub(super) group: String,
    pub(super) consumer: String,
    pub(super) streams: Vec<String>,
    /// Where a new group starts (`$`, `0` or an entry id).
    pub(super) since: String,
    pub(super) batch_size: usize,
    pub(super) reclaim_batch_size: usize,
    pub(super) acknowledgement_timeout: Duration,
    pub(super) reclaim_interval: Duration,
    /// Zero disables the clean-up of idle consumers.
    pub(super) consumer_ttl: Duration,
    pub(super) max_stream_length: Option<usize>,
    pub(super) restart_delay: Duration,
    /// Larger entries are dead-lettered unhandled.
    pub(super) max_message_bytes: usize,
}

impl GroupSpec {
    fn new(config: &RedisEventConfig, request: ConsumeRequest) -> Self {
        let service = config.service_name.clone().unwrap_or(request.service_name);
        let consumer = config.consumer_name.clone().unwrap_or(request.process_name);
        let mut streams: Vec<String> = Vec::new();
        for (api, event) in &request.events {
            let stream = stream_key(config.stream_use, api, event);
            if !streams.contains(&stream) {
                streams.push(stream);
            }
        }
        let batch_size = request.batch_size.unwrap_or(config.batch_size.get()).max(1);
        let acknowledgement_timeout = config.acknowledgement_timeout.get();
        GroupSpec {
            group: group_name(&service, &request.listener_name),
            listener: request.listener_name,
            events: request.events,
            consumer,
            streams,
            since: request.since.stream_id(),
            batch_size,
            reclaim_batch_size: config
                .reclaim_batch_size
                .map_or(batch_size * 10, Count::get),
            acknowledgement_timeout,
            reclaim_interval: config
                .reclaim_interval
                .map_or(acknowledgement_timeout, Seconds::get)
                .max(Duration::from_millis(100)),
            consumer_ttl: Duration::from_secs(config.consumer_ttl),
            max_stream_length: config.max_stream_length.map(Count::get),
            restart_delay: config.consumption_restart_delay.get(),
            max_message_bytes: config.max_message_bytes.get(),
        }
    }

    fn wants(&self, event: &EventMessage) -> bool {
        self.events
            .iter()
            .any(|(api, name)| *api == event.api_name && *name == event.event_name)
    }
}

/// Where the consumer is in its session.
enum Phase {
    /// The group must be (re)checked before reading.
    Setup,
    /// Delivering this consumer's own unacknowledged entries; one cursor per stream.
    OwnPending { after: Vec<String> },
    /// Delivering reclaimed and new entries.
    Live,
}

/// A listener's consumer of one API's stream(s) in Redis.
pub(crate) struct RedisEventConsumer {
    pub(super) server: Arc<RedisServer>,
    pub(super) spec: Arc<GroupSpec>,
    /// The dedicated connection of the blocking read, opened on demand.
    connection: Option<Connection>,
    phase: Phase,
    /// Per stream, the id a re-created group starts from: the last entry this consumer's
    /// group is known to have reached.
    resume: HashMap<String, String>,
    pub(super) reclaim: Reclaim,
    /// Whether the first successful setup was logged.
    announced: bool,
    /// Cuts the blocking read short when the subscription closes.
    unblock: Unblock,
    /// The `COUNT` of the next read (and of the next reclaim's `XCLAIM`).
    pub(super) read_size: ReadSize,
    /// Sends the acknowledgements of this consumer's deliveries, coalesced.
    acker: Arc<Acker>,
    /// Keeps the deliveries not handed out yet from being reclaimed elsewhere.
    waiting: Arc<Waiting>,
}

impl RedisEventConsumer {
    pub(super) fn new(
        server: Arc<RedisServer>,
        config: &RedisEventConfig,
        request: ConsumeRequest,
    ) -> Self {
        let spec = Arc::new(GroupSpec::new(config, request));
        RedisEventConsumer {
            unblock: Unblock::new(
                server.clone(),
                spec.streams.first().cloned().unwrap_or_default(),
            ),
            acker: Acker::new(server.clone(), spec.clone()),
            waiting: Waiting::new(server.clone(), spec.clone()),
            read_size: ReadSize::new(spec.batch_size),
            server,
            spec,
            connection: None,
            phase: Phase::Setup,
            resume: HashMap::new(),
            reclaim: Reclaim::default(),
            announced: false,
        }
    }

    pub(super) async fn shared(&self) -> Result<SharedConnection> {
        self.server.shared().await
    }

    async fn next(&mut self) -> Result<Vec<Received>> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Setup) {
                Phase::Setup => {
                    self.setup().await?;
                    let after = vec!["0".to_owned(); self.spec.streams.len()];
                    self.phase = Phase::OwnPending { after };
                }
                Phase::OwnPending { mut after } => {
                    let deliveries = self.read_own_pending(&mut after).await?;
                    match deliveries {
                        None => {
                            self.phase = Phase::Live;
                            self.reclaim.start_now();
                        }
                        Some(deliveries) => {
                            self.phase = Phase::OwnPending { after };
                            if !deliveries.is_empty() {
                                return Ok(deliveries);
                            }
                        }
                    }
                }
                Phase::Live => {
                    self.phase = Phase::Live;
                    let reclaimed = self.reclaim_due().await?;
                    if !reclaimed.is_empty() {
                        return Ok(reclaimed);
                    }
                    return self.read_new().await;
                }
            }
        }
    }

    /// Makes sure every stream and the group exist, notes where the group stands, and
    /// removes long-idle consumers.
    async fn setup(&mut self) -> Result<()> {
        let mut connection = self.shared().await?;
        let spec = self.spec.clone();
        for stream in &spec.streams {
            let exists: bool = redis::cmd("EXISTS")
                .arg(stream)
                .query_async(&mut connection)
                .await
                .map_err(|e| self.server.error(e))?;
            if !exists {
                // The peer's way of creating a stream: a noop entry, skipped by consumers.
                let _: Value = redis::cmd("XADD")
                    .arg(stream)
                    .arg("*")
                    .arg("")
                    .arg("")
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| self.server.error(e))?;
            }
            let since = self.resume.get(stream).unwrap_or(&spec.since).clone();
            let created: redis::RedisResult<Value> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(&spec.group)
                .arg(&since)
                .query_async(&mut connection)
                .await;
            match created {
                Ok(_) => {
                    if self.announced {
                        tracing::warn!(
                            listener = %spec.listener,
                            "consumer group `{}` on `{stream}` had vanished (Redis lost its \
                             data?); re-created it from entry {since}",
                            spec.group
                        );
                    } else {
                        tracing::debug!(group = %spec.group, %stream, %since, "created consumer group");
                    }
                }
                Err(error) if error.code() == Some("BUSYGROUP") => {}
                Err(error) => return Err(self.server.error(error)),
            }
            self.note_group_position(&mut connection, stream).await?;
            self.remove_idle_consumers(&mut connection, stream).await?;
        }
        let events: Vec<String> = spec
            .events
            .iter()
            .map(|(api, event)| format!("{api}.{event}"))
            .collect();
        let description = format!(
            "listener `{}` consuming {} as `{}` in group `{}` on {}",
            spec.listener,
            events.join(", "),
            spec.consumer,
            spec.group,
            spec.streams.join(", ")
        );
        if self.announced {
            tracing::debug!("{description}");
        } else {
            tracing::info!("{description}");
            self.announced = true;
        }
        Ok(())
    }

    /// Reads the group's last delivered id on `stream`, so that a group that has to be
    /// re-created later starts where this one stood.
    async fn note_group_position(
        &mut self,
        connection: &mut SharedConnection,
        stream: &str,
    ) -> Result<()> {
        let groups: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(connection)
            .await
            .map_err(|e| self.server.error(e))?;
        let records = reply::info_records(groups).map_err(|e| self.bad_reply("XINFO GROUPS", e))?;
        let position = records
            .iter()
            .find(|record| {
                reply::get(record, "name").and_then(reply::text).as_deref()
                    == Some(self.spec.group.as_str())
            })
            .and_then(|record| reply::get(record, "last-delivered-id"))
            .and_then(reply::text);
        if let Some(position) = position {
            self.advance_resume(stream, &position);
        }
        Ok(())
    }

    /// Records that the group reached `id` on `stream`, if that is further than known.
    fn advance_resume(&mut self, stream: &str, id: &str) {
        let Some(new) = reply::parse_id(id) else {
            return;
        };
        let further = match self.resume.get(stream).and_then(|old| reply::parse_id(old)) {
            Some(old) => new > old,
            None => true,
        };
        if further {
            self.resume.insert(stream.to_owned(), id.to_owned());
        }
    }

    /// One page of this consumer's own unacknowledged entries; `None` once there are none
    /// left on any stream.
    async fn read_own_pending(&mut self, after: &mut [String]) -> Result<Option<Vec<Received>>> {
        let mut connection = self.shared().await?;
        let spec = self.spec.clone();
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(&spec.group)
            .arg(&spec.consumer)
            .arg("COUNT")
            .arg(self.read_size.count)
            .arg("STREAMS")
            .arg(&spec.streams)
            .arg(&*after);
        let reply = query_reply(&mut connection, &command)
            .await
            .map_err(|e| self.server.error(e))?;
        let streams = reply::streams(reply).map_err(|e| self.bad_reply("XREADGROUP", e))?;
        self.note_read(&streams);
        let mut any = false;
        let mut deliveries = Vec::new();
        for (stream, entries) in streams {
            let Some(index) = spec.streams.iter().position(|name| *name == stream) else {
                continue;
            };
            let Some(last) = entries.last() else {
                continue;
            };
            any = true;
            after[index] = last.id.clone();
            tracing::info!(
                listener = %spec.listener,
                "{} entr{} of `{stream}` read earlier by `{}` but never acknowledged: \
                 delivering again",
                entries.len(),
                if entries.len() == 1 { "y" } else { "ies" },
                spec.consumer
            );
            deliveries.extend(self.sort(&mut connection, &stream, entries, false).await?);
        }
        Ok(any.then_some(deliveries))
    }

    /// New entries: a short blocking read on the dedicated connection.
    async fn read_new(&mut self) -> Result<Vec<Received>> {
        let spec = self.spec.clone();
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self
                .connection
                .insert(self.server.blocking(&self.unblock).await?),
        };
        let newest = vec![">"; spec.streams.len()];
        // Never past the next reclaim pass: entries a dead consumer left would otherwise
        // wait up to a whole block longer than `reclaim_interval` says.
        let block = self
            .reclaim
            .due_in()
            .map_or(READ_BLOCK, |due| due.clamp(MIN_READ_BLOCK, READ_BLOCK));
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(&spec.group)
            .arg(&spec.consumer)
            .arg("COUNT")
            .arg(self.read_size.count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&spec.streams)
            .arg(&newest);
        let read = query_reply(connection, &command);
        let reply = match tokio::time::timeout(block + READ_GRACE, read).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => {
                self.connection = None;
                return Err(self.server.error(error));
            }
            Err(_) => {
                self.connection = None;
                return Err(Error::Timeout {
                    operation: Operation::Read {
                        url: self.server.url().redacted().to_owned(),
                    },
                    after: block + READ_GRACE,
                });
            }
        };
        let streams = reply::streams(reply).map_err(|e| self.bad_reply("XREADGROUP", e))?;
        if self.note_read(&streams) > READ_BYTES {
            // A connection keeps its read buffer at the largest reply it carried (the
            // client library never shrinks it): after a large one, the next read opens a
            // new connection, so a worker returns that memory once the events are handled.
            self.connection = None;
        }
        let mut deliveries = Vec::new();
        if streams.is_empty() {
            return Ok(deliveries);
        }
        let mut shared = self.shared().await?;
        for (stream, entries) in streams {
            if let Some(last) = entries.last() {
                let last = last.id.clone();
                self.advance_resume(&stream, &last);
            }
            deliveries.extend(self.sort(&mut shared, &stream, entries, true).await?);
        }
        Ok(deliveries)
    }

    /// Sizes the next read after what this one brought; returns how many bytes it brought.
    fn note_read(&mut self, streams: &[(String, Vec<RawEntry>)]) -> usize {
        self.read_size
            .after_entries(streams.iter().flat_map(|(_, entries)| entries))
    }

    /// Turns entries read from `stream` into deliveries. Deleted entries, noops and events
    /// the listener does not want are acknowledged here; undecodable entries are
    /// dead-lettered here. Either failing is an error (the entries stay pending and come
    /// back after the restart that follows). `fresh`: the entries were read with `>`, so
    /// this is their first delivery; otherwise the group's delivery counts are looked up.
    pub(super) async fn sort(
        &self,
        connection: &mut SharedConnection,
        stream: &str,
        entries: Vec<RawEntry>,
        fresh: bool,
    ) -> Result<Vec<Received>> {
        let Some(index) = self.spec.streams.iter().position(|name| name == stream) else {
            return Err(self.bad_reply("XREADGROUP", format!("entries of `{stream}`, not read")));
        };
        let counts = if fresh {
            HashMap::new()
        } else {
            self.delivery_counts(connection, stream, &entries).await?
        };
        let mut deliveries = Vec::with_capacity(entries.len());
        let mut skipped: Vec<String> = Vec::new();
        for RawEntry { id, fields } in entries {
            let Some(fields) = fields else {
                tracing::debug!(%stream, %id, "skipping a pending entry that was deleted from the stream");
                skipped.push(id);
                continue;
            };
            let size = reply::fields_size(&fields);
            let decoded = match EventMessage::from_fields(&id, fields.iter().map(|(k, v)| (k, v))) {
                Ok(Some(message)) if size > self.spec.max_message_bytes => {
                    if !self.spec.wants(&message) {
                        skipped.push(id);
                        continue;
                    }
                    Err(DecodeError {
                        kind: "event",
                        reason: Error::MessageTooLarge {
                            what: "event",
                            member: message.canonical_name(),
                            size,
                            limit: self.spec.max_message_bytes,
                            setting: "event_transport.redis.max_message_bytes",
                        }
                        .to_string(),
                    })
                }
                other => other,
            };
            match decoded {
                Ok(None) => skipped.push(id),
                Ok(Some(mut message)) => {
                    if !self.spec.wants(&message) {
                        skipped.push(id);
                        continue;
                    }
                    message.stream = Some(stream.to_owned());
                    self.waiting.add(index, &id);
                    let settle = RedisSettle {
                        acker: self.acker.clone(),
                        stream: index,
                        deliveries: counts.get(&id).copied().unwrap_or(1),
                        id,
                        fields,
                        waiting: self.waiting.clone(),
                        handed_out: AtomicBool::new(false),
                    };
                    deliveries.push(Received::new(message, Box::new(settle)).with_size(size));
                }
                Err(error) => {
                    let reason = excerpt(&error.to_string());
                    tracing::error!(
                        listener = %self.spec.listener,
                        %stream,
                        %id,
                        "undecodable stream entry {id} on `{stream}`: {reason}; moving it to `{}`",
                        dead_letter_key(stream)
                    );
                    let count = counts.get(&id).copied().unwrap_or(1);
                    dead_letter(connection, &self.spec, stream, &id, &fields, &reason, count)
                        .await
                        .map_err(|e| self.server.error(e))?;
                }
            }
        }
        if !skipped.is_empty() {
            let _: Value = redis::cmd("XACK")
                .arg(stream)
                .arg(&self.spec.group)
                .arg(&skipped)
                .query_async(connection)
                .await
                .map_err(|e| self.server.error(e))?;
        }
        Ok(deliveries)
    }

    /// The group's delivery counter of each of `entries` (all pending under this consumer,
    /// just read again or claimed): one `XPENDING … <first> <last> <n> <consumer>`.
    async fn delivery_counts(
        &self,
        connection: &mut SharedConnection,
        stream: &str,
        entries: &[RawEntry],
    ) -> Result<HashMap<String, u32>> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(HashMap::new());
        };
        let reply: Value = redis::cmd("XPENDING")
            .arg(stream)
            .arg(&self.spec.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(entries.len())
            .arg(&self.spec.consumer)
            .query_async(connection)
            .await
            .map_err(|e| self.server.error(e))?;
        let pending = reply::pending(reply).map_err(|e| self.bad_reply("XPENDING", e))?;
        Ok(pending
            .into_iter()
            .map(|entry| (entry.id, entry.deliveries))
            .collect())
    }

    pub(super) fn bad_reply(&self, command: &str, problem: String) -> Error {
        Error::Decode(DecodeError {
            kind: "Redis reply",
            reason: format!(
                "unexpected reply to {command} from {}: {problem}",
                self.server.url().redacted()
            ),
        })
    }
}

impl EventConsumer for RedisEventConsumer {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<Received>>> {
        async move {
            let batch = self.next().await;
            if batch.is_err() {
                self.restart();
            }
            batch
        }
        .boxed()
    }

    fn restart(&mut self) {
        self.phase = Phase::Setup;
        self.connection = None;
        self.reclaim.abandon_pass();
    }

    fn restart_delay(&self) -> Duration {
        self.spec.restart_delay
    }

    fn interrupt(&self) -> Option<Interrupt> {
        Some(self.unblock.interrupt())
    }

    fn describe(&self) -> String {
        format!(
            "group `{}` consumer `{}` on {}",
            self.spec.group,
            self.spec.consumer,
            self.spec.streams.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StreamUse;
    use crate::transport::Since;

    fn request(events: &[&str]) -> ConsumeRequest {
        let events = events
            .iter()
            .map(|e| ("auth".to_owned(), (*e).to_owned()))
            .collect();
        ConsumeRequest::new("welcome", events, "mail", "mail-1").since(Since::New)
    }

    #[test]
    fn names_and_settings_follow_the_configuration() {
        let config = RedisEventConfig::default();
        let spec = GroupSpec::new(&config, request(&["user_registered", "deleted"]));
        assert_eq!(spec.group, "mail-welcome");
        assert_eq!(spec.consumer, "mail-1");
        assert_eq!(spec.streams, vec!["auth.*:stream".to_owned()]);
        assert_eq!(spec.since, "$");
        assert_eq!(spec.batch_size, 100);
        assert_eq!(spec.reclaim_batch_size, 1000);
        assert_eq!(spec.reclaim_interval, Duration::from_secs(60));

        let config = RedisEventConfig {
            service_name: Some("other".into()),
            consumer_name: Some("c".into()),
            stream_use: StreamUse::PerEvent,
            acknowledgement_timeout: Seconds::new(2.0).expect("positive"),
            reclaim_batch_size: Count::new(7),
            ..RedisEventConfig::default()
        };
        let spec = GroupSpec::new(&config, request(&["user_registered", "deleted"]));
        assert_eq!(spec.group, "other-welcome");
        assert_eq!(spec.consumer, "c");
        assert_eq!(
            spec.streams,
            vec![
                "auth.user_registered:stream".to_owned(),
                "auth.deleted:stream".to_owned()
            ]
        );
        assert_eq!(spec.reclaim_batch_size, 7);
        assert_eq!(spec.reclaim_interval, Duration::from_secs(2));
    }

    #[test]
    fn reads_start_small_grow_while_entries_are_small_and_shrink_when_they_are_large() {
        let mut size = ReadSize::new(100);
        assert_eq!(size.count, FIRST_READ);
        size.after_read(0, 0); // not full: unchanged
        assert_eq!(size.count, 1);
        for expected in [2, 4, 8, 16, 32, 64, 100, 100] {
            size.after_read(size.count, size.count * 500);
            assert_eq!(size.count, expected);
        }
        size.after_read(100, 100 * (1 << 20)); // 100 MiB: a twelfth fits in the budget
        assert_eq!(size.count, 8);
        size.after_read(1, 64 << 20); // one huge entry: one at a time
        assert_eq!(size.count, 1);
        let mut small = ReadSize::new(4);
        for _ in 0..5 {
            small.after_read(small.count, small.count);
        }
        assert_eq!(small.count, 4, "never above batch_size");
    }

    #[test]
    fn only_wanted_events_of_the_api_are_delivered() {
        let spec = GroupSpec::new(&RedisEventConfig::default(), request(&["user_registered"]));
        let event = |api: &str, name: &str| EventMessage::new(api, name, 1, Default::default());
        assert!(spec.wants(&event("auth", "user_registered")));
        assert!(!spec.wants(&event("auth", "deleted")));
        assert!(!spec.wants(&event("billing", "user_registered")));
    }
}
