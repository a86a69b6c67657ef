//! The command line of `inspect`: its filters, output format and cache options.

use clap::{Args, ValueEnum};

use super::query::{JsonQuery, VersionFilter};

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
