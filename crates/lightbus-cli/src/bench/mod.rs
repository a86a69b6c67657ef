//! `bench`: load generators for the scenario of upstream's benchmark suite, and for fleets.
//!
//! The `benchmark` API has one RPC, `call_me() -> true`, and one event, `fire_me` with no
//! parameters, as upstream's; both also take an optional `payload` (any JSON, ignored), which
//! `bench rpc|fire --payload-bytes N` fills with an N-byte string to measure large messages
//! (`bench/memory_large.py`). `bench serve` serves it; `bench rpc` calls it; `bench fire`
//! fires its event (the bench process registers the API, so it is authoritative); `bench
//! listen` consumes fired events through a worker's listener, the path a service's
//! `bus.listen` handlers run on; `bench ping` measures a raw Redis `PING` round trip through
//! the same client library: the floor any RPC is measured against.
//!
//! With `--apis N` (N > 1) there are N such APIs, `benchmark_0` … `benchmark_{N-1}`: `serve`
//! serves them all (and with `--listen`, one listener over all their events), `rpc` and
//! `fire` spread their requests over them in turn. That is how a fleet's scaling is measured
//! (`bench/fleet.py`).
//!
//! Each load command prints a human summary on stderr and, as its last stdout line, one
//! JSON object: `scenario`, `requests`, `concurrency`, `errors`, `seconds`, `per_sec`,
//! `p50_ms`, `p90_ms`, `p99_ms`, `max_ms` (latencies from an HDR histogram).

mod measure;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use futures::future::BoxFuture;
use futures::FutureExt;
use lightbus::api::{
    Api, ApiDescriptor, EventDescriptor, Parameter, RpcDescriptor, RpcFailure, RpcOutcome,
};
use lightbus::config::RpcTransportSelector;
use lightbus::transport::redis::RedisServers;
use lightbus::worker::{Features, Worker};
use lightbus::{Bus, EventMessage, Kwargs, Since};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::error::{CliError, Result};
use measure::measure;

/// `bench`: measure the bus.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    lightbus bench serve &\n  \
    lightbus bench rpc --concurrency 64 --requests 100000\n  \
    lightbus bench fire --concurrency 64 --requests 200000\n  \
    lightbus bench listen --requests 200000\n  \
    lightbus bench ping --requests 20000\n  \
    lightbus bench serve --apis 100 --listen &\n  \
    lightbus bench rpc --apis 100 --concurrency 64 --requests 100000\n  \
    lightbus bench fire --payload-bytes 20000000 --requests 10 --warmup 0")]
pub struct BenchArgs {
    /// What to measure.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// The benchmark scenarios.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Serve the `benchmark` API until interrupted.
    Serve(ServeArgs),
    /// Call `benchmark.call_me()` and measure round trips.
    Rpc(MessageLoadArgs),
    /// Fire `benchmark.fire_me` and measure how fast events are stored.
    Fire(MessageLoadArgs),
    /// Consume `benchmark.fire_me` events through a worker's listener and measure how fast.
    Listen(ListenArgs),
    /// Send Redis `PING`s: the physical floor of a round trip.
    Ping(LoadArgs),
}

/// Options of `bench serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The most calls executed at once.
    #[arg(long, default_value_t = 256)]
    pub max_concurrency: usize,
    /// How many `benchmark` APIs to serve (`benchmark_0` … when more than one).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub apis: usize,
    /// Also run one listener, `bench_listen`, over the `fire_me` events of every API,
    /// printing a JSON line per event handled: `{"api", "native_id", "handled_unix_ms",
    /// "payload_bytes"}` (`payload_bytes`: the length of a string `payload`, else 0).
    #[arg(long)]
    pub listen: bool,
    /// Record the Prometheus metrics of `lightbus::observe` while serving (to measure what
    /// they cost).
    #[arg(long)]
    pub metrics: bool,
}

/// Options of `bench listen`.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Events to consume (fired beforehand, e.g. by `bench fire`).
    #[arg(long, short = 'n', default_value_t = 10_000)]
    pub requests: usize,
    /// The listener's name (with the service name, it names the consumer group: a new name
    /// reads the stream from its beginning).
    #[arg(long, default_value = "bench_listen", value_name = "NAME")]
    pub listener_name: String,
    /// How many events the listener handles at once.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub concurrency: usize,
}

/// Options of the load scenarios.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Requests in flight at once (one task each).
    #[arg(long, short = 'c', default_value_t = 1)]
    pub concurrency: usize,
    /// Requests to measure.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    pub requests: usize,
    /// Requests sent first and not measured (connections, caches).
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// Spread the requests over this many `benchmark` APIs, in turn (see `serve --apis`).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub apis: usize,
    /// Send every request to this one API (instead of spreading them).
    #[arg(long, value_name = "NAME", conflicts_with = "apis")]
    pub api: Option<String>,
    /// Record the Prometheus metrics of `lightbus::observe` while measuring (to measure
    /// what they cost).
    #[arg(long)]
    pub metrics: bool,
}

