//! `lightbus groups`: the consumer groups of the event streams, and removing the stale ones
//! that processes with a made-up service name left behind.
//!
//! A listener's consumer group is `{service}-{listener}`. With no service name the default
//! `{friendly}` makes up a new name at every start (`quiet-otter-412`), so each restart
//! leaves the previous group in Redis: it keeps its pending entries and its consumers'
//! names forever, and shows up as lag in `lightbus status`. `{pid}` names do the same.
//!
//! - `lightbus groups`: one JSON line per consumer group of every `*:stream` key: `stream`,
//!   `group`, `consumers`, `pending`, `idle_ms` (the idle time of its most recently active
//!   consumer; `null` if it has none), `made_up` and `stale`;
//! - `--stale`: only the stale groups: made up **and** idle at least `--min-idle` seconds
//!   (default 3600), or without consumers;
//! - `--stale --delete --yes`: removes them (`XGROUP DESTROY`; their pending entries are
//!   forgotten, the stream's entries stay). Without `--yes` it lists what it would remove
//!   and exits with code 2.
//!
//! A service part is taken as made up when it has the shape of `{friendly}` (two
//! lowercase words and a number: `quiet-otter-412-…`, which is also Python Lightbus's shape)
//! or is a process id (`12345-…`). A real service named like that (`billing-api-2`) would
//! match too: that is what `--min-idle` and the explicit `--yes` are for. `{random…}` names
//! cannot be told from real ones and are not matched.

use std::io::Write;

use clap::Args;
use lightbus::transport::redis::RedisServer;
use lightbus::transport::redis::SharedConnection;
use lightbus::Bus;
use redis::streams::{StreamInfoConsumersReply, StreamInfoGroupsReply};
use serde_json::json;

use crate::dead::event_servers;
use crate::error::{CliError, Result};

/// `lightbus groups …`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  lightbus groups\n  lightbus groups --stale\n  \
    lightbus groups --stale --min-idle 86400 --delete --yes"
)]
pub struct GroupsArgs {
    /// Only groups of made-up service names (`{friendly}`, `{pid}`) idle for `--min-idle`.
    #[arg(long)]
    pub stale: bool,
    /// Seconds every consumer of a group must have been idle for it to be stale.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub min_idle: u64,
    /// Remove the stale groups (needs `--stale` and `--yes`).
    #[arg(long, requires = "stale")]
    pub delete: bool,
    /// Confirm `--delete`.
    #[arg(long, requires = "delete")]
    pub yes: bool,
}

/// One consumer group, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The event stream, e.g. `auth.*:stream`.
    pub stream: String,
    /// The group's name, `{service}-{listener}`.
    pub group: String,
    /// How many consumers it has.
    pub consumers: usize,
    /// Entries delivered to it and not acknowledged.
    pub pending: usize,
    /// The idle time of its most recently active consumer, in ms; `None` without consumers.
    pub idle_ms: Option<u64>,
}

impl GroupInfo {
    /// Whether the group's service part is made up at start ([`made_up_group`]).
    pub fn made_up(&self) -> bool {
        made_up_group(&self.group)
    }

    /// Made up, and without consumers or idle for at least `min_idle_ms`.
    pub fn stale(&self, min_idle_ms: u64) -> bool {
        self.made_up() && self.idle_ms.is_none_or(|idle| idle >= min_idle_ms)
    }
}

/// Whether a group name `{service}-{listener}` starts with a made-up service name: the
/// `{friendly}` shape (`word-word-number-…`, lowercase ASCII words) or a process id
/// (`digits-…`).
///
/// ```
/// use lightbus_cli::groups::made_up_group;
/// assert!(made_up_group("quiet-otter-412-audit"));
/// assert!(made_up_group("31337-send_welcome_email"));
/// assert!(!made_up_group("auth-audit"));
/// assert!(!made_up_group("quiet-otter-412")); // no listener part
/// assert!(!made_up_group("Quiet-otter-4-audit"));
/// ```
pub fn made_up_group(group: &str) -> bool {
    let parts: Vec<&str> = group.splitn(4, '-').collect();
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
    let number = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [adjective, noun, n, listener] if word(adjective) && word(noun) && number(n) => {
            !listener.is_empty()
        }
        [pid, rest @ ..] if number(pid) => rest.iter().any(|part| !part.is_empty()),
        _ => false,
    }
}

