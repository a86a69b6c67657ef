//! The RustStream 0.7 side of `bench/peers.py`: one binary, three workloads.
//!
//! - `consume --url U --stream S --group G -n N [--pipeline]`: a service with one
//!   `#[subscriber]` on `RedisStream::new(S).group(G)` (a new group, read from the stream's
//!   start), mounted as is or with `.pipeline()`; prints one JSON line once N events were
//!   handled, `per_sec` = N ÷ (service start → Nth handled).
//! - `fire --url U --stream S -n N -c C`: N messages published through the broker's stream
//!   publisher by C concurrent tasks; prints one JSON line.
//! - `idle --url U --stream S --group G`: the one-subscriber service, running until SIGTERM.
//!
//! Not part of the lightbus-rs workspace; `bench/peers.py` builds it on demand.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ruststream::{Broker, ConnectedBroker};
use ruststream_fred::stream::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// The message every workload moves: a small JSON object, like a lightbus event without
/// arguments (its id travels in the body here).
#[derive(Debug, Serialize, Deserialize, Outgoing)]
struct FireMe {
    id: u64,
}

/// Events handled so far and how many the run waits for.
static HANDLED: AtomicUsize = AtomicUsize::new(0);
static WANTED: AtomicUsize = AtomicUsize::new(usize::MAX);
static ALL_IN: Notify = Notify::const_new();

/// The stream and the consumer group, from the command line (the attribute's source is
/// evaluated when the service is built, after `main` set them).
static STREAM: OnceLock<String> = OnceLock::new();
static GROUP: OnceLock<String> = OnceLock::new();

fn stream_key() -> String {
    STREAM.get().cloned().unwrap_or_default()
}

fn group_name() -> String {
    GROUP.get().cloned().unwrap_or_default()
}

/// Counts the event and acknowledges it. The subscription: a new group reading the stream from
/// its first entry, with one named consumer.
#[subscriber(
    RedisStream::new(stream_key())
        .group(group_name())
        .consumer("peer-1")
        .start_id(StreamStart::Beginning)
)]
async fn count(event: &FireMe) -> HandlerOutcome {
    let _ = event.id;
    if HANDLED.fetch_add(1, Ordering::Relaxed) + 1 == WANTED.load(Ordering::Relaxed) {
        ALL_IN.notify_one();
    }
    HandlerOutcome::ack()
}

struct Args {
    command: String,
    url: String,
    stream: String,
    group: String,
    requests: usize,
    concurrency: usize,
    pipeline: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let command = raw.next().ok_or("usage: ruststream-peer-bench consume|fire|idle [options]")?;
    let mut args = Args {
        command,
        url: "redis://127.0.0.1:6379".to_owned(),
        stream: "peers.fire_me".to_owned(),
        group: "peers".to_owned(),
        requests: 100_000,
        concurrency: 64,
        pipeline: false,
    };
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value()?,
            "--stream" => args.stream = value()?,
            "--group" => args.group = value()?,
            "-n" | "--requests" => args.requests = value()?.parse().map_err(|e| format!("{e}"))?,
            "-c" | "--concurrency" => {
                args.concurrency = value()?.parse().map_err(|e| format!("{e}"))?;
            }
            "--pipeline" => args.pipeline = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

/// The one-subscriber service, the subscriber mounted as is or with `.pipeline()`.
fn app(args: &Args, pipeline: bool) -> RustStream {
    STREAM.get_or_init(|| args.stream.clone());
    GROUP.get_or_init(|| args.group.clone());
    RustStream::new(AppInfo::new("peers-bench", "0.1.0")).with_broker(
        RedisBroker::standalone(args.url.clone()),
        move |b| {
            if pipeline {
                b.include(count.pipeline());
            } else {
                b.include(count);
            }
        },
    )
}

async fn consume(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    WANTED.store(args.requests, Ordering::Relaxed);
    let started = Instant::now();
    let running = app(args, args.pipeline).start().await?;
    if args.requests > 0 {
        ALL_IN.notified().await;
    }
    let seconds = started.elapsed().as_secs_f64();
    running.shutdown().await?;
    let per_sec = args.requests as f64 / seconds;
    eprintln!("consume: {} events in {seconds:.2} s, {per_sec:.0}/s", args.requests);
    println!(
        "{{\"scenario\":\"consume\",\"pipeline\":{},\"requests\":{},\"seconds\":{seconds},\"per_sec\":{per_sec}}}",
        args.pipeline, args.requests
    );
    Ok(())
}

async fn fire(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let broker = RedisBroker::standalone(args.url.clone()).connect().await?;
    let publisher = Arc::new(broker.publisher());
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency.max(1) {
        let (publisher, next, errors) = (publisher.clone(), next.clone(), errors.clone());
        let (stream, total) = (args.stream.clone(), args.requests);
        tasks.push(tokio::spawn(async move {
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id >= total {
                    break;
                }
                let event = FireMe { id: id as u64 };
                if publisher.message(&event).to(stream.as_str()).publish().await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(publisher);
    broker.shutdown().await?;
    let per_sec = args.requests as f64 / seconds;
    let errors = errors.load(Ordering::Relaxed);
    eprintln!("fire: {} events in {seconds:.2} s, {per_sec:.0}/s, {errors} errors", args.requests);
    println!(
        "{{\"scenario\":\"fire\",\"requests\":{},\"concurrency\":{},\"errors\":{errors},\"seconds\":{seconds},\"per_sec\":{per_sec}}}",
        args.requests, args.concurrency
    );
    Ok(())
}

async fn idle(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // `run` returns on SIGINT / SIGTERM, after a graceful shutdown.
    app(args, false).run().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let outcome = match args.command.as_str() {
        "consume" => consume(&args).await,
        "fire" => fire(&args).await,
        "idle" => idle(&args).await,
        other => Err(format!("unknown command {other}").into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
