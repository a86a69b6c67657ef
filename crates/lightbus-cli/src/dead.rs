//! `lightbus dead`: look at, replay and purge dead letters.
//!
//! A listener sets an event aside in `<stream>:dead` when it cannot be decoded, does not fit
//! the listener's event type or schema, or failed on its `max_deliveries`th delivery. Each
//! dead letter holds the entry's original fields, then `error`, `original_id`,
//! `consumer_group` and `deliveries`. The subcommands:
//!
//! - `list [STREAM]`: one JSON line per dead letter (every dead-letter stream, or those of
//!   `STREAM`), with its stream, id, reason, group, delivery count and event name;
//! - `show STREAM ID`: one dead letter as a JSON object of all its fields;
//! - `replay STREAM (ID… | --all)`: adds each entry's original fields to `STREAM` again as a
//!   new entry and removes the dead letter, both in one transaction. The replayed event is
//!   new to every consumer group of the stream, so every listener of the event gets it
//!   again, not only the one that failed: handlers are idempotent (at-least-once), but
//!   replay after fixing the cause;
//! - `purge STREAM (ID… | --all)`: deletes dead letters.
//!
//! `STREAM` is the event stream (`auth.*:stream`) or its dead-letter stream
//! (`auth.*:stream:dead`). Values that are not UTF-8 are shown with U+FFFD; replay copies
//! the stored bytes exactly.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

use clap::{Args, Subcommand};
use lightbus::config::DEFAULT_API;
use lightbus::transport::redis::event::{range_reply, StreamEntry};
use lightbus::transport::redis::SharedConnection;
use lightbus::transport::redis::{RedisServer, RedisServers};
use lightbus::Bus;
use serde_json::{Map, Value};

use crate::error::{CliError, Result};

/// The fields a dead letter adds to the entry's own.
pub const DEAD_LETTER_FIELDS: [&str; 4] = ["error", "original_id", "consumer_group", "deliveries"];

/// `lightbus dead …`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  lightbus dead list\n  lightbus dead show 'auth.*:stream' \
    1700000000000-0\n  lightbus dead replay 'auth.*:stream' --all\n  lightbus dead purge \
    'auth.*:stream' 1700000000000-0"
)]
pub struct DeadArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DeadCommand,
}

/// The subcommands of `lightbus dead`.
#[derive(Debug, Clone, Subcommand)]
pub enum DeadCommand {
    /// Print every dead letter (or those of one stream) as JSON lines.
    List {
        /// The event stream (`auth.*:stream`) or its `:dead` stream; all if left out.
        stream: Option<String>,
    },
    /// Print one dead letter with all its fields.
    Show {
        /// The event stream or its `:dead` stream.
        stream: String,
        /// The dead letter's id (the `dead_id` of `list`).
        id: String,
    },
    /// Put dead letters back on their stream (every listener gets them again).
    Replay(Selection),
    /// Delete dead letters.
    Purge(Selection),
}

/// Dead letters of one stream: some ids, or all of them.
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// The event stream or its `:dead` stream.
    pub stream: String,
    /// Dead-letter ids (the `dead_id` of `list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub ids: Vec<String>,
    /// Every dead letter of the stream.
    #[arg(long)]
    pub all: bool,
}

/// Runs `lightbus dead`.
pub async fn run(bus: Bus, args: DeadArgs) -> Result<()> {
    let servers = event_servers(&bus, "dead")?;
    let mut out = Vec::new();
    match args.command {
        DeadCommand::List { stream } => {
            for server in &servers {
                let mut connection = server.shared().await?;
                let streams = match &stream {
                    Some(stream) => vec![dead_key(stream)],
                    None => server.scan("*:stream:dead", "stream").await?,
                };
                for dead in streams {
                    for entry in read(server, &mut connection, &dead, "-", "+").await? {
                        out.push(summary(&dead, &entry));
                    }
                }
            }
        }
        DeadCommand::Show { stream, id } => {
            let dead = dead_key(&stream);
            let mut found = None;
            for server in &servers {
                let mut connection = server.shared().await?;
                if let Some(entry) = read(server, &mut connection, &dead, &id, &id)
                    .await?
                    .into_iter()
                    .next()
                {
                    found = Some(entry);
                    break;
                }
            }
            let entry = found.ok_or_else(|| CliError::NoDeadLetter {
                stream: dead.clone(),
                id: id.clone(),
            })?;
            out.push(full(&dead, &entry));
        }
        DeadCommand::Replay(selection) => {
            let done = settle(&servers, &selection, true).await?;
            eprintln!(
                "replayed {done} dead letter(s) onto `{}`",
                event_key(&selection.stream)
            );
        }
        DeadCommand::Purge(selection) => {
            let done = settle(&servers, &selection, false).await?;
            eprintln!(
                "purged {done} dead letter(s) of `{}`",
                event_key(&selection.stream)
            );
        }
    }
    let mut stdout = std::io::stdout().lock();
    for line in out {
        writeln!(stdout, "{line}").map_err(CliError::Output)?;
    }
    Ok(())
}

