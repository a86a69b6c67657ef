//! Events crossing between Rust and the Python Lightbus 1.1.2 peer, both ways, over a
//! private redis-server. Needs the peer (`scripts/setup-python-peer.sh`).

mod events_support;

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use events_support::*;
use lightbus::EventMessage;
use lightbus_test_support::{PythonPeer, TestRedis};
use serde_json::{json, Value};

const PER_API: &str = "auth.*:stream";
const WAIT: Duration = Duration::from_secs(30);

fn peer_scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peer")
}

/// True for the text form of a UUID version 1, as the peer uses for message ids.
fn is_uuid1(id: &str) -> bool {
    id.len() == 36 && id.as_bytes().get(14) == Some(&b'1') && id.matches('-').count() == 4
}

#[tokio::test]
async fn events_fired_by_python_reach_a_rust_listener() {
    let redis = TestRedis::start();
    let config = config(&redis, "");
    let mail = bus(&config, "mail", "mail-1");
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
    let worker = RunningWorker::start(mail);
    wait_for_group(&redis, PER_API, "mail-welcome").await;

    let peer = PythonPeer::spawn(
        &peer_scripts(),
        &config,
        &["events_fire.py", "3"],
        &[
            ("LIGHTBUS_SERVICE_NAME", "auth_py"),
            ("LIGHTBUS_PROCESS_NAME", "py-1"),
        ],
    )
    .expect("start the Python peer");
    let output = tokio::task::spawn_blocking(move || peer.finish(WAIT))
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

    let received = collector.wait_for(3, WAIT).await;
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
    wait_until_acknowledged(&redis, "mail-welcome").await;
    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn events_fired_by_rust_reach_a_python_listener() {
    let redis = TestRedis::start();
    let config = config(&redis, "");
    let mut peer = PythonPeer::spawn(
        &peer_scripts(),
        &config,
        &["events_listen.py", "welcome"],
        &[
            ("LIGHTBUS_SERVICE_NAME", "pymail"),
            ("LIGHTBUS_PROCESS_NAME", "py-1"),
        ],
    )
    .expect("start the Python listener");
    let mut lines = stdout_lines(&mut peer);
    // 1.1.2 listens from `$` only: fire once its group exists.
    wait_for_group(&redis, PER_API, "pymail-welcome").await;

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
        let line = tokio::time::timeout(WAIT, lines.recv())
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
    wait_until_acknowledged(&redis, "pymail-welcome").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), lines.recv())
            .await
            .is_err(),
        "nothing else delivered to the Python listener"
    );
}

/// The peer's stdout, line by line (read on a thread; its stderr is discarded).
fn stdout_lines(peer: &mut PythonPeer) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let child = peer.child();
    let stdout = child.stdout.take().expect("the peer's stdout is piped");
    if let Some(stderr) = child.stderr.take() {
        // Drain stderr so the peer never blocks on a full pipe.
        std::thread::spawn(move || for _ in std::io::BufReader::new(stderr).lines() {});
    }
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with('{') && sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Waits until `group` has no unacknowledged entries on the per-API stream.
async fn wait_until_acknowledged(redis: &TestRedis, group: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while pending_count(redis, PER_API, group) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{group} left entries unacknowledged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
