//! Redis Cluster (`redis+cluster://`, and `rediss+cluster://` over TLS): a bus whose APIs'
//! keys live on different nodes works in every role; a worker and a listener over many
//! APIs read per slot; an untrusted certificate is a clear error; a master
//! SIGKILLed under load is replaced by its replica and calls, fires and listeners resume
//! without restarting; a slot moved to another master under load (MOVED and ASK
//! redirects) loses nothing.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightbus::api::{ApiBuilder, DynamicApi, Kwargs};
use lightbus::Bus;
use lightbus_test_support::inspect::{entries, field, wait_for_group, wait_until_acknowledged};
use lightbus_test_support::{named_bus, Collector, RunningWorker, TestCluster};
use serde_json::json;

/// An API `name` with `say` (echoes `text`, counting executions) and the event `said`.
fn echo_api(name: &str, executed: Arc<AtomicUsize>) -> DynamicApi {
    ApiBuilder::new(name)
        .rpc("say", ["text"], move |kw: Kwargs| {
            let executed = executed.clone();
            async move {
                executed.fetch_add(1, Ordering::Relaxed);
                Ok::<_, &str>(kw["text"].clone())
            }
        })
        .event("said", ["n"])
        .build()
}

/// The index of the master (0, 1, 2 at start) holding `key`'s slot.
fn master_index(key: &str) -> usize {
    match TestCluster::slot_of(key) {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    }
}

fn queue(api: &str) -> String {
    format!("{api}:rpc_queue")
}

fn stream(api: &str) -> String {
    format!("{api}.*:stream")
}

/// Fires `said` on `api` with `n`.
async fn fire(bus: &Bus, api: &str, n: u64) -> lightbus::Result<lightbus::FiredEvent> {
    let mut kwargs = Kwargs::new();
    kwargs.insert("n".into(), json!(n));
    bus.fire_raw(api, "said", kwargs).await
}

/// A worker serving `apis` with one listener (`audit`) over their `said` events, and a
/// client of the same service.
struct Served {
    worker: RunningWorker,
    client: Bus,
    /// How many times the worker ran `say`.
    executed: Arc<AtomicUsize>,
    /// What the listener handled.
    heard: Collector,
}

/// Starts a [`Served`] on `config` as service `service`, once the listener's groups exist.
async fn serve(cluster: &TestCluster, config: &Path, service: &str, apis: &[String]) -> Served {
    let executed = Arc::new(AtomicUsize::new(0));
    let server = named_bus(config, service, "worker");
    for api in apis {
        server
            .register(echo_api(api, executed.clone()))
            .expect("register");
    }
    let heard = Collector::default();
    let events: Vec<String> = apis.iter().map(|api| format!("{api}.said")).collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    server
        .listen_raw(&events, "audit", heard.raw_handler())
        .expect("listen");
    let worker = RunningWorker::serve(server);
    let group = format!("{service}-audit");
    for api in apis {
        wait_for_group(cluster.node_for(&stream(api)), &stream(api), &group).await;
    }
    let client = named_bus(config, service, "client");
    for api in apis {
        client
            .register(echo_api(api, Arc::default()))
            .expect("register");
    }
    Served {
        worker,
        client,
        executed,
        heard,
    }
}

/// The `n`s of the events of `api` that `heard` collected, once all of `fired` are among
/// them or after 20 s.
async fn wait_handled(heard: &Collector, api: &str, fired: &[u64]) -> BTreeSet<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let handled: BTreeSet<u64> = heard
            .all()
            .iter()
            .filter(|event| event.api_name == api)
            .filter_map(|event| event.kwargs["n"].as_u64())
            .collect();
        if fired.iter().all(|n| handled.contains(n)) || Instant::now() > deadline {
            return handled;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Twelve APIs whose queues and streams are on all three masters; a worker serving them
/// all, with one listener over all of them. Every call is answered once, every event
/// handled, every schema stored; an undecodable entry is dead-lettered on its stream's
/// node and the listener goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_works_with_keys_on_every_node() {
    every_role(TestCluster::start(), String::new()).await;
}

/// The same on a cluster whose nodes speak only TLS (`rediss+cluster://`, client
/// certificates required, the cluster bus over TLS too), with the CA and client
/// certificate of the `tls:` section.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_works_over_tls() {
    let cluster = TestCluster::start_tls();
    assert!(
        cluster.url().starts_with("rediss+cluster://"),
        "{}",
        cluster.url()
    );
    let ca = cluster.certificates().expect("a TLS cluster").ca.clone();
    let tls = tls_yaml(&cluster, &ca);
    every_role(cluster, tls).await;
}

