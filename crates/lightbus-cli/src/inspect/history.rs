//! Reading what one stream holds: the cache first, then Redis for what is newer, page by
//! page with `XRANGE` (never a consumer group, so nothing is taken from any listener).

use std::io::IsTerminal;

use lightbus::transport::redis::event::{id_after, id_order, range_reply};
use lightbus::transport::redis::Connection;

use super::discover::Target;
use super::{bad_reply, cache, decode, Search, PAGE};
use crate::error::Result;

/// Streams longer than this get a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 10_000;

/// The id before every entry, where an empty stream's reading stops.
pub(super) const START: &str = "0-0";

/// Searches one stream (cache first, then Redis); returns the last id seen, where
/// `--follow` continues.
pub(super) async fn search(
    target: &Target,
    search: &mut Search,
    use_cache: bool,
) -> Result<String> {
    let path = if use_cache { target.cache_path() } else { None };
    if search.args.cache_only {
        let Some(path) = path else {
            return Ok(START.to_owned());
        };
        let last = cache::read(&path, &target.stream, search)?;
        return Ok(last.unwrap_or_else(|| START.to_owned()));
    }
    let mut connection = target.server.dedicated().await?;
    // A single entry by its id: no need to read the rest.
    if let Some(native_id) = search.args.native_id.clone() {
        let reply: redis::Value = redis::cmd("XRANGE")
            .arg(&target.stream)
            .arg(&native_id)
            .arg(&native_id)
            .query_async(&mut connection)
            .await
            .map_err(|e| target.server.error(e))?;
        let entries =
            range_reply(reply).map_err(|e| bad_reply(&target.server, &target.stream, e))?;
        for entry in &entries {
            if let Some(message) = decode(&target.stream, entry) {
                search.offer(&message, &target.stream)?;
            }
        }
        return newest_id(&mut connection, target).await;
    }
    let newest = newest_id(&mut connection, target).await?;
    let mut start = "-".to_owned();
    let mut truncate = false;
    if let Some(path) = &path {
        // Read the cache, unless Redis was emptied since (its newest entry would be newer
        // than anything the stream holds).
        let stale = cache::last_id(path)
            .as_deref()
            .and_then(id_order)
            .zip(id_order(&newest))
            .is_some_and(|(cached, newest)| cached > newest);
        if stale {
            tracing::warn!(
                "the cache of `{}` is newer than the stream (was Redis emptied?); rebuilding it",
                target.stream
            );
            truncate = true;
        } else if let Some(last) = cache::read(path, &target.stream, search)? {
            start = id_after(&last).unwrap_or(last);
        }
    }
    let mut cache = cache::Writer::open(path.as_deref(), truncate);
    let total: u64 = redis::cmd("XLEN")
        .arg(&target.stream)
        .query_async(&mut connection)
        .await
        .map_err(|e| target.server.error(e))?;
    let progress = progress_bar(total, &target.stream);
    while !search.printer.is_closed() {
        let reply: redis::Value = redis::cmd("XRANGE")
            .arg(&target.stream)
            .arg(&start)
            .arg(&newest)
            .arg("COUNT")
            .arg(PAGE)
            .query_async(&mut connection)
            .await
            .map_err(|e| target.server.error(e))?;
        let entries =
            range_reply(reply).map_err(|e| bad_reply(&target.server, &target.stream, e))?;
        let Some(next) = entries.last().and_then(|(last, _)| id_after(last)) else {
            break;
        };
        for entry in &entries {
            if let Some(message) = decode(&target.stream, entry) {
                cache.append(&message);
                search.offer(&message, &target.stream)?;
            }
        }
        if let Some(bar) = &progress {
            bar.inc(entries.len() as u64);
        }
        if entries.len() < PAGE {
            break;
        }
        start = next;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    cache.flush();
    Ok(newest)
}

/// The id of the newest entry of a stream ([`START`] when it is empty).
async fn newest_id(connection: &mut Connection, target: &Target) -> Result<String> {
    let reply: redis::Value = redis::cmd("XREVRANGE")
        .arg(&target.stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(connection)
        .await
        .map_err(|e| target.server.error(e))?;
    let entries = range_reply(reply).map_err(|e| bad_reply(&target.server, &target.stream, e))?;
    Ok(entries
        .into_iter()
        .next()
        .map_or_else(|| START.to_owned(), |(id, _)| id))
}

/// A progress bar on stderr for a long stream, when stderr is a terminal.
fn progress_bar(total: u64, stream: &str) -> Option<indicatif::ProgressBar> {
    if total < PROGRESS_FROM || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:40}] {pos}/{len} entries ({per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(stream.to_owned());
    Some(bar)
}
