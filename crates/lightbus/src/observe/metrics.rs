//! Prometheus metrics of the bus: every metric name, its labels and one function per event.
//!
//! | metric | type | labels | recorded |
//! |---|---|---|---|
//! | `lightbus_rpc_calls_total` | counter | `api`, `procedure`, `outcome` | caller, when a call ends |
//! | `lightbus_rpc_duration_seconds` | histogram | `api`, `procedure`, `outcome` | caller, send to result |
//! | `lightbus_rpc_executions_total` | counter | `api`, `procedure`, `outcome` | worker, after a call ran |
//! | `lightbus_rpc_execution_seconds` | histogram | `api`, `procedure`, `outcome` | worker, handler time |
//! | `lightbus_events_fired_total` | counter | `api`, `event`, `outcome` | firer |
//! | `lightbus_events_handled_total` | counter | `api`, `event`, `listener`, `outcome` | worker, after a handler ran |
//! | `lightbus_event_handling_seconds` | histogram | `api`, `event`, `listener`, `outcome` | worker, handler time |
//! | `lightbus_events_dead_lettered_total` | counter | `stream`, `group` | an entry was moved to `<stream>:dead` |
//! | `lightbus_listener_lag` | gauge | `stream`, `group` | sampled from Redis: entries not yet delivered to the group |
//! | `lightbus_listener_pending` | gauge | `stream`, `group` | sampled from Redis: delivered, not acknowledged |
//! | `lightbus_rpc_queue_length` | gauge | `api` | sampled from Redis: calls waiting in the queue |
//!
//! `outcome` is one of [`Outcome`]'s texts (`ok`, `failed`, `timeout`, `error`, `rejected`).
//! Label values are API, procedure, event, listener, stream and group names only (never
//! message ids or argument values); on the worker a call to a procedure its API does not
//! declare is counted as procedure `<undeclared>`, so a caller cannot grow the label set.
//!
//! Recording is off until [`install`] (or [`enable_recording`], for a process with its own
//! `metrics` recorder) is called: until then every function here returns after one relaxed
//! atomic load. Once on, each event costs a lookup of its cached handles (no allocation
//! after the first time a label set is seen) and atomic updates.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Label, Unit};

use crate::message::RpcMessage;

/// Caller side: RPC calls that ended, by outcome.
pub const RPC_CALLS_TOTAL: &str = "lightbus_rpc_calls_total";
/// Caller side: seconds from sending a call to its result (or timeout).
pub const RPC_DURATION_SECONDS: &str = "lightbus_rpc_duration_seconds";
/// Worker side: RPC calls executed, by outcome.
pub const RPC_EXECUTIONS_TOTAL: &str = "lightbus_rpc_executions_total";
/// Worker side: seconds a call's handler ran (validation included).
pub const RPC_EXECUTION_SECONDS: &str = "lightbus_rpc_execution_seconds";
/// Events fired by this process, by outcome.
pub const EVENTS_FIRED_TOTAL: &str = "lightbus_events_fired_total";
/// Events handled by this process's listeners, by outcome.
pub const EVENTS_HANDLED_TOTAL: &str = "lightbus_events_handled_total";
/// Seconds a listener's handler ran on an event.
pub const EVENT_HANDLING_SECONDS: &str = "lightbus_event_handling_seconds";
/// Stream entries this process moved to a dead-letter stream.
pub const EVENTS_DEAD_LETTERED_TOTAL: &str = "lightbus_events_dead_lettered_total";
/// Entries of a stream not yet delivered to a consumer group (sampled from Redis).
pub const LISTENER_LAG: &str = "lightbus_listener_lag";
/// Entries delivered to a consumer group and not yet acknowledged (sampled from Redis).
pub const LISTENER_PENDING: &str = "lightbus_listener_pending";
/// Calls waiting in an API's RPC queue (sampled from Redis).
pub const RPC_QUEUE_LENGTH: &str = "lightbus_rpc_queue_length";

