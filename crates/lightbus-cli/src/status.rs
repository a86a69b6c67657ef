//! `lightbus status`: the bus at a glance, read from Redis without changing anything.
//!
//! - APIs: every API with a schema on the bus (`schemas`, `schema:{api}`), how long ago its
//!   schema was refreshed (from the key's remaining TTL and the configured `bus.schema.ttl`)
//!   and its RPC queue's length;
//! - workers: the latest `internal.state` event of each process (alive while it pings, gone
//!   after `worker_stopped` or when its pings stop), and the clients blocked in `BLPOP` /
//!   `BLMPOP` (workers waiting on queues, and callers waiting for results);
//! - every consumer group of every stream, with lag, pending entries and consumers (idle
//!   time each), and the length of each dead-letter stream (`<stream>:dead`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use lightbus::config::Config;
use lightbus::observe::bus_state::{self, list, map, number, text, GroupState};
use lightbus::transport::redis::SharedConnection;
use lightbus::transport::redis::{RedisServer, RedisServers};
use lightbus::Bus;
use redis::Value;
use serde::Serialize;

/// `status`: show the bus.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  lightbus status\n  lightbus status --json | jq .groups")]
pub struct StatusArgs {
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The bus as Redis shows it at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct BusStatus {
    /// Unix seconds when it was read.
    pub taken_at: f64,
    /// The Redis servers read (passwords hidden).
    pub redis: Vec<String>,
    /// APIs with a schema on the bus, or a queue.
    pub apis: Vec<ApiStatus>,
    /// Processes known from `internal.state` events.
    pub workers: Vec<WorkerStatus>,
    /// Clients blocked in a list pop.
    pub blocked_clients: Vec<BlockedClient>,
    /// Every consumer group of every stream.
    pub groups: Vec<GroupState>,
    /// Streams with their lengths and dead letters.
    pub streams: Vec<StreamStatus>,
}

/// One API.
#[derive(Debug, Clone, Serialize)]
pub struct ApiStatus {
    /// Its name.
    pub name: String,
    /// Seconds since a worker last stored its schema (`None`: no schema on the bus).
    pub schema_age_seconds: Option<f64>,
    /// Seconds until the schema expires unless refreshed.
    pub schema_expires_in_seconds: Option<f64>,
    /// Its RPCs and events, from the schema.
    pub rpcs: Vec<String>,
    /// Its events, from the schema.
    pub events: Vec<String>,
    /// Calls waiting in `{api}:rpc_queue`.
    pub queue_length: u64,
}

/// One process, from its latest `internal.state` event.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// The process name.
    pub process_name: String,
    /// Its service.
    pub service_name: String,
    /// `alive` (started or pinged within two ping intervals), `silent` (pings stopped) or
    /// `stopped`.
    pub state: String,
    /// Seconds since its latest event.
    pub last_seen_seconds: f64,
    /// Its APIs.
    pub api_names: Vec<String>,
    /// `api.event` of its listeners.
    pub listening_for: Vec<String>,
}

/// A client blocked in a list pop.
#[derive(Debug, Clone, Serialize)]
pub struct BlockedClient {
    /// Its address.
    pub addr: String,
    /// Its connection name, if set.
    pub name: String,
    /// The blocking command (`blpop`, `blmpop`).
    pub command: String,
    /// Seconds since it connected.
    pub age_seconds: u64,
}

/// One stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    /// The stream key.
    pub stream: String,
    /// Entries in it.
    pub length: u64,
    /// Entries ever added (Redis ≥ 7), for rates.
    pub entries_added: Option<u64>,
    /// Entries in `<stream>:dead`.
    pub dead_letters: u64,
}

/// Runs `status`.
pub async fn run(bus: Bus, args: StatusArgs) -> lightbus::Result<()> {
    let status = collect(&bus, &RedisServers::new(bus.config().tls())).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).unwrap_or_default()
        );
    } else {
        print!("{}", render_table(&status));
    }
    Ok(())
}

/// The Redis servers of the bus: the default API's transports and the schema store.
fn servers(
    config: &Config,
    servers: &RedisServers,
) -> lightbus::Result<Vec<std::sync::Arc<RedisServer>>> {
    let api = config.api("default");
    let mut urls = BTreeSet::new();
    urls.extend(api.rpc_transport.redis().map(|r| r.url.clone()));
    urls.extend(api.event_transport.redis().map(|r| r.url.clone()));
    urls.extend(config.bus().schema.transport.redis().map(|r| r.url.clone()));
    urls.iter().map(|url| servers.get(url)).collect()
}

