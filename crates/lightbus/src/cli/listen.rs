//! `listen`: consume events as a real listener and print each as one JSON line.
//!
//! `lightbus listen auth.user_registered billing.paid` joins the consumer group
//! `{service_name}-{listener_name}` of each API's stream, exactly as a worker's listener of
//! that name would, and prints every event it receives on stdout as one JSON object:
//!
//! ```text
//! {"id":"…","api_name":"auth","event_name":"user_registered","version":1,"native_id":"1700000000000-0","kwargs":{"username":"admin"}}
//! ```
//!
//! Guarantees:
//! - an event is acknowledged only after its line was written to stdout, so nothing is lost
//!   if the command is killed (the unacknowledged events are delivered again, to this
//!   listener name, as to any listener: at least once);
//! - a batch is written with one `write` of the locked stdout, never interleaved with another
//!   API's batch;
//! - SIGINT / SIGTERM stop reading; the batch in hand is printed and acknowledged first;
//! - `--count N` stops after N events; events read beyond them in the last batch stay
//!   unacknowledged and come back later, to this consumer or (after the acknowledgement
//!   timeout) to another consumer of the group;
//! - a closed stdout (`lightbus listen … | head`) ends the command quietly.
//!
//! `--since` applies only when the consumer group is created: a listener name that was used
//! before resumes where it stopped.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::api::Kwargs;
use crate::client::{split_member, Bus};
use crate::error::{Error, Result};
use crate::listener::Since;
use crate::message::EventMessage;
use crate::transport::redis::Backoff;
use crate::transport::{ConsumeRequest, Delivery, EventConsumer};

/// The listener name `lightbus listen` uses unless told otherwise.
pub const DEFAULT_LISTENER_NAME: &str = "cli-listen";

/// `listen`: consume events and print them as JSON lines.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Each event is one JSON line on stdout: \
    {\"id\", \"api_name\", \"event_name\", \"version\", \"native_id\", \"kwargs\"}.\n\n\
    Examples:\n  \
    lightbus listen auth.user_registered\n  \
    lightbus listen auth.user_registered auth.user_deleted billing.paid\n  \
    lightbus listen auth.user_registered --since 0 --listener-name replay\n  \
    lightbus listen auth.user_registered --since 2024-05-01T12:00:00Z\n  \
    lightbus listen auth.user_registered --since 1714564800 --count 10\n  \
    lightbus listen auth.user_registered | jq .kwargs")]
pub struct ListenArgs {
    /// The events to consume, as `api.event`; several APIs may be mixed.
    #[arg(required = true, value_name = "API.EVENT")]
    pub events: Vec<String>,
    /// The listener's name. With the service name it names the consumer group, so it decides
    /// which events count as already seen.
    #[arg(long, short = 'l', default_value = DEFAULT_LISTENER_NAME, value_name = "NAME")]
    pub listener_name: String,
    /// Where a new consumer group starts: `0` (every event still stored), `$` (only new
    /// events, the default), a stream id such as `1700000000000-0`, an RFC 3339 time such as
    /// `2024-05-01T12:00:00Z`, or unix seconds such as `1714564800`.
    #[arg(long, value_name = "ID|TIME", value_parser = parse_since)]
    pub since: Option<Since>,
    /// Stop after printing this many events.
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    /// Entries read (and acknowledged) per round trip.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub batch_size: usize,
}