/// Nodes whose certificate was signed by a CA this process does not trust are refused with
/// [`lightbus::Error::Tls`], naming the cluster, the reason and the fix; nothing is sent in
/// plain text instead (the nodes have no plain-text port, and the call's queue was never
/// written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_certificate_that_does_not_verify_is_a_clear_error() {
    let cluster = TestCluster::start_tls();
    let other_ca = cluster
        .certificates()
        .expect("a TLS cluster")
        .other_ca
        .clone();
    let config = cluster
        .config()
        .root_yaml(&tls_yaml(&cluster, &other_ca))
        .rpc_timeout(2.0)
        .write();
    let error = named_bus(&config, "secure", "client")
        .call::<String>("echo.say", json!({"text": "x"}))
        .await
        .expect_err("an untrusted certificate must fail the call");
    let text = error.to_string();
    assert!(matches!(error, lightbus::Error::Tls { .. }), "{error:?}");
    assert!(text.contains(&cluster.url()), "names the cluster: {text}");
    assert!(text.contains("UnknownIssuer"), "says why: {text}");
    assert!(
        text.contains("LIGHTBUS_TLS_CA_FILE"),
        "names the fix: {text}"
    );
    assert!(!error.is_transient(), "not retried as an outage: {error:?}");
    assert_eq!(
        cluster.node_for(&queue("echo")).list_len(&queue("echo")),
        0,
        "nothing was queued"
    );
}

/// The `tls:` section: trust `ca`, present the cluster's client certificate.
fn tls_yaml(cluster: &TestCluster, ca: &Path) -> String {
    let certificates = cluster.certificates().expect("a TLS cluster");
    format!(
        "tls:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\n",
        ca.display(),
        certificates.client_cert.display(),
        certificates.client_key.display()
    )
}

/// Twelve APIs on `cluster` (its configuration ending with `root_yaml`), as described on
/// [`every_role_works_with_keys_on_every_node`].
async fn every_role(cluster: TestCluster, root_yaml: String) {
    let apis: Vec<String> = (0..12).map(|n| format!("api{n}")).collect();
    let queue_nodes: HashSet<usize> = apis.iter().map(|api| master_index(&queue(api))).collect();
    let stream_nodes: HashSet<usize> = apis.iter().map(|api| master_index(&stream(api))).collect();
    assert_eq!(
        queue_nodes.len(),
        3,
        "the queues are spread over every master"
    );
    assert_eq!(
        stream_nodes.len(),
        3,
        "the streams are spread over every master"
    );

    let config = cluster
        .config()
        .root_yaml(&root_yaml)
        .rpc_timeout(5.0)
        .schema_ttl(60)
        .write();
    let Served {
        worker,
        client,
        executed,
        heard,
    } = serve(&cluster, &config, "spread", &apis).await;
    let calls = apis.iter().enumerate().map(|(n, api)| {
        let client = client.clone();
        let target = format!("{api}.say");
        async move {
            let said: String = client
                .call(&target, json!({"text": format!("hello {n}")}))
                .await
                .unwrap_or_else(|e| panic!("{target}: {e}"));
            assert_eq!(said, format!("hello {n}"));
        }
    });
    futures::future::join_all(calls).await;
    assert_eq!(
        executed.load(Ordering::Relaxed),
        apis.len(),
        "each call ran once"
    );

    for (n, api) in apis.iter().enumerate() {
        fire(&client, api, n as u64).await.expect("fire");
    }
    let heard_events = heard.wait_for(apis.len()).await;
    let numbers: BTreeSet<u64> = heard_events
        .iter()
        .filter_map(|event| event.kwargs["n"].as_u64())
        .collect();
    assert_eq!(numbers, (0..apis.len() as u64).collect());
    for (n, api) in apis.iter().enumerate() {
        // Each event is on its stream's node (an argument is the field `:name`).
        let node = cluster.node_for(&stream(api));
        let said: Vec<Option<String>> = entries(node, &stream(api))
            .iter()
            .filter(|(_, fields)| field(fields, "event_name") == Some("said"))
            .map(|(_, fields)| field(fields, ":n").map(str::to_owned))
            .collect();
        assert_eq!(said, [Some(n.to_string())], "{api} on port {}", node.port());
    }

    // The worker stored every API's schema (`SET`s and an `SADD` over several slots).
    let schemas = client.schema().snapshot().await.expect("load the schemas");
    for api in &apis {
        assert!(schemas.contains_key(api.as_str()), "schema of {api}");
    }

    // An undecodable entry on one stream: dead-lettered on that stream's node (two slots,
    // no transaction), acknowledged, and the listener goes on.
    let poisoned = &apis[5];
    let node = cluster.node_for(&stream(poisoned));
    let _: String = redis::cmd("XADD")
        .arg(stream(poisoned))
        .arg("*")
        .arg("api_name")
        .arg(poisoned.as_str())
        .arg("event_name")
        .arg("said")
        .arg("kwargs")
        .arg("{not json")
        .query(&mut node.connection())
        .expect("add a poisoned entry");
    fire(&client, poisoned, 100)
        .await
        .expect("fire after poison");
    heard.wait_for(apis.len() + 1).await;
    let dead_stream = format!("{}:dead", stream(poisoned));
    let dead_node = cluster.node_for(&dead_stream);
    let dead = entries(dead_node, &dead_stream);
    assert_eq!(dead.len(), 1, "one dead letter");
    assert_eq!(field(&dead[0].1, "consumer_group"), Some("spread-audit"));
    wait_until_acknowledged(node, &stream(poisoned), "spread-audit").await;

    worker.stop().await.expect("the worker stops cleanly");
}

