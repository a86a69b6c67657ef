//! The three messages of the protocol and their exact encoding on the wire.
//!
//! - [`RpcMessage`]: a call, sent as one JSON blob `{"metadata": {...}, "kwargs": {...}}`;
//! - [`ResultMessage`]: the answer to a call, also a JSON blob;
//! - [`EventMessage`]: an event, sent as the fields of a Redis stream entry, metadata as plain
//!   text and each keyword argument JSON-encoded under `":" + name`.
//!
//! Decoding never panics: anything malformed is a [`DecodeError`] saying what is missing.
//! The formats follow `PROTOCOL.md`, checked against Python Lightbus 1.1.2.

mod event;
mod rpc;

pub use event::EventMessage;
pub use rpc::{ResultMessage, RpcMessage};

/// A message from the bus that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {kind}: {reason}")]
pub struct DecodeError {
    /// Which kind of message: `RPC call`, `RPC result` or `event`.
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl From<DecodeError> for crate::Error {
    fn from(error: DecodeError) -> Self {
        crate::Error::Codec(error.to_string())
    }
}

/// A new unique message id. The peer uses UUID1 text; ids are opaque, so a random UUID4 in
/// the same text form serves (and needs no clock or MAC address).
pub fn new_message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
