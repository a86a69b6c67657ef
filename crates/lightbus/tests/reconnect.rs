//! Reconnects that lose nothing: Redis restarted under an idle process, and an outage in
//! the middle of a stream of fires, on a private `redis-server`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightbus::api::{ApiBuilder, DynamicApi, Kwargs};
use lightbus_test_support::inspect::wait_for_group;
use lightbus_test_support::{named_bus, Collector, RunningWorker, TestRedis};
use serde_json::json;

fn echo_api() -> DynamicApi {
    ApiBuilder::new("echo")
        .rpc("say", ["text"], |kw: Kwargs| async move {
            Ok::<_, &str>(kw["text"].clone())
        })
        .event("said", ["n"])
        .build()
}

fn said(n: usize) -> Kwargs {
    let mut kwargs = Kwargs::new();
    kwargs.insert("n".into(), json!(n));
    kwargs
}

/// Redis restarts while every process idles with warm connections. Then the client's
/// first call and its first fires (more than it has shared connections) succeed, and the
/// worker handles the events fired after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_and_fires_after_a_restart_succeed() {
    let mut redis = TestRedis::start();
    let config = redis.config().rpc_timeout(5.0).validate(false).write();
    let server = named_bus(&config, "echo_service", "worker");
    server.register(echo_api()).expect("register echo");
    let heard = Collector::default();
    server
        .listen_raw(&["echo.said"], "audit", heard.raw_handler())
        .expect("listen");
    let worker = RunningWorker::serve(server);
    wait_for_group(&redis, "echo.*:stream", "echo_service-audit").await;

    let client = named_bus(&config, "echo_service", "client");
    client.register(echo_api()).expect("register echo");
    // Warm every connection: a call, and fires over all shared connections.
    let answer: String = client
        .call("echo.say", json!({"text": "before"}))
        .await
        .expect("a call before the restart");
    assert_eq!(answer, "before");
    for n in 0..8 {
        client
            .fire_raw("echo", "said", said(n))
            .await
            .expect("fire before");
    }
    heard.wait_for(8).await;

    redis.restart();
    // Idle for a moment, as a process between requests would.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let answer: String = client
        .call("echo.say", json!({"text": "after"}))
        .await
        .expect("the first call after Redis restarted");
    assert_eq!(answer, "after");
    let call_took = started.elapsed();
    for n in 8..16 {
        client
            .fire_raw("echo", "said", said(n))
            .await
            .unwrap_or_else(|e| panic!("fire {n}, among the first after the restart: {e}"));
    }
    let seen = heard.wait_for(16).await;
    let mut numbers: Vec<u64> = seen.iter().filter_map(|m| m.kwargs["n"].as_u64()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers, (0..16).collect::<Vec<u64>>());
    eprintln!("first call after the restart took {call_took:?}");
    worker.stop().await.expect("the worker stops cleanly");
}

/// Redis goes away for about two seconds in the middle of a stream of fires. Every fire
/// that returned `Ok` is in the stream afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fire_that_returned_ok_survives_an_outage() {
    let mut redis = TestRedis::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"]);
    let config = redis
        .config()
        .validate(false)
        .api_yaml("    event_fire_timeout: 10\n")
        .write();
    let firer = named_bus(&config, "echo_service", "firer");
    firer.register(echo_api()).expect("register echo");
    let stop = Arc::new(AtomicBool::new(false));
    let fires = {
        let (firer, stop) = (firer.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (Vec::new(), Vec::new());
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                match firer.fire_raw("echo", "said", said(n)).await {
                    Ok(fired) => ok.push(fired.native_id),
                    Err(error) => failed.push(format!("{n}: {error}")),
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = fires.await.expect("the firing task");
    let stored: Vec<String> = lightbus_test_support::inspect::entries(&redis, "echo.*:stream")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let missing: Vec<&String> = ok.iter().filter(|id| !stored.contains(id)).collect();
    eprintln!(
        "fires returned Ok: {}, failed: {}, stored: {}, Ok but missing: {}",
        ok.len(),
        failed.len(),
        stored.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "fires that returned Ok but are not stored: {missing:?}"
    );
    assert!(
        failed.is_empty(),
        "fires failed during a 2 s outage: {failed:?}"
    );
}
