//! RPC guarantees and failure handling, on a private redis-server: at-most-once delivery,
//! result TTL, bad data on the queue, a Redis restart, bounded concurrency, argument errors
//! and graceful shutdown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightbus::api::{ApiBuilder, DynamicApi, Kwargs};
use lightbus::message::{ResultMessage, RpcMessage};
use lightbus::worker::Worker;
use lightbus::{Bus, Error};
use lightbus_test_support::inspect::wait_for_schema;
use lightbus_test_support::{bus, eventually, Gate, RunningWorker, TestRedis};
use redis::Commands;
use serde_json::{json, Value};

/// The API `ledger`: `record(entry)` notes each entry it executes; `wait(entry)` also notes
/// it, then waits at the gate.
fn ledger_api(recorded: Arc<Mutex<Vec<Value>>>, gate: Arc<Gate>) -> DynamicApi {
    let record = recorded.clone();
    ApiBuilder::new("ledger")
        .rpc("record", ["entry"], move |kw: Kwargs| {
            let recorded = record.clone();
            async move {
                recorded
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(kw["entry"].clone());
                Ok::<_, String>(json!(true))
            }
        })
        .rpc("wait", ["entry"], move |kw: Kwargs| {
            let recorded = recorded.clone();
            let gate = gate.clone();
            async move {
                recorded
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(kw["entry"].clone());
                gate.pass().await;
                Ok::<_, String>(kw["entry"].clone())
            }
        })
        .build()
}

/// A bus serving `ledger`, with what it records and its gate.
fn ledger_server(config: &std::path::Path) -> (Bus, Arc<Mutex<Vec<Value>>>, Arc<Gate>) {
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let gate = Gate::new();
    let server = bus(config);
    server
        .register(ledger_api(recorded.clone(), gate.clone()))
        .expect("register ledger");
    (server, recorded, gate)
}

