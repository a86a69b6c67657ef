//! Reading Redis's replies to stream commands.
//!
//! Replies come from the network, so nothing here trusts their shape: anything unexpected is
//! an error describing what was found, never a panic. Both protocol versions are accepted
//! (RESP2 arrays of alternating keys and values, RESP3 maps).

use std::time::Duration;

use redis::Value;

/// One stream entry as Redis returned it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawEntry {
    /// The stream entry id, `<ms>-<seq>`.
    pub(super) id: String,
    /// The entry's fields, or `None` when the entry was deleted (trimmed from the stream)
    /// while still pending: Redis then returns its id with no fields.
    pub(super) fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl RawEntry {
    /// The bytes of its fields' names and values (0 for a deleted entry).
    pub(super) fn size(&self) -> usize {
        self.fields.as_deref().map_or(0, fields_size)
    }
}

/// The bytes of an entry's fields' names and values.
pub(super) fn fields_size(fields: &[(Vec<u8>, Vec<u8>)]) -> usize {
    fields.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// One entry of `XPENDING <stream> <group> <start> <end> <count>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingEntry {
    pub(super) id: String,
    pub(super) consumer: String,
    pub(super) idle: Duration,
    /// How many times the entry was delivered (the group's counter).
    pub(super) deliveries: u32,
}

/// One record of `XINFO GROUPS` or `XINFO CONSUMERS`: its fields by name.
pub(super) type InfoRecord = Vec<(String, Value)>;

type Parsed<T> = Result<T, String>;

/// The text of a string reply.
pub(super) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// An integer reply (or an integer sent as a string).
pub(super) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(number) => Some(*number),
        other => text(other).and_then(|text| text.parse().ok()),
    }
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        Value::Int(number) => Some(number.to_string().into_bytes()),
        _ => None,
    }
}

fn describe(value: &Value) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// `XREADGROUP` / `XREAD`: entries per stream, in the order Redis gave them. `Nil` (a block
/// that timed out) is no entries.
pub(super) fn streams(reply: Value) -> Parsed<Vec<(String, Vec<RawEntry>)>> {
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs,
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Array(pair) if pair.len() == 2 => {
                    let mut pair = pair.into_iter();
                    match (pair.next(), pair.next()) {
                        (Some(name), Some(entries)) => Ok((name, entries)),
                        _ => Err("a stream without entries".to_owned()),
                    }
                }
                other => Err(format!(
                    "expected [stream, entries], got {}",
                    describe(&other)
                )),
            })
            .collect::<Parsed<_>>()?,
        other => return Err(format!("expected streams, got {}", describe(&other))),
    };
    pairs
        .into_iter()
        .map(|(name, stream_entries)| {
            let name = text(&name).ok_or_else(|| format!("bad stream name {}", describe(&name)))?;
            Ok((name, entries(stream_entries)?))
        })
        .collect()
}

/// A list of entries (`XCLAIM`, or one stream of `XREADGROUP`). A `Nil` in place of an entry
/// (older Redis, for a deleted entry) is skipped.
pub(super) fn entries(reply: Value) -> Parsed<Vec<RawEntry>> {
    let items = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(format!("expected entries, got {}", describe(&other))),
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let pair = match item {
            Value::Nil => continue,
            Value::Array(pair) if pair.len() == 2 => pair,
            other => return Err(format!("expected [id, fields], got {}", describe(&other))),
        };
        let mut pair = pair.into_iter();
        let (Some(id), Some(fields)) = (pair.next(), pair.next()) else {
            return Err("an entry without fields".to_owned());
        };
        let id = text(&id).ok_or_else(|| format!("bad entry id {}", describe(&id)))?;
        let fields = match fields {
            Value::Nil => None,
            Value::Array(flat) => {
                if flat.len() % 2 != 0 {
                    return Err(format!("entry {id} has an odd number of field items"));
                }
                let mut fields = Vec::with_capacity(flat.len() / 2);
                let mut flat = flat.into_iter();
                while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
                    fields.push(field(&id, key, value)?);
                }
                Some(fields)
            }
            Value::Map(pairs) => Some(
                pairs
                    .into_iter()
                    .map(|(key, value)| field(&id, key, value))
                    .collect::<Parsed<_>>()?,
            ),
            other => {
                return Err(format!(
                    "entry {id} has fields of an unexpected shape: {}",
                    describe(&other)
                ))
            }
        };
        entries.push(RawEntry { id, fields });
    }
    Ok(entries)
}

fn field(id: &str, key: Value, value: Value) -> Parsed<(Vec<u8>, Vec<u8>)> {
    match (bytes(key), bytes(value)) {
        (Some(key), Some(value)) => Ok((key, value)),
        _ => Err(format!("entry {id} has a field that is not a string")),
    }
}