/// Histogram buckets (seconds) for RPC round trips and handler times: from 100 µs (a call
/// on loopback takes ~200 µs) to 30 s (beyond any sensible `rpc_timeout`).
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// How an RPC, a fire or a handled event ended: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Succeeded.
    Ok,
    /// The procedure or handler reported a failure (or panicked).
    Failed,
    /// No result within the API's `rpc_timeout`.
    Timeout,
    /// Anything else: invalid arguments, an unreachable transport, a schema mismatch.
    Error,
    /// An event whose parameters do not fit its listener: moved to the dead-letter stream.
    Rejected,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
            Outcome::Rejected => "rejected",
        }
    }

    /// The outcome of a caller-side result: `ok`, `failed` (the worker answered with a
    /// failure), `timeout`, or `error`.
    pub fn of_call<T>(result: &crate::error::Result<T>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(crate::error::Error::Remote { .. }) => Outcome::Failed,
            Err(crate::error::Error::Timeout { .. }) => Outcome::Timeout,
            Err(_) => Outcome::Error,
        }
    }

    /// The outcome of a worker's call: `ok` or `failed`.
    pub fn of_execution(outcome: &crate::api::RpcOutcome) -> Outcome {
        if outcome.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        }
    }

    /// `ok` or `error`.
    pub fn of<T, E>(result: &std::result::Result<T, E>) -> Outcome {
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Error
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether metrics are being recorded in this process.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns recording on without installing a recorder: for a process that installed its own
/// `metrics` recorder (StatsD, OpenTelemetry, …) and wants the bus's metrics in it.
pub fn enable_recording() {
    if !ENABLED.swap(true, Ordering::Relaxed) {
        describe();
    }
}

/// Caller side: a call of `api.procedure` ended after `duration`.
pub fn rpc_call_finished(api: &str, procedure: &str, outcome: Outcome, duration: Duration) {
    if !enabled() {
        return;
    }
    static FAMILY: Timed<3> = Timed::new(
        RPC_CALLS_TOTAL,
        RPC_DURATION_SECONDS,
        ["api", "procedure", "outcome"],
    );
    FAMILY.record([api, procedure, outcome.as_str()], duration);
}

/// Worker side: `call` ran for `duration`. A procedure its API does not declare
/// (`declared` false) is counted as `<undeclared>` (the name comes from the network).
pub fn rpc_executed(call: &RpcMessage, declared: bool, outcome: Outcome, duration: Duration) {
    if !enabled() {
        return;
    }
    record_execution(
        &call.api_name,
        &call.procedure_name,
        declared,
        outcome,
        duration,
    );
}

fn record_execution(
    api: &str,
    procedure: &str,
    declared: bool,
    outcome: Outcome,
    duration: Duration,
) {
    static FAMILY: Timed<3> = Timed::new(
        RPC_EXECUTIONS_TOTAL,
        RPC_EXECUTION_SECONDS,
        ["api", "procedure", "outcome"],
    );
    let procedure = if declared { procedure } else { "<undeclared>" };
    FAMILY.record([api, procedure, outcome.as_str()], duration);
}

/// An event `api.event` was fired (or firing it failed).
pub fn event_fired(api: &str, event: &str, outcome: Outcome) {
    if !enabled() {
        return;
    }
    static FAMILY: Counted<3> = Counted::new(EVENTS_FIRED_TOTAL, ["api", "event", "outcome"]);
    FAMILY.increment([api, event, outcome.as_str()]);
}

/// Listener `listener` handled `api.event` in `duration`.
pub fn event_handled(api: &str, event: &str, listener: &str, outcome: Outcome, duration: Duration) {
    if !enabled() {
        return;
    }
    static FAMILY: Timed<4> = Timed::new(
        EVENTS_HANDLED_TOTAL,
        EVENT_HANDLING_SECONDS,
        ["api", "event", "listener", "outcome"],
    );
    FAMILY.record([api, event, listener, outcome.as_str()], duration);
}

/// An entry of `stream` was moved to its dead-letter stream by consumer group `group`.
pub fn event_dead_lettered(stream: &str, group: &str) {
    if !enabled() {
        return;
    }
    static FAMILY: Counted<2> = Counted::new(EVENTS_DEAD_LETTERED_TOTAL, ["stream", "group"]);
    FAMILY.increment([stream, group]);
}

/// Sampled from Redis: consumer group `group` of `stream` has `lag` entries not yet
/// delivered and `pending` delivered but unacknowledged.
pub fn listener_sampled(stream: &str, group: &str, lag: u64, pending: u64) {
    if !enabled() {
        return;
    }
    let labels = || {
        vec![
            Label::new("stream", stream.to_owned()),
            Label::new("group", group.to_owned()),
        ]
    };
    metrics::gauge!(LISTENER_LAG, labels()).set(lag as f64);
    metrics::gauge!(LISTENER_PENDING, labels()).set(pending as f64);
}

/// Sampled from Redis: `length` calls wait in `api`'s RPC queue.
pub fn rpc_queue_sampled(api: &str, length: u64) {
    if !enabled() {
        return;
    }
    let gauge: Gauge = metrics::gauge!(RPC_QUEUE_LENGTH, "api" => api.to_owned());
    gauge.set(length as f64);
}

/// Registers the help texts and units of every metric with the current recorder.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        RPC_CALLS_TOTAL,
        "RPC calls made by this process, by outcome"
    );
    describe_histogram!(
        RPC_DURATION_SECONDS,
        Unit::Seconds,
        "Seconds from sending an RPC call to its result, caller side"
    );
    describe_counter!(
        RPC_EXECUTIONS_TOTAL,
        "RPC calls executed by this worker, by outcome"
    );
    describe_histogram!(
        RPC_EXECUTION_SECONDS,
        Unit::Seconds,
        "Seconds an RPC handler ran, worker side"
    );
    describe_counter!(
        EVENTS_FIRED_TOTAL,
        "Events fired by this process, by outcome"
    );
    describe_counter!(
        EVENTS_HANDLED_TOTAL,
        "Events handled by this process's listeners, by outcome"
    );
    describe_histogram!(
        EVENT_HANDLING_SECONDS,
        Unit::Seconds,
        "Seconds a listener's handler ran on an event"
    );
    describe_counter!(
        EVENTS_DEAD_LETTERED_TOTAL,
        "Stream entries moved to the dead-letter stream (<stream>:dead)"
    );
    describe_gauge!(
        LISTENER_LAG,
        "Entries of the stream not yet delivered to the consumer group"
    );
    describe_gauge!(
        LISTENER_PENDING,
        "Entries delivered to the consumer group and not yet acknowledged"
    );
    describe_gauge!(RPC_QUEUE_LENGTH, "RPC calls waiting in the API's queue");
}

