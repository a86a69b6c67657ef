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
    let rpc = api.rpc_transport.redis().expect("redis is selected");
    assert_eq!(rpc.url, DEFAULT_REDIS_URL);
    assert_eq!(rpc.batch_size, 10);
    let result = api.result_transport.redis().expect("redis is selected");
    assert_eq!(result.result_ttl, 60);
    let event = api.event_transport.redis().expect("redis is selected");
    assert_eq!(event.max_stream_length.map(Count::get), Some(100_000));
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
    let rpc = config
        .api("auth")
        .rpc_transport
        .redis()
        .expect("redis is selected");
    assert_eq!(rpc.url, DEFAULT_REDIS_URL);
    // APIs without an entry use `default`.
    assert_eq!(config.api("billing").rpc_timeout, 2.0);
    let rpc = config
        .api("billing")
        .rpc_transport
        .redis()
        .expect("redis is selected");
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
    let event = api.event_transport.redis().expect("redis is selected");
    assert_eq!(event.stream_use, StreamUse::PerEvent);
    assert_eq!(event.batch_size, 50);
    assert!(config.plugins().internal_state.enabled);
    assert_eq!(config.plugins().internal_state.ping_interval, 5.0);

    let yaml = Config::from_str(json, "bus.yaml").expect("JSON is valid YAML");
    assert_eq!(yaml.service_name, "svc");
}

#[test]
fn memory_transports_are_selected_by_name_or_upstreams_debug() {
    let config = Config::from_str(
        r#"
bus:
  schema:
    transport: {memory: {namespace: tests}}
apis:
  default:
    rpc_transport: {memory: {}}
    result_transport: {debug: {}}
    event_transport:
      memory: {batch_size: 50, max_stream_length: null}
"#,
        "memory.yaml",
    )
    .expect("valid config");
    let api = config.api("auth");
    match &api.rpc_transport {
        RpcTransportSelector::Memory(memory) => assert_eq!(memory.namespace, "default"),
        other => panic!("expected memory, got {other:?}"),
    }
    assert!(matches!(
        api.result_transport,
        ResultTransportSelector::Memory(_)
    ));
    match &api.event_transport {
        EventTransportSelector::Memory(memory) => {
            assert_eq!(memory.batch_size, 50);
            assert_eq!(memory.max_stream_length, None);
            assert_eq!(memory.acknowledgement_timeout, 60.0);
        }
        other => panic!("expected memory, got {other:?}"),
    }
    assert!(api.event_transport.redis().is_none());
    match &config.bus().schema.transport {
        SchemaTransportSelector::Memory(memory) => assert_eq!(memory.namespace, "tests"),
        other => panic!("expected memory, got {other:?}"),
    }
    // A bare `memory:` means its defaults, as a bare `redis:` does.
    let config = Config::from_str(
        "apis:\n  default:\n    rpc_transport:\n      memory:\n",
        "m.yaml",
    )
    .expect("valid config");
    assert!(matches!(
        config.api("x").rpc_transport,
        RpcTransportSelector::Memory(_)
    ));
}

