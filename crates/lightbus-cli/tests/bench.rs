//! `lightbus bench`, end to end against a private redis-server: each load scenario runs,
//! does what it says on the bus, and ends its stdout with one JSON summary. A smoke test of
//! the tools, not a measurement: nothing here is timed.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use lightbus_test_support::{wait_until, TestRedis};
use serde_json::Value;

const LIGHTBUS: &str = env!("CARGO_BIN_EXE_lightbus");

fn lightbus(config: &Path) -> Command {
    let mut command = Command::new(LIGHTBUS);
    command
        .env("LIGHTBUS_CONFIG", config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs a load scenario to the end and returns its JSON summary (the last stdout line).
fn run_scenario(config: &Path, args: &[&str]) -> Value {
    let output: Output = lightbus(config)
        .args(args)
        .output()
        .expect("run the lightbus binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "lightbus {args:?} failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let summary: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last stdout line is not JSON ({e}): {last:?}"));
    assert!(
        stderr.contains("requests"),
        "a human summary goes to stderr: {stderr}"
    );
    summary
}

/// Checks the fields every summary has, and that the latencies are ordered.
fn check_summary(summary: &Value, scenario: &str, requests: u64, concurrency: u64) {
    assert_eq!(summary["scenario"], scenario, "{summary}");
    assert_eq!(summary["requests"], requests, "{summary}");
    assert_eq!(summary["concurrency"], concurrency, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    let number = |key: &str| {
        summary[key]
            .as_f64()
            .unwrap_or_else(|| panic!("`{key}` is not a number in {summary}"))
    };
    assert!(number("seconds") > 0.0, "{summary}");
    assert!(number("per_sec") > 0.0, "{summary}");
    let (p50, p90, p99, max) = (
        number("p50_ms"),
        number("p90_ms"),
        number("p99_ms"),
        number("max_ms"),
    );
    assert!(
        0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max,
        "latencies out of order: {summary}"
    );
}

/// `bench serve` as a child process, killed on drop if it still runs (a failed test).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_bench_scenario_runs_and_ends_with_a_json_summary() {
    let redis = TestRedis::start();
    let config = redis.config().write();

    let ping = run_scenario(&config, &["bench", "ping", "-n", "50", "--warmup", "5"]);
    check_summary(&ping, "ping", 50, 1);

    let mut server = Server(
        lightbus(&config)
            .args(["bench", "serve"])
            .spawn()
            .expect("start bench serve"),
    );
    wait_until(
        "bench serve waits for calls",
        Duration::from_secs(20),
        || redis.clients_running("blmpop") >= 1,
    );
    let rpc = run_scenario(
        &config,
        &["bench", "rpc", "-n", "60", "-c", "3", "--warmup", "5"],
    );
    check_summary(&rpc, "rpc", 60, 3);

    // SIGTERM: the server stops taking calls and exits cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
    let mut exited = None;
    wait_until("bench serve exits", Duration::from_secs(20), || {
        exited = server.0.try_wait().expect("poll bench serve");
        exited.is_some()
    });
    assert!(
        exited.is_some_and(|status| status.success()),
        "bench serve exits 0 on SIGTERM: {exited:?}"
    );

    let fire = run_scenario(
        &config,
        &["bench", "fire", "-n", "70", "-c", "4", "--warmup", "5"],
    );
    check_summary(&fire, "fire", 70, 4);
    let stored: usize = redis::cmd("XLEN")
        .arg("benchmark.*:stream")
        .query(&mut redis.connection())
        .expect("XLEN");
    assert_eq!(
        stored, 75,
        "every fired event (warm-up included) is in the stream"
    );
}
