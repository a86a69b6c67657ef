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

use super::values::PEER_DECIMAL_PATTERN;
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

/// The decimal schema schemars writes for `rust_decimal::Decimal` when reading (it also
/// takes numbers and exponents); replaced by the peer's.
const SCHEMARS_DECIMAL_PATTERN: &str = r"^-?\d+(\.\d+)?([eE]\d+)?$";

/// Turns a schema as schemars generates it (with `definitions`) into the schema the peer's
/// `hints_to_schema` writes for the Python equivalent of the type:
///
/// - references are inlined (the peer's schemas have none), and a struct carries its name as
///   `title` and `additionalProperties: false`, like a dataclass or named tuple; a recursive
///   type's inner occurrences become `{}` (Python cannot describe recursion either);
/// - `Option<T>` is `{"anyOf": [T, {"type": "null"}]}` (Python's `Optional[T]`), not
///   `{"type": [.., "null"]}`; a nullable unit enum drops `null` from its `enum` list;
/// - `rust_decimal::Decimal` is `{"type": "string", "pattern": "^-?\d+(\.\d+)?$"}` (the peer
///   accepts neither numbers nor exponents);
/// - annotations the peer never writes are dropped: doc comments (`description`), Rust
///   number formats (`int64`, `double`, …), `format: uuid`, `uniqueItems` (sets); chrono's
///   `partial-date-time` and `partial-time` become the peer's `date-time` and `time`.
///
/// What has no Python equivalent keeps schemars' form: unsigned integers keep `minimum: 0`
/// (and `maximum` for the small ones), `char` its length of 1, data-carrying enums their
/// `oneOf` of externally tagged objects (each closed with `additionalProperties: false`).
pub(crate) fn peer_type_schema(root: Value) -> Value {
    let Value::Object(mut root) = root else {
        return normalized(&root);
    };
    let mut definitions = match root.remove("definitions") {
        Some(Value::Object(definitions)) => definitions,
        _ => Map::new(),
    };
    if let Some(Value::Object(more)) = root.remove("$defs") {
        definitions.extend(more);
    }
    let title = root.remove("title");
    let mut inliner = Inliner {
        definitions,
        stack: Vec::new(),
    };
    let mut schema = inliner.resolve(Value::Object(root));
    if let (Some(title), Value::Object(map)) = (title, &mut schema) {
        if is_struct(map) {
            map.insert("title".to_owned(), title);
        }
    }
    peer_form(&mut schema);
    schema
}

/// An object schema with named properties: what a Rust struct (or Python class) becomes.
fn is_struct(map: &Map<String, Value>) -> bool {
    map.get("type").and_then(Value::as_str) == Some("object") && map.contains_key("properties")
}

/// Inlines `#/definitions/…` references, naming structs after their definition.
struct Inliner {
    definitions: Map<String, Value>,
    /// Definitions being inlined, to cut recursion.
    stack: Vec<String>,
}

impl Inliner {
    fn resolve(&mut self, schema: Value) -> Value {
        match schema {
            Value::Object(mut map) => {
                if let Some(Value::String(reference)) = map.remove("$ref") {
                    let mut resolved = self.inline(&reference);
                    if let Value::Object(target) = &mut resolved {
                        for (key, value) in map {
                            target.insert(key, value);
                        }
                    }
                    return resolved;
                }
                for (keyword, value) in map.iter_mut() {
                    if is_schema_keyword(keyword) {
                        *value = self.resolve_keyword(keyword, std::mem::take(value));
                    }
                }
                Value::Object(map)
            }
            other => other,
        }
    }

    /// A keyword's value: one schema, a list of schemas, or a map of them.
    fn resolve_keyword(&mut self, keyword: &str, value: Value) -> Value {
        match (keyword, value) {
            ("properties" | "patternProperties" | "definitions" | "$defs", Value::Object(map)) => {
                Value::Object(
                    map.into_iter()
                        .map(|(name, schema)| (name, self.resolve(schema)))
                        .collect(),
                )
            }
            (_, Value::Array(schemas)) => {
                Value::Array(schemas.into_iter().map(|s| self.resolve(s)).collect())
            }
            (_, schema) => self.resolve(schema),
        }
    }

