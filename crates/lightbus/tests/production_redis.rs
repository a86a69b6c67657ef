//! Redis as production runs it: TLS (`rediss://`, with a CA bundle and a client certificate
//! made at test time) and ACL users with hostile passwords, on private `redis-server`s.

use std::path::Path;

use lightbus::api::{ApiBuilder, DynamicApi, Kwargs};
use lightbus::{Bus, Error};
use lightbus_test_support::inspect::wait_for_group;
use lightbus_test_support::{
    bus, named_bus, Collector, RunningWorker, TestCertificates, TestRedis,
};
use serde_json::json;

fn echo_api() -> DynamicApi {
    ApiBuilder::new("echo")
        .rpc("say", ["text"], |kw: Kwargs| async move {
            Ok::<_, &str>(kw["text"].clone())
        })
        .event("said", ["text"])
        .build()
}

fn tls_yaml(ca: &Path, cert: &Path, key: &Path) -> String {
    format!(
        "tls:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\n",
        ca.display(),
        cert.display(),
        key.display()
    )
}

/// A worker serving `echo` and listening to `echo.said` on `config`; a second process
/// calls and fires. Returns what the caller saw.
async fn call_and_fire(redis: &TestRedis, config: &Path) {
    let server = named_bus(config, "echo_service", "worker");
    server.register(echo_api()).expect("register echo");
    let heard = Collector::default();
    server
        .listen_raw(&["echo.said"], "audit", heard.raw_handler())
        .expect("listen");
    let worker = RunningWorker::serve(server);
    wait_for_group(redis, "echo.*:stream", "echo_service-audit").await;

    let client = bus(config);
    let answer: String = client
        .call("echo.say", json!({"text": "over TLS"}))
        .await
        .expect("an RPC over TLS");
    assert_eq!(answer, "over TLS");

    let firer = named_bus(config, "echo_service", "firer");
    firer.register(echo_api()).expect("register echo");
    let mut kwargs = Kwargs::new();
    kwargs.insert("text".into(), json!("fired over TLS"));
    firer
        .fire_raw("echo", "said", kwargs)
        .await
        .expect("a fire over TLS");
    let seen = heard.wait_for(1).await;
    assert_eq!(seen[0].kwargs["text"], "fired over TLS");
    worker.stop().await.expect("the worker stops cleanly");
}

#[tokio::test]
async fn rpcs_and_events_run_over_tls_with_a_client_certificate() {
    let redis = TestRedis::start_tls();
    let certs = redis.certificates().expect("TLS certificates").clone();
    assert!(redis.url().starts_with("rediss://"), "{}", redis.url());
    let config = redis
        .config()
        .root_yaml(&tls_yaml(&certs.ca, &certs.client_cert, &certs.client_key))
        .write();
    call_and_fire(&redis, &config).await;
}

/// A server certificate signed by a CA this process does not trust is refused with an
/// error that names the server and the reason; nothing is sent in plain text instead.
#[tokio::test]
async fn a_server_certificate_that_does_not_verify_is_a_clear_error() {
    let redis = TestRedis::start_tls();
    let TestCertificates {
        other_ca,
        client_cert,
        client_key,
        ..
    } = redis.certificates().expect("TLS certificates").clone();
    let config = redis
        .config()
        .rpc_timeout(2.0)
        .root_yaml(&tls_yaml(&other_ca, &client_cert, &client_key))
        .write();
    let client = bus(&config);
    let error = client
        .call::<String>("echo.say", json!({"text": "x"}))
        .await
        .expect_err("an untrusted server certificate must fail the call");
    let text = error.to_string();
    assert!(matches!(error, Error::Tls { .. }), "{error:?}");
    assert!(text.contains(&redis.url()), "names the server: {text}");
    assert!(
        text.contains("UnknownIssuer") || text.contains("certificate"),
        "says why: {text}"
    );
    assert!(
        text.contains("LIGHTBUS_TLS_CA_FILE"),
        "names the fix: {text}"
    );
    assert!(!error.is_transient(), "not retried as an outage: {error:?}");
}

/// A server that requires a client certificate refuses a process without one, clearly.
#[tokio::test]
async fn a_missing_client_certificate_is_a_clear_error() {
    let redis = TestRedis::start_tls();
    let certs = redis.certificates().expect("TLS certificates").clone();
    let config = redis
        .config()
        .rpc_timeout(2.0)
        .root_yaml(&format!("tls:\n  ca_file: {}\n", certs.ca.display()))
        .write();
    let error = bus(&config)
        .call::<String>("echo.say", json!({"text": "x"}))
        .await
        .expect_err("a server requiring client certificates must refuse");
    assert!(error.is_connection(), "{error:?}");
    assert!(error.to_string().contains(&redis.url()), "{error}");
}

