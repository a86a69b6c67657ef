//! Events: the fields of a Redis stream entry.

use std::borrow::Cow;

use serde_json::Value;

use super::{new_message_id, DecodeError, TraceContext};
use crate::api::Kwargs;

/// An event, as fired and as received by listeners.
///
/// On the wire it is a stream entry whose fields are the metadata as plain text (`id`,
/// `api_name`, `event_name`, `version`) followed by each keyword argument under
/// `":" + name`, JSON-encoded.
///
/// ```
/// use lightbus::EventMessage;
/// let mut kwargs = lightbus::Kwargs::new();
/// kwargs.insert("username".into(), "admin".into());
/// let event = EventMessage::new("auth", "user_registered", 1, kwargs);
/// let fields = event.to_fields();
/// assert_eq!(fields[4], (":username".into(), "\"admin\"".into()));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EventMessage {
    /// The event's unique id.
    pub id: String,
    /// The API that owns the event.
    pub api_name: String,
    /// The event's name.
    pub event_name: String,
    /// The owning API's version when the event was fired.
    pub version: u32,
    /// The event's parameters.
    pub kwargs: Kwargs,
    /// Where the event sits in its transport (the Redis stream entry id), once stored.
    pub native_id: Option<String>,
    /// The stream the event was read from, once received.
    pub stream: Option<String>,
    /// The firer's trace context, carried in a field with an empty name (see
    /// [`TraceContext`]); `None` unless trace propagation is on.
    pub trace_context: Option<TraceContext>,
}

impl EventMessage {
    /// A new event with a fresh id.
    pub fn new(
        api_name: impl Into<String>,
        event_name: impl Into<String>,
        version: u32,
        kwargs: Kwargs,
    ) -> Self {
        EventMessage {
            id: new_message_id(),
            api_name: api_name.into(),
            event_name: event_name.into(),
            version,
            kwargs,
            native_id: None,
            stream: None,
            trace_context: None,
        }
    }

    /// `api.event`, as used in logs and errors.
    pub fn canonical_name(&self) -> String {
        format!("{}.{}", self.api_name, self.event_name)
    }

    /// The stream entry's fields, in the order the peer writes them.
    ///
    /// Borrowed where the message already holds the text (firing is a hot path).
    pub fn to_fields(&self) -> Vec<(Cow<'static, str>, Cow<'_, str>)> {
        let mut fields = Vec::with_capacity(4 + self.kwargs.len());
        fields.push(("id".into(), self.id.as_str().into()));
        fields.push(("api_name".into(), self.api_name.as_str().into()));
        fields.push(("event_name".into(), self.event_name.as_str().into()));
        fields.push(("version".into(), self.version.to_string().into()));
        for (name, value) in &self.kwargs {
            fields.push((format!(":{name}").into(), value.to_string().into()));
        }
        if let Some(context) = &self.trace_context {
            fields.push(("".into(), context.to_field_value().into()));
        }
        fields
    }

