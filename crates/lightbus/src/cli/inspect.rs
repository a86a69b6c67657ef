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

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};
use redis::aio::MultiplexedConnection;
use serde::Deserialize;
use serde_json::Value;

use super::listen::EventRecord;
use crate::api::Kwargs;
use crate::client::Bus;
use crate::config::StreamUse;
use crate::error::{Error, Result};
use crate::message::EventMessage;
use crate::transport::redis::event::{id_after, id_order, range_reply, read_reply, ReadEntry};
use crate::transport::redis::{RedisServer, RedisServers};

/// Entries read per `XRANGE` / `XREAD`.
const PAGE: usize = 1000;
/// Streams longer than this get a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 10_000;

/// `inspect`: search and watch stored events.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    lightbus inspect                                   # every event of every API\n  \
    lightbus inspect --api auth --event 'user_*'\n  \
    lightbus inspect --api 'billing.*' --version '>=2' --format human\n  \
    lightbus inspect --json-path address.city=London\n  \
    lightbus inspect --json-path 'order.total>=100' --api shop\n  \
    lightbus inspect --id 0b5c3b6e-4c39-4f38-8e2a-1f0e3e9b2c11\n  \
    lightbus inspect --native-id 1700000000000-0 --api auth\n  \
    lightbus inspect --api auth --follow\n  \
    lightbus inspect --internal --api 'internal.*' --event worker_started\n  \
    lightbus inspect --cache-only --api auth")]
pub struct InspectArgs {
    /// Only the event with this Lightbus event id.
    #[arg(long, short = 'i', value_name = "EVENT_ID")]
    pub id: Option<String>,
    /// Only the event with this stream entry id (e.g. `1700000000000-0`).
    #[arg(long, short = 'n', value_name = "NATIVE_ID")]
    pub native_id: Option<String>,
    /// Only events of APIs matching this name; `*` matches anything (`billing.*`).
    #[arg(long, short = 'a', value_name = "API")]
    pub api: Option<String>,
    /// Only events matching this name; `*` matches anything (`user_*`).
    #[arg(long, short = 'e', value_name = "EVENT")]
    pub event: Option<String>,
    /// Only events of this version: `2`, `=2`, `!=2`, `<2`, `>2`, `<=2`, `>=2`.
    #[arg(long = "version", short = 'v', value_name = "VERSION", value_parser = VersionFilter::parse)]
    pub version_filter: Option<VersionFilter>,
    /// Only events whose parameters match: `PATH OP VALUE`, with a dotted path (`*` for any
    /// key or item, numbers for list items) and `=`, `!=`, `<`, `>`, `<=` or `>=`, e.g.
    /// `address.city=London` or `items.*.price>10`.
    #[arg(long, short = 'j', value_name = "QUERY", value_parser = JsonQuery::parse)]
    pub json_path: Option<JsonQuery>,
    /// After the stored events, keep printing new matching events until interrupted.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How to print each event.
    #[arg(long, short = 'F', value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Include the `internal.*` APIs (left out unless `--api` names them).
    #[arg(long, short = 'I')]
    pub internal: bool,
    /// Search only the local cache (~/.lightbus/inspect_cache); do not contact Redis.
    #[arg(long, short = 'c', conflicts_with = "follow")]
    pub cache_only: bool,
    /// Neither read nor write the local cache.
    #[arg(long, conflicts_with = "cache_only")]
    pub no_cache: bool,
}

/// How `inspect` prints events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line (as `lightbus listen` prints).
    Json,
    /// Indented JSON.
    Pretty,
    /// A readable block per event.
    Human,
}

/// `--version`: a comparison with a version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionFilter {
    comparison: Comparison,
    version: u32,
}

