//! Value types for API parameters whose encoding on the bus needs help.
//!
//! Python Lightbus sends `bytes` as base64 text. serde writes a `Vec<u8>` as an array of
//! numbers, which a Python peer would neither send nor accept, so use [`Base64Bytes`] for
//! binary parameters and results.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};

use base64::Engine;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes that cross the bus as standard base64 text (with padding), as the peer sends
/// Python `bytes`.
///
/// ```
/// use lightbus::types::Base64Bytes;
/// let data = Base64Bytes::from(b"hi".to_vec());
/// assert_eq!(serde_json::to_string(&data).unwrap(), r#""aGk=""#);
/// let back: Base64Bytes = serde_json::from_str(r#""aGk=""#).unwrap();
/// assert_eq!(&back[..], b"hi");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Base64Bytes(pub Vec<u8>);

impl Base64Bytes {
    /// The bytes.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Base64Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Base64Bytes(bytes)
    }
}

impl From<&[u8]> for Base64Bytes {
    fn from(bytes: &[u8]) -> Self {
        Base64Bytes(bytes.to_vec())
    }
}

impl From<Base64Bytes> for Vec<u8> {
    fn from(bytes: Base64Bytes) -> Self {
        bytes.0
    }
}

impl Deref for Base64Bytes {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Base64Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Base64Bytes)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64 text: {e}")))
    }
}

impl JsonSchema for Base64Bytes {
    fn schema_name() -> Cow<'static, str> {
        "Base64Bytes".into()
    }

    /// `{"type": "string"}`, exactly what the peer writes for `bytes` (a `contentEncoding`
    /// would make the stored schemas of a Rust and a Python worker differ).
    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string"})
    }
}