/// Reads the bus's state from Redis.
pub async fn collect(bus: &Bus, redis: &RedisServers) -> lightbus::Result<BusStatus> {
    let now = unix_now();
    let schema_ttl = bus.config().bus().schema.ttl.secs() as f64;
    let mut status = BusStatus {
        taken_at: now,
        redis: Vec::new(),
        apis: Vec::new(),
        workers: Vec::new(),
        blocked_clients: Vec::new(),
        groups: Vec::new(),
        streams: Vec::new(),
    };
    let mut apis: BTreeMap<String, ApiStatus> = BTreeMap::new();
    let mut workers: BTreeMap<String, WorkerStatus> = BTreeMap::new();
    for server in servers(bus.config(), redis)? {
        status.redis.push(server.url().redacted().to_owned());
        let mut connection = server.shared().await?;
        let fail = |e: redis::RedisError| server.error(e);
        read_schemas(&mut connection, schema_ttl, &mut apis)
            .await
            .map_err(fail)?;
        for queue in server.scan("*:rpc_queue", "list").await? {
            let name = queue.trim_end_matches(":rpc_queue").to_owned();
            let length = bus_state::length(&mut connection, &queue, false)
                .await
                .map_err(fail)?;
            apis.entry(name.clone())
                .or_insert_with(|| ApiStatus::named(name))
                .queue_length = length;
        }
        let streams = server.scan("*:stream", "stream").await?;
        for stream in streams {
            status.groups.extend(
                bus_state::stream_groups(&mut connection, &stream)
                    .await
                    .map_err(fail)?,
            );
            let info = map(redis::cmd("XINFO")
                .arg("STREAM")
                .arg(&stream)
                .query_async::<Value>(&mut connection)
                .await
                .map_err(fail)?);
            let dead_letters = bus_state::length(&mut connection, &format!("{stream}:dead"), true)
                .await
                .map_err(fail)?;
            if stream.starts_with("internal.state.") {
                read_workers(&mut connection, &stream, now, &mut workers)
                    .await
                    .map_err(fail)?;
            }
            status.streams.push(StreamStatus {
                length: number(info.get("length")).unwrap_or(0),
                entries_added: number(info.get("entries-added")),
                stream,
                dead_letters,
            });
        }
        status
            .blocked_clients
            .extend(blocked_clients(&server).await?);
    }
    for api in apis.values_mut() {
        if let Some(expires) = api.schema_expires_in_seconds {
            api.schema_age_seconds = Some((schema_ttl - expires).max(0.0));
        }
    }
    status.apis = apis.into_values().collect();
    status.workers = workers.into_values().collect();
    Ok(status)
}

