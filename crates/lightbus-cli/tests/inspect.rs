//! `lightbus inspect` end to end against a real Redis: every filter, the formats, internal
//! APIs, the cache, `--follow`, and that it never creates a consumer group.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use support::{json_lines, stderr, Fixture};

/// Two APIs' events (auth at version 1, billing at version 2) and one internal event.
struct Populated {
    fixture: Fixture,
    london: (String, String),
    paris: (String, String),
}

fn populated() -> Populated {
    let fixture = Fixture::new();
    let london = fixture.fire(
        "auth",
        1,
        "user_registered",
        json!({"username": "ada", "address": {"city": "London"}}),
    );
    let paris = fixture.fire(
        "auth",
        1,
        "user_registered",
        json!({"username": "bob", "address": {"city": "Paris"}}),
    );
    fixture.fire("billing", 2, "paid", json!({"amount": 10}));
    fixture.fire("billing", 2, "paid", json!({"amount": 200}));
    fixture.fire(
        "internal.state",
        1,
        "worker_started",
        json!({"process_name": "p"}),
    );
    Populated {
        fixture,
        london,
        paris,
    }
}

fn ids(output: &std::process::Output) -> Vec<String> {
    json_lines(output)
        .iter()
        .map(|line| line["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn filters_select_the_matching_events() {
    let bus = populated();
    let f = &bus.fixture;
    let count = |args: &[&str]| {
        let mut all = vec!["inspect"];
        all.extend_from_slice(args);
        let output = f.run(&all);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        json_lines(&output).len()
    };
    assert_eq!(count(&[]), 4, "internal APIs are left out by default");
    assert_eq!(count(&["--internal"]), 5);
    assert_eq!(
        count(&["--api", "internal.*"]),
        1,
        "unless --api names them"
    );
    assert_eq!(count(&["--api", "auth"]), 2);
    assert_eq!(count(&["--api", "bill*"]), 2);
    assert_eq!(count(&["--event", "user_*"]), 2);
    assert_eq!(count(&["-a", "auth", "-e", "paid"]), 0);
    assert_eq!(count(&["--version", ">=2"]), 2);
    assert_eq!(count(&["--version", "<2"]), 2);
    assert_eq!(count(&["--version", "1"]), 2);
    assert_eq!(count(&["--version", "!=1"]), 2);
    assert_eq!(count(&["--json-path", "address.city=London"]), 1);
    assert_eq!(count(&["--json-path", "amount>100"]), 1);
    assert_eq!(count(&["--json-path", "amount<=200"]), 2);
    assert_eq!(count(&["--id", &bus.paris.0]), 1);
    assert_eq!(count(&["--native-id", &bus.london.1, "--api", "auth"]), 1);

    // Oldest first, with the listen record.
    let output = f.run(&["inspect", "--api", "auth"]);
    assert_eq!(ids(&output), [bus.london.0.clone(), bus.paris.0.clone()]);
    let first = &json_lines(&output)[0];
    assert_eq!(first["native_id"], json!(bus.london.1));
    assert_eq!(first["kwargs"]["address"]["city"], "London");

    // Nothing was consumed: inspecting created no consumer group.
    for stream in ["auth.*:stream", "billing.*:stream"] {
        let groups = f.redis_value(redis::cmd("XINFO").arg("GROUPS").arg(stream));
        assert_eq!(groups, redis::Value::Array(vec![]), "{stream}");
    }
}

#[test]
fn formats_and_errors() {
    let bus = populated();
    let f = &bus.fixture;
    let output = f.run(&["inspect", "--api", "auth", "--format", "pretty"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("\n  \"api_name\": \"auth\""), "{text}");
    let values: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("a sequence of JSON documents");
    assert_eq!(values.len(), 2);

    let output = f.run(&[
        "inspect",
        "--api",
        "auth",
        "-F",
        "human",
        "-j",
        "address.city=Paris",
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(" auth.user_registered "), "{text}");
    assert!(
        text.contains("Metadata:") && text.contains("Data:"),
        "{text}"
    );
    assert!(
        text.contains(&bus.paris.1) && text.contains("Paris"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no colours when stdout is not a terminal"
    );

    let output = f.run(&["inspect", "--api", "nothing_here"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("nothing_here"),
        "{}",
        stderr(&output)
    );
    let output = f.run(&["inspect", "--version", ">=two"]);
    assert!(!output.status.success());
    let output = f.run(&["inspect", "--json-path", "no comparison"]);
    assert!(!output.status.success());
    let output = f.run(&["inspect", "--help"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("Examples:"));
}

#[test]
fn the_cache_keeps_events_redis_no_longer_has() {
    let bus = populated();
    let f = &bus.fixture;
    assert_eq!(json_lines(&f.run(&["inspect"])).len(), 4);
    let cache = f.home.path().join(".lightbus").join("inspect_cache");
    assert!(cache.is_dir(), "the cache lives under $HOME/.lightbus");

    // A later event is appended on the next run; nothing is duplicated.
    let (later, _) = f.fire("auth", 1, "user_registered", json!({"username": "cy"}));
    let output = f.run(&["inspect", "--api", "auth"]);
    assert_eq!(
        ids(&output),
        [bus.london.0.clone(), bus.paris.0.clone(), later.clone()]
    );

    // With the streams gone from Redis, the cache still answers.
    f.redis_value(
        redis::cmd("DEL")
            .arg("auth.*:stream")
            .arg("billing.*:stream"),
    );
    let output = f.run(&["inspect", "--cache-only", "--api", "auth"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        ids(&output),
        [bus.london.0.clone(), bus.paris.0.clone(), later]
    );
    let output = f.run(&["inspect", "--cache-only", "-j", "amount=200"]);
    assert_eq!(json_lines(&output).len(), 1);

    // An empty cache is an error with --cache-only.
    let other_home = tempfile::tempdir().expect("tempdir");
    let output = f
        .lightbus()
        .env("HOME", other_home.path())
        .args(["inspect", "--cache-only"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(stderr(&output).contains("cache"), "{}", stderr(&output));
}

#[test]
fn the_cache_of_another_redis_instance_is_discarded() {
    let mut fixture = Fixture::new();
    fixture.fire("auth", 1, "user_registered", json!({"username": "ada"}));
    fixture.fire("auth", 1, "user_registered", json!({"username": "bob"}));
    assert_eq!(json_lines(&fixture.run(&["inspect"])).len(), 2);

    // Redis restarts empty (a new run_id); the one event fired since is newer than the
    // cached ones, so only the instance's identity tells the cache is of another Redis.
    fixture.redis.restart();
    let (later, _) = fixture.fire("auth", 1, "user_registered", json!({"username": "cy"}));
    let output = fixture.run(&["inspect"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        ids(&output),
        std::slice::from_ref(&later),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("another Redis instance"),
        "{}",
        stderr(&output)
    );
    // And the rebuilt cache is of this instance: the next run prints the same.
    assert_eq!(ids(&fixture.run(&["inspect"])), [later]);
}

#[test]
fn follow_prints_new_events_as_they_come() {
    let bus = populated();
    let f = &bus.fixture;
    let mut child = f
        .lightbus()
        .args(["inspect", "--api", "auth", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines = support::line_reader(child.stdout.take().expect("stdout"));
    let next = || -> Value {
        let line = lines
            .recv_timeout(Duration::from_secs(15))
            .expect("a line within 15 s");
        serde_json::from_str(&line).expect("JSON")
    };
    assert_eq!(next()["id"], json!(bus.london.0));
    assert_eq!(next()["id"], json!(bus.paris.0));
    // Events fired meanwhile (and after) are printed; other APIs' are not.
    f.fire("billing", 2, "paid", json!({"amount": 1}));
    let (new, _) = f.fire("auth", 1, "user_registered", json!({"username": "dee"}));
    assert_eq!(next()["id"], json!(new));
    let _ = child.kill();
    let _ = child.wait();
}