/// The comparisons of `--version` and `--json-path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Comparison {
    /// The comparison at the start of `text`, and its length (longest operators first).
    fn at_start(text: &str) -> Option<(Comparison, usize)> {
        [
            ("<=", Comparison::Le),
            (">=", Comparison::Ge),
            ("!=", Comparison::Ne),
            ("==", Comparison::Eq),
            ("<", Comparison::Lt),
            (">", Comparison::Gt),
            ("=", Comparison::Eq),
        ]
        .into_iter()
        .find(|(symbol, _)| text.starts_with(symbol))
        .map(|(symbol, comparison)| (comparison, symbol.len()))
    }

    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Comparison::Eq => ordering == Equal,
            Comparison::Ne => ordering != Equal,
            Comparison::Lt => ordering == Less,
            Comparison::Gt => ordering == Greater,
            Comparison::Le => ordering != Greater,
            Comparison::Ge => ordering != Less,
        }
    }
}

impl VersionFilter {
    /// Parses `2`, `=2`, `!=2`, `<2`, `>2`, `<=2` or `>=2`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let (comparison, rest) = match Comparison::at_start(text) {
            Some((comparison, length)) => (comparison, &text[length..]),
            None => (Comparison::Eq, text),
        };
        let version = rest.trim().parse::<u32>().map_err(|_| {
            format!("`{text}` is not a version filter: use 2, =2, !=2, <2, >2, <=2 or >=2")
        })?;
        Ok(VersionFilter {
            comparison,
            version,
        })
    }

    /// Whether `version` passes.
    pub fn matches(&self, version: u32) -> bool {
        self.comparison.holds(version.cmp(&self.version))
    }
}

/// `--json-path`: a path into the parameters, a comparison and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonQuery {
    path: Vec<String>,
    comparison: Comparison,
    value: String,
}

impl JsonQuery {
    /// Parses `PATH OP VALUE`, e.g. `address.city=London` or `$.items[0].price>=10`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let invalid = || {
            format!(
                "`{text}` is not a query: use PATH=VALUE (or !=, <, >, <=, >=), e.g. \
                 address.city=London"
            )
        };
        let (index, (comparison, length)) = text
            .char_indices()
            .find_map(|(index, _)| Comparison::at_start(&text[index..]).map(|found| (index, found)))
            .ok_or_else(invalid)?;
        let raw_path = text[..index].trim();
        let raw_path = raw_path
            .strip_prefix("$.")
            .or_else(|| raw_path.strip_prefix('$'))
            .unwrap_or(raw_path);
        let path: Vec<String> = raw_path
            .replace('[', ".")
            .replace(']', "")
            .split('.')
            .filter(|segment| !segment.is_empty())
            .map(str::to_owned)
            .collect();
        if path.is_empty() {
            return Err(invalid());
        }
        Ok(JsonQuery {
            path,
            comparison,
            value: text[index + length..].trim().to_owned(),
        })
    }

    /// Whether any value at the path compares as asked.
    pub fn matches(&self, kwargs: &Kwargs) -> bool {
        let mut found: Vec<&Value> = Vec::new();
        collect(&self.path, Some(kwargs), &mut found);
        found.iter().any(|value| self.compare(value))
    }

    fn compare(&self, found: &Value) -> bool {
        let wanted: Value =
            serde_json::from_str(&self.value).unwrap_or_else(|_| Value::String(self.value.clone()));
        let ordering = match (found, &wanted) {
            (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => None,
            },
            // `city=London` and `city="London"` both compare as text.
            (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
            (Value::String(a), _) => Some(a.as_str().cmp(self.value.as_str())),
            (a, b) => (a == b).then_some(std::cmp::Ordering::Equal),
        };
        match ordering {
            Some(ordering) => self.comparison.holds(ordering),
            None => self.comparison == Comparison::Ne,
        }
    }
}

