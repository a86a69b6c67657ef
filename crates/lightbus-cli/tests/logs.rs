//! Log formats: `--log-format json` and `LIGHTBUS_LOG_FORMAT=json` write one JSON object per
//! line with the fields of the spans the line was written in; text stays the default.

mod support;

use serde_json::Value;
use support::Fixture;

/// Runs a call of `auth.check_password` with `command`.
fn call(mut command: std::process::Command) -> std::process::Output {
    command
        .args([
            "call",
            "auth.check_password",
            "username=admin",
            "password=secret",
        ])
        .output()
        .expect("runs")
}

#[test]
fn json_logs_are_one_object_per_line_with_span_fields() {
    let fixture = Fixture::new();
    let _serving = fixture.serve_auth();
    for flag in [true, false] {
        let mut command = fixture.lightbus();
        command.env("RUST_LOG", "debug");
        if flag {
            command.args(["--log-format", "json"]);
        } else {
            command.env("LIGHTBUS_LOG_FORMAT", "json");
        }
        let output = call(command);
        assert!(output.status.success(), "{}", support::stderr(&output));
        let stderr = support::stderr(&output);
        let lines: Vec<Value> = stderr
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        let answered = lines
            .iter()
            .find(|line| line["fields"]["message"] == "RPC answered")
            .unwrap_or_else(|| panic!("the call's debug line:\n{stderr}"));
        assert_eq!(answered["level"], "DEBUG");
        assert!(answered["timestamp"].is_string());
        assert_eq!(answered["span"]["name"], "lightbus.call");
        assert_eq!(answered["span"]["api"], "auth");
        assert_eq!(answered["span"]["procedure"], "check_password");
    }

    let mut command = fixture.lightbus();
    command.env("RUST_LOG", "debug");
    let text = call(command);
    let stderr = support::stderr(&text);
    assert!(stderr.contains("RPC answered"), "{stderr}");
    assert!(
        stderr
            .lines()
            .all(|line| serde_json::from_str::<Value>(line).is_err()),
        "text by default: {stderr}"
    );
}
