//! `internal_metrics`: an event on the `internal.metrics` API for every RPC and event.
//!
//! The seven events and their parameters, as Python Lightbus 1.1.2's `MetricsPlugin` fires
//! them (each also has `timestamp`, unix seconds as a float, `service_name` and
//! `process_name`, in that order after the others):
//!
//! | event | fired | parameters |
//! |---|---|---|
//! | `rpc_call_sent` | caller, before a call is sent | `id`, `api_name`, `procedure_name`, `kwargs` |
//! | `rpc_response_received` | caller, when the result arrived | `id`, `api_name`, `procedure_name` |
//! | `rpc_call_received` | worker, before a call runs | `id`, `api_name`, `procedure_name` |
//! | `rpc_response_sent` | worker, after the result was sent | `id`, `api_name`, `procedure_name`, `result` |
//! | `event_fired` | after an event was stored | `event_id`, `api_name`, `event_name`, `kwargs` |
//! | `event_received` | worker, before a listener's handler runs | `event_id`, `api_name`, `event_name`, `kwargs` |
//! | `event_processed` | worker, after a handler succeeded | `event_id`, `api_name`, `event_name`, `kwargs` |
//!
//! `result` is the procedure's value, or the failure's message when it failed. `event_id` is
//! the event's id (Python Lightbus 1.1.2 sends the literal text `"event_id"` there, which
//! identifies nothing; the real id is a strict improvement for any reader). Events of
//! `internal.metrics` itself are not reported, so the plugin never feeds on itself.
//!
//! The events are fired like any other (through [`Bus::fire_raw`], so other plugins see them
//! too); one that cannot be fired is logged, and the RPC or event it describes goes on.
//!
//! Configuration: `plugins.internal_metrics: {enabled: true}`.

use serde_json::{json, Value};

use super::{timestamp, HookFuture, Plugin};
use crate::api::{ApiBuilder, DynamicApi, Kwargs};
use crate::client::Bus;
use crate::error::Result;
use crate::message::{EventMessage, ResultMessage, RpcMessage};

/// The API the plugin fires on.
pub const METRICS_API: &str = "internal.metrics";

/// The plugin's name, as [`Plugin::name`] returns it.
pub const PLUGIN_NAME: &str = "internal_metrics";

/// The `internal.metrics` API, declared as the peer declares it (`LightbusMetricsApi`).
pub fn metrics_api() -> DynamicApi {
    const CALL: [&str; 6] = [
        "service_name",
        "process_name",
        "id",
        "api_name",
        "procedure_name",
        "timestamp",
    ];
    const EVENT: [&str; 7] = [
        "service_name",
        "process_name",
        "event_id",
        "api_name",
        "event_name",
        "kwargs",
        "timestamp",
    ];
    ApiBuilder::new(METRICS_API)
        .event(
            "rpc_call_sent",
            [
                "service_name",
                "process_name",
                "id",
                "api_name",
                "procedure_name",
                "kwargs",
                "timestamp",
            ],
        )
        .event("rpc_call_received", CALL)
        .event(
            "rpc_response_sent",
            [
                "service_name",
                "process_name",
                "id",
                "api_name",
                "procedure_name",
                "result",
                "timestamp",
            ],
        )
        .event("rpc_response_received", CALL)
        .event("event_fired", EVENT)
        .event("event_received", EVENT)
        .event("event_processed", EVENT)
        .build()
}

/// Fires `internal.metrics` events (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct MetricsPlugin;

impl MetricsPlugin {
    /// The plugin.
    pub fn new() -> Self {
        MetricsPlugin
    }
}

/// The parameters describing a call: `id`, `api_name`, `procedure_name`.
fn call_kwargs(call: &RpcMessage) -> Kwargs {
    let mut kwargs = Kwargs::new();
    kwargs.insert("id".into(), call.id.clone().into());
    kwargs.insert("api_name".into(), call.api_name.clone().into());
    kwargs.insert("procedure_name".into(), call.procedure_name.clone().into());
    kwargs
}

/// The parameters describing an event: `event_id`, `api_name`, `event_name`, `kwargs`.
fn event_kwargs(event: &EventMessage) -> Kwargs {
    let mut kwargs = Kwargs::new();
    kwargs.insert("event_id".into(), event.id.clone().into());
    kwargs.insert("api_name".into(), event.api_name.clone().into());
    kwargs.insert("event_name".into(), event.event_name.clone().into());
    kwargs.insert("kwargs".into(), Value::Object(event.kwargs.clone()));
    kwargs
}

/// Adds the common parameters and fires `internal.metrics.{name}`.
async fn send(bus: &Bus, name: &str, mut kwargs: Kwargs) -> Result<()> {
    kwargs.insert("timestamp".into(), json!(timestamp()));
    kwargs.insert("service_name".into(), bus.service_name().into());
    kwargs.insert("process_name".into(), bus.process_name().into());
    bus.fire_raw(METRICS_API, name, kwargs).await.map(drop)
}

impl Plugin for MetricsPlugin {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    fn before_rpc_call<'a>(&'a self, bus: &'a Bus, call: &'a RpcMessage) -> HookFuture<'a> {
        Box::pin(async move {
            let mut kwargs = call_kwargs(call);
            kwargs.insert("kwargs".into(), Value::Object(call.kwargs.clone()));
            send(bus, "rpc_call_sent", kwargs).await
        })
    }

    fn after_rpc_call<'a>(
        &'a self,
        bus: &'a Bus,
        call: &'a RpcMessage,
        _result: &'a ResultMessage,
    ) -> HookFuture<'a> {
        Box::pin(send(bus, "rpc_response_received", call_kwargs(call)))
    }

    fn before_rpc_execution<'a>(&'a self, bus: &'a Bus, call: &'a RpcMessage) -> HookFuture<'a> {
        Box::pin(send(bus, "rpc_call_received", call_kwargs(call)))
    }

    fn after_rpc_execution<'a>(
        &'a self,
        bus: &'a Bus,
        call: &'a RpcMessage,
        result: &'a ResultMessage,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let mut kwargs = call_kwargs(call);
            let value = match &result.outcome {
                Ok(value) => value.clone(),
                Err(failure) => Value::String(failure.message.clone()),
            };
            kwargs.insert("result".into(), value);
            send(bus, "rpc_response_sent", kwargs).await
        })
    }

    fn after_event_fire<'a>(&'a self, bus: &'a Bus, event: &'a EventMessage) -> HookFuture<'a> {
        if event.api_name == METRICS_API {
            return super::nothing();
        }
        Box::pin(send(bus, "event_fired", event_kwargs(event)))
    }

    fn before_event_handling<'a>(
        &'a self,
        bus: &'a Bus,
        _listener: &'a str,
        event: &'a EventMessage,
    ) -> HookFuture<'a> {
        if event.api_name == METRICS_API {
            return super::nothing();
        }
        Box::pin(send(bus, "event_received", event_kwargs(event)))
    }

    fn after_event_handling<'a>(
        &'a self,
        bus: &'a Bus,
        _listener: &'a str,
        event: &'a EventMessage,
        failure: Option<&'a str>,
    ) -> HookFuture<'a> {
        if event.api_name == METRICS_API || failure.is_some() {
            return super::nothing();
        }
        Box::pin(send(bus, "event_processed", event_kwargs(event)))
    }
}
