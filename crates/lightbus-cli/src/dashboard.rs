//! `lightbus dashboard`: a live web page of the bus.
//!
//! A sampler reads the bus once a second — everything `lightbus status` shows, Redis's
//! command counter, the entries added to every stream, and the `internal.metrics` events
//! workers fire when `plugins.internal_metrics` is on — and turns it into one JSON
//! snapshot: rates of calls and events, RPC latency percentiles, lag, recent failures and
//! dead letters. The page receives the snapshots as server-sent events (`/events`, the last
//! ten minutes of history first) and draws them; `/api/status` answers the latest snapshot.
//! The page, its script and its styles are compiled into the binary.
//!
//! Where the numbers come from:
//! - events/s: the growth of every stream's `entries-added` (Redis ≥ 7), internal streams
//!   left out; works with any worker, Rust or Python, without plugins;
//! - calls/s and latency: `internal.metrics` (`rpc_call_received` → `rpc_response_sent` of
//!   one call id, worker side), so only for workers with that plugin on;
//! - Redis commands/s: `INFO stats` `total_commands_processed`;
//! - failures: dead-letter entries, calls received and not answered within
//!   `STUCK_AFTER` (30 s), and events received and not processed within it (from
//!   `internal.metrics`: a handler that failed or hangs).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::CliError;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use lightbus::observe::bus_state::{list, map, text};
use lightbus::transport::redis::RedisServers;
use lightbus::Bus;
use redis::Value;
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;

use crate::status::{self, BusStatus};

/// How often the bus is sampled.
const TICK: Duration = Duration::from_secs(1);
/// How many samples the charts keep (ten minutes).
const HISTORY: usize = 600;
/// A call or event received and not finished after this long counts as a failure.
const STUCK_AFTER: f64 = 30.0;
/// How many recent failures the page lists.
const FAILURES_KEPT: usize = 50;

/// `dashboard`: serve the live page.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  lightbus dashboard\n  lightbus dashboard --bind 0.0.0.0:8080")]
pub struct DashboardArgs {
    /// Address to serve the page on.
    #[arg(long, default_value = "127.0.0.1:8642", value_name = "ADDR")]
    pub bind: SocketAddr,
}

/// One point of the charts.
#[derive(Debug, Clone, Copy, Serialize)]
struct Point {
    /// Unix seconds.
    t: f64,
    events_per_second: f64,
    calls_per_second: f64,
    redis_commands_per_second: f64,
    lag: u64,
}

/// A failure or dead letter shown on the page.
#[derive(Debug, Clone, Serialize)]
struct Failure {
    /// Unix seconds.
    t: f64,
    kind: &'static str,
    what: String,
    detail: String,
}

/// What the sampler remembers between ticks.
struct Sampler {
    bus: Bus,
    servers: RedisServers,
    last: Option<(Instant, HashMap<String, u64>, u64)>,
    metrics_cursor: Option<String>,
    /// Call id → (received at, `api.procedure`, process).
    calls: HashMap<String, (f64, String, String)>,
    /// Event id → (received at, `api.event`, process).
    events: HashMap<String, (f64, String, String)>,
    /// (finished at, seconds) of answered calls.
    latencies: VecDeque<(f64, f64)>,
    answered: u64,
    failures: VecDeque<Failure>,
    dead_seen: HashMap<String, String>,
}

struct Shared {
    history: Mutex<VecDeque<Point>>,
    latest: Mutex<serde_json::Value>,
    ticks: broadcast::Sender<String>,
}