/// Load on two APIs (calls and fires) while the master holding one API's queue and stream
/// is SIGKILLed: its replica takes over and everything resumes, with counts printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_events_and_listeners_follow_a_node_failover() {
    let mut cluster = TestCluster::start_with_replicas();
    // An API whose queue and stream share a master (the one to be killed), and one
    // elsewhere.
    let doomed = (0..100)
        .map(|n| format!("echo{n}"))
        .find(|api| master_index(&queue(api)) == master_index(&stream(api)))
        .expect("an API with its queue and stream on one master");
    let other = (0..100)
        .map(|n| format!("other{n}"))
        .find(|api| {
            let elsewhere = |key: &str| master_index(key) != master_index(&queue(&doomed));
            elsewhere(&queue(api)) && elsewhere(&stream(api))
        })
        .expect("an API on other masters");
    let apis = [doomed.clone(), other.clone()];

    let config = cluster
        .config()
        .rpc_timeout(2.0)
        .validate(false)
        .api_yaml("    event_fire_timeout: 30\n")
        .event_yaml("        consumption_restart_delay: 1\n")
        .write();
    let Served {
        worker,
        client,
        executed,
        heard,
    } = serve(&cluster, &config, "echo_service", &apis).await;

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let load = |api: String| {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut answered, mut timed_out, mut failed) = (Vec::new(), 0, Vec::new());
            let (mut fired, mut fire_failures) = (Vec::new(), Vec::new());
            let mut n = 0u64;
            let target = format!("{api}.say");
            while !stop.load(Ordering::Relaxed) {
                match client.call::<String>(&target, json!({"text": "x"})).await {
                    Ok(_) => answered.push(started.elapsed()),
                    Err(error) if error.is_timeout() => timed_out += 1,
                    Err(error) => {
                        failed.push(error.to_string());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                match fire(&client, &api, n).await {
                    Ok(_) => fired.push((n, started.elapsed())),
                    Err(error) => fire_failures.push(error.to_string()),
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (answered, timed_out, failed, fired, fire_failures)
        })
    };
    let doomed_load = load(doomed.clone());
    let other_load = load(other.clone());

    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_port = cluster.kill_master_of(&queue(&doomed));
    let killed_at = started.elapsed();
    cluster.wait_for_failover(&queue(&doomed), Duration::from_secs(40));
    let promoted_at = started.elapsed();
    assert_ne!(cluster.node_for(&queue(&doomed)).port(), killed_port);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let (answered, timed_out, call_failures, fired, fire_failures) =
        doomed_load.await.expect("load task");
    let (other_answered, other_timed_out, other_failures, other_fired, other_fire_failures) =
        other_load.await.expect("load task");

    let resumed_at = answered
        .iter()
        .find(|at| **at > promoted_at)
        .copied()
        .expect("calls are answered again after the failover");
    let fired_after: Vec<u64> = fired
        .iter()
        .filter(|(_, at)| *at > resumed_at)
        .map(|(n, _)| *n)
        .collect();
    let numbers = |fired: &[(u64, Duration)]| fired.iter().map(|(n, _)| *n).collect::<Vec<_>>();
    let handled = wait_handled(&heard, &doomed, &numbers(&fired)).await;
    let other_handled = wait_handled(&heard, &other, &numbers(&other_fired)).await;
    let lost: Vec<u64> = fired
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !handled.contains(n))
        .collect();
    let other_lost: Vec<u64> = other_fired
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !other_handled.contains(n))
        .collect();
    let answered_total = answered.len() + other_answered.len();
    eprintln!(
        "cluster failover: master :{killed_port} killed at {killed_at:?}, replica promoted \
         at {promoted_at:?} ({:.1} s), calls to `{doomed}` resumed {:.1} s after the kill; \
         `{doomed}`: calls answered {}, timed out {timed_out}, failed otherwise {}, events \
         fired Ok {} (after resuming {}), fires failed {}, fired Ok but not handled \
         {lost:?}; `{other}` (other masters): calls answered {}, timed out \
         {other_timed_out}, failed {}, events fired Ok {}, not handled {}; executions {} for \
         {answered_total} answered calls; failures: {call_failures:?} {other_failures:?}",
        (promoted_at - killed_at).as_secs_f64(),
        (resumed_at - killed_at).as_secs_f64(),
        answered.len(),
        call_failures.len(),
        fired.len(),
        fired_after.len(),
        fire_failures.len(),
        other_answered.len(),
        other_failures.len(),
        other_fired.len(),
        other_lost.len(),
        executed.load(Ordering::Relaxed),
    );
    assert!(
        !fired_after.is_empty(),
        "events were fired after the failover"
    );
    assert!(
        fired_after.iter().all(|n| handled.contains(n)),
        "events fired after the failover were lost: {lost:?}"
    );
    assert!(
        other_lost.is_empty(),
        "events of the other API lost: {other_lost:?}"
    );
    assert!(fire_failures.is_empty(), "fires failed: {fire_failures:?}");
    assert!(
        other_fire_failures.is_empty(),
        "fires failed: {other_fire_failures:?}"
    );
    assert!(
        lost.len() <= 5,
        "more than a replication lag's worth lost: {lost:?}"
    );
    assert!(
        executed.load(Ordering::Relaxed) >= answered_total,
        "every answered call was executed"
    );
    assert!(
        (resumed_at - killed_at) < Duration::from_secs(20),
        "service resumed within 20 s of the kill"
    );
    worker.stop().await.expect("the worker stops cleanly");
}

