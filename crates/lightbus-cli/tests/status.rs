//! `lightbus status` against a real Redis: APIs with schema age, workers from
//! `internal.state`, queues, consumer groups with lag and pending, dead letters.

mod support;

use serde_json::{json, Value};
use support::Fixture;

#[test]
fn status_shows_apis_workers_groups_lag_and_dead_letters() {
    let fixture = Fixture::with_root_yaml("plugins:\n  internal_state:\n    enabled: true\n");
    let _serving = fixture.serve_auth();
    // A group that read two entries and acknowledged one; three more wait for it.
    fixture.create_group("auth.*:stream", "billing-on_signup");
    for n in 0..5 {
        fixture.fire(
            "auth",
            1,
            "user_registered",
            json!({ "username": format!("u{n}") }),
        );
    }
    fixture.redis_value(
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("billing-on_signup")
            .arg("billing-1")
            .arg("COUNT")
            .arg(2)
            .arg("STREAMS")
            .arg("auth.*:stream")
            .arg(">"),
    );
    fixture.redis_value(
        redis::cmd("XADD")
            .arg("auth.*:stream:dead")
            .arg("*")
            .arg("error")
            .arg("bad"),
    );

    let output = fixture.run(&["status", "--json"]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let status: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let auth = status["apis"]
        .as_array()
        .and_then(|apis| apis.iter().find(|api| api["name"] == "auth"))
        .unwrap_or_else(|| panic!("auth listed: {status}"));
    assert_eq!(auth["rpcs"], json!(["check_password"]));
    let age = auth["schema_age_seconds"].as_f64().expect("a schema age");
    assert!((0.0..60.0).contains(&age), "{age}");
    let worker = &status["workers"][0];
    assert_eq!(worker["state"], "alive", "{status}");
    assert_eq!(worker["service_name"], "auth_service");
    assert_eq!(worker["api_names"], json!(["auth"]));
    let group = status["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["group"] == "billing-on_signup"))
        .unwrap_or_else(|| panic!("the group: {status}"));
    assert_eq!(group["lag"], 3, "{group}");
    assert_eq!(group["pending"], 2, "{group}");
    assert_eq!(group["consumers"][0]["name"], "billing-1");
    let stream = status["streams"]
        .as_array()
        .and_then(|streams| streams.iter().find(|s| s["stream"] == "auth.*:stream"))
        .expect("the auth stream");
    assert_eq!(stream["dead_letters"], 1);

    let table = fixture.run(&["status"]);
    let text = String::from_utf8_lossy(&table.stdout);
    for expected in [
        "auth",
        "auth_service",
        "alive",
        "billing-on_signup",
        "billing-1",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
}
