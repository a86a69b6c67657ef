//! Redis Cluster over TLS (`rediss+cluster://`): on a cluster whose nodes speak only TLS
//! (client certificates required, the cluster bus over TLS too), a bus whose APIs' keys live
//! on every node works in every role, with the CA and client certificate of the `tls:`
//! section; a cluster whose certificates were signed by a CA not trusted is refused with a
//! TLS error, never retried in plain text.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use lightbus::api::{ApiBuilder, DynamicApi, Kwargs};
use lightbus::Error;
use lightbus_test_support::inspect::{entries, field, wait_for_group};
use lightbus_test_support::{bus, named_bus, Collector, RunningWorker, TestCluster};
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

/// The index of the master (0, 1, 2) holding `key`'s slot.
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

/// Six APIs whose queues and streams are on all three masters, over TLS only; a worker
/// serving them all, with one listener over all of them. Every call is answered once, every
/// event handled (and its entry is on its stream's node), every schema stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_works_over_tls_with_keys_on_every_node() {
    let cluster = TestCluster::start_tls();
    assert!(
        cluster.url().starts_with("rediss+cluster://"),
        "{}",
        cluster.url()
    );
    let apis: Vec<String> = (0..6).map(|n| format!("api{n}")).collect();
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

    let ca = cluster.certificates().expect("a TLS cluster").ca.clone();
    let config = cluster
        .config()
        .root_yaml(&tls_yaml(&cluster, &ca))
        .rpc_timeout(5.0)
        .schema_ttl(60)
        .write();
    let executed = Arc::new(AtomicUsize::new(0));
    let server = named_bus(&config, "secure", "worker");
    for api in &apis {
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
    for api in &apis {
        wait_for_group(cluster.node_for(&stream(api)), &stream(api), "secure-audit").await;
    }

    let client = named_bus(&config, "secure", "client");
    for api in &apis {
        client
            .register(echo_api(api, Arc::default()))
            .expect("register");
    }
    let calls = apis.iter().enumerate().map(|(n, api)| {
        let client = client.clone();
        let target = format!("{api}.say");
        async move {
            let said: String = client
                .call(&target, json!({"text": format!("over TLS {n}")}))
                .await
                .unwrap_or_else(|e| panic!("{target} over rediss+cluster://: {e}"));
            assert_eq!(said, format!("over TLS {n}"));
        }
    });
    futures::future::join_all(calls).await;
    assert_eq!(
        executed.load(Ordering::Relaxed),
        apis.len(),
        "each call ran once"
    );

    for (n, api) in apis.iter().enumerate() {
        let mut kwargs = Kwargs::new();
        kwargs.insert("n".into(), json!(n));
        client
            .fire_raw(api, "said", kwargs)
            .await
            .unwrap_or_else(|e| panic!("fire {api}.said over rediss+cluster://: {e}"));
    }
    let heard_events = heard.wait_for(apis.len()).await;
    let numbers: BTreeSet<u64> = heard_events
        .iter()
        .filter_map(|event| event.kwargs["n"].as_u64())
        .collect();
    assert_eq!(numbers, (0..apis.len() as u64).collect());
    for (n, api) in apis.iter().enumerate() {
        let node = cluster.node_for(&stream(api));
        // Each argument is a field `:name` holding its JSON.
        let said: Vec<Option<String>> = entries(node, &stream(api))
            .iter()
            .filter(|(_, fields)| field(fields, "event_name") == Some("said"))
            .map(|(_, fields)| field(fields, ":n").map(str::to_owned))
            .collect();
        assert_eq!(
            said,
            [Some(n.to_string())],
            "{api}'s event is on its stream's node (port {})",
            node.port()
        );
    }

    let schemas = client.schema().snapshot().await.expect("load the schemas");
    for api in &apis {
        assert!(schemas.contains_key(api.as_str()), "schema of {api}");
    }

    worker.stop().await.expect("the worker stops cleanly");
}

/// Nodes whose certificate was signed by a CA this process does not trust are refused with
/// [`Error::Tls`], naming the cluster, the reason and the fix; nothing is sent in plain text
/// instead (the nodes have no plain-text port, and the call's queue was never written).
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
    let error = bus(&config)
        .call::<String>("echo.say", json!({"text": "x"}))
        .await
        .expect_err("an untrusted certificate must fail the call");
    let text = error.to_string();
    eprintln!("the call failed with: {text}");
    assert!(matches!(error, Error::Tls { .. }), "{error:?}");
    assert!(text.contains(&cluster.url()), "names the cluster: {text}");
    assert!(
        text.contains("UnknownIssuer") || text.contains("certificate"),
        "says why: {text}"
    );
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
