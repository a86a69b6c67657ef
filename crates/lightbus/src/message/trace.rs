//! W3C trace context carried in messages, where Python Lightbus 1.1.2 does not see it.
//!
//! The peer builds its messages with `cls(**metadata, ...)`: any metadata key it does not
//! know (in an RPC blob's `metadata`, or a stream field without a `:` prefix) makes it fail,
//! and an extra `:`-prefixed field would reach the handler as an argument. So the context
//! travels where the peer looks at nothing:
//!
//! - RPC calls: top-level keys of the JSON blob beside `metadata` and `kwargs`
//!   (`{"metadata": …, "kwargs": …, "traceparent": "00-…", "tracestate": "…"}`); the peer
//!   reads only `metadata` and `kwargs` of a blob;
//! - events: one stream field with an **empty name**, whose value is the `traceparent`,
//!   followed by a newline and the `tracestate` when there is one. The peer's decoder skips
//!   fields with empty names (it only treats an entry whose *sole* field is `"" ""` as a
//!   noop), and so does this crate's.
//!
//! Decoding never fails a message: a malformed context is dropped.

/// A W3C trace context: `traceparent` (`00-<trace id>-<parent id>-<flags>`) and the
/// optional vendor `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// `version-trace_id-parent_id-flags`, lowercase hex.
    pub traceparent: String,
    /// Vendor-specific state, passed along unchanged.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// A context if `traceparent` is well formed (version `00`, non-zero ids).
    pub fn new(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        valid_traceparent(traceparent).then(|| TraceContext {
            traceparent: traceparent.to_owned(),
            tracestate: tracestate
                .map(str::trim)
                .filter(|state| !state.is_empty() && !state.contains('\n'))
                .map(str::to_owned),
        })
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The 16 hex digits of the parent span id.
    pub fn parent_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        u8::from_str_radix(&self.traceparent[53..55], 16).unwrap_or(0)
    }

    /// The value of an event's empty-named field.
    pub fn to_field_value(&self) -> String {
        match &self.tracestate {
            Some(state) => format!("{}\n{state}", self.traceparent),
            None => self.traceparent.clone(),
        }
    }

    /// Reads an event's empty-named field (`None` for a noop's empty value or anything
    /// malformed).
    pub fn from_field_value(value: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(value).ok()?;
        let (parent, state) = match text.split_once('\n') {
            Some((parent, state)) => (parent, Some(state)),
            None => (text, None),
        };
        TraceContext::new(parent.trim(), state)
    }
}

/// `00-` + 32 hex + `-` + 16 hex + `-` + 2 hex, ids not all zero.
fn valid_traceparent(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |part: &str| part.bytes().any(|b| b != b'0');
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && nonzero(parts[1])
        && hex(parts[2], 16)
        && nonzero(parts[2])
        && hex(parts[3], 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn well_formed_contexts_are_kept_and_read() {
        let context = TraceContext::new(PARENT, Some("rojo=00f067aa0ba902b7")).expect("valid");
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_id(), "00f067aa0ba902b7");
        assert_eq!(context.flags(), 1);
        let field = context.to_field_value();
        assert_eq!(
            TraceContext::from_field_value(field.as_bytes()),
            Some(context)
        );
        assert_eq!(
            TraceContext::from_field_value(PARENT.as_bytes()).and_then(|c| c.tracestate),
            None
        );
    }

    #[test]
    fn malformed_contexts_are_dropped() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::new(bad, None), None, "{bad}");
        }
        assert_eq!(TraceContext::from_field_value(b"\xff"), None);
    }

    #[test]
    fn calls_carry_the_context_beside_metadata_and_kwargs() {
        use crate::message::RpcMessage;
        let mut call = RpcMessage::new(
            "auth",
            "check",
            crate::api::Kwargs::new(),
            "redis+key://k".into(),
        );
        call.trace_context = TraceContext::new(PARENT, Some("a=1"));
        let blob: serde_json::Value = serde_json::from_str(&call.to_blob()).expect("JSON");
        assert_eq!(blob["traceparent"], PARENT);
        assert_eq!(blob["tracestate"], "a=1");
        let metadata: Vec<&String> = blob["metadata"]
            .as_object()
            .expect("metadata")
            .keys()
            .collect();
        assert_eq!(
            metadata,
            ["id", "api_name", "procedure_name", "return_path"]
        );
        assert_eq!(RpcMessage::from_blob(call.to_blob().as_bytes()), Ok(call));

        // A malformed context is dropped, the call still decodes.
        let odd = r#"{"metadata": {"id": "1", "api_name": "a", "procedure_name": "b"}, "kwargs": {}, "traceparent": 7}"#;
        let decoded = RpcMessage::from_blob(odd.as_bytes()).expect("decodes");
        assert_eq!(decoded.trace_context, None);
    }

    #[test]
    fn events_carry_the_context_in_an_empty_named_field() {
        use crate::message::EventMessage;
        let mut event = EventMessage::new("auth", "user_registered", 1, crate::api::Kwargs::new());
        event.trace_context = TraceContext::new(PARENT, None);
        let fields = event.to_fields();
        assert_eq!(
            fields.last().map(|(k, v)| (k.as_ref(), v.as_ref())),
            Some(("", PARENT))
        );
        let pairs: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let decoded = EventMessage::from_fields("1-0", pairs.iter().map(|(k, v)| (k, v)))
            .expect("decodes")
            .expect("not a noop");
        assert_eq!(decoded.trace_context, event.trace_context);
        // The peer's noop entry is still a noop.
        let noop = EventMessage::from_fields("1-0", [("", "")]).expect("decodes");
        assert_eq!(noop, None);
    }
}