/// The slot of an API's queue, then of its stream, moved to another master while calls
/// and fires go on: held half-way (`MIGRATING`/`IMPORTING`, so commands meet `ASK`) for a
/// second, then finished (`MOVED`). No call fails or runs twice, no event is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_slots_under_load_loses_nothing() {
    let cluster = TestCluster::start();
    let api = "moving";
    let config = cluster.config().rpc_timeout(5.0).validate(false).write();
    let Served {
        worker,
        client,
        executed,
        heard,
    } = serve(&cluster, &config, "mover", &[api.to_owned()]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut answered, mut failures, mut fired) = (0usize, Vec::new(), Vec::new());
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match client
                    .call::<String>("moving.say", json!({"text": "x"}))
                    .await
                {
                    Ok(_) => answered += 1,
                    Err(error) => failures.push(error.to_string()),
                }
                match fire(&client, "moving", n).await {
                    Ok(_) => fired.push(n),
                    Err(error) => failures.push(error.to_string()),
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (answered, failures, fired)
        })
    };
    for key in [queue(api), stream(api)] {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let slot = TestCluster::slot_of(&key);
        let from = cluster.node_for(&key).port();
        let to = cluster
            .masters()
            .into_iter()
            .find(|node| node.port() != from)
            .expect("another master");
        cluster.migrate_slot_begin(slot, to);
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.migrate_slot_finish(slot, to);
        assert_eq!(cluster.node_for(&key).port(), to.port(), "{key} moved");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (answered, failures, fired) = load.await.expect("load task");
    let handled = wait_handled(&heard, api, &fired).await;
    let lost: Vec<u64> = fired
        .iter()
        .copied()
        .filter(|n| !handled.contains(n))
        .collect();
    eprintln!(
        "resharding: calls answered {answered}, executions {}, events fired {}, handled {}, \
         lost {}, failures {failures:?}",
        executed.load(Ordering::Relaxed),
        fired.len(),
        handled.len(),
        lost.len()
    );
    assert!(answered > 0, "calls were made");
    assert!(
        failures.is_empty(),
        "nothing fails while slots move: {failures:?}"
    );
    assert_eq!(
        executed.load(Ordering::Relaxed),
        answered,
        "each call ran exactly once"
    );
    assert!(lost.is_empty(), "events lost: {lost:?}");
    worker.stop().await.expect("the worker stops cleanly");
}
