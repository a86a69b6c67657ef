//! One event as the tools print it: the JSON record of `listen`, `inspect --format json`
//! and `inspect`'s cache files, in one place so they cannot drift apart.
//!
//! The record is `{"id", "api_name", "event_name", "version", "native_id", "kwargs"}`, keys
//! in that order, `native_id` being the stream entry id (empty if the event has none).

use lightbus::{EventMessage, Kwargs};
use serde::{Deserialize, Serialize};

/// An event as the tools print it, borrowed from the message.
#[derive(Debug, Serialize)]
pub(crate) struct EventRecord<'a> {
    id: &'a str,
    api_name: &'a str,
    event_name: &'a str,
    version: u32,
    native_id: &'a str,
    kwargs: &'a Kwargs,
}

impl<'a> From<&'a EventMessage> for EventRecord<'a> {
    fn from(message: &'a EventMessage) -> Self {
        EventRecord {
            id: &message.id,
            api_name: &message.api_name,
            event_name: &message.event_name,
            version: message.version,
            native_id: message.native_id.as_deref().unwrap_or(""),
            kwargs: &message.kwargs,
        }
    }
}

/// Appends `message` to `out` as one JSON line.
pub(crate) fn write_json_line(out: &mut Vec<u8>, message: &EventMessage) {
    // Writing into memory fails only if serializing fails, and a record holds nothing that
    // cannot be serialized (text, a number, and kwargs that came as JSON).
    serde_json::to_writer(&mut *out, &EventRecord::from(message))
        .expect("an event record serializes to JSON");
    out.push(b'\n');
}

/// A record read back (from `inspect`'s cache), owning its fields.
#[derive(Debug, Deserialize)]
pub(crate) struct OwnedRecord {
    id: String,
    api_name: String,
    event_name: String,
    version: u32,
    pub(crate) native_id: String,
    #[serde(default)]
    kwargs: Kwargs,
}

impl From<OwnedRecord> for EventMessage {
    fn from(record: OwnedRecord) -> Self {
        let mut message = EventMessage::new(
            record.api_name,
            record.event_name,
            record.version,
            record.kwargs,
        );
        message.id = record.id;
        message.native_id = Some(record.native_id);
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_the_documented_keys_and_read_back() {
        let mut kwargs = Kwargs::new();
        kwargs.insert("username".into(), "admin".into());
        let mut message = EventMessage::new("auth", "user_registered", 2, kwargs);
        message.native_id = Some("5-1".into());
        let mut out = Vec::new();
        write_json_line(&mut out, &message);
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys.join(" "),
            "id api_name event_name version native_id kwargs"
        );
        assert_eq!(value["kwargs"]["username"], "admin");
        assert_eq!(value["native_id"], "5-1");

        let read: OwnedRecord = serde_json::from_str(&line).unwrap();
        let back = EventMessage::from(read);
        assert_eq!(back.id, message.id);
        assert_eq!(back.canonical_name(), "auth.user_registered");
        assert_eq!((back.version, back.kwargs), (2, message.kwargs));
        assert_eq!(back.native_id.as_deref(), Some("5-1"));
    }
}
