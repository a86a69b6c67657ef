#![cfg(feature = "cli")]
//! Schema sharing and validation between Rust processes, over a private redis-server.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightbus::api::Api;
use lightbus::schema::{api_schema, to_python_json, Direction, SchemaError, Target};
use lightbus::{Bus, Error, Kwargs};
use lightbus_test_support::apis::schema_auth::Auth;
use lightbus_test_support::inspect::wait_for_schema;
use lightbus_test_support::{bus, eventually, RunningWorker, TestRedis};
use redis::Commands;
use serde_json::{json, Value};

/// A worker serving `auth` (with its extras) on a bus of its own, configured by `path`.
fn auth_worker(path: &Path) -> RunningWorker {
    let server = bus(path);
    server
        .register(Auth { with_extras: true })
        .expect("register auth");
    RunningWorker::serve(server)
}

fn kwargs(value: Value) -> Kwargs {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_store_schemas_and_refresh_them_before_the_ttl() {
    let redis = TestRedis::start();
    let path = redis.config().schema_ttl(2).write();
    let mut conn = redis.connection();
    let worker = auth_worker(&path);

    let stored = wait_for_schema(&redis, "auth").await;
    let expected = to_python_json(&api_schema(&Auth { with_extras: true }.descriptor()), None);
    assert_eq!(
        stored, expected,
        "stored byte for byte in the peer's JSON style"
    );
    let members: Vec<String> = conn.smembers("schemas").expect("SMEMBERS");
    assert_eq!(members, ["auth"]);
    let ttl: i64 = conn.ttl("schema:auth").expect("TTL");
    assert!((1..=2).contains(&ttl), "ttl {ttl}");

    // Refreshed every ttl * 0.8 = 1.6 s: alive well past its first ttl, and the TTL was
    // re-armed (seen going back up).
    let mut rearmed = false;
    let mut last: i64 = conn.pttl("schema:auth").expect("PTTL");
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let now: i64 = conn.pttl("schema:auth").expect("PTTL");
        assert!(now > 0, "the schema expired while its worker ran ({now})");
        rearmed |= now > last;
        last = now;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(rearmed, "the TTL was never refreshed");

    // A client sees it; once the worker is gone the schema expires, and with it the API.
    let client = bus(&path);
    assert!(client
        .schema()
        .snapshot()
        .await
        .expect("load")
        .contains_key("auth"));
    worker.stop().await.expect("the worker stops cleanly");
    eventually("schema:auth expires", || {
        !conn.exists::<_, bool>("schema:auth").unwrap_or(true)
    })
    .await;
    let remaining = client.schema().snapshot().await.expect("load");
    assert!(!remaining.contains_key("auth"), "{remaining:?}");
    let members: Vec<String> = conn.smembers("schemas").expect("SMEMBERS");
    assert_eq!(
        members,
        ["auth"],
        "the set keeps the name, as the peer's does"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_validated_both_ways_on_both_sides() {
    let redis = TestRedis::start();
    let worker_config = redis.config().schema_ttl(60).write();
    let _worker = auth_worker(&worker_config);
    let mut conn = redis.connection();
    wait_for_schema(&redis, "auth").await;

    let client = bus(&redis
        .config()
        .schema_ttl(60)
        .api_yaml("    rpc_timeout: 3\n")
        .write());
    let ok: bool = client
        .call(
            "auth.check_password",
            json!({"username": "admin", "password": "secret"}),
        )
        .await
        .expect("valid call");
    assert!(ok);

    // Outgoing: rejected before anything is sent.
    let error = client
        .call::<Value>(
            "auth.check_password",
            json!({"username": 123, "password": "secret"}),
        )
        .await
        .unwrap_err();
    let Error::Validation(validation) = &error else {
        panic!("expected a validation error, got {error:?}");
    };
    assert_eq!(validation.api, "auth");
    assert_eq!(validation.member, "check_password");
    assert_eq!(validation.target, Target::RpcParameters);
    assert_eq!(validation.direction, Direction::Outgoing);
    assert_eq!(validation.path, "$.username");
    assert_eq!(conn.llen::<_, i64>("auth:rpc_queue").expect("LLEN"), 0);

    // A procedure the schema lacks is named as such, not a timeout.
    let error = client
        .call::<Value>("auth.chek_password", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Schema(SchemaError::UnknownMember { .. })),
        "{error:?}"
    );

    // Incoming on the worker: a caller that does not validate gets an error result, and
    // the handler does not run.
    let lax = bus(&redis.config().schema_ttl(60).validate(false).write());
    let error = lax
        .call::<Value>(
            "auth.check_password",
            json!({"username": "admin", "password": ["secret"]}),
        )
        .await
        .unwrap_err();
    match &error {
        Error::Remote { message, .. } => {
            assert!(
                message.contains("invalid parameters for RPC auth.check_password() (incoming)")
                    && message.contains("$.password"),
                "{message}"
            );
        }
        other => panic!("expected an error result, got {other:?}"),
    }

    // Outgoing on the worker: a result that breaks its schema becomes an error result.
    let error = client
        .call::<Value>("auth.broken", json!({}))
        .await
        .unwrap_err();
    match &error {
        Error::Remote { message, .. } => {
            assert!(
                message.contains("invalid result for RPC auth.broken()"),
                "{message}"
            )
        }
        other => panic!("expected an error result, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_validated_by_the_caller() {
    let redis = TestRedis::start();
    // This worker does not check what it sends, so the caller must.
    let _worker = auth_worker(
        &redis
            .config()
            .schema_ttl(60)
            .api_yaml("    validate: {outgoing: false}\n")
            .write(),
    );
    wait_for_schema(&redis, "auth").await;
    let client = bus(&redis.config().schema_ttl(60).write());
    let error = client
        .call::<Value>("auth.broken", json!({}))
        .await
        .unwrap_err();
    let Error::Validation(validation) = &error else {
        panic!("expected a validation error, got {error:?}");
    };
    assert_eq!(validation.target, Target::RpcResponse);
    assert_eq!(validation.direction, Direction::Incoming);
    assert_eq!(validation.path, "$");
}

/// Collects what `tracing` writes, to count warnings.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_missing_schema_warns_once_or_fails_under_strict_validation() {
    let redis = TestRedis::start();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = bus(&redis
        .config()
        .schema_ttl(60)
        .api_yaml("    rpc_timeout: 0.2\n")
        .write());
    for _ in 0..3 {
        let error = client
            .call::<Value>("nobody.home", json!({"x": 1}))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    }
    let logs = String::from_utf8_lossy(&captured.0.lock().expect("logs")).into_owned();
    assert_eq!(
        logs.matches("no schema is known for it").count(),
        1,
        "warned once per API:\n{logs}"
    );

    let strict = bus(&redis
        .config()
        .schema_ttl(60)
        .api_yaml("    strict_validation: true\n")
        .write());
    let started = Instant::now();
    let error = strict
        .call::<Value>("nobody.home", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Schema(SchemaError::Missing { ref api }) if api == "nobody"),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "failed fast");
    assert!(error.to_string().contains("strict_validation"), "{error}");

    // Validation off: nothing is loaded or checked, even under strict.
    let off = bus(&redis
        .config()
        .schema_ttl(60)
        .api_yaml("    validate: false\n    strict_validation: true\n    rpc_timeout: 0.2\n")
        .write());
    let error = off
        .call::<Value>("nobody.home", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
}

#[tokio::test]
async fn local_schema_files_written_by_dumpschema_are_used_for_validation() {
    let redis = TestRedis::start();
    let path = redis
        .config()
        .schema_ttl(60)
        .api_yaml("    strict_validation: true\n    rpc_timeout: 0.2\n")
        .write();
    let dir = tempfile::tempdir().expect("temp dir");

    // Dump the schema of a process that registers `auth`, to a directory (one file per API).
    let serving = bus(&path);
    serving
        .register(Auth { with_extras: false })
        .expect("register");
    let args = lightbus::cli::DumpSchemaArgs {
        out: Some(dir.path().to_owned()),
        api: None,
    };
    lightbus::cli::dump_schema(&serving, &args)
        .await
        .expect("dumpschema");
    let file = dir.path().join("auth.json");
    let text = std::fs::read_to_string(&file).expect("auth.json written");
    assert!(
        text.starts_with("{\n  \"auth\": {\n    \"events\""),
        "indented, sorted:\n{text}"
    );

    // A process with no worker around validates against the file, even under strict.
    let client = Bus::builder()
        .config_file(&path)
        .local_schema(dir.path())
        .build()
        .expect("bus with a local schema");
    let error = client
        .call::<Value>(
            "auth.check_password",
            json!({"username": "a", "password": 1}),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Validation(_)), "{error:?}");
    let error = client
        .call::<Value>(
            "auth.check_password",
            json!({"username": "a", "password": "b"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Timeout { .. }),
        "valid, sent: {error:?}"
    );
    // Never stored on the bus.
    let mut conn = redis.connection();
    assert!(!conn.exists::<_, bool>("schema:auth").expect("EXISTS"));

    // The single-file form, and a broken file.
    let single = dir.path().join("all.json");
    lightbus::cli::dump_schema(
        &serving,
        &lightbus::cli::DumpSchemaArgs {
            out: Some(single.clone()),
            api: Some("auth".into()),
        },
    )
    .await
    .expect("dumpschema --api auth");
    let other = bus(&path);
    assert_eq!(other.load_local_schema(&single).expect("loads"), ["auth"]);
    std::fs::write(dir.path().join("broken.json"), "{not json").expect("write");
    let error = Bus::builder()
        .config_file(&path)
        .local_schema(dir.path())
        .build()
        .expect_err("a broken file is an error");
    assert!(error.to_string().contains("broken.json"), "{error}");
    let error = lightbus::cli::dump_schema(
        &serving,
        &lightbus::cli::DumpSchemaArgs {
            out: None,
            api: Some("nope".into()),
        },
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("known: auth"), "{error}");
}

#[tokio::test]
async fn fired_events_are_validated() {
    let redis = TestRedis::start();
    let bus = bus(&redis.config().schema_ttl(60).write());
    bus.register(Auth { with_extras: true }).expect("register");
    let error = bus
        .fire_raw("auth", "typed_event", kwargs(json!({"username": 5})))
        .await
        .unwrap_err();
    let Error::Validation(validation) = &error else {
        panic!("expected a validation error, got {error:?}");
    };
    assert_eq!(validation.target, Target::EventParameters);
    assert_eq!(validation.path, "$.username");
    assert!(
        error
            .to_string()
            .starts_with("invalid parameters for event auth.typed_event (outgoing)"),
        "{error}"
    );
    bus.fire_raw("auth", "typed_event", kwargs(json!({"username": "x"})))
        .await
        .expect("valid event fired");

    // The hook for listeners: incoming event parameters against the bus schema.
    let listener = bus.clone();
    let config = listener.config().api("auth").clone();
    let error = listener
        .schema()
        .check(
            &config,
            Direction::Incoming,
            "auth",
            Target::EventParameters,
            "typed_event",
            &json!({"username": []}),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Validation(_)), "{error:?}");
}

mod quickstart {
    /// The quickstart API as a Rust service writes it.
    #[lightbus::api(name = "auth")]
    pub(crate) trait Auth {
        /// Checks a user's password.
        async fn check_password(&self, username: String, password: String) -> bool;

        /// Lists up to `limit` tags.
        async fn tags(&self, names: Vec<String>, limit: i64) -> Vec<String>;

        /// Fired when a user signs up.
        #[event]
        fn user_registered(username: String, email: String);
    }
}

struct Service;

impl quickstart::Auth for Service {
    async fn check_password(&self, username: String, password: String) -> bool {
        username == "admin" && password == "secret"
    }

    async fn tags(&self, names: Vec<String>, limit: i64) -> Vec<String> {
        names
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .collect()
    }
}

/// What Python Lightbus 1.1.2 stores for the same API written with type hints
/// (`check_password(self, username: str, password: str) -> bool`, `tags(self, names:
/// List[str], limit: int) -> List[str]`, `user_registered = Event(parameters=(Parameter(
/// 'username', str), Parameter('email', str)))`), printed by the peer's own encoder.
const PEER_TYPED_QUICKSTART: &str = concat!(
    r#"{"events": {"user_registered": {"parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": false, "properties": {"email": {"type": "string"}, "username": {"type": "string"}}, "required": ["username", "email"], "title": "Event auth.user_registered parameters", "type": "object"}}}, "#,
    r#""rpcs": {"check_password": {"parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": false, "properties": {"password": {"type": "string"}, "username": {"type": "string"}}, "required": ["username", "password"], "title": "RPC auth.check_password() parameters", "type": "object"}, "response": {"$schema": "http://json-schema.org/draft-07/schema#", "title": "RPC auth.check_password() response", "type": "boolean"}}, "#,
    r#""tags": {"parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": false, "properties": {"limit": {"type": "integer"}, "names": {"items": {"type": "string"}, "type": "array"}}, "required": ["names", "limit"], "title": "RPC auth.tags() parameters", "type": "object"}, "response": {"$schema": "http://json-schema.org/draft-07/schema#", "items": {"type": "string"}, "title": "RPC auth.tags() response", "type": "array"}}}}"#
);

#[test]
fn the_macro_generates_the_peers_schema_byte_for_byte() {
    let server = quickstart::AuthServer::new(Service);
    let schema = api_schema(&server.descriptor());
    assert_eq!(to_python_json(&schema, None), PEER_TYPED_QUICKSTART);
}

#[tokio::test]
async fn dumpschema_creates_a_missing_directory_named_with_a_trailing_slash() {
    let redis = TestRedis::start();
    let path = redis.config().schema_ttl(60).write();
    let dir = tempfile::tempdir().expect("temp dir");
    let serving = bus(&path);
    serving
        .register(Auth { with_extras: false })
        .expect("register");
    let missing = dir.path().join("schemas").join("v1");
    let mut out = missing.clone().into_os_string();
    out.push("/");
    let args = lightbus::cli::DumpSchemaArgs {
        out: Some(out.into()),
        api: None,
    };
    lightbus::cli::dump_schema(&serving, &args)
        .await
        .expect("dumpschema creates the directory");
    let text = std::fs::read_to_string(missing.join("auth.json")).expect("auth.json written");
    assert!(text.contains("\"auth\""), "{text}");
}
