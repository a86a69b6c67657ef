//! `inspect --follow`: after the stored events, new ones as they are fired, until SIGINT
//! or SIGTERM (or until stdout is closed).
//!
//! One `XREAD BLOCK` per server over all of its followed streams, each from the last id
//! read, so no event fired meanwhile is missed and none is consumed. What is followed is
//! also appended to the cache.

use std::sync::Arc;

use lightbus::config::StreamUse;
use lightbus::transport::redis::event::{read_reply, stream_key};
use lightbus::transport::redis::RedisServer;

use super::discover::{EventServer, Target};
use super::{bad_reply, cache, decode, history, Search, PAGE};
use crate::error::{CliError, Result};

/// How long one `XREAD` blocks before the next round (milliseconds).
const BLOCK_MS: u64 = 250;

/// A stream being followed, and the id of the last entry read from it.
pub(super) type Cursor = (Target, String);

/// Follows `cursors`, and, for an `--api` without wildcards, its stream even if it does not
/// exist yet (for per-event streams, when `--event` names one event).
pub(super) async fn follow(
    servers: &[EventServer],
    mut cursors: Vec<Cursor>,
    search: &mut Search,
    use_cache: bool,
) -> Result<()> {
    let awaited = servers.first().and_then(|first| {
        let args = &search.args;
        let stream = awaited_stream(first.stream_use, args.api.as_deref(), args.event.as_deref())?;
        Some((first, stream))
    });
    if let Some((first, stream)) = awaited {
        if !cursors.iter().any(|(target, _)| target.stream == stream) {
            let target = Target::new(&first.server, stream);
            cursors.push((target, history::START.to_owned()));
        }
    }
    if cursors.is_empty() {
        return Err(CliError::NothingToFollow);
    }
    tracing::info!(
        "following {}",
        cursors
            .iter()
            .map(|(target, _)| target.stream.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // One reader per server (per hash slot on a cluster): `XREAD BLOCK` on its streams.
    let mut by_server: Vec<(Arc<RedisServer>, Vec<Cursor>)> = Vec::new();
    for (target, last) in cursors {
        match by_server
            .iter_mut()
            .find(|(server, _)| Arc::ptr_eq(server, &target.server))
        {
            Some((_, list)) => list.push((target, last)),
            None => by_server.push((target.server.clone(), vec![(target, last)])),
        }
    }
    let mut groups: Vec<(Arc<RedisServer>, Vec<Cursor>)> = Vec::new();
    for (server, list) in by_server {
        for part in server.by_slot(list, |(target, _)| target.stream.clone()) {
            groups.push((server.clone(), part));
        }
    }
    let shutdown = lightbus::cli::shutdown_signal();
    tokio::pin!(shutdown);
    let mut connections = Vec::with_capacity(groups.len());
    for (server, _) in &groups {
        connections.push(server.dedicated().await?);
    }
    loop {
        for ((server, list), connection) in groups.iter_mut().zip(connections.iter_mut()) {
            let mut command = redis::cmd("XREAD");
            command
                .arg("COUNT")
                .arg(PAGE)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS");
            for (target, _) in list.iter() {
                command.arg(&target.stream);
            }
            for (_, last) in list.iter() {
                command.arg(last);
            }
            let reply: redis::Value = tokio::select! {
                () = &mut shutdown => return Ok(()),
                reply = command.query_async(connection) => reply.map_err(|e| server.error(e))?,
            };
            let streams = read_reply(reply).map_err(|e| {
                let streams: Vec<&str> = list.iter().map(|(t, _)| t.stream.as_str()).collect();
                bad_reply(server, &streams.join(", "), e)
            })?;
            for (stream, entries) in streams {
                let Some((target, last)) = list.iter_mut().find(|(t, _)| t.stream == stream) else {
                    continue;
                };
                let path = if use_cache { target.cache_path() } else { None };
                let mut cache = cache::Writer::open(path.as_deref(), false);
                for entry in &entries {
                    last.clone_from(&entry.0);
                    if let Some(message) = decode(&stream, entry) {
                        cache.append(&message);
                        search.offer(&message, &stream)?;
                    }
                }
                cache.flush();
                if !search.printer.flush()? {
                    return Ok(());
                }
            }
        }
        tokio::task::yield_now().await;
    }
}

/// The stream `--api` (without wildcards) names, when it can be known before it exists:
/// the API's stream, or with per-event streams the one `--event` names exactly.
fn awaited_stream(stream_use: StreamUse, api: Option<&str>, event: Option<&str>) -> Option<String> {
    let api = api.filter(|api| !api.contains('*'))?;
    match stream_use {
        StreamUse::PerApi => Some(stream_key(stream_use, api, "")),
        _ => {
            let event = event.filter(|event| !event.contains('*'))?;
            Some(stream_key(stream_use, api, event))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_api_names_its_stream_before_it_exists() {
        let per_api = StreamUse::PerApi;
        let per_event = StreamUse::PerEvent;
        assert_eq!(
            awaited_stream(per_api, Some("auth"), None).as_deref(),
            Some("auth.*:stream")
        );
        assert_eq!(
            awaited_stream(per_api, Some("auth"), Some("user_*")).as_deref(),
            Some("auth.*:stream")
        );
        assert_eq!(awaited_stream(per_api, Some("au*"), None), None);
        assert_eq!(awaited_stream(per_api, None, Some("paid")), None);
        assert_eq!(
            awaited_stream(per_event, Some("auth"), Some("paid")).as_deref(),
            Some("auth.paid:stream")
        );
        assert_eq!(awaited_stream(per_event, Some("auth"), Some("p*")), None);
        assert_eq!(awaited_stream(per_event, Some("auth"), None), None);
    }
}
