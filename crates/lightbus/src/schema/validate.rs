//! One API's schema with its validators, and the errors validation reports.
//!
//! An [`ApiSchema`] is built once per schema version (a registered API, a file, or a value
//! read from the bus). Each member's validator is compiled on first use and kept, so
//! validating a message costs one pass over the value. Formats (`date-time`, `uuid`, …) are
//! annotations only, as in the peer's validator: Python sends naive datetimes, which are not
//! RFC 3339, and the peer accepts them.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

use crate::error::{member_text, Direction, SchemaError, Target, ValidationError};

/// A JSON Schema compiled on first use.
struct LazyValidator {
    schema: Value,
    compiled: OnceLock<Result<jsonschema::Validator, String>>,
}

impl LazyValidator {
    fn new(schema: Value) -> Self {
        LazyValidator {
            schema,
            compiled: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&jsonschema::Validator, String> {
        self.compiled
            .get_or_init(|| {
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft7)
                    .should_validate_formats(false)
                    .build(&self.schema)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

struct RpcValidators {
    parameters: LazyValidator,
    response: LazyValidator,
}

/// The entries of `rpcs` or `events`, by member name.
type Members<'a> = Vec<(String, &'a serde_json::Map<String, Value>)>;

/// One API's schema, in the peer's format, with a validator per member.
pub struct ApiSchema {
    name: String,
    raw: Value,
    rpcs: HashMap<String, RpcValidators>,
    events: HashMap<String, LazyValidator>,
}

impl fmt::Debug for ApiSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiSchema")
            .field("name", &self.name)
            .field("raw", &self.raw)
            .finish()
    }
}

impl ApiSchema {
    /// Reads an API schema (`{"rpcs": {...}, "events": {...}}`), checking its shape.
    /// `origin` names where it came from in errors. Missing `rpcs` or `events` mean none.
    pub fn from_value(name: &str, raw: Value, origin: &str) -> Result<ApiSchema, SchemaError> {
        let invalid = |message: String| SchemaError::Invalid {
            origin: origin.to_owned(),
            message: format!("schema of API `{name}`: {message}"),
        };
        let Value::Object(root) = &raw else {
            return Err(invalid(
                "expected an object with `rpcs` and `events`".to_owned(),
            ));
        };
        let section = |key: &str| -> Result<Members<'_>, SchemaError> {
            match root.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Object(members)) => members
                    .iter()
                    .map(|(member, entry)| match entry {
                        Value::Object(entry) => Ok((member.clone(), entry)),
                        _ => Err(invalid(format!("`{key}.{member}` is not an object"))),
                    })
                    .collect(),
                Some(_) => Err(invalid(format!("`{key}` is not an object"))),
            }
        };
        let schema_at = |entry: &serde_json::Map<String, Value>, key: &str, path: String| {
            match entry.get(key) {
                None => Ok(Value::Object(Default::default())),
                Some(schema @ (Value::Object(_) | Value::Bool(_))) => Ok(schema.clone()),
                Some(_) => Err(invalid(format!("`{path}.{key}` is not a JSON Schema"))),
            }
        };
        let mut rpcs = HashMap::new();
        for (member, entry) in section("rpcs")? {
            let path = format!("rpcs.{member}");
            rpcs.insert(
                member.clone(),
                RpcValidators {
                    parameters: LazyValidator::new(schema_at(entry, "parameters", path.clone())?),
                    response: LazyValidator::new(schema_at(entry, "response", path)?),
                },
            );
        }
        let mut events = HashMap::new();
        for (member, entry) in section("events")? {
            let path = format!("events.{member}");
            events.insert(
                member.clone(),
                LazyValidator::new(schema_at(entry, "parameters", path)?),
            );
        }
        Ok(ApiSchema {
            name: name.to_owned(),
            raw,
            rpcs,
            events,
        })
    }

    /// The API's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema as JSON, exactly as stored or loaded.
    pub fn as_value(&self) -> &Value {
        &self.raw
    }

    /// The RPC names, sorted.
    pub fn rpc_names(&self) -> Vec<&str> {
        sorted_names(self.rpcs.keys())
    }

    /// The event names, sorted.
    pub fn event_names(&self) -> Vec<&str> {
        sorted_names(self.events.keys())
    }

    /// Validates `value` as `target` of `member` (an RPC or event name).
    ///
    /// Fails with [`crate::Error::Validation`] when the value does not match, or
    /// [`crate::Error::Schema`] when the schema has no such member or cannot be compiled.
    pub fn validate(
        &self,
        target: Target,
        member: &str,
        value: &Value,
        direction: Direction,
    ) -> crate::error::Result<()> {
        let validator = match target {
            Target::RpcParameters => self.rpcs.get(member).map(|rpc| &rpc.parameters),
            Target::RpcResponse => self.rpcs.get(member).map(|rpc| &rpc.response),
            Target::EventParameters => self.events.get(member),
        };
        let Some(validator) = validator else {
            let (kind, known) = match target {
                Target::EventParameters => ("event", self.event_names()),
                _ => ("RPC", self.rpc_names()),
            };
            return Err(SchemaError::UnknownMember {
                api: self.name.clone(),
                kind,
                member: member.to_owned(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            }
            .into());
        };
        let compiled = validator.get().map_err(|message| SchemaError::Invalid {
            origin: format!("schema of {}", member_text(&self.name, member, target)),
            message,
        })?;
        if compiled.is_valid(value) {
            return Ok(());
        }
        let mut errors = compiled.iter_errors(value);
        let Some(first) = errors.next() else {
            return Ok(());
        };
        Err(ValidationError {
            api: self.name.clone(),
            member: member.to_owned(),
            target,
            direction,
            path: json_path(first.instance_path()),
            message: first.to_string(),
            further_errors: errors.count(),
        }
        .into())
    }
}

