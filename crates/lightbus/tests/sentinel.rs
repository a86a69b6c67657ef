//! Redis Sentinel: a bus on `redis+sentinel://` finds the master through the sentinels and
//! follows a failover (master SIGKILLed under load, replica promoted) without restarting.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightbus::api::{ApiBuilder, DynamicApi, Kwargs};
use lightbus_test_support::inspect::wait_for_group;
use lightbus_test_support::{named_bus, Collector, RunningWorker, TestSentinelGroup};
use serde_json::json;

fn echo_api() -> DynamicApi {
    ApiBuilder::new("echo")
        .rpc("say", ["text"], |kw: Kwargs| async move {
            Ok::<_, &str>(kw["text"].clone())
        })
        .event("said", ["n"])
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_events_and_listeners_follow_a_failover() {
    follow_a_failover(TestSentinelGroup::start()).await;
}

/// The same over `rediss+sentinel://`: TLS to the sentinels and to both masters, with a
/// client certificate, and TLS replication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_is_followed_over_tls() {
    follow_a_failover(TestSentinelGroup::start_tls()).await;
}

async fn follow_a_failover(mut group: TestSentinelGroup) {
    let tls = match group.master.certificates() {
        Some(certs) => format!(
            "tls:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\n",
            certs.ca.display(),
            certs.client_cert.display(),
            certs.client_key.display()
        ),
        None => String::new(),
    };
    let config = group
        .master
        .config()
        .url(group.url())
        .root_yaml(&tls)
        .rpc_timeout(2.0)
        .validate(false)
        .api_yaml("    event_fire_timeout: 30\n")
        .event_yaml("        consumption_restart_delay: 1\n")
        .write();
    let server = named_bus(&config, "echo_service", "worker");
    server.register(echo_api()).expect("register echo");
    let heard = Collector::default();
    server
        .listen_raw(&["echo.said"], "audit", heard.raw_handler())
        .expect("listen");
    let worker = RunningWorker::serve(server);
    wait_for_group(&group.master, "echo.*:stream", "echo_service-audit").await;

    let client = named_bus(&config, "echo_service", "client");
    client.register(echo_api()).expect("register echo");
    let first: String = client
        .call("echo.say", json!({"text": "via sentinel"}))
        .await
        .expect("a call through the master the sentinels name");
    assert_eq!(first, "via sentinel");

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let calls = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut answered, mut timed_out, mut failed) = (Vec::new(), 0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match client
                    .call::<String>("echo.say", json!({"text": "x"}))
                    .await
                {
                    Ok(_) => answered.push(started.elapsed()),
                    Err(error) if error.is_timeout() => timed_out += 1,
                    Err(error) => {
                        failed.push(error.to_string());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (answered, timed_out, failed)
        })
    };
    let fires = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (Vec::new(), Vec::new());
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut kwargs = Kwargs::new();
                kwargs.insert("n".into(), json!(n));
                match client.fire_raw("echo", "said", kwargs).await {
                    Ok(_) => ok.push((n, started.elapsed())),
                    Err(error) => failed.push(error.to_string()),
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, failed)
        })
    };

    tokio::time::sleep(Duration::from_secs(1)).await;
    let old_master = group.master.port();
    group.master.stop(); // SIGKILL
    let killed_at = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(40);
    while group.current_master_port() == Some(old_master) {
        assert!(Instant::now() < deadline, "no failover within 40 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let promoted_at = started.elapsed();
    assert_eq!(group.current_master_port(), Some(group.replica.port()));
    // Load goes on for a while on the new master.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let (answered, timed_out, call_failures) = calls.await.expect("calls task");
    let (fired, fire_failures) = fires.await.expect("fires task");

    let resumed_at = answered
        .iter()
        .find(|at| **at > killed_at)
        .copied()
        .expect("calls are answered again after the failover");
    let fired_after: Vec<u64> = fired
        .iter()
        .filter(|(_, at)| *at > resumed_at)
        .map(|(n, _)| *n)
        .collect();
    // Every event fired Ok is handled, except ones the old master acknowledged and had not
    // yet replicated when it was killed (asynchronous replication): counted, and every
    // event fired after the failover must be there.
    let deadline = Instant::now() + Duration::from_secs(20);
    let handled = loop {
        let handled: BTreeSet<u64> = heard
            .all()
            .iter()
            .filter_map(|event| event.kwargs["n"].as_u64())
            .collect();
        if fired.iter().all(|(n, _)| handled.contains(n)) || Instant::now() > deadline {
            break handled;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lost: Vec<u64> = fired
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !handled.contains(n))
        .collect();
    eprintln!(
        "failover ({}): killed at {killed_at:?}, promoted at {promoted_at:?} ({:.1} s), calls \
         resumed at {resumed_at:?} ({:.1} s after the kill); calls answered {}, timed out \
         {timed_out}, failed otherwise {}; events fired Ok {} (after resuming {}), failed \
         {}, handled {}, fired Ok but not handled {lost:?}; call failures: {call_failures:?}",
        group.url(),
        (promoted_at - killed_at).as_secs_f64(),
        (resumed_at - killed_at).as_secs_f64(),
        answered.len(),
        call_failures.len(),
        fired.len(),
        fired_after.len(),
        fire_failures.len(),
        handled.len(),
    );
    assert!(
        fired_after.iter().all(|n| handled.contains(n)),
        "events fired after the failover were lost: {lost:?}"
    );
    assert!(
        !fired_after.is_empty(),
        "events were fired after the failover"
    );
    assert!(fire_failures.is_empty(), "fires failed: {fire_failures:?}");
    assert!(
        lost.len() <= 5,
        "more than a replication lag's worth lost: {lost:?}"
    );
    assert!(
        (resumed_at - killed_at) < Duration::from_secs(20),
        "service resumed within 20 s of the kill"
    );
    worker.stop().await.expect("the worker stops cleanly");
}