/// The extended form of `XPENDING`: `[[id, consumer, idle ms, deliveries], …]`.
pub(super) fn pending(reply: Value) -> Parsed<Vec<PendingEntry>> {
    let items = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(format!(
                "expected pending entries, got {}",
                describe(&other)
            ))
        }
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Array(parts) = &item else {
                return Err(format!("expected a pending entry, got {}", describe(&item)));
            };
            match parts.as_slice() {
                [id, consumer, idle, deliveries] => {
                    let id = text(id);
                    let consumer = text(consumer);
                    let idle = int(idle).and_then(|ms| u64::try_from(ms).ok());
                    let deliveries = int(deliveries).and_then(|n| u32::try_from(n).ok());
                    match (id, consumer, idle, deliveries) {
                        (Some(id), Some(consumer), Some(idle), Some(deliveries)) => {
                            Ok(PendingEntry {
                                id,
                                consumer,
                                idle: Duration::from_millis(idle),
                                deliveries,
                            })
                        }
                        _ => Err(format!("malformed pending entry {}", describe(&item))),
                    }
                }
                _ => Err(format!("malformed pending entry {}", describe(&item))),
            }
        })
        .collect()
}

/// `XINFO GROUPS` / `XINFO CONSUMERS`: one record per group or consumer.
pub(super) fn info_records(reply: Value) -> Parsed<Vec<InfoRecord>> {
    let items = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(format!("expected records, got {}", describe(&other))),
    };
    items
        .into_iter()
        .map(|item| {
            let pairs: Vec<(Value, Value)> = match item {
                Value::Map(pairs) => pairs,
                Value::Array(flat) if flat.len() % 2 == 0 => {
                    let mut pairs = Vec::with_capacity(flat.len() / 2);
                    let mut flat = flat.into_iter();
                    while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
                        pairs.push((key, value));
                    }
                    pairs
                }
                other => return Err(format!("expected a record, got {}", describe(&other))),
            };
            pairs
                .into_iter()
                .map(|(key, value)| match text(&key) {
                    Some(key) => Ok((key, value)),
                    None => Err(format!("bad record key {}", describe(&key))),
                })
                .collect()
        })
        .collect()
}

/// The value of `name` in an info record.
pub(super) fn get<'a>(record: &'a InfoRecord, name: &str) -> Option<&'a Value> {
    record
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// A stream entry id as numbers, for ordering; `None` if it is not `<ms>-<seq>` or `<ms>`.
pub(super) fn parse_id(id: &str) -> Option<(u64, u64)> {
    match id.split_once('-') {
        Some((ms, seq)) => Some((ms.parse().ok()?, seq.parse().ok()?)),
        None => Some((id.parse().ok()?, 0)),
    }
}

/// The smallest id after `id` (for paging through `XPENDING`, whose start is inclusive).
pub(super) fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = parse_id(id)?;
    Some(match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.checked_add(1)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn reads_stream_replies_in_both_protocols() {
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk("auth.*:stream"),
            Value::Array(vec![
                entry("1-0", &["id", "x", ":a", "1"]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
            ]),
        ])]);
        let parsed = streams(resp2).expect("valid reply");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].0, "auth.*:stream");
        assert_eq!(
            parsed[0].1[0].fields,
            Some(vec![
                (b"id".to_vec(), b"x".to_vec()),
                (b":a".to_vec(), b"1".to_vec())
            ])
        );
        assert_eq!(parsed[0].1[1].fields, None, "a deleted entry has no fields");

        let resp3 = Value::Map(vec![(
            bulk("s"),
            Value::Array(vec![entry("3-1", &["", ""])]),
        )]);
        let parsed = streams(resp3).expect("valid RESP3 reply");
        assert_eq!(parsed[0].1[0].id, "3-1");
        assert_eq!(streams(Value::Nil).expect("timeout"), Vec::new());
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let odd = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![entry("1-0", &["id"])]),
        ])]);
        assert!(streams(odd).unwrap_err().contains("odd"));
        assert!(streams(Value::Int(3)).is_err());
        assert!(streams(Value::Array(vec![bulk("s")])).is_err());
        assert!(entries(Value::Array(vec![Value::Array(vec![Value::Int(1)])])).is_err());
        assert!(pending(Value::Array(vec![Value::Array(vec![bulk("1-0")])])).is_err());
        assert!(pending(Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            bulk("c"),
            Value::Int(-5),
            Value::Int(1)
        ])]))
        .is_err());
        assert!(info_records(Value::Array(vec![Value::Array(vec![bulk("name")])])).is_err());
    }

    #[test]
    fn reads_pending_and_info_replies() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("5-0"),
            bulk("worker-1"),
            Value::Int(61_000),
            Value::Int(2),
        ])]);
        assert_eq!(
            pending(reply).expect("valid"),
            vec![PendingEntry {
                id: "5-0".into(),
                consumer: "worker-1".into(),
                idle: Duration::from_secs(61),
                deliveries: 2,
            }]
        );
        let info = Value::Array(vec![Value::Array(vec![
            bulk("name"),
            bulk("c1"),
            bulk("pending"),
            Value::Int(0),
        ])]);
        let records = info_records(info).expect("valid");
        assert_eq!(get(&records[0], "name").and_then(text), Some("c1".into()));
        assert_eq!(get(&records[0], "pending").and_then(int), Some(0));
        assert_eq!(get(&records[0], "idle"), None);
    }

    #[test]
    fn stream_ids_order_and_increment() {
        assert_eq!(parse_id("17-3"), Some((17, 3)));
        assert_eq!(parse_id("17"), Some((17, 0)));
        assert_eq!(parse_id("x-1"), None);
        assert_eq!(next_id("17-3").as_deref(), Some("17-4"));
        assert_eq!(
            next_id(&format!("17-{}", u64::MAX)).as_deref(),
            Some("18-0")
        );
        assert_eq!(next_id("$"), None);
    }
}