/// Collects the values at `path` under `object` (`*` matches every key or item).
fn collect<'a>(
    path: &[String],
    object: Option<&'a serde_json::Map<String, Value>>,
    found: &mut Vec<&'a Value>,
) {
    fn walk<'a>(path: &[String], value: &'a Value, found: &mut Vec<&'a Value>) {
        let Some((segment, rest)) = path.split_first() else {
            found.push(value);
            return;
        };
        match value {
            Value::Object(map) if segment == "*" => {
                map.values().for_each(|child| walk(rest, child, found))
            }
            Value::Object(map) => {
                if let Some(child) = map.get(segment) {
                    walk(rest, child, found);
                }
            }
            Value::Array(items) if segment == "*" => {
                items.iter().for_each(|child| walk(rest, child, found))
            }
            Value::Array(items) => {
                if let Some(child) = segment.parse::<usize>().ok().and_then(|i| items.get(i)) {
                    walk(rest, child, found);
                }
            }
            _ => {}
        }
    }
    let Some(object) = object else { return };
    let Some((segment, rest)) = path.split_first() else {
        return;
    };
    if segment == "*" {
        object.values().for_each(|child| walk(rest, child, found));
    } else if let Some(child) = object.get(segment) {
        walk(rest, child, found);
    }
}

/// Matches `text` against a pattern where `*` stands for any run of characters.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// One stream to search: where it is and whose events it holds.
#[derive(Clone)]
struct Target {
    server: Arc<RedisServer>,
    /// The server's directory in the cache.
    server_key: String,
    stream: String,
}

/// Parses a stream key into its API and, for a per-event stream, its event.
fn parse_stream(key: &str) -> Option<(String, Option<String>)> {
    let name = key.strip_suffix(":stream")?;
    if let Some(api) = name.strip_suffix(".*") {
        return (!api.is_empty()).then(|| (api.to_owned(), None));
    }
    let (api, event) = name.rsplit_once('.')?;
    (!api.is_empty() && !event.is_empty()).then(|| (api.to_owned(), Some(event.to_owned())))
}

/// A cache directory name for a server: its URL (without password) with anything but
/// letters and digits replaced.
fn server_key(redacted_url: &str) -> String {
    redacted_url
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The cache file name of a stream (reversible: `%` and `/` are escaped).
fn cache_file_name(stream: &str) -> String {
    format!("{}.jsonl", stream.replace('%', "%25").replace('/', "%2F"))
}

/// The stream a cache file name stands for.
fn stream_of_cache_file(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".jsonl")?;
    Some(stem.replace("%2F", "/").replace("%25", "%"))
}

/// The cache root, `$HOME/.lightbus/inspect_cache`.
fn cache_root() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".lightbus").join("inspect_cache"))
}

/// An event as stored in the cache (the `listen` record).
#[derive(Deserialize)]
struct CachedRecord {
    id: String,
    api_name: String,
    event_name: String,
    version: u32,
    native_id: String,
    #[serde(default)]
    kwargs: Kwargs,
}

impl From<CachedRecord> for EventMessage {
    fn from(record: CachedRecord) -> Self {
        EventMessage {
            id: record.id,
            api_name: record.api_name,
            event_name: record.event_name,
            version: record.version,
            kwargs: record.kwargs,
            native_id: Some(record.native_id),
            stream: None,
        }
    }
}

/// Prints matching events to stdout in the chosen format.
struct Printer {
    format: Format,
    colour: bool,
    out: BufWriter<std::io::Stdout>,
    printed: u64,
}

impl Printer {
    fn new(format: Format) -> Self {
        Printer {
            format,
            colour: std::io::stdout().is_terminal(),
            out: BufWriter::new(std::io::stdout()),
            printed: 0,
        }
    }

    fn print(&mut self, message: &EventMessage, stream: &str) -> Result<()> {
        let record = EventRecord::from(message);
        let encode = |e: serde_json::Error| Error::Codec(format!("cannot print an event: {e}"));
        match self.format {
            Format::Json => {
                serde_json::to_writer(&mut self.out, &record).map_err(encode)?;
                self.out.write_all(b"\n")?;
            }
            Format::Pretty => {
                serde_json::to_writer_pretty(&mut self.out, &record).map_err(encode)?;
                self.out.write_all(b"\n")?;
            }
            Format::Human => self.human(message, stream)?,
        }
        self.printed += 1;
        Ok(())
    }

