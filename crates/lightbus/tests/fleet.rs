//! A worker serving 100 APIs and a listener over 100 APIs, on a private Redis: after the
//! worker has idled, one event and one call to the *last* API arrive promptly, and the
//! worker holds a handful of connections, not one per API.
//!
//! Correctness, not a benchmark: the one-second bound is about a hundred times the normal
//! latency, and what it catches is starvation (a quiet API waiting behind the other 99,
//! which took tens of seconds before a listener read all its streams at once).
//! `bench/fleet.py` measures the figures. A second test puts the Python Lightbus 1.1.2 peer
//! beside such a worker: it calls the last API, listens to an event the worker fires and
//! fires one the worker's listener over every API handles. A third gives a worker with four
//! slots a backlog spread over 30 APIs, which its drains take from all the queues at once:
//! every call runs exactly once, never more than four at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightbus::api::ApiBuilder;
use lightbus::worker::Worker;
use lightbus::{Bus, EventMessage, Kwargs};
use lightbus_test_support::apis::events_auth::{user, AuthServer, AuthService};
use lightbus_test_support::{
    named_bus, peer_dir, python_call, python_listener, Collector, PythonPeer, RunningWorker,
    TestRedis, PATIENCE,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const APIS: usize = 100;

fn api_name(n: usize) -> String {
    format!("fleet_{n:03}")
}

/// How many clients Redis has besides the one asking.
fn clients(redis: &TestRedis) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut redis.connection())
        .expect("CLIENT LIST");
    list.lines().count().saturating_sub(1)
}

