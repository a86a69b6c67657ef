//! Bounded fuzzing of every decoder of data from the network or disk: RPC call blobs (and
//! their salvage), result blobs, event stream fields, API schemas as stored in Redis, and
//! configuration files (YAML and JSON).
//!
//! Inputs are real messages — captured from Python Lightbus 1.1.2 and written by this
//! library — mutated by proptest: bytes flipped, inserted, deleted, cut, spliced with another
//! seed, or replaced by random bytes. Each decoder must return (`Ok` or `Err`), never panic;
//! a panic fails the test and proptest shrinks it to a small input, saved under
//! `proptest-regressions/` and replayed on every later run. The number of cases is fixed
//! (`FUZZ_CASES`, default 1,500 per decoder), so CI's time is bounded; set it higher for a
//! longer run.

use lightbus::api::RpcFailure;
use lightbus::config::Config;
use lightbus::message::{ResultMessage, RpcMessage};
use lightbus::schema::{ApiSchema, Direction, Target, ValuePlan};
use lightbus::{EventMessage, Kwargs};
use proptest::prelude::*;
use serde_json::{json, Value};

/// `py_rpc.check_password` as Python Lightbus 1.1.2 sends it.
const PEER_CALL: &str = r#"{"kwargs": {"password": "secret", "username": "admin"}, "metadata": {"api_name": "py_rpc", "id": "dbfe3950-e8dd-11f1-bb15-02fc00000001", "procedure_name": "check_password", "return_path": "redis+key://py_rpc.check_password:result:dbfe3950-e8dd-11f1-bb15-02fc00000001"}}"#;
/// A peer call with nested values: escaped unicode, floats, null, a big integer.
const PEER_NESTED_CALL: &str = r#"{"kwargs": {"value": {"big": 123456789012345678901234567890, "float": 0.1, "list": [1, -1], "none": null, "text": "h\u00e9llo \u2713 \u65e5\u672c", "tiny": -2.5e-07}}, "metadata": {"api_name": "py_rpc", "id": "ee8a608a-e8dd-11f1-94b4-02fc00000001", "procedure_name": "echo", "return_path": "redis+key://py_rpc.echo:result:ee8a608a-e8dd-11f1-94b4-02fc00000001"}}"#;
/// The peer's answer to `PEER_CALL`.
const PEER_RESULT: &str = r#"{"kwargs": {"result": true}, "metadata": {"error": false, "id": "dc037c76-e8dd-11f1-bf14-02fc00000001", "rpc_message_id": "dbfe3950-e8dd-11f1-bb15-02fc00000001"}}"#;
/// A peer failure result, with NaN as Python's `json` writes it.
const PEER_ERROR_RESULT: &str = r#"{"kwargs": {"result": "ValueError: bad", "nan": NaN}, "metadata": {"error": true, "id": "dc037c76-e8dd-11f1-bf14-02fc00000002", "rpc_message_id": "dbfe3950-e8dd-11f1-bb15-02fc00000002", "trace": "Traceback (most recent call last):\n  ValueError: bad"}}"#;

/// An API schema in the shape both implementations store under `schema:<api>`.
const SCHEMA: &str = r##"{"rpcs": {"check_password": {"parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false, "properties": {"username": {"type": "string"}, "password": {"type": "string"}}, "required": ["username", "password"], "title": "RPC auth.check_password() parameters"}, "response": {"$schema": "http://json-schema.org/draft-07/schema#", "title": "RPC auth.check_password() response", "type": "boolean"}}}, "events": {"user_registered": {"parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false, "properties": {"username": {"type": "string"}, "when": {"type": "string", "format": "date-time"}, "amount": {"type": "string", "pattern": "^-?\\d+(\\.\\d+)?$"}, "tags": {"type": "array", "items": {"$ref": "#/definitions/Tag"}}}, "required": ["username"], "definitions": {"Tag": {"anyOf": [{"type": "string"}, {"type": "null"}]}}, "title": "Event auth.user_registered parameters"}}}}"##;

const CONFIG_YAML: &str = "bus:\n  schema:\n    ttl: 60\n    transport:\n      redis:\n        url: redis://127.0.0.1:6379/0\nservice_name: auth\nprocess_name: 'auth-{pid}'\napis:\n  default:\n    rpc_timeout: 5\n    validate: false\n    max_deliveries: 3\n    event_listener_setup:\n      acknowledgement_timeout: 60\n    rpc_transport:\n      redis:\n        url: redis://127.0.0.1:6379/0\n        max_message_bytes: 1048576\n    result_transport:\n      redis:\n        url: redis://127.0.0.1:6379/0\n        result_ttl: 30\n    event_transport:\n      redis:\n        url: redis://127.0.0.1:6379/0\n        batch_size: 10\n  auth:\n    validate: {incoming: true, outgoing: false}\nplugins:\n  internal_state:\n    enabled: true\n";
const CONFIG_JSON: &str = r#"{"service_name": "auth", "bus": {"schema": {"ttl": 60}}, "apis": {"default": {"rpc_timeout": 5.5, "event_transport": {"redis": {"url": "redis://127.0.0.1:6379", "batch_size": 10}}}}}"#;