impl ApiStatus {
    fn named(name: String) -> Self {
        ApiStatus {
            name,
            schema_age_seconds: None,
            schema_expires_in_seconds: None,
            rpcs: Vec::new(),
            events: Vec::new(),
            queue_length: 0,
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The APIs of the `schemas` set, their members and their schemas' remaining TTL.
async fn read_schemas(
    connection: &mut SharedConnection,
    schema_ttl: f64,
    apis: &mut BTreeMap<String, ApiStatus>,
) -> redis::RedisResult<()> {
    let names: Vec<String> = redis::cmd("SMEMBERS")
        .arg("schemas")
        .query_async(connection)
        .await?;
    for name in names {
        let key = format!("schema:{name}");
        let (schema, ttl_ms): (Option<String>, i64) = redis::pipe()
            .get(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(connection)
            .await?;
        let Some(schema) = schema else {
            continue; // expired: its workers are gone
        };
        let parsed: serde_json::Value = serde_json::from_str(&schema).unwrap_or_default();
        let names_of = |part: &str| -> Vec<String> {
            parsed[part]
                .as_object()
                .map(|members| members.keys().cloned().collect())
                .unwrap_or_default()
        };
        let api = apis
            .entry(name.clone())
            .or_insert_with(|| ApiStatus::named(name));
        api.rpcs = names_of("rpcs");
        api.events = names_of("events");
        api.schema_expires_in_seconds = Some(if ttl_ms >= 0 {
            ttl_ms as f64 / 1000.0
        } else {
            schema_ttl
        });
    }
    Ok(())
}

/// The latest `internal.state` event per process, from the newest 1,000 entries.
async fn read_workers(
    connection: &mut SharedConnection,
    stream: &str,
    now: f64,
    workers: &mut BTreeMap<String, WorkerStatus>,
) -> redis::RedisResult<()> {
    let entries: Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1000)
        .query_async(connection)
        .await?;
    for entry in list(entries) {
        let mut parts = list(entry).into_iter();
        let fields = map(parts.nth(1).unwrap_or(Value::Nil));
        let json = |name: &str| -> serde_json::Value {
            serde_json::from_str(&text(fields.get(&format!(":{name}")))).unwrap_or_default()
        };
        let Some(process_name) = json("process_name").as_str().map(str::to_owned) else {
            continue;
        };
        if workers.contains_key(&process_name) {
            continue; // newest first: already seen
        }
        let event = text(fields.get("event_name"));
        let timestamp = json("timestamp").as_f64().unwrap_or(0.0);
        let interval = json("ping_interval").as_f64().unwrap_or(60.0);
        let age = (now - timestamp).max(0.0);
        let state = if event == "worker_stopped" {
            "stopped"
        } else if age <= 2.0 * interval + 5.0 {
            "alive"
        } else {
            "silent"
        };
        let strings = |name: &str| -> Vec<String> {
            json(name)
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        workers.insert(
            process_name.clone(),
            WorkerStatus {
                service_name: json("service_name").as_str().unwrap_or_default().to_owned(),
                process_name,
                state: state.to_owned(),
                last_seen_seconds: age,
                api_names: strings("api_names"),
                listening_for: strings("listening_for"),
            },
        );
    }
    Ok(())
}

/// Clients blocked in `BLPOP`, `BRPOP` or `BLMPOP` (`CLIENT LIST`).
async fn blocked_clients(server: &RedisServer) -> lightbus::Result<Vec<BlockedClient>> {
    let listings: Vec<String> = server
        .on_each_master(redis::cmd("CLIENT").arg("LIST"))
        .await?;
    Ok(listings
        .iter()
        .flat_map(|listing| listing.lines())
        .filter_map(|line| {
            let fields: BTreeMap<&str, &str> = line
                .split(' ')
                .filter_map(|pair| pair.split_once('='))
                .collect();
            let command = *fields.get("cmd")?;
            let blocked = fields.get("flags").is_some_and(|flags| flags.contains('b'));
            (blocked && matches!(command, "blpop" | "brpop" | "blmpop")).then(|| BlockedClient {
                addr: fields.get("addr").copied().unwrap_or_default().to_owned(),
                name: fields.get("name").copied().unwrap_or_default().to_owned(),
                command: command.to_owned(),
                age_seconds: fields.get("age").and_then(|a| a.parse().ok()).unwrap_or(0),
            })
        })
        .collect())
}

/// Seconds as `4s`, `3m12s`, `2h05m`.
pub fn human_duration(seconds: f64) -> String {
    let whole = seconds.max(0.0).round() as u64;
    match whole {
        0..=59 => format!("{whole}s"),
        60..=3599 => format!("{}m{:02}s", whole / 60, whole % 60),
        _ => format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60),
    }
}

/// Lays out rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    if rows.is_empty() {
        out.push_str("  (none)\n");
    }
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// The status as text tables.
pub fn render_table(status: &BusStatus) -> String {
    let mut out = format!("Redis: {}\n\nAPIs\n", status.redis.join(", "));
    out.push_str(&table(
        &["API", "SCHEMA AGE", "RPCS", "EVENTS", "QUEUED"],
        status
            .apis
            .iter()
            .map(|api| {
                vec![
                    api.name.clone(),
                    api.schema_age_seconds
                        .map(human_duration)
                        .unwrap_or_else(|| "no schema".into()),
                    api.rpcs.len().to_string(),
                    api.events.len().to_string(),
                    api.queue_length.to_string(),
                ]
            })
            .collect(),
    ));
    out.push_str("\nWorkers (internal.state)\n");
    out.push_str(&table(
        &["PROCESS", "SERVICE", "STATE", "LAST SEEN", "APIS"],
        status
            .workers
            .iter()
            .map(|worker| {
                vec![
                    worker.process_name.clone(),
                    worker.service_name.clone(),
                    worker.state.clone(),
                    format!("{} ago", human_duration(worker.last_seen_seconds)),
                    worker.api_names.join(", "),
                ]
            })
            .collect(),
    ));
    out.push_str(&format!(
        "\nBlocked in list pops (workers waiting on queues, callers waiting for results): {}\n",
        status.blocked_clients.len()
    ));
    out.push_str("\nConsumer groups\n");
    out.push_str(&table(
        &["STREAM", "GROUP", "LAG", "PENDING", "CONSUMERS (IDLE)"],
        status
            .groups
            .iter()
            .map(|group| {
                let consumers: Vec<String> = group
                    .consumers
                    .iter()
                    .map(|c| format!("{} ({})", c.name, human_duration(c.idle_ms as f64 / 1000.0)))
                    .collect();
                vec![
                    group.stream.clone(),
                    group.group.clone(),
                    format!("{}{}", group.lag, if group.lag_capped { "+" } else { "" }),
                    group.pending.to_string(),
                    consumers.join(", "),
                ]
            })
            .collect(),
    ));
    out.push_str("\nStreams\n");
    out.push_str(&table(
        &["STREAM", "LENGTH", "DEAD LETTERS"],
        status
            .streams
            .iter()
            .map(|stream| {
                vec![
                    stream.stream.clone(),
                    stream.length.to_string(),
                    stream.dead_letters.to_string(),
                ]
            })
            .collect(),
    ));
    out
}