/// Registers `count` APIs `fleet_000`…, each with an RPC `ping` (answers `true`) and an
/// event `happened`; the names of those events.
fn register_fleet(service: &Bus, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let api = ApiBuilder::new(api_name(n))
                .rpc("ping", [], |_kwargs: Kwargs| async {
                    Ok::<_, std::convert::Infallible>(Value::Bool(true))
                })
                .event("happened", [])
                .build();
            service.register(api).expect("register");
            format!("{}.happened", api_name(n))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_of_a_hundred_apis_answers_at_once_after_an_idle_spell() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();

    // The service: 100 APIs, each with an RPC and an event; one listener over all events.
    let service = named_bus(&config, "fleet", "fleet-1");
    let events = register_fleet(&service, APIS);
    let (handled, mut arrivals) = mpsc::unbounded_channel::<(String, Instant)>();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let handled = Arc::new(handled);
    service
        .listen_raw(&events, "everything", move |message: EventMessage| {
            let _ = handled.send((message.api_name.clone(), Instant::now()));
            std::future::ready(())
        })
        .expect("listen");
    let worker = RunningWorker::serve(service.clone());

    // Up and listening (its groups exist) before the idle spell.
    let last = api_name(APIS - 1);
    let caller = named_bus(&config, "caller", "caller-1");
    let answered: Value = tokio::time::timeout(PATIENCE, caller.call(&format!("{last}.ping"), ()))
        .await
        .expect("within patience")
        .expect("the worker answers");
    assert_eq!(answered, Value::Bool(true));
    lightbus_test_support::inspect::wait_for_group(
        &redis,
        &format!("{last}.*:stream"),
        "fleet-everything",
    )
    .await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    let connections = clients(&redis);
    assert!(
        connections <= 10,
        "a worker serving {APIS} APIs with a listener over all of them and one caller holds \
         {connections} connections"
    );

    let fired_at = Instant::now();
    service
        .fire_raw(&last, "happened", Kwargs::new())
        .await
        .expect("fire");
    let (api, handled_at) = tokio::time::timeout(PATIENCE, arrivals.recv())
        .await
        .expect("the event arrives within patience")
        .expect("the listener runs");
    assert_eq!(api, last);
    let waited = handled_at.duration_since(fired_at);
    assert!(
        waited < Duration::from_secs(1),
        "the event to the last of {APIS} APIs waited {waited:?}"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut slowest = Duration::ZERO;
    for n in (0..APIS).rev() {
        let sent = Instant::now();
        let answer: Value = caller
            .call(&format!("{}.ping", api_name(n)), ())
            .await
            .expect("answered");
        assert_eq!(answer, Value::Bool(true));
        slowest = slowest.max(sent.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "the slowest of {APIS} calls after an idle spell took {slowest:?}"
    );
    worker.stop().await.expect("stops cleanly");
}

/// A backlog spread over many APIs, taken by a worker with few slots: its drains take as
/// many calls as it has free slots from all the queues at once, and still every call runs
/// exactly once and never more than `max_concurrency` at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_spread_over_many_apis_runs_each_call_once_within_the_slots() {
    const SPREAD: usize = 30;
    const CALLS: u64 = 300;
    const SLOTS: usize = 4;
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let service = named_bus(&config, "spread", "spread-1");
    let runs = Arc::new(Mutex::new(HashMap::<u64, usize>::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    for n in 0..SPREAD {
        let (runs, running, most) = (runs.clone(), running.clone(), most.clone());
        let api = ApiBuilder::new(api_name(n))
            .rpc("work", ["n"], move |kwargs: Kwargs| {
                let (runs, running, most) = (runs.clone(), running.clone(), most.clone());
                async move {
                    let n = kwargs["n"].as_u64().ok_or("n must be a number")?;
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    *runs.lock().unwrap().entry(n).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, &str>(json!(n))
                }
            })
            .build();
        service.register(api).expect("register");
    }
    // The calls wait in their queues before the worker starts: a backlog over 30 queues.
    let caller = named_bus(&config, "caller", "caller-1");
    let calls = futures::future::join_all((0..CALLS).map(|i| {
        let caller = caller.clone();
        async move {
            let rpc = format!("{}.work", api_name(i as usize % SPREAD));
            (i, caller.call::<Value>(&rpc, json!({"n": i})).await)
        }
    }));
    let calls = tokio::spawn(calls);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let worker = RunningWorker::start(Worker::new(service.clone()).max_concurrency(SLOTS));
    let answers = tokio::time::timeout(PATIENCE, calls)
        .await
        .expect("every call answered within patience")
        .expect("the calls' task");
    for (i, answer) in answers {
        assert_eq!(answer.expect("answered"), json!(i));
    }
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len() as u64, CALLS, "calls that ran");
    assert!(
        runs.values().all(|&times| times == 1),
        "calls that ran more than once: {:?}",
        runs.iter()
            .filter(|(_, &times)| times > 1)
            .collect::<Vec<_>>()
    );
    let most = most.load(Ordering::SeqCst);
    assert!(most <= SLOTS, "{most} calls ran at once with {SLOTS} slots");
    worker.stop().await.expect("stops cleanly");
}

/// A mixed fleet at scale: a Rust worker serving 99 generated APIs and `auth`, with one
/// listener over all 100 APIs' events, beside Python Lightbus 1.1.2 processes that call the
/// last API, listen to `auth.user_registered` fired by the worker, and fire one it handles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_peers_call_and_listen_beside_a_rust_worker_with_a_hundred_apis() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();

    let service = named_bus(&config, "fleet", "fleet-1");
    let mut events = register_fleet(&service, APIS - 1);
    service
        .register(AuthServer::new(AuthService))
        .expect("register auth");
    events.push("auth.user_registered".to_owned());
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let collector = Collector::default();
    service
        .listen_raw(&events, "everything", collector.raw_handler())
        .expect("listen");
    let worker = RunningWorker::serve(service.clone());
    lightbus_test_support::inspect::wait_for_group(&redis, "auth.*:stream", "fleet-everything")
        .await;

    // Python calls the last generated API.
    let last = api_name(APIS - 2);
    let outcome = python_call(&config, &format!("{last}.ping"), &json!({})).await;
    assert_eq!(outcome["result"], json!(true), "outcome: {outcome}");

    // Python listens to an event the many-API worker fires.
    let (_listener, mut lines) = python_listener(&redis, &config).await;
    let fired = service.fire(user(7)).await.expect("fire");
    let line = tokio::time::timeout(PATIENCE, async {
        loop {
            match lines.recv().await {
                Some(line) if line.starts_with('{') => return Some(line),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await
    .expect("the Python listener prints the event")
    .expect("the Python listener is running");
    let received: Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(received["id"], json!(fired.id));
    assert_eq!(
        received["kwargs"],
        json!({"username": "user7", "email": "user7@example.com"})
    );

    // Python fires; the worker's listener over every API handles it (and the worker's own
    // event, fired above, first).
    let firer = PythonPeer::spawn(
        &peer_dir(),
        &config,
        &["events_fire.py", "1"],
        &[
            ("LIGHTBUS_SERVICE_NAME", "auth_py"),
            ("LIGHTBUS_PROCESS_NAME", "py-1"),
        ],
    )
    .expect("start the Python firer");
    let output = tokio::task::spawn_blocking(move || firer.finish(PATIENCE))
        .await
        .expect("wait for the Python firer");
    assert!(
        output.status.success(),
        "the Python firer failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let handled = collector.wait_for(2).await;
    assert_eq!(handled[0].id, fired.id);
    assert_eq!(handled[1].canonical_name(), "auth.user_registered");
    assert_eq!(handled[1].kwargs["username"], json!("py0"));
    worker.stop().await.expect("stops cleanly");
}
