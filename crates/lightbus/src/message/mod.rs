//! The three messages of the protocol and their exact encoding on the wire.
//!
//! - [`RpcMessage`]: a call, sent as one JSON blob `{"metadata": {...}, "kwargs": {...}}`;
//! - [`ResultMessage`]: the answer to a call, also a JSON blob;
//! - [`EventMessage`]: an event, sent as the fields of a Redis stream entry, metadata as plain
//!   text and each keyword argument JSON-encoded under `":" + name`.
//!
//! Decoding never panics: anything malformed is a [`DecodeError`] saying what is missing.
//! The formats are those of `docs/protocol.md` (§3 calls and results, §4 events), checked
//! against Python Lightbus 1.1.2.

mod event;
mod rpc;
mod trace;

pub use crate::error::DecodeError;
pub use event::EventMessage;
pub use rpc::{ResultMessage, RpcMessage};
pub use trace::TraceContext;

/// Parses JSON as the peer writes it. Python's `json` writes the floats NaN and ±infinity as
/// the bare tokens `NaN`, `Infinity` and `-Infinity`, which are not JSON: a message holding
/// them is read with `Infinity` as the number `1e999` (a number too large for any float, so
/// it is infinity again to `f64`, and Python reads it back as `inf`) and `NaN` as the text
/// `"NaN"` (JSON has no number for it: an `f64` parameter then fails with an error naming it,
/// which the worker sends back to the caller instead of dropping the call).
///
/// Strict JSON is tried first, so messages without those tokens cost nothing extra.
pub(crate) fn from_peer_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(bytes) {
        Err(error) if error.is_syntax() => match without_non_finite_tokens(bytes) {
            Some(rewritten) => serde_json::from_slice(&rewritten).map_err(|_| error),
            None => Err(error),
        },
        other => other,
    }
}

/// `bytes` with the tokens `NaN` and `Infinity` outside strings replaced (see
/// [`from_peer_json`]); `None` when there are none.
fn without_non_finite_tokens(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let (mut in_string, mut escaped, mut replaced) = (false, false, false);
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if bytes[i..].starts_with(b"NaN") {
            out.extend_from_slice(b"\"NaN\"");
            (i, replaced) = (i + 3, true);
            continue;
        } else if bytes[i..].starts_with(b"Infinity") {
            out.extend_from_slice(b"1e999");
            (i, replaced) = (i + 8, true);
            continue;
        }
        out.push(byte);
        i += 1;
    }
    replaced.then_some(out)
}

/// A new unique message id. The peer uses UUID1 text; ids are opaque, so a random UUID4 in
/// the same text form serves (and needs no clock or MAC address).
pub fn new_message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