    fn inline(&mut self, reference: &str) -> Value {
        let name = reference
            .strip_prefix("#/definitions/")
            .or_else(|| reference.strip_prefix("#/$defs/"));
        let Some(name) = name else {
            return Value::Object(Map::new()); // `#`: the root of a recursive type
        };
        let Some(definition) = self.definitions.get(name).cloned() else {
            return Value::Object(Map::new());
        };
        if self.stack.iter().any(|open| open == name) {
            return Value::Object(Map::new());
        }
        self.stack.push(name.to_owned());
        let mut resolved = self.resolve(definition);
        self.stack.pop();
        if let Value::Object(map) = &mut resolved {
            if is_struct(map) {
                map.insert("title".to_owned(), Value::String(name.to_owned()));
            }
        }
        resolved
    }
}

/// Keywords whose value is a schema, a list or a map of schemas (the rest hold data).
fn is_schema_keyword(keyword: &str) -> bool {
    matches!(
        keyword,
        "properties"
            | "patternProperties"
            | "additionalProperties"
            | "items"
            | "additionalItems"
            | "contains"
            | "propertyNames"
            | "not"
            | "if"
            | "then"
            | "else"
            | "anyOf"
            | "oneOf"
            | "allOf"
            | "definitions"
            | "$defs"
    )
}

/// Applies the peer's conventions to an inlined schema, innermost schemas first.
fn peer_form(schema: &mut Value) {
    let Value::Object(map) = schema else {
        if let Value::Bool(_) = schema {
            *schema = normalized(schema);
        }
        return;
    };
    for (keyword, value) in map.iter_mut() {
        if !is_schema_keyword(keyword) {
            continue;
        }
        match (keyword.as_str(), value) {
            ("properties" | "patternProperties" | "definitions" | "$defs", Value::Object(m)) => {
                m.values_mut().for_each(peer_form)
            }
            (_, Value::Array(schemas)) => schemas.iter_mut().for_each(peer_form),
            (_, schema) => peer_form(schema),
        }
    }
    map.remove("description");
    map.remove("uniqueItems");
    match map.get("format").and_then(Value::as_str) {
        Some("partial-date-time") => {
            map.insert("format".to_owned(), "date-time".into());
        }
        Some("partial-time") => {
            map.insert("format".to_owned(), "time".into());
        }
        Some("uuid") => {
            map.remove("format");
        }
        _ => {}
    }
    if map.get("pattern").and_then(Value::as_str) == Some(SCHEMARS_DECIMAL_PATTERN) {
        map.insert("pattern".to_owned(), PEER_DECIMAL_PATTERN.into());
        if let Some(Value::Array(kinds)) = map.get_mut("type") {
            kinds.retain(|kind| kind != "number");
        }
    }
    merge_constant_alternatives(map);
    if is_struct(map) {
        if !map.contains_key("additionalProperties") {
            map.insert("additionalProperties".to_owned(), Value::Bool(false));
        }
        require_optional_fields(map);
    }
    split_nullable(schema);
}

/// `{"oneOf": [{"type": "string", "const": "red"}, ..]}` (schemars' form for a unit enum whose
/// variants have doc comments) → `{"type": "string", "enum": ["red", ..]}`, the peer's form of
/// an `Enum`, when every alternative is a constant of one type. (When only some variants are
/// documented, schemars lists the undocumented ones first: the values are the same, in
/// another order than declared.)
fn merge_constant_alternatives(map: &mut Map<String, Value>) {
    let Some(Value::Array(alternatives)) = map.get("oneOf") else {
        return;
    };
    let mut kind = None;
    let mut values = Vec::new();
    for alternative in alternatives {
        let Value::Object(alternative) = alternative else {
            return;
        };
        let (Some(this_kind), 2) = (alternative.get("type"), alternative.len()) else {
            return;
        };
        if kind.get_or_insert(this_kind) != &this_kind {
            return;
        }
        match (alternative.get("const"), alternative.get("enum")) {
            (Some(constant), None) => values.push(constant.clone()),
            (None, Some(Value::Array(constants))) => values.extend(constants.iter().cloned()),
            _ => return,
        }
    }
    let Some(kind) = kind.cloned() else { return };
    map.remove("oneOf");
    map.insert("type".to_owned(), kind);
    map.insert("enum".to_owned(), Value::Array(values));
}

