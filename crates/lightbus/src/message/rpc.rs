//! RPC calls and their results: JSON blobs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{new_message_id, DecodeError};
use crate::api::{Kwargs, RpcFailure, RpcOutcome};

/// A remote procedure call.
///
/// ```
/// use lightbus::message::RpcMessage;
/// let mut kwargs = lightbus::Kwargs::new();
/// kwargs.insert("username".into(), "admin".into());
/// let call = RpcMessage::new("auth", "check_password", kwargs, "redis+key://k".into());
/// let decoded = RpcMessage::from_blob(call.to_blob().as_bytes()).unwrap();
/// assert_eq!(decoded, call);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RpcMessage {
    /// The call's unique id.
    pub id: String,
    /// The API called.
    pub api_name: String,
    /// The procedure called.
    pub procedure_name: String,
    /// Where the worker sends the result, e.g. `redis+key://<key>`.
    pub return_path: String,
    /// The keyword arguments.
    pub kwargs: Kwargs,
}

#[derive(Serialize, Deserialize)]
struct RpcMetadata<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    api_name: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    procedure_name: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    return_path: std::borrow::Cow<'a, str>,
}

#[derive(Serialize)]
struct BlobOut<'a, M> {
    metadata: M,
    kwargs: &'a Kwargs,
}

#[derive(Deserialize)]
struct BlobIn<M> {
    metadata: M,
    #[serde(default)]
    kwargs: Option<Kwargs>,
}

impl RpcMessage {
    /// A new call with a fresh id.
    pub fn new(
        api_name: impl Into<String>,
        procedure_name: impl Into<String>,
        kwargs: Kwargs,
        return_path: String,
    ) -> Self {
        RpcMessage {
            id: new_message_id(),
            api_name: api_name.into(),
            procedure_name: procedure_name.into(),
            return_path,
            kwargs,
        }
    }

    /// `api.procedure`, as used in logs and errors.
    pub fn canonical_name(&self) -> String {
        format!("{}.{}", self.api_name, self.procedure_name)
    }

    /// The JSON blob pushed onto the API's RPC queue.
    pub fn to_blob(&self) -> String {
        let blob = BlobOut {
            metadata: RpcMetadata {
                id: self.id.as_str().into(),
                api_name: self.api_name.as_str().into(),
                procedure_name: self.procedure_name.as_str().into(),
                return_path: self.return_path.as_str().into(),
            },
            kwargs: &self.kwargs,
        };
        serde_json::to_string(&blob).unwrap_or_else(unreachable_encoding)
    }

    /// Decodes a blob popped from an RPC queue.
    pub fn from_blob(blob: &[u8]) -> Result<Self, DecodeError> {
        let decoded: BlobIn<RpcMetadata<'_>> =
            serde_json::from_slice(blob).map_err(|e| DecodeError {
                kind: "RPC call",
                reason: e.to_string(),
            })?;
        Ok(RpcMessage {
            id: decoded.metadata.id.into_owned(),
            api_name: decoded.metadata.api_name.into_owned(),
            procedure_name: decoded.metadata.procedure_name.into_owned(),
            return_path: decoded.metadata.return_path.into_owned(),
            kwargs: decoded.kwargs.unwrap_or_default(),
        })
    }
}

/// The answer to an [`RpcMessage`]: a value, or a failure with its trace.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultMessage {
    /// The result's own id.
    pub id: String,
    /// The id of the call it answers.
    pub rpc_message_id: String,
    /// The procedure's value or failure.
    pub outcome: RpcOutcome,
}

#[derive(Serialize)]
struct ResultMetadataOut<'a> {
    id: &'a str,
    rpc_message_id: &'a str,
    error: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<&'a str>,
}

#[derive(Deserialize)]
struct ResultMetadataIn {
    id: String,
    rpc_message_id: String,
    #[serde(default)]
    error: bool,
    #[serde(default)]
    trace: Option<String>,
}

#[derive(Serialize)]
struct ResultKwargsOut<'a> {
    result: &'a Value,
}

impl ResultMessage {
    /// The result of `call`, with a fresh id.
    pub fn answering(call: &RpcMessage, outcome: RpcOutcome) -> Self {
        ResultMessage {
            id: new_message_id(),
            rpc_message_id: call.id.clone(),
            outcome,
        }
    }

    /// The JSON blob pushed onto the caller's result key.
    pub fn to_blob(&self) -> String {
        let (error, trace, result) = match &self.outcome {
            Ok(value) => (false, None, value.clone()),
            Err(failure) => (
                true,
                Some(failure.trace.as_str()),
                Value::String(failure.message.clone()),
            ),
        };
        #[derive(Serialize)]
        struct Out<'a> {
            metadata: ResultMetadataOut<'a>,
            kwargs: ResultKwargsOut<'a>,
        }
        let blob = Out {
            metadata: ResultMetadataOut {
                id: &self.id,
                rpc_message_id: &self.rpc_message_id,
                error,
                trace,
            },
            kwargs: ResultKwargsOut { result: &result },
        };
        serde_json::to_string(&blob).unwrap_or_else(unreachable_encoding)
    }

    /// Decodes a blob popped from a result key.
    pub fn from_blob(blob: &[u8]) -> Result<Self, DecodeError> {
        let decoded: BlobIn<ResultMetadataIn> =
            serde_json::from_slice(blob).map_err(|e| DecodeError {
                kind: "RPC result",
                reason: e.to_string(),
            })?;
        let result = decoded
            .kwargs
            .and_then(|mut kwargs| kwargs.remove("result"))
            .unwrap_or(Value::Null);
        let outcome = if decoded.metadata.error {
            let message = match result {
                Value::String(text) => text,
                other => other.to_string(),
            };
            Err(RpcFailure {
                message,
                trace: decoded.metadata.trace.unwrap_or_default(),
            })
        } else {
            Ok(result)
        };
        Ok(ResultMessage {
            id: decoded.metadata.id,
            rpc_message_id: decoded.metadata.rpc_message_id,
            outcome,
        })
    }
}

