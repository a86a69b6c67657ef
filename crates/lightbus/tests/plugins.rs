//! Plugins: a user plugin sees every hook in order; the built-in `internal_state` and
//! `internal_metrics` plugins fire the peer's events, read back here from a real Redis.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightbus::api::ApiBuilder;
use lightbus::message::{EventMessage, ResultMessage, RpcMessage};
use lightbus::plugin::{HookFuture, Plugin};
use lightbus::{Bus, Since};
use lightbus_test_support::inspect::{self, field, Entry};
use lightbus_test_support::{named_bus, RunningWorker, TestRedis};
use serde_json::{json, Value};

/// The `auth` API, built at run time: one RPC and one event.
fn auth_api() -> lightbus::api::DynamicApi {
    ApiBuilder::new("auth")
        .rpc(
            "check_password",
            ["username", "password"],
            |kwargs| async move { Ok::<_, String>(json!(kwargs["password"] == "secret")) },
        )
        .event("user_registered", ["username"])
        .build()
}

/// A configuration on `redis` with `plugins_yaml` as its `plugins:` section.
fn config(redis: &TestRedis, plugins_yaml: &str) -> PathBuf {
    redis
        .config()
        .validate(false)
        .plugins_yaml(plugins_yaml)
        .write()
}

/// The entries of `stream` that are events, each with its event name, in stored order.
fn events(redis: &TestRedis, stream: &str) -> Vec<(String, Vec<(String, String)>)> {
    inspect::entries(redis, stream)
        .into_iter()
        .filter_map(|(_, fields): Entry| Some((field(&fields, "event_name")?.to_owned(), fields)))
        .collect()
}

/// The parameter names of an entry, in stored order, and their decoded values.
fn parameters(fields: &[(String, String)]) -> (Vec<String>, serde_json::Map<String, Value>) {
    let mut names = Vec::new();
    let mut values = serde_json::Map::new();
    for (key, value) in fields {
        if let Some(name) = key.strip_prefix(':') {
            names.push(name.to_owned());
            values.insert(
                name.to_owned(),
                serde_json::from_str(value).expect("parameters are JSON"),
            );
        }
    }
    (names, values)
}

/// Records which hooks ran, in order.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn note<'a>(&'a self, what: String) -> HookFuture<'a> {
        self.0.lock().unwrap().push(what);
        lightbus::plugin::nothing()
    }

    fn position(&self, what: &str) -> usize {
        let all = self.0.lock().unwrap();
        all.iter()
            .position(|entry| entry == what)
            .unwrap_or_else(|| panic!("hook `{what}` never ran: {all:?}"))
    }
}