/// A struct's `Option` field without a serde default is left out of `required` by schemars
/// (serde reads a missing one as `None`); Python's dataclass field `Optional[T]` without a
/// default must be given. Such fields (not required, no `default`) are made required, so the
/// schema equals the peer's; `required` lists fields in declaration order.
fn require_optional_fields(map: &mut Map<String, Value>) {
    let Some(Value::Object(properties)) = map.get("properties") else {
        return;
    };
    let listed: Vec<Value> = match map.get("required") {
        Some(Value::Array(required)) => required.clone(),
        _ => Vec::new(),
    };
    let required: Vec<Value> = properties
        .iter()
        .filter(|(name, schema)| {
            listed.iter().any(|r| r == name.as_str()) || schema.get("default").is_none()
        })
        .map(|(name, _)| Value::String(name.clone()))
        .collect();
    if !required.is_empty() {
        map.insert("required".to_owned(), Value::Array(required));
    }
}

/// `{"type": [T, "null"], ..}` → `{"anyOf": [{"type": T, ..}, {"type": "null"}]}`, as Python
/// writes `Optional[T]`. A `default` (of a struct field) stays on the outer schema, where
/// Python puts a dataclass field's default.
fn split_nullable(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    let Some(Value::Array(kinds)) = map.get("type") else {
        return;
    };
    let nullable = kinds.iter().any(|kind| kind == "null");
    let others: Vec<Value> = kinds.iter().filter(|k| *k != "null").cloned().collect();
    if !nullable || others.is_empty() {
        if others.len() == 1 {
            map.insert("type".to_owned(), others[0].clone());
        }
        return;
    }
    let mut inner = std::mem::take(map);
    let default = inner.remove("default");
    inner.insert(
        "type".to_owned(),
        match <[Value; 1]>::try_from(others) {
            Ok([single]) => single,
            Err(others) => Value::Array(others),
        },
    );
    if let Some(Value::Array(values)) = inner.get_mut("enum") {
        values.retain(|value| !value.is_null());
    }
    let mut null = Map::new();
    null.insert("type".to_owned(), "null".into());
    map.insert(
        "anyOf".to_owned(),
        Value::Array(vec![Value::Object(inner), Value::Object(null)]),
    );
    if let Some(default) = default {
        map.insert("default".to_owned(), default);
    }
}

