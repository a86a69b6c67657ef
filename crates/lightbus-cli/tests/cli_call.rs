//! `lightbus call` and `lightbus version`, end to end: the built binary run as a child
//! process against a private redis-server, calling a Rust worker in this process and a
//! Python Lightbus 1.1.2 worker (`lightbus run` on the peer's `rpc_worker.py`).
//!
//! The Python tests need the peer's virtualenv (`scripts/setup-python-peer.sh`); without it
//! they fail with that hint rather than pass without checking anything.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use lightbus::api::{ApiBuilder, Kwargs};
use lightbus::worker::Worker;
use lightbus::Bus;
use lightbus_test_support::{PythonPeer, TestRedis};
use serde_json::{json, Value};

const LIGHTBUS: &str = env!("CARGO_BIN_EXE_lightbus");

/// Runs the `lightbus` binary with `LIGHTBUS_CONFIG` set to `config` (when given).
async fn lightbus(config: Option<&Path>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(LIGHTBUS);
    command
        .args(args)
        .env_remove("LIGHTBUS_CONFIG")
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    if let Some(config) = config {
        command.env("LIGHTBUS_CONFIG", config);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("lightbus finished within a minute")
        .expect("run the lightbus binary");
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output
        .status
        .code()
        .expect("exited, not killed by a signal")
}

/// The JSON on stdout of a successful call.
fn result(output: &Output) -> Value {
    assert_eq!(
        code(output),
        0,
        "the call failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout(output),
        stderr(output)
    );
    serde_json::from_str(&stdout(output)).expect("stdout is one JSON document")
}

/// A worker serving the `calc` API on `redis` until the returned sender is dropped.
fn rust_worker(config: &Path) -> tokio::sync::oneshot::Sender<()> {
    let bus = Bus::builder()
        .config_file(config)
        .build()
        .expect("bus from the test config");
    bus.register(
        ApiBuilder::new("calc")
            .rpc("add", ["a", "b"], |kw: Kwargs| async move {
                let a = kw["a"].as_i64().ok_or("a must be an integer")?;
                let b = kw["b"].as_i64().ok_or("b must be an integer")?;
                Ok::<_, &str>(json!(a + b))
            })
            .rpc("echo", ["value"], |kw: Kwargs| async move {
                Ok::<_, &str>(kw["value"].clone())
            })
            .rpc("describe", ["name", "tags"], |kw: Kwargs| async move {
                Ok::<_, &str>(json!({"name": kw["name"], "tags": kw["tags"]}))
            })
            .rpc("boom", [], |_kw: Kwargs| async move {
                if true {
                    panic!("kaboom");
                }
                Ok::<Value, &str>(Value::Null)
            })
            .build(),
    )
    .expect("register calc");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        Worker::new(bus)
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_a_rust_worker_with_pairs_or_a_json_object() {
    let redis = TestRedis::start();
    let config = redis.config_file("");
    let _worker = rust_worker(&config);

    let output = lightbus(Some(&config), &["call", "calc.add", "a=2", "b=40"]).await;
    assert_eq!(result(&output), json!(42));
    assert_eq!(stdout(&output), "42\n");

    let output = lightbus(Some(&config), &["call", "calc.add", r#"{"a": 1, "b": 2}"#]).await;
    assert_eq!(result(&output), json!(3));

    // Values that are not JSON are strings; JSON values keep their type; pretty by default.
    let output = lightbus(
        Some(&config),
        &[
            "call",
            "calc.describe",
            "name=ada",
            r#"tags=["x", 1, null]"#,
        ],
    )
    .await;
    assert_eq!(
        result(&output),
        json!({"name": "ada", "tags": ["x", 1, null]})
    );
    assert!(
        stdout(&output).contains("\n  \"name\": \"ada\""),
        "pretty-printed: {}",
        stdout(&output)
    );

    let output = lightbus(
        Some(&config),
        &["call", "calc.describe", "name=ada", "tags=[]", "--compact"],
    )
    .await;
    assert_eq!(stdout(&output), "{\"name\":\"ada\",\"tags\":[]}\n");

    // The argument grammar shared with `lightbus shell`: Python literals and quoted text.
    for (argument, printed) in [
        ("value=True", "true\n"),
        ("value=None", "null\n"),
        ("value='Ada Lovelace'", "\"Ada Lovelace\"\n"),
        (r#"value="007""#, "\"007\"\n"),
        ("value=007", "\"007\"\n"),
    ] {
        let output = lightbus(Some(&config), &["call", "calc.echo", argument, "--compact"]).await;
        assert_eq!(stdout(&output), printed, "{argument}: {}", stderr(&output));
    }

    // Large integers and precise decimals survive the round trip unchanged.
    let output = lightbus(
        Some(&config),
        &[
            "call",
            "calc.echo",
            "value=123456789012345678901234567890.000000000000000000001",
            "--compact",
        ],
    )
    .await;
    assert_eq!(
        stdout(&output),
        "123456789012345678901234567890.000000000000000000001\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_failures_exit_1_with_the_message_and_the_trace_when_verbose() {
    let redis = TestRedis::start();
    let config = redis.config_file("");
    let _worker = rust_worker(&config);

    let output = lightbus(Some(&config), &["call", "calc.add", "a=x", "b=1"]).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert_eq!(stdout(&output), "", "nothing on stdout on failure");
    assert!(
        stderr(&output).contains("calc.add() failed on the worker: a must be an integer"),
        "{}",
        stderr(&output)
    );

    let output = lightbus(Some(&config), &["call", "calc.boom"]).await;
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("kaboom"), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("remote trace"),
        "{}",
        stderr(&output)
    );

    let output = lightbus(Some(&config), &["call", "calc.boom", "--verbose"]).await;
    assert_eq!(code(&output), 1);
    let text = stderr(&output);
    assert!(
        text.contains("remote trace:\npanic in calc.boom(): kaboom"),
        "{text}"
    );
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("error: "),
        "the summary line comes last: {text}"
    );

    // An unknown procedure or a missing argument is caught against the schema the worker
    // published, before anything is sent: a usage error, not a timeout.
    let output = lightbus(Some(&config), &["call", "calc.nope"]).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the schema of the `calc` API has no RPC named `nope`"),
        "{}",
        stderr(&output)
    );
    let output = lightbus(Some(&config), &["call", "calc.add", "a=1"]).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("\"b\" is a required property"),
        "{}",
        stderr(&output)
    );

    // With validation off, the worker itself answers that it has no such procedure.
    let unvalidated = redis.config_file("    validate: false\n");
    let output = lightbus(Some(&unvalidated), &["call", "calc.nope"]).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("has no procedure named `nope`"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_usage_errors_and_an_unreachable_redis_have_their_own_exit_codes() {
    let redis = TestRedis::start();
    let config = redis.config_file("    rpc_timeout: 30\n");

    // Nobody serves `ghost`: --timeout overrides the configured 30 seconds.
    let started = std::time::Instant::now();
    let output = lightbus(
        Some(&config),
        &["call", "ghost.anything", "x=1", "--timeout", "0.5"],
    )
    .await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the call to ghost.anything() did not complete within 500ms"),
        "{}",
        stderr(&output)
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "--timeout obeyed"
    );

    for args in [
        &["call", "calc.add", "a"][..],
        &["call", "calc.add", "a=1", "a=2"],
        &["call", "calc.add", "{\"a\":"],
        &["call", "noapi"],
        &["call", "calc.add", "--timeout", "0"],
        &["call"],
    ] {
        let output = lightbus(Some(&config), args).await;
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), "", "{args:?}");
        assert!(!stderr(&output).is_empty(), "{args:?}");
    }

    let dir = tempfile::tempdir().expect("temporary directory");
    let unreachable = dir.path().join("unreachable.yaml");
    let url = "redis://127.0.0.1:1/0";
    std::fs::write(
        &unreachable,
        format!(
            "apis:\n  default:\n    rpc_transport:\n      redis:\n        url: {url}\n    \
             result_transport:\n      redis:\n        url: {url}\n"
        ),
    )
    .expect("write config");
    let output = lightbus(Some(&unreachable), &["call", "calc.add", "a=1", "b=2"]).await;
    assert_eq!(code(&output), 4, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Connection refused"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn version_prints_the_crate_version() {
    let output = lightbus(None, &["version"]).await;
    assert_eq!(code(&output), 0);
    assert_eq!(
        stdout(&output),
        format!("{}\n", lightbus_cli::version::VERSION)
    );

    let output = lightbus(None, &["--version"]).await;
    assert_eq!(code(&output), 0);
    assert_eq!(
        stdout(&output),
        format!("lightbus {}\n", lightbus_cli::version::VERSION)
    );

    let output = lightbus(None, &["version", "--long"]).await;
    assert!(
        stdout(&output).contains("wire-compatible with Python Lightbus 1.1.2"),
        "{}",
        stdout(&output)
    );

    // It needs no configuration: a missing file is not read.
    let output = lightbus(Some(Path::new("/nonexistent/lightbus.yaml")), &["version"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    let output = lightbus(None, &["--help"]).await;
    let help = stdout(&output);
    for command in ["run", "call", "version"] {
        assert!(help.contains(command), "{command} in {help}");
    }
}

/// `lightbus call` against a Python worker: `lightbus run` on the peer's `rpc_worker.py`
/// (in `crates/lightbus/tests/peer/`), which serves the API `py_rpc`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_a_python_worker() {
    let redis = TestRedis::start();
    let config = redis.config_file("");
    let worker = PythonPeer::lightbus_run(&config, "rpc_worker");

    // The first call waits for the worker to start (the call waits in its queue meanwhile).
    let output = lightbus(
        Some(&config),
        &[
            "call",
            "py_rpc.check_password",
            "username=admin",
            "password=secret",
            "--timeout",
            "40",
        ],
    )
    .await;
    assert_eq!(
        code(&output),
        0,
        "the call to the Python worker failed: {}\n{}",
        stderr(&output),
        worker.output_so_far()
    );
    assert_eq!(result(&output), json!(true));

    let output = lightbus(
        Some(&config),
        &[
            "call",
            "py_rpc.echo",
            r#"{"value": {"name": "ada", "tags": ["x", 1, null], "big": 123456789012345678901234567890}}"#,
            "--compact",
        ],
    )
    .await;
    assert_eq!(
        result(&output),
        json!({"name": "ada", "tags": ["x", 1, null], "big": 123456789012345678901234567890_u128})
    );
    // One line, the big integer exact (the peer may order keys its own way).
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("\"big\":123456789012345678901234567890"),
        "{text}"
    );

    let output = lightbus(Some(&config), &["call", "py_rpc.fail", "reason=nope"]).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("bad input: nope"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("Traceback"),
        "{}",
        stderr(&output)
    );

    let output = lightbus(
        Some(&config),
        &["call", "py_rpc.fail", "reason=nope", "--verbose"],
    )
    .await;
    assert_eq!(code(&output), 1);
    let text = stderr(&output);
    assert!(text.contains("remote trace:"), "{text}");
    assert!(text.contains("Traceback"), "the Python trace: {text}");
    assert!(text.contains("ValueError"), "{text}");

    // A Python procedure slower than --timeout: exit 3.
    let output = lightbus(
        Some(&config),
        &["call", "py_rpc.sleep", "seconds=3", "--timeout", "0.5"],
    )
    .await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
}
