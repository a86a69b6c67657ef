//! Events in memory: one log per API, with consumer groups as on Redis streams.
//!
//! Firing appends the event to its API's log under a Redis-like id `{ms}-{seq}` (strictly
//! increasing), trimming the oldest entries beyond `max_stream_length`. Each listener
//! consumes through the group `{service_name}-{listener_name}`, created on first use at the
//! listener's `since` (`$`: only new events; `0`: all stored; an id or a time: entries after
//! it). A group remembers which entry it reached and which of the entries it handed out are
//! still unacknowledged (pending), and by which consumer (the process name).
//!
//! A consumer delivers, in this order: after each (re)start, its own pending entries; then,
//! every `acknowledgement_timeout`, entries another consumer of the group left pending for
//! longer than that (taken over); then new entries, up to `batch_size` at a time, waiting up
//! to half a second for some to arrive. Entries of events the listener does not want are
//! passed over. An acknowledged entry is never delivered again to that group; a
//! dead-lettered one is kept aside with its reason ([`dead_letters`]) and acknowledged.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::Notify;

use super::{hub, lock, Hub};
use crate::config::{Count, MemoryEventConfig};
use crate::error::Result;
use crate::message::EventMessage;
use crate::transport::event::group_name;
use crate::transport::Since;
use crate::transport::{ConsumeRequest, EventConsumer, EventTransport, Received, Settle};

/// How long one read waits for new entries before returning an empty batch.
const READ_WAIT: Duration = Duration::from_millis(500);

/// The event logs of a hub, by API.
#[derive(Default)]
pub(crate) struct Streams {
    by_api: Mutex<HashMap<String, Stream>>,
    arrived: Notify,
}

/// An entry id: milliseconds and sequence, ordered as Redis orders stream ids.
type EntryId = (u64, u64);

fn format_id((ms, seq): EntryId) -> String {
    format!("{ms}-{seq}")
}

/// Parses `ms` or `ms-seq`; `None` for anything else.
fn parse_id(text: &str) -> Option<EntryId> {
    match text.split_once('-') {
        Some((ms, seq)) => Some((ms.parse().ok()?, seq.parse().ok()?)),
        None => Some((text.parse().ok()?, 0)),
    }
}

/// One API's log.
#[derive(Default)]
struct Stream {
    /// The position of `entries[0]`; positions count every entry ever appended.
    first: u64,
    entries: VecDeque<Entry>,
    last_id: EntryId,
    groups: HashMap<String, Group>,
    dead: Vec<DeadLetter>,
}

struct Entry {
    id: EntryId,
    /// The event, with `native_id` and `stream` set.
    message: EventMessage,
}

/// A consumer group: how far it got, and what it handed out without acknowledgement.
struct Group {
    next: u64,
    pending: BTreeMap<u64, Pending>,
}

struct Pending {
    consumer: String,
    delivered: Instant,
}

/// An event set aside by a listener, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The event as it was delivered.
    pub message: EventMessage,
    /// Why it could not be handled.
    pub reason: String,
    /// The consumer group that set it aside.
    pub group: String,
}

impl Stream {
    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    fn entry(&self, position: u64) -> Option<&Entry> {
        let index = position.checked_sub(self.first)?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    fn append(
        &mut self,
        mut message: EventMessage,
        api: &str,
        max_length: Option<usize>,
    ) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let id = if now > self.last_id.0 {
            (now, 0)
        } else {
            (self.last_id.0, self.last_id.1 + 1)
        };
        self.last_id = id;
        let native_id = format_id(id);
        message.native_id = Some(native_id.clone());
        message.stream = Some(format!("{api}.*"));
        self.entries.push_back(Entry { id, message });
        if let Some(max) = max_length {
            while self.entries.len() > max {
                self.entries.pop_front();
                self.first += 1;
            }
        }
        native_id
    }

    /// The position of the first entry after `since`.
    fn start_of(&self, since: &Since) -> u64 {
        let after = match since {
            Since::New => return self.end(),
            Since::Beginning => return self.first,
            Since::Id(id) if id == "$" => return self.end(),
            other => match parse_id(&other.stream_id()) {
                Some(id) => id,
                None => return self.end(),
            },
        };
        self.entries
            .iter()
            .position(|entry| entry.id > after)
            .map_or(self.end(), |index| self.first + index as u64)
    }
}

/// Fires and consumes events through the process's memory hub.
pub struct MemoryEventTransport {
    hub: Arc<Hub>,
    config: MemoryEventConfig,
}

impl std::fmt::Debug for MemoryEventTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryEventTransport")
            .field(
                "describe",
                &crate::transport::EventTransport::describe(self),
            )
            .finish()
    }
}

impl MemoryEventTransport {
    /// The transport of the hub `config.namespace`.
    pub fn new(config: &MemoryEventConfig) -> Self {
        MemoryEventTransport {
            hub: hub(&config.namespace),
            config: config.clone(),
        }
    }
}

