//! An API schema as stored under `schema:<api>`: parsed, compiled, and used to validate.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightbus::schema::{ApiSchema, Direction, Target, ValuePlan};
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = ValuePlan::new(&raw);
    if let Ok(schema) = ApiSchema::from_value("auth", raw, "fuzz") {
        let kwargs = json!({"username": "ann", "password": 1, "tags": [null, "a"]});
        for rpc in schema.rpc_names() {
            let _ = schema.validate(Target::RpcParameters, rpc, &kwargs, Direction::Incoming);
            let _ = schema.validate(Target::RpcResponse, rpc, &json!(true), Direction::Outgoing);
        }
        for event in schema.event_names() {
            let _ = schema.validate(Target::EventParameters, event, &kwargs, Direction::Incoming);
        }
    }
});
