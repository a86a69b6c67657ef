//! Messages from the bus that could not be decoded.

/// A message from the bus (or a reply from its server) that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {kind}: {reason}")]
pub struct DecodeError {
    /// What was being decoded: `RPC call`, `RPC result`, `event`, or a server reply.
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: String,
}
