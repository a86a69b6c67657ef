//! `listen`: consume events as a real listener and print each as one JSON line.
//!
//! `lightbus listen auth.user_registered billing.paid` subscribes as the listener
//! `--listener-name` (default `cli-listen`) through the library's public
//! [`Bus::subscribe_with`]: it joins the consumer group `{service_name}-{listener_name}` of
//! each API's stream, exactly as a worker's listener of that name would, and prints every
//! event it receives on stdout as one JSON object:
//!
//! ```text
//! {"id":"…","api_name":"auth","event_name":"user_registered","version":1,"native_id":"1700000000000-0","kwargs":{"username":"admin"}}
//! ```
//!
//! Guarantees:
//! - an event is acknowledged only after its line was written to stdout and flushed, so
//!   nothing is lost if the command is killed (the unacknowledged events are delivered again,
//!   to this listener name, as to any listener: at least once);
//! - the deliveries in hand are written with one `write` of the locked stdout, then
//!   acknowledged together (one pipelined round trip);
//! - SIGINT / SIGTERM stop reading; what was already read is printed and acknowledged
//!   first;
//! - `--count N` stops after N events; events read beyond them stay unacknowledged and come
//!   back later, to this consumer or (after the acknowledgement timeout) to another
//!   consumer of the group;
//! - a closed stdout (`lightbus listen … | head`) ends the command quietly, leaving what was
//!   not printed unacknowledged;
//! - a failed read is logged and retried with back-off by the subscription; the command
//!   goes on until stopped.
//!
//! `--since` applies only when the consumer group is created: a listener name that was used
//! before resumes where it stopped.

use std::future::Future;
use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use futures::StreamExt;
use lightbus::{Bus, Delivery, EventMessage, Since, SubscribeOptions};

use crate::error::{CliError, Result};
use crate::record::write_json_line;

/// The listener name `lightbus listen` uses unless told otherwise.
pub const DEFAULT_LISTENER_NAME: &str = "cli-listen";

/// `listen`: consume events and print them as JSON lines.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Each event is one JSON line on stdout: \
    {\"id\", \"api_name\", \"event_name\", \"version\", \"native_id\", \"kwargs\"}.\n\n\
    Examples:\n  \
    lightbus listen auth.user_registered\n  \
    lightbus listen auth.user_registered auth.user_deleted billing.paid\n  \
    lightbus listen auth.user_registered --since 0 --service-name ops --listener-name replay\n  \
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
/// use lightbus_cli::listen::parse_since;
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

/// Runs `listen` until interrupted, `--count` events were printed, or stdout is closed.
pub async fn run(bus: Bus, args: ListenArgs) -> Result<()> {
    let events: Vec<&str> = args.events.iter().map(String::as_str).collect();
    let mut remaining = args.count.unwrap_or(u64::MAX);
    // No point reading more than `--count` asks for.
    let batch_size = args
        .batch_size
        .min(usize::try_from(remaining).unwrap_or(usize::MAX))
        .max(1);
    let options = SubscribeOptions::new()
        .since(args.since.clone().unwrap_or_default())
        .batch_size(batch_size);
    let subscription = bus.subscribe_with(&args.listener_name, &events, options)?;
    tracing::info!(
        "listening as `{}` to {}",
        args.listener_name,
        events.join(", ")
    );
    // Every delivery ready at once forms one batch: one write, one round of acknowledgements.
    let mut batches = subscription.ready_chunks(batch_size);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let signal = lightbus::cli::shutdown_signal();
    tokio::pin!(signal);
    let mut interrupted = false;
    while remaining > 0 {
        let batch = if interrupted {
            batches.next().await
        } else {
            tokio::select! {
                batch = batches.next() => batch,
                () = &mut signal => {
                    tracing::info!("interrupted: printing what was read, then stopping");
                    batches.get_ref().close();
                    interrupted = true;
                    continue;
                }
            }
        };
        let Some(batch) = batch else {
            break; // closed, and everything read was handled
        };
        let mut deliveries: Vec<Delivery> = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Ok(delivery) => deliveries.push(delivery),
                Err(error) => tracing::warn!("cannot consume events: {error}; retrying"),
            }
        }
        // Beyond `--count`: dropped unacknowledged, to be delivered again.
        deliveries.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
        if deliveries.is_empty() {
            continue;
        }
        let (messages, settlers): (Vec<EventMessage>, Vec<_>) =
            deliveries.into_iter().map(Delivery::into_parts).unzip();
        out.clear();
        for message in &messages {
            write_json_line(&mut out, message);
        }
        if !print(&out)? {
            return Ok(()); // stdout is gone: nobody reads any more
        }
        remaining -= messages.len() as u64;
        acknowledge(&messages, settlers.into_iter().map(|settler| settler.ack())).await;
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
        Err(error) => Err(CliError::Output(error)),
    }
}

/// Acknowledges a batch at once (the acknowledgements are pipelined on one connection).
/// What cannot be acknowledged is delivered again; each failure is logged.
async fn acknowledge(
    messages: &[EventMessage],
    acks: impl IntoIterator<Item = impl Future<Output = lightbus::Result<()>>>,
) {
    let outcomes = futures::future::join_all(acks).await;
    for (message, outcome) in messages.iter().zip(outcomes) {
        if let Err(error) = outcome {
            tracing::warn!(
                "cannot acknowledge {} ({}): {error}; it will be delivered again",
                message.canonical_name(),
                message.native_id.as_deref().unwrap_or("?")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
