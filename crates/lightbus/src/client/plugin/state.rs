//! `internal_state`: a worker announces itself on the `internal.state` API.
//!
//! Events, with the peer's parameters and values (Python Lightbus 1.1.2's `StatePlugin`):
//! - `worker_started` when the worker starts, and `worker_ping` every `ping_interval` seconds
//!   while it runs (if `ping_enabled`), each with `process_name`, `service_name`,
//!   `metrics_enabled`, `api_names` (the process's APIs, internal ones left out),
//!   `listening_for` (`api.event` of every listener), `timestamp` (unix seconds, a float),
//!   `ping_enabled`, `ping_interval`, `hostname`, `pid` and `max_memory_use` (peak resident
//!   memory in KiB, the peer's `ru_maxrss`);
//! - `worker_stopped` when it stopped, with `process_name` and `service_name`.
//!
//! As upstream, these are written straight to the event transport: they skip other plugins'
//! fire hooks and parameter checks (their parameters are a superset of the API's declared
//! ones, exactly as the peer sends them). A failure to send is logged and never stops the
//! worker.
//!
//! Configuration: `plugins.internal_state: {enabled: true, ping_enabled: true,
//! ping_interval: 60}`.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{timestamp, HookFuture, Plugin};
use crate::api::{ApiBuilder, DynamicApi, Kwargs};
use crate::client::Bus;
use crate::error::Result;
use crate::message::EventMessage;
use crate::util::lock;

/// The API the plugin fires on.
pub const STATE_API: &str = "internal.state";

/// The parameters the peer declares for `worker_started` and `worker_ping`.
const WORKER_PARAMETERS: [&str; 7] = [
    "service_name",
    "process_name",
    "metrics_enabled",
    "api_names",
    "listening_for",
    "timestamp",
    "ping_interval",
];

/// The `internal.state` API, declared as the peer declares it (`LightbusStateApi`).
pub fn state_api() -> DynamicApi {
    ApiBuilder::new(STATE_API)
        .event("worker_started", WORKER_PARAMETERS)
        .event("worker_ping", WORKER_PARAMETERS)
        .event("worker_stopped", ["process_name", "timestamp"])
        .build()
}

/// Fires `internal.state` events about this worker (see the [module docs](self)).
#[derive(Debug)]
pub struct StatePlugin {
    ping_enabled: bool,
    ping_interval: f64,
    pinging: Mutex<Option<CancellationToken>>,
}

impl StatePlugin {
    /// The plugin, pinging every `ping_interval` seconds if `ping_enabled`.
    pub fn new(ping_enabled: bool, ping_interval: f64) -> Self {
        StatePlugin {
            ping_enabled,
            ping_interval,
            pinging: Mutex::new(None),
        }
    }

    fn stop_pinging(&self) {
        if let Some(token) = lock(&self.pinging).take() {
            token.cancel();
        }
    }
}

impl Plugin for StatePlugin {
    fn name(&self) -> &str {
        "internal_state"
    }

    fn before_worker_start<'a>(&'a self, bus: &'a Bus) -> HookFuture<'a> {
        Box::pin(async move {
            send(bus, "worker_started", self.state(bus)).await;
            if self.ping_enabled {
                tracing::info!("internal_state: pinging every {}s", self.ping_interval);
                let token = CancellationToken::new();
                self.stop_pinging();
                *lock(&self.pinging) = Some(token.clone());
                let bus = bus.clone();
                let (enabled, interval) = (self.ping_enabled, self.ping_interval);
                let period = Duration::try_from_secs_f64(interval)
                    .unwrap_or(Duration::from_secs(60))
                    .max(Duration::from_millis(10));
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            () = token.cancelled() => return,
                            () = tokio::time::sleep(period) => {}
                        }
                        send(&bus, "worker_ping", state_of(&bus, enabled, interval)).await;
                    }
                });
            } else {
                tracing::warn!(
                    "internal_state: worker_ping events are off (ping_enabled: false), so \
                     monitoring cannot tell this worker is alive"
                );
            }
            Ok(())
        })
    }

    fn before_worker_stop<'a>(&'a self, _bus: &'a Bus) -> HookFuture<'a> {
        self.stop_pinging();
        super::nothing()
    }

    fn after_worker_stop<'a>(&'a self, bus: &'a Bus) -> HookFuture<'a> {
        Box::pin(async move {
            self.stop_pinging();
            let mut kwargs = Kwargs::new();
            kwargs.insert("process_name".into(), bus.process_name().into());
            kwargs.insert("service_name".into(), bus.service_name().into());
            send(bus, "worker_stopped", kwargs).await;
            Ok(())
        })
    }
}

impl StatePlugin {
    fn state(&self, bus: &Bus) -> Kwargs {
        state_of(bus, self.ping_enabled, self.ping_interval)
    }
}

/// The parameters of `worker_started` and `worker_ping`, in the peer's order.
fn state_of(bus: &Bus, ping_enabled: bool, ping_interval: f64) -> Kwargs {
    let api_names: Vec<String> = bus
        .registered_apis()
        .iter()
        .map(|api| api.name.clone())
        .filter(|name| !name.starts_with("internal."))
        .collect();
    let hostname = hostname::get()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut kwargs = Kwargs::new();
    kwargs.insert("process_name".into(), bus.process_name().into());
    kwargs.insert("service_name".into(), bus.service_name().into());
    kwargs.insert(
        "metrics_enabled".into(),
        bus.has_plugin(super::metrics::PLUGIN_NAME).into(),
    );
    kwargs.insert("api_names".into(), json!(api_names));
    kwargs.insert("listening_for".into(), json!(bus.listeners().event_names()));
    kwargs.insert("timestamp".into(), json!(timestamp()));
    kwargs.insert("ping_enabled".into(), ping_enabled.into());
    kwargs.insert("ping_interval".into(), seconds_value(ping_interval));
    kwargs.insert("hostname".into(), hostname.into());
    kwargs.insert("pid".into(), std::process::id().into());
    kwargs.insert("max_memory_use".into(), peak_memory_kib().into());
    kwargs
}

/// Whole seconds as an integer (the peer's configuration gives `60`, not `60.0`).
fn seconds_value(seconds: f64) -> Value {
    if seconds.fract() == 0.0 && seconds >= 0.0 && seconds < u64::MAX as f64 {
        json!(seconds as u64)
    } else {
        json!(seconds)
    }
}

/// Peak resident memory in KiB (`VmHWM`, what `getrusage`'s `ru_maxrss` reports on Linux);
/// 0 where it is not known.
fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// Writes one `internal.state` event to its transport; failures are logged.
async fn send(bus: &Bus, event: &str, kwargs: Kwargs) {
    let message = EventMessage::new(STATE_API, event, 1, kwargs);
    let sent: Result<String> = async {
        let transports = bus.transports_for(STATE_API)?;
        transports.event.send_event(&message).await
    }
    .await;
    match sent {
        Ok(native_id) => tracing::debug!(%native_id, "internal_state: sent {event}"),
        Err(error) => tracing::warn!("internal_state: cannot send {event}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_are_integers() {
        assert_eq!(seconds_value(60.0), json!(60));
        assert_eq!(seconds_value(0.5), json!(0.5));
    }

    #[test]
    fn peak_memory_is_known_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_memory_kib() > 0);
        }
    }
}
