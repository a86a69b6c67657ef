//! The `lightbus` tools on a Redis Cluster (`redis+cluster://`): what they list, search and
//! settle is found on every master, not only the node a connection happens to reach
//! (`SCAN`, `CLIENT LIST` and `INFO` are per node there), and `call` reaches a worker.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use lightbus::api::{ApiBuilder, Kwargs};
use lightbus::Bus;
use lightbus_test_support::TestCluster;
use serde_json::{json, Value};
use support::{auth_api, json_lines, stderr, wait_with_timeout};

fn lightbus(config: &Path, home: &Path, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_lightbus"))
        .env("LIGHTBUS_CONFIG", config)
        .env("HOME", home)
        .env("RUST_LOG", "warn")
        .env_remove("LIGHTBUS_SERVICE_NAME")
        .env_remove("LIGHTBUS_PROCESS_NAME")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lightbus");
    wait_with_timeout(child, Duration::from_secs(30))
}

fn stream(api: &str) -> String {
    format!("{api}.*:stream")
}

#[test]
fn the_tools_see_every_master_of_a_cluster() {
    let cluster = TestCluster::start();
    let config = cluster.config().validate(false).write();
    let home = tempfile::tempdir().expect("a temporary HOME");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let apis: Vec<String> = (0..6).map(|n| format!("api{n}")).collect();
    let nodes: std::collections::HashSet<u16> = apis
        .iter()
        .map(|api| cluster.node_for(&stream(api)).port())
        .collect();
    assert_eq!(nodes.len(), 3, "the streams are on every master");

    // One event per API, a consumer group on each stream, dead letters on two nodes, and
    // a worker serving `auth`.
    let worker = runtime.block_on(async {
        let bus = Bus::builder()
            .config_file(&config)
            .service_name("firer")
            .build()
            .expect("bus");
        for api in &apis {
            bus.register(ApiBuilder::new(api).event("said", ["n"]).build())
                .expect("register");
        }
        for (n, api) in apis.iter().enumerate() {
            let mut kwargs = Kwargs::new();
            kwargs.insert("n".into(), json!(n));
            bus.fire_raw(api, "said", kwargs).await.expect("fire");
        }
        let server = Bus::builder()
            .config_file(&config)
            .service_name("auth_service")
            .build()
            .expect("bus");
        server.register(auth_api()).expect("register");
        lightbus_test_support::RunningWorker::serve(server)
    });
    for api in &apis {
        let _: redis::Value = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream(api))
            .arg("billing-audit")
            .arg("0")
            .query(&mut cluster.node_for(&stream(api)).connection())
            .expect("create a group");
    }
    let dead: Vec<String> = apis.iter().map(|api| format!("{}:dead", stream(api))).fold(
        Vec::new(),
        |mut picked, key| {
            let port = cluster.node_for(&key).port();
            if picked.len() < 2 && picked.iter().all(|k| cluster.node_for(k).port() != port) {
                picked.push(key);
            }
            picked
        },
    );
    assert_eq!(dead.len(), 2, "dead-letter streams on two nodes");
    for key in &dead {
        let _: String = redis::cmd("XADD")
            .arg(key)
            .arg("*")
            .arg("api_name")
            .arg("x")
            .arg("error")
            .arg("bad")
            .query(&mut cluster.node_for(key).connection())
            .expect("add a dead letter");
    }

    let status = lightbus(&config, home.path(), &["status", "--json"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let status: Value = serde_json::from_slice(&status.stdout).expect("one JSON object");
    let groups: Vec<&str> = status["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter(|group| group["group"] == "billing-audit")
        .filter_map(|group| group["stream"].as_str())
        .collect();
    assert_eq!(groups.len(), apis.len(), "every stream's group: {status}");

    let found = json_lines(&lightbus(&config, home.path(), &["inspect"]));
    assert_eq!(
        found.len(),
        apis.len(),
        "every event on every node: {found:?}"
    );

    let listed = json_lines(&lightbus(&config, home.path(), &["groups"]));
    assert_eq!(
        listed
            .iter()
            .filter(|group| group["group"] == "billing-audit")
            .count(),
        apis.len()
    );

    let letters = json_lines(&lightbus(&config, home.path(), &["dead", "list"]));
    assert_eq!(letters.len(), 2, "dead letters of both nodes: {letters:?}");
    let dead_stream = dead[0].trim_end_matches(":dead");
    let replayed = lightbus(
        &config,
        home.path(),
        &["dead", "replay", dead_stream, "--all"],
    );
    assert!(replayed.status.success(), "{}", stderr(&replayed));
    assert_eq!(
        json_lines(&lightbus(&config, home.path(), &["dead", "list"])).len(),
        1,
        "the replayed one is gone"
    );

    let called = lightbus(
        &config,
        home.path(),
        &[
            "call",
            "auth.check_password",
            "username=admin",
            "password=secret",
        ],
    );
    assert!(called.status.success(), "{}", stderr(&called));
    assert_eq!(String::from_utf8_lossy(&called.stdout).trim(), "true");

    runtime
        .block_on(worker.stop())
        .expect("the worker stops cleanly");
}