/// Parses `--since`: `0`, `$`, a stream id, an RFC 3339 time, or unix seconds.
///
/// ```
/// use lightbus::cli::listen::parse_since;
/// use lightbus::Since;
/// assert_eq!(parse_since("0"), Ok(Since::Beginning));
/// assert_eq!(parse_since("$"), Ok(Since::New));
/// assert_eq!(parse_since("1700000000000-3"), Ok(Since::Id("1700000000000-3".into())));
/// assert_eq!(parse_since("1700000000").unwrap().stream_id(), "1700000000000-0");
/// assert_eq!(parse_since("2023-11-14T22:13:20Z").unwrap().stream_id(), "1700000000000-0");
/// assert!(parse_since("yesterday").is_err());
/// ```
pub fn parse_since(text: &str) -> std::result::Result<Since, String> {
    let text = text.trim();
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    match text {
        "0" | "0-0" => return Ok(Since::Beginning),
        "$" | "new" => return Ok(Since::New),
        _ => {}
    }
    if let Some((ms, seq)) = text.split_once('-') {
        if digits(ms) && digits(seq) {
            return Ok(Since::Id(text.to_owned()));
        }
    }
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Ok(Since::Time(UNIX_EPOCH + Duration::from_secs_f64(seconds)));
        }
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        let millis = u64::try_from(time.timestamp_millis()).unwrap_or(0);
        return Ok(Since::Time(UNIX_EPOCH + Duration::from_millis(millis)));
    }
    Err(format!(
        "`{text}` is not a starting point: use 0, $, a stream id (1700000000000-0), an RFC 3339 \
         time (2024-05-01T12:00:00Z) or unix seconds (1714564800)"
    ))
}

/// One event as `listen` and `inspect` print it.
#[derive(Serialize)]
pub(crate) struct EventRecord<'a> {
    pub(crate) id: &'a str,
    pub(crate) api_name: &'a str,
    pub(crate) event_name: &'a str,
    pub(crate) version: u32,
    pub(crate) native_id: &'a str,
    pub(crate) kwargs: &'a Kwargs,
}

impl<'a> From<&'a EventMessage> for EventRecord<'a> {
    fn from(message: &'a EventMessage) -> Self {
        EventRecord {
            id: &message.id,
            api_name: &message.api_name,
            event_name: &message.event_name,
            version: message.version,
            native_id: message.native_id.as_deref().unwrap_or(""),
            kwargs: &message.kwargs,
        }
    }
}

/// Appends `message` to `out` as one JSON line.
pub(crate) fn write_json_line(out: &mut Vec<u8>, message: &EventMessage) -> Result<()> {
    serde_json::to_writer(&mut *out, &EventRecord::from(message))
        .map_err(|e| Error::Codec(format!("cannot encode an event as JSON: {e}")))?;
    out.push(b'\n');
    Ok(())
}

/// The events of each API, in first-seen order, without duplicates.
fn events_by_api(events: &[String]) -> Result<Vec<(String, Vec<String>)>> {
    let mut by_api: Vec<(String, Vec<String>)> = Vec::new();
    for member in events {
        let (api, event) = split_member(member)?;
        match by_api.iter_mut().find(|(name, _)| name == api) {
            Some((_, names)) => {
                if !names.iter().any(|name| name == event) {
                    names.push(event.to_owned());
                }
            }
            None => by_api.push((api.to_owned(), vec![event.to_owned()])),
        }
    }
    Ok(by_api)
}

/// Runs `listen` until interrupted (or `--count` events were printed).
pub async fn run(bus: Bus, args: ListenArgs) -> Result<()> {
    let since = args.since.clone().unwrap_or_default();
    let stop = CancellationToken::new();
    let printed = Arc::new(AtomicU64::new(0));
    let mut loops = Vec::new();
    for (api, events) in events_by_api(&args.events)? {
        let transports = bus.transports_for(&api)?;
        let consumer = transports.event.consumer(ConsumeRequest {
            listener_name: args.listener_name.clone(),
            api_name: api,
            events,
            since: since.clone(),
            service_name: bus.service_name().to_owned(),
            process_name: bus.process_name().to_owned(),
            // No point reading more than `--count` asks for.
            batch_size: Some(
                args.batch_size
                    .min(
                        args.count
                            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX)),
                    )
                    .max(1),
            ),
        });
        tracing::info!("listening: {}", consumer.describe());
        loops.push(consume(consumer, stop.clone(), printed.clone(), args.count));
    }
    let signal = async {
        super::shutdown_signal().await;
        tracing::info!("interrupted: finishing the batch in hand");
        stop.cancel();
    };
    let all = futures::future::try_join_all(loops);
    tokio::pin!(all);
    tokio::select! {
        result = &mut all => return result.map(drop),
        () = signal => {}
    }
    all.await.map(drop)
}