/// Options of `bench rpc` and `bench fire`: a load, and what each message carries.
#[derive(Debug, Clone, Args)]
pub struct MessageLoadArgs {
    /// The load.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Send every call or event with a `payload` argument: a string of this many bytes
    /// (built once, copied into each request). 0, the default, sends no argument, as upstream's benchmark
    /// does. For memory with large messages, e.g. `--payload-bytes 20000000 -n 10 --warmup 0`
    /// (the default `max_message_bytes` is 64 MiB).
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    pub payload_bytes: usize,
}

impl MessageLoadArgs {
    /// The keyword arguments every request sends.
    fn kwargs(&self) -> Kwargs {
        let mut kwargs = Kwargs::new();
        if self.payload_bytes > 0 {
            kwargs.insert(
                PAYLOAD.to_owned(),
                Value::String("x".repeat(self.payload_bytes)),
            );
        }
        kwargs
    }
}

impl LoadArgs {
    /// The APIs the requests go to, in turn.
    fn targets(&self) -> Vec<String> {
        match &self.api {
            Some(api) => vec![api.clone()],
            None => api_names(self.apis),
        }
    }
}

/// The names of `count` benchmark APIs: `benchmark` alone, or `benchmark_0` … .
pub fn api_names(count: usize) -> Vec<String> {
    match count {
        0 | 1 => vec!["benchmark".to_owned()],
        n => (0..n).map(|i| format!("benchmark_{i}")).collect(),
    }
}

/// The optional argument of `call_me` and `fire_me` that carries `--payload-bytes`.
const PAYLOAD: &str = "payload";

/// The `benchmark` API of upstream's benchmark suite.
pub fn benchmark_api() -> BenchmarkApi {
    named_benchmark_api("benchmark")
}

/// A `benchmark` API under another name.
fn named_benchmark_api(name: &str) -> BenchmarkApi {
    BenchmarkApi {
        name: name.to_owned(),
    }
}

/// The `benchmark` API: `call_me(payload=None) -> true` and the event `fire_me(payload=None)`.
///
/// Written out rather than built with `ApiBuilder`, whose parameters are all required: called
/// without arguments it is upstream's API, and a `payload` of any size is accepted and ignored.
#[derive(Debug, Clone)]
pub struct BenchmarkApi {
    name: String,
}

impl Api for BenchmarkApi {
    fn descriptor(&self) -> ApiDescriptor {
        let payload = || Parameter {
            required: false,
            ..Parameter::untyped(PAYLOAD)
        };
        ApiDescriptor {
            name: self.name.clone(),
            version: 1,
            rpcs: vec![RpcDescriptor {
                name: "call_me".to_owned(),
                parameters: vec![payload()],
                response: Value::Object(Default::default()),
            }],
            events: vec![EventDescriptor {
                name: "fire_me".to_owned(),
                parameters: vec![payload()],
            }],
        }
    }

    fn call(self: Arc<Self>, procedure: &str, kwargs: Kwargs) -> BoxFuture<'static, RpcOutcome> {
        let unknown = kwargs.keys().find(|key| *key != PAYLOAD);
        let outcome = if procedure != "call_me" {
            Err(RpcFailure::unknown_procedure(&self.name, procedure))
        } else if let Some(unknown) = unknown {
            Err(RpcFailure::invalid_arguments(
                &self.name,
                procedure,
                format!("unexpected argument `{unknown}` (expected: {PAYLOAD})"),
            ))
        } else {
            Ok(Value::Bool(true))
        };
        futures::future::ready(outcome).boxed()
    }
}