/// The `tls` keys are read from the file and documented in `dumpconfigschema`'s schema
/// (the environment variables are checked through the `lightbus` binary, in
/// `lightbus-cli/tests/production_redis.rs`, so this process's environment stays as is).
#[test]
fn tls_keys_are_read_and_documented() {
    let config = lightbus::config::Config::from_str(
        "tls:\n  ca_file: /from/file/ca.pem\n  cert_file: /c.pem\n  key_file: /k.pem\n",
        "inline.yaml",
    )
    .expect("a valid configuration");
    let tls = &config.file.tls;
    assert_eq!(tls.ca_file.as_deref(), Some(Path::new("/from/file/ca.pem")));
    assert_eq!(tls.cert_file.as_deref(), Some(Path::new("/c.pem")));
    assert_eq!(tls.key_file.as_deref(), Some(Path::new("/k.pem")));
    let schema = lightbus::config::config_json_schema();
    let tls = &schema["definitions"]["TlsConfig"]["properties"];
    for key in ["ca_file", "cert_file", "key_file"] {
        assert!(
            tls[key]["description"].is_string(),
            "tls.{key} is documented"
        );
    }
    let error = lightbus::config::Config::from_str("tls:\n  ca_fle: x\n", "inline.yaml")
        .expect_err("a misspelt key is refused");
    assert!(error.to_string().contains("ca_fle"), "{error}");
}

const HOSTILE_PASSWORD: &str = "p@ss:w/rd#1%x";

fn acl_redis() -> TestRedis {
    let rule = format!(">{HOSTILE_PASSWORD}");
    TestRedis::start_with_args(&["--user", "app", "on", &rule, "~*", "&*", "+@all"])
}

/// An ACL user whose password holds `@`, `:`, `/`, `#` and `%`, written raw in the URL:
/// calls and events work, and the password shows up nowhere the bus prints.
#[tokio::test]
async fn an_acl_user_with_a_raw_hostile_password_works() {
    let redis = acl_redis();
    let url = redis.url_with_credentials("app", HOSTILE_PASSWORD);
    let config = redis.config().url(&url).write();
    call_and_fire(&redis, &config).await;

    // Percent-encoded, the same password works too.
    let encoded = redis.url_with_credentials("app", "p%40ss%3Aw%2Frd%231%25x");
    let config = redis.config().url(&encoded).write();
    let client = bus(&config);
    let answer: Result<String, _> = client.call("echo.say", json!({"text": "x"})).await;
    // No worker serves here: a timeout, not an authentication failure, proves the login.
    let error = answer.expect_err("nobody serves echo");
    assert!(error.is_timeout(), "{error:?}");
    let printed = format!("{error} {error:?} {client:?}");
    assert!(!printed.contains("w/rd"), "{printed}");
}

/// A wrong password is an authentication error naming the redacted URL, never the password.
#[tokio::test]
async fn a_wrong_password_is_a_clear_error_without_the_password() {
    let redis = acl_redis();
    let wrong = "n0t-th3-p@ss/w#rd";
    let config = redis
        .config()
        .rpc_timeout(2.0)
        .url(redis.url_with_credentials("app", wrong))
        .write();
    let client: Bus = bus(&config);
    let error = client
        .call::<String>("echo.say", json!({"text": "x"}))
        .await
        .expect_err("a wrong password must fail");
    let printed = format!("{error} {error:?}");
    assert!(matches!(error, Error::Authentication { .. }), "{printed}");
    assert!(printed.contains("app:***@127.0.0.1"), "{printed}");
    for part in ["n0t", "th3", "w#rd", "p@ss"] {
        assert!(!printed.contains(part), "`{part}` leaked: {printed}");
    }
    assert_eq!(
        lightbus::cli::exit_code(&error),
        std::process::ExitCode::from(lightbus::cli::EXIT_BUS_UNAVAILABLE)
    );
}

/// A worker whose password stops working (rotated on the server, connections dropped)
/// tries again a bounded number of times, then stops with the authentication error (which
/// `run` turns into exit code 4) instead of retrying forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stops_after_its_password_is_refused_repeatedly() {
    let redis = acl_redis();
    let config = redis
        .config()
        .url(redis.url_with_credentials("app", HOSTILE_PASSWORD))
        .write();
    let server = named_bus(&config, "echo_service", "worker");
    server.register(echo_api()).expect("register echo");
    let worker = RunningWorker::serve(server);
    let answer: String = bus(&config)
        .call("echo.say", json!({"text": "before"}))
        .await
        .expect("a call with the right password");
    assert_eq!(answer, "before");

    let mut admin = redis.connection();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("app")
        .arg("resetpass")
        .arg(">rotated")
        .query(&mut admin)
        .expect("rotate the password");
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg("app")
        .query(&mut admin)
        .expect("drop the worker's connections");
    let started = std::time::Instant::now();
    let outcome = worker.finished().await;
    let error = outcome.expect_err("the worker stops with an error");
    let printed = format!("{error} {error:?}");
    assert!(matches!(error, Error::Authentication { .. }), "{printed}");
    assert!(!printed.contains("w/rd"), "{printed}");
    assert_eq!(
        lightbus::cli::exit_code(&error),
        std::process::ExitCode::from(lightbus::cli::EXIT_BUS_UNAVAILABLE)
    );
    eprintln!(
        "the worker gave up {:?} after its connections were dropped",
        started.elapsed()
    );
}

