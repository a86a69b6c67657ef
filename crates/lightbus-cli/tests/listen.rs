//! `lightbus listen` end to end against a real Redis: JSON lines, consumer groups and
//! acknowledgements, listener names, `--since`, errors.

mod support;

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use support::{json_lines, stderr, Fixture};

#[test]
fn replays_a_backlog_as_json_lines_and_acknowledges_it() {
    let fixture = Fixture::new();
    let mut fired = Vec::new();
    for n in 0..5 {
        fired.push(fixture.fire(
            "auth",
            1,
            "user_registered",
            json!({"username": format!("user{n}"), "address": {"city": "London"}}),
        ));
    }
    // Another event of the same stream, which this listener does not want.
    fixture.fire("auth", 1, "user_deleted", json!({"username": "user0"}));
    let output = fixture.run(&[
        "listen",
        "auth.user_registered",
        "--since",
        "0",
        "--count",
        "5",
        "--listener-name",
        "replay",
        "--service-name",
        "cli",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 5);
    for (n, (line, (id, native_id))) in lines.iter().zip(&fired).enumerate() {
        let keys: Vec<&str> = line
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "api_name",
                "event_name",
                "version",
                "native_id",
                "kwargs"
            ]
        );
        assert_eq!(line["id"], json!(id));
        assert_eq!(line["native_id"], json!(native_id));
        assert_eq!(line["api_name"], "auth");
        assert_eq!(line["event_name"], "user_registered");
        assert_eq!(line["version"], 1);
        assert_eq!(
            line["kwargs"],
            json!({"username": format!("user{n}"), "address": {"city": "London"}})
        );
    }
    // A real listener: its group exists, and everything it printed is acknowledged.
    let mut connection = fixture.redis.connection();
    let pending: (usize, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg("auth.*:stream")
        .arg("cli-replay")
        .query(&mut connection)
        .expect("the group cli-replay exists");
    assert_eq!(pending.0, 0, "every printed event was acknowledged");

    // The same listener name resumes after what it acknowledged: only the new event.
    let child = fixture
        .lightbus()
        .args([
            "listen",
            "auth.user_registered",
            "--since",
            "0",
            "--count",
            "1",
            "-l",
            "replay",
            "-s",
            "cli",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (new_id, _) = fixture.fire("auth", 1, "user_registered", json!({"username": "late"}));
    let output = support::wait_with_timeout(child, Duration::from_secs(20));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1, "{}", stderr(&output));
    assert_eq!(lines[0]["id"], json!(new_id));
}

#[test]
fn each_listener_name_gets_every_event() {
    let fixture = Fixture::new();
    let ids: Vec<String> = (0..3)
        .map(|n| fixture.fire("billing", 2, "paid", json!({"amount": n})).0)
        .collect();
    for name in ["ledger", "mailer"] {
        let output = fixture.run(&[
            "listen",
            "billing.paid",
            "--since",
            "0",
            "--count",
            "3",
            "--listener-name",
            name,
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let got: Vec<String> = json_lines(&output)
            .iter()
            .map(|line| line["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(got, ids, "listener {name}");
        assert!(json_lines(&output).iter().all(|line| line["version"] == 2));
    }
}

#[test]
fn since_a_time_skips_older_events_and_new_listeners_start_at_the_end() {
    let fixture = Fixture::new();
    fixture.fire("auth", 1, "user_registered", json!({"username": "old"}));
    std::thread::sleep(Duration::from_millis(50));
    let cut = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    std::thread::sleep(Duration::from_millis(50));
    let (newer, _) = fixture.fire("auth", 1, "user_registered", json!({"username": "new"}));
    let output = fixture.run(&[
        "listen",
        "auth.user_registered",
        "--since",
        &format!("{cut:.3}"),
        "--count",
        "1",
        "-l",
        "by-time",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines[0]["id"], json!(newer));

    // Without --since, a new listener prints only events fired after it started.
    let mut child = fixture
        .lightbus()
        .args([
            "listen",
            "auth.user_registered",
            "-l",
            "fresh",
            "--count",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait for the group to exist, then fire.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let groups: redis::Value =
            fixture.redis_value(redis::cmd("XINFO").arg("GROUPS").arg("auth.*:stream"));
        if format!("{groups:?}").contains("fresh") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no group");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (latest, _) = fixture.fire("auth", 1, "user_registered", json!({"username": "x"}));
    let lines = support::line_reader(child.stdout.take().expect("stdout"));
    let first = lines
        .recv_timeout(Duration::from_secs(15))
        .expect("a line within 15 s");
    let line: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(line["id"], json!(latest));
    let _ = support::wait_with_timeout(child, Duration::from_secs(10));
}

#[test]
fn bad_arguments_are_errors_on_stderr() {
    let fixture = Fixture::new();
    let output = fixture.run(&["listen", "nodot"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("api.member"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty());

    let output = fixture.run(&["listen", "auth.x", "--since", "soon"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("soon"), "{}", stderr(&output));

    let output = fixture.run(&["listen", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("Examples:") && help.contains("--since"),
        "{help}"
    );
}

#[test]
fn events_beyond_count_come_back_to_the_same_consumer() {
    let fixture = Fixture::new();
    let ids: Vec<String> = (0..5)
        .map(|n| {
            fixture
                .fire("auth", 1, "user_registered", json!({"n": n}))
                .0
        })
        .collect();
    // One consumer (same service and process name) run twice: whatever the first run read
    // beyond --count stays unacknowledged and is its first delivery when it comes back.
    let listen = |count: &str| {
        let output = fixture.run(&[
            "listen",
            "auth.user_registered",
            "--since",
            "0",
            "--count",
            count,
            "-l",
            "resume",
            "-s",
            "cli",
            "-p",
            "same-consumer",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        json_lines(&output)
            .iter()
            .map(|line| line["id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<String>>()
    };
    assert_eq!(listen("2"), ids[..2]);
    assert_eq!(
        listen("3"),
        ids[2..],
        "nothing lost or repeated at the --count boundary"
    );
    let pending: (usize, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg("auth.*:stream")
        .arg("cli-resume")
        .query(&mut fixture.redis.connection())
        .expect("XPENDING");
    assert_eq!(pending.0, 0, "everything printed was acknowledged");
}

#[test]
fn sigterm_stops_after_printing_and_acknowledging_what_was_read() {
    let fixture = Fixture::new();
    let mut child = fixture
        .lightbus()
        .args([
            "listen",
            "auth.user_registered",
            "--since",
            "0",
            "-l",
            "stop",
            "-s",
            "cli",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines = support::line_reader(child.stdout.take().expect("stdout"));
    let (id, _) = fixture.fire("auth", 1, "user_registered", json!({"username": "a"}));
    let first = lines
        .recv_timeout(Duration::from_secs(15))
        .expect("a line within 15 s");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&first).expect("JSON")["id"],
        json!(id)
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let output = support::wait_with_timeout(child, Duration::from_secs(15));
    assert!(
        output.status.success(),
        "SIGTERM ends listen with 0: {:?} {}",
        output.status,
        stderr(&output)
    );
    let pending: (usize, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg("auth.*:stream")
        .arg("cli-stop")
        .query(&mut fixture.redis.connection())
        .expect("XPENDING");
    assert_eq!(
        pending.0, 0,
        "what was printed was acknowledged before exiting"
    );
}