    fn human(&mut self, message: &EventMessage, stream: &str) -> Result<()> {
        let (bold, green, reset) = if self.colour {
            ("\x1b[1m", "\x1b[1;32m", "\x1b[0m")
        } else {
            ("", "", "")
        };
        let native_id = message.native_id.as_deref().unwrap_or("");
        let title = format!(" {} ", message.canonical_name());
        writeln!(self.out, "{green}{title:=^80}{reset}")?;
        if let Some(time) = native_id
            .split('-')
            .next()
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(chrono::DateTime::from_timestamp_millis)
        {
            let time = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            writeln!(self.out, "{time:^80}")?;
        }
        writeln!(self.out, "\n{bold}Metadata:{reset}")?;
        let version = message.version.to_string();
        for (key, value) in [
            ("id", message.id.as_str()),
            ("api_name", message.api_name.as_str()),
            ("event_name", message.event_name.as_str()),
            ("version", version.as_str()),
            ("native_id", native_id),
            ("stream", stream),
        ] {
            writeln!(self.out, "    {key:<20}: {value}")?;
        }
        writeln!(self.out, "\n{bold}Data:{reset}")?;
        for (key, value) in &message.kwargs {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Object(_) | Value::Array(_) => {
                    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
                    pretty.replace('\n', &format!("\n{:24}", ""))
                }
                other => other.to_string(),
            };
            writeln!(self.out, "    {key:<20}: {text}")?;
        }
        writeln!(self.out)?;
        Ok(())
    }

    /// Flushes; `false` when stdout was closed (nobody reads any more).
    fn flush(&mut self) -> Result<bool> {
        match self.out.flush() {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}

/// The search: filters and output.
struct Search {
    args: InspectArgs,
    printer: Printer,
}

impl Search {
    fn wants_stream(&self, target_api: &str, target_event: Option<&str>) -> bool {
        let api_ok = match &self.args.api {
            Some(pattern) => wildcard_match(pattern, target_api),
            None => self.args.internal || !target_api.starts_with("internal."),
        };
        let event_ok = match (&self.args.event, target_event) {
            (Some(pattern), Some(event)) => wildcard_match(pattern, event),
            _ => true,
        };
        api_ok && event_ok
    }

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

    /// Prints `message` if it matches.
    fn offer(&mut self, message: &EventMessage, stream: &str) -> Result<()> {
        if self.matches(message) {
            self.printer.print(message, stream)?;
        }
        Ok(())
    }
}

/// Decodes a stream entry; `None` for noops, deleted and undecodable entries (the latter
/// with a warning: inspect shows what it can).
fn decode(stream: &str, (id, fields): &ReadEntry) -> Option<EventMessage> {
    let fields = fields.as_ref()?;
    match EventMessage::from_fields(id, fields.iter().map(|(k, v)| (k, v))) {
        Ok(message) => message,
        Err(error) => {
            tracing::warn!("skipping entry {id} of `{stream}`: {error}");
            None
        }
    }
}

/// Runs `inspect`.
pub async fn run(bus: Bus, args: InspectArgs) -> Result<()> {
    let mut search = Search {
        printer: Printer::new(args.format),
        args,
    };
    let servers = event_servers(&bus)?;
    let targets = if search.args.cache_only {
        cached_targets(&servers, &search)?
    } else {
        discover(&servers, &search).await?
    };
    if targets.is_empty() && !search.args.follow {
        return Err(Error::Unknown(no_streams_message(&search.args, &servers)));
    }
    let use_cache = !search.args.no_cache;
    let mut cursors: Vec<(Target, String)> = Vec::new();
    for target in targets {
        let last = search_stream(&target, &mut search, use_cache).await?;
        if !search.printer.flush()? {
            return Ok(());
        }
        cursors.push((target, last));
    }
    if search.args.follow {
        follow(&servers, cursors, &mut search, use_cache).await?;
    }
    search.printer.flush()?;
    Ok(())
}

fn no_streams_message(args: &InspectArgs, servers: &[(Arc<RedisServer>, StreamUse)]) -> String {
    let places: Vec<String> = servers
        .iter()
        .map(|(server, _)| server.url().redacted().to_owned())
        .collect();
    let filter = match (&args.api, &args.event) {
        (Some(api), Some(event)) => format!(" for --api {api} --event {event}"),
        (Some(api), None) => format!(" for --api {api}"),
        (None, Some(event)) => format!(" for --event {event}"),
        (None, None) => String::new(),
    };
    if args.cache_only {
        format!(
            "no cached event streams{filter} (the cache is filled by running inspect without \
             --cache-only)"
        )
    } else {
        format!(
            "no event streams{filter} on {} (an API's stream appears once it fired an event; \
             internal.* APIs need --internal)",
            places.join(", ")
        )
    }
}

/// The Redis servers holding events, with their stream layout: every distinct event
/// transport URL of the configuration.
fn event_servers(bus: &Bus) -> Result<Vec<(Arc<RedisServer>, StreamUse)>> {
    let config = bus.config();
    let mut seen: Vec<String> = Vec::new();
    let servers = RedisServers::default();
    let mut found = Vec::new();
    let names: Vec<String> = std::iter::once(crate::config::DEFAULT_API.to_owned())
        .chain(config.file.apis.keys().cloned())
        .collect();
    for name in names {
        let Some(redis) = config.api(&name).event_transport.redis() else {
            continue;
        };
        if seen.contains(&redis.url) {
            continue;
        }
        seen.push(redis.url.clone());
        found.push((servers.get(&redis.url)?, redis.stream_use));
    }
    if found.is_empty() {
        return Err(Error::Unknown(
            "no API's event transport is redis: inspect reads Redis streams (the memory \
             transport lives only inside its process)"
                .to_owned(),
        ));
    }
    Ok(found)
}

/// Finds the event streams on every server with `SCAN`, keeping those the filters allow.
async fn discover(
    servers: &[(Arc<RedisServer>, StreamUse)],
    search: &Search,
) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for (server, _) in servers {
        let mut connection = server.dedicated().await?;
        let mut cursor: u64 = 0;
        let mut keys: BTreeSet<String> = BTreeSet::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("*:stream")
                .arg("COUNT")
                .arg(1000)
                .arg("TYPE")
                .arg("stream")
                .query_async(&mut connection)
                .await
                .map_err(|e| server.error(e))?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for key in keys {
            let Some((api, event)) = parse_stream(&key) else {
                continue;
            };
            if search.wants_stream(&api, event.as_deref()) {
                targets.push(Target {
                    server: server.clone(),
                    server_key: server_key(server.url().redacted()),
                    stream: key,
                });
            }
        }
    }
    Ok(targets)
}

