//! The worker's HTTP endpoint against a real Redis: `/metrics` counts what happened,
//! `/healthz` answers, `/readyz` is 200 only while Redis answers and every consumer runs.

use std::time::Duration;

use lightbus::api::ApiBuilder;
use lightbus::worker::Worker;
use lightbus::Kwargs;
use lightbus_test_support::TestRedis;
use lightbus_test_support::{bus, RunningWorker, PATIENCE};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain HTTP/1.0 GET: (status, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects to the endpoint");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .expect("sends the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("reads the response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls `path` until `accept(status, body)` holds; the last answer.
async fn wait_for(
    addr: std::net::SocketAddr,
    path: &str,
    accept: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let answer = match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => get(addr, path).await,
            Err(_) => (0, String::new()),
        };
        if accept(answer.0, &answer.1) || tokio::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness() {
    let mut redis = TestRedis::start();
    let config = redis.config().write();
    let worker_bus = bus(&config);
    worker_bus
        .register(
            ApiBuilder::new("auth")
                .rpc(
                    "check_password",
                    ["username", "password"],
                    |kwargs: Kwargs| async move {
                        if kwargs.get("password") == Some(&json!("boom")) {
                            return Err("refused".to_owned());
                        }
                        Ok(Value::Bool(
                            kwargs.get("password") == Some(&json!("secret")),
                        ))
                    },
                )
                .event("user_registered", ["username"])
                .build(),
        )
        .expect("registers");
    worker_bus
        .listen_raw(&["auth.user_registered"], "welcome", |_event| async {})
        .expect("listens");
    let addr = free_addr();
    let worker = RunningWorker::start(Worker::new(worker_bus.clone()).http(Some(addr)));

    let (status, body) = wait_for(addr, "/readyz", |status, _| status == 200).await;
    assert_eq!(status, 200, "ready once consuming: {body}");
    let report: Value = serde_json::from_str(&body).expect("readyz answers JSON");
    assert_eq!(report["ready"], true);
    assert_eq!(
        report["consumers"]["rpcs `auth`"]["state"], "running",
        "{report}"
    );
    assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));

    let caller = bus(&config);
    let ok: bool = caller
        .call(
            "auth.check_password",
            json!({"username": "a", "password": "secret"}),
        )
        .await
        .expect("the call succeeds");
    assert!(ok);
    let failed = caller
        .call::<bool>(
            "auth.check_password",
            json!({"username": "a", "password": "boom"}),
        )
        .await;
    assert!(failed.is_err());
    worker_bus
        .fire_raw(
            "auth",
            "user_registered",
            json!({"username": "a"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
        .await
        .expect("fires");

    let (_, metrics) = wait_for(addr, "/metrics", |_, body| {
        body.contains("lightbus_events_handled_total") && body.contains("lightbus_listener_lag")
    })
    .await;
    for expected in [
        r#"lightbus_rpc_calls_total{api="auth",procedure="check_password",outcome="ok"} 1"#,
        r#"lightbus_rpc_calls_total{api="auth",procedure="check_password",outcome="failed"} 1"#,
        r#"lightbus_rpc_executions_total{api="auth",procedure="check_password",outcome="ok"} 1"#,
        r#"lightbus_rpc_executions_total{api="auth",procedure="check_password",outcome="failed"} 1"#,
        r#"lightbus_rpc_execution_seconds_count{api="auth",procedure="check_password",outcome="ok"} 1"#,
        r#"lightbus_rpc_duration_seconds_bucket{api="auth",procedure="check_password",outcome="ok",le="+Inf"} 1"#,
        r#"lightbus_events_fired_total{api="auth",event="user_registered",outcome="ok"} 1"#,
        r#"lightbus_events_handled_total{api="auth",event="user_registered",listener="welcome",outcome="ok"} 1"#,
        r#"lightbus_rpc_queue_length{api="auth"} 0"#,
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
    let lag_line = metrics
        .lines()
        .find(|line| line.starts_with("lightbus_listener_lag{"))
        .expect("a lag gauge");
    assert!(
        lag_line.contains(r#"stream="auth.*:stream""#) && lag_line.contains("-welcome\""),
        "{lag_line}"
    );

    // Redis gone: not ready, and the report says why.
    redis.stop();
    let (status, body) = wait_for(addr, "/readyz", |status, _| status == 503).await;
    assert_eq!(status, 503, "{body}");
    let report: Value = serde_json::from_str(&body).expect("JSON reason");
    assert_eq!(report["ready"], false);
    let reasons = report["reasons"].to_string();
    assert!(reasons.contains("redis is unreachable"), "{reasons}");
    assert_eq!(get(addr, "/healthz").await.0, 200, "alive all the same");

    // Back: ready again once the consumers reconnected.
    redis.restart();
    let (status, body) = wait_for(addr, "/readyz", |status, _| status == 200).await;
    assert_eq!(status, 200, "{body}");
    worker.stop().await.expect("the worker stops cleanly");
}

#[tokio::test]
async fn a_taken_address_stops_the_worker_at_start() {
    let redis = TestRedis::start();
    let config = redis.config().write();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = taken.local_addr().expect("addr");
    let error = Worker::new(bus(&config))
        .http(Some(addr))
        .run(std::future::pending())
        .await
        .expect_err("cannot bind");
    assert!(
        error.to_string().contains("cannot serve HTTP on"),
        "{error}"
    );
}
