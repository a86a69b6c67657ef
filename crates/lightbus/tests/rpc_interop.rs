//! RPC between Rust and the Python Lightbus 1.1.2 peer, both ways, on a private Redis.
//!
//! - Python caller → Rust worker: `tests/peer/rpc_call.py` calls the API `rs_rpc`, served by a
//!   worker in this process.
//! - Rust caller → Python worker: `lightbus run` on `tests/peer/rpc_worker.py` serves `py_rpc`.
//! - Both workers serving `py_rpc` from one queue; the blocking client.
//!
//! Each direction is tested with the worker started first and with the caller first.
//!
//! Needs the peer's virtualenv (`scripts/setup-python-peer.sh`); without it these tests fail
//! with that hint rather than pass without checking anything.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lightbus::worker::Worker;
use lightbus::{Bus, Error};
use lightbus_test_support::{
    assert_same_json, bus, eventually, json, python_call, python_outcome, wait_until, Gate,
    PythonPeer, RunningWorker, TestRedis, NESTED, NESTED_BIG_INTEGERS, PATIENCE,
};
use serde_json::{json, Value};

/// The API the Rust side serves to Python callers.
#[lightbus::api(name = "rs_rpc")]
pub trait RsRpc {
    /// True for `admin` / `secret`.
    async fn check_password(&self, username: String, password: String) -> bool;

    /// Returns `value` unchanged.
    async fn echo(&self, value: Value) -> Value;

    /// Always fails, with a text naming `reason`.
    async fn refuse(&self, reason: String) -> Result<bool, String>;

    /// Always fails with the machine-readable code `account_locked`.
    async fn locked(&self, username: String) -> Result<bool, lightbus::api::RpcFailure>;
}

/// The Rust service; `echo` keeps what it received, to check on the Rust side that nothing
/// was lost on the way in.
struct RsRpcService {
    received: Arc<Mutex<Vec<Value>>>,
}

impl RsRpc for RsRpcService {
    async fn check_password(&self, username: String, password: String) -> bool {
        username == "admin" && password == "secret"
    }

    async fn locked(&self, username: String) -> Result<bool, lightbus::api::RpcFailure> {
        Err(
            lightbus::api::RpcFailure::new(format!("{username} is locked out"))
                .with_code("account_locked"),
        )
    }

    async fn echo(&self, value: Value) -> Value {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(value.clone());
        value
    }

    async fn refuse(&self, reason: String) -> Result<bool, String> {
        Err(format!("refused by the Rust worker: {reason}"))
    }
}

/// The Python worker's API as Rust callers see it: a typed client for a Python service.
#[lightbus::api(name = "py_rpc")]
pub trait PyRpc {
    /// True for `admin` / `secret`.
    async fn check_password(&self, username: String, password: String) -> bool;

    /// Returns `value` unchanged.
    async fn echo(&self, value: Value) -> Value;

    /// Sleeps `seconds`, then returns `"slept"`.
    async fn sleep(&self, seconds: f64) -> String;

    /// Raises `ValueError(f"bad input: {reason}")`.
    async fn fail(&self, reason: String) -> bool;
}

/// A Rust worker serving `rs_rpc` on `redis`, waiting for calls before this returns.
async fn rust_worker(redis: &TestRedis) -> (RunningWorker, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let server = bus(&redis.config().write());
    server
        .register(RsRpcServer::new(RsRpcService {
            received: received.clone(),
        }))
        .expect("register rs_rpc");
    let worker = RunningWorker::serve(server);
    eventually("the Rust worker waits for calls", || {
        redis.clients_running("blmpop") == 1
    })
    .await;
    (worker, received)
}

