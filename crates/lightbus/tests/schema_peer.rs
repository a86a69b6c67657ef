//! Schemas across languages: the Python Lightbus 1.1.2 peer validates against schemas a
//! Rust worker stores, and Rust validates against schemas a Python worker stores.
//!
//! Needs the peer's virtualenv (`scripts/setup-python-peer.sh`).

use std::path::Path;

use lightbus::api::Api;
use lightbus::schema::{api_schema, to_python_json, Direction, Target};
use lightbus::Error;
use lightbus_test_support::apis::schema_auth::Auth;
use lightbus_test_support::inspect::wait_for_schema;
use lightbus_test_support::{bus, peer_dir, PythonPeer, RunningWorker, TestRedis, PATIENCE};
use serde_json::{json, Value};

/// Runs `tests/peer/schema_call.py` against the bus in `config` and returns its report.
fn python_calls(config: &Path) -> Value {
    let peer = PythonPeer::spawn(&peer_dir(), config, &["schema_call.py"], &[])
        .expect("start the Python caller");
    let output = peer.finish(PATIENCE);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "the Python caller printed no report ({e}):\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_validates_calls_against_the_schema_a_rust_worker_stores() {
    let redis = TestRedis::start();
    let path = redis.config().schema_ttl(60).write();
    let server = bus(&path);
    server
        .register(Auth { with_extras: false })
        .expect("register auth");
    let worker = RunningWorker::serve(server);
    let stored = wait_for_schema(&redis, "auth").await;
    let expected = to_python_json(&api_schema(&Auth { with_extras: false }.descriptor()), None);
    assert_eq!(stored, expected);

    // The peer's own validator, using our schema, rejects the wrong type before sending.
    let report = tokio::task::spawn_blocking({
        let path = path.clone();
        move || python_calls(&path)
    })
    .await
    .expect("join");
    assert_eq!(report["valid"], json!(true), "{report}");
    let invalid = report["invalid"].as_str().unwrap_or_default();
    assert!(
        invalid.starts_with("rejected by the peer's validator") && invalid.contains("username"),
        "{report}"
    );

    // With the peer's validation off, the call reaches the Rust worker, which rejects it
    // with an error result instead of running the handler.
    let lax = redis.config().schema_ttl(60).validate(false).write();
    let report = tokio::task::spawn_blocking(move || python_calls(&lax))
        .await
        .expect("join");
    let invalid = report["invalid"].as_str().unwrap_or_default();
    assert!(
        invalid.starts_with("rejected by the worker")
            && invalid.contains("invalid parameters for RPC auth.check_password() (incoming)")
            && invalid.contains("$.username"),
        "{report}"
    );

    worker.stop().await.expect("the worker stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_validates_against_the_schema_a_python_worker_stores() {
    let redis = TestRedis::start();
    let path = redis
        .config()
        .schema_ttl(60)
        .api_yaml("    rpc_timeout: 10\n")
        .write();
    let python = "from lightbus.commands import lightbus_entry_point as main; \
                  import sys; sys.argv = ['lightbus', 'run']; main()";
    let _worker = PythonPeer::spawn(
        &peer_dir(),
        &path,
        &["-c", python],
        &[("LIGHTBUS_MODULE", "schema_auth_bus")],
    )
    .expect("start the Python worker");
    let stored = wait_for_schema(&redis, "auth").await;

    // Same signatures, same bytes: a Rust worker would store exactly this.
    let ours = to_python_json(&api_schema(&Auth { with_extras: false }.descriptor()), None);
    assert_eq!(
        stored, ours,
        "Python and Rust schemas for the quickstart API differ"
    );

    let client = bus(&path);
    let error = client
        .call::<Value>(
            "auth.check_password",
            json!({"username": "admin", "password": 42}),
        )
        .await
        .unwrap_err();
    let Error::Validation(validation) = &error else {
        panic!("expected a validation error, got {error:?}");
    };
    assert_eq!(
        (
            validation.target,
            validation.direction,
            validation.path.as_str()
        ),
        (Target::RpcParameters, Direction::Outgoing, "$.password")
    );
    let error = client
        .call::<Value>("auth.check_password", json!({"username": "admin"}))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("password") && matches!(error, Error::Validation(_)),
        "{error}"
    );
    let ok: bool = client
        .call(
            "auth.check_password",
            json!({"username": "admin", "password": "secret"}),
        )
        .await
        .expect("a valid call to the Python worker");
    assert!(ok);

    // dumpschema shows the Python-served API, with its internal ones.
    let all = client.schema().snapshot().await.expect("snapshot");
    assert!(all.contains_key("auth"), "{:?}", all.keys());
    assert!(all.contains_key("internal.state"), "{:?}", all.keys());
}
