//! Helpers shared by the RPC integration tests that need the `lightbus` crate itself (the
//! real parts — Redis and the Python peer — live in `lightbus-test-support`).
//!
//! Each test file includes this module with `mod support;` and uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lightbus::worker::Worker;
use lightbus::Bus;
use lightbus_test_support::{line_after, PythonPeer};
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Upper bound for anything a test waits on, so a broken build fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A bus client (one "process") configured by `config`.
pub fn bus(config: &Path) -> Bus {
    Bus::builder()
        .config_file(config)
        .build()
        .expect("bus from the test config")
}

/// A worker running in a background task until [`shutdown`](Self::shutdown) or drop.
pub struct RunningWorker {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<lightbus::Result<()>>,
}

impl RunningWorker {
    /// Starts `worker` (e.g. `Worker::new(bus).max_concurrency(4)`).
    pub fn start(worker: Worker) -> RunningWorker {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(worker.run(async {
            let _ = stopped.await;
        }));
        RunningWorker {
            stop: Some(stop),
            task,
        }
    }

    /// Starts a worker with default settings for `bus`.
    pub fn serve(bus: Bus) -> RunningWorker {
        RunningWorker::start(Worker::new(bus))
    }

    /// Sends the shutdown signal without waiting (as SIGTERM would).
    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// True once the worker's `run` returned.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Signals shutdown and waits for `run` to return; its result.
    pub async fn shutdown(mut self) -> lightbus::Result<()> {
        self.signal_shutdown();
        let task = &mut self.task;
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the worker stops within the test's patience")
            .expect("the worker task did not panic")
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.signal_shutdown();
    }
}

/// Polls `condition` until it holds, without blocking the runtime; panics naming `what`
/// after [`PATIENCE`]. An upper bound only: no test asserts on how long things take.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {PATIENCE:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Calls `target` (`api.procedure`) from the Python peer with `kwargs` and returns the
/// script's outcome: `{"result": …, "equal_to": {…}}` or `{"error": …, "message": …}`.
pub async fn python_call(config: &Path, target: &str, kwargs: &Value) -> Value {
    let caller = PythonPeer::script(config, "rpc_call.py", &[target, &kwargs.to_string()]);
    python_outcome(caller).await
}

/// Waits for a running `rpc_call.py` and parses its outcome.
pub async fn python_outcome(caller: PythonPeer) -> Value {
    let output = tokio::task::spawn_blocking(move || caller.finish(PATIENCE))
        .await
        .expect("wait for the Python caller");
    let line = line_after(&output, "OUTCOME");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad outcome line {line:?}: {e}"))
}

/// Parses JSON text keeping every number exactly as written (serde_json's
/// `arbitrary_precision`), so tests can send numbers no `f64` or `u64` holds.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("valid JSON in the test")
}

/// Asserts that two JSON values are the same data: integers must match digit for digit
/// (big ones included), other numbers must be the same `f64` (`-2.5e-7` and Python's
/// `-2.5e-07` are the same float written two ways), everything else must be equal.
pub fn assert_same_json(actual: &Value, expected: &Value) {
    if let Err(path) = same_json(actual, expected, "$") {
        panic!("JSON differs at {path}\n  actual:   {actual}\n  expected: {expected}");
    }
}

fn same_json(actual: &Value, expected: &Value, path: &str) -> Result<(), String> {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => {
            let (a_text, b_text) = (a.to_string(), b.to_string());
            let is_integer = |text: &str| !text.contains(['.', 'e', 'E']);
            let same = if is_integer(&a_text) && is_integer(&b_text) {
                a_text == b_text
            } else {
                a.as_f64().is_some() && a.as_f64() == b.as_f64()
            };
            same.then_some(())
                .ok_or_else(|| format!("{path} ({a_text} vs {b_text})"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (a, b))| same_json(a, b, &format!("{path}[{i}]"))),
        (Value::Object(a), Value::Object(b)) if a.len() == b.len() => {
            a.iter().try_for_each(|(k, a)| {
                let b = b.get(k).ok_or_else(|| format!("{path}.{k} (missing)"))?;
                same_json(a, b, &format!("{path}.{k}"))
            })
        }
        (a, b) if a == b => Ok(()),
        _ => Err(path.to_owned()),
    }
}

/// Nested values that must cross the bus unchanged: unicode (including characters outside
/// the BMP and escapes), floats, nulls, and integers beyond `i64`/`u64`.
pub const NESTED: &str = r#"{
    "text": "héllo ✓ 日本語 😀 \"quoted\" \\ \u0001",
    "empty": "",
    "floats": [0.1, -2.5e-7, 3.141592653589793, 1e300, -0.0, 5e-324],
    "none": null,
    "flags": [true, false],
    "big": 123456789012345678901234567890,
    "big_negative": -98765432109876543210987654321,
    "u64_max_plus_one": 18446744073709551616,
    "i64_min_minus_one": -9223372036854775809,
    "small": [0, -1, 9007199254740993],
    "deep": {"list": [[], {}, [{"k": [null]}]], "ключ": {"キー": "値"}}
}"#;

/// The big integers of [`NESTED`], by key, as their exact decimal text.
pub const NESTED_BIG_INTEGERS: [(&str, &str); 4] = [
    ("big", "123456789012345678901234567890"),
    ("big_negative", "-98765432109876543210987654321"),
    ("u64_max_plus_one", "18446744073709551616"),
    ("i64_min_minus_one", "-9223372036854775809"),
];

/// A gate that handlers wait at until the test opens it, counting who is inside: how many
/// calls run at once is then measured, not inferred from timing.
pub struct Gate {
    entered: AtomicUsize,
    inside: AtomicUsize,
    most_inside: AtomicUsize,
    open: watch::Sender<bool>,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate {
            entered: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            most_inside: AtomicUsize::new(0),
            open: watch::channel(false).0,
        })
    }

    /// Waits at the gate until it is open (at once if it already is).
    pub async fn pass(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_inside.fetch_max(now, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }

    /// Lets everyone through, now and later.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// How many calls reached the gate so far.
    pub fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    /// How many are waiting at it now.
    pub fn inside(&self) -> usize {
        self.inside.load(Ordering::SeqCst)
    }

    /// The most that were waiting at it at the same time.
    pub fn most_inside(&self) -> usize {
        self.most_inside.load(Ordering::SeqCst)
    }
}
