//! Spans for calls, executions, fires and handling, and the W3C trace context carried from
//! caller to worker and from firer to listener.
//!
//! Every RPC call runs in a `lightbus.call` span, every execution in `lightbus.execute`,
//! every fire in `lightbus.fire` and every handled event in `lightbus.handle` (`tracing`
//! spans with `api`, `procedure` / `event`, `listener`, message `id`, `trace_id` and
//! `span_id` fields, so JSON logs carry them). Execution and handling spans are at INFO,
//! like the log line each writes; call and fire spans at DEBUG, so that a client logging at
//! INFO pays nothing for them on its hot path (the OpenTelemetry [`layer`] takes
//! `lightbus`'s DEBUG spans). With the `otel` feature and an OpenTelemetry layer in the
//! subscriber (the command line installs one, see [`layer`]), they are OpenTelemetry
//! spans, and:
//!
//! - when trace propagation is on (`observability.trace_propagation: true` in the
//!   configuration, or `LIGHTBUS_TRACE_PROPAGATION=1`), calls and events carry the
//!   current span's context (see [`crate::message::TraceContext`] for where, so that Python
//!   Lightbus 1.1.2 peers still decode every message);
//! - an execution or handling whose message carries a context is a child of the remote
//!   span that sent it, whatever this process's own setting.
//!
//! With the `otlp` feature, [`layer`] also exports spans over OTLP (HTTP/protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.

use tracing::field::Empty;
use tracing::Span;

use crate::config::Config;
use crate::message::{EventMessage, RpcMessage, TraceContext};

/// The environment variable that turns trace propagation on for every bus of the process
/// (`1`, `true`, `yes` or `on`), for files shared with Python processes, which cannot hold
/// the `observability` section.
pub const PROPAGATION_ENV: &str = "LIGHTBUS_TRACE_PROPAGATION";

/// Whether a bus with `config` sends its trace context with calls and events.
pub fn propagation_enabled(config: &Config) -> bool {
    config.file.observability.trace_propagation || propagation_from_env()
}

/// Whether [`PROPAGATION_ENV`] turns propagation on (read once).
fn propagation_from_env() -> bool {
    static FROM_ENV: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FROM_ENV.get_or_init(|| {
        std::env::var(PROPAGATION_ENV).is_ok_and(|value| {
            matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
    })
}

/// The span of a call of `api.procedure`, caller side.
pub fn call_span(api: &str, procedure: &str) -> Span {
    let span = tracing::debug_span!(
        "lightbus.call",
        otel.kind = "client",
        api,
        procedure,
        trace_id = Empty,
        span_id = Empty,
    );
    record_ids(&span);
    span
}

/// The span of a fire of `api.event`.
pub fn fire_span(api: &str, event: &str) -> Span {
    let span = tracing::debug_span!(
        "lightbus.fire",
        otel.kind = "producer",
        api,
        event,
        trace_id = Empty,
        span_id = Empty,
    );
    record_ids(&span);
    span
}

/// The span of `call`'s execution on a worker: a child of the caller's span when the call
/// carries its context.
pub fn execute_span(call: &RpcMessage) -> Span {
    let span = tracing::info_span!(
        "lightbus.execute",
        otel.kind = "server",
        api = %call.api_name,
        procedure = %call.procedure_name,
        id = %call.id,
        trace_id = Empty,
        span_id = Empty,
        remote_parent = Empty,
    );
    if let Some(context) = &call.trace_context {
        set_remote_parent(&span, context);
    }
    record_ids(&span);
    span
}

/// The span of listener `listener` handling `event`: a child of the firer's span when the
/// event carries its context.
pub fn handle_span(listener: &str, event: &EventMessage) -> Span {
    let span = tracing::info_span!(
        "lightbus.handle",
        otel.kind = "consumer",
        api = %event.api_name,
        event = %event.event_name,
        listener,
        id = %event.id,
        trace_id = Empty,
        span_id = Empty,
        remote_parent = Empty,
    );
    if let Some(context) = &event.trace_context {
        set_remote_parent(&span, context);
    }
    record_ids(&span);
    span
}

/// The context to send with a call or event from the current span, when a bus with `config`
/// propagates (`None` otherwise, or when the current span has no OpenTelemetry context).
pub fn outgoing(config: &Config) -> Option<TraceContext> {
    if !propagation_enabled(config) {
        return None;
    }
    current_context()
}

#[cfg(feature = "otel")]
fn current_context() -> Option<TraceContext> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return None;
    }
    let traceparent = format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    );
    let state = span_context.trace_state().header();
    TraceContext::new(&traceparent, Some(state.as_str()))
}

