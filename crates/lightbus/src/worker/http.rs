//! The worker's HTTP endpoint: `/metrics`, `/healthz`, `/readyz`. Off unless `run --http
//! ADDR` or the `observability.http` configuration key asks for it.
//!
//! - `/metrics`: every metric of the process in the Prometheus text format (see
//!   [`crate::observe::metrics`]); the lag, pending and queue-length gauges of this worker's own
//!   listeners and APIs are sampled from Redis every [`SAMPLE_INTERVAL`];
//! - `/healthz`: `200 ok` while the process runs;
//! - `/readyz`: `200` with a JSON report when the worker runs, Redis answers `PING` and every
//!   consumer is running; `503` with the same report, whose `reasons` say what is wrong,
//!   otherwise.
//!
//! A service with an HTTP server of its own can mount [`router`] there instead.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use crate::client::Bus;
use crate::error::{Error, Result};
use crate::observe::bus_state;
use crate::observe::metrics::{self, MetricsHandle};
use crate::transport::redis::event::{group_name, stream_key};
use crate::transport::redis::RedisServers;

/// How often the lag, pending and queue-length gauges are read from Redis.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// How long `/readyz` waits for Redis to answer `PING`.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Endpoint {
    bus: Bus,
    metrics: Option<MetricsHandle>,
    servers: Arc<RedisServers>,
}

/// The endpoint's routes for `bus`, for mounting in a service's own HTTP server. Installs
/// the Prometheus recorder (see [`metrics::install`]).
pub fn router(bus: &Bus) -> Router {
    let endpoint = Endpoint {
        bus: bus.clone(),
        metrics: metrics::install(),
        servers: Arc::new(RedisServers::new(bus.config().tls())),
    };
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(endpoint)
}

/// Binds `addr` (failing at once if it cannot), then serves [`router`] and samples the
/// Redis gauges until `stop` is cancelled.
pub async fn serve(
    bus: Bus,
    addr: SocketAddr,
    stop: CancellationToken,
) -> Result<impl std::future::Future<Output = Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::Config(crate::config::ConfigError::Invalid {
            origin: "run --http".to_owned(),
            key: "observability.http".to_owned(),
            message: format!("cannot serve HTTP on {addr}: {e}"),
        })
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!("HTTP endpoint on http://{bound}: /metrics /healthz /readyz");
    let app = router(&bus);
    Ok(async move {
        let sampler = tokio::spawn(sample(bus, stop.clone()));
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        sampler.abort();
        served.map_err(|e| {
            Error::Io(std::io::Error::other(format!(
                "the HTTP endpoint on {bound} failed: {e}"
            )))
        })
    })
}

async fn render_metrics(State(endpoint): State<Endpoint>) -> Response {
    match &endpoint.metrics {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "another metrics recorder is installed in this process: its exporter has the metrics\n",
        )
            .into_response(),
    }
}

async fn ready(State(endpoint): State<Endpoint>) -> Response {
    let redis = ping_all(&endpoint).await;
    let report = endpoint.bus.readiness().report(redis);
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

/// `PING`s every Redis server the bus's APIs and listeners use.
async fn ping_all(endpoint: &Endpoint) -> std::result::Result<(), String> {
    for url in redis_urls(&endpoint.bus) {
        let server = endpoint.servers.get(&url).map_err(|e| e.to_string())?;
        let ping = async {
            let mut connection = server.shared().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map_err(|e| server.error(e))
        };
        match tokio::time::timeout(PING_TIMEOUT, ping).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => {
                return Err(format!(
                    "{} did not answer PING within {PING_TIMEOUT:?}",
                    server.url().redacted()
                ))
            }
        }
    }
    Ok(())
}

/// The Redis URLs of the RPC and event transports of the bus's APIs and listeners.
fn redis_urls(bus: &Bus) -> BTreeSet<String> {
    let config = bus.config();
    let mut urls = BTreeSet::new();
    for api in bus.registered_apis() {
        let api = config.api(&api.name);
        urls.extend(api.rpc_transport.redis().map(|r| r.url.clone()));
        urls.extend(api.event_transport.redis().map(|r| r.url.clone()));
    }
    for (api, _) in listened(bus) {
        let api = config.api(&api);
        urls.extend(api.event_transport.redis().map(|r| r.url.clone()));
    }
    urls
}

/// `(api, stream, group)` of every listener of the bus, on Redis event transports.
fn listened(bus: &Bus) -> Vec<(String, (String, String))> {
    let config = bus.config();
    let mut found = Vec::new();
    for spec in bus.listeners().all() {
        for (api, event) in &spec.events {
            let Some(redis) = config.api(api).event_transport.redis() else {
                continue;
            };
            let service = redis
                .service_name
                .clone()
                .unwrap_or_else(|| bus.service_name().to_owned());
            let group = group_name(&service, &spec.name);
            let stream = stream_key(redis.stream_use, api, event);
            let entry = (api.clone(), (stream, group));
            if !found.contains(&entry) {
                found.push(entry);
            }
        }
    }
    found
}

/// Reads the gauges of this worker's listeners and APIs from Redis, every
/// [`SAMPLE_INTERVAL`], until `stop`.
async fn sample(bus: Bus, stop: CancellationToken) {
    let servers = RedisServers::new(bus.config().tls());
    loop {
        if let Err(error) = sample_once(&bus, &servers).await {
            tracing::debug!("cannot sample lag and queue lengths: {error}");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SAMPLE_INTERVAL) => {}
        }
    }
}

async fn sample_once(bus: &Bus, servers: &RedisServers) -> Result<()> {
    let config = bus.config();
    for api in bus.registered_apis() {
        let Some(redis) = config.api(&api.name).rpc_transport.redis().cloned() else {
            continue;
        };
        let server = servers.get(&redis.url)?;
        let mut connection = server.shared().await?;
        let length =
            bus_state::length(&mut connection, &bus_state::rpc_queue_key(&api.name), false)
                .await
                .map_err(|e| server.error(e))?;
        metrics::rpc_queue_sampled(&api.name, length);
    }
    for (api, (stream, group)) in listened(bus) {
        let Some(redis) = config.api(&api).event_transport.redis().cloned() else {
            continue;
        };
        let server = servers.get(&redis.url)?;
        let mut connection = server.shared().await?;
        let groups = bus_state::stream_groups(&mut connection, &stream)
            .await
            .map_err(|e| server.error(e))?;
        if let Some(state) = groups.iter().find(|g| g.group == group) {
            metrics::listener_sampled(&stream, &group, state.lag, state.pending);
        }
    }
    Ok(())
}
