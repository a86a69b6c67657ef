//! `bench`: load generators for the scenario of upstream's benchmark suite.
//!
//! The `benchmark` API has one RPC, `call_me() -> true`, and one event, `fire_me` with no
//! parameters. `bench serve` serves it; `bench rpc` calls it; `bench fire` fires its event
//! (the bench process registers the API, so it is authoritative); `bench ping` measures a
//! raw Redis `PING` round trip through the same client library: the floor any RPC is
//! measured against.
//!
//! Each load command prints a human summary on stderr and, as its last stdout line, one
//! JSON object: `scenario`, `requests`, `concurrency`, `errors`, `seconds`, `per_sec`,
//! `p50_ms`, `p90_ms`, `p99_ms`, `max_ms` (latencies from an HDR histogram).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use serde_json::json;

use crate::api::{ApiBuilder, DynamicApi, Kwargs};
use crate::client::Bus;
use crate::config::RpcTransportSelector;
use crate::error::{Error, Result};
use crate::transport::redis::RedisServers;
use crate::worker::{Features, Worker};

/// `bench`: measure the bus.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    lightbus bench serve &\n  \
    lightbus bench rpc --concurrency 64 --requests 100000\n  \
    lightbus bench fire --concurrency 64 --requests 200000\n  \
    lightbus bench ping --requests 20000")]
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
    Rpc(LoadArgs),
    /// Fire `benchmark.fire_me` and measure how fast events are stored.
    Fire(LoadArgs),
    /// Send Redis `PING`s: the physical floor of a round trip.
    Ping(LoadArgs),
}

/// Options of `bench serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The most calls executed at once.
    #[arg(long, default_value_t = 256)]
    pub max_concurrency: usize,
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
}

/// The `benchmark` API of upstream's benchmark suite.
pub fn benchmark_api() -> DynamicApi {
    ApiBuilder::new("benchmark")
        .rpc("call_me", [], |_kwargs: Kwargs| async {
            Ok::<_, std::convert::Infallible>(serde_json::Value::Bool(true))
        })
        .event("fire_me", [])
        .build()
}

/// Runs a bench scenario.
pub async fn run(bus: Bus, args: BenchArgs) -> Result<()> {
    match args.scenario {
        Scenario::Serve(serve) => {
            bus.register(benchmark_api())?;
            Worker::new(bus)
                .features(Features {
                    rpcs: true,
                    events: false,
                    tasks: false,
                })
                .max_concurrency(serve.max_concurrency)
                .run(super::shutdown_signal())
                .await
        }
        Scenario::Rpc(load) => {
            let report = measure("rpc", &load, move || {
                let bus = bus.clone();
                async move {
                    let valid: bool = bus.call("benchmark.call_me", ()).await?;
                    if valid {
                        Ok(())
                    } else {
                        Err(Error::Codec("benchmark.call_me() returned false".into()))
                    }
                }
            })
            .await?;
            report.print();
            Ok(())
        }
        Scenario::Fire(load) => {
            bus.register(benchmark_api())?;
            let report = measure("fire", &load, move || {
                let bus = bus.clone();
                async move {
                    bus.fire_raw("benchmark", "fire_me", Kwargs::new())
                        .await
                        .map(drop)
                }
            })
            .await?;
            report.print();
            Ok(())
        }
        Scenario::Ping(load) => {
            let RpcTransportSelector::Redis(rpc) = &bus.config().api("benchmark").rpc_transport
            else {
                return Err(Error::Unknown(
                    "bench ping measures Redis: the `benchmark` API's rpc_transport is not redis"
                        .to_owned(),
                ));
            };
            let server = RedisServers::default().get(&rpc.url)?;
            let connection = server.dedicated().await?;
            let report = measure("ping", &load, move || {
                let mut connection = connection.clone();
                let server = server.clone();
                async move {
                    redis::cmd("PING")
                        .query_async::<String>(&mut connection)
                        .await
                        .map(drop)
                        .map_err(|e| server.error(e))
                }
            })
            .await?;
            report.print();
            Ok(())
        }
    }
}

/// The outcome of one load scenario.
struct Report {
    scenario: &'static str,
    requests: usize,
    concurrency: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Histogram<u64>,
}

impl Report {
    fn quantile_ms(&self, quantile: f64) -> f64 {
        self.latencies_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn print(&self) {
        let seconds = self.elapsed.as_secs_f64();
        let per_sec = if seconds > 0.0 {
            self.requests as f64 / seconds
        } else {
            0.0
        };
        let (p50, p90, p99) = (
            self.quantile_ms(0.50),
            self.quantile_ms(0.90),
            self.quantile_ms(0.99),
        );
        let max = self.latencies_us.max() as f64 / 1000.0;
        eprintln!(
            "{}: {} requests, concurrency {}, {:.2} s, {:.0}/s, latency p50 {:.3} ms, p90 {:.3} ms, \
             p99 {:.3} ms, max {:.3} ms, {} errors",
            self.scenario,
            self.requests,
            self.concurrency,
            seconds,
            per_sec,
            p50,
            p90,
            p99,
            max,
            self.errors
        );
        let line = json!({
            "scenario": self.scenario,
            "requests": self.requests,
            "concurrency": self.concurrency,
            "errors": self.errors,
            "seconds": seconds,
            "per_sec": per_sec,
            "p50_ms": p50,
            "p90_ms": p90,
            "p99_ms": p99,
            "max_ms": max,
        });
        println!("{line}");
    }
}

/// Runs `load.warmup` unmeasured requests, then `load.requests` measured ones spread over
/// `load.concurrency` tasks, each timing its own requests.
async fn measure<F, Fut>(scenario: &'static str, load: &LoadArgs, request: F) -> Result<Report>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let concurrency = load.concurrency.max(1);
    for _ in 0..load.warmup {
        request().await?;
    }
    let remaining = Arc::new(AtomicUsize::new(load.requests));
    // One histogram for all tasks: 64 of them (~50 KB each) made recording a cache miss.
    let latencies_us = Arc::new(Mutex::new(new_histogram()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let request = request.clone();
        let remaining = remaining.clone();
        let latencies_us = latencies_us.clone();
        tasks.spawn(async move {
            let mut errors = 0usize;
            let mut first_error = None;
            while take_one(&remaining) {
                let sent = Instant::now();
                match request().await {
                    Ok(()) => {
                        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        let _ = latencies_us
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .record(micros.max(1));
                    }
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                }
            }
            (errors, first_error)
        });
    }
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (task_errors, first_error) =
            joined.map_err(|e| Error::Codec(format!("a benchmark task failed: {e}")))?;
        errors += task_errors;
        if let Some(error) = first_error {
            eprintln!("{scenario}: request failed: {error}");
        }
    }
    let elapsed = started.elapsed();
    let latencies_us = std::mem::replace(
        &mut *latencies_us.lock().unwrap_or_else(|p| p.into_inner()),
        new_histogram(),
    );
    Ok(Report {
        scenario,
        requests: load.requests,
        concurrency,
        errors,
        elapsed,
        latencies_us,
    })
}

fn take_one(remaining: &AtomicUsize) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// Microseconds from 1 µs to 10 minutes, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}
