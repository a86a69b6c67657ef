//! API schemas: generated from Rust types, shared on the bus, used to validate messages.
//!
//! - [`api_schema`] turns an [`ApiDescriptor`](crate::api::ApiDescriptor) into the peer's
//!   per-API format (`{"rpcs": …, "events": …}`, draft-07 JSON Schemas with the peer's
//!   titles), equal to what Python Lightbus 1.1 publishes for the same signatures (byte for
//!   byte, except that Python orders a class's `required` fields differently in each process);
//! - [`BusSchema`](crate::BusSchema) (in the client layer) is what one process knows: its
//!   own APIs, files it loaded, and the schemas on the bus;
//! - [`ApiSchema::validate`] checks a value, reporting the API, the member and the JSON path
//!   of the first problem ([`ValidationError`]).
//!
//! ## Rust types, their schemas and their values on the bus
//!
//! Schemas come from `schemars` and are then put in the form the peer's `hints_to_schema`
//! writes for the Python equivalent of each type, so a Rust and a Python worker serving the
//! same signatures store the same schema (draft-07, every subschema inlined):
//!
//! | Rust | Python | schema |
//! |---|---|---|
//! | `String`, `bool`, `i64`, `f64` | `str`, `bool`, `int`, `float` | `{"type": …}` |
//! | `Option<T>` | `Optional[T]` | `{"anyOf": [T, {"type": "null"}]}` |
//! | `Vec<T>`, `BTreeSet<T>` | `List[T]`, `Set[T]` | `{"type": "array", "items": T}` |
//! | `(A, B)` | `Tuple[A, B]` | `items: [A, B]`, `minItems`/`maxItems` 2 |
//! | `HashMap<String, T>` | `Dict[str, T]` | `{"type": "object", "additionalProperties": T}` |
//! | a struct | a dataclass / named tuple | `title`: its name, `additionalProperties: false` |
//! | a unit enum | an `Enum` of strings | `{"type": "string", "enum": [...]}` |
//! | `chrono::DateTime<Tz>`, `NaiveDateTime` | `datetime` | `format: date-time` |
//! | `chrono::NaiveDate`, `NaiveTime` | `date`, `time` | `format: date`, `time` |
//! | `rust_decimal::Decimal` | `Decimal` | `pattern: ^-?\d+(\.\d+)?$` |
//! | `uuid::Uuid`, [`Base64Bytes`](crate::types::Base64Bytes) | `UUID`, `bytes` | `{"type": "string"}` |
//! | `serde_json::Value` | no hint, `Any` | `{}` |
//!
//! Rust types without a Python equivalent keep schemars' form: unsigned integers carry
//! `minimum: 0` (the small ones a `maximum`), `char` a length of 1, data-carrying enums a
//! `oneOf` of externally tagged objects. Doc comments are not part of the schema (the peer
//! writes none). Parameters with defaults: see [`defaulted_parameter_schema`].
//!
//! Values cross the bus as the peer writes them ([`ValuePlan`]): datetimes as Python's
//! `isoformat()` (`2024-05-01T12:34:56.500000+00:00`: `+00:00`, not `Z`, and six fraction
//! digits or none), decimals as text, bytes as base64 text (use `Base64Bytes`, not `Vec<u8>`),
//! enums as their values. Enable this crate's `chrono`, `rust_decimal` or `uuid` feature for
//! the schemas of those types.

mod encode;
mod generate;
mod validate;
mod values;

pub use crate::error::{Direction, SchemaError, Target, ValidationError};
pub use encode::to_python_json;
pub use generate::{api_schema, defaulted_parameter_schema};
pub use validate::ApiSchema;
pub use values::{PlanCell, ValuePlan};

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::Value;

/// The `$schema` URI every schema on the bus carries.
pub const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// The JSON Schema of `T` as a plain JSON value, in the form the peer writes for the Python
/// equivalent of `T` (see the module docs), without `$schema` (added where a schema is
/// published). Only a struct keeps a `title`: its name, as Python titles a class.
pub fn schema_of<T: JsonSchema>() -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.meta_schema = None;
    let generator = settings.into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    strip_numeric_formats(&mut schema);
    generate::peer_type_schema(schema)
}

/// Removes schemars' Rust-specific number formats (`int64`, `uint32`, `double`, …): they are
/// not JSON Schema formats, no validator checks them, and without them an `i64` parameter has
/// exactly the peer's `{"type": "integer"}`. Bounds that do validate (`minimum: 0` of
/// unsigned types) stay.
fn strip_numeric_formats(schema: &mut Value) {
    const RUST_NUMBER_FORMATS: &[&str] = &[
        "int", "int8", "int16", "int32", "int64", "int128", "uint", "uint8", "uint16", "uint32",
        "uint64", "uint128", "float", "double",
    ];
    match schema {
        Value::Object(map) => {
            let numeric = map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|format| RUST_NUMBER_FORMATS.contains(&format));
            if numeric {
                map.remove("format");
            }
            for value in map.values_mut() {
                strip_numeric_formats(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_numeric_formats),
        _ => {}
    }
}

/// Keyword arguments back from the JSON object they were wrapped in for validation.
pub(crate) fn into_kwargs(value: Value) -> crate::api::Kwargs {
    match value {
        Value::Object(map) => map,
        _ => crate::api::Kwargs::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn primitive_schemas() {
        assert_eq!(schema_of::<bool>()["type"], json!("boolean"));
        assert_eq!(schema_of::<String>()["type"], json!("string"));
        assert_eq!(schema_of::<i64>(), json!({"type": "integer"}));
        assert_eq!(schema_of::<f64>(), json!({"type": "number"}));
        assert_eq!(
            schema_of::<Option<u32>>(),
            json!({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]})
        );
        assert!(schema_of::<bool>().get("$schema").is_none());
    }

    #[test]
    fn rich_types_map_to_the_peers_encoding() {
        assert_eq!(
            schema_of::<chrono::DateTime<chrono::Utc>>(),
            json!({"type": "string", "format": "date-time"})
        );
        assert_eq!(schema_of::<chrono::NaiveDate>()["format"], json!("date"));
        // Exactly the peer's `Decimal` schema.
        assert_eq!(
            schema_of::<rust_decimal::Decimal>(),
            json!({"type": "string", "pattern": "^-?\\d+(\\.\\d+)?$"})
        );
        assert_eq!(schema_of::<uuid::Uuid>(), json!({"type": "string"}));
        assert_eq!(
            schema_of::<crate::types::Base64Bytes>()["type"],
            json!("string")
        );
        let map = schema_of::<std::collections::HashMap<String, f64>>();
        assert_eq!(map["type"], json!("object"));
        assert_eq!(map["additionalProperties"]["type"], json!("number"));
        let list = schema_of::<Vec<String>>();
        assert_eq!(list["items"]["type"], json!("string"));
    }
}
