//! `max_message_bytes` of the Redis transports: a message above the limit is refused before
//! it is sent, with an error naming the API, member, size and setting; one received above
//! the limit is set aside (events: dead-lettered; calls: dropped; results: the caller is
//! answered with a `result_too_large` failure, by the worker or by its own result
//! listener), and good traffic carries on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use lightbus::api::{ApiBuilder, Kwargs};
use lightbus::{Bus, Error, EventMessage, Since, SubscribeOptions};
use lightbus_test_support::apis::events_auth::{AuthServer, AuthService, UserRegistered};
use lightbus_test_support::inspect::{entries, field, wait_for_group};
use lightbus_test_support::{eventually, named_bus, RunningWorker, TestRedis};
use serde_json::{json, Value};

const LIMIT: usize = 2_000;
const PER_API: &str = "auth.*:stream";

/// A configuration for `redis` whose transports all have `max_message_bytes: limit`
/// (the default 64 MiB when `None`).
fn config(redis: &TestRedis, dir: &Path, limit: Option<usize>) -> PathBuf {
    let url = redis.url();
    let max = limit.map_or(String::new(), |n| {
        format!("        max_message_bytes: {n}\n")
    });
    let yaml = format!(
        "bus:\n  schema:\n    transport:\n      redis:\n        url: {url}\n\
         apis:\n  default:\n    rpc_timeout: 1\n    validate: false\n\
         \x20   rpc_transport:\n      redis:\n        url: {url}\n{max}\
         \x20   result_transport:\n      redis:\n        url: {url}\n{max}\
         \x20   event_transport:\n      redis:\n        url: {url}\n{max}"
    );
    let path = dir.join(format!("limit-{}.yaml", limit.unwrap_or(0)));
    std::fs::write(&path, yaml).expect("write the configuration");
    path
}

/// A bus serving `ledger.pad(n)`, which returns `n` bytes of text.
fn ledger_server(config: &Path) -> Bus {
    let bus = named_bus(config, "ledger_service", "ledger-1");
    bus.register(
        ApiBuilder::new("ledger")
            .rpc("pad", ["n"], |kw: Kwargs| async move {
                let n = kw["n"].as_u64().unwrap_or(0) as usize;
                Ok::<_, String>(json!("x".repeat(n)))
            })
            .build(),
    )
    .expect("register ledger");
    bus.register(AuthServer::new(AuthService))
        .expect("register auth");
    bus
}