/// Runs `lightbus groups`.
pub async fn run(bus: Bus, args: GroupsArgs) -> Result<()> {
    let min_idle_ms = args.min_idle.saturating_mul(1000);
    let mut stdout = std::io::stdout().lock();
    let mut to_delete = Vec::new();
    for server in event_servers(&bus, "groups")? {
        let mut connection = server.shared().await?;
        for group in groups(&server, &mut connection).await? {
            let stale = group.stale(min_idle_ms);
            if args.stale && !stale {
                continue;
            }
            let line = json!({
                "stream": group.stream,
                "group": group.group,
                "consumers": group.consumers,
                "pending": group.pending,
                "idle_ms": group.idle_ms,
                "made_up": group.made_up(),
                "stale": stale,
            });
            writeln!(stdout, "{line}").map_err(CliError::Output)?;
            to_delete.push((server.clone(), group));
        }
    }
    if !args.delete {
        return Ok(());
    }
    if !args.yes {
        return Err(CliError::NotConfirmed(format!(
            "{} stale group(s) listed above would be removed with their pending entries: \
             add --yes to remove them",
            to_delete.len()
        )));
    }
    let mut removed = 0;
    for (server, group) in &to_delete {
        let mut connection = server.shared().await?;
        let done: i64 = redis::cmd("XGROUP")
            .arg("DESTROY")
            .arg(&group.stream)
            .arg(&group.group)
            .query_async(&mut connection)
            .await
            .map_err(|e| server.error(e))?;
        removed += done;
    }
    eprintln!("removed {removed} stale consumer group(s)");
    Ok(())
}

/// Every consumer group of every `*:stream` key on `server`, sorted by stream then group.
async fn groups(server: &RedisServer, connection: &mut SharedConnection) -> Result<Vec<GroupInfo>> {
    let streams = server.scan("*:stream", "stream").await?;
    let mut out = Vec::new();
    for stream in streams {
        let reply: StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(connection)
            .await
            .map_err(|e| server.error(e))?;
        for group in reply.groups {
            let consumers: StreamInfoConsumersReply = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&stream)
                .arg(&group.name)
                .query_async(connection)
                .await
                .map_err(|e| server.error(e))?;
            let idle_ms = consumers
                .consumers
                .iter()
                .map(|consumer| consumer.idle as u64)
                .min();
            out.push(GroupInfo {
                stream: stream.clone(),
                group: group.name,
                consumers: group.consumers,
                pending: group.pending,
                idle_ms,
            });
        }
    }
    out.sort_by(|a, b| (&a.stream, &a.group).cmp(&(&b.stream, &b.group)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(group: &str, idle_ms: Option<u64>) -> GroupInfo {
        GroupInfo {
            stream: "auth.*:stream".into(),
            group: group.into(),
            consumers: usize::from(idle_ms.is_some()),
            pending: 0,
            idle_ms,
        }
    }

    #[test]
    fn stale_needs_a_made_up_name_and_idleness() {
        assert!(info("quiet-otter-412-audit", None).stale(1000));
        assert!(info("quiet-otter-412-audit", Some(1000)).stale(1000));
        assert!(!info("quiet-otter-412-audit", Some(999)).stale(1000));
        assert!(!info("auth-audit", None).stale(0));
        assert!(!info("quiet-otter-x-audit", None).stale(0));
        assert!(!info("-audit", None).stale(0));
        assert!(!info("12-", None).stale(0));
    }
}
