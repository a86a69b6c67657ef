//! The JSON Schema of the configuration file, for editors and `lightbus dumpconfigschema`.
//!
//! Generated from the same types that parse the file, so it cannot drift from what is
//! accepted: every key, its type, its default and its documentation. Point an editor's YAML
//! or JSON language server at the output to get completion and checking while writing a
//! `lightbus.yaml`.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::ConfigFile;

/// The JSON Schema (draft-07) of a configuration file.
///
/// ```
/// let schema = lightbus::config::config_json_schema();
/// assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
/// assert!(schema["properties"]["apis"].is_object());
/// ```
pub fn config_json_schema() -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<ConfigFile>().to_value();
    if let Value::Object(map) = &mut schema {
        map.insert(
            "title".to_owned(),
            Value::String("Lightbus configuration".to_owned()),
        );
        map.insert(
            "description".to_owned(),
            Value::String(
                "The configuration file shared by every Lightbus process on a bus (Rust and \
                 Python Lightbus 1.1), in YAML or JSON."
                    .to_owned(),
            ),
        );
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key a valid configuration may use is described, and the schema accepts a
    /// full example file while rejecting a misspelt key, as the parser does.
    #[test]
    fn the_schema_describes_and_checks_the_file() {
        let schema = config_json_schema();
        let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
        let example: Value =
            serde_saphyr::from_str(super::super::tests::FULL_EXAMPLE).expect("the example is YAML");
        let errors: Vec<String> = validator
            .iter_errors(&example)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let misspelt: Value = serde_json::json!({"apis": {"default": {"rpc_timout": 1}}});
        assert!(!validator.is_valid(&misspelt));
        let text = serde_json::to_string(&schema).expect("serializes");
        for key in [
            "event_listener_setup_timeout",
            "reclaim_batch_size",
            "consumer_ttl",
            "rpc_retry_delay",
            "result_ttl",
            "human_readable",
            "ping_interval",
        ] {
            assert!(text.contains(key), "{key} is missing from the schema");
        }
    }
}