fn big_user(bytes: usize) -> UserRegistered {
    UserRegistered {
        username: "u".repeat(bytes),
        email: "u@example.com".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_before_sending_naming_member_size_and_setting() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let limited = config(&redis, dir.path(), Some(LIMIT));
    let client = ledger_server(&limited);

    let error = client.fire(big_user(3 * LIMIT)).await.unwrap_err();
    assert!(matches!(error, Error::MessageTooLarge { .. }), "{error:?}");
    let text = error.to_string();
    for part in [
        "auth.user_registered",
        "event_transport.redis.max_message_bytes",
        &format!("limit of {LIMIT} bytes"),
    ] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
    assert!(entries(&redis, PER_API).is_empty(), "nothing was fired");

    let error = client
        .call::<Value>(
            "ledger.pad",
            json!({"n": 1, "padding": "p".repeat(3 * LIMIT)}),
        )
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::MessageTooLarge { .. }), "{error:?}");
    assert!(text.contains("RPC call ledger.pad"), "{text}");
    assert!(
        text.contains("rpc_transport.redis.max_message_bytes"),
        "{text}"
    );
    assert_eq!(redis.list_len("ledger:rpc_queue"), 0, "nothing was queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_received_are_set_aside_and_good_traffic_carries_on() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let limited = config(&redis, dir.path(), Some(LIMIT));
    let generous = config(&redis, dir.path(), None);

    let server = ledger_server(&limited);
    let handled = Arc::new(Mutex::new(Vec::<usize>::new()));
    let noted = handled.clone();
    server
        .listen("audit", move |_: EventMessage, user: UserRegistered| {
            let noted = noted.clone();
            async move { noted.lock().unwrap().push(user.username.len()) }
        })
        .expect("listener");
    let worker = RunningWorker::serve(server);
    wait_for_group(&redis, PER_API, "ledger_service-audit").await;
    let client = ledger_server(&generous);

    // An event above the listener's limit is dead-lettered; the next one is handled.
    client.fire(big_user(3 * LIMIT)).await.expect("fire big");
    client.fire(big_user(10)).await.expect("fire small");
    eventually("the small event is handled", || {
        handled.lock().unwrap().as_slice() == [10]
    })
    .await;
    let dead = entries(&redis, &format!("{PER_API}:dead"));
    assert_eq!(dead.len(), 1);
    let reason = field(&dead[0].1, "error").expect("a reason");
    assert!(reason.contains("max_message_bytes"), "{reason}");
    assert!(reason.contains("auth.user_registered"), "{reason}");

    // A call above the worker's limit is dropped (its caller times out); the next is
    // answered.
    let error = client
        .call::<Value>(
            "ledger.pad",
            json!({"n": 1, "padding": "p".repeat(3 * LIMIT)}),
        )
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    let small: String = client
        .call("ledger.pad", json!({"n": 3}))
        .await
        .expect("a small call is answered");
    assert_eq!(small, "xxx");

    // A result above the worker's limit becomes a failure naming it.
    let error = client
        .call::<Value>("ledger.pad", json!({"n": 3 * LIMIT}))
        .await
        .unwrap_err();
    match &error {
        Error::Remote { code, message, .. } => {
            assert_eq!(code.as_deref(), Some("result_too_large"));
            assert!(message.contains("RPC result ledger.pad"), "{message}");
            assert!(
                message.contains("result_transport.redis.max_message_bytes"),
                "{message}"
            );
        }
        other => panic!("expected a remote failure, got {other:?}"),
    }
    assert!(!worker.is_finished());
    worker.stop().await.expect("the worker stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_fails_a_call_whose_result_is_above_its_own_limit() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let limited = config(&redis, dir.path(), Some(LIMIT));
    let generous = config(&redis, dir.path(), None);
    let worker = RunningWorker::serve(ledger_server(&generous));
    let client = ledger_server(&limited);

    let error = client
        .call::<Value>("ledger.pad", json!({"n": 3 * LIMIT}))
        .await
        .unwrap_err();
    match &error {
        Error::Remote { code, message, .. } => {
            assert_eq!(code.as_deref(), Some("result_too_large"));
            assert!(message.contains("caller's limit"), "{message}");
        }
        other => panic!("expected a failure naming the limit, got {other:?}"),
    }
    let small: String = client
        .call("ledger.pad", json!({"n": 3}))
        .await
        .expect("a small result arrives");
    assert_eq!(small, "xxx");
    worker.stop().await.expect("the worker stops cleanly");
}

/// A subscription hands out at most its byte budget (64 MiB as stored) of events that are
/// not settled yet, plus the one that crosses it: the rest wait in Redis until earlier ones
/// are settled, so large events cannot pile up in a process, and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_wait_in_redis_until_earlier_ones_are_settled() {
    const EVENT: usize = 7 << 20; // 7 MiB: nine fit under the 64 MiB budget, the tenth crosses it
    const FIRED: usize = 12;
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(&redis, dir.path(), None);
    let client = ledger_server(&config);
    for _ in 0..FIRED {
        client
            .fire(big_user(EVENT))
            .await
            .expect("fire a large event");
    }
    let audit = named_bus(&config, "audit_service", "audit-1");
    let options = SubscribeOptions::new().since(Since::Beginning);
    let mut events = audit
        .subscribe_with("audit", &["auth.user_registered"], options)
        .expect("subscribe");

    // Take what is handed out without settling any of it, until nothing more comes.
    let mut held = Vec::new();
    let mut wait = Duration::from_secs(30); // the first read parses ~70 MB (debug builds)
    while let Ok(Some(delivery)) = tokio::time::timeout(wait, events.next()).await {
        held.push(delivery.expect("a delivery"));
        wait = Duration::from_secs(5);
    }
    assert_eq!(
        held.len(),
        10,
        "nine events under the budget, and the one crossing it"
    );

    // Settling some lets the rest through.
    let mut ids: Vec<String> = held
        .iter()
        .filter_map(|delivery| delivery.message().native_id.clone())
        .collect();
    for delivery in held.drain(..3) {
        delivery.ack().await.expect("ack");
    }
    while ids.len() < FIRED {
        let delivery = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("the remaining events arrive once earlier ones are settled")
            .expect("the subscription is open")
            .expect("a delivery");
        ids.extend(delivery.message().native_id.clone());
        held.push(delivery);
    }
    for delivery in held {
        delivery.ack().await.expect("ack");
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), FIRED, "every event delivered once");
}