impl EventTransport for MemoryEventTransport {
    fn send_event<'a>(&'a self, event: &'a EventMessage) -> BoxFuture<'a, Result<String>> {
        let native_id = {
            let mut streams = lock(&self.hub.events.by_api);
            streams.entry(event.api_name.clone()).or_default().append(
                event.clone(),
                &event.api_name,
                self.config.max_stream_length.map(Count::get),
            )
        };
        self.hub.events.arrived.notify_waiters();
        futures::future::ready(Ok(native_id)).boxed()
    }

    fn consumer(&self, request: ConsumeRequest) -> Box<dyn EventConsumer> {
        let apis = request
            .events_by_api()
            .into_iter()
            .map(|(api, events)| ApiCursor {
                api: api.to_owned(),
                events: events.into_iter().map(str::to_owned).collect(),
                own_pending: Some(0),
                next_reclaim: Instant::now(),
            })
            .collect();
        Box::new(MemoryEventConsumer {
            hub: self.hub.clone(),
            group: group_name(&request.service_name, &request.listener_name),
            consumer: request.process_name,
            apis,
            turn: 0,
            since: request.since,
            batch_size: request
                .batch_size
                .unwrap_or(self.config.batch_size.get())
                .max(1),
            acknowledgement_timeout: self.config.acknowledgement_timeout.get(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "memory event transport (namespace `{}`)",
            self.config.namespace
        )
    }
}

/// One listener's consumer of its APIs' logs.
struct MemoryEventConsumer {
    hub: Arc<Hub>,
    group: String,
    consumer: String,
    /// Where the consumer is in each API's log.
    apis: Vec<ApiCursor>,
    /// Which API is looked at first next time, so that none waits behind another.
    turn: usize,
    since: Since,
    batch_size: usize,
    acknowledgement_timeout: Duration,
}

/// A consumer's progress in one API's log.
struct ApiCursor {
    api: String,
    events: Vec<String>,
    /// `Some(from)` while this consumer's own pending entries (from position `from` on) are
    /// being delivered again, after a (re)start.
    own_pending: Option<u64>,
    next_reclaim: Instant,
}

impl MemoryEventConsumer {
    /// Whatever is ready now, from every API in turn: own pending entries, taken-over
    /// entries, or new ones; at most a batch.
    fn take(&mut self) -> Vec<Received> {
        let count = self.apis.len();
        let first = self.turn % count.max(1);
        self.turn = self.turn.wrapping_add(1);
        let mut deliveries = Vec::new();
        for index in (first..count).chain(0..first) {
            let room = self.batch_size - deliveries.len();
            if room == 0 {
                break;
            }
            let taken = take_from(
                &self.hub,
                &mut self.apis[index],
                &self.group,
                &self.consumer,
                &self.since,
                room,
                self.acknowledgement_timeout,
            );
            deliveries.extend(taken);
        }
        deliveries
    }
}

/// Up to `room` entries of one API's log for this consumer.
fn take_from(
    hub: &Arc<Hub>,
    cursor: &mut ApiCursor,
    group_name: &str,
    consumer: &str,
    since: &Since,
    room: usize,
    acknowledgement_timeout: Duration,
) -> Vec<Received> {
    let now = Instant::now();
    let mut streams = lock(&hub.events.by_api);
    let stream = streams.entry(cursor.api.clone()).or_default();
    let start = stream.start_of(since);
    let first = stream.first;
    let group = stream.groups.entry(group_name.to_owned()).or_insert(Group {
        next: start,
        pending: BTreeMap::new(),
    });
    group.next = group.next.max(first);
    let mut chosen: Vec<u64> = Vec::new();

    if let Some(after) = cursor.own_pending {
        chosen.extend(
            group
                .pending
                .range(after..)
                .filter(|(_, pending)| pending.consumer == consumer)
                .map(|(position, _)| *position)
                .take(room),
        );
        cursor.own_pending = chosen.last().map(|position| position + 1);
        if !chosen.is_empty() {
            tracing::info!(
                group = %group_name,
                "{} entr{} of `{}` delivered earlier to `{consumer}` but never acknowledged: \
                 delivering again",
                chosen.len(),
                if chosen.len() == 1 { "y" } else { "ies" },
                cursor.api,
            );
        }
    }
    if chosen.is_empty() && now >= cursor.next_reclaim {
        cursor.next_reclaim = now + acknowledgement_timeout.max(Duration::from_millis(100));
        chosen.extend(
            group
                .pending
                .iter()
                .filter(|(_, pending)| {
                    pending.consumer != consumer
                        && now.duration_since(pending.delivered) >= acknowledgement_timeout
                })
                .map(|(position, _)| *position)
                .take(room),
        );
        if !chosen.is_empty() {
            tracing::info!(
                group = %group_name,
                "taking over {} entr{} of `{}` left unacknowledged by other consumers",
                chosen.len(),
                if chosen.len() == 1 { "y" } else { "ies" },
                cursor.api
            );
        }
    }
    if chosen.is_empty() {
        let end = first + stream.entries.len() as u64;
        while group.next < end && chosen.len() < room {
            let position = group.next;
            group.next += 1;
            let wanted = stream
                .entries
                .get((position - first) as usize)
                .is_some_and(|entry| cursor.events.contains(&entry.message.event_name));
            if wanted {
                chosen.push(position);
            }
        }
    }

    let mut deliveries = Vec::with_capacity(chosen.len());
    for position in chosen {
        let Some(message) = stream.entry(position).map(|entry| entry.message.clone()) else {
            // Trimmed from the log while pending: nothing left to deliver.
            if let Some(group) = stream.groups.get_mut(group_name) {
                group.pending.remove(&position);
            }
            continue;
        };
        if let Some(group) = stream.groups.get_mut(group_name) {
            group.pending.insert(
                position,
                Pending {
                    consumer: consumer.to_owned(),
                    delivered: now,
                },
            );
        }
        let settle = MemorySettle {
            hub: hub.clone(),
            api: cursor.api.clone(),
            group: group_name.to_owned(),
            position,
        };
        deliveries.push(Received::new(message, Box::new(settle)));
    }
    deliveries
}

impl EventConsumer for MemoryEventConsumer {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<Received>>> {
        async move {
            let hub = self.hub.clone();
            let arrived = hub.events.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let deliveries = self.take();
            if !deliveries.is_empty() {
                return Ok(deliveries);
            }
            if tokio::time::timeout(READ_WAIT, arrived).await.is_ok() {
                return Ok(self.take());
            }
            Ok(Vec::new())
        }
        .boxed()
    }

    fn restart(&mut self) {
        for cursor in &mut self.apis {
            cursor.own_pending = Some(0);
        }
    }

    fn restart_delay(&self) -> Duration {
        Duration::from_millis(100)
    }

    fn describe(&self) -> String {
        let apis: Vec<&str> = self.apis.iter().map(|cursor| cursor.api.as_str()).collect();
        format!(
            "group `{}` consumer `{}` on {} in memory",
            self.group,
            self.consumer,
            apis.join(", ")
        )
    }
}

/// Settles one delivered entry in memory.
struct MemorySettle {
    hub: Arc<Hub>,
    api: String,
    group: String,
    position: u64,
}

impl MemorySettle {
    fn settle(&self, dead: Option<&str>) {
        let mut streams = lock(&self.hub.events.by_api);
        let Some(stream) = streams.get_mut(&self.api) else {
            return;
        };
        if let Some(reason) = dead {
            if let Some(entry) = stream.entry(self.position) {
                let letter = DeadLetter {
                    message: entry.message.clone(),
                    reason: reason.to_owned(),
                    group: self.group.clone(),
                };
                stream.dead.push(letter);
            }
        }
        if let Some(group) = stream.groups.get_mut(&self.group) {
            group.pending.remove(&self.position);
        }
    }
}

impl Settle for MemorySettle {
    fn ack(&self) -> BoxFuture<'_, Result<()>> {
        self.settle(None);
        futures::future::ready(Ok(())).boxed()
    }

    fn dead_letter<'a>(&'a self, reason: &'a str) -> BoxFuture<'a, Result<()>> {
        self.settle(Some(reason));
        futures::future::ready(Ok(())).boxed()
    }
}

/// The events listeners of `api` set aside in the hub `namespace` (undecodable for them),
/// oldest first.
pub fn dead_letters(namespace: &str, api: &str) -> Vec<DeadLetter> {
    let hub = hub(namespace);
    let streams = lock(&hub.events.by_api);
    streams
        .get(api)
        .map(|stream| stream.dead.clone())
        .unwrap_or_default()
}

/// How many events of `api` are stored in the hub `namespace` (after trimming).
pub fn stored(namespace: &str, api: &str) -> usize {
    let hub = hub(namespace);
    let streams = lock(&hub.events.by_api);
    streams.get(api).map_or(0, |stream| stream.entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> EventMessage {
        EventMessage::new("auth", name, 1, Default::default())
    }

    #[test]
    fn ids_increase_and_logs_are_trimmed() {
        let mut stream = Stream::default();
        let a = stream.append(event("a"), "auth", Some(2));
        let b = stream.append(event("b"), "auth", Some(2));
        let c = stream.append(event("c"), "auth", Some(2));
        let parse = |id: &str| parse_id(id).unwrap();
        assert!(parse(&a) < parse(&b) && parse(&b) < parse(&c));
        assert_eq!(stream.entries.len(), 2);
        assert_eq!(stream.first, 1);
        assert_eq!(stream.start_of(&Since::Beginning), 1);
        assert_eq!(stream.start_of(&Since::New), 3);
        assert_eq!(stream.start_of(&Since::Id(b.clone())), 2);
        assert_eq!(stream.start_of(&Since::Id("0".into())), 1);
        assert!(stream.entry(0).is_none());
        assert_eq!(stream.entry(2).unwrap().message.event_name, "c");
    }
}
