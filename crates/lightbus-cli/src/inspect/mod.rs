//! `inspect`: search the events stored on the bus, and watch new ones.
//!
//! Where it looks: every Redis server an API's event transport is configured with (the
//! `default` entry and each named API). On each it finds the event streams with `SCAN` for
//! keys matching `*:stream` (so it sees every API that ever fired, whether or not a worker
//! runs for it), and reads them with `XRANGE` (history) and `XREAD` (`--follow`). It never
//! joins a consumer group, so inspecting never takes an event away from a listener.
//!
//! What it prints: the matching events, oldest first per stream, in the same record as
//! `lightbus listen` (`--format json`, the default), indented (`pretty`) or as a readable
//! block (`human`). APIs named `internal.*` are left out unless `--internal` is given or
//! `--api` names them.
//!
//! The cache: every entry read is appended to a file per stream under
//! `~/.lightbus/inspect_cache/<server>/` (`$HOME` decides where `~` is). The next run reads
//! the file first and asks Redis only for newer entries, so repeated searches of a long
//! stream are fast, and events Redis trimmed away stay searchable. `--cache-only` searches
//! the files without contacting Redis. A cache whose newest entry is newer than anything in
//! the stream (Redis was emptied) is discarded and rebuilt.
//!
//! While it reads a long stream (over 10,000 entries) and stderr is a terminal, a progress
//! bar shows on stderr; stdout only ever carries events.
//!
//! One concern per file: `args` (the command line, [`InspectArgs`]), `query` (the filters),
//! `discover` (servers and streams), `history` (reading a stream, cache first), `cache`,
//! `follow`, and `print` (the formats).

mod args;
mod cache;
mod discover;
mod follow;
mod history;
mod print;
mod query;

pub use args::{Format, InspectArgs};
pub use query::{wildcard_match, JsonQuery, VersionFilter};

use lightbus::transport::redis::event::StreamEntry;
use lightbus::transport::redis::RedisServer;
use lightbus::{Bus, EventMessage};

use crate::error::{CliError, Result};
use print::Printer;

/// Entries read per `XRANGE` / `XREAD`.
const PAGE: usize = 1000;

/// The search: the filters, and where matching events are printed.
struct Search {
    args: InspectArgs,
    printer: Printer,
}

impl Search {
    /// Whether a stream of `api` (holding only `event`, for a per-event stream) may hold
    /// matching events.
    fn wants_stream(&self, api: &str, event: Option<&str>) -> bool {
        let api_ok = match &self.args.api {
            Some(pattern) => wildcard_match(pattern, api),
            None => self.args.internal || !api.starts_with("internal."),
        };
        let event_ok = match (&self.args.event, event) {
            (Some(pattern), Some(event)) => wildcard_match(pattern, event),
            _ => true,
        };
        api_ok && event_ok
    }

    /// Whether `message` passes every filter.
    fn matches(&self, message: &EventMessage) -> bool {
        let args = &self.args;
        args.id.as_ref().is_none_or(|id| *id == message.id)
            && args
                .native_id
                .as_ref()
                .is_none_or(|id| Some(id) == message.native_id.as_ref())
            && args
                .api
                .as_ref()
                .is_none_or(|pattern| wildcard_match(pattern, &message.api_name))
            && args
                .event
                .as_ref()
                .is_none_or(|pattern| wildcard_match(pattern, &message.event_name))
            && args
                .version_filter
                .is_none_or(|filter| filter.matches(message.version))
            && args
                .json_path
                .as_ref()
                .is_none_or(|query| query.matches(&message.kwargs))
    }

    /// Prints `message`, found in `stream`, if it matches.
    fn offer(&mut self, message: &EventMessage, stream: &str) -> Result<()> {
        if self.matches(message) {
            self.printer.print(message, stream)?;
        }
        Ok(())
    }
}

/// Decodes a stream entry; `None` for noops, deleted and undecodable entries (the latter
/// with a warning: inspect shows what it can).
fn decode(stream: &str, (id, fields): &StreamEntry) -> Option<EventMessage> {
    let fields = fields.as_ref()?;
    match EventMessage::from_fields(id, fields.iter().map(|(k, v)| (k, v))) {
        Ok(message) => message,
        Err(error) => {
            tracing::warn!("skipping entry {id} of `{stream}`: {error}");
            None
        }
    }
}

/// The error for a reply about `stream` that `server` sent and that cannot be read.
fn bad_reply(
    server: &RedisServer,
    stream: &str,
    problem: impl Into<lightbus::BoxError>,
) -> CliError {
    CliError::BadReply {
        server: server.url().redacted().to_owned(),
        stream: stream.to_owned(),
        source: problem.into(),
    }
}

/// Runs `inspect`.
pub async fn run(bus: Bus, args: InspectArgs) -> Result<()> {
    let mut search = Search {
        printer: Printer::new(args.format),
        args,
    };
    let servers = discover::event_servers(&bus)?;
    let targets = if search.args.cache_only {
        discover::in_cache(&servers, &search)?
    } else {
        discover::on_servers(&servers, &search).await?
    };
    if targets.is_empty() && !search.args.follow {
        return Err(discover::nothing_found(&search, &servers));
    }
    let use_cache = !search.args.no_cache;
    if use_cache && !search.args.cache_only {
        for server in &servers {
            let run_id = discover::run_id(&server.server).await?;
            cache::check_server(&cache::server_key(server.server.url().redacted()), &run_id);
        }
    }
    let mut cursors: Vec<follow::Cursor> = Vec::with_capacity(targets.len());
    for target in targets {
        let last = history::search(&target, &mut search, use_cache).await?;
        if !search.printer.flush()? {
            return Ok(());
        }
        cursors.push((target, last));
    }
    if search.args.follow {
        follow::follow(&servers, cursors, &mut search, use_cache).await?;
    }
    search.printer.flush()?;
    Ok(())
}