    /// Decodes a stream entry. Returns `Ok(None)` for a noop entry (the single empty field
    /// the peer writes to create a stream), which listeners acknowledge and skip.
    pub fn from_fields<K, V>(
        native_id: &str,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Option<Self>, DecodeError>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let error = |reason: String| DecodeError {
            kind: "event",
            reason: format!("stream entry {native_id}: {reason}"),
        };
        let text = |bytes: &[u8], what: &str| {
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| error(format!("{what} is not UTF-8 text")))
        };
        let (mut id, mut api_name, mut event_name, mut version) = (None, None, None, None);
        let mut kwargs = Kwargs::new();
        let mut saw_field = false;
        let mut trace_context = None;
        for (key, value) in fields {
            let (key, value) = (key.as_ref(), value.as_ref());
            if key.is_empty() {
                // The noop field, or the trace context: names the peer ignores.
                trace_context = trace_context.or_else(|| TraceContext::from_field_value(value));
                continue;
            }
            saw_field = true;
            if let Some(name) = key.strip_prefix(b":") {
                let name = text(name, "a parameter name")?;
                let decoded: Value = super::from_peer_json(value)
                    .map_err(|e| error(format!("parameter `{name}` is not valid JSON: {e}")))?;
                kwargs.insert(name, decoded);
            } else {
                match key {
                    b"id" => id = Some(text(value, "`id`")?),
                    b"api_name" => api_name = Some(text(value, "`api_name`")?),
                    b"event_name" => event_name = Some(text(value, "`event_name`")?),
                    b"version" => version = Some(text(value, "`version`")?),
                    _ => {} // unknown metadata: tolerated here (the peer would refuse it)
                }
            }
        }
        if !saw_field {
            return Ok(None);
        }
        let missing = |name: &str| error(format!("metadata field `{name}` is missing"));
        let version = version.ok_or_else(|| missing("version"))?;
        let version = version
            .trim()
            .parse::<u32>()
            .map_err(|_| error(format!("`version` is not an integer: {version:?}")))?;
        Ok(Some(EventMessage {
            id: id.ok_or_else(|| missing("id"))?,
            api_name: api_name.ok_or_else(|| missing("api_name"))?,
            event_name: event_name.ok_or_else(|| missing("event_name"))?,
            version,
            kwargs,
            native_id: Some(native_id.to_owned()),
            stream: None,
            trace_context,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Fields of an entry written by Python Lightbus 1.1.2 for `auth.user_registered`.
    fn peer_fields() -> Vec<(&'static str, &'static str)> {
        vec![
            ("id", "ca634374-e8d4-11f1-a8e6-02fc00000001"),
            ("api_name", "auth"),
            ("event_name", "user_registered"),
            ("version", "1"),
            (":username", "\"admin\""),
            (":email", "\"admin@example.com\""),
        ]
    }

    #[test]
    fn decodes_a_peer_entry() {
        let event = EventMessage::from_fields("1700000000000-0", peer_fields())
            .expect("decodes")
            .expect("not a noop");
        assert_eq!(event.canonical_name(), "auth.user_registered");
        assert_eq!(event.version, 1);
        assert_eq!(event.native_id.as_deref(), Some("1700000000000-0"));
        assert_eq!(
            Value::Object(event.kwargs.clone()),
            json!({"username": "admin", "email": "admin@example.com"})
        );
        let ours: Vec<(String, String)> = event
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let theirs: Vec<(String, String)> = peer_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn python_non_finite_floats_decode() {
        let mut fields = peer_fields();
        fields.push((":ratio", "NaN"));
        fields.push((":limit", "-Infinity"));
        let event = EventMessage::from_fields("1-0", fields)
            .expect("decodes")
            .expect("not a noop");
        assert_eq!(event.kwargs["ratio"], json!("NaN"));
        assert_eq!(
            serde_json::from_value::<f64>(event.kwargs["limit"].clone()).ok(),
            Some(f64::NEG_INFINITY)
        );
    }

    #[test]
    fn noop_entries_decode_to_none() {
        let noop = EventMessage::from_fields("1-0", [("", "")]).expect("noop is valid");
        assert_eq!(noop, None);
    }

    #[test]
    fn malformed_entries_are_errors() {
        let mut missing_id = peer_fields();
        missing_id.remove(0);
        let err = EventMessage::from_fields("1-0", missing_id).unwrap_err();
        assert!(err.reason.contains("`id`"), "{err}");

        let mut bad_json = peer_fields();
        bad_json[4] = (":username", "{not json");
        let err = EventMessage::from_fields("1-0", bad_json).unwrap_err();
        assert!(
            err.reason.contains("`username`") && err.reason.contains("1-0"),
            "{err}"
        );

        let mut bad_version = peer_fields();
        bad_version[3] = ("version", "one");
        assert!(EventMessage::from_fields("1-0", bad_version).is_err());

        let bad_utf8: Vec<(&[u8], &[u8])> = vec![(b"id", b"\xff")];
        assert!(EventMessage::from_fields("1-0", bad_utf8).is_err());
    }
}
