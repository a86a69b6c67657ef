//! Events crossing between Rust and the Python Lightbus 1.1.2 peer, both ways, over a
//! private redis-server. Needs the peer (`scripts/setup-python-peer.sh`).

use std::time::Duration;

use lightbus::EventMessage;
use lightbus_test_support::apis::events_auth::{firer, user, UserDeleted, UserRegistered};
use lightbus_test_support::inspect::{wait_for_group, wait_until_acknowledged};
use lightbus_test_support::{
    named_bus, peer_dir, python_listener, Collector, PythonPeer, RunningWorker, TestRedis, PATIENCE,
};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

const PER_API: &str = "auth.*:stream";
/// True for the text form of a UUID version 1, as the peer uses for message ids.
fn is_uuid1(id: &str) -> bool {
    id.len() == 36 && id.as_bytes().get(14) == Some(&b'1') && id.matches('-').count() == 4
}

#[tokio::test]
async fn events_fired_by_python_reach_a_rust_listener() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let mail = named_bus(&config, "mail", "mail-1");
    let collector = Collector::default();
    let users = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, u) = (collector.clone(), users.clone());
    mail.listen(
        "welcome",
        move |message: EventMessage, user: UserRegistered| {
            c.push(message);
            u.lock().unwrap().push(user);
            async {}
        },
    )
    .expect("listener");
    let worker = RunningWorker::serve(mail);
    wait_for_group(&redis, PER_API, "mail-welcome").await;

    let peer = PythonPeer::spawn(
        &peer_dir(),
        &config,
        &["events_fire.py", "3"],
        &[
            ("LIGHTBUS_SERVICE_NAME", "auth_py"),
            ("LIGHTBUS_PROCESS_NAME", "py-1"),
        ],
    )
    .expect("start the Python peer");
    let output = tokio::task::spawn_blocking(move || peer.finish(PATIENCE))
        .await
        .expect("wait for the peer");
    assert!(
        output.status.success(),
        "the Python peer failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let fired: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert_eq!(fired.len(), 3, "the peer fired 3 events");

    let received = collector.wait_for(3).await;
    for (n, (message, fired)) in received.iter().zip(&fired).enumerate() {
        assert_eq!(message.id, fired["id"].as_str().unwrap_or_default());
        assert!(
            is_uuid1(&message.id),
            "peer ids are UUID1 text: {}",
            message.id
        );
        assert_eq!(message.canonical_name(), "auth.user_registered");
        assert_eq!(message.version, 1);
        assert_eq!(message.stream.as_deref(), Some(PER_API));
        assert_eq!(message.native_id.as_deref(), fired["native_id"].as_str());
        assert_eq!(
            users.lock().unwrap()[n],
            UserRegistered {
                username: format!("py{n}"),
                email: format!("py{n}@example.com"),
            }
        );
    }
    wait_until_acknowledged(&redis, PER_API, "mail-welcome").await;
    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn events_fired_by_rust_reach_a_python_listener() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let (_peer, mut lines) = python_listener(&redis, &config).await;

    let firer = firer(&config);
    let mut fired = Vec::new();
    for n in 0..3 {
        fired.push(firer.fire(user(n)).await.expect("fire"));
    }
    // An event the Python listener does not listen to, on the same stream: skipped.
    firer
        .fire(UserDeleted {
            username: "user0".into(),
        })
        .await
        .expect("fire");

    for (n, fired) in fired.iter().enumerate() {
        let line = tokio::time::timeout(PATIENCE, next_json(&mut lines))
            .await
            .expect("the Python listener prints each event")
            .expect("the Python listener is running");
        let received: Value = serde_json::from_str(&line).expect("a JSON line");
        assert_eq!(
            received,
            json!({
                "id": fired.id,
                "api_name": "auth",
                "event_name": "user_registered",
                "version": 1,
                "native_id": fired.native_id,
                "kwargs": {"username": format!("user{n}"), "email": format!("user{n}@example.com")},
            })
        );
    }
    wait_until_acknowledged(&redis, PER_API, "pymail-welcome").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), next_json(&mut lines))
            .await
            .is_err(),
        "nothing else delivered to the Python listener"
    );
}

/// The next line the peer printed that is a JSON object (it prints each event it handles as
/// one); `None` once its stdout is closed.
async fn next_json(lines: &mut UnboundedReceiver<String>) -> Option<String> {
    loop {
        let line = lines.recv().await?;
        if line.starts_with('{') {
            return Some(line);
        }
    }
}
