use super::*;
use std::io::Write;

fn invalid_key(result: Result<Config, ConfigError>) -> (String, String) {
    match result {
        Err(ConfigError::Invalid { key, message, .. }) => (key, message),
        other => panic!("expected an invalid-value error, got {other:?}"),
    }
}

#[test]
fn defaults_match_upstream() {
    let config = Config::default();
    let api = config.api("auth");
    assert_eq!(api.rpc_timeout, 5.0);
    assert_eq!(api.event_listener_setup_timeout, 1.0);
    assert_eq!(api.event_fire_timeout, 5.0);
    assert!(api.validate.incoming() && api.validate.outgoing());
    assert!(!api.strict_validation && api.cast_values);
    let RpcTransportSelector::Redis(rpc) = &api.rpc_transport;
    assert_eq!(rpc.url, DEFAULT_REDIS_URL);
    assert_eq!(rpc.batch_size, 10);
    let ResultTransportSelector::Redis(result) = &api.result_transport;
    assert_eq!(result.result_ttl, 60);
    let EventTransportSelector::Redis(event) = &api.event_transport;
    assert_eq!(event.max_stream_length, Some(100_000));
    assert_eq!(event.stream_use, StreamUse::PerApi);
    assert_eq!(event.acknowledgement_timeout, 60.0);
    assert_eq!(event.consumer_ttl, 2_592_000);
    assert_eq!(config.bus().schema.ttl, 60);
    assert_eq!(config.bus().log_level, LogLevel::Info);
    assert!(!config.plugins().internal_state.enabled);
    assert_eq!(config.process_name.len(), 4);
    assert!(!config.service_name.is_empty());
}

#[test]
fn specific_api_entries_replace_default_wholesale() {
    let config = Config::from_str(
        r#"
apis:
  default:
    rpc_timeout: 2
    event_fire_timeout: 9
    rpc_transport:
      redis:
        url: redis://other:6380/1
  auth:
    rpc_timeout: 0.5
"#,
        "bus.yaml",
    )
    .expect("valid config");
    assert_eq!(config.api("auth").rpc_timeout, 0.5);
    // Not inherited from `default`: the built-in default applies.
    assert_eq!(config.api("auth").event_fire_timeout, 5.0);
    let RpcTransportSelector::Redis(rpc) = &config.api("auth").rpc_transport;
    assert_eq!(rpc.url, DEFAULT_REDIS_URL);
    // APIs without an entry use `default`.
    assert_eq!(config.api("billing").rpc_timeout, 2.0);
    let RpcTransportSelector::Redis(rpc) = &config.api("billing").rpc_transport;
    assert_eq!(rpc.url, "redis://other:6380/1");
}

#[test]
fn json_and_yaml_have_the_same_structure() {
    let json = r#"{"service_name": "svc", "process_name": "p1",
        "bus": {"log_level": "warning", "schema": {"ttl": 30, "human_readable": false}},
        "apis": {"default": {"validate": {"incoming": false},
                             "event_transport": {"redis": {"stream_use": "per_event", "batch_size": 50}}}},
        "plugins": {"internal_state": {"enabled": true, "ping_interval": 5}}}"#;
    let config = Config::from_str(json, "bus.json").expect("valid JSON config");
    assert_eq!(config.service_name, "svc");
    assert_eq!(config.process_name, "p1");
    assert_eq!(config.bus().log_level, LogLevel::Warning);
    assert_eq!(config.bus().schema.ttl, 30);
    let api = config.api("anything");
    assert!(!api.validate.incoming() && api.validate.outgoing());
    let EventTransportSelector::Redis(event) = &api.event_transport;
    assert_eq!(event.stream_use, StreamUse::PerEvent);
    assert_eq!(event.batch_size, 50);
    assert!(config.plugins().internal_state.enabled);
    assert_eq!(config.plugins().internal_state.ping_interval, 5.0);

    let yaml = Config::from_str(json, "bus.yaml").expect("JSON is valid YAML");
    assert_eq!(yaml.service_name, "svc");
}