/// The handles of one metric family, per label set, created on first use.
///
/// Looking up a label set hashes the borrowed values and compares them with the stored
/// ones, so a label set seen before costs no allocation.
struct Handles<const N: usize, H> {
    map: OnceLock<RwLock<ByHash<N, H>>>,
}

/// Label values and their handles, by the hash of the values.
type ByHash<const N: usize, H> = HashMap<u64, Vec<([Box<str>; N], H)>>;

impl<const N: usize, H: Clone> Handles<N, H> {
    const fn new() -> Self {
        Handles {
            map: OnceLock::new(),
        }
    }

    fn get(&self, values: [&str; N], create: impl FnOnce() -> H) -> H {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        values.hash(&mut hasher);
        let hash = hasher.finish();
        let map = self.map.get_or_init(Default::default);
        let same = |stored: &[Box<str>; N]| stored.iter().zip(values).all(|(a, b)| &**a == b);
        if let Some(found) = map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .and_then(|entries| entries.iter().find(|(stored, _)| same(stored)))
        {
            return found.1.clone();
        }
        let mut map = map.write().unwrap_or_else(|p| p.into_inner());
        let entries = map.entry(hash).or_default();
        if let Some((_, handle)) = entries.iter().find(|(stored, _)| same(stored)) {
            return handle.clone();
        }
        let handle = create();
        entries.push((values.map(Box::from), handle.clone()));
        handle
    }
}