/// The streams present in the cache, for `--cache-only`.
fn cached_targets(
    servers: &[(Arc<RedisServer>, StreamUse)],
    search: &Search,
) -> Result<Vec<Target>> {
    let root = cache_root().ok_or_else(|| {
        Error::Unknown("--cache-only needs $HOME, where the cache lives".to_owned())
    })?;
    let mut targets = Vec::new();
    for (server, _) in servers {
        let key = server_key(server.url().redacted());
        let Ok(entries) = std::fs::read_dir(root.join(&key)) else {
            continue;
        };
        let mut streams: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| stream_of_cache_file(&entry.file_name().to_string_lossy()))
            .collect();
        streams.sort();
        for stream in streams {
            let wanted = parse_stream(&stream)
                .is_some_and(|(api, event)| search.wants_stream(&api, event.as_deref()));
            if wanted {
                targets.push(Target {
                    server: server.clone(),
                    server_key: key.clone(),
                    stream,
                });
            }
        }
    }
    Ok(targets)
}

/// A stream being followed, and the id of the last entry read from it.
type Cursor = (Target, String);

/// The cache file of a target, if there is a cache.
fn cache_path(target: &Target) -> Option<PathBuf> {
    cache_root().map(|root| {
        root.join(&target.server_key)
            .join(cache_file_name(&target.stream))
    })
}