#[test]
fn a_bare_transport_name_means_its_defaults() {
    let config = Config::from_str(
        "apis:\n  default:\n    rpc_transport:\n      redis:\n",
        "b.yaml",
    )
    .expect("valid config");
    let RpcTransportSelector::Redis(rpc) = &config.api("x").rpc_transport;
    assert_eq!(rpc.url, DEFAULT_REDIS_URL);
}

#[test]
fn unknown_keys_are_named() {
    let (key, message) = invalid_key(Config::from_str(
        "apis:\n  auth:\n    rpc_timout: 3\n",
        "b.yaml",
    ));
    assert_eq!(key, "apis.auth.rpc_timout");
    assert!(message.contains("unknown field `rpc_timout`"), "{message}");

    let (key, message) = invalid_key(Config::from_str("buss: {}\n", "b.yaml"));
    assert_eq!(key, "buss");
    assert!(message.contains("expected one of"), "{message}");

    let (key, message) = invalid_key(Config::from_str(
        "apis:\n  default:\n    rpc_transport:\n      kafka: {}\n",
        "b.yaml",
    ));
    assert_eq!(key, "apis.default.rpc_transport");
    assert!(message.contains("kafka"), "{message}");
}

#[test]
fn wrong_types_and_ranges_are_named() {
    let (key, message) = invalid_key(Config::from_str(
        "apis:\n  auth:\n    rpc_timeout: soon\n",
        "b.yaml",
    ));
    assert_eq!(key, "apis.auth.rpc_timeout");
    assert!(message.contains("invalid type"), "{message}");

    let (key, _) = invalid_key(Config::from_str(
        "apis:\n  auth:\n    rpc_timeout: -1\n",
        "b.yaml",
    ));
    assert_eq!(key, "apis.auth.rpc_timeout");

    let (key, _) = invalid_key(Config::from_str("bus:\n  log_level: loud\n", "b.yaml"));
    assert_eq!(key, "bus.log_level");

    let (key, _) = invalid_key(Config::from_str(
        "apis:\n  x:\n    event_transport:\n      redis:\n        stream_use: sideways\n",
        "b.yaml",
    ));
    assert_eq!(key, "apis.x.event_transport.redis.stream_use");

    let (key, message) = invalid_key(Config::from_str(
        "apis:\n  x:\n    rpc_transport:\n      redis:\n        serializer: my.Custom\n",
        "b.yaml",
    ));
    assert_eq!(key, "apis.x.rpc_transport.redis.serializer");
    assert!(message.contains("not supported"), "{message}");
}

#[test]
fn syntax_errors_and_missing_files_name_the_file() {
    match Config::from_str("apis: [unclosed\n", "broken.yaml") {
        Err(ConfigError::Syntax { origin, format, .. }) => {
            assert_eq!(origin, "broken.yaml");
            assert_eq!(format, "YAML");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let missing = Config::from_path("/nonexistent/lightbus.yaml").unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/lightbus.yaml"),
        "{missing}"
    );
}

#[test]
fn empty_file_is_the_default_configuration() {
    let config = Config::from_str("", "empty.yaml").expect("empty is valid");
    assert_eq!(config.api("a").rpc_timeout, 5.0);
}

#[test]
fn overrides_beat_the_file() {
    let mut file = tempfile::NamedTempFile::with_suffix(".yaml").expect("temp file");
    writeln!(file, "service_name: from-file\nprocess_name: p-{{pid}}\n").expect("write");
    let overrides = ConfigOverrides {
        config_path: Some(file.path().to_owned()),
        service_name: Some("from-flag".into()),
        process_name: None,
        log_level: Some(LogLevel::Debug),
    };
    let config = Config::load(&overrides).expect("loads");
    assert_eq!(config.service_name, "from-flag");
    assert_eq!(config.process_name, format!("p-{}", std::process::id()));
    assert_eq!(config.bus().log_level, LogLevel::Debug);
    assert_eq!(config.origin, file.path().display().to_string());
}