fn entries(recorded: &Mutex<Vec<Value>>) -> Vec<Value> {
    recorded.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn kwargs(value: Value) -> Kwargs {
    value.as_object().cloned().expect("kwargs object")
}

/// Puts a call on the `ledger` queue by hand, as a caller would, with or without the expiry
/// key that says the call is still wanted.
fn push_call(redis: &TestRedis, call: &RpcMessage, expiry_key: bool) {
    let mut conn = redis.connection();
    if expiry_key {
        let key = format!("rpc_expiry_key:{}", call.id);
        let _: () = conn.set_ex(&key, 1, 30).expect("SET the expiry key");
    }
    let _: () = conn
        .rpush(format!("{}:rpc_queue", call.api_name), call.to_blob())
        .expect("RPUSH the call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_expiry_key_is_gone_is_dropped_unexecuted() {
    let redis = TestRedis::start();
    let config = redis.config().rpc_timeout(10.0).write();
    let expired = RpcMessage::new(
        "ledger",
        "record",
        kwargs(json!({"entry": "expired"})),
        "redis+key://test:expired-result".into(),
    );
    push_call(&redis, &expired, false);

    // One execution slot: the expired call is taken, and its fate decided, before the next.
    let (server, recorded, _gate) = ledger_server(&config);
    let _worker = RunningWorker::start(Worker::new(server).max_concurrency(1));
    let client = bus(&config);
    let answered: bool = client
        .call("ledger.record", json!({"entry": "fresh"}))
        .await
        .expect("the fresh call is answered");
    assert!(answered);

    assert_eq!(
        entries(&recorded),
        [json!("fresh")],
        "expired call executed"
    );
    assert_eq!(redis.list_len("ledger:rpc_queue"), 0);
    let answered_expired: bool = redis
        .connection()
        .exists("test:expired-result")
        .expect("EXISTS");
    assert!(!answered_expired, "an expired call got a result");
}

/// A worker waiting on an empty queue knows a call it receives is fresh, and runs it without
/// waiting for its claim's reply (the round trip that saves). Shown with a call whose expiry
/// key was never set: from a backlog it would be dropped (test above); arriving at a waiting
/// worker it runs. The call must land within 100 ms of the worker's pop being sent, hence
/// a few attempts, each pushed as soon as Redis shows the worker blocked in that pop (on a
/// loaded machine the test's own push can otherwise come too late, or before the pop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_reaching_a_waiting_worker_runs_without_waiting_for_its_claim() {
    let redis = TestRedis::start();
    let config = redis.config().rpc_timeout(10.0).write();
    let (server, recorded, _gate) = ledger_server(&config);
    let _worker = RunningWorker::start(Worker::new(server).max_concurrency(1));
    let client = bus(&config);
    let mut conn = redis.connection();
    let mut ran_at = None;
    for attempt in 0..10 {
        let answered: bool = client
            .call("ledger.record", json!({"entry": format!("warm-{attempt}")}))
            .await
            .expect("the call with an expiry key is answered");
        assert!(answered);
        let entry = format!("keyless-{attempt}");
        let keyless = RpcMessage::new(
            "ledger",
            "record",
            kwargs(json!({ "entry": entry })),
            format!("redis+key://test:keyless-result-{attempt}"),
        );
        // Blocked in list pops: the caller's result listener and the worker's fresh pop.
        let waiting = Instant::now();
        while blocked_in_pops(&mut conn) < 2 && waiting.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _: () = conn
            .rpush("ledger:rpc_queue", keyless.to_blob())
            .expect("RPUSH the call");
        eventually("the keyless call is taken", || {
            redis.list_len("ledger:rpc_queue") == 0
        })
        .await;
        // Executed or dropped: the next call is answered only after that was decided.
        let _: bool = client
            .call("ledger.record", json!({"entry": "after"}))
            .await
            .expect("a call after the keyless one is answered");
        if entries(&recorded).contains(&json!(entry)) {
            ran_at = Some(attempt);
            break;
        }
    }
    let attempt = ran_at.expect("no keyless call ran: every call waited for its claim");
    eventually("the keyless call is answered", || {
        redis.list_len(&format!("test:keyless-result-{attempt}")) == 1
    })
    .await;
    let expiry_keys: Vec<String> = conn.keys("rpc_expiry_key:*").expect("KEYS");
    assert!(expiry_keys.is_empty(), "unclaimed calls: {expiry_keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_call_carries_an_expiry_key_that_lasts_the_rpc_timeout() {
    let redis = TestRedis::start();
    let client = bus(&redis.config().rpc_timeout(7.0).write());
    let call = tokio::spawn(async move {
        client
            .call::<Value>("ledger.record", json!({"entry": "x"}))
            .await
    });
    eventually("the call is queued", || {
        redis.list_len("ledger:rpc_queue") == 1
    })
    .await;

    let mut conn = redis.connection();
    let blob: Vec<u8> = conn.lindex("ledger:rpc_queue", 0).expect("LINDEX");
    let queued = RpcMessage::from_blob(&blob).expect("the queued call decodes");
    let ttl: i64 = conn
        .ttl(format!("rpc_expiry_key:{}", queued.id))
        .expect("TTL");
    assert!((1..=7).contains(&ttl), "expiry key TTL {ttl}");
    assert!(queued.return_path.starts_with("redis+key://"));
    call.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_kept_for_the_configured_result_ttl() {
    let redis = TestRedis::start();
    let config = redis.config().result_ttl(123).write();
    let (server, _recorded, _gate) = ledger_server(&config);
    let _worker = RunningWorker::serve(server);

    let call = RpcMessage::new(
        "ledger",
        "record",
        kwargs(json!({"entry": "kept"})),
        "redis+key://test:ttl-result".into(),
    );
    push_call(&redis, &call, true);
    let mut conn = redis.connection();
    eventually("the result is written", || {
        redis.list_len("test:ttl-result") == 1
    })
    .await;

    let ttl: i64 = conn.ttl("test:ttl-result").expect("TTL");
    // Above the default of 60 and at most the configured 123 seconds.
    assert!((61..=123).contains(&ttl), "result key TTL {ttl}");
    let blob: Vec<u8> = conn.lindex("test:ttl-result", 0).expect("LINDEX");
    let result = ResultMessage::from_blob(&blob).expect("the result decodes");
    assert_eq!(result.rpc_message_id, call.id);
    assert_eq!(result.outcome, Ok(json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_survives_undecodable_calls_and_bad_return_paths() {
    let redis = TestRedis::start();
    let config = redis.config().rpc_timeout(10.0).write();
    let mut conn = redis.connection();
    for garbage in [
        &b"not json"[..],
        b"",
        b"{}",
        b"[1, 2]",
        b"{\"metadata\": {}}",
        b"{\"metadata\": {\"id\": 7, \"api_name\": \"ledger\"}}",
        b"\xff\xfe\x00",
    ] {
        let _: () = conn.rpush("ledger:rpc_queue", garbage).expect("RPUSH");
    }
    let unanswerable = RpcMessage::new(
        "ledger",
        "record",
        kwargs(json!({"entry": "unanswerable"})),
        "http://not-a-redis-key".into(),
    );
    push_call(&redis, &unanswerable, true);

    let (server, recorded, _gate) = ledger_server(&config);
    let worker = RunningWorker::start(Worker::new(server).max_concurrency(1));
    let client = bus(&config);
    let answered: bool = client
        .call("ledger.record", json!({"entry": "fine"}))
        .await
        .expect("a good call after the garbage is answered");
    assert!(answered);
    assert_eq!(
        entries(&recorded),
        [json!("unanswerable"), json!("fine")],
        "the decodable calls ran, in order"
    );
    assert_eq!(redis.list_len("ledger:rpc_queue"), 0);
    assert!(!worker.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_call_with_a_readable_return_path_is_answered_with_an_error() {
    let redis = TestRedis::start();
    let config = redis.config().rpc_timeout(10.0).write();
    let mut conn = redis.connection();
    let metadata = |id: &str, key: &str| {
        format!(
            "\"metadata\": {{\"id\": {id}, \"api_name\": \"ledger\", \"procedure_name\": \
             \"record\", \"return_path\": \"redis+key://{key}\"}}"
        )
    };
    let bad = [
        // Arguments that are not an object; a numeric id; no procedure name.
        format!("{{{}, \"kwargs\": [1, 2]}}", metadata("\"c1\"", "test:r1")),
        format!("{{{}, \"kwargs\": {{}}}}", metadata("7", "test:r2")),
        "{\"metadata\": {\"id\": \"c3\", \"api_name\": \"ledger\", \"return_path\": \
         \"redis+key://test:r3\"}, \"kwargs\": {}}"
            .to_owned(),
    ];
    for blob in &bad {
        let _: () = conn.rpush("ledger:rpc_queue", blob).expect("RPUSH");
    }
    let (server, recorded, _gate) = ledger_server(&config);
    let worker = RunningWorker::start(Worker::new(server).max_concurrency(1));
    let client = bus(&config);
    let answered: bool = client
        .call("ledger.record", json!({"entry": "fine"}))
        .await
        .expect("a good call after the bad ones is answered");
    assert!(answered);
    assert_eq!(entries(&recorded), [json!("fine")], "no bad call ran");
    for (key, id) in [("test:r1", "c1"), ("test:r2", "7"), ("test:r3", "c3")] {
        eventually(&format!("{key} is answered"), || redis.list_len(key) == 1).await;
        let blob: Vec<u8> = conn.lindex(key, 0).expect("LINDEX");
        let result = ResultMessage::from_blob(&blob).expect("the result decodes");
        assert_eq!(result.rpc_message_id, id);
        let failure = result.outcome.expect_err("an error result");
        assert_eq!(failure.code.as_deref(), Some("invalid_call"), "{failure:?}");
        assert!(failure.message.contains("could not decode"), "{failure:?}");
    }
    assert!(!worker.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_callers_reconnect_after_redis_restarts() {
    let mut redis = TestRedis::start();
    // Longer than the longest reconnection backoff (5 s), so a timeout means a lost call.
    let config = redis.config().rpc_timeout(20.0).write();
    let (server, _recorded, _gate) = ledger_server(&config);
    let worker = RunningWorker::serve(server);
    let client = bus(&config);
    let record = |entry: &'static str| {
        let client = client.clone();
        async move {
            client
                .call::<bool>("ledger.record", json!({ "entry": entry }))
                .await
        }
    };
    assert!(record("before").await.expect("call before the outage"));

    redis.stop();
    let err = record("during").await.unwrap_err();
    assert!(
        err.is_transient(),
        "a lost Redis is a transient error: {err:?}"
    );

    redis.restart();
    // A call may fail to be sent while the caller's connection is re-established (sending
    // is not retried blindly); within a few attempts calls work again. A call that was sent
    // is never lost: the worker reconnects well within the rpc_timeout, so no call times out.
    let mut failures = Vec::new();
    let answered = loop {
        match record("after").await {
            Ok(answered) => break answered,
            Err(err @ Error::Timeout { .. }) => {
                panic!("a call sent after the restart was lost: {err}")
            }
            Err(err) if failures.len() < 10 => {
                failures.push(err.to_string());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(err) => panic!("calls keep failing after the restart: {err}; {failures:?}"),
        }
    };
    assert!(answered);
    assert!(!worker.is_finished(), "the worker survived the outage");

    // A client created after the outage works too.
    let fresh: bool = bus(&config)
        .call("ledger.record", json!({"entry": "fresh client"}))
        .await
        .expect("call from a new client");
    assert!(fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_up_to_max_concurrency_calls_at_once() {
    const LIMIT: usize = 3;
    const CALLS: usize = 7;
    let redis = TestRedis::start();
    let config = redis.config().rpc_timeout(30.0).write();
    let (server, _recorded, gate) = ledger_server(&config);
    let _worker = RunningWorker::start(Worker::new(server).max_concurrency(LIMIT));
    let client = bus(&config);

    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call::<Value>("ledger.wait", json!({ "entry": i }))
                    .await
            })
        })
        .collect();
    eventually("LIMIT calls run at once", || gate.inside() == LIMIT).await;
    // The rest stay queued while every slot is taken.
    eventually("the other calls are queued", || {
        redis.list_len("ledger:rpc_queue") == CALLS - LIMIT
    })
    .await;
    assert_eq!(gate.entered(), LIMIT);

    gate.open();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("call task").expect("call"));
    }
    assert_eq!(answers, (0..CALLS).map(|i| json!(i)).collect::<Vec<_>>());
    assert_eq!(gate.entered(), CALLS);
    assert_eq!(
        gate.most_inside(),
        LIMIT,
        "never more than the limit at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_procedures_and_bad_arguments_are_remote_errors_naming_them() {
    let redis = TestRedis::start();
    let (server, recorded, _gate) = ledger_server(&redis.config().write());
    let _worker = RunningWorker::serve(server);
    // A caller that does not validate (like one without the schema): the worker checks.
    let client = bus(&redis.config().api_yaml("    validate: false\n").write());

    let remote = |result: lightbus::Result<Value>| match result {
        Err(Error::Remote {
            api,
            procedure,
            message,
            ..
        }) => (api, procedure, message),
        other => panic!("expected a remote error, got {other:?}"),
    };

    let (api, procedure, message) = remote(client.call("ledger.erase", json!({})).await);
    assert_eq!((api.as_str(), procedure.as_str()), ("ledger", "erase"));
    assert!(message.contains("no procedure named `erase`"), "{message}");

    let (_, _, message) = remote(client.call("ledger.record", json!({})).await);
    // Rejected by the worker's incoming validation, before the handler ran.
    assert!(
        message.contains("ledger.record") && message.contains("entry"),
        "{message}"
    );

    let (_, _, message) = remote(
        client
            .call("ledger.record", json!({"entry": 1, "amount": 2}))
            .await,
    );
    assert!(message.contains("amount"), "{message}");

    assert!(entries(&recorded).is_empty(), "no handler ran");
}

/// A typed API: its arguments are decoded into Rust types before the handler runs.
#[lightbus::api(name = "bank")]
pub trait Bank {
    /// Moves `amount` to `account`; returns the new balance.
    async fn deposit(&self, account: String, amount: u64) -> u64;
}

struct BankService;

impl Bank for BankService {
    async fn deposit(&self, _account: String, amount: u64) -> u64 {
        amount
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistyped_arguments_are_remote_errors_naming_the_argument() {
    let redis = TestRedis::start();
    let server = bus(&redis.config().write());
    server
        .register(BankServer::new(BankService))
        .expect("register bank");
    let _worker = RunningWorker::serve(server);
    // A caller that does not validate (like one without the schema): the worker checks.
    let client = bus(&redis.config().api_yaml("    validate: false\n").write());

    let balance: u64 = client
        .call("bank.deposit", json!({"account": "ann", "amount": 5}))
        .await
        .expect("a well-typed call");
    assert_eq!(balance, 5);

    for (kwargs, argument) in [
        (json!({"account": "ann", "amount": "lots"}), "amount"),
        (json!({"account": "ann", "amount": -5}), "amount"),
        (json!({"account": 42, "amount": 5}), "account"),
    ] {
        match client.call::<Value>("bank.deposit", kwargs.clone()).await {
            Err(Error::Remote { message, .. }) => {
                assert!(message.contains(argument), "{kwargs}: {message}");
                assert!(message.contains("bank.deposit"), "{kwargs}: {message}");
            }
            other => panic!("{kwargs}: expected a remote error, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_check_calls_against_the_published_schema_before_sending() {
    let redis = TestRedis::start();
    let config = redis.config().write();
    let server = bus(&config);
    server
        .register(BankServer::new(BankService))
        .expect("register bank");
    let _worker = RunningWorker::serve(server);
    // Wait for the worker to publish its schema, so the caller's first (lazy) schema load
    // finds it: a call can be served before the schema is stored.
    wait_for_schema(&redis, "bank").await;
    let client = bus(&config);
    let balance: u64 = client
        .call("bank.deposit", json!({"account": "ann", "amount": 5}))
        .await
        .expect("a well-typed call");
    assert_eq!(balance, 5);

    let err = client
        .call::<Value>("bank.deposit", json!({"account": "ann", "amount": "lots"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
    assert!(err.to_string().contains("amount"), "{err}");

    let err = client
        .call::<Value>("bank.withdraw", json!({"account": "ann"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Schema(_)), "{err:?}");
    assert!(err.to_string().contains("withdraw"), "{err}");

    assert_eq!(redis.list_len("bank:rpc_queue"), 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_taking_calls_but_answers_the_one_in_flight() {
    let redis = TestRedis::start();
    let config = redis.config().rpc_timeout(30.0).write();
    let (server, recorded, gate) = ledger_server(&config);
    let worker = RunningWorker::serve(server);
    let client = bus(&config);

    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call::<Value>("ledger.wait", json!({"entry": "in flight"}))
                .await
        }
    });
    eventually("the slow call is running", || gate.inside() == 1).await;
    // Blocked pops now: the worker's queue consumer and this process's result listener.
    eventually("both blocking connections are up", || {
        redis.clients_running("blmpop") == 2
    })
    .await;

    worker.signal_stop();
    eventually("the worker stops popping its queue", || {
        redis.clients_running("blmpop") == 1
    })
    .await;
    // A call arriving now is left on the queue for another worker.
    let late = RpcMessage::new(
        "ledger",
        "record",
        kwargs(json!({"entry": "late"})),
        "redis+key://test:late-result".into(),
    );
    push_call(&redis, &late, true);

    gate.open();
    let answer = in_flight
        .await
        .expect("call task")
        .expect("the call in flight is answered");
    assert_eq!(answer, json!("in flight"));
    worker.stop().await.expect("the worker stops cleanly");

    assert_eq!(entries(&recorded), [json!("in flight")]);
    assert_eq!(
        redis.list_len("ledger:rpc_queue"),
        1,
        "the late call is still queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_popped_while_the_worker_stops_is_still_executed() {
    let redis = TestRedis::start();
    let config = redis.config().rpc_timeout(30.0).write();
    let (server, recorded, _gate) = ledger_server(&config);
    let worker = RunningWorker::serve(server);
    eventually("the worker waits on its queue", || {
        redis.clients_running("blmpop") == 1
    })
    .await;

    // The worker's pop is still blocked in Redis when the stop arrives; a call pushed now
    // is taken by that pop. Dropping the pop's reply would lose the call; the worker must
    // run it (or, had the pop already ended, leave it queued).
    worker.signal_stop();
    let call = RpcMessage::new(
        "ledger",
        "record",
        kwargs(json!({"entry": "at shutdown"})),
        "redis+key://test:shutdown-result".into(),
    );
    push_call(&redis, &call, true);
    worker.stop().await.expect("the worker stops cleanly");

    let executed = entries(&recorded) == [json!("at shutdown")];
    let queued = redis.list_len("ledger:rpc_queue") == 1;
    assert!(
        executed != queued,
        "the call must be executed or still queued, exactly one of them \
         (executed: {executed}, queued: {queued})"
    );
    if executed {
        assert_eq!(
            redis.list_len("test:shutdown-result"),
            1,
            "an executed call is answered"
        );
    }
}

/// How many clients are blocked in a `BLMPOP` right now.
fn blocked_in_pops(conn: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(conn)
        .expect("CLIENT LIST");
    list.lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            fields.contains(&"cmd=blmpop")
                && fields
                    .iter()
                    .any(|f| f.starts_with("flags=") && f.contains('b'))
        })
        .count()
}
