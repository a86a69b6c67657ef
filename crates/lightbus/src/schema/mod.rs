//! API schemas: generated from Rust types, shared on the bus, used to validate messages.
//!
//! - [`api_schema`] turns an [`ApiDescriptor`](crate::api::ApiDescriptor) into the peer's
//!   per-API format (`{"rpcs": …, "events": …}`, draft-07 JSON Schemas with the peer's
//!   titles), byte-identical to what Python Lightbus 1.1 publishes for the same signatures;
//! - [`BusSchema`] is what one process knows: its own APIs, files loaded with
//!   [`BusSchema::load_local`], and the schemas on the bus (loaded lazily, reloaded every
//!   `bus.schema.ttl * 0.8`); a worker stores its APIs' schemas at start and on that period;
//! - [`ApiSchema::validate`] checks a value, reporting the API, the member and the JSON path
//!   of the first problem ([`ValidationError`]).
//!
//! ## Rust types and the values on the bus
//!
//! Schemas come from `schemars`, as draft-07 with every subschema inlined (a peer can
//! validate without resolving references). Values cross the bus as the peer sends them:
//! - `chrono` date/time types are ISO 8601 text (`format: date-time`, `date`, …): enable
//!   this crate's `chrono` feature;
//! - `rust_decimal::Decimal` is decimal text (feature `rust_decimal`, and that crate's
//!   `serde-str` encoding, its default);
//! - `uuid::Uuid` is text (feature `uuid`);
//! - bytes are base64 text: use [`Base64Bytes`](crate::types::Base64Bytes), not `Vec<u8>`
//!   (which serde writes as an array of numbers);
//! - structs are objects, `Option<T>` parameters may be left out, unit enums are their
//!   variant names as strings, maps with string keys are objects.

mod encode;
mod generate;
mod keeper;
mod store;
mod validate;

pub use encode::to_python_json;
pub use generate::api_schema;
pub(crate) use keeper::{keep_fresh, publish_at_start};
pub(crate) use store::validation_enabled;
pub use store::BusSchema;
pub use validate::{ApiSchema, Direction, SchemaError, Target, ValidationError};

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::Value;

/// The `$schema` URI every schema on the bus carries.
pub const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// The JSON Schema of `T` as a plain JSON value, without `$schema` or `title` (those are
/// added where a schema is published).
pub fn schema_of<T: JsonSchema>() -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.inline_subschemas = true;
    settings.meta_schema = None;
    let generator = settings.into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Value::Object(map) = &mut schema {
        map.remove("title");
    }
    strip_numeric_formats(&mut schema);
    schema
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

/// The schema store for a configuration: `bus.schema.transport`, `ttl`, `human_readable`.
pub(crate) fn bus_schema_for(
    config: &crate::config::Config,
    servers: &crate::transport::redis::RedisServers,
) -> crate::Result<BusSchema> {
    let settings = &config.bus().schema;
    let transport: std::sync::Arc<dyn crate::transport::SchemaTransport> = match &settings.transport
    {
        crate::config::SchemaTransportSelector::Redis(redis) => {
            std::sync::Arc::new(crate::transport::redis::schema::RedisSchemaTransport::new(
                servers.get(&redis.url)?,
                redis,
            ))
        }
        crate::config::SchemaTransportSelector::Memory(memory) => std::sync::Arc::new(
            crate::transport::memory::schema::MemorySchemaTransport::new(memory),
        ),
    };
    Ok(BusSchema::new(
        transport,
        std::time::Duration::from_secs(settings.ttl),
        settings.human_readable,
    ))
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
            json!({"type": ["integer", "null"], "minimum": 0})
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
        // Sent as text (the peer's encoding); numbers are accepted on the way in too.
        let decimal = schema_of::<rust_decimal::Decimal>();
        assert!(decimal["type"] == json!("string") || decimal["type"][0] == json!("string"));
        assert_eq!(schema_of::<uuid::Uuid>()["type"], json!("string"));
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