/// Replays (`replay`) or deletes the selected dead letters; how many there were.
async fn settle(
    servers: &[Arc<RedisServer>],
    selection: &Selection,
    replay: bool,
) -> Result<usize> {
    let dead = dead_key(&selection.stream);
    let stream = event_key(&selection.stream);
    let mut done = 0;
    for server in servers {
        let mut connection = server.shared().await?;
        let entries = read(server, &mut connection, &dead, "-", "+").await?;
        for (id, fields) in entries {
            if !selection.all && !selection.ids.contains(&id) {
                continue;
            }
            // One transaction on one server. On a cluster the two streams are in different
            // slots, where no transaction spans them: the copy first, so an interruption
            // leaves the dead letter in place (replayed twice if run again), never lost.
            let mut commands = Vec::new();
            if let (true, Some(fields)) = (replay, &fields) {
                let mut add = redis::cmd("XADD");
                add.arg(&stream).arg("*");
                for (key, value) in fields {
                    let added_by_dead_lettering =
                        std::str::from_utf8(key).is_ok_and(|key| DEAD_LETTER_FIELDS.contains(&key));
                    if !added_by_dead_lettering {
                        add.arg(key).arg(value);
                    }
                }
                commands.push(add);
            }
            let mut delete = redis::cmd("XDEL");
            delete.arg(&dead).arg(&id);
            commands.push(delete);
            connection
                .in_order(commands, true)
                .await
                .map_err(|e| server.error(e))?;
            done += 1;
        }
    }
    if !selection.all && done == 0 {
        return Err(CliError::NoDeadLetter {
            stream: dead,
            id: selection.ids.join(", "),
        });
    }
    Ok(done)
}

/// `XRANGE <dead> <from> <to>`, decoded.
async fn read(
    server: &RedisServer,
    connection: &mut SharedConnection,
    dead: &str,
    from: &str,
    to: &str,
) -> Result<Vec<StreamEntry>> {
    let reply: redis::Value = redis::cmd("XRANGE")
        .arg(dead)
        .arg(from)
        .arg(to)
        .query_async(connection)
        .await
        .map_err(|e| server.error(e))?;
    range_reply(reply).map_err(|e| CliError::BadReply {
        server: server.url().redacted().to_owned(),
        stream: dead.to_owned(),
        source: e.into(),
    })
}

/// The distinct Redis servers of the configuration's event transports (`command` names the
/// tool in the error when none is Redis).
pub(crate) fn event_servers(bus: &Bus, command: &'static str) -> Result<Vec<Arc<RedisServer>>> {
    let config = bus.config();
    let registry = RedisServers::default();
    let mut urls = BTreeSet::new();
    let names = std::iter::once(DEFAULT_API).chain(config.file.apis.keys().map(String::as_str));
    for name in names {
        if let Some(redis) = config.api(name).event_transport.redis() {
            urls.insert(redis.url.clone());
        }
    }
    if urls.is_empty() {
        return Err(CliError::NotRedis {
            command,
            transport: "event transport of every API",
        });
    }
    Ok(urls
        .iter()
        .map(|url| registry.get(url))
        .collect::<lightbus::Result<_>>()?)
}

/// `auth.*:stream` or `auth.*:stream:dead` → `auth.*:stream:dead`.
fn dead_key(stream: &str) -> String {
    format!("{}:dead", event_key(stream))
}

/// `auth.*:stream` or `auth.*:stream:dead` → `auth.*:stream`.
fn event_key(stream: &str) -> String {
    stream.strip_suffix(":dead").unwrap_or(stream).to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A field's value as text, if the dead letter has it.
fn get(fields: &[(Vec<u8>, Vec<u8>)], name: &str) -> Option<String> {
    fields
        .iter()
        .rev()
        .find(|(key, _)| key == name.as_bytes())
        .map(|(_, value)| text(value))
}

/// One line of `list`.
fn summary(dead: &str, (id, fields): &StreamEntry) -> Value {
    let fields = fields.as_deref().unwrap_or_default();
    let mut line = Map::new();
    line.insert("stream".into(), event_key(dead).into());
    line.insert("dead_id".into(), id.clone().into());
    for name in [
        "original_id",
        "consumer_group",
        "deliveries",
        "api_name",
        "event_name",
        "id",
    ] {
        line.insert(
            name.into(),
            get(fields, name).map_or(Value::Null, Value::from),
        );
    }
    line.insert(
        "error".into(),
        get(fields, "error").map_or(Value::Null, Value::from),
    );
    Value::Object(line)
}

/// The output of `show`: every field, in stored order.
fn full(dead: &str, (id, fields): &StreamEntry) -> Value {
    let mut all = Map::new();
    for (key, value) in fields.as_deref().unwrap_or_default() {
        all.insert(text(key), text(value).into());
    }
    serde_json::json!({
        "stream": event_key(dead),
        "dead_id": id,
        "fields": all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_named_either_way() {
        assert_eq!(dead_key("auth.*:stream"), "auth.*:stream:dead");
        assert_eq!(dead_key("auth.*:stream:dead"), "auth.*:stream:dead");
        assert_eq!(event_key("auth.*:stream:dead"), "auth.*:stream");
    }
}