/// Upstream's way to spread load: two APIs on two Redis servers (one of them over TLS, with
/// an ACL password), served, called, fired and listened to from one process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apis_on_two_redis_servers_from_one_process() {
    let plain = acl_redis();
    let tls = TestRedis::start_tls();
    let certs = tls.certificates().expect("certificates").clone();
    let plain_url = serde_json::Value::String(plain.url_with_credentials("app", HOSTILE_PASSWORD));
    let tls_url = serde_json::Value::String(tls.url());
    let api = |name: &str, url: &serde_json::Value| {
        format!(
            "  {name}:\n    validate: false\n    rpc_transport: {{redis: {{url: {url}}}}}\n    \
             result_transport: {{redis: {{url: {url}}}}}\n    \
             event_transport: {{redis: {{url: {url}}}}}\n"
        )
    };
    let yaml = format!(
        "bus:\n  schema:\n    transport: {{redis: {{url: {plain_url}}}}}\napis:\n{}{}{}",
        api("echo", &plain_url),
        api("loud", &tls_url),
        tls_yaml(&certs.ca, &certs.client_cert, &certs.client_key),
    );
    let path = tempfile::tempdir().expect("a temporary directory");
    let config = path.path().join("two.yaml");
    std::fs::write(&config, yaml).expect("write the configuration");

    let loud = || {
        ApiBuilder::new("loud")
            .rpc("shout", ["text"], |kw: Kwargs| async move {
                Ok::<_, &str>(json!(kw["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_uppercase()))
            })
            .event("shouted", ["text"])
            .build()
    };
    let server = named_bus(&config, "both", "worker");
    server.register(echo_api()).expect("register echo");
    server.register(loud()).expect("register loud");
    let heard = Collector::default();
    server
        .listen_raw(&["echo.said", "loud.shouted"], "audit", heard.raw_handler())
        .expect("listen to both");
    let worker = RunningWorker::serve(server);
    wait_for_group(&plain, "echo.*:stream", "both-audit").await;
    wait_for_group(&tls, "loud.*:stream", "both-audit").await;

    let client = named_bus(&config, "both", "client");
    client.register(echo_api()).expect("register echo");
    client.register(loud()).expect("register loud");
    let said: String = client
        .call("echo.say", json!({"text": "a"}))
        .await
        .expect("echo");
    let shouted: String = client
        .call("loud.shout", json!({"text": "b"}))
        .await
        .expect("loud");
    assert_eq!((said.as_str(), shouted.as_str()), ("a", "B"));
    let mut kwargs = Kwargs::new();
    kwargs.insert("text".into(), json!("on plain"));
    client
        .fire_raw("echo", "said", kwargs)
        .await
        .expect("fire echo");
    let mut kwargs = Kwargs::new();
    kwargs.insert("text".into(), json!("on tls"));
    client
        .fire_raw("loud", "shouted", kwargs)
        .await
        .expect("fire loud");
    let seen = heard.wait_for(2).await;
    let mut texts: Vec<&str> = seen
        .iter()
        .filter_map(|m| m.kwargs["text"].as_str())
        .collect();
    texts.sort_unstable();
    assert_eq!(texts, ["on plain", "on tls"]);
    // Each API's events stayed on its own server (events only: a listener's set-up may
    // leave an empty placeholder entry).
    let entries = |redis: &TestRedis, stream: &str| {
        lightbus_test_support::inspect::entries(redis, stream)
            .iter()
            .filter(|(_, fields)| fields.iter().any(|(name, _)| name == "api_name"))
            .count()
    };
    assert_eq!(
        (
            entries(&plain, "echo.*:stream"),
            entries(&tls, "echo.*:stream")
        ),
        (1, 0)
    );
    assert_eq!(
        (
            entries(&tls, "loud.*:stream"),
            entries(&plain, "loud.*:stream")
        ),
        (1, 0)
    );
    worker.stop().await.expect("the worker stops cleanly");
}