#[cfg(not(feature = "otel"))]
fn current_context() -> Option<TraceContext> {
    None
}

/// Records the span's OpenTelemetry ids as its `trace_id` and `span_id` fields, so that
/// log lines written inside it (JSON logs show span fields) can be matched with traces.
#[cfg(feature = "otel")]
fn record_ids(span: &Span) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    let otel = context.span();
    let ids = otel.span_context();
    if ids.is_valid() {
        span.record("trace_id", tracing::field::display(ids.trace_id()));
        span.record("span_id", tracing::field::display(ids.span_id()));
    }
}

#[cfg(not(feature = "otel"))]
fn record_ids(_span: &Span) {}

/// Makes the remote span of `context` the parent of `span`.
#[cfg(feature = "otel")]
pub fn set_remote_parent(span: &Span, context: &TraceContext) {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(context.trace_id()),
        SpanId::from_hex(context.parent_id()),
    ) else {
        return;
    };
    let state = context
        .tracestate
        .as_deref()
        .and_then(|state| state.parse::<TraceState>().ok())
        .unwrap_or_default();
    let remote = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(context.flags()),
        true,
        state,
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    span.record("remote_parent", context.parent_id());
}

/// Records the remote parent of `span` (making it the parent needs the `otel` feature).
#[cfg(not(feature = "otel"))]
pub fn set_remote_parent(span: &Span, context: &TraceContext) {
    span.record("trace_id", context.trace_id());
    span.record("remote_parent", context.parent_id());
}

#[cfg(all(feature = "otel", feature = "cli"))]
pub use setup::{flush, layer};

/// Exports the spans still buffered (nothing to do without the `otel` and `cli` features).
#[cfg(not(all(feature = "otel", feature = "cli")))]
pub fn flush() {}

#[cfg(all(feature = "otel", feature = "cli"))]
mod setup {
    use std::sync::OnceLock;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::Layer;

    use crate::config::Config;

    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    /// The OpenTelemetry layer for the process's subscriber, when something needs span ids:
    /// trace propagation is on for `config` (or [`super::PROPAGATION_ENV`]), or spans are
    /// exported over OTLP (feature `otlp` and `OTEL_EXPORTER_OTLP_ENDPOINT` set). `None`
    /// otherwise, so spans cost nothing more than `tracing`'s own bookkeeping.
    pub fn layer<S>(config: &Config) -> Option<Box<dyn Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber
            + for<'span> tracing_subscriber::registry::LookupSpan<'span>
            + Send
            + Sync,
    {
        let propagate =
            config.file.observability.trace_propagation || super::propagation_from_env();
        let exporting = otlp_endpoint_set();
        if !propagate && !exporting {
            return None;
        }
        let mut builder = SdkTracerProvider::builder();
        #[cfg(feature = "otlp")]
        if exporting {
            match opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
            {
                Ok(exporter) => builder = builder.with_batch_exporter(exporter),
                Err(error) => eprintln!("warning: cannot export spans over OTLP: {error}"),
            }
        }
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        builder = builder.with_resource(resource);
        let provider = PROVIDER.get_or_init(|| builder.build());
        let tracer = provider.tracer("lightbus");
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_default(tracing::Level::INFO)
                        .with_target("lightbus", tracing::Level::DEBUG),
                )
                .boxed(),
        )
    }

    fn otlp_endpoint_set() -> bool {
        cfg!(feature = "otlp")
            && [
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            ]
            .iter()
            .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
    }

    /// Exports the spans still buffered (before the process exits).
    pub fn flush() {
        if let Some(provider) = PROVIDER.get() {
            let _ = provider.force_flush();
        }
    }
}