/// Serializing a `serde_json::Value` or plain strings to text cannot fail; if it ever did,
/// sending a truncated message would be worse than stopping.
fn unreachable_encoding(error: serde_json::Error) -> String {
    panic!("encoding a message as JSON failed, which cannot happen for JSON values: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Captured from Python Lightbus 1.1.2 calling `auth.check_password`.
    const PEER_CALL: &str = r#"{"metadata": {"id": "ca634374-e8d4-11f1-a8e6-02fc00000001", "api_name": "auth", "procedure_name": "check_password", "return_path": "redis+key://auth.check_password:result:ca634374-e8d4-11f1-a8e6-02fc00000001"}, "kwargs": {"username": "admin", "password": "secret"}}"#;
    /// Captured from a Python worker answering it.
    const PEER_RESULT: &str = r#"{"metadata": {"id": "cb1b7a8e-e8d4-11f1-a8e6-02fc00000001", "rpc_message_id": "ca634374-e8d4-11f1-a8e6-02fc00000001", "error": false}, "kwargs": {"result": true}}"#;
    /// A Python worker's error result.
    const PEER_ERROR: &str = r#"{"metadata": {"id": "d0c1", "rpc_message_id": "ca63", "error": true, "trace": "Traceback (most recent call last):\n  ...\nValueError: bad x 1\n"}, "kwargs": {"result": "ValueError('bad x 1')"}}"#;

    #[test]
    fn decodes_a_peer_call() {
        let call = RpcMessage::from_blob(PEER_CALL.as_bytes()).expect("peer call decodes");
        assert_eq!(call.id, "ca634374-e8d4-11f1-a8e6-02fc00000001");
        assert_eq!(call.canonical_name(), "auth.check_password");
        assert_eq!(
            call.return_path,
            "redis+key://auth.check_password:result:ca634374-e8d4-11f1-a8e6-02fc00000001"
        );
        assert_eq!(
            Value::Object(call.kwargs),
            json!({"username": "admin", "password": "secret"})
        );
    }

    #[test]
    fn encodes_calls_as_the_peer_does() {
        let call = RpcMessage::from_blob(PEER_CALL.as_bytes()).expect("decodes");
        let ours: Value = serde_json::from_str(&call.to_blob()).expect("valid JSON");
        let theirs: Value = serde_json::from_str(PEER_CALL).expect("valid JSON");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn results_round_trip_with_the_peer_shape() {
        let result = ResultMessage::from_blob(PEER_RESULT.as_bytes()).expect("decodes");
        assert_eq!(result.outcome, Ok(json!(true)));
        let ours: Value = serde_json::from_str(&result.to_blob()).expect("valid JSON");
        let theirs: Value = serde_json::from_str(PEER_RESULT).expect("valid JSON");
        assert_eq!(ours, theirs, "no `trace` key on success, as the peer");

        let error = ResultMessage::from_blob(PEER_ERROR.as_bytes()).expect("decodes");
        let failure = error.outcome.clone().unwrap_err();
        assert_eq!(failure.message, "ValueError('bad x 1')");
        assert!(failure.trace.contains("Traceback"));
        let ours: Value = serde_json::from_str(&error.to_blob()).expect("valid JSON");
        let theirs: Value = serde_json::from_str(PEER_ERROR).expect("valid JSON");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn nested_values_survive_exactly() {
        let kwargs = json!({"v": {"text": "héllo ✓ 日本", "float": 0.1, "none": null,
                                  "big": 123456789012345678901234567890_u128, "list": [1, -2.5e-7]}});
        let call = RpcMessage::new(
            "a",
            "b",
            kwargs.as_object().cloned().unwrap_or_default(),
            String::new(),
        );
        let blob = call.to_blob();
        assert!(blob.contains("123456789012345678901234567890"), "{blob}");
        assert_eq!(
            RpcMessage::from_blob(blob.as_bytes()).expect("decodes"),
            call
        );
    }

    #[test]
    fn malformed_blobs_are_errors_not_panics() {
        for blob in [
            &b""[..],
            b"not json",
            b"[]",
            b"{}",
            b"{\"metadata\": {}}",
            b"{\"metadata\": {\"id\": 1, \"api_name\": \"a\", \"procedure_name\": \"b\"}}",
            b"\xff\xfe",
        ] {
            assert!(RpcMessage::from_blob(blob).is_err(), "{blob:?}");
            assert!(ResultMessage::from_blob(blob).is_err(), "{blob:?}");
        }
    }
}