/// `lightbus run` on `rpc_worker.py`, waiting until it pops its queues.
async fn python_worker(redis: &TestRedis) -> PythonPeer {
    let mut worker = PythonPeer::lightbus_run(&redis.config().write(), "rpc_worker");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while redis.clients_running("blpop") == 0 {
        assert!(
            worker.is_running() && tokio::time::Instant::now() < deadline,
            "the Python worker did not start serving\n{}",
            worker.output_so_far()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    worker
}

fn result_of(outcome: &Value) -> &Value {
    assert!(outcome.get("error").is_none(), "the call failed: {outcome}");
    &outcome["result"]
}

// ---------------------------------------------------------------- Python caller, Rust worker

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_caller_gets_true_and_false_from_a_rust_worker() {
    let redis = TestRedis::start();
    let (_worker, _) = rust_worker(&redis).await;
    let config = redis.config().write();

    let valid = python_call(
        &config,
        "rs_rpc.check_password",
        &json!({"username": "admin", "password": "secret"}),
    )
    .await;
    assert_eq!(result_of(&valid), &json!(true));

    let invalid = python_call(
        &config,
        "rs_rpc.check_password",
        &json!({"username": "admin", "password": "wrong"}),
    )
    .await;
    assert_eq!(result_of(&invalid), &json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_values_from_python_cross_a_rust_worker_exactly() {
    let redis = TestRedis::start();
    let (_worker, received) = rust_worker(&redis).await;
    let value = json(NESTED);

    let outcome = python_call(
        &redis.config().write(),
        "rs_rpc.echo",
        &json!({ "value": value }),
    )
    .await;
    // Python compared what came back with what it sent, as Python values.
    assert_eq!(outcome["equal_to"]["value"], json!(true), "{outcome}");
    assert_same_json(result_of(&outcome), &value);

    // The Rust handler saw every big integer digit for digit.
    let received = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(received.len(), 1);
    for (key, digits) in NESTED_BIG_INTEGERS {
        assert_eq!(received[0][key].to_string(), digits, "{key}");
    }
    assert_same_json(&received[0], &value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_handler_error_reaches_the_python_caller_as_a_worker_error() {
    let redis = TestRedis::start();
    let (_worker, _) = rust_worker(&redis).await;
    let config = redis.config().write();

    let outcome = python_call(&config, "rs_rpc.refuse", &json!({"reason": "no thanks"})).await;
    assert_eq!(outcome["error"], "LightbusWorkerError", "{outcome}");
    let message = outcome["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused by the Rust worker: no thanks"),
        "{message}"
    );

    // The worker keeps serving after the error.
    let valid = python_call(
        &config,
        "rs_rpc.check_password",
        &json!({"username": "admin", "password": "secret"}),
    )
    .await;
    assert_eq!(result_of(&valid), &json!(true));
}

/// A Rust handler's failure code reaches Rust callers, and Python callers, which do not
/// know codes, still decode the result as an ordinary worker error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_code_reaches_rust_callers_and_python_callers_tolerate_it() {
    let redis = TestRedis::start();
    let (_worker, _) = rust_worker(&redis).await;
    let config = redis.config().write();

    let err = RsRpcClient::new(&bus(&config))
        .locked("ada")
        .await
        .unwrap_err();
    assert_eq!(err.remote_code(), Some("account_locked"), "{err:?}");
    assert!(err.to_string().contains("ada is locked out"), "{err}");

    let outcome = python_call(&config, "rs_rpc.locked", &json!({"username": "ada"})).await;
    assert_eq!(outcome["error"], "LightbusWorkerError", "{outcome}");
    let message = outcome["message"].as_str().unwrap_or_default();
    assert!(message.contains("ada is locked out"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_call_nobody_serves_times_out() {
    let redis = TestRedis::start();
    let config = redis.config().rpc_timeout(1.0).write();

    let outcome = python_call(&config, "nobody.home", &json!({})).await;
    assert_eq!(outcome["error"], "LightbusTimeout", "{outcome}");
    let message = outcome["message"].as_str().unwrap_or_default();
    assert!(message.contains("nobody.home"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_call_made_before_the_rust_worker_starts_is_served() {
    let redis = TestRedis::start();
    // The timeout only bounds the test: the call waits in the queue for the worker.
    let config = redis.config().rpc_timeout(30.0).write();
    let caller = PythonPeer::script(
        &config,
        "rpc_call.py",
        &[
            "rs_rpc.check_password",
            r#"{"username": "admin", "password": "secret"}"#,
        ],
    );
    eventually("the Python call is queued", || {
        redis.list_len("rs_rpc:rpc_queue") == 1
    })
    .await;

    let (_worker, _) = rust_worker(&redis).await;
    let outcome = python_outcome(caller).await;
    assert_eq!(result_of(&outcome), &json!(true));
}

// ---------------------------------------------------------------- Rust caller, Python worker

async fn check_password(client: &Bus, password: &str) -> lightbus::Result<bool> {
    PyRpcClient::new(client)
        .check_password("admin", password)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_caller_gets_true_and_false_from_a_python_worker() {
    let redis = TestRedis::start();
    let _worker = python_worker(&redis).await;
    let client = bus(&redis.config().write());

    assert!(check_password(&client, "secret").await.expect("call"));
    assert!(!check_password(&client, "wrong").await.expect("call"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_values_from_rust_cross_a_python_worker_exactly() {
    let redis = TestRedis::start();
    let _worker = python_worker(&redis).await;
    let client = bus(&redis.config().write());
    let value = json(NESTED);

    // By name, as for any API defined elsewhere.
    let echoed: Value = client
        .call("py_rpc.echo", json!({ "value": value }))
        .await
        .expect("call");
    assert_same_json(&echoed, &value);
    for (key, digits) in NESTED_BIG_INTEGERS {
        assert_eq!(echoed[key].to_string(), digits, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_handler_error_reaches_the_rust_caller_as_a_remote_error() {
    let redis = TestRedis::start();
    let _worker = python_worker(&redis).await;
    let client = bus(&redis.config().write());

    match PyRpcClient::new(&client).fail("7").await {
        Err(Error::Remote {
            api,
            procedure,
            message,
            trace,
            code,
            ..
        }) => {
            assert_eq!((api.as_str(), procedure.as_str()), ("py_rpc", "fail"));
            assert_eq!(code, None, "Python workers send no code");
            assert_eq!(message, "ValueError('bad input: 7')");
            assert!(trace.starts_with("Traceback"), "{trace}");
            assert!(trace.contains("ValueError: bad input: 7"), "{trace}");
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
    // The Python worker keeps serving.
    assert!(check_password(&client, "secret").await.expect("call"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_call_to_a_slow_python_handler_times_out_naming_the_rpc() {
    let redis = TestRedis::start();
    let _worker = python_worker(&redis).await;
    let client = bus(&redis.config().rpc_timeout(0.5).write());

    let err = PyRpcClient::new(&client).sleep(3.0).await.unwrap_err();
    match &err {
        Error::Timeout {
            operation: lightbus::Operation::Call { api, procedure },
            ..
        } => {
            assert_eq!((api.as_str(), procedure.as_str()), ("py_rpc", "sleep"));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err.to_string().contains("py_rpc.sleep()"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_call_made_before_the_python_worker_starts_is_served() {
    let redis = TestRedis::start();
    // The timeout only bounds the test: the call waits in the queue for the worker.
    let client = bus(&redis.config().rpc_timeout(30.0).write());
    let call = tokio::spawn(async move { check_password(&client, "secret").await });
    eventually("the Rust call is queued", || {
        redis.list_len("py_rpc:rpc_queue") == 1
    })
    .await;

    let _worker = python_worker(&redis).await;
    let valid = call.await.expect("the call task").expect("call");
    assert!(valid);
}

// ---------------------------------------------------------------- both workers, one bus

/// A Rust implementation of the Python worker's API: the two can serve `py_rpc` together.
struct RustPyRpc {
    gate: Arc<Gate>,
}

impl PyRpc for RustPyRpc {
    async fn check_password(&self, username: String, password: String) -> bool {
        username == "admin" && password == "secret"
    }

    async fn echo(&self, value: Value) -> Value {
        self.gate.pass().await;
        value
    }

    async fn sleep(&self, seconds: f64) -> String {
        tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
        "slept".to_owned()
    }

    async fn fail(&self, reason: String) -> bool {
        panic!("bad input: {reason}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_python_workers_share_a_queue_and_answer_each_call_once() {
    const CALLS: usize = 20;
    let redis = TestRedis::start();
    let config = redis.config().rpc_timeout(30.0).write();
    let _python = python_worker(&redis).await;
    // One slot, held by the first call it takes until the gate opens: meanwhile the Python
    // worker must serve the rest.
    let gate = Gate::new();
    let server = bus(&config);
    server
        .register(PyRpcServer::new(RustPyRpc { gate: gate.clone() }))
        .expect("register the Rust py_rpc");
    let _rust = RunningWorker::start(Worker::new(server).max_concurrency(1));
    eventually("the Rust worker waits for calls", || {
        redis.clients_running("blmpop") == 1
    })
    .await;

    let client = bus(&config);
    let answered = Arc::new(AtomicUsize::new(0));
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let (client, answered) = (client.clone(), answered.clone());
            tokio::spawn(async move {
                let echoed = PyRpcClient::new(&client).echo(json!({ "call": i })).await;
                answered.fetch_add(1, Ordering::SeqCst);
                echoed
            })
        })
        .collect();
    eventually("the Rust worker holds a call", || gate.inside() == 1).await;
    eventually("the Python worker answers the others", || {
        answered.load(Ordering::SeqCst) == CALLS - 1
    })
    .await;
    gate.open();

    for (i, call) in calls.into_iter().enumerate() {
        let echoed = call.await.expect("call task").expect("call");
        assert_eq!(
            echoed,
            json!({ "call": i }),
            "each call gets its own answer"
        );
    }
    assert_eq!(
        gate.entered(),
        1,
        "the Rust worker ran exactly the call it held"
    );
}

// ---------------------------------------------------------------- the blocking facade

#[test]
fn a_blocking_client_calls_a_python_worker() {
    let redis = TestRedis::start();
    let mut worker = PythonPeer::lightbus_run(&redis.config().write(), "rpc_worker");
    wait_until("the Python worker serves", PATIENCE, || {
        assert!(worker.is_running(), "{}", worker.output_so_far());
        redis.clients_running("blpop") > 0
    });

    let client = lightbus::blocking::Bus::new(bus(&redis.config().write())).expect("runtime");
    let check = |password: &str| -> bool {
        client
            .call(
                "py_rpc.check_password",
                json!({"username": "admin", "password": password}),
            )
            .expect("call")
    };
    assert!(check("secret"));
    assert!(!check("wrong"));
}
