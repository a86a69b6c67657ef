//! Where `inspect` looks: the Redis servers of the configuration's event transports, and
//! the event streams on them (or in the cache) that the filters allow.

use std::sync::Arc;

use lightbus::config::{StreamUse, DEFAULT_API};
use lightbus::transport::redis::{RedisServer, RedisServers};
use lightbus::Bus;

use super::{cache, Search};
use crate::error::{CliError, Result};

/// A Redis server holding events, and how its streams are laid out.
pub(super) struct EventServer {
    pub(super) server: Arc<RedisServer>,
    pub(super) stream_use: StreamUse,
}

/// One stream to search: where it is.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) server: Arc<RedisServer>,
    /// The server's directory in the cache.
    pub(super) server_key: String,
    pub(super) stream: String,
}

impl Target {
    pub(super) fn new(server: &Arc<RedisServer>, stream: String) -> Target {
        Target {
            server: server.clone(),
            server_key: cache::server_key(server.url().redacted()),
            stream,
        }
    }

    /// The stream's cache file, if there is a cache.
    pub(super) fn cache_path(&self) -> Option<std::path::PathBuf> {
        cache::path(&self.server_key, &self.stream)
    }
}

/// Parses a stream key into its API and, for a per-event stream, its event.
pub(super) fn parse_stream(key: &str) -> Option<(String, Option<String>)> {
    let name = key.strip_suffix(":stream")?;
    if let Some(api) = name.strip_suffix(".*") {
        return (!api.is_empty()).then(|| (api.to_owned(), None));
    }
    let (api, event) = name.rsplit_once('.')?;
    (!api.is_empty() && !event.is_empty()).then(|| (api.to_owned(), Some(event.to_owned())))
}

/// The `run_id` of the Redis instance behind `server` (`INFO server`): different after a
/// restart and on every other server (on a cluster, the masters' ids, sorted, joined).
pub(super) async fn run_id(server: &RedisServer) -> Result<String> {
    let infos: Vec<String> = server
        .on_each_master(redis::cmd("INFO").arg("server"))
        .await?;
    let mut ids: Vec<&str> = infos
        .iter()
        .filter_map(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("run_id:"))
                .map(str::trim)
        })
        .collect();
    ids.sort_unstable();
    Ok(ids.join(","))
}

/// The Redis servers holding events: every distinct event transport URL of the
/// configuration (the `default` entry and each named API).
pub(super) fn event_servers(bus: &Bus) -> Result<Vec<EventServer>> {
    let config = bus.config();
    let mut seen: Vec<&str> = Vec::new();
    let servers = RedisServers::new(config.tls());
    let mut found = Vec::new();
    let names = std::iter::once(DEFAULT_API).chain(config.file.apis.keys().map(String::as_str));
    for name in names {
        let Some(redis) = config.api(name).event_transport.redis() else {
            continue;
        };
        if seen.contains(&redis.url.as_str()) {
            continue;
        }
        seen.push(&redis.url);
        found.push(EventServer {
            server: servers.get(&redis.url)?,
            stream_use: redis.stream_use,
        });
    }
    if found.is_empty() {
        return Err(CliError::NotRedis {
            command: "inspect",
            transport: "event transport of every API",
        });
    }
    Ok(found)
}

/// Finds the event streams on every server with `SCAN`, keeping those the filters allow.
pub(super) async fn on_servers(servers: &[EventServer], search: &Search) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for EventServer { server, .. } in servers {
        let keys = server.scan("*:stream", "stream").await?;
        targets.extend(
            keys.into_iter()
                .filter(|key| wanted(search, key))
                .map(|key| Target::new(server, key)),
        );
    }
    Ok(targets)
}

/// The streams present in the cache that the filters allow, for `--cache-only`.
pub(super) fn in_cache(servers: &[EventServer], search: &Search) -> Result<Vec<Target>> {
    let root = cache::root().ok_or(CliError::NoHome)?;
    let mut targets = Vec::new();
    for EventServer { server, .. } in servers {
        let key = cache::server_key(server.url().redacted());
        targets.extend(
            cache::streams(&root, &key)
                .into_iter()
                .filter(|stream| wanted(search, stream))
                .map(|stream| Target::new(server, stream)),
        );
    }
    Ok(targets)
}

/// Whether the filters allow the stream named `key`.
fn wanted(search: &Search, key: &str) -> bool {
    parse_stream(key).is_some_and(|(api, event)| search.wants_stream(&api, event.as_deref()))
}

/// The error for a search that found no stream.
pub(super) fn nothing_found(search: &Search, servers: &[EventServer]) -> CliError {
    let args = &search.args;
    let filter = match (&args.api, &args.event) {
        (Some(api), Some(event)) => format!(" for --api {api} --event {event}"),
        (Some(api), None) => format!(" for --api {api}"),
        (None, Some(event)) => format!(" for --event {event}"),
        (None, None) => String::new(),
    };
    if args.cache_only {
        CliError::NoCachedStreams { filter }
    } else {
        let places: Vec<&str> = servers
            .iter()
            .map(|EventServer { server, .. }| server.url().redacted())
            .collect();
        CliError::NoStreams {
            filter,
            places: places.join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert_eq!(parse_stream("auth.*:stream"), Some(("auth".into(), None)));
        assert_eq!(
            parse_stream("my.auth.user_registered:stream"),
            Some(("my.auth".into(), Some("user_registered".into())))
        );
        assert_eq!(parse_stream("auth.*:stream:dead"), None);
        assert_eq!(parse_stream("plain:stream"), None);
    }
}
