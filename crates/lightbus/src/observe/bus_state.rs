//! What Redis says about the bus: consumer groups with their lag and pending entries, RPC
//! queue lengths, dead letters. Read-only; used by the worker's metrics sampler, `lightbus
//! status` and `lightbus dashboard`.
//!
//! Lag is what `XINFO GROUPS` reports (Redis ≥ 7: `lag`, computed from `entries-read`);
//! when Redis does not know it (older servers, or entries deleted from the middle of the
//! stream) it is counted with `XRANGE` from the group's last delivered entry, as upstream's
//! `lag()` did, up to [`LAG_COUNT_LIMIT`] entries.

use redis::aio::ConnectionLike;
use redis::Value;
use serde::Serialize;

/// The most entries counted to compute a lag Redis does not report.
pub const LAG_COUNT_LIMIT: u64 = 100_000;

/// One consumer of a group (`XINFO CONSUMERS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerState {
    /// The consumer's name (a process name).
    pub name: String,
    /// Entries delivered to it and not acknowledged.
    pub pending: u64,
    /// Milliseconds since it last read or claimed (`idle`).
    pub idle_ms: u64,
}

/// One consumer group of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupState {
    /// The stream.
    pub stream: String,
    /// The group (`{service}-{listener}`).
    pub group: String,
    /// Entries not yet delivered to the group.
    pub lag: u64,
    /// Whether `lag` was counted (Redis did not report it) and stopped at the limit.
    pub lag_capped: bool,
    /// Entries delivered and not acknowledged.
    pub pending: u64,
    /// The last entry delivered to the group.
    pub last_delivered_id: String,
    /// The group's consumers.
    pub consumers: Vec<ConsumerState>,
}

/// Every consumer group of `stream` with lag, pending count and consumers. A stream that
/// does not exist has none.
pub async fn stream_groups<C: ConnectionLike + Send>(
    connection: &mut C,
    stream: &str,
) -> redis::RedisResult<Vec<GroupState>> {
    let reply: Value = match redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(connection)
        .await
    {
        Ok(reply) => reply,
        Err(error) if error.to_string().contains("no such key") => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut groups = Vec::new();
    for group in list(reply) {
        let fields = map(group);
        let name = text(fields.get("name"));
        let last_delivered_id = text(fields.get("last-delivered-id"));
        let pending = number(fields.get("pending")).unwrap_or(0);
        let (lag, lag_capped) = match number(fields.get("lag")) {
            Some(lag) => (lag, false),
            None => count_after(connection, stream, &last_delivered_id).await?,
        };
        let consumers: Value = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(stream)
            .arg(&name)
            .query_async(connection)
            .await?;
        let consumers = list(consumers)
            .into_iter()
            .map(|consumer| {
                let fields = map(consumer);
                ConsumerState {
                    name: text(fields.get("name")),
                    pending: number(fields.get("pending")).unwrap_or(0),
                    idle_ms: number(fields.get("idle")).unwrap_or(0),
                }
            })
            .collect();
        groups.push(GroupState {
            stream: stream.to_owned(),
            group: name,
            lag,
            lag_capped,
            pending,
            last_delivered_id,
            consumers,
        });
    }
    Ok(groups)
}

/// Counts the entries of `stream` after `after` (exclusive), up to [`LAG_COUNT_LIMIT`].
async fn count_after<C: ConnectionLike + Send>(
    connection: &mut C,
    stream: &str,
    after: &str,
) -> redis::RedisResult<(u64, bool)> {
    const PAGE: u64 = 1_000;
    let mut start = format!("({after}");
    let mut counted = 0;
    loop {
        let reply: Value = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(connection)
            .await?;
        let entries = list(reply);
        counted += entries.len() as u64;
        if (entries.len() as u64) < PAGE {
            return Ok((counted, false));
        }
        if counted >= LAG_COUNT_LIMIT {
            return Ok((counted, true));
        }
        match entries.last().map(|entry| list(entry.clone())) {
            Some(entry) if !entry.is_empty() => start = format!("({}", text(entry.first())),
            _ => return Ok((counted, false)),
        }
    }
}

/// Length of a list or stream key (`LLEN` for an RPC queue, `XLEN` for a stream); 0 for
/// a missing key.
pub async fn length<C: ConnectionLike + Send>(
    connection: &mut C,
    key: &str,
    stream: bool,
) -> redis::RedisResult<u64> {
    redis::cmd(if stream { "XLEN" } else { "LLEN" })
        .arg(key)
        .query_async(connection)
        .await
}

/// The `{api}:rpc_queue` key of an API.
pub fn rpc_queue_key(api: &str) -> String {
    format!("{api}:rpc_queue")
}

/// The elements of an array reply (nothing for anything else).
pub fn list(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => Vec::new(),
    }
}

/// A flat `[key, value, …]` array or a RESP3 map reply, as a map keyed by text.
pub fn map(value: Value) -> std::collections::HashMap<String, Value> {
    match value {
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| (text(Some(&k)), v))
            .collect(),
        other => {
            let items = list(other);
            let mut fields = std::collections::HashMap::new();
            let mut items = items.into_iter();
            while let (Some(key), Some(value)) = (items.next(), items.next()) {
                fields.insert(text(Some(&key)), value);
            }
            fields
        }
    }
}

/// A reply element as text (empty for nil and non-text values).
pub fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Some(Value::SimpleString(text)) => text.clone(),
        Some(Value::VerbatimString { text, .. }) => text.clone(),
        Some(Value::Int(number)) => number.to_string(),
        _ => String::new(),
    }
}

/// A reply element as a non-negative number (`None` for nil or anything else).
pub fn number(value: Option<&Value>) -> Option<u64> {
    match value {
        Some(Value::Int(number)) => u64::try_from(*number).ok(),
        Some(Value::BulkString(bytes)) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        Some(Value::SimpleString(text)) => text.parse().ok(),
        _ => None,
    }
}