/// Reads a cache file, offering each event; returns the newest id in it.
fn read_cache(path: &Path, target: &Target, search: &mut Search) -> Result<Option<String>> {
    let Ok(file) = File::open(path) else {
        return Ok(None);
    };
    let mut last = None;
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<CachedRecord>(&line) {
            Ok(record) => {
                let message = EventMessage::from(record);
                last = message.native_id.clone();
                if !search.wants_stream(&message.api_name, Some(&message.event_name)) {
                    continue;
                }
                search.offer(&message, &target.stream)?;
            }
            Err(error) => tracing::warn!(
                "ignoring line {} of the cache file {}: {error}",
                number + 1,
                path.display()
            ),
        }
    }
    Ok(last)
}

/// Opens a cache file for appending (creating its directory), or `None` with a warning.
fn open_cache(path: &Path, truncate: bool) -> Option<BufWriter<File>> {
    let opened = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let mut options = OpenOptions::new();
            options.create(true);
            if truncate {
                options.write(true).truncate(true);
            } else {
                options.append(true);
            }
            options.open(path)
        });
    match opened {
        Ok(file) => Some(BufWriter::new(file)),
        Err(error) => {
            tracing::warn!("cannot write the cache {}: {error}", path.display());
            None
        }
    }
}

fn append_to_cache(cache: &mut Option<BufWriter<File>>, message: &EventMessage) {
    if let Some(writer) = cache {
        let written = serde_json::to_writer(&mut *writer, &EventRecord::from(message))
            .map_err(std::io::Error::from)
            .and_then(|()| writer.write_all(b"\n"));
        if let Err(error) = written {
            tracing::warn!("cannot write the inspect cache: {error}; no longer caching");
            *cache = None;
        }
    }
}

