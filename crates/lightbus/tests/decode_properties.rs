//! Properties of the wire encodings: what a Rust process writes, it reads back exactly.
//!
//! For any call, result and event (any names, any JSON arguments — big integers, floats,
//! unicode, nesting — with or without a trace context), `from_blob(to_blob(m)) == m` and
//! `from_fields(to_fields(e)) == e`. A failing case is shrunk by proptest and saved under
//! `proptest-regressions/` so that it is replayed on every later run.

use lightbus::api::{RpcFailure, RpcOutcome};
use lightbus::message::{ResultMessage, RpcMessage, TraceContext};
use lightbus::{EventMessage, Kwargs};
use proptest::prelude::*;
use serde_json::{Number, Value};

/// Any JSON value a caller could send: numbers of every kind (beyond 64 bits too), any text.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        "-?[1-9][0-9]{20,40}".prop_map(|digits| Value::Number(digits.parse().unwrap())),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn kwargs() -> impl Strategy<Value = Kwargs> {
    prop::collection::vec((any::<String>(), json_value()), 0..6)
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn trace_context() -> impl Strategy<Value = Option<TraceContext>> {
    let parent = ("[0-9a-f]{31}[1-9a-f]", "[0-9a-f]{15}[1-9a-f]", "0[01]")
        .prop_map(|(trace, span, flags)| format!("00-{trace}-{span}-{flags}"));
    let state = prop::option::of("[a-z]{1,8}=[a-z0-9]{1,8}(,[a-z]{1,8}=[a-z0-9]{1,8}){0,2}");
    prop::option::of((parent, state)).prop_map(|context| {
        context.map(|(parent, state)| {
            TraceContext::new(&parent, state.as_deref()).expect("a valid traceparent")
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn rpc_blobs_round_trip(
        id in any::<String>(),
        api in any::<String>(),
        procedure in any::<String>(),
        return_path in any::<String>(),
        kwargs in kwargs(),
        trace_context in trace_context(),
    ) {
        let call = RpcMessage {
            id,
            api_name: api,
            procedure_name: procedure,
            return_path,
            kwargs,
            trace_context,
        };
        let decoded = RpcMessage::from_blob(call.to_blob().as_bytes());
        prop_assert_eq!(decoded.as_ref(), Ok(&call));
    }

    #[test]
    fn result_blobs_round_trip(
        id in any::<String>(),
        call_id in any::<String>(),
        value in json_value(),
        failure in prop::option::of((any::<String>(), any::<String>(), prop::option::of(any::<String>()))),
    ) {
        let outcome: RpcOutcome = match failure {
            None => Ok(value),
            Some((message, trace, code)) => {
                let failure = RpcFailure::new(message).with_trace(trace);
                Err(match code {
                    Some(code) => failure.with_code(code),
                    None => failure,
                })
            }
        };
        let result = ResultMessage { id, rpc_message_id: call_id, outcome };
        let decoded = ResultMessage::from_blob(result.to_blob().as_bytes());
        prop_assert_eq!(decoded.as_ref(), Ok(&result));
    }

    #[test]
    fn event_fields_round_trip(
        id in any::<String>(),
        api in any::<String>(),
        event in any::<String>(),
        version in any::<u32>(),
        kwargs in kwargs(),
        trace_context in trace_context(),
    ) {
        let mut message = EventMessage::new(api, event, version, kwargs);
        message.id = id;
        message.trace_context = trace_context;
        message.native_id = Some("1700000000000-0".to_owned());
        let fields: Vec<(String, String)> = message
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let decoded = EventMessage::from_fields("1700000000000-0", fields);
        prop_assert_eq!(decoded.as_ref(), Ok(&Some(message)));
    }
}