/// Runs the dashboard until interrupted.
pub async fn run(bus: Bus, args: DashboardArgs) -> crate::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|source| CliError::Serve {
            address: args.bind,
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(args.bind);
    eprintln!("lightbus dashboard: http://{bound}/");
    let shared = Arc::new(Shared {
        history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        latest: Mutex::new(serde_json::Value::Null),
        ticks: broadcast::channel(16).0,
    });
    tokio::spawn(sample_forever(
        Sampler {
            servers: RedisServers::new(bus.config().tls()),
            bus,
            last: None,
            metrics_cursor: None,
            calls: HashMap::new(),
            events: HashMap::new(),
            latencies: VecDeque::new(),
            answered: 0,
            failures: VecDeque::new(),
            dead_seen: HashMap::new(),
        },
        shared.clone(),
    ));
    let app = Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/status", get(latest))
        .route("/events", get(events))
        .with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(lightbus::cli::shutdown_signal())
        .await
        .map_err(|source| CliError::Serve {
            address: bound,
            source,
        })
}

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");

fn page(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

async fn latest(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(
        shared
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    )
}

/// The history, then one snapshot per tick.
async fn events(
    State(shared): State<Arc<Shared>>,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let receiver = shared.ticks.subscribe();
    let history: Vec<Point> = shared
        .history
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .copied()
        .collect();
    let first = Event::default()
        .event("history")
        .data(json!({ "points": history }).to_string());
    let latest = shared
        .latest
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut opening = vec![Ok(first)];
    if !latest.is_null() {
        opening.push(Ok(Event::default().event("tick").data(latest.to_string())));
    }
    let ticks = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(tick) => return Some((Ok(Event::default().event("tick").data(tick)), receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(futures::StreamExt::chain(
        futures::stream::iter(opening),
        ticks,
    ))
    .keep_alive(KeepAlive::default())
}

async fn sample_forever(mut sampler: Sampler, shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let snapshot = match sampler.sample().await {
            Ok((snapshot, point)) => {
                let mut history = shared.history.lock().unwrap_or_else(|p| p.into_inner());
                if history.len() == HISTORY {
                    history.pop_front();
                }
                history.push_back(point);
                snapshot
            }
            Err(error) => json!({ "error": error.to_string(), "t": status_now() }),
        };
        let text = snapshot.to_string();
        *shared.latest.lock().unwrap_or_else(|p| p.into_inner()) = snapshot;
        let _ = shared.ticks.send(text);
    }
}

fn status_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Removes from `started` (id → (received at, name, process)) what has waited longer than
/// [`STUCK_AFTER`], as failures of `kind` described by `detail(id, process)`.
fn take_stuck(
    started: &mut HashMap<String, (f64, String, String)>,
    now: f64,
    kind: &'static str,
    detail: impl Fn(&str, &str) -> String,
) -> Vec<Failure> {
    let mut stuck = Vec::new();
    started.retain(|id, (at, name, process)| {
        let late = now - *at > STUCK_AFTER;
        if late {
            stuck.push(Failure {
                t: *at,
                kind,
                what: name.clone(),
                detail: detail(id, process),
            });
        }
        !late
    });
    stuck
}

/// The value of quantile `q` of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

impl Sampler {
    async fn sample(&mut self) -> crate::Result<(serde_json::Value, Point)> {
        let status = status::collect(&self.bus, &self.servers).await?;
        let now = status.taken_at;
        let config = self.bus.config().api("default");
        let url = config
            .event_transport
            .redis()
            .map(|redis| redis.url.clone())
            .ok_or(CliError::NotRedis {
                command: "dashboard",
                transport: "default API's event transport",
            })?;
        let server = self.servers.get(&url)?;
        let mut connection = server.shared().await?;
        let infos: Vec<String> = server
            .on_each_master(redis::cmd("INFO").arg("stats"))
            .await?;
        let commands: u64 = infos
            .iter()
            .filter_map(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("total_commands_processed:"))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .sum();
        self.read_metrics(&mut connection, now)
            .await
            .map_err(|e| server.error(e))?;
        self.read_dead_letters(&mut connection, &status)
            .await
            .map_err(|e| server.error(e))?;

        let added: HashMap<String, u64> = status
            .streams
            .iter()
            .filter(|s| !s.stream.starts_with("internal."))
            .filter_map(|s| Some((s.stream.clone(), s.entries_added?)))
            .collect();
        let answered = std::mem::take(&mut self.answered);
        let instant = Instant::now();
        let mut by_stream = BTreeMap::new();
        let (events_per_second, calls_per_second, commands_per_second) = match &self.last {
            Some((then, before, commands_before)) => {
                let seconds = instant.duration_since(*then).as_secs_f64().max(0.001);
                let mut total = 0.0;
                for (stream, count) in &added {
                    let rate =
                        count.saturating_sub(*before.get(stream).unwrap_or(count)) as f64 / seconds;
                    by_stream.insert(stream.clone(), rate);
                    total += rate;
                }
                (
                    total,
                    answered as f64 / seconds,
                    commands.saturating_sub(*commands_before) as f64 / seconds,
                )
            }
            None => (0.0, 0.0, 0.0),
        };
        self.last = Some((instant, added, commands));

        while self.latencies.front().is_some_and(|(t, _)| now - t > 60.0) {
            self.latencies.pop_front();
        }
        let mut sorted: Vec<f64> = self.latencies.iter().map(|(_, s)| *s * 1000.0).collect();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let lag = status.groups.iter().map(|g| g.lag).sum();
        let point = Point {
            t: now,
            events_per_second,
            calls_per_second,
            redis_commands_per_second: commands_per_second,
            lag,
        };
        let snapshot = json!({
            "t": now,
            "point": point,
            "status": status,
            "stream_rates": by_stream,
            "latency_ms": {
                "window_seconds": 60,
                "count": sorted.len(),
                "p50": quantile(&sorted, 0.50),
                "p90": quantile(&sorted, 0.90),
                "p99": quantile(&sorted, 0.99),
            },
            "metrics_plugin_seen": self.metrics_cursor.as_deref().is_some_and(|c| c != "0-0"),
            "failures": self.failures,
        });
        Ok((snapshot, point))
    }

    /// Reads the `internal.metrics` events fired since the last tick.
    async fn read_metrics(
        &mut self,
        connection: &mut lightbus::transport::redis::SharedConnection,
        now: f64,
    ) -> redis::RedisResult<()> {
        const STREAM: &str = "internal.metrics.*:stream";
        let cursor = match &self.metrics_cursor {
            Some(cursor) => cursor.clone(),
            None => {
                // Start from the newest entry: history before the dashboard is not replayed.
                let newest: Value = redis::cmd("XREVRANGE")
                    .arg(STREAM)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(connection)
                    .await?;
                let id = list(newest)
                    .into_iter()
                    .next()
                    .map(|entry| text(list(entry).first()))
                    .unwrap_or_else(|| "0-0".to_owned());
                self.metrics_cursor = Some(id.clone());
                id
            }
        };
        let reply: Value = redis::cmd("XRANGE")
            .arg(STREAM)
            .arg(format!("({cursor}"))
            .arg("+")
            .arg("COUNT")
            .arg(50_000)
            .query_async(connection)
            .await?;
        for entry in list(reply) {
            let mut parts = list(entry).into_iter();
            let id = text(parts.next().as_ref());
            let fields = map(parts.next().unwrap_or(Value::Nil));
            self.metrics_cursor = Some(id);
            let field = |name: &str| -> serde_json::Value {
                serde_json::from_str(&text(fields.get(&format!(":{name}")))).unwrap_or_default()
            };
            let string = |name: &str| field(name).as_str().unwrap_or_default().to_owned();
            let at = field("timestamp").as_f64().unwrap_or(now);
            match text(fields.get("event_name")).as_str() {
                "rpc_call_received" => {
                    let name = format!("{}.{}", string("api_name"), string("procedure_name"));
                    self.calls
                        .insert(string("id"), (at, name, string("process_name")));
                }
                "rpc_response_sent" => {
                    if let Some((received, _, _)) = self.calls.remove(&string("id")) {
                        self.latencies.push_back((now, (at - received).max(0.0)));
                    }
                    self.answered += 1;
                }
                "event_received" => {
                    let name = format!("{}.{}", string("api_name"), string("event_name"));
                    self.events
                        .insert(string("event_id"), (at, name, string("process_name")));
                }
                "event_processed" => {
                    self.events.remove(&string("event_id"));
                }
                _ => {}
            }
        }
        let mut failures = take_stuck(&mut self.calls, now, "rpc", |id, process| {
            format!("call {id} received by {process}, no response within {STUCK_AFTER} s")
        });
        failures.extend(take_stuck(&mut self.events, now, "event", |id, process| {
            format!(
                "event {id} received by {process}, not processed within {STUCK_AFTER} s \
                 (its handler failed or hangs)"
            )
        }));
        for failure in failures {
            self.remember(failure);
        }
        Ok(())
    }

    /// Reads new entries of every dead-letter stream.
    async fn read_dead_letters(
        &mut self,
        connection: &mut lightbus::transport::redis::SharedConnection,
        status: &BusStatus,
    ) -> redis::RedisResult<()> {
        for stream in status.streams.iter().filter(|s| s.dead_letters > 0) {
            let dead = format!("{}:dead", stream.stream);
            let seen = self.dead_seen.get(&dead).cloned();
            let reply: Value = redis::cmd("XREVRANGE")
                .arg(&dead)
                .arg("+")
                .arg(
                    seen.as_ref()
                        .map(|id| format!("({id}"))
                        .unwrap_or_else(|| "-".into()),
                )
                .arg("COUNT")
                .arg(10)
                .query_async(connection)
                .await?;
            let entries = list(reply);
            let mut newest = None;
            for entry in entries.into_iter().rev() {
                let mut parts = list(entry).into_iter();
                let id = text(parts.next().as_ref());
                let fields = map(parts.next().unwrap_or(Value::Nil));
                let millis = id.split('-').next().and_then(|ms| ms.parse::<f64>().ok());
                self.remember(Failure {
                    t: millis.map(|ms| ms / 1000.0).unwrap_or(status.taken_at),
                    kind: "dead letter",
                    what: format!(
                        "{}.{}",
                        text(fields.get("api_name")),
                        text(fields.get("event_name"))
                    ),
                    detail: format!(
                        "{} (group {}, entry {} of {})",
                        text(fields.get("error")),
                        text(fields.get("consumer_group")),
                        text(fields.get("original_id")),
                        stream.stream
                    ),
                });
                newest = Some(id);
            }
            if let Some(id) = newest {
                self.dead_seen.insert(dead, id);
            }
        }
        Ok(())
    }

    fn remember(&mut self, failure: Failure) {
        if self.failures.len() == FAILURES_KEPT {
            self.failures.pop_back();
        }
        self.failures.push_front(failure);
    }
}

#[cfg(test)]
mod tests {
    use super::{quantile, take_stuck, STUCK_AFTER};
    use std::collections::HashMap;

    #[test]
    fn calls_waiting_too_long_become_failures() {
        let mut started = HashMap::new();
        started.insert(
            "old".to_owned(),
            (100.0, "auth.check".to_owned(), "p1".to_owned()),
        );
        started.insert(
            "new".to_owned(),
            (129.0, "auth.check".to_owned(), "p2".to_owned()),
        );
        let stuck = take_stuck(
            &mut started,
            100.0 + STUCK_AFTER + 1.0,
            "rpc",
            |id, process| format!("{id} at {process}"),
        );
        assert_eq!(stuck.len(), 1);
        assert_eq!(
            (stuck[0].kind, stuck[0].detail.as_str()),
            ("rpc", "old at p1")
        );
        assert_eq!(stuck[0].what, "auth.check");
        assert!(started.contains_key("new") && !started.contains_key("old"));
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), Some(50.0));
        assert_eq!(quantile(&values, 0.99), Some(99.0));
        assert_eq!(quantile(&[3.0], 0.9), Some(3.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
