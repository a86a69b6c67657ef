//! RPC calls and their results: JSON blobs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{from_peer_json, new_message_id, DecodeError, TraceContext};
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
    /// The caller's trace context, carried beside the blob's `metadata` (see
    /// [`TraceContext`]); `None` unless trace propagation is on.
    pub trace_context: Option<TraceContext>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracestate: Option<&'a str>,
}

#[derive(Deserialize)]
struct BlobIn<M> {
    metadata: M,
    #[serde(default)]
    kwargs: Option<Kwargs>,
    /// Read as any JSON value, so that a malformed context never fails the message.
    #[serde(default)]
    traceparent: Option<Value>,
    #[serde(default)]
    tracestate: Option<Value>,
}

impl<M> BlobIn<M> {
    fn trace_context(&self) -> Option<TraceContext> {
        let parent = self.traceparent.as_ref()?.as_str()?;
        TraceContext::new(parent, self.tracestate.as_ref().and_then(Value::as_str))
    }
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
            trace_context: None,
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
            traceparent: self.trace_context.as_ref().map(|c| c.traceparent.as_str()),
            tracestate: self
                .trace_context
                .as_ref()
                .and_then(|c| c.tracestate.as_deref()),
        };
        serde_json::to_string(&blob).unwrap_or_else(unreachable_encoding)
    }

    /// Decodes a blob popped from an RPC queue (also when the peer wrote NaN or infinity
    /// into it: see `from_peer_json`).
    pub fn from_blob(blob: &[u8]) -> Result<Self, DecodeError> {
        let error = |e: serde_json::Error| DecodeError {
            kind: "RPC call",
            reason: e.to_string(),
        };
        match serde_json::from_slice::<BlobIn<RpcMetadata<'_>>>(blob) {
            Ok(decoded) => Ok(Self::from_decoded(decoded)),
            Err(strict) => {
                let value: Value = from_peer_json(blob).map_err(|_| error(strict))?;
                let decoded = BlobIn::<RpcMetadata<'_>>::deserialize(&value).map_err(error)?;
                Ok(Self::from_decoded(decoded))
            }
        }
    }

    /// Who to answer about a blob that does not decode as a call (see [`Self::from_blob`]):
    /// its id (text, or a number as text), API, procedure (`?` when unreadable) and return
    /// path, with no arguments; `None` unless the blob is a JSON object whose `metadata`
    /// has an id, a text `api_name` and a text `return_path`. So a call with bad
    /// arguments or a stray field can still be answered with an error instead of leaving
    /// its caller to time out.
    pub fn salvage(blob: &[u8]) -> Option<RpcMessage> {
        let value: Value = serde_json::from_slice(blob).ok()?;
        let metadata = value.get("metadata")?;
        let text = |name: &str| {
            metadata
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let id = match metadata.get("id")? {
            Value::String(id) if !id.is_empty() => id.clone(),
            Value::Number(id) => id.to_string(),
            _ => return None,
        };
        Some(RpcMessage {
            id,
            api_name: text("api_name")?,
            procedure_name: text("procedure_name").unwrap_or_else(|| "?".to_owned()),
            return_path: text("return_path")?,
            kwargs: Kwargs::new(),
            trace_context: None,
        })
    }

    fn from_decoded(decoded: BlobIn<RpcMetadata<'_>>) -> Self {
        let trace_context = decoded.trace_context();
        RpcMessage {
            id: decoded.metadata.id.into_owned(),
            api_name: decoded.metadata.api_name.into_owned(),
            procedure_name: decoded.metadata.procedure_name.into_owned(),
            return_path: decoded.metadata.return_path.into_owned(),
            kwargs: decoded.kwargs.unwrap_or_default(),
            trace_context,
        }
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
    result: ResultValue<'a>,
    /// The failure's code, for Rust callers. Python callers read only `result`, so they
    /// ignore it (a new key in `metadata` would make them fail to decode the result).
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
}

/// A result's value, or a failure's message, borrowed from the message.
#[derive(Serialize)]
#[serde(untagged)]
enum ResultValue<'a> {
    Value(&'a Value),
    Text(&'a str),
}

#[derive(Deserialize)]
struct ResultKwargsIn {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error_code: Option<String>,
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
        let (error, trace, result, error_code) = match &self.outcome {
            Ok(value) => (false, None, ResultValue::Value(value), None),
            Err(failure) => (
                true,
                Some(failure.trace.as_str()),
                ResultValue::Text(&failure.message),
                failure.code.as_deref(),
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
            kwargs: ResultKwargsOut { result, error_code },
        };
        serde_json::to_string(&blob).unwrap_or_else(unreachable_encoding)
    }

    /// Decodes a blob popped from a result key.
    pub fn from_blob(blob: &[u8]) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct ResultBlobIn {
            metadata: ResultMetadataIn,
            #[serde(default)]
            kwargs: Option<ResultKwargsIn>,
        }
        let decoded: ResultBlobIn = from_peer_json(blob).map_err(|e| DecodeError {
            kind: "RPC result",
            reason: e.to_string(),
        })?;
        let ResultKwargsIn { result, error_code } = decoded.kwargs.unwrap_or(ResultKwargsIn {
            result: Value::Null,
            error_code: None,
        });
        let outcome = if decoded.metadata.error {
            let message = match result {
                Value::String(text) => text,
                other => other.to_string(),
            };
            Err(RpcFailure {
                message,
                trace: decoded.metadata.trace.unwrap_or_default(),
                code: error_code,
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

    // Blobs captured with `redis-cli MONITOR` from Python Lightbus 1.1.2 (Python 3.11) calling
    // and serving the API `py_rpc` of crates/lightbus/tests/peer/rpc_worker.py. The peer writes
    // keys sorted and non-ASCII text as `\u` escapes.

    /// A call of `py_rpc.check_password(username="admin", password="secret")`.
    const PEER_CALL: &str = r#"{"kwargs": {"password": "secret", "username": "admin"}, "metadata": {"api_name": "py_rpc", "id": "dbfe3950-e8dd-11f1-bb15-02fc00000001", "procedure_name": "check_password", "return_path": "redis+key://py_rpc.check_password:result:dbfe3950-e8dd-11f1-bb15-02fc00000001"}}"#;
    /// The worker's answer to it.
    const PEER_RESULT: &str = r#"{"kwargs": {"result": true}, "metadata": {"error": false, "id": "dc037c76-e8dd-11f1-bf14-02fc00000001", "rpc_message_id": "dbfe3950-e8dd-11f1-bb15-02fc00000001"}}"#;
    /// A call of `py_rpc.echo` with nested values: escaped unicode, floats, null, a big integer.
    const PEER_NESTED_CALL: &str = r#"{"kwargs": {"value": {"big": 123456789012345678901234567890, "float": 0.1, "list": [1, -1], "none": null, "text": "h\u00e9llo \u2713 \u65e5\u672c", "tiny": -2.5e-07}}, "metadata": {"api_name": "py_rpc", "id": "ee8a608a-e8dd-11f1-94b4-02fc00000001", "procedure_name": "echo", "return_path": "redis+key://py_rpc.echo:result:ee8a608a-e8dd-11f1-94b4-02fc00000001"}}"#;
    /// The worker's answer to it.
    const PEER_NESTED_RESULT: &str = r#"{"kwargs": {"result": {"big": 123456789012345678901234567890, "float": 0.1, "list": [1, -1], "none": null, "text": "h\u00e9llo \u2713 \u65e5\u672c", "tiny": -2.5e-07}}, "metadata": {"error": false, "id": "ee8f118e-e8dd-11f1-959c-02fc00000001", "rpc_message_id": "ee8a608a-e8dd-11f1-94b4-02fc00000001"}}"#;
    /// The worker's error result for a handler raising `ValueError("bad input: 7")` (the worker
    /// loads a shim for the `etype=` keyword of `traceback.format_exception` that 1.1.2 still
    /// passes; without it the peer dies on Python 3.10+ instead of answering).
    const PEER_ERROR: &str = r#"{"kwargs": {"result": "ValueError('bad input: 7')"}, "metadata": {"error": true, "id": "d1924e00-e8df-11f1-b787-02fc00000001", "rpc_message_id": "d190db42-e8df-11f1-afbd-02fc00000001", "trace": "Traceback (most recent call last):\n  File \"/work/wt-interop/.venv/lib/python3.11/site-packages/lightbus/client/subclients/rpc_result.py\", line 222, in handle_execute_rpc\n    result = await self._call_rpc_local(\n             ^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/work/wt-interop/.venv/lib/python3.11/site-packages/lightbus/client/subclients/rpc_result.py\", line 179, in _call_rpc_local\n    result = await run_user_provided_callable(method, args=[], kwargs=kwargs)\n             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/work/wt-interop/.venv/lib/python3.11/site-packages/lightbus/utilities/async_tools.py\", line 146, in run_user_provided_callable\n    raise exception\n  File \"/work/wt-interop/.venv/lib/python3.11/site-packages/lightbus/utilities/async_tools.py\", line 141, in run_user_provided_callable\n    return await future\n           ^^^^^^^^^^^^\n  File \"/root/.pyenv/versions/3.11.7/lib/python3.11/concurrent/futures/thread.py\", line 58, in run\n    result = self.fn(*self.args, **self.kwargs)\n             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/work/wt-interop/.venv/lib/python3.11/site-packages/lightbus/utilities/async_tools.py\", line 139, in <lambda>\n    executor=thread_pool_executor, func=lambda: callable_(*args, **kwargs)\n                                                ^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/work/wt-interop/crates/lightbus/tests/peer/rpc_worker.py\", line 43, in fail\n    raise ValueError(f\"bad input: {reason}\")\nValueError: bad input: 7\n"}}"#;

    #[test]
    fn decodes_a_peer_call() {
        let call = RpcMessage::from_blob(PEER_CALL.as_bytes()).expect("peer call decodes");
        assert_eq!(call.id, "dbfe3950-e8dd-11f1-bb15-02fc00000001");
        assert_eq!(call.canonical_name(), "py_rpc.check_password");
        assert_eq!(
            call.return_path,
            "redis+key://py_rpc.check_password:result:dbfe3950-e8dd-11f1-bb15-02fc00000001"
        );
        assert_eq!(
            Value::Object(call.kwargs),
            json!({"username": "admin", "password": "secret"})
        );
    }

    #[test]
    fn encodes_calls_as_the_peer_does() {
        for blob in [PEER_CALL, PEER_NESTED_CALL] {
            let call = RpcMessage::from_blob(blob.as_bytes()).expect("decodes");
            let ours: Value = serde_json::from_str(&call.to_blob()).expect("valid JSON");
            let theirs: Value = serde_json::from_str(blob).expect("valid JSON");
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn peer_nested_values_decode_exactly() {
        let call = RpcMessage::from_blob(PEER_NESTED_CALL.as_bytes()).expect("decodes");
        let value = &call.kwargs["value"];
        assert_eq!(value["text"], "héllo ✓ 日本");
        assert_eq!(value["big"].to_string(), "123456789012345678901234567890");
        assert_eq!(value["tiny"].as_f64(), Some(-2.5e-7));
        assert_eq!(value["float"].as_f64(), Some(0.1));
        assert!(value["none"].is_null());
        // Re-encoded, the big integer keeps every digit.
        assert!(call.to_blob().contains("123456789012345678901234567890"));

        let result = ResultMessage::from_blob(PEER_NESTED_RESULT.as_bytes()).expect("decodes");
        assert_eq!(result.rpc_message_id, call.id);
        assert_eq!(result.outcome.as_ref(), Ok(value));
    }

    #[test]
    fn results_round_trip_with_the_peer_shape() {
        let result = ResultMessage::from_blob(PEER_RESULT.as_bytes()).expect("decodes");
        assert_eq!(result.outcome, Ok(json!(true)));
        assert_eq!(
            result.rpc_message_id,
            "dbfe3950-e8dd-11f1-bb15-02fc00000001"
        );
        let ours: Value = serde_json::from_str(&result.to_blob()).expect("valid JSON");
        let theirs: Value = serde_json::from_str(PEER_RESULT).expect("valid JSON");
        assert_eq!(ours, theirs, "no `trace` key on success, as the peer");

        let error = ResultMessage::from_blob(PEER_ERROR.as_bytes()).expect("decodes");
        let failure = error.outcome.clone().unwrap_err();
        assert_eq!(failure.message, "ValueError('bad input: 7')");
        assert!(failure
            .trace
            .starts_with("Traceback (most recent call last):"));
        assert!(failure.trace.ends_with("ValueError: bad input: 7\n"));
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

    /// A call from the Python peer with the floats it writes as bare tokens
    /// (`json.dumps({"v": [float("nan"), float("inf"), -float("inf")]})`).
    const PEER_NON_FINITE_CALL: &str = r#"{"kwargs": {"v": [NaN, Infinity, -Infinity], "text": "NaN Infinity \" NaN"}, "metadata": {"api_name": "py_rpc", "id": "1", "procedure_name": "echo", "return_path": "redis+key://k"}}"#;

    #[test]
    fn python_nan_and_infinity_decode_instead_of_dropping_the_call() {
        let call = RpcMessage::from_blob(PEER_NON_FINITE_CALL.as_bytes()).expect("decodes");
        let v = &call.kwargs["v"];
        assert_eq!(v[0], json!("NaN"));
        assert_eq!(
            serde_json::from_value::<f64>(v[1].clone()).ok(),
            Some(f64::INFINITY)
        );
        assert_eq!(
            serde_json::from_value::<f64>(v[2].clone()).ok(),
            Some(f64::NEG_INFINITY)
        );
        // Strings are left alone, escaped quotes included.
        assert_eq!(call.kwargs["text"], json!("NaN Infinity \" NaN"));
        // Sent on, infinity is a number Python reads as `inf` again.
        assert!(
            call.to_blob().contains("[\"NaN\",1e+999,-1e+999]"),
            "{}",
            call.to_blob()
        );

        let result = br#"{"kwargs": {"result": -Infinity}, "metadata": {"error": false, "id": "2", "rpc_message_id": "1"}}"#;
        let result = ResultMessage::from_blob(result).expect("decodes");
        let value = result.outcome.expect("a value");
        assert_eq!(
            serde_json::from_value::<f64>(value).ok(),
            Some(f64::NEG_INFINITY)
        );
        // Other syntax errors are still errors.
        assert!(RpcMessage::from_blob(b"{\"metadata\": NaX}").is_err());
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
