//! What the bus left in a [`TestRedis`]: stream entries, consumer groups and their pending
//! entries, stored schemas. Each function opens a connection of its own.

use crate::redis_server::TestRedis;
use crate::wait::eventually;

/// One stream entry: its id and its fields (as text, in stored order).
pub type Entry = (String, Vec<(String, String)>);

/// The entries of `stream`, oldest first (none if it does not exist).
pub fn entries(redis: &TestRedis, stream: &str) -> Vec<Entry> {
    let reply: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(&mut redis.connection())
        .expect("XRANGE");
    reply
        .into_iter()
        .map(|(id, flat)| {
            let fields = flat
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default()))
                .collect();
            (id, fields)
        })
        .collect()
}

/// The value of the field `name` of an entry's `fields`, if it has one.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// How many entries of `stream` are pending in `group`: delivered to one of its consumers
/// and not acknowledged.
pub fn pending_count(redis: &TestRedis, stream: &str, group: &str) -> usize {
    let summary: (usize, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query(&mut redis.connection())
        .expect("XPENDING");
    summary.0
}

/// The names of the consumers of `group` on `stream`.
pub fn consumer_names(redis: &TestRedis, stream: &str, group: &str) -> Vec<String> {
    let consumers: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(stream)
        .arg(group)
        .query(&mut redis.connection())
        .expect("XINFO CONSUMERS");
    consumers
        .iter()
        .filter_map(|consumer| consumer.get("name"))
        .filter_map(|name| redis::from_redis_value_ref::<String>(name).ok())
        .collect()
}

/// True if the consumer group `group` exists on `stream`.
pub fn has_group(redis: &TestRedis, stream: &str, group: &str) -> bool {
    let groups: redis::RedisResult<Vec<std::collections::HashMap<String, redis::Value>>> =
        redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query(&mut redis.connection());
    groups.is_ok_and(|groups| {
        groups.iter().any(|info| {
            info.get("name")
                .and_then(|name| redis::from_redis_value_ref::<String>(name).ok())
                .is_some_and(|name| name == group)
        })
    })
}

/// Waits until the consumer group `group` exists on `stream`: the listener it belongs to is
/// set up, so events fired from now on reach it.
pub async fn wait_for_group(redis: &TestRedis, stream: &str, group: &str) {
    eventually(
        &format!("consumer group {group} exists on {stream}"),
        || has_group(redis, stream, group),
    )
    .await;
}

/// Waits until `group` has acknowledged every entry of `stream` delivered to it (none is
/// pending).
pub async fn wait_until_acknowledged(redis: &TestRedis, stream: &str, group: &str) {
    eventually(
        &format!("{group} acknowledged everything on {stream}"),
        || pending_count(redis, stream, group) == 0,
    )
    .await;
}

/// Waits until `group` on `stream` has at least `n` consumers (each has read once).
pub async fn wait_for_consumers(redis: &TestRedis, stream: &str, group: &str, n: usize) {
    wait_for_group(redis, stream, group).await;
    eventually(&format!("{group} on {stream} has {n} consumers"), || {
        consumer_names(redis, stream, group).len() >= n
    })
    .await;
}

/// Waits until the schema of `api` is stored (`schema:{api}`, as a worker publishes it)
/// and returns it.
pub async fn wait_for_schema(redis: &TestRedis, api: &str) -> String {
    let key = format!("schema:{api}");
    let mut stored = None;
    eventually(&format!("{key} is stored"), || {
        stored = redis::cmd("GET")
            .arg(&key)
            .query::<Option<String>>(&mut redis.connection())
            .ok()
            .flatten();
        stored.is_some()
    })
    .await;
    stored.unwrap_or_default()
}
