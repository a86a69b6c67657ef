//! Trace propagation on, with the Python Lightbus 1.1.2 peer on the bus: a call carrying a
//! `traceparent` is served by a Python worker and its result comes back, and events carrying
//! one (in their empty-named field) reach a Python listener with their arguments intact.
//! The messages are read off Redis to show that the context really was on the wire.

use std::path::Path;
use std::time::Duration;

use lightbus::config::Config;
use lightbus::message::RpcMessage;
use lightbus::{Bus, Kwargs};
use lightbus_test_support::apis::events_auth::{user, AuthServer, AuthService};
use lightbus_test_support::python_listener;
use lightbus_test_support::{PythonPeer, TestRedis};
use opentelemetry::trace::TracerProvider as _;
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt;

const WAIT: Duration = Duration::from_secs(30);

/// A Rust bus on the shared (Python-readable) file, with propagation switched on in code:
/// the file itself cannot hold the Rust-only `observability` section.
fn traced_bus(config_file: &Path, service: &str) -> Bus {
    let mut config = Config::from_path(config_file).expect("the test config");
    config.file.observability.trace_propagation = true;
    Bus::builder()
        .config(config)
        .service_name(service)
        .build()
        .expect("bus")
}

/// Spans get OpenTelemetry ids in this process (nothing is exported).
fn install_tracer() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_worker_serves_calls_and_a_python_listener_gets_events_carrying_trace_context() {
    install_tracer();
    let redis = TestRedis::start();
    let config = redis.config().rpc_timeout(30.0).write();

    // RPC: queued before the Python worker starts, so the blob can be read off the queue.
    let client = traced_bus(&config, "caller");
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            let kwargs: Kwargs = json!({"username": "admin", "password": "secret"})
                .as_object()
                .cloned()
                .unwrap_or_default();
            client.call_raw("py_rpc", "check_password", kwargs).await
        }
    });
    let deadline = std::time::Instant::now() + WAIT;
    while redis.list_len("py_rpc:rpc_queue") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the call was never queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queued: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg("py_rpc:rpc_queue")
        .arg(0)
        .arg(-1)
        .query(&mut redis.connection())
        .expect("LRANGE");
    let blob: Value = serde_json::from_slice(&queued[0]).expect("a JSON blob");
    let traceparent = blob["traceparent"].as_str().unwrap_or_default().to_owned();
    assert!(
        traceparent.starts_with("00-"),
        "the call carries a context: {blob}"
    );
    assert_eq!(
        RpcMessage::from_blob(&queued[0])
            .expect("decodes")
            .trace_context
            .map(|c| c.traceparent),
        Some(traceparent)
    );
    let mut worker = PythonPeer::lightbus_run(&config, "rpc_worker");
    let result = tokio::time::timeout(WAIT, call)
        .await
        .expect("answered in time")
        .expect("the call task");
    assert_eq!(
        result.unwrap_or_else(|e| panic!("{e}\n{}", worker.output_so_far())),
        json!(true),
        "the Python worker decoded the call and answered it"
    );
    assert!(worker.is_running(), "{}", worker.output_so_far());

    // Events: a Python listener receives them, arguments intact.
    let (_listener, mut lines) = python_listener(&redis, &config).await;
    let firer = traced_bus(&config, "auth_service");
    firer
        .register(AuthServer::new(AuthService))
        .expect("registers");
    for n in 0..2 {
        let fired = firer.fire(user(n)).await.expect("fires");
        let line = tokio::time::timeout(WAIT, lines.recv())
            .await
            .expect("the Python listener prints the event")
            .expect("the Python listener is running");
        let received: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(received["id"], fired.id.as_str());
        assert_eq!(
            received["kwargs"],
            json!({"username": format!("user{n}"), "email": format!("user{n}@example.com")}),
            "no extra argument reached the handler"
        );
        let entry: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg("auth.*:stream")
            .arg(&fired.native_id)
            .arg(&fired.native_id)
            .query(&mut redis.connection())
            .expect("XRANGE");
        let carrier = entry[0].1.iter().find(|(name, _)| name.is_empty());
        assert!(
            carrier.is_some_and(|(_, value)| value.starts_with("00-")),
            "the entry carries a context: {entry:?}"
        );
    }
}
