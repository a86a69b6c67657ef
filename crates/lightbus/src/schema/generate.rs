//! The peer-format schema of an API, from its [`ApiDescriptor`].
//!
//! One API's schema is `{"rpcs": {name: {"parameters": …, "response": …}}, "events": {name:
//! {"parameters": …}}}`. Every parameter schema is a draft-07 object schema titled as the
//! peer titles it (`RPC auth.check_password() parameters`, `Event auth.user_registered
//! parameters`) with one property per keyword parameter, `required` listing the parameters
//! that may not be left out (omitted when there are none, as the peer does) and
//! `additionalProperties: false`. A response schema is the return type's schema with
//! `$schema` and the title `RPC auth.check_password() response` added.

use serde_json::{Map, Value};

use super::DRAFT_07;
use crate::api::{ApiDescriptor, Parameter};

/// The schema of one API, in the form the peer stores under `schema:{api}`.
///
/// ```
/// use lightbus::api::ApiBuilder;
/// use lightbus::Api;
///
/// let api = ApiBuilder::new("auth").event("user_registered", ["username"]).build();
/// let schema = lightbus::schema::api_schema(&api.descriptor());
/// let parameters = &schema["events"]["user_registered"]["parameters"];
/// assert_eq!(parameters["title"], "Event auth.user_registered parameters");
/// assert_eq!(parameters["properties"]["username"], serde_json::json!({}));
/// ```
pub fn api_schema(api: &ApiDescriptor) -> Value {
    let mut rpcs = Map::new();
    for rpc in &api.rpcs {
        let mut entry = Map::new();
        entry.insert(
            "parameters".to_owned(),
            parameters_schema(
                format!("RPC {}.{}() parameters", api.name, rpc.name),
                &rpc.parameters,
            ),
        );
        entry.insert(
            "response".to_owned(),
            response_schema(
                format!("RPC {}.{}() response", api.name, rpc.name),
                &rpc.response,
            ),
        );
        rpcs.insert(rpc.name.clone(), Value::Object(entry));
    }
    let mut events = Map::new();
    for event in &api.events {
        let mut entry = Map::new();
        entry.insert(
            "parameters".to_owned(),
            parameters_schema(
                format!("Event {}.{} parameters", api.name, event.name),
                &event.parameters,
            ),
        );
        events.insert(event.name.clone(), Value::Object(entry));
    }
    let mut schema = Map::new();
    schema.insert("rpcs".to_owned(), Value::Object(rpcs));
    schema.insert("events".to_owned(), Value::Object(events));
    Value::Object(schema)
}

/// The object schema of a parameter list.
fn parameters_schema(title: String, parameters: &[Parameter]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for parameter in parameters {
        properties.insert(parameter.name.clone(), normalized(&parameter.schema));
        if parameter.required {
            required.push(Value::String(parameter.name.clone()));
        }
    }
    let mut schema = Map::new();
    schema.insert("$schema".to_owned(), Value::String(DRAFT_07.to_owned()));
    schema.insert("type".to_owned(), Value::String("object".to_owned()));
    schema.insert("additionalProperties".to_owned(), Value::Bool(false));
    schema.insert("properties".to_owned(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".to_owned(), Value::Array(required));
    }
    schema.insert("title".to_owned(), Value::String(title));
    Value::Object(schema)
}

/// A response schema: the return type's schema, with `$schema` and `title`.
fn response_schema(title: String, response: &Value) -> Value {
    let mut schema = match normalized(response) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    schema.insert("$schema".to_owned(), Value::String(DRAFT_07.to_owned()));
    schema.insert("title".to_owned(), Value::String(title));
    Value::Object(schema)
}

/// Boolean schemas as objects (`true` → `{}`, `false` → `{"not": {}}`), so titles and
/// `$schema` can be added and old validators that only know object schemas accept them.
fn normalized(schema: &Value) -> Value {
    match schema {
        Value::Bool(true) => Value::Object(Map::new()),
        Value::Bool(false) => {
            let mut map = Map::new();
            map.insert("not".to_owned(), Value::Object(Map::new()));
            Value::Object(map)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EventDescriptor, RpcDescriptor};
    use crate::schema::{schema_of, to_python_json};
    use serde_json::json;

    fn quickstart() -> ApiDescriptor {
        ApiDescriptor {
            name: "auth".into(),
            version: 1,
            rpcs: vec![RpcDescriptor {
                name: "check_password".into(),
                parameters: vec![
                    Parameter {
                        name: "username".into(),
                        schema: schema_of::<String>(),
                        required: true,
                    },
                    Parameter {
                        name: "password".into(),
                        schema: schema_of::<String>(),
                        required: true,
                    },
                ],
                response: schema_of::<bool>(),
            }],
            events: vec![EventDescriptor {
                name: "user_registered".into(),
                parameters: vec![Parameter::untyped("username"), Parameter::untyped("email")],
            }],
        }
    }

    /// The bytes the Python peer stores for the same API (`GET schema:auth` from a
    /// Python Lightbus 1.1.2 worker serving the typed quickstart API).
    const PEER_QUICKSTART: &str = concat!(
        r#"{"events": {"user_registered": {"parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "#,
        r#""additionalProperties": false, "properties": {"email": {}, "username": {}}, "required": ["username", "email"], "#,
        r#""title": "Event auth.user_registered parameters", "type": "object"}}}, "rpcs": {"check_password": "#,
        r#"{"parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": false, "#,
        r#""properties": {"password": {"type": "string"}, "username": {"type": "string"}}, "required": ["username", "password"], "#,
        r#""title": "RPC auth.check_password() parameters", "type": "object"}, "response": {"$schema": "#,
        r#""http://json-schema.org/draft-07/schema#", "title": "RPC auth.check_password() response", "type": "boolean"}}}}"#
    );

    #[test]
    fn quickstart_schema_is_byte_identical_to_the_peers() {
        let schema = api_schema(&quickstart());
        assert_eq!(to_python_json(&schema, None), PEER_QUICKSTART);
    }

    #[test]
    fn optional_parameters_and_empty_lists() {
        let api = ApiDescriptor {
            name: "a".into(),
            version: 1,
            rpcs: vec![RpcDescriptor {
                name: "nothing".into(),
                parameters: vec![Parameter {
                    name: "maybe".into(),
                    schema: schema_of::<Option<i64>>(),
                    required: false,
                }],
                response: schema_of::<()>(),
            }],
            events: vec![],
        };
        let schema = api_schema(&api);
        let parameters = &schema["rpcs"]["nothing"]["parameters"];
        assert!(parameters.get("required").is_none(), "{parameters}");
        assert_eq!(schema["rpcs"]["nothing"]["response"]["type"], json!("null"));
        assert_eq!(schema["events"], json!({}));
        // An untyped (`true`) response schema becomes `{}` plus title.
        let untyped = response_schema("t".into(), &json!(true));
        assert_eq!(untyped, json!({"$schema": DRAFT_07, "title": "t"}));
    }
}