#[test]
fn a_bare_transport_name_means_its_defaults() {
    let config = Config::from_str(
        "apis:\n  default:\n    rpc_transport:\n      redis:\n",
        "b.yaml",
    )
    .expect("valid config");
    let rpc = config
        .api("x")
        .rpc_transport
        .redis()
        .expect("redis is selected");
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
    assert!(message.contains("only the standard encoding"), "{message}");
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

/// A file setting every key upstream's configuration reference lists, each to a value other
/// than its default.
pub(super) const FULL_EXAMPLE: &str = r#"
service_name: "svc-{hostname}"
process_name: "proc-{pid}"
bus:
  log_level: debug
  schema:
    human_readable: false
    ttl: 15
    transport:
      redis:
        url: redis://schema-host:6379/2
        connection_parameters: {maxsize: 10}
apis:
  default:
    rpc_timeout: 7
    event_listener_setup_timeout: 2.5
    event_fire_timeout: 8
    validate: {incoming: true, outgoing: false}
    strict_validation: true
    cast_values: false
    rpc_transport:
      redis:
        url: redis://rpc-host:6379/1
        connection_parameters: {maxsize: 50}
        batch_size: 20
        serializer: lightbus.serializers.BlobMessageSerializer
        deserializer: lightbus.serializers.BlobMessageDeserializer
        rpc_timeout: 9
        rpc_retry_delay: 2
        consumption_restart_delay: 3
    result_transport:
      redis:
        url: redis://result-host:6379/1
        connection_parameters: {}
        serializer: lightbus.serializers.BlobMessageSerializer
        deserializer: lightbus.serializers.BlobMessageDeserializer
        result_ttl: 120
        rpc_timeout: 11
    event_transport:
      redis:
        url: redis://event-host:6379/1
        connection_parameters: {}
        service_name: event-service
        consumer_name: event-consumer
        batch_size: 30
        reclaim_batch_size: 40
        serializer: lightbus.serializers.ByFieldMessageSerializer
        deserializer: lightbus.serializers.ByFieldMessageDeserializer
        acknowledgement_timeout: 90
        reclaim_interval: 45
        max_stream_length: null
        stream_use: per_event
        consumption_restart_delay: 6
        consumer_ttl: 3600
  auth:
    validate: false
plugins:
  internal_state:
    enabled: true
    ping_enabled: false
    ping_interval: 30
  internal_metrics:
    enabled: true
"#;

#[test]
fn every_upstream_key_is_read() {
    let config = Config::from_str(FULL_EXAMPLE, "full.yaml").expect("the full example is valid");
    assert!(config.service_name.starts_with("svc-") && !config.service_name.contains('{'));
    assert_eq!(config.process_name, format!("proc-{}", std::process::id()));
    let bus = config.bus();
    assert_eq!(bus.log_level, LogLevel::Debug);
    assert!(!bus.schema.human_readable);
    assert_eq!(bus.schema.ttl, 15);
    let schema = bus.schema.transport.redis().expect("redis is selected");
    assert_eq!(schema.url, "redis://schema-host:6379/2");
    assert_eq!(schema.connection_parameters["maxsize"], 10);

    let api = config.api("billing");
    assert_eq!(api.rpc_timeout, 7.0);
    assert_eq!(api.event_listener_setup_timeout, 2.5);
    assert_eq!(api.event_fire_timeout, 8.0);
    assert!(api.validate.incoming() && !api.validate.outgoing());
    assert!(api.strict_validation && !api.cast_values);

    let rpc = api.rpc_transport.redis().expect("redis is selected");
    assert_eq!(rpc.url, "redis://rpc-host:6379/1");
    assert_eq!(rpc.batch_size, 20);
    assert_eq!(rpc.rpc_timeout, 9.0);
    assert_eq!(rpc.rpc_retry_delay, 2.0);
    assert_eq!(rpc.consumption_restart_delay, 3.0);

    let result = api.result_transport.redis().expect("redis is selected");
    assert_eq!(result.url, "redis://result-host:6379/1");
    assert_eq!(result.result_ttl, 120);
    assert_eq!(result.rpc_timeout, 11.0);

    let event = api.event_transport.redis().expect("redis is selected");
    assert_eq!(event.url, "redis://event-host:6379/1");
    assert_eq!(event.service_name.as_deref(), Some("event-service"));
    assert_eq!(event.consumer_name.as_deref(), Some("event-consumer"));
    assert_eq!(event.batch_size, 30);
    assert_eq!(event.reclaim_batch_size.map(Count::get), Some(40));
    assert_eq!(event.acknowledgement_timeout, 90.0);
    assert_eq!(event.reclaim_interval, Seconds::new(45.0));
    assert_eq!(event.max_stream_length, None);
    assert_eq!(event.stream_use, StreamUse::PerEvent);
    assert_eq!(event.consumption_restart_delay, 6.0);
    assert_eq!(event.consumer_ttl, 3600);

    // `auth` replaces `default` wholesale.
    let auth = config.api("auth");
    assert!(!auth.validate.incoming() && !auth.validate.outgoing());
    assert!(!auth.strict_validation && auth.cast_values);

    let plugins = config.plugins();
    assert!(plugins.internal_state.enabled && !plugins.internal_state.ping_enabled);
    assert_eq!(plugins.internal_state.ping_interval, 30.0);
    assert!(plugins.internal_metrics.enabled);

    // Accepted for compatibility, but without effect here: said at start-up.
    let notes = config.notes().join("\n");
    assert!(notes.contains("apis.default.cast_values"), "{notes}");
    assert!(
        notes.contains("apis.default.rpc_transport.redis.connection_parameters"),
        "{notes}"
    );
    assert!(
        notes.contains("bus.schema.transport.redis.connection_parameters"),
        "{notes}"
    );
    assert!(Config::default().notes().is_empty());
}

#[test]
fn cluster_urls_are_accepted_and_a_malformed_one_is_refused_without_its_password() {
    for url in [
        "redis+cluster://app:secret@10.0.0.1:7000,10.0.0.2:7000",
        "rediss+cluster://h:1",
    ] {
        let yaml = format!("apis:\n  x:\n    event_transport: {{redis: {{url: '{url}'}}}}\n");
        Config::from_str(&yaml, "b.yaml").unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let yaml =
        "apis:\n  x:\n    event_transport: {redis: {url: 'redis+cluster://app:secret@h:1/3'}}\n";
    let (key, message) = invalid_key(Config::from_str(yaml, "b.yaml"));
    assert_eq!(key, "apis.x.event_transport.redis.url");
    assert!(message.contains("only database 0"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[test]
fn every_range_error_names_its_key() {
    let api_cases = [
        ("rpc_timeout: 0", "apis.x.rpc_timeout"),
        (
            "event_listener_setup_timeout: -2",
            "apis.x.event_listener_setup_timeout",
        ),
        ("event_fire_timeout: 0.0", "apis.x.event_fire_timeout"),
        (
            "rpc_transport: {redis: {batch_size: 0}}",
            "apis.x.rpc_transport.redis.batch_size",
        ),
        (
            "rpc_transport: {redis: {rpc_timeout: 0}}",
            "apis.x.rpc_transport.redis.rpc_timeout",
        ),
        (
            "rpc_transport: {redis: {rpc_retry_delay: -1}}",
            "apis.x.rpc_transport.redis.rpc_retry_delay",
        ),
        (
            "rpc_transport: {redis: {consumption_restart_delay: -1}}",
            "apis.x.rpc_transport.redis.consumption_restart_delay",
        ),
        (
            "rpc_transport: {redis: {url: 'http://x'}}",
            "apis.x.rpc_transport.redis.url",
        ),
        (
            "result_transport: {redis: {result_ttl: 0}}",
            "apis.x.result_transport.redis.result_ttl",
        ),
        (
            "result_transport: {redis: {result_ttl: -5}}",
            "apis.x.result_transport.redis.result_ttl",
        ),
        (
            "result_transport: {redis: {rpc_timeout: 0}}",
            "apis.x.result_transport.redis.rpc_timeout",
        ),
        (
            "result_transport: {redis: {url: 'nope'}}",
            "apis.x.result_transport.redis.url",
        ),
        (
            "event_transport: {redis: {batch_size: 0}}",
            "apis.x.event_transport.redis.batch_size",
        ),
        (
            "event_transport: {redis: {reclaim_batch_size: 0}}",
            "apis.x.event_transport.redis.reclaim_batch_size",
        ),
        (
            "event_transport: {redis: {acknowledgement_timeout: 0}}",
            "apis.x.event_transport.redis.acknowledgement_timeout",
        ),
        (
            "event_transport: {redis: {reclaim_interval: 0}}",
            "apis.x.event_transport.redis.reclaim_interval",
        ),
        (
            "event_transport: {redis: {max_stream_length: -1}}",
            "apis.x.event_transport.redis.max_stream_length",
        ),
        (
            "event_transport: {redis: {consumption_restart_delay: -1}}",
            "apis.x.event_transport.redis.consumption_restart_delay",
        ),
        (
            "event_transport: {redis: {consumer_ttl: -1}}",
            "apis.x.event_transport.redis.consumer_ttl",
        ),
        (
            "event_transport: {redis: {url: 'tcp://x'}}",
            "apis.x.event_transport.redis.url",
        ),
        (
            "event_transport: {redis: {serializer: lightbus.serializers.BlobMessageSerializer}}",
            "apis.x.event_transport.redis.serializer",
        ),
        (
            "result_transport: {redis: {deserializer: my.Decoder}}",
            "apis.x.result_transport.redis.deserializer",
        ),
        ("validate: {incoming: maybe}", "apis.x.validate"),
        ("validate: {sideways: true}", "apis.x.validate"),
        ("strict_validation: 1", "apis.x.strict_validation"),
        ("cast_values: 'yes please'", "apis.x.cast_values"),
        ("event_transport: {kafka: {}}", "apis.x.event_transport"),
        (
            "event_transport: {memory: {batch_size: 0}}",
            "apis.x.event_transport.memory.batch_size",
        ),
        (
            "event_transport: {debug: {acknowledgement_timeout: 0}}",
            // Named as written in the file (`debug` is the memory transport's other name).
            "apis.x.event_transport.debug.acknowledgement_timeout",
        ),
        (
            "rpc_transport: {memory: {url: 'redis://x'}}",
            "apis.x.rpc_transport.memory.url",
        ),
    ];
    for (line, expected) in api_cases {
        let yaml = format!("apis:\n  x:\n    {line}\n");
        let (key, message) = invalid_key(Config::from_str(&yaml, "b.yaml"));
        assert_eq!(key, expected, "for `{line}`: {message}");
        assert!(!message.is_empty());
    }
    let root_cases = [
        ("bus: {schema: {ttl: 0}}", "bus.schema.ttl"),
        ("bus: {schema: {ttl: -1}}", "bus.schema.ttl"),
        (
            "bus: {schema: {human_readable: 3}}",
            "bus.schema.human_readable",
        ),
        (
            "bus: {schema: {transport: {redis: {url: 'x'}}}}",
            "bus.schema.transport.redis.url",
        ),
        (
            "bus: {schema: {transport: {redis: {pool: 1}}}}",
            "bus.schema.transport.redis.pool",
        ),
        (
            "plugins: {internal_state: {ping_interval: 0}}",
            "plugins.internal_state.ping_interval",
        ),
        (
            "plugins: {internal_state: {enabled: 2}}",
            "plugins.internal_state.enabled",
        ),
        (
            "plugins: {internal_metrics: {ping: 2}}",
            "plugins.internal_metrics.ping",
        ),
        (
            "plugins: {custom_plugin: {enabled: true}}",
            "plugins.custom_plugin",
        ),
        ("service_name: ''", "service_name"),
        ("process_name: [a]", "process_name"),
    ];
    for (yaml, expected) in root_cases {
        let (key, message) = invalid_key(Config::from_str(yaml, "b.yaml"));
        assert_eq!(key, expected, "for `{yaml}`: {message}");
    }
}

#[test]
fn zero_means_none_where_upstream_says_so() {
    // As upstream: `max_stream_length: 0` leaves streams uncapped, `consumer_ttl: 0` turns
    // the clean-up of idle consumers off. A file shared with Python services uses them.
    let config = Config::from_str(
        "apis:\n  default:\n    event_transport: {redis: {max_stream_length: 0, consumer_ttl: 0}}\n",
        "b.yaml",
    )
    .expect("valid config");
    let event = config.api("x").event_transport.redis().expect("redis");
    assert_eq!(event.max_stream_length, None);
    assert_eq!(event.consumer_ttl, 0);
}

#[test]
fn errors_read_as_file_key_and_expectation() {
    let error = Config::from_str("apis:\n  auth:\n    rpc_timeout: 0\n", "/etc/bus.yaml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "/etc/bus.yaml: invalid value at `apis.auth.rpc_timeout`: expected a positive number \
         of seconds"
    );
    let error = Config::from_str("- a\n- b\n", "list.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("list.yaml") && error.contains("(root)") && error.contains("a list"),
        "{error}"
    );
    let error = Config::from_str("{\"apis\": 3}", "b.json")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`apis`") && error.contains("invalid type"),
        "{error}"
    );
}

#[cfg(feature = "remote-config")]
/// Serves `body` with `content_type` once per connection on a real loopback HTTP server.
fn serve(body: &'static str, content_type: &'static str) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            let mut request = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                request.push_str(&line);
                line.clear();
            }
            let status = if request.starts_with("GET /missing") {
                "404 Not Found"
            } else {
                "200 OK"
            };
            let mut stream = &stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

#[cfg(feature = "remote-config")]
#[test]
fn configuration_from_an_http_url() {
    let yaml = serve("apis:\n  default:\n    rpc_timeout: 3\n", "text/plain");
    let config = Config::from_url(&format!("{yaml}/bus.yaml")).expect("YAML over HTTP");
    assert_eq!(config.api("x").rpc_timeout, 3.0);
    assert_eq!(config.origin, format!("{yaml}/bus.yaml"));

    // JSON by content type (the text is not valid YAML-as-JSON-only; it is read as JSON).
    let json = serve(r#"{"bus": {"schema": {"ttl": 9}}}"#, "application/json");
    let config = Config::from_path(format!("{json}/config")).expect("JSON over HTTP");
    assert_eq!(config.bus().schema.ttl, 9);

    // Through `load`, as `--config URL` and `LIGHTBUS_CONFIG=URL` do.
    let overrides = ConfigOverrides {
        config_path: Some(format!("{yaml}/x").into()),
        ..ConfigOverrides::default()
    };
    assert_eq!(
        Config::load(&overrides)
            .expect("loads")
            .api("a")
            .rpc_timeout,
        3.0
    );

    // Errors name the URL and, for bad values, the key.
    let bad = serve("apis:\n  a:\n    rpc_timeout: never\n", "text/yaml");
    let (key, _) = invalid_key(Config::from_url(&format!("{bad}/c.yaml")));
    assert_eq!(key, "apis.a.rpc_timeout");
    let missing = Config::from_url(&format!("{yaml}/missing")).unwrap_err();
    assert!(matches!(missing, ConfigError::Fetch { .. }), "{missing}");
    assert!(missing.to_string().contains("/missing"), "{missing}");
    let refused = Config::from_url("http://127.0.0.1:9/bus.yaml").unwrap_err();
    assert!(refused.to_string().contains("127.0.0.1:9"), "{refused}");
}

#[test]
fn the_config_schema_is_generated_from_the_same_types() {
    let schema = config_json_schema();
    assert_eq!(schema["$schema"], crate::schema::DRAFT_07);
    for key in ["bus", "apis", "plugins", "service_name", "process_name"] {
        assert!(schema["properties"].get(key).is_some(), "{key}");
    }
}

#[test]
fn max_deliveries_defaults_to_five_and_must_be_positive() {
    let config = Config::from_str("apis:\n  auth:\n    max_deliveries: 2\n", "bus.yaml")
        .expect("valid config");
    assert_eq!(config.api("auth").max_deliveries.get(), 2);
    assert_eq!(
        config.api("other").max_deliveries.get(),
        DEFAULT_MAX_DELIVERIES
    );
    let (path, _) = invalid_key(Config::from_str(
        "apis:\n  auth:\n    max_deliveries: 0\n",
        "bus.yaml",
    ));
    assert!(path.contains("max_deliveries"), "{path}");
}
