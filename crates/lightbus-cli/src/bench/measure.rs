//! Measuring a load: requests spread over tasks, latencies in one HDR histogram, and the
//! report every scenario prints (a human line on stderr, a JSON line on stdout).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use super::LoadArgs;
use crate::error::{CliError, Result};

/// The outcome of one load scenario.
pub(super) struct Report {
    pub(super) scenario: &'static str,
    pub(super) requests: usize,
    pub(super) concurrency: usize,
    pub(super) errors: usize,
    pub(super) elapsed: Duration,
    pub(super) latencies_us: Histogram<u64>,
}

impl Report {
    fn quantile_ms(&self, quantile: f64) -> f64 {
        self.latencies_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub(super) fn print(&self) {
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
pub(super) async fn measure<F, Fut>(
    scenario: &'static str,
    load: &LoadArgs,
    request: F,
) -> Result<Report>
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
        let (task_errors, first_error) = joined.map_err(CliError::BenchTask)?;
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
