//! JSON Schemas of API parameters and responses, in the form Python Lightbus shares them.
//!
//! Schemas are generated from Rust types with `schemars`, as draft-07 with every subschema
//! inlined, so a peer can validate a value without resolving references.

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
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn primitive_schemas() {
        assert_eq!(schema_of::<bool>()["type"], json!("boolean"));
        assert_eq!(schema_of::<String>()["type"], json!("string"));
        assert_eq!(schema_of::<i64>()["type"], json!("integer"));
        assert!(schema_of::<bool>().get("$schema").is_none());
    }
}