/// Peer-written fields of `auth.user_registered`, and one with a trace context.
fn event_seeds() -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    let own = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect::<Vec<_>>()
    };
    let mut kwargs = Kwargs::new();
    kwargs.insert("username".into(), json!("adm\u{e9}n"));
    kwargs.insert("n".into(), json!(123456789012345678901234567890u128));
    let ours = EventMessage::new("auth", "user_registered", 3, kwargs)
        .to_fields()
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    vec![
        own(&[
            ("id", "ca634374-e8d4-11f1-a8e6-02fc00000001"),
            ("api_name", "auth"),
            ("event_name", "user_registered"),
            ("version", "1"),
            (":username", "\"admin\""),
            (":email", "\"admin@example.com\""),
        ]),
        own(&[("", "")]),
        own(&[
            ("id", "x"),
            ("api_name", "auth"),
            ("event_name", "e"),
            ("version", "1"),
            (
                "",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\nrojo=00f067aa0ba902b7",
            ),
            (":v", "[NaN, Infinity, -Infinity, 1e999]"),
        ]),
        ours,
    ]
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500)
}

/// One change to a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = prop::sample::select(b"{}[]\":,\\0-9eE.+-nNI \n\x00\xff\xc3".to_vec());
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
        (any::<usize>(), prop_oneof![any::<u8>(), special])
            .prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Mutation::Delete(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 0..24))
            .prop_map(|(at, bytes)| Mutation::Splice(at, bytes)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for change in mutations {
        let len = bytes.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match change {
            Mutation::Flip(i, bits) if len > 0 => bytes[i % len] ^= bits,
            Mutation::Flip(..) => {}
            Mutation::Insert(i, byte) => bytes.insert(at(*i), *byte),
            Mutation::Delete(i, n) => {
                let start = at(*i).min(len);
                bytes.drain(start..(start + n).min(len));
            }
            Mutation::Truncate(i) => bytes.truncate(at(*i)),
            Mutation::Duplicate(i, n) => {
                let start = at(*i).min(len);
                let copy = bytes[start..(start + n).min(len)].to_vec();
                bytes.splice(start..start, copy);
            }
            Mutation::Splice(i, new) => {
                let start = at(*i);
                bytes.splice(start..start, new.iter().copied());
            }
        }
    }
    bytes
}

/// A seed (index into `seeds`) mutated, or plain random bytes.
fn input(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let count = seeds.len();
    prop_oneof![
        9 => (0..count, prop::collection::vec(mutation(), 1..8))
            .prop_map(move |(seed, changes)| apply(seeds[seed].clone(), &changes)),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

fn blobs(texts: &[&str]) -> Vec<Vec<u8>> {
    texts.iter().map(|t| t.as_bytes().to_vec()).collect()
}

/// Everything a worker or caller does with a blob it popped.
fn decode_rpc(bytes: &[u8]) {
    if let Ok(call) = RpcMessage::from_blob(bytes) {
        let _ = RpcMessage::from_blob(call.to_blob().as_bytes()).expect("re-encoded call decodes");
        let _ = call.canonical_name();
    }
    let _ = RpcMessage::salvage(bytes);
}

fn decode_result(bytes: &[u8]) {
    if let Ok(result) = ResultMessage::from_blob(bytes) {
        let again = ResultMessage::from_blob(result.to_blob().as_bytes());
        assert_eq!(
            again.as_ref(),
            Ok(&result),
            "re-encoded result decodes the same"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn rpc_blobs_never_panic(bytes in input(blobs(&[PEER_CALL, PEER_NESTED_CALL, PEER_RESULT]))) {
        decode_rpc(&bytes);
    }

    #[test]
    fn result_blobs_never_panic(bytes in input(blobs(&[PEER_RESULT, PEER_ERROR_RESULT, PEER_CALL]))) {
        decode_result(&bytes);
        let own = ResultMessage {
            id: "r".into(),
            rpc_message_id: "c".into(),
            outcome: Err(RpcFailure::new(String::from_utf8_lossy(&bytes)).with_code("x")),
        };
        decode_result(own.to_blob().as_bytes());
    }

    #[test]
    fn event_fields_never_panic(
        seed in 0..event_seeds().len(),
        field in any::<usize>(),
        key in any::<bool>(),
        changes in prop::collection::vec(mutation(), 1..6),
        drop_field in prop::option::of(any::<usize>()),
    ) {
        let mut fields = event_seeds().swap_remove(seed);
        let i = field % fields.len();
        let target = if key { &mut fields[i].0 } else { &mut fields[i].1 };
        *target = apply(std::mem::take(target), &changes);
        if let Some(drop) = drop_field {
            fields.remove(drop % fields.len());
        }
        if let Ok(Some(event)) = EventMessage::from_fields("1-0", fields) {
            let _ = event.canonical_name();
            let _ = event.to_fields();
        }
    }

    #[test]
    fn stored_schemas_never_panic(bytes in input(blobs(&[SCHEMA]))) {
        let Ok(raw) = serde_json::from_slice::<Value>(&bytes) else { return Ok(()) };
        let _ = ValuePlan::new(&raw);
        if let Ok(schema) = ApiSchema::from_value("auth", raw, "fuzz") {
            let kwargs = json!({"username": "ann", "password": 1, "when": "2024-01-01T00:00:00+00:00", "tags": [null, "a"]});
            for rpc in schema.rpc_names() {
                for direction in [Direction::Incoming, Direction::Outgoing] {
                    let _ = schema.validate(Target::RpcParameters, rpc, &kwargs, direction);
                    let _ = schema.validate(Target::RpcResponse, rpc, &json!(true), direction);
                }
            }
            for event in schema.event_names() {
                let _ = schema.validate(Target::EventParameters, event, &kwargs, Direction::Incoming);
            }
        }
    }

    #[test]
    fn configuration_files_never_panic(bytes in input(blobs(&[CONFIG_YAML, CONFIG_JSON]))) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Config::from_str(&text, "fuzz.yaml");
        let _ = Config::from_str(&text, "fuzz.json");
    }
}