fn sorted_names<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.map(String::as_str).collect();
    names.sort_unstable();
    names
}

/// A validator's instance location as a JSON path: `$`, `$.a.b`, `$.items[3]`, `$["odd key"]`.
fn json_path(location: &jsonschema::paths::Location) -> String {
    use jsonschema::paths::LocationSegment;
    let mut path = String::from("$");
    for segment in location.segments() {
        match segment {
            LocationSegment::Index(index) => path.push_str(&format!("[{index}]")),
            LocationSegment::Property(name) => {
                let plain = !name.is_empty()
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if plain {
                    path.push('.');
                    path.push_str(&name);
                } else {
                    path.push('[');
                    path.push_str(&Value::String(name.into_owned()).to_string());
                    path.push(']');
                }
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use serde_json::json;

    fn schema() -> ApiSchema {
        let raw = json!({
            "rpcs": {"check": {
                "parameters": {"$schema": crate::schema::DRAFT_07, "type": "object",
                    "additionalProperties": false,
                    "properties": {"username": {"type": "string"},
                                   "address": {"type": "object", "properties": {
                                       "tags": {"type": "array", "items": {"type": "integer"}},
                                       "odd key": {"type": "string"}}}},
                    "required": ["username"]},
                "response": {"type": "boolean"}}},
            "events": {"registered": {"parameters": {"type": "object",
                "properties": {"when": {"type": "string", "format": "date-time"}}}}}
        });
        ApiSchema::from_value("auth", raw, "test").expect("valid schema")
    }

    fn validation(result: crate::error::Result<()>) -> ValidationError {
        match result {
            Err(Error::Validation(error)) => error,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_api_member_and_path() {
        let schema = schema();
        let ok = json!({"username": "a", "address": {"tags": [1, 2]}});
        schema
            .validate(Target::RpcParameters, "check", &ok, Direction::Outgoing)
            .expect("valid");

        let error = validation(schema.validate(
            Target::RpcParameters,
            "check",
            &json!({"username": 1}),
            Direction::Outgoing,
        ));
        assert_eq!(error.path, "$.username");
        let text = error.to_string();
        assert!(
            text.starts_with("invalid parameters for RPC auth.check()"),
            "{text}"
        );
        assert!(
            text.contains("outgoing") && text.contains("\"string\""),
            "{text}"
        );

        let error = validation(schema.validate(
            Target::RpcParameters,
            "check",
            &json!({"username": "a", "address": {"tags": [1, "x"], "odd key": 3}}),
            Direction::Incoming,
        ));
        assert!(
            ["$.address.tags[1]", "$.address[\"odd key\"]"].contains(&error.path.as_str()),
            "{error}"
        );
        assert_eq!(error.further_errors, 1, "{error}");

        let error = validation(schema.validate(
            Target::RpcParameters,
            "check",
            &json!({"username": "a", "extra": 1}),
            Direction::Incoming,
        ));
        assert_eq!(error.path, "$");
        assert!(error.message.contains("extra"), "{error}");

        let error = validation(schema.validate(
            Target::RpcResponse,
            "check",
            &json!("yes"),
            Direction::Incoming,
        ));
        assert!(error
            .to_string()
            .contains("invalid result for RPC auth.check()"));
    }

    #[test]
    fn formats_are_annotations_as_in_the_peer() {
        // A naive datetime, as Python's isoformat() writes it, is accepted.
        schema()
            .validate(
                Target::EventParameters,
                "registered",
                &json!({"when": "2024-01-02T03:04:05"}),
                Direction::Incoming,
            )
            .expect("formats are not checked");
    }

    #[test]
    fn unknown_members_and_bad_shapes() {
        let err = schema()
            .validate(
                Target::RpcParameters,
                "nope",
                &json!({}),
                Direction::Outgoing,
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("has no RPC named `nope` (known: check)"),
            "{err}"
        );
        assert!(ApiSchema::from_value("a", json!([]), "f.json").is_err());
        assert!(ApiSchema::from_value("a", json!({"rpcs": {"x": 1}}), "f.json").is_err());
        let broken = ApiSchema::from_value(
            "a",
            json!({"rpcs": {"x": {"parameters": {"type": 12}}}}),
            "f.json",
        )
        .expect("shape is fine");
        let err = broken
            .validate(Target::RpcParameters, "x", &json!({}), Direction::Outgoing)
            .unwrap_err();
        assert!(
            matches!(err, Error::Schema(SchemaError::Invalid { .. })),
            "{err}"
        );
    }
}