/// Searches one stream (cache first, then Redis); returns the last id seen, where
/// `--follow` continues.
async fn search_stream(target: &Target, search: &mut Search, use_cache: bool) -> Result<String> {
    let path = use_cache.then(|| cache_path(target)).flatten();
    if search.args.cache_only {
        let Some(path) = path else {
            return Ok("0-0".to_owned());
        };
        return Ok(read_cache(&path, target, search)?.unwrap_or_else(|| "0-0".to_owned()));
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
        for entry in range_reply(reply).map_err(|e| bad_reply(target, e))? {
            if let Some(message) = decode(&target.stream, &entry) {
                search.offer(&message, &target.stream)?;
            }
        }
        return last_id(&mut connection, target).await;
    }
    let newest = last_id(&mut connection, target).await?;
    let mut start = "-".to_owned();
    let mut truncate = false;
    if let Some(path) = &path {
        // Read the cache, unless Redis was emptied since (its newest entry would be newer
        // than anything the stream holds).
        let cached_last = peek_cache_last(path);
        let stale = cached_last
            .as_deref()
            .zip(id_order(&newest))
            .is_some_and(|(cached, newest)| id_order(cached).is_some_and(|c| c > newest));
        if stale {
            tracing::warn!(
                "the cache of `{}` is newer than the stream (was Redis emptied?); rebuilding it",
                target.stream
            );
            truncate = true;
        } else if let Some(last) = read_cache(path, target, search)? {
            start = id_after(&last).unwrap_or(last);
        }
    }
    let mut cache = path.as_deref().and_then(|path| open_cache(path, truncate));
    let total: u64 = redis::cmd("XLEN")
        .arg(&target.stream)
        .query_async(&mut connection)
        .await
        .map_err(|e| target.server.error(e))?;
    let progress = progress_bar(total, &target.stream);
    loop {
        let reply: redis::Value = redis::cmd("XRANGE")
            .arg(&target.stream)
            .arg(&start)
            .arg(&newest)
            .arg("COUNT")
            .arg(PAGE)
            .query_async(&mut connection)
            .await
            .map_err(|e| target.server.error(e))?;
        let entries = range_reply(reply).map_err(|e| bad_reply(target, e))?;
        let Some((last, _)) = entries.last() else {
            break;
        };
        let Some(next) = id_after(last) else {
            break;
        };
        let count = entries.len();
        for entry in &entries {
            if let Some(message) = decode(&target.stream, entry) {
                append_to_cache(&mut cache, &message);
                search.offer(&message, &target.stream)?;
            }
        }
        if let Some(bar) = &progress {
            bar.inc(count as u64);
        }
        if count < PAGE {
            break;
        }
        start = next;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(mut cache) = cache {
        if let Err(error) = cache.flush() {
            tracing::warn!("cannot write the inspect cache: {error}");
        }
    }
    Ok(newest)
}

/// The newest id in a cache file, reading only its tail.
fn peek_cache_last(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    let start = length.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = String::new();
    file.read_to_string(&mut tail).ok()?;
    tail.lines()
        .rev()
        .filter(|line| !line.trim().is_empty())
        .find_map(|line| serde_json::from_str::<CachedRecord>(line).ok())
        .map(|record| record.native_id)
}

/// The id of the newest entry of a stream (`0-0` when it is empty).
async fn last_id(connection: &mut MultiplexedConnection, target: &Target) -> Result<String> {
    let reply: redis::Value = redis::cmd("XREVRANGE")
        .arg(&target.stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(connection)
        .await
        .map_err(|e| target.server.error(e))?;
    let entries = range_reply(reply).map_err(|e| bad_reply(target, e))?;
    Ok(entries
        .into_iter()
        .next()
        .map_or_else(|| "0-0".to_owned(), |(id, _)| id))
}

fn bad_reply(target: &Target, problem: String) -> Error {
    Error::Codec(format!(
        "unexpected reply from redis at {} for `{}`: {problem}",
        target.server.url().redacted(),
        target.stream
    ))
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

/// `--follow`: waits for new entries on every searched stream (and, for an `--api` without
/// wildcards, its per-API stream even if it does not exist yet), until interrupted.
async fn follow(
    servers: &[(Arc<RedisServer>, StreamUse)],
    mut cursors: Vec<(Target, String)>,
    search: &mut Search,
    use_cache: bool,
) -> Result<()> {
    if let Some(api) = search.args.api.clone().filter(|api| !api.contains('*')) {
        if let Some((server, _)) = servers.first() {
            let stream = format!("{api}.*:stream");
            if !cursors.iter().any(|(target, _)| target.stream == stream) {
                cursors.push((
                    Target {
                        server: server.clone(),
                        server_key: server_key(server.url().redacted()),
                        stream,
                    },
                    "0-0".to_owned(),
                ));
            }
        }
    }
    if cursors.is_empty() {
        return Err(Error::Unknown(
            "nothing to follow: no event streams match (name one with --api)".to_owned(),
        ));
    }
    tracing::info!(
        "following {}",
        cursors
            .iter()
            .map(|(target, _)| target.stream.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // One reader per server: `XREAD BLOCK` on all of its streams.
    let mut groups: Vec<(Arc<RedisServer>, Vec<Cursor>)> = Vec::new();
    for (target, last) in cursors {
        match groups
            .iter_mut()
            .find(|(server, _)| Arc::ptr_eq(server, &target.server))
        {
            Some((_, list)) => list.push((target, last)),
            None => groups.push((target.server.clone(), vec![(target, last)])),
        }
    }
    let shutdown = super::shutdown_signal();
    tokio::pin!(shutdown);
    let mut connections = Vec::new();
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
                .arg(250)
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
                Error::Codec(format!(
                    "unexpected XREAD reply from redis at {}: {e}",
                    server.url().redacted()
                ))
            })?;
            for (stream, entries) in streams {
                let Some((target, last)) = list.iter_mut().find(|(t, _)| t.stream == stream) else {
                    continue;
                };
                let path = use_cache.then(|| cache_path(target)).flatten();
                let mut cache = path.as_deref().and_then(|path| open_cache(path, false));
                for entry in &entries {
                    *last = entry.0.clone();
                    if let Some(message) = decode(&stream, entry) {
                        append_to_cache(&mut cache, &message);
                        search.offer(&message, &stream)?;
                    }
                }
                if let Some(mut cache) = cache {
                    let _ = cache.flush();
                }
                if !search.printer.flush()? {
                    return Ok(());
                }
            }
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("auth", "auth"));
        assert!(!wildcard_match("auth", "auth2"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("user_*", "user_registered"));
        assert!(wildcard_match("*_registered", "user_registered"));
        assert!(wildcard_match("my.*.api", "my.company.api"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXcYYb"));
        assert!(!wildcard_match("ab*ba", "aba"));
    }

    #[test]
    fn versions() {
        let v = |text: &str| VersionFilter::parse(text).unwrap();
        assert!(v("2").matches(2) && !v("2").matches(3));
        assert!(v("=2").matches(2));
        assert!(v("!=2").matches(3) && !v("!=2").matches(2));
        assert!(v("<2").matches(1) && !v("<2").matches(2));
        assert!(v("<=2").matches(2) && !v("<=2").matches(3));
        assert!(v(">2").matches(3) && !v(">2").matches(2));
        assert!(v(">=2").matches(2) && !v(">=2").matches(1));
        assert!(VersionFilter::parse(">=x").is_err());
        assert!(VersionFilter::parse("").is_err());
    }

    #[test]
    fn json_queries() {
        let kwargs = json!({
            "address": {"city": "London", "zip": "N1"},
            "total": 120.5,
            "items": [{"price": 5}, {"price": 50}],
            "active": true
        });
        let kwargs = kwargs.as_object().unwrap();
        let q = |text: &str| JsonQuery::parse(text).unwrap().matches(kwargs);
        assert!(q("address.city=London"));
        assert!(q("address.city=\"London\""));
        assert!(!q("address.city=Paris"));
        assert!(q("address.city!=Paris"));
        assert!(q("$.address.city=London"));
        assert!(q("total>100") && !q("total<100") && q("total>=120.5"));
        assert!(q("items.*.price>10") && !q("items.*.price>100"));
        assert!(q("items[1].price=50") && q("items.0.price=5"));
        assert!(q("active=true") && !q("active=false"));
        assert!(!q("missing=1"));
        assert!(JsonQuery::parse("no comparison").is_err());
        assert!(JsonQuery::parse("=x").is_err());
    }

    #[test]
    fn stream_names() {
        assert_eq!(parse_stream("auth.*:stream"), Some(("auth".into(), None)));
        assert_eq!(
            parse_stream("my.auth.user_registered:stream"),
            Some(("my.auth".into(), Some("user_registered".into())))
        );
        assert_eq!(parse_stream("auth.*:stream:dead"), None);
        assert_eq!(parse_stream("plain:stream"), None);
        let name = cache_file_name("odd/name%.*:stream");
        assert!(!name.contains('/'));
        assert_eq!(
            stream_of_cache_file(&name).as_deref(),
            Some("odd/name%.*:stream")
        );
        assert_eq!(
            server_key("redis://127.0.0.1:6379/0"),
            "redis___127_0_0_1_6379_0"
        );
    }
}