/// The loop of one API's consumer: read a batch, print it, acknowledge it.
async fn consume(
    mut consumer: Box<dyn EventConsumer>,
    stop: CancellationToken,
    printed: Arc<AtomicU64>,
    limit: Option<u64>,
) -> Result<()> {
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut backoff = Backoff::new(consumer.restart_delay());
    let reached = |printed: &AtomicU64| limit.is_some_and(|n| printed.load(Ordering::SeqCst) >= n);
    while !stop.is_cancelled() && !reached(&printed) {
        let batch = match consumer.next_batch().await {
            Ok(batch) => {
                backoff.reset();
                batch
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    "cannot consume events ({}): {error}; retrying in {delay:?}",
                    consumer.describe()
                );
                consumer.restart();
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        if batch.is_empty() {
            continue;
        }
        let take = match limit {
            Some(n) => {
                let before = printed
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |done| {
                        Some(done.saturating_add(batch.len() as u64).min(n))
                    })
                    .unwrap_or(n);
                usize::try_from(n.saturating_sub(before))
                    .unwrap_or(usize::MAX)
                    .min(batch.len())
            }
            None => {
                printed.fetch_add(batch.len() as u64, Ordering::SeqCst);
                batch.len()
            }
        };
        let batch = &batch[..take];
        out.clear();
        for delivery in batch {
            write_json_line(&mut out, &delivery.message)?;
        }
        if !print(&out)? {
            stop.cancel(); // stdout is gone: nobody reads any more
            break;
        }
        if !acknowledge(batch).await {
            consumer.restart();
        }
    }
    Ok(())
}

/// Writes `bytes` to the locked stdout and flushes. `false` when stdout was closed.
fn print(bytes: &[u8]) -> Result<bool> {
    let stdout = std::io::stdout();
    let mut locked = stdout.lock();
    match locked.write_all(bytes).and_then(|()| locked.flush()) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Acknowledges every delivery of a batch at once (the acknowledgements are pipelined on
/// one connection). `false` if any failed: those entries will be delivered again.
async fn acknowledge(batch: &[Delivery]) -> bool {
    let outcomes = futures::future::join_all(batch.iter().map(Delivery::ack)).await;
    let mut all_ok = true;
    for (delivery, outcome) in batch.iter().zip(outcomes) {
        if let Err(error) = outcome {
            all_ok = false;
            tracing::warn!(
                "cannot acknowledge {} ({}): {error}; it will be delivered again",
                delivery.message.canonical_name(),
                delivery.message.native_id.as_deref().unwrap_or("?")
            );
        }
    }
    all_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_grouped_by_api() {
        let events: Vec<String> = ["a.x", "b.y", "a.z", "a.x", "my.api.w"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            events_by_api(&events).unwrap(),
            vec![
                ("a".to_owned(), vec!["x".to_owned(), "z".to_owned()]),
                ("b".to_owned(), vec!["y".to_owned()]),
                ("my.api".to_owned(), vec!["w".to_owned()]),
            ]
        );
        assert!(events_by_api(&["nodot".to_owned()]).is_err());
    }

    #[test]
    fn since_accepts_ids_times_and_seconds() {
        assert_eq!(parse_since("new"), Ok(Since::New));
        assert_eq!(
            parse_since("2023-11-14T23:13:20+01:00")
                .unwrap()
                .stream_id(),
            "1700000000000-0"
        );
        assert_eq!(parse_since("1.5").unwrap().stream_id(), "1500-0");
        for bad in ["", "-1", "1-x", "soon"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn records_have_the_documented_keys() {
        let mut kwargs = Kwargs::new();
        kwargs.insert("username".into(), "admin".into());
        let mut message = EventMessage::new("auth", "user_registered", 2, kwargs);
        message.native_id = Some("5-1".into());
        let mut out = Vec::new();
        write_json_line(&mut out, &message).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "api_name",
                "event_name",
                "version",
                "native_id",
                "kwargs"
            ]
        );
        assert_eq!(value["kwargs"]["username"], "admin");
        assert_eq!(value["native_id"], "5-1");
    }
}