impl Plugin for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn before_worker_start<'a>(&'a self, _bus: &'a Bus) -> HookFuture<'a> {
        self.note("before_worker_start".into())
    }
    fn after_worker_start<'a>(&'a self, _bus: &'a Bus) -> HookFuture<'a> {
        self.note("after_worker_start".into())
    }
    fn before_worker_stop<'a>(&'a self, _bus: &'a Bus) -> HookFuture<'a> {
        self.note("before_worker_stop".into())
    }
    fn after_worker_stop<'a>(&'a self, _bus: &'a Bus) -> HookFuture<'a> {
        self.note("after_worker_stop".into())
    }
    fn before_rpc_call<'a>(&'a self, _bus: &'a Bus, call: &'a RpcMessage) -> HookFuture<'a> {
        self.note(format!("before_rpc_call {}", call.canonical_name()))
    }
    fn after_rpc_call<'a>(
        &'a self,
        _bus: &'a Bus,
        call: &'a RpcMessage,
        result: &'a ResultMessage,
    ) -> HookFuture<'a> {
        assert_eq!(result.rpc_message_id, call.id);
        self.note(format!("after_rpc_call {:?}", result.outcome))
    }
    fn before_rpc_execution<'a>(&'a self, _bus: &'a Bus, call: &'a RpcMessage) -> HookFuture<'a> {
        self.note(format!("before_rpc_execution {}", call.canonical_name()))
    }
    fn after_rpc_execution<'a>(
        &'a self,
        _bus: &'a Bus,
        _call: &'a RpcMessage,
        result: &'a ResultMessage,
    ) -> HookFuture<'a> {
        self.note(format!("after_rpc_execution {:?}", result.outcome))
    }
    fn before_event_fire<'a>(&'a self, _bus: &'a Bus, event: &'a EventMessage) -> HookFuture<'a> {
        assert!(event.native_id.is_none());
        self.note(format!("before_event_fire {}", event.canonical_name()))
    }
    fn after_event_fire<'a>(&'a self, _bus: &'a Bus, event: &'a EventMessage) -> HookFuture<'a> {
        assert!(event.native_id.is_some());
        self.note(format!("after_event_fire {}", event.canonical_name()))
    }
    fn before_event_handling<'a>(
        &'a self,
        _bus: &'a Bus,
        listener: &'a str,
        event: &'a EventMessage,
    ) -> HookFuture<'a> {
        self.note(format!(
            "before_event_handling {listener} {}",
            event.event_name
        ))
    }
    fn after_event_handling<'a>(
        &'a self,
        _bus: &'a Bus,
        listener: &'a str,
        event: &'a EventMessage,
        failure: Option<&'a str>,
    ) -> HookFuture<'a> {
        self.note(format!(
            "after_event_handling {listener} {} {failure:?}",
            event.event_name
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_plugin_sees_every_hook_in_order() {
    let redis = TestRedis::start();
    let config = config(&redis, "  internal_state: {enabled: false}\n");
    let bus = named_bus(&config, "auth_service", "auth-1");
    let recorder = Recorder::default();
    bus.add_plugin(recorder.clone());
    assert!(bus.has_plugin("recorder") && !bus.has_plugin("internal_state"));
    bus.register(auth_api()).expect("register");
    let (sender, mut handled) = tokio::sync::mpsc::unbounded_channel::<()>();
    bus.listener("welcome")
        .since(Since::Beginning)
        .listen_raw(&["auth.user_registered"], move |_m: EventMessage| {
            let _ = sender.send(());
            futures::future::ready(())
        })
        .expect("listen");
    let worker = RunningWorker::serve(bus.clone());
    let valid: bool = bus
        .call(
            "auth.check_password",
            json!({"username": "a", "password": "secret"}),
        )
        .await
        .expect("call");
    assert!(valid);
    bus.fire_raw(
        "auth",
        "user_registered",
        json!({"username": "a"}).as_object().cloned().unwrap(),
    )
    .await
    .expect("fire");
    tokio::time::timeout(Duration::from_secs(10), handled.recv())
        .await
        .expect("handled");
    // The after-handling hook runs once the event is acknowledged.
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await.expect("clean stop");

    let order = |earlier: &str, later: &str| {
        assert!(
            recorder.position(earlier) < recorder.position(later),
            "`{earlier}` should run before `{later}`: {:?}",
            recorder.0.lock().unwrap()
        );
    };
    order("before_worker_start", "after_worker_start");
    order("after_worker_start", "before_worker_stop");
    order("before_worker_stop", "after_worker_stop");
    order(
        "before_rpc_call auth.check_password",
        "before_rpc_execution auth.check_password",
    );
    order(
        "before_rpc_execution auth.check_password",
        "after_rpc_execution Ok(Bool(true))",
    );
    order(
        "before_rpc_execution auth.check_password",
        "after_rpc_call Ok(Bool(true))",
    );
    order(
        "before_event_fire auth.user_registered",
        "after_event_fire auth.user_registered",
    );
    // The listener may pick the event up before `fire` returns to the firing task, so
    // handling is ordered after the fire began, not after it finished.
    order(
        "before_event_fire auth.user_registered",
        "before_event_handling welcome user_registered",
    );
    order(
        "before_event_handling welcome user_registered",
        "after_event_handling welcome user_registered None",
    );
}

/// The peer's schema of `internal.state` (Python Lightbus 1.1.2, `api_to_schema`).
fn peer_state_schema() -> Value {
    let worker = |event: &str| {
        json!({"parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {"service_name": {}, "process_name": {}, "metrics_enabled": {},
                           "api_names": {}, "listening_for": {}, "timestamp": {},
                           "ping_interval": {}},
            "required": ["service_name", "process_name", "metrics_enabled", "api_names",
                         "listening_for", "timestamp", "ping_interval"],
            "title": format!("Event internal.state.{event} parameters")
        }})
    };
    json!({"rpcs": {}, "events": {
        "worker_ping": worker("worker_ping"),
        "worker_started": worker("worker_started"),
        "worker_stopped": {"parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {"process_name": {}, "timestamp": {}},
            "required": ["process_name", "timestamp"],
            "title": "Event internal.state.worker_stopped parameters"
        }}
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_state_reports_start_pings_and_stop() {
    let redis = TestRedis::start();
    let config = config(
        &redis,
        "  internal_state:\n    enabled: true\n    ping_interval: 0.3\n",
    );
    let bus = named_bus(&config, "auth_service", "auth-1");
    bus.register(auth_api()).expect("register");
    bus.listen_raw(&["auth.user_registered"], "welcome", |_m: EventMessage| {
        futures::future::ready(())
    })
    .expect("listen");
    let started = Instant::now();
    let worker = RunningWorker::serve(bus.clone());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    worker.stop().await.expect("clean stop");
    let ran_for = started.elapsed();

    let events = events(&redis, "internal.state.*:stream");
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"worker_started"), "{names:?}");
    assert_eq!(names.last(), Some(&"worker_stopped"), "{names:?}");
    let pings = names.iter().filter(|name| **name == "worker_ping").count();
    let most = (ran_for.as_secs_f64() / 0.3) as usize;
    assert!(
        (2..=most).contains(&pings),
        "{pings} pings in {ran_for:?}: {names:?}"
    );

    let (keys, started) = parameters(&events[0].1);
    assert_eq!(
        keys,
        [
            "process_name",
            "service_name",
            "metrics_enabled",
            "api_names",
            "listening_for",
            "timestamp",
            "ping_enabled",
            "ping_interval",
            "hostname",
            "pid",
            "max_memory_use"
        ]
    );
    assert_eq!(started["process_name"], "auth-1");
    assert_eq!(started["service_name"], "auth_service");
    assert_eq!(started["metrics_enabled"], false);
    assert_eq!(started["api_names"], json!(["auth"]));
    assert_eq!(started["listening_for"], json!(["auth.user_registered"]));
    assert_eq!(started["ping_enabled"], true);
    assert_eq!(started["ping_interval"], json!(0.3));
    assert_eq!(started["pid"], json!(std::process::id()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let timestamp = started["timestamp"].as_f64().expect("a float timestamp");
    assert!((now - timestamp).abs() < 60.0, "{timestamp} vs {now}");
    assert!(started["max_memory_use"].as_u64().unwrap_or(0) > 0);
    let metadata: Vec<(&str, &str)> = events[0]
        .1
        .iter()
        .take(4)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(metadata[1], ("api_name", "internal.state"));
    assert_eq!(metadata[3], ("version", "1"));

    let (keys, stopped) = parameters(&events[events.len() - 1].1);
    assert_eq!(keys, ["process_name", "service_name"]);
    assert_eq!(stopped["process_name"], "auth-1");

    // The worker published the internal APIs' schemas, exactly as the peer does.
    let stored: String = redis::cmd("GET")
        .arg("schema:internal.state")
        .query(&mut redis.connection())
        .expect("the internal.state schema is stored");
    let stored: Value = serde_json::from_str(&stored).expect("JSON");
    assert_eq!(stored, peer_state_schema());
    let metrics: Option<String> = redis::cmd("GET")
        .arg("schema:internal.metrics")
        .query(&mut redis.connection())
        .expect("GET");
    assert!(metrics.is_some(), "internal.metrics is registered too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_metrics_reports_every_rpc_and_event() {
    let redis = TestRedis::start();
    let config = config(&redis, "  internal_metrics: {enabled: true}\n");
    let worker_bus = named_bus(&config, "auth_service", "auth-1");
    worker_bus.register(auth_api()).expect("register");
    let (sender, mut handled) = tokio::sync::mpsc::unbounded_channel::<()>();
    worker_bus
        .listener("welcome")
        .since(Since::Beginning)
        .listen_raw(&["auth.user_registered"], move |_m: EventMessage| {
            let _ = sender.send(());
            futures::future::ready(())
        })
        .expect("listen");
    let worker = RunningWorker::serve(worker_bus.clone());
    let caller = named_bus(&config, "web", "web-1");
    assert!(caller.has_plugin("internal_metrics"));
    let valid: bool = caller
        .call(
            "auth.check_password",
            json!({"username": "admin", "password": "secret"}),
        )
        .await
        .expect("call");
    assert!(valid);
    let fired = worker_bus
        .fire_raw(
            "auth",
            "user_registered",
            json!({"username": "admin"}).as_object().cloned().unwrap(),
        )
        .await
        .expect("fire");
    tokio::time::timeout(Duration::from_secs(10), handled.recv())
        .await
        .expect("handled");
    tokio::time::sleep(Duration::from_millis(500)).await;
    worker.stop().await.expect("clean stop");

    let events = events(&redis, "internal.metrics.*:stream");
    let find = |name: &str| {
        let found: Vec<_> = events.iter().filter(|(event, _)| event == name).collect();
        assert_eq!(found.len(), 1, "one {name}: {events:#?}");
        parameters(&found[0].1)
    };
    let common = ["timestamp", "service_name", "process_name"];
    let with_common = |keys: &[&str]| -> Vec<String> {
        keys.iter()
            .chain(common.iter())
            .map(|k| (*k).to_owned())
            .collect()
    };

    let (keys, sent) = find("rpc_call_sent");
    assert_eq!(
        keys,
        with_common(&["id", "api_name", "procedure_name", "kwargs"])
    );
    assert_eq!(sent["api_name"], "auth");
    assert_eq!(sent["procedure_name"], "check_password");
    assert_eq!(
        sent["kwargs"],
        json!({"username": "admin", "password": "secret"})
    );
    assert_eq!(sent["service_name"], "web");
    assert_eq!(sent["process_name"], "web-1");
    let call_id = sent["id"].clone();

    for (name, service) in [
        ("rpc_call_received", "auth_service"),
        ("rpc_response_received", "web"),
    ] {
        let (keys, values) = find(name);
        assert_eq!(keys, with_common(&["id", "api_name", "procedure_name"]));
        assert_eq!(values["id"], call_id, "{name}");
        assert_eq!(values["service_name"], service, "{name}");
    }
    let (keys, response) = find("rpc_response_sent");
    assert_eq!(
        keys,
        with_common(&["id", "api_name", "procedure_name", "result"])
    );
    assert_eq!(response["result"], true);
    assert_eq!(response["id"], call_id);

    for name in ["event_fired", "event_received", "event_processed"] {
        let (keys, values) = find(name);
        assert_eq!(
            keys,
            with_common(&["event_id", "api_name", "event_name", "kwargs"]),
            "{name}"
        );
        assert_eq!(values["event_id"], json!(fired.id), "{name}");
        assert_eq!(values["api_name"], "auth");
        assert_eq!(values["event_name"], "user_registered");
        assert_eq!(values["kwargs"], json!({"username": "admin"}));
        assert_eq!(values["service_name"], "auth_service");
        assert!(values["timestamp"].is_f64(), "{name}");
    }
    assert!(
        events
            .iter()
            .all(|(_, fields)| parameters(fields).1["api_name"] != "internal.metrics"),
        "the plugin never reports its own events"
    );
}
