//! Trace context across processes: a `lightbus call` process and a `lightbus bench fire`
//! process send their spans' W3C context with the call and the event; this test process is
//! the worker and the listener, collects its own spans in-process (an OpenTelemetry SDK
//! exporter into memory) and checks that its execution and handling spans are children of
//! the other processes' call and fire spans (whose ids those processes write in their JSON
//! logs). Without propagation, the execution has no remote parent.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightbus::worker::Worker;
use lightbus::Bus;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use serde_json::Value;
use support::Fixture;
use tracing_subscriber::layer::SubscriberExt;

/// Spans of this process, as they end.
#[derive(Debug, Clone, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(batch);
        std::future::ready(Ok(()))
    }
}

impl Collected {
    /// The first finished span called `name` with `attribute` = `value`.
    fn find(&self, name: &str, attribute: &str, value: &str) -> Option<SpanData> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|span| {
                span.name == name
                    && span
                        .attributes
                        .iter()
                        .any(|kv| kv.key.as_str() == attribute && kv.value.as_str() == value)
            })
            .cloned()
    }

    fn wait_for(&self, name: &str, attribute: &str, value: &str) -> SpanData {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(span) = self.find(name, attribute, value) {
                return span;
            }
            assert!(
                Instant::now() < deadline,
                "no {name} span with {attribute}={value}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The `(trace_id, span_id)` of span `name` in another process's JSON log lines.
fn ids_in_log(stderr: &str, name: &str) -> (String, String) {
    for line in stderr.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let spans = entry["spans"].as_array().cloned().unwrap_or_default();
        if let Some(span) = spans.iter().find(|span| span["name"] == name) {
            let trace = span["trace_id"].as_str().unwrap_or_default().to_owned();
            let id = span["span_id"].as_str().unwrap_or_default().to_owned();
            if !trace.is_empty() && !id.is_empty() {
                return (trace, id);
            }
        }
    }
    panic!("no {name} span with ids in the log:\n{stderr}");
}

/// Runs `lightbus ARGS` with debug logs as JSON lines on stderr.
fn logged(fixture: &Fixture, args: &[&str]) -> std::process::Output {
    fixture
        .lightbus()
        .env("RUST_LOG", "debug")
        .args(["--log-format", "json"])
        .args(args)
        .output()
        .expect("runs lightbus")
}

#[test]
fn execution_and_handling_are_children_of_the_remote_call_and_fire() {
    let fixture = Fixture::with_root_yaml("observability:\n  trace_propagation: true\n");
    let collected = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(collected.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).expect("the test's subscriber");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let bus = Bus::builder()
        .config_file(&fixture.config)
        .service_name("traced")
        .build()
        .expect("bus");
    bus.register(support::auth_api()).expect("registers");
    bus.listen_raw(&["benchmark.fire_me"], "traced_listener", |_event| async {})
        .expect("listens");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = runtime.spawn(Worker::new(bus).run(async {
        let _ = stopped.await;
    }));
    // The listener set up its group (creating the stream) before anything is fired.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fixture.redis_value(redis::cmd("EXISTS").arg("benchmark.*:stream"))
        != redis::Value::Int(1)
    {
        assert!(Instant::now() < deadline, "the listener never started");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Process 2 calls; this process executes.
    let call = logged(
        &fixture,
        &["call", "auth.check_password", "username=u1", "password=p"],
    );
    assert!(call.status.success(), "{}", support::stderr(&call));
    let (call_trace, call_span) = ids_in_log(&support::stderr(&call), "lightbus.call");
    let execute = collected.wait_for("lightbus.execute", "procedure", "check_password");
    assert_eq!(execute.span_context.trace_id().to_string(), call_trace);
    assert_eq!(
        execute.parent_span_id.to_string(),
        call_span,
        "parent: the remote call"
    );
    assert!(execute.parent_span_is_remote);

    // Process 3 fires; this process handles.
    let fire = logged(
        &fixture,
        &["bench", "fire", "--requests", "1", "--warmup", "0"],
    );
    assert!(fire.status.success(), "{}", support::stderr(&fire));
    let (fire_trace, fire_span) = ids_in_log(&support::stderr(&fire), "lightbus.fire");
    let handle = collected.wait_for("lightbus.handle", "listener", "traced_listener");
    assert_eq!(handle.span_context.trace_id().to_string(), fire_trace);
    assert_eq!(
        handle.parent_span_id.to_string(),
        fire_span,
        "parent: the remote fire"
    );

    // Without propagation the caller sends no context: the execution starts its own trace.
    let plain = fixture.redis.config_file("    validate: false\n");
    let untraced = fixture
        .lightbus()
        .env("LIGHTBUS_CONFIG", &plain)
        .args(["call", "auth.check_password", "username=u2", "password=p"])
        .output()
        .expect("runs");
    assert!(untraced.status.success(), "{}", support::stderr(&untraced));
    let deadline = Instant::now() + Duration::from_secs(30);
    let executions = || {
        collected
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|span| span.name == "lightbus.execute")
            .cloned()
            .collect::<Vec<_>>()
    };
    while executions().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second call was never executed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = executions()[1].clone();
    assert!(!second.parent_span_is_remote, "{second:?}");
    assert_ne!(second.span_context.trace_id().to_string(), call_trace);

    let _ = stop.send(());
    runtime
        .block_on(worker)
        .expect("the worker task")
        .expect("the worker stops cleanly");
}