fn labels<const N: usize>(names: &[&'static str; N], values: [&str; N]) -> Vec<Label> {
    names
        .iter()
        .zip(values)
        .map(|(name, value)| Label::new(*name, value.to_owned()))
        .collect()
}

/// A counter family.
struct Counted<const N: usize> {
    name: &'static str,
    label_names: [&'static str; N],
    handles: Handles<N, Counter>,
}

impl<const N: usize> Counted<N> {
    const fn new(name: &'static str, label_names: [&'static str; N]) -> Self {
        Counted {
            name,
            label_names,
            handles: Handles::new(),
        }
    }

    fn increment(&self, values: [&str; N]) {
        self.handles
            .get(values, || {
                metrics::counter!(self.name, labels(&self.label_names, values))
            })
            .increment(1);
    }
}

/// A counter and a histogram of durations with the same labels.
struct Timed<const N: usize> {
    counter: &'static str,
    histogram: &'static str,
    label_names: [&'static str; N],
    handles: Handles<N, (Counter, Histogram)>,
}

impl<const N: usize> Timed<N> {
    const fn new(
        counter: &'static str,
        histogram: &'static str,
        label_names: [&'static str; N],
    ) -> Self {
        Timed {
            counter,
            histogram,
            label_names,
            handles: Handles::new(),
        }
    }

    fn record(&self, values: [&str; N], duration: Duration) {
        let (counter, histogram) = self.handles.get(values, || {
            let labels = labels(&self.label_names, values);
            (
                metrics::counter!(self.counter, labels.clone()),
                metrics::histogram!(self.histogram, labels),
            )
        });
        counter.increment(1);
        histogram.record(duration.as_secs_f64());
    }
}

#[cfg(feature = "http")]
pub use prometheus::{install, MetricsHandle};

#[cfg(feature = "http")]
mod prometheus {
    use std::sync::OnceLock;
    use std::time::Duration;

    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    use super::{enable_recording, DURATION_BUCKETS};

    /// The installed Prometheus recorder: renders every metric of the process (the bus's
    /// and any the service records through the `metrics` facade) in the text format.
    #[derive(Clone)]
    pub struct MetricsHandle {
        handle: PrometheusHandle,
    }

    impl std::fmt::Debug for MetricsHandle {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("MetricsHandle(prometheus)")
        }
    }

    impl MetricsHandle {
        /// The Prometheus text exposition of every metric recorded so far.
        pub fn render(&self) -> String {
            self.handle.render()
        }
    }

    /// Installs the Prometheus recorder as the process's `metrics` recorder (once; later
    /// calls return the same handle) and turns recording on.
    ///
    /// Returns `None` when another `metrics` recorder was installed first: the bus's
    /// metrics then go to that recorder, and this process has nothing to render.
    pub fn install() -> Option<MetricsHandle> {
        static INSTALLED: OnceLock<Option<MetricsHandle>> = OnceLock::new();
        INSTALLED
            .get_or_init(|| {
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
                    .expect("the duration buckets are a non-empty constant");
                let recorder = builder.build_recorder();
                let handle = recorder.handle();
                let installed = metrics::set_global_recorder(recorder).is_ok();
                enable_recording();
                if !installed {
                    tracing::warn!(
                        "another metrics recorder is installed: the bus's metrics go to it, \
                         and /metrics has none to show"
                    );
                    return None;
                }
                // Histogram samples are buffered until drained; drain them even when no
                // one scrapes, so memory stays bounded.
                let upkeep = handle.clone();
                let _ = std::thread::Builder::new()
                    .name("lightbus-metrics-upkeep".into())
                    .spawn(move || loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    });
                Some(MetricsHandle { handle })
            })
            .clone()
    }
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;

    #[test]
    fn recorded_metrics_render_with_their_labels_and_buckets() {
        let handle = install().expect("no other recorder in this test binary");
        rpc_call_finished(
            "auth",
            "check_password",
            Outcome::Ok,
            Duration::from_micros(300),
        );
        rpc_call_finished(
            "auth",
            "check_password",
            Outcome::Ok,
            Duration::from_millis(2),
        );
        rpc_call_finished(
            "auth",
            "check_password",
            Outcome::Timeout,
            Duration::from_secs(5),
        );
        record_execution("auth", "nope", false, Outcome::Failed, Duration::ZERO);
        event_fired("auth", "user_registered", Outcome::Ok);
        event_handled(
            "auth",
            "user_registered",
            "send_email",
            Outcome::Ok,
            Duration::from_millis(1),
        );
        event_dead_lettered("auth.*:stream", "svc-send_email");
        listener_sampled("auth.*:stream", "svc-send_email", 7, 2);
        rpc_queue_sampled("auth", 3);
        let text = handle.render();
        for expected in [
            r#"lightbus_rpc_calls_total{api="auth",procedure="check_password",outcome="ok"} 2"#,
            r#"lightbus_rpc_calls_total{api="auth",procedure="check_password",outcome="timeout"} 1"#,
            r#"lightbus_rpc_duration_seconds_bucket{api="auth",procedure="check_password",outcome="ok",le="0.0005"} 1"#,
            r#"lightbus_rpc_duration_seconds_bucket{api="auth",procedure="check_password",outcome="ok",le="0.0025"} 2"#,
            r#"lightbus_rpc_duration_seconds_count{api="auth",procedure="check_password",outcome="ok"} 2"#,
            r#"lightbus_rpc_executions_total{api="auth",procedure="<undeclared>",outcome="failed"} 1"#,
            r#"lightbus_events_fired_total{api="auth",event="user_registered",outcome="ok"} 1"#,
            r#"lightbus_events_handled_total{api="auth",event="user_registered",listener="send_email",outcome="ok"} 1"#,
            r#"lightbus_event_handling_seconds_count{api="auth",event="user_registered",listener="send_email",outcome="ok"} 1"#,
            r#"lightbus_events_dead_lettered_total{stream="auth.*:stream",group="svc-send_email"} 1"#,
            r#"lightbus_listener_lag{stream="auth.*:stream",group="svc-send_email"} 7"#,
            r#"lightbus_listener_pending{stream="auth.*:stream",group="svc-send_email"} 2"#,
            r#"lightbus_rpc_queue_length{api="auth"} 3"#,
            "# TYPE lightbus_rpc_duration_seconds histogram",
            "# TYPE lightbus_rpc_calls_total counter",
            "# HELP lightbus_rpc_calls_total RPC calls made by this process, by outcome",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }

    #[test]
    fn label_sets_are_cached_by_value() {
        let handles: Handles<2, u32> = Handles::new();
        let mut created = 0;
        for _ in 0..3 {
            let value = handles.get(["a", "b"], || {
                created += 1;
                created
            });
            assert_eq!(value, 1);
        }
        assert_eq!(handles.get(["a", "c"], || 9), 9);
        assert_eq!(
            handles.get(["ab", ""], || 10),
            10,
            "values are not concatenated"
        );
        assert_eq!(created, 1);
    }
}