/// Runs a bench scenario.
pub async fn run(bus: Bus, args: BenchArgs) -> Result<()> {
    let metrics = match &args.scenario {
        Scenario::Serve(serve) => serve.metrics,
        Scenario::Rpc(message) | Scenario::Fire(message) => message.load.metrics,
        Scenario::Ping(load) => load.metrics,
        Scenario::Listen(_) => false,
    };
    if metrics {
        lightbus::observe::metrics::install();
    }
    match args.scenario {
        Scenario::Serve(serve) => {
            let names = api_names(serve.apis);
            for name in &names {
                bus.register(named_benchmark_api(name))?;
            }
            if serve.listen {
                let events: Vec<String> =
                    names.iter().map(|api| format!("{api}.fire_me")).collect();
                let events: Vec<&str> = events.iter().map(String::as_str).collect();
                bus.listen_raw(&events, "bench_listen", print_handled)?;
            }
            Worker::new(bus)
                .features(Features {
                    rpcs: true,
                    events: serve.listen,
                    tasks: false,
                })
                .max_concurrency(serve.max_concurrency)
                .run(lightbus::cli::shutdown_signal())
                .await?;
            Ok(())
        }
        Scenario::Rpc(message) => {
            let targets = Arc::new(message.load.targets());
            let kwargs = Arc::new(message.kwargs());
            let turn = Arc::new(AtomicUsize::new(0));
            let report = measure("rpc", &message.load, move || {
                let (bus, targets, turn) = (bus.clone(), targets.clone(), turn.clone());
                let kwargs = Kwargs::clone(&kwargs);
                async move {
                    let api = &targets[turn.fetch_add(1, Ordering::Relaxed) % targets.len()];
                    match bus.call_raw(api, "call_me", kwargs).await? {
                        Value::Bool(true) => Ok(()),
                        other => Err(CliError::UnexpectedAnswer(other)),
                    }
                }
            })
            .await?;
            report.print();
            Ok(())
        }
        Scenario::Fire(message) => {
            let targets = Arc::new(message.load.targets());
            for name in targets.iter() {
                bus.register(named_benchmark_api(name))?;
            }
            let kwargs = Arc::new(message.kwargs());
            let turn = Arc::new(AtomicUsize::new(0));
            let report = measure("fire", &message.load, move || {
                let (bus, targets, turn) = (bus.clone(), targets.clone(), turn.clone());
                let kwargs = Kwargs::clone(&kwargs);
                async move {
                    let api = &targets[turn.fetch_add(1, Ordering::Relaxed) % targets.len()];
                    bus.fire_raw(api, "fire_me", kwargs)
                        .await
                        .map(drop)
                        .map_err(CliError::from)
                }
            })
            .await?;
            report.print();
            Ok(())
        }
        Scenario::Listen(listen) => {
            let report = listen_through_a_worker(bus, &listen).await?;
            println!("{report}");
            Ok(())
        }
        Scenario::Ping(load) => {
            let RpcTransportSelector::Redis(rpc) = &bus.config().api("benchmark").rpc_transport
            else {
                return Err(CliError::NotRedis {
                    command: "bench ping",
                    transport: "`benchmark` API's rpc_transport",
                });
            };
            let server = RedisServers::new(bus.config().tls()).get(&rpc.url)?;
            let connection = server.dedicated().await?;
            let report = measure("ping", &load, move || {
                let mut connection = connection.clone();
                let server = server.clone();
                async move {
                    redis::cmd("PING")
                        .query_async::<String>(&mut connection)
                        .await
                        .map(drop)
                        .map_err(|e| CliError::from(server.error(e)))
                }
            })
            .await?;
            report.print();
            Ok(())
        }
    }
}

/// `serve --listen`'s handler: one JSON line per event handled, with the time it was.
async fn print_handled(message: EventMessage) {
    let handled_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64() * 1000.0);
    let payload_bytes = message
        .kwargs
        .get(PAYLOAD)
        .and_then(Value::as_str)
        .map_or(0, str::len);
    let line = json!({
        "api": message.api_name,
        "native_id": message.native_id,
        "handled_unix_ms": handled_unix_ms,
        "payload_bytes": payload_bytes,
    });
    println!("{line}");
}

/// Consumes `listen.requests` events of `benchmark.fire_me` with a worker whose listener
/// counts them: the code path of a service's `bus.listen` handlers (a consumer group read
/// with `XREADGROUP`, each event acknowledged). From the stream's beginning, for a new
/// listener name. Returns the JSON summary: `per_sec` = events ÷ (worker start → last event
/// handled).
async fn listen_through_a_worker(bus: Bus, listen: &ListenArgs) -> Result<Value> {
    let handled = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(Notify::new());
    let wanted = listen.requests;
    let (counter, done) = (handled.clone(), all_in.clone());
    bus.listener(&listen.listener_name)
        .since(Since::Beginning)
        .concurrency(listen.concurrency)
        .listen_raw(&["benchmark.fire_me"], move |_message: EventMessage| {
            if counter.fetch_add(1, Ordering::Relaxed) + 1 == wanted {
                done.notify_one();
            }
            std::future::ready(())
        })?;
    let started = Instant::now();
    let worker = Worker::new(bus)
        .features(Features {
            rpcs: false,
            events: true,
            tasks: false,
        })
        .spawn();
    if wanted > 0 {
        all_in.notified().await;
    }
    let seconds = started.elapsed().as_secs_f64();
    worker.stop().await?;
    let per_sec = if seconds > 0.0 {
        wanted as f64 / seconds
    } else {
        0.0
    };
    eprintln!("listen: {wanted} events in {seconds:.2} s, {per_sec:.0}/s");
    Ok(json!({
        "scenario": "listen",
        "requests": wanted,
        "concurrency": listen.concurrency,
        "errors": 0,
        "seconds": seconds,
        "per_sec": per_sec,
    }))
}