/// The schema of a parameter that may be left out, as the peer writes one: each of its
/// alternatives carries `"default": default` (for `Option<T>` parameters the default is
/// `null`, and a `{"type": "null"}` alternative is added when missing, as Python does for a
/// parameter defaulting to `None`).
pub fn defaulted_parameter_schema(schema: Value, default: Value) -> Value {
    let schema = normalized(&schema);
    let mut alternatives = match schema {
        Value::Object(mut map) if map.len() == 1 && map.contains_key("anyOf") => {
            match map.remove("anyOf") {
                Some(Value::Array(alternatives)) => alternatives,
                _ => Vec::new(),
            }
        }
        other => vec![other],
    };
    let null = serde_json::json!({"type": "null"});
    if default.is_null() && !alternatives.contains(&null) {
        alternatives.push(null);
    }
    for alternative in &mut alternatives {
        if let Value::Object(map) = alternative {
            map.insert("default".to_owned(), default.clone());
        }
    }
    if alternatives.len() == 1 {
        return alternatives.remove(0);
    }
    let mut map = Map::new();
    map.insert("anyOf".to_owned(), Value::Array(alternatives));
    Value::Object(map)
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

    // What Python Lightbus 1.1.2 writes (`hints_to_schema.python_type_to_json_schemas`) for the
    // Python equivalent of each Rust type, printed with `json_encode` (keys sorted).

    /// A struct as a dataclass `Order(sku: str, qty: int, when: Optional[datetime], note: str = "")`.
    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        /// Doc comments are not part of the peer's schemas.
        sku: String,
        qty: i64,
        when: Option<chrono::DateTime<chrono::Utc>>,
        #[serde(default)]
        note: String,
    }

    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Color {
        /// Documented variants make schemars write `oneOf` constants.
        Red,
        /// The second colour.
        Green,
    }

    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Tree {
        children: Vec<Tree>,
    }

    const PEER_ORDER: &str = r#"{"additionalProperties": false, "properties": {"note": {"default": "", "type": "string"}, "qty": {"type": "integer"}, "sku": {"type": "string"}, "when": {"anyOf": [{"format": "date-time", "type": "string"}, {"type": "null"}]}}, "required": ["sku", "qty", "when"], "title": "Order", "type": "object"}"#;

    #[test]
    fn rust_types_get_the_peers_schemas() {
        let peer = |value: Value| to_python_json(&value, None);
        assert_eq!(peer(schema_of::<Order>()), PEER_ORDER);
        assert_eq!(
            peer(schema_of::<Option<Order>>()),
            format!(r#"{{"anyOf": [{PEER_ORDER}, {{"type": "null"}}]}}"#)
        );
        assert_eq!(
            peer(schema_of::<Vec<Order>>()),
            format!(r#"{{"items": {PEER_ORDER}, "type": "array"}}"#)
        );
        for (rust, python) in [
            (
                schema_of::<Color>(),
                r#"{"enum": ["red", "green"], "type": "string"}"#,
            ),
            (
                schema_of::<Option<Color>>(),
                r#"{"anyOf": [{"enum": ["red", "green"], "type": "string"}, {"type": "null"}]}"#,
            ),
            (
                schema_of::<Option<i64>>(),
                r#"{"anyOf": [{"type": "integer"}, {"type": "null"}]}"#,
            ),
            (
                schema_of::<Option<rust_decimal::Decimal>>(),
                r#"{"anyOf": [{"pattern": "^-?\\d+(\\.\\d+)?$", "type": "string"}, {"type": "null"}]}"#,
            ),
            (
                schema_of::<std::collections::BTreeSet<String>>(),
                r#"{"items": {"type": "string"}, "type": "array"}"#,
            ),
            (
                schema_of::<(i64, String)>(),
                r#"{"items": [{"type": "integer"}, {"type": "string"}], "maxItems": 2, "minItems": 2, "type": "array"}"#,
            ),
            (
                schema_of::<chrono::NaiveDateTime>(),
                r#"{"format": "date-time", "type": "string"}"#,
            ),
            (
                schema_of::<chrono::DateTime<chrono::FixedOffset>>(),
                r#"{"format": "date-time", "type": "string"}"#,
            ),
            (
                schema_of::<chrono::NaiveTime>(),
                r#"{"format": "time", "type": "string"}"#,
            ),
            (
                schema_of::<chrono::NaiveDate>(),
                r#"{"format": "date", "type": "string"}"#,
            ),
            (schema_of::<uuid::Uuid>(), r#"{"type": "string"}"#),
            (
                schema_of::<crate::types::Base64Bytes>(),
                r#"{"type": "string"}"#,
            ),
            (
                schema_of::<std::collections::BTreeMap<String, f64>>(),
                r#"{"additionalProperties": {"type": "number"}, "type": "object"}"#,
            ),
            (
                schema_of::<Vec<i64>>(),
                r#"{"items": {"type": "integer"}, "type": "array"}"#,
            ),
            (schema_of::<Value>(), "{}"),
        ] {
            assert_eq!(peer(rust), python);
        }
        // Recursion, which Python cannot describe either, ends in `{}`.
        assert_eq!(
            peer(schema_of::<Tree>()),
            r#"{"additionalProperties": false, "properties": {"children": {"items": {}, "type": "array"}}, "required": ["children"], "title": "Tree", "type": "object"}"#
        );
    }

    #[test]
    fn defaulted_parameters_as_the_peer_writes_them() {
        // def f(self, a: int, b: str = "dflt", c: Optional[str] = None, d: Any = None,
        //       g: List[str] = [])
        const PEER: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": false, "properties": {"a": {"type": "integer"}, "b": {"default": "dflt", "type": "string"}, "c": {"anyOf": [{"default": null, "type": "string"}, {"default": null, "type": "null"}]}, "d": {"anyOf": [{"default": null}, {"default": null, "type": "null"}]}, "g": {"default": [], "items": {"type": "string"}, "type": "array"}}, "required": ["a"], "title": "RPC api.f() parameters", "type": "object"}"#;
        let optional = |name: &str, schema: Value, default: Value| Parameter {
            name: name.into(),
            schema: defaulted_parameter_schema(schema, default),
            required: false,
        };
        let parameters = vec![
            Parameter {
                name: "a".into(),
                schema: schema_of::<i64>(),
                required: true,
            },
            optional("b", schema_of::<String>(), json!("dflt")),
            optional("c", schema_of::<Option<String>>(), Value::Null),
            optional("d", schema_of::<Option<Value>>(), Value::Null),
            optional("g", schema_of::<Vec<String>>(), json!([])),
        ];
        let schema = parameters_schema("RPC api.f() parameters".into(), &parameters);
        assert_eq!(to_python_json(&schema, None), PEER);
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
