//! RPC between Rust processes over a private redis-server.

use std::time::Duration;

use lightbus::api::{ApiBuilder, Kwargs};
use lightbus::Error;
use lightbus_test_support::{bus, RunningWorker, TestRedis};
use serde_json::{json, Value};

fn math_api() -> lightbus::api::DynamicApi {
    ApiBuilder::new("math")
        .rpc("add", ["a", "b"], |kw: Kwargs| async move {
            let a = kw["a"].as_i64().ok_or("a must be an integer")?;
            let b = kw["b"].as_i64().ok_or("b must be an integer")?;
            Ok::<_, &str>(json!(a + b))
        })
        .rpc("boom", [], |_kw: Kwargs| async move {
            if true {
                panic!("kaboom");
            }
            Ok::<Value, &str>(Value::Null)
        })
        .build()
}

#[tokio::test]
async fn calls_results_errors_and_panics() {
    let redis = TestRedis::start();
    let server = bus(&redis.config().write());
    server.register(math_api()).expect("register math");
    let _worker = RunningWorker::serve(server);
    let client = bus(&redis.config().write());

    let sum: i64 = client
        .call("math.add", json!({"a": 2, "b": 40}))
        .await
        .expect("call");
    assert_eq!(sum, 42);

    let err = client
        .call::<Value>("math.add", json!({"a": "x", "b": 1}))
        .await
        .unwrap_err();
    match err {
        Error::Remote { message, .. } => assert_eq!(message, "a must be an integer"),
        other => panic!("expected a remote error, got {other:?}"),
    }

    let err = client
        .call::<Value>("math.boom", json!({}))
        .await
        .unwrap_err();
    match err {
        Error::Remote { message, trace, .. } => {
            assert!(message.contains("kaboom"), "{message}");
            assert!(trace.contains("math.boom"), "{trace}");
        }
        other => panic!("expected a remote error, got {other:?}"),
    }

    // The worker survived the panic.
    let sum: i64 = client
        .call("math.add", json!({"a": 1, "b": 1}))
        .await
        .expect("call");
    assert_eq!(sum, 2);

    // Many concurrent calls share one result listener.
    let calls = (0..200).map(|i| {
        let client = client.clone();
        async move {
            client
                .call::<i64>("math.add", json!({"a": i, "b": 1}))
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.expect("concurrent call"), i as i64 + 1);
    }
}

#[tokio::test]
async fn a_call_nobody_serves_times_out_clearly() {
    let redis = TestRedis::start();
    let client = bus(&redis.config().rpc_timeout(0.3).write());
    let started = std::time::Instant::now();
    let err = client
        .call::<Value>("nobody.home", json!({}))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("nobody.home()") && text.contains("no worker"),
        "{text}"
    );
}
